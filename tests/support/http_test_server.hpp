#ifndef SKYVOL_TESTS_SUPPORT_HTTP_TEST_SERVER_HPP
#define SKYVOL_TESTS_SUPPORT_HTTP_TEST_SERVER_HPP

// A scriptable HTTP/1.1 server on 127.0.0.1 (plain or TLS) for the client's tests. It runs on
// its own thread; a handler decides each reply (status, delay, a wrong Content-Length, a body
// cut short, a dropped connection, raw bytes) and the server records what it received and how
// many connections it saw. Request bodies are hashed as they stream in, never held whole.

#include <skyvol/http/url.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/optional/optional.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace skyvol::test {

/// One request as the server received it.
struct http_exchange {
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers; ///< names lower-cased
    std::uint64_t body_size = 0;
    std::string body;           ///< the first MiB of the body
    std::string body_sha256;    ///< hex
    std::size_t connection = 0; ///< which accepted connection carried it, from 1

    std::string header(std::string_view lower_name) const {
        for (const auto& [name, value] : headers)
            if (name == lower_name) return value;
        return {};
    }
};

/// What the server does with a request.
struct http_reply {
    unsigned status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::chrono::milliseconds delay{0};          ///< wait before replying
    std::optional<std::uint64_t> content_length; ///< announce this instead of body.size()
    std::optional<std::size_t> body_cut;         ///< send only this many body bytes, then close
    bool chunked = false;                        ///< send the body with chunked encoding
    bool close = false;                          ///< say Connection: close, then close
    bool close_silently = false;                 ///< close after replying without saying so
    bool drop = false;                           ///< close without replying
    std::string raw;                             ///< send these bytes instead, then close
};

using http_handler = std::function<http_reply(const http_exchange&)>;

/// A certificate and its key, PEM files.
struct tls_files {
    std::string cert;
    std::string key;
};

/// A self-signed certificate for `subject_alt_names` ("DNS:localhost,IP:127.0.0.1") made with
/// the openssl tool in `dir`.
inline tls_files make_self_signed(const std::filesystem::path& dir, const std::string& name,
                                  const std::string& common_name,
                                  const std::string& subject_alt_names) {
    tls_files f{(dir / (name + ".crt")).string(), (dir / (name + ".key")).string()};
    const std::string command =
        "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=" + common_name +
        " -addext subjectAltName=" + subject_alt_names + " -days 1 -keyout '" + f.key + "' -out '" +
        f.cert + "' >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0)
        throw std::runtime_error("openssl could not make a certificate: " + command);
    return f;
}

inline std::string status_reason(unsigned status) {
    const auto text =
        boost::beast::http::obsolete_reason(boost::beast::http::int_to_status(status));
    return text.empty() ? std::string("Whatever") : std::string(text);
}

