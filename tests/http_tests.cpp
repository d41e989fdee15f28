// The HTTP client (include/skyvol/http/) against a real loopback server, plain and TLS.

#include "support/http_test_server.hpp"
#include "support/temp_dir.hpp"

#include <skyvol/error.hpp>
#include <skyvol/http/client.hpp>
#include <skyvol/http/message.hpp>
#include <skyvol/http/url.hpp>
#include <skyvol/log.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/system_error.hpp>

#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace http = skyvol::http;
using boost::beast::http::verb;
using skyvol::errc;
using skyvol::test::http_exchange;
using skyvol::test::http_reply;
using skyvol::test::http_test_server;

/// Runs `op` on `io` (on this thread) and gives its result or throws its exception.
template <class T>
T run_on(net::io_context& io, net::awaitable<T> op) {
    auto done = net::co_spawn(io, std::move(op), net::use_future);
    io.restart();
    io.run();
    return done.get();
}

struct failure {
    std::error_code code;
    std::string what;
};

/// The error `op` fails with; an empty code if it succeeds.
template <class T>
failure failure_of(net::io_context& io, net::awaitable<T> op) {
    try {
        (void)run_on(io, std::move(op));
    } catch (const boost::system::system_error& e) {
        return {std::error_code(e.code()), e.what()};
    }
    return {};
}

http::request make_request(verb method, std::string target, std::string body = std::string()) {
    http::request r;
    r.method = method;
    r.target = std::move(target);
    r.body = std::move(body);
    return r;
}

/// A log sink that keeps every message.
class log_capture {
public:
    skyvol::log_sink sink() {
        return [s = state_](skyvol::log_level level, std::string_view message) {
            std::lock_guard lock(s->mutex);
            s->lines.push_back(std::string(skyvol::to_string(level)) + ": " + std::string(message));
        };
    }
    std::vector<std::string> lines() const {
        std::lock_guard lock(state_->mutex);
        return state_->lines;
    }
    std::size_t count(std::string_view needle) const {
        std::size_t n = 0;
        for (const auto& line : lines())
            n += line.find(needle) != std::string::npos;
        return n;
    }

private:
    struct state {
        std::mutex mutex;
        std::vector<std::string> lines;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// Options that retry quickly.
http::client_options quick_options() {
    http::client_options o;
    o.base_backoff = std::chrono::milliseconds(5);
    o.max_backoff = std::chrono::milliseconds(20);
    return o;
}

/// Resident set size of this process, from /proc/self/statm.
std::size_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0;
    std::size_t resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

/// A loopback port nobody listens on.
std::uint16_t closed_port() {
    net::io_context io;
    net::ip::tcp::acceptor a(io, net::ip::tcp::endpoint(net::ip::address_v4::loopback(), 0));
    return a.local_endpoint().port();
}

/// Sets or unsets an environment variable for a scope.
class scoped_env {
public:
    scoped_env(const char* name, const char* value)
        : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    ~scoped_env() {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

net::awaitable<void> shutdown_after(http::client* c, std::chrono::milliseconds delay) {
    auto executor = co_await net::this_coro::executor;
    net::steady_timer timer(executor);
    timer.expires_after(delay);
    co_await timer.async_wait(net::use_awaitable);
    c->shutdown();
}

} // namespace

TEST_CASE("http url parsing", "[http]") {
    std::error_code ec;
    http::url u = http::parse_url("https://S3.eu-west-1.AmazonAWS.com", ec);
    REQUIRE(!ec);
    CHECK(u.scheme == "https");
    CHECK(u.tls());
    CHECK(u.host == "s3.eu-west-1.amazonaws.com");
    CHECK(u.port == 443);
    CHECK(u.path == "/");
    CHECK(u.query.empty());
    CHECK(u.host_header() == "s3.eu-west-1.amazonaws.com");
    CHECK(u.origin() == "https://s3.eu-west-1.amazonaws.com");

    u = http::parse_url("http://127.0.0.1:9000/base/path?x=y&z#fragment", ec);
    REQUIRE(!ec);
    CHECK(!u.tls());
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == 9000);
    CHECK(u.path == "/base/path");
    CHECK(u.query == "x=y&z");
    CHECK(u.host_header() == "127.0.0.1:9000");
    CHECK(u.origin() == "http://127.0.0.1:9000");

    u = http::parse_url("http://[::1]:9000", ec);
    REQUIRE(!ec);
    CHECK(u.host == "::1");
    CHECK(u.host_header() == "[::1]:9000");
    CHECK(u.origin() == "http://[::1]:9000");

    u = http::parse_url("HTTP://Example.com:80?q", ec);
    REQUIRE(!ec);
    CHECK(u.host_header() == "example.com");
    CHECK(u.path == "/");
    CHECK(u.query == "q");

    u = http::parse_url("https://[2001:db8::1]", ec);
    REQUIRE(!ec);
    CHECK(u.port == 443);
    CHECK(u.host_header() == "[2001:db8::1]");

    for (const char* bad :
         {"", "example.com", "ftp://example.com", "http://", "http:///path", "http://user:pw@host",
          "http://host:0", "http://host:70000", "http://host:", "http://host:8a", "http://[::1",
          "http://[zz::1]", "http://[::1]x", "http://ho st/", "http://host/\x01", "http://a$b"}) {
        INFO(bad);
        const http::url parsed = http::parse_url(bad, ec);
        CHECK(ec == errc::invalid_config);
        CHECK(parsed.host.empty());
    }
}

TEST_CASE("http GET PUT HEAD DELETE round trips", "[http]") {
    http_test_server server([](const http_exchange& in) {
        http_reply out;
        if (in.method == "GET") {
            out.body = "hello world";
            out.headers.emplace_back("ETag", "\"abc\"");
            out.headers.emplace_back("X-Amz-Meta-Colour", "blue");
        } else if (in.method == "HEAD") {
            out.content_length = 1234; // a HEAD reply announces a body it does not send
        } else if (in.method == "DELETE") {
            out.status = 204;
        }
        return out;
    });
    net::io_context io;
    http::client c(io.get_executor());
    const http::url origin = server.url();

    http::request get = make_request(verb::get, "/bucket/key?versionId=3");
    get.headers.emplace_back("X-Custom", "value");
    const http::response got = run_on(io, c.send(origin, get));
    CHECK(got.status == 200);
    CHECK(got.body == "hello world");
    CHECK(got.header("etag") == "\"abc\"");
    CHECK(got.header("x-amz-meta-colour") == "blue");
    CHECK(got.header("X-Amz-Meta-Colour") == "blue");
    CHECK(got.header("absent").empty());
    CHECK(got.body_bytes == 0);

    const http::response put =
        run_on(io, c.send(origin, make_request(verb::put, "/bucket/key", "payload")));
    CHECK(put.status == 200);
    CHECK(put.body.empty());

    const http::response head = run_on(io, c.send(origin, make_request(verb::head, "/bucket/key")));
    CHECK(head.status == 200);
    CHECK(head.header("content-length") == "1234");
    CHECK(head.body.empty());

    const http::response del =
        run_on(io, c.send(origin, make_request(verb::delete_, "/bucket/key")));
    CHECK(del.status == 204);

    const std::vector<http_exchange> seen = server.received();
    REQUIRE(seen.size() == 4);
    CHECK(seen[0].method == "GET");
    CHECK(seen[0].target == "/bucket/key?versionId=3");
    CHECK(seen[0].header("x-custom") == "value");
    CHECK(seen[0].header("host") == "127.0.0.1:" + std::to_string(server.port()));
    CHECK(seen[0].header("user-agent").starts_with("skyvol/"));
    CHECK(seen[0].header("content-length").empty());
    CHECK(seen[1].method == "PUT");
    CHECK(seen[1].body == "payload");
    CHECK(seen[1].header("content-length") == "7");
    CHECK(seen[2].method == "HEAD");
    CHECK(seen[3].method == "DELETE");
    CHECK(server.connections() == 1);
}

TEST_CASE("http keep-alive reuses one connection", "[http]") {
    http_test_server server([](const http_exchange& in) {
        http_reply out;
        out.body = "reply to " + in.target;
        return out;
    });
    net::io_context io;
    http::client c(io.get_executor());
    for (int i = 0; i < 10; ++i) {
        const std::string target = "/k" + std::to_string(i);
        const http::response r = run_on(io, c.send(server.url(), make_request(verb::get, target)));
        CHECK(r.body == "reply to " + target);
    }
    CHECK(server.requests() == 10);
    CHECK(server.connections() == 1);
}

TEST_CASE("http pool bounds the connections per host", "[http]") {
    http_test_server server([](const http_exchange&) {
        http_reply out;
        out.delay = std::chrono::milliseconds(40);
        out.body = "ok";
        return out;
    });
    net::thread_pool pool(4);
    http::client_options o;
    o.max_connections_per_host = 4;
    http::client c(pool.get_executor(), o);
    std::vector<std::future<http::response>> replies;
    for (int i = 0; i < 20; ++i)
        replies.push_back(net::co_spawn(
            pool, c.send(server.url(), make_request(verb::get, "/same")), net::use_future));
    for (auto& reply : replies) {
        const http::response r = reply.get();
        CHECK(r.status == 200);
        CHECK(r.body == "ok");
    }
    CHECK(server.requests() == 20);
    CHECK(server.max_open_connections() <= 4);
    CHECK(server.max_open_connections() >= 2);
    CHECK(server.connections() <= 4);
}

TEST_CASE("http retries 503 then succeeds", "[http]") {
    std::atomic<int> calls{0};
    http_test_server server([&calls](const http_exchange&) {
        http_reply out;
        if (++calls <= 2) {
            out.status = 503;
            out.body = "<Error><Code>SlowDown</Code></Error>";
        } else {
            out.body = "finally";
        }
        return out;
    });
    log_capture log;
    http::client_options o = quick_options();
    o.log = log.sink();
    net::io_context io;
    http::client c(io.get_executor(), o);
    const http::response r = run_on(io, c.send(server.url(), make_request(verb::get, "/k")));
    CHECK(r.status == 200);
    CHECK(r.body == "finally");
    CHECK(server.requests() == 3);
    CHECK(log.count("retrying GET") == 2);
    CHECK(log.count("status 503") == 2);
    // Kept alive across the retries: the 503s carried bodies and a length.
    CHECK(server.connections() == 1);
}

TEST_CASE("http retries what retryable_response accepts", "[http]") {
    std::atomic<int> calls{0};
    http_test_server server([&calls](const http_exchange&) {
        http_reply out;
        if (++calls == 1) {
            out.status = 400;
            out.body = "<Error><Code>RequestTimeout</Code></Error>";
        }
        return out;
    });
    http::client_options o = quick_options();
    o.retryable_response = [](const http::response& r) {
        return r.body.find("RequestTimeout") != std::string::npos;
    };
    net::io_context io;
    http::client c(io.get_executor(), o);
    const http::response r = run_on(io, c.send(server.url(), make_request(verb::get, "/k")));
    CHECK(r.status == 200);
    CHECK(server.requests() == 2);
}

TEST_CASE("http never retries a non-idempotent request the server received", "[http]") {
    http_reply scripted;
    http::client_options o = quick_options();
    o.max_attempts = 3;
    errc expected = errc::connection_failed;
    SECTION("dropped after receipt") {
        SUCCEED("variant: dropped after receipt");
        scripted.drop = true;
    }
    SECTION("no reply in time") {
        SUCCEED("variant: no reply in time");
        scripted.delay = std::chrono::milliseconds(1000);
        o.first_byte_timeout = std::chrono::milliseconds(150);
        expected = errc::timed_out;
    }
    SECTION("a 503 reply") {
        SUCCEED("variant: a 503 reply");
        scripted.status = 503;
    }
    http_test_server server([&scripted](const http_exchange&) { return scripted; });
    net::io_context io;
    http::client c(io.get_executor(), o);

    http::request post = make_request(verb::post, "/k?uploads", "<Complete/>");
    auto send_and_check = [&] {
        if (scripted.status == 503) {
            const http::response r = run_on(io, c.send(server.url(), post));
            CHECK(r.status == 503);
        } else {
            const failure f = failure_of(io, c.send(server.url(), post));
            CHECK(f.code == expected);
        }
    };
    post.idempotent = false;
    send_and_check();
    CHECK(server.requests() == 1);

    // The same request marked idempotent is retried up to max_attempts.
    post.idempotent = true;
    send_and_check();
    CHECK(server.requests() == 4);
}

TEST_CASE("http gives the last 503 once retries are exhausted", "[http]") {
    std::atomic<int> calls{0};
    http_test_server server([&calls](const http_exchange&) {
        http_reply out;
        out.status = 503;
        out.body = "attempt " + std::to_string(++calls);
        return out;
    });
    http::client_options o = quick_options();
    o.max_attempts = 3;
    net::io_context io;
    http::client c(io.get_executor(), o);
    const http::response r = run_on(io, c.send(server.url(), make_request(verb::get, "/k")));
    CHECK(r.status == 503);
    CHECK(r.body == "attempt 3");
    CHECK(server.requests() == 3);
}

TEST_CASE("http max_retry_time bounds the retries", "[http]") {
    http_test_server server([](const http_exchange&) {
        http_reply out;
        out.status = 500;
        return out;
    });
    http::client_options o;
    o.max_attempts = 1000;
    o.base_backoff = std::chrono::milliseconds(30);
    o.max_backoff = std::chrono::milliseconds(30);
    o.max_retry_time = std::chrono::milliseconds(300);
    net::io_context io;
    http::client c(io.get_executor(), o);
    const auto start = std::chrono::steady_clock::now();
    const http::response r = run_on(io, c.send(server.url(), make_request(verb::get, "/k")));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(r.status == 500);
    CHECK(took < std::chrono::seconds(3)); // 1000 attempts would take 30 s
    CHECK(server.requests() >= 2);
    CHECK(server.requests() < 100);
}

TEST_CASE("http connection refused gives connection_failed after bounded attempts", "[http]") {
    log_capture log;
    http::client_options o = quick_options();
    o.max_attempts = 3;
    o.log = log.sink();
    net::io_context io;
    http::client c(io.get_executor(), o);
    std::error_code ec;
    const http::url origin =
        http::parse_url("http://127.0.0.1:" + std::to_string(closed_port()), ec);
    REQUIRE(!ec);
    http::request r = make_request(verb::put, "/k", "body");
    SECTION("idempotent") {
        SUCCEED("variant: idempotent");
    }
    // Refused connections never reached the server, so even a POST is retried.
    SECTION("non-idempotent") {
        SUCCEED("variant: non-idempotent");
        r.idempotent = false;
    }
    const auto start = std::chrono::steady_clock::now();
    const failure f = failure_of(io, c.send(origin, r));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    CHECK(f.code == errc::connection_failed);
    CHECK(f.what.find("refused") != std::string::npos);
    CHECK(log.count("retrying PUT") == 2);
}

TEST_CASE("http first-byte timeout gives timed_out", "[http]") {
    http_test_server server([](const http_exchange&) {
        http_reply out;
        out.delay = std::chrono::milliseconds(2000);
        return out;
    });
    http::client_options o = quick_options();
    o.max_attempts = 2;
    o.first_byte_timeout = std::chrono::milliseconds(200);
    net::io_context io;
    http::client c(io.get_executor(), o);
    const auto start = std::chrono::steady_clock::now();
    const failure f = failure_of(io, c.send(server.url(), make_request(verb::get, "/slow")));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(f.code == errc::timed_out);
    CHECK(f.what.find("200 ms") != std::string::npos);
    CHECK(took < std::chrono::milliseconds(1500));
    CHECK(server.requests() == 2);
}

TEST_CASE("http connect timeout gives timed_out and bounds all attempts together", "[http]") {
    // A listener that never accepts: the kernel completes TCP handshakes until its backlog is
    // full, then drops further SYNs.
    net::io_context io;
    net::ip::tcp::acceptor listener(io);
    const net::ip::tcp::endpoint loopback(net::ip::address_v4::loopback(), 0);
    listener.open(loopback.protocol());
    listener.bind(loopback);
    // Five attempts allowed, but connecting has one budget over all of them: a server that
    // never answers fails in about connect_timeout, not in five times it.
    http::client_options o = quick_options();
    o.max_attempts = 5;
    o.connect_timeout = std::chrono::milliseconds(1000);
    std::string scheme = "http";
    std::string mentions = "connecting to";
    std::vector<int> fillers; // plain descriptors: Asio's connect would wait for the handshake
    SECTION("no answer to the TCP handshake") {
        SUCCEED("variant: no answer to the TCP handshake");
        listener.listen(0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(listener.local_endpoint().port());
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < 4; ++i) {
            fillers.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            (void)::connect(fillers.back(), reinterpret_cast<const sockaddr*>(&to), sizeof to);
        }
    }
    SECTION("no answer to the TLS handshake") {
        SUCCEED("variant: no answer to the TLS handshake");
        listener.listen();
        scheme = "https";
        mentions = "TLS handshake";
    }
    http::client c(io.get_executor(), o);
    std::error_code ec;
    const http::url origin = http::parse_url(
        scheme + "://127.0.0.1:" + std::to_string(listener.local_endpoint().port()), ec);
    REQUIRE(!ec);
    const auto start = std::chrono::steady_clock::now();
    const failure f = failure_of(io, c.send(origin, make_request(verb::get, "/k")));
    const auto took = std::chrono::steady_clock::now() - start;
    INFO(f.what);
    CHECK(f.code == errc::timed_out);
    CHECK(f.what.find(mentions) != std::string::npos);
    CHECK(f.what.find("connecting has 1000 ms in all") != std::string::npos);
    CHECK(took >= std::chrono::milliseconds(900));
    // Far below five attempts of 1 s each (the old bound), the kernel's SYN retries (minutes)
    // or a TLS peer that never answers, and loose enough for a sanitizer on a loaded machine.
    CHECK(took < std::chrono::milliseconds(3500));
    for (int fd : fillers)
        ::close(fd);
}

TEST_CASE("http malformed replies give protocol_error", "[http]") {
    http_reply scripted;
    std::string mentions;
    std::size_t expected_requests = 1; // parse errors are not retried
    SECTION("malformed status line") {
        SUCCEED("variant: malformed status line");
        scripted.raw = "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n";
    }
    SECTION("not HTTP at all") {
        SUCCEED("variant: not HTTP at all");
        scripted.raw = "SSH-2.0-OpenSSH_9.2p1\r\n\r\n";
    }
    SECTION("bad chunk size") {
        SUCCEED("variant: bad chunk size");
        scripted.raw =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    }
    SECTION("truncated body") {
        SUCCEED("variant: truncated body");
        scripted.body = std::string(100, 'x');
        scripted.body_cut = 40;
        mentions = "40 of 100 bytes";
        expected_requests = 2; // a dropped connection is worth another try
    }
    SECTION("Content-Length larger than the body") {
        SUCCEED("variant: Content-Length larger than the body");
        scripted.body = "short";
        scripted.content_length = 50;
        scripted.close_silently = true;
        mentions = "5 of 50 bytes";
        expected_requests = 2;
    }
    SECTION("connection closed before the head ends") {
        SUCCEED("variant: connection closed before the head ends");
        scripted.raw = "HTTP/1.1 200 OK\r\nContent-Len";
        expected_requests = 2;
    }
    http_test_server server([&scripted](const http_exchange&) { return scripted; });
    http::client_options o = quick_options();
    o.max_attempts = 2;
    net::io_context io;
    http::client c(io.get_executor(), o);
    const failure f = failure_of(io, c.send(server.url(), make_request(verb::get, "/k")));
    INFO(f.what);
    CHECK(f.code == errc::protocol_error);
    if (!mentions.empty()) CHECK(f.what.find(mentions) != std::string::npos);
    CHECK(server.requests() == expected_requests);
}

TEST_CASE("http Content-Length shorter than the body does not poison the connection", "[http]") {
    std::atomic<int> calls{0};
    http_test_server server([&calls](const http_exchange&) {
        http_reply out;
        out.body = ++calls == 1 ? "helloEXTRA" : "second";
        if (calls == 1) out.content_length = 5;
        return out;
    });
    net::io_context io;
    http::client c(io.get_executor());
    const http::response first = run_on(io, c.send(server.url(), make_request(verb::get, "/a")));
    CHECK(first.body == "hello");
    const http::response second = run_on(io, c.send(server.url(), make_request(verb::get, "/b")));
    CHECK(second.status == 200);
    CHECK(second.body == "second");
    CHECK(server.connections() == 2);
}

TEST_CASE("http send_into reads a body into the caller's buffer", "[http]") {
    const std::string object = "0123456789";
    http_reply scripted;
    scripted.body = object;
    http_test_server server([&scripted, &object](const http_exchange& in) {
        http_reply out = scripted;
        if (in.header("range") == "bytes=2-5") {
            out.status = 206;
            out.body = object.substr(2, 4);
            out.headers.emplace_back("Content-Range", "bytes 2-5/10");
        }
        return out;
    });
    net::io_context io;
    http::client c(io.get_executor());
    std::vector<char> buffer(16, '.');

    SECTION("a ranged body") {
        http::request r = make_request(verb::get, "/k");
        r.headers.emplace_back("Range", "bytes=2-5");
        const http::response got = run_on(io, c.send_into(server.url(), r, net::buffer(buffer)));
        CHECK(got.status == 206);
        CHECK(got.body_bytes == 4);
        CHECK(got.body.empty());
        CHECK(std::string(buffer.data(), 6) == "2345..");
        CHECK(got.header("content-range") == "bytes 2-5/10");
    }
    SECTION("a body that fills the buffer exactly") {
        const http::response got = run_on(
            io, c.send_into(server.url(), make_request(verb::get, "/k"), net::buffer(buffer, 10)));
        CHECK(got.body_bytes == 10);
        CHECK(std::string(buffer.data(), 10) == object);
    }
    SECTION("a chunked body") {
        scripted.chunked = true;
        const http::response got = run_on(
            io, c.send_into(server.url(), make_request(verb::get, "/k"), net::buffer(buffer)));
        CHECK(got.body_bytes == 10);
        CHECK(std::string(buffer.data(), 10) == object);
    }
    SECTION("a body longer than the buffer") {
        const failure f = failure_of(
            io, c.send_into(server.url(), make_request(verb::get, "/k"), net::buffer(buffer, 4)));
        CHECK(f.code == errc::protocol_error);
        CHECK(f.what.find("longer than the 4-byte buffer") != std::string::npos);
        CHECK(server.requests() == 1);
    }
    SECTION("a chunked body longer than the buffer") {
        scripted.chunked = true;
        const failure f = failure_of(
            io, c.send_into(server.url(), make_request(verb::get, "/k"), net::buffer(buffer, 4)));
        CHECK(f.code == errc::protocol_error);
        CHECK(server.requests() == 1);
    }
    SECTION("an error status keeps its body in the response") {
        scripted.status = 404;
        scripted.body = "<Error><Code>NoSuchKey</Code></Error>";
        const http::response got = run_on(
            io, c.send_into(server.url(), make_request(verb::get, "/k"), net::buffer(buffer)));
        CHECK(got.status == 404);
        CHECK(got.body == scripted.body);
        CHECK(got.body_bytes == 0);
        CHECK(std::string(buffer.data(), 16) == std::string(16, '.'));
    }
}

TEST_CASE("http a stale kept-alive connection is replaced", "[http]") {
    log_capture log;
    http::client_options o = quick_options();
    o.max_attempts = 1; // the replacement must not count as an attempt
    o.log = log.sink();
    net::io_context io;
    http::client c(io.get_executor(), o);
    std::atomic<int> calls{0};

    SECTION("the server drops it when the next request arrives") {
        http_test_server server([&calls](const http_exchange&) {
            http_reply out;
            out.drop = ++calls == 2;
            return out;
        });
        CHECK(run_on(io, c.send(server.url(), make_request(verb::get, "/a"))).status == 200);
        CHECK(run_on(io, c.send(server.url(), make_request(verb::get, "/b"))).status == 200);
        CHECK(server.requests() == 3);
        CHECK(server.connections() == 2);
        // Not an attempt, but not silent either.
        CHECK(log.count("debug: sending GET http://127.0.0.1:") == 1);
        CHECK(log.count("/b again on a new connection: the kept-alive one was closed by the "
                        "server") == 1);

        // A non-idempotent request that reached the server is not replayed.
        http::request post = make_request(verb::post, "/c", "x");
        post.idempotent = false;
        calls = 1;
        const failure f = failure_of(io, c.send(server.url(), post));
        CHECK(f.code == errc::connection_failed);
        CHECK(server.requests() == 4);
    }
    SECTION("the server closed it while idle") {
        http_test_server server([](const http_exchange&) {
            http_reply out;
            out.close_silently = true;
            return out;
        });
        CHECK(run_on(io, c.send(server.url(), make_request(verb::get, "/a"))).status == 200);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        http::request post = make_request(verb::post, "/b", "x");
        post.idempotent = false;
        CHECK(run_on(io, c.send(server.url(), post)).status == 200);
        CHECK(server.requests() == 2);
        CHECK(server.connections() == 2);
    }
    CHECK(log.count("retrying") == 0);
}

TEST_CASE("http streams a 64 MiB upload from a file with bounded memory", "[http]") {
    constexpr std::size_t mib = 1 << 20;
    constexpr std::size_t total = 64 * mib;
    skyvol::test::temp_dir dir("skyvol-http");
    const std::string path = (dir.path() / "upload.bin").string();
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
    std::string slice; // bytes [mib + 123, mib + 1123) for the offset check
    {
        std::ofstream out(path, std::ios::binary);
        std::string block(mib, '\0');
        for (std::size_t b = 0; b < total / mib; ++b) {
            for (std::size_t i = 0; i < mib; ++i)
                block[i] = static_cast<char>((i * 31 + b * 7 + (i >> 12)) & 0xff);
            if (b == 1) slice = block.substr(123, 1000);
            EVP_DigestUpdate(sha.get(), block.data(), block.size());
            out.write(block.data(), static_cast<std::streamsize>(block.size()));
        }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    EVP_DigestFinal_ex(sha.get(), digest, &digest_size);
    static const char digits[] = "0123456789abcdef";
    std::string expected_sha;
    for (unsigned i = 0; i < digest_size; ++i) {
        expected_sha += digits[digest[i] >> 4];
        expected_sha += digits[digest[i] & 15];
    }

    http_test_server server([](const http_exchange&) { return http_reply(); });
    net::io_context io;
    http::client c(io.get_executor());
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);

    // A slice at an offset; also warms up the client and server before measuring.
    http::request part = make_request(verb::put, "/part");
    part.body_fd = fd;
    part.body_offset = mib + 123;
    part.body_length = 1000;
    CHECK(run_on(io, c.send(server.url(), part)).status == 200);

    const std::size_t before = resident_bytes();
    const auto start = std::chrono::steady_clock::now();
    http::request whole = make_request(verb::put, "/whole");
    whole.body_fd = fd;
    whole.body_length = total;
    CHECK(run_on(io, c.send(server.url(), whole)).status == 200);
    const auto took = std::chrono::steady_clock::now() - start;
    const std::size_t after = resident_bytes();
    INFO("RSS before " << before / 1024 << " KiB, after " << after / 1024 << " KiB, upload took "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms");
    CHECK(after < before + 16 * mib);

    // A file shorter than the announced length is a local I/O error, not a retry.
    http::request too_long = make_request(verb::put, "/short");
    too_long.body_fd = fd;
    too_long.body_offset = total - 10;
    too_long.body_length = 100;
    const failure f = failure_of(io, c.send(server.url(), too_long));
    CHECK(f.code == errc::io_error);
    ::close(fd);

    const std::vector<http_exchange> seen = server.received();
    REQUIRE(seen.size() >= 2);
    CHECK(seen[0].body == slice);
    CHECK(seen[0].header("content-length") == "1000");
    CHECK(seen[1].body_size == total);
    CHECK(seen[1].header("content-length") == std::to_string(total));
    CHECK(seen[1].body_sha256 == expected_sha);
    CHECK(seen.size() == 2);
}

TEST_CASE("http TLS verifies certificates and host names", "[http]") {
    skyvol::test::temp_dir dir("skyvol-http-tls");
    const skyvol::test::tls_files good = skyvol::test::make_self_signed(
        dir.path(), "good", "localhost", "DNS:localhost,IP:127.0.0.1");
    scoped_env no_bundle("AWS_CA_BUNDLE", nullptr);
    scoped_env no_cert_file("SSL_CERT_FILE", nullptr);
    http_reply scripted;
    scripted.body = "secret stuff";
    net::io_context io;

    SECTION("a self-signed certificate is refused by default") {
        http_test_server server([&scripted](const http_exchange&) { return scripted; }, &good);
        http::client c(io.get_executor(), quick_options());
        const failure f = failure_of(io, c.send(server.url(), make_request(verb::get, "/k")));
        INFO(f.what);
        CHECK(f.code == errc::connection_failed);
        CHECK(f.what.find("verification failed") != std::string::npos);
        CHECK(server.connections() == 1); // not retried
        CHECK(server.requests() == 0);
    }
    SECTION("the certificate is accepted once ca_file names it") {
        http_test_server server([&scripted](const http_exchange&) { return scripted; }, &good);
        http::client_options o;
        o.ca_file = good.cert;
        http::client c(io.get_executor(), o);
        for (int i = 0; i < 3; ++i) {
            const http::response r =
                run_on(io, c.send(server.url(), make_request(verb::get, "/k")));
            CHECK(r.status == 200);
            CHECK(r.body == "secret stuff");
        }
        std::error_code ec;
        const http::url by_name =
            http::parse_url("https://localhost:" + std::to_string(server.port()), ec);
        CHECK(run_on(io, c.send(by_name, make_request(verb::put, "/k", "data"))).status == 200);
        CHECK(server.connections() == 2); // one per host name
        CHECK(server.received().back().header("host") ==
              "localhost:" + std::to_string(server.port()));
    }
    SECTION("AWS_CA_BUNDLE names the CA when ca_file is empty") {
        http_test_server server([&scripted](const http_exchange&) { return scripted; }, &good);
        scoped_env bundle("AWS_CA_BUNDLE", good.cert.c_str());
        http::client c(io.get_executor());
        CHECK(run_on(io, c.send(server.url(), make_request(verb::get, "/k"))).status == 200);
    }
    SECTION("a certificate for another host name is refused even with its CA") {
        const skyvol::test::tls_files other = skyvol::test::make_self_signed(
            dir.path(), "other", "other.example", "DNS:other.example");
        http_test_server server([&scripted](const http_exchange&) { return scripted; }, &other);
        http::client_options o = quick_options();
        o.ca_file = other.cert;
        http::client c(io.get_executor(), o);
        const failure f = failure_of(io, c.send(server.url(), make_request(verb::get, "/k")));
        INFO(f.what);
        CHECK(f.code == errc::connection_failed);
        CHECK(f.what.find("verification failed") != std::string::npos);
        CHECK(f.what.find("mismatch") != std::string::npos);
        std::error_code ec;
        const http::url by_name =
            http::parse_url("https://localhost:" + std::to_string(server.port()), ec);
        const failure g = failure_of(io, c.send(by_name, make_request(verb::get, "/k")));
        CHECK(g.code == errc::connection_failed);
        CHECK(g.what.find("mismatch") != std::string::npos);
        CHECK(server.requests() == 0);
    }
    SECTION("verify_peer off accepts anything and says so") {
        http_test_server server([&scripted](const http_exchange&) { return scripted; }, &good);
        log_capture log;
        http::client_options o;
        o.verify_peer = false;
        o.log = log.sink();
        http::client c(io.get_executor(), o);
        CHECK(log.count("warning: TLS certificate verification is off") == 1);
        const http::response r = run_on(io, c.send(server.url(), make_request(verb::get, "/k")));
        CHECK(r.status == 200);
        CHECK(r.body == "secret stuff");
    }
    SECTION("an unreadable AWS_CA_BUNDLE fails the first https request") {
        http_test_server server([&scripted](const http_exchange&) { return scripted; }, &good);
        const std::string missing = (dir.path() / "missing-bundle.pem").string();
        scoped_env bundle("AWS_CA_BUNDLE", missing.c_str());
        http::client c(io.get_executor(), quick_options());
        const failure f = failure_of(io, c.send(server.url(), make_request(verb::get, "/k")));
        CHECK(f.code == errc::invalid_config);
        CHECK(f.what.find("AWS_CA_BUNDLE names the CA file '" + missing +
                          "', which cannot be read: No such file or directory") !=
              std::string::npos);
        CHECK(f.what.find("[") == std::string::npos); // no "[std:skyvol:22]"
        CHECK(server.connections() == 0);
        // load_tls tells it before any request.
        http::client early(io.get_executor(), quick_options());
        CHECK_THROWS_WITH(early.load_tls(), Catch::Contains("AWS_CA_BUNDLE names"));
    }
    SECTION("an unreadable ca_file is a configuration error") {
        http::client_options o;
        o.ca_file = (dir.path() / "missing.pem").string();
        try {
            http::client c(io.get_executor(), o);
            FAIL("the client accepted a missing CA file");
        } catch (const boost::system::system_error& e) {
            CHECK(std::error_code(e.code()) == errc::invalid_config);
            CHECK(std::string(e.what()).find("missing.pem") != std::string::npos);
        }
    }
}

TEST_CASE("http shutdown cancels waiting sends", "[http]") {
    http_test_server server([](const http_exchange&) {
        http_reply out;
        out.delay = std::chrono::milliseconds(300);
        return out;
    });
    http::client_options o;
    o.max_connections_per_host = 1;
    net::io_context io;
    http::client c(io.get_executor(), o);
    auto first =
        net::co_spawn(io, c.send(server.url(), make_request(verb::get, "/1")), net::use_future);
    auto second =
        net::co_spawn(io, c.send(server.url(), make_request(verb::get, "/2")), net::use_future);
    auto stop =
        net::co_spawn(io, shutdown_after(&c, std::chrono::milliseconds(100)), net::use_future);
    io.run();
    stop.get();
    CHECK(first.get().status == 200);
    try {
        (void)second.get();
        FAIL("the waiting send was not cancelled");
    } catch (const boost::system::system_error& e) {
        CHECK(std::error_code(e.code()) == errc::cancelled);
    }
    const failure f = failure_of(io, c.send(server.url(), make_request(verb::get, "/3")));
    CHECK(f.code == errc::cancelled);
    CHECK(server.requests() == 1);
}

TEST_CASE("http never logs credentials", "[http]") {
    http_reply scripted;
    scripted.status = 503;
    SECTION("retried responses") {
        SUCCEED("variant: retried responses");
    }
    SECTION("failures") {
        SUCCEED("variant: failures");
        scripted.drop = true;
    }
    http_test_server server([&scripted](const http_exchange&) { return scripted; });
    log_capture log;
    http::client_options o = quick_options();
    o.max_attempts = 2;
    o.log = log.sink();
    net::io_context io;
    http::client c(io.get_executor(), o);
    http::request r = make_request(
        verb::get, "/b/k?X-Amz-Credential=AKIDEXAMPLE%2F20240101&X-Amz-Security-Token=QUERYSECRET"
                   "&X-Amz-Signature=SIGSECRET&partNumber=1");
    r.headers.emplace_back("Authorization",
                           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101, Signature=HEADERSIG");
    r.headers.emplace_back("x-amz-security-token", "HEADERSECRET");
    std::string what;
    try {
        (void)run_on(io, c.send(server.url(), r));
    } catch (const boost::system::system_error& e) {
        what = e.what();
    }
    CHECK(log.count("retrying GET") == 1);
    CHECK(log.count("partNumber=1") == 1);
    CHECK(log.count("X-Amz-Security-Token=***") == 1);
    std::vector<std::string> texts = log.lines();
    texts.push_back(what);
    for (const auto& text : texts) {
        INFO(text);
        for (const char* secret :
             {"AKIDEXAMPLE", "QUERYSECRET", "SIGSECRET", "HEADERSIG", "HEADERSECRET"})
            CHECK(text.find(secret) == std::string::npos);
    }
    // The server did get them.
    CHECK(server.received().front().header("x-amz-security-token") == "HEADERSECRET");
}