class http_test_server {
public:
    explicit http_test_server(http_handler handler, const tls_files* tls = nullptr)
        : state_(std::make_shared<state>()) {
        state_->handler = std::move(handler);
        if (tls) {
            state_->tls.emplace(boost::asio::ssl::context::tls_server);
            state_->tls->use_certificate_chain_file(tls->cert);
            state_->tls->use_private_key_file(tls->key, boost::asio::ssl::context::pem);
        }
        boost::asio::ip::tcp::acceptor acceptor(
            io_, boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
        port_ = acceptor.local_endpoint().port();
        boost::asio::co_spawn(io_, accept_loop(state_, std::move(acceptor)),
                              [](std::exception_ptr) {});
        thread_ = std::thread([this] { io_.run(); });
    }
    http_test_server(const http_test_server&) = delete;
    http_test_server& operator=(const http_test_server&) = delete;
    ~http_test_server() {
        io_.stop();
        thread_.join();
    }

    std::uint16_t port() const noexcept { return port_; }

    /// "http://127.0.0.1:port" (or https), parsed.
    http::url url() const {
        std::error_code ec;
        return http::parse_url(std::string(state_->tls ? "https" : "http") +
                                   "://127.0.0.1:" + std::to_string(port_),
                               ec);
    }

    /// Connections accepted so far.
    std::size_t connections() const {
        std::lock_guard lock(state_->mutex);
        return state_->accepted;
    }
    /// The most connections that were open at once.
    std::size_t max_open_connections() const {
        std::lock_guard lock(state_->mutex);
        return state_->max_open;
    }
    /// Requests received so far (complete with their bodies).
    std::size_t requests() const {
        std::lock_guard lock(state_->mutex);
        return state_->received.size();
    }
    std::vector<http_exchange> received() const {
        std::lock_guard lock(state_->mutex);
        return state_->received;
    }

private:
    using tcp = boost::asio::ip::tcp;
    static constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

    struct state {
        http_handler handler;
        std::optional<boost::asio::ssl::context> tls;
        mutable std::mutex mutex;
        std::size_t accepted = 0;
        std::size_t open = 0;
        std::size_t max_open = 0;
        std::vector<http_exchange> received;
    };

    static std::string hex(const unsigned char* data, std::size_t size) {
        static const char digits[] = "0123456789abcdef";
        std::string out;
        for (std::size_t i = 0; i < size; ++i) {
            out += digits[data[i] >> 4];
            out += digits[data[i] & 15];
        }
        return out;
    }

    static std::string format_head(const http_exchange& in, const http_reply& out) {
        std::string head =
            "HTTP/1.1 " + std::to_string(out.status) + " " + status_reason(out.status) + "\r\n";
        for (const auto& [name, value] : out.headers)
            head += name + ": " + value + "\r\n";
        const bool no_body = out.status == 204 || out.status == 304 || out.status < 200;
        if (out.chunked)
            head += "Transfer-Encoding: chunked\r\n";
        else if (!no_body)
            head +=
                "Content-Length: " + std::to_string(out.content_length.value_or(out.body.size())) +
                "\r\n";
        if (out.close) head += "Connection: close\r\n";
        head += "\r\n";
        (void)in;
        return head;
    }

    static std::string format_body(const http_exchange& in, const http_reply& out) {
        if (in.method == "HEAD" || out.status == 204 || out.status == 304) return {};
        std::string body = out.body;
        if (out.chunked) {
            char size[32];
            std::snprintf(size, sizeof size, "%zx", body.size());
            body = body.empty() ? std::string("0\r\n\r\n")
                                : std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n";
        }
        if (out.body_cut) body.resize(std::min(body.size(), *out.body_cut));
        return body;
    }

    template <class Stream>
    static boost::asio::awaitable<void> serve(std::shared_ptr<state> st, Stream* stream,
                                              std::size_t id) {
        namespace bhttp = boost::beast::http;
        boost::beast::flat_buffer buffer;
        std::vector<char> chunk(64 * 1024);
        for (;;) {
            bhttp::request_parser<bhttp::buffer_body> parser;
            parser.body_limit(boost::none);
            auto [hec, head_bytes] =
                co_await bhttp::async_read_header(*stream, buffer, parser, use_tuple);
            if (hec) break;
            http_exchange in;
            in.method = std::string(parser.get().method_string());
            in.target = std::string(parser.get().target());
            in.connection = id;
            for (const auto& field : parser.get()) {
                std::string name(field.name_string());
                for (char& c : name)
                    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
                in.headers.emplace_back(std::move(name), std::string(field.value()));
            }
            std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sha(EVP_MD_CTX_new(),
                                                                   EVP_MD_CTX_free);
            EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
            bool broken = false;
            while (!parser.is_done()) {
                parser.get().body().data = chunk.data();
                parser.get().body().size = chunk.size();
                auto [bec, n] = co_await bhttp::async_read(*stream, buffer, parser, use_tuple);
                (void)n;
                const std::size_t got = chunk.size() - parser.get().body().size;
                EVP_DigestUpdate(sha.get(), chunk.data(), got);
                in.body_size += got;
                if (in.body.size() < (1u << 20))
                    in.body.append(chunk.data(), std::min(got, (1u << 20) - in.body.size()));
                if (bec && bec != bhttp::error::need_buffer) {
                    broken = true;
                    break;
                }
            }
            if (broken) break;
            unsigned char digest[EVP_MAX_MD_SIZE];
            unsigned int digest_size = 0;
            EVP_DigestFinal_ex(sha.get(), digest, &digest_size);
            in.body_sha256 = hex(digest, digest_size);
            {
                std::lock_guard lock(st->mutex);
                st->received.push_back(in);
            }
            const http_reply out = st->handler(in);
            if (out.delay.count() > 0) {
                auto executor = co_await boost::asio::this_coro::executor;
                boost::asio::steady_timer timer(executor);
                timer.expires_after(out.delay);
                auto [tec] = co_await timer.async_wait(use_tuple);
                (void)tec;
            }
            if (out.drop) break;
            const std::string bytes =
                out.raw.empty() ? format_head(in, out) + format_body(in, out) : out.raw;
            auto [wec, written] =
                co_await boost::asio::async_write(*stream, boost::asio::buffer(bytes), use_tuple);
            (void)written;
            if (wec || !out.raw.empty() || out.close || out.close_silently || out.body_cut ||
                !parser.keep_alive())
                break;
        }
        boost::system::error_code ignored;
        auto& socket = boost::beast::get_lowest_layer(*stream);
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
    }

    static boost::asio::awaitable<void> session(std::shared_ptr<state> st, tcp::socket socket,
                                                std::size_t id) {
        if (st->tls) {
            boost::asio::ssl::stream<tcp::socket> stream(std::move(socket), *st->tls);
            auto [ec] =
                co_await stream.async_handshake(boost::asio::ssl::stream_base::server, use_tuple);
            if (!ec) co_await serve(st, &stream, id);
        } else {
            co_await serve(st, &socket, id);
        }
        std::lock_guard lock(st->mutex);
        --st->open;
    }

    static boost::asio::awaitable<void> accept_loop(std::shared_ptr<state> st,
                                                    tcp::acceptor acceptor) {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec) co_return;
            std::size_t id = 0;
            {
                std::lock_guard lock(st->mutex);
                id = ++st->accepted;
                st->max_open = std::max(st->max_open, ++st->open);
            }
            boost::asio::co_spawn(acceptor.get_executor(), session(st, std::move(socket), id),
                                  [](std::exception_ptr) {});
        }
    }

    boost::asio::io_context io_;
    std::shared_ptr<state> state_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

} // namespace skyvol::test

#endif
