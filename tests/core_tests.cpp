// Errors, errno mapping and key validation: the pieces every layer above relies on.

#include <skyvol/detail/json_duplicates.hpp>
#include <skyvol/detail/md5.hpp>
#include <skyvol/detail/redact.hpp>
#include <skyvol/detail/run.hpp>
#include <skyvol/detail/single_flight.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/detail/parallel.hpp>
#include <skyvol/store/detail/local_files.hpp>
#include <skyvol/store/key.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#include <catch2/catch.hpp>
#include <openssl/evp.h>

#include <cerrno>
#include <future>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace skyvol::test {

TEST_CASE("errors: skyvol codes compare through std and Asio error codes", "[error]") {
    std::error_code ec = errc::not_found;
    CHECK(ec == errc::not_found);
    CHECK(ec != errc::already_exists);
    CHECK(ec.category().name() == std::string("skyvol"));
    CHECK(ec.message() == "not found");
    // Asio's completion handlers carry boost::system::error_code; the code must survive the trip.
    boost::system::error_code asio_ec = ec;
    CHECK(asio_ec == errc::not_found);
    CHECK(std::error_code(asio_ec) == errc::not_found);
    try {
        throw boost::system::system_error(asio_ec);
    } catch (const boost::system::system_error& e) {
        CHECK(std::error_code(e.code()) == errc::not_found);
    }
}

TEST_CASE("errors: every code has a message and an errno", "[error]") {
    for (int v = static_cast<int>(errc::not_found); v <= static_cast<int>(errc::cancelled); ++v) {
        const std::error_code ec(v, error_category());
        INFO(v);
        CHECK(ec.message() != "unknown skyvol error");
        CHECK(to_errno(ec) > 0);
    }
    CHECK(to_errno({}) == 0);
    CHECK(to_errno(errc::not_found) == ENOENT);
    CHECK(to_errno(errc::read_only) == EROFS);
    CHECK(to_errno(errc::access_denied) == EACCES);
    CHECK(to_errno(errc::not_empty) == ENOTEMPTY);
    CHECK(to_errno(errc::name_too_long) == ENAMETOOLONG);
    CHECK(to_errno(errc::already_exists) == EEXIST);
    CHECK(to_errno(errc::invalid_key) == EINVAL);
    CHECK(to_errno(errc::protocol_error) == EIO);
    CHECK(to_errno(std::error_code(EXDEV, std::generic_category())) == EXDEV);
    CHECK(to_errno(std::make_error_code(std::future_errc::broken_promise)) == EIO);
}

TEST_CASE("errors: messages name the store, bucket and key", "[error]") {
    const error e(errc::not_found, {"s3", "datasets", "imagenet/train/0001.jpg", "NoSuchKey"});
    const std::string what = e.what();
    CHECK(what.find("s3") != std::string::npos);
    CHECK(what.find("'datasets'") != std::string::npos);
    CHECK(what.find("'imagenet/train/0001.jpg'") != std::string::npos);
    CHECK(what.find("not found") != std::string::npos);
    CHECK(what.find("NoSuchKey") != std::string::npos);
    CHECK(e.code() == errc::not_found);
    CHECK(describe(errc::read_only, {"local", "/srv/b", {}, {}}) ==
          "local: bucket '/srv/b': read-only");
    CHECK_THROWS_AS(detail::throw_if(errc::timed_out, {}), error);
    CHECK_NOTHROW(detail::throw_if({}, {}));
}

TEST_CASE("errors: server text loses credentials and keeps its words", "[error]") {
    using detail::redact_secrets;
    // S3's own messages name tokens and signatures without holding any.
    for (const std::string text :
         {"InvalidToken: The provided token is malformed or otherwise invalid.",
          "ExpiredToken: The provided token has expired.",
          "SignatureDoesNotMatch: The request signature we calculated does not match the "
          "signature you provided. Check your key and signing method.",
          "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.",
          "AuthorizationHeaderMalformed: the region 'us-east-1' is wrong; expecting 'eu-west-1'"})
        CHECK(redact_secrets(text) == text);
    CHECK(redact_secrets("GET /k?X-Amz-Credential=AKID%2F2024&X-Amz-Signature=ab12&x=1") ==
          "GET /k?X-Amz-Credential=****&X-Amz-Signature=****&x=1");
    CHECK(redact_secrets("Authorization: SharedKey devstoreaccount1:c2ln+/= and more") ==
          "Authorization: SharedKey **** and more");
    CHECK(redact_secrets("echo: Authorization: Bearer eyJ0.eyJ1.c2ln") ==
          "echo: Authorization: Bearer ****");
    CHECK(redact_secrets("Authorization: opaque-credential-blob") == "Authorization: ****");
    CHECK(redact_secrets("{\"AccessKeyId\": \"ASIA1\", \"SecretAccessKey\" : \"s/k\", "
                         "\"Token\":\"t\"}") ==
          "{\"AccessKeyId\": \"ASIA1\", \"SecretAccessKey\" : \"****\", \"Token\":\"****\"}");
    CHECK(redact_secrets("<SessionToken>abc</SessionToken><Expiration>2030</Expiration>") ==
          "<SessionToken>****</SessionToken><Expiration>2030</Expiration>");
    CHECK(redact_secrets("the key a+b/c= and a%2Bb%2Fc%3D", {"a+b/c="}) == "the key **** and ****");
    CHECK(redact_secrets("nothing to hide", {"", "absent"}) == "nothing to hide");
}

TEST_CASE("keys: validation shared by every store", "[key]") {
    for (const char* good : {"a", "a/b/c.txt", "dir/", "a..b", "..a", "a/..b/c", ".hidden", "a//b",
                             "with space", "\xc3\xa9", "\xf0\x9f\x98\x80", "a/./b"})
        CHECK_FALSE(validate_key(good));
    CHECK_FALSE(validate_key(std::string(max_key_length, 'k')));
    for (std::string bad :
         {std::string(), std::string(".."), std::string("../a"), std::string("a/.."),
          std::string("a/../b"), std::string("/a"), std::string("a\0b", 3),
          std::string(max_key_length + 1, 'k'), std::string("\xff"), std::string("\xc0\xaf"),
          std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"), std::string("\xe2\x82")}) {
        INFO(bad.size());
        CHECK(validate_key(bad) == errc::invalid_key);
    }
    CHECK_FALSE(validate_prefix(""));
    CHECK(validate_prefix("../") == errc::invalid_key);
}

TEST_CASE("keys: what a file tree cannot hold is refused by the local store", "[key]") {
    using detail::validate_local_key;
    CHECK_FALSE(validate_local_key("a/b/c"));
    CHECK_FALSE(validate_local_key("a/b/"));
    CHECK_FALSE(validate_local_key(".skyvol.sysx"));
    CHECK_FALSE(validate_local_key("x/.skyvol.sys"));
    for (const char* bad :
         {"a//b", "./a", "a/./b", "a/.", "/", ".skyvol.sys", ".skyvol.sys/x", "a//"})
        CHECK(validate_local_key(bad) == errc::invalid_key);
    CHECK(validate_local_key(std::string(256, 'n')) == errc::name_too_long);
    CHECK_FALSE(validate_local_key(std::string(255, 'n')));
}

TEST_CASE("local store attributes: encoding round-trips any text", "[key]") {
    detail::stored_attributes a;
    a.content_type = "text/plain; charset=utf-8";
    a.etag = "abc-2";
    a.size = 123456789012ull;
    a.mtime_ns = 1700000000123456789ll;
    a.marker = true;
    a.metadata = {{"k=v", "line1\nline2"}, {"pct", "100%"}, {"cr", "a\rb"}};
    detail::stored_attributes b;
    REQUIRE(b.decode(a.encode()));
    CHECK(b.content_type == a.content_type);
    CHECK(b.etag == a.etag);
    CHECK(b.size == a.size);
    CHECK(b.mtime_ns == a.mtime_ns);
    CHECK(b.marker);
    CHECK(b.metadata == a.metadata);
    detail::stored_attributes c;
    CHECK_FALSE(c.decode("garbage"));
    CHECK_FALSE(c.decode("v=1\nct=%4"));
    CHECK_FALSE(c.decode("v=1\nno-equals-sign\n"));
}

TEST_CASE("json: a key given twice in one object is found by its path", "[key]") {
    using detail::scan_json_keys;
    CHECK_FALSE(scan_json_keys(R"({"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]})").duplicate);
    CHECK(scan_json_keys(R"({"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]})").members == 6);
    CHECK(scan_json_keys(R"({"a": 1, "a": 2})").duplicate == "a");
    CHECK(scan_json_keys(R"([{"x": 1}, {"p": 1, "p": [1]}])").duplicate == "[1].p");
    CHECK(scan_json_keys(R"({"mounts": [{}, {"o": {"k": 1, "k": 2}}]})").duplicate ==
          "mounts[1].o.k");
    CHECK(scan_json_keys(R"({"m": [[1, 2], {"z": 0, "\u007a": 1}]})").duplicate == "m[1].z");
    // The first duplicate is named, also after a nested one.
    CHECK(scan_json_keys(R"({"a": {"b": 1, "b": 2}, "a": 3})").duplicate == "a.b");
    CHECK_FALSE(scan_json_keys(R"({"a": 1, "b": )").duplicate); // not JSON: the parse says so
}

TEST_CASE("md5: RFC 1321's examples, and OpenSSL's digest of any input fed in any pieces",
          "[md5]") {
    auto digest_of = [](std::string_view text) {
        detail::md5 m;
        m.update(text.data(), text.size());
        return detail::to_hex(m.finish());
    };
    // RFC 1321, A.5.
    CHECK(digest_of("") == "d41d8cd98f00b204e9800998ecf8427e");
    detail::md5 nothing; // an empty buffer's data() may be null: the local store's empty files
    nothing.update(nullptr, 0);
    CHECK(detail::to_hex(nothing.finish()) == "d41d8cd98f00b204e9800998ecf8427e");
    CHECK(digest_of("a") == "0cc175b9c0f1b6a831c399e269772661");
    CHECK(digest_of("abc") == "900150983cd24fb0d6963f7d28e17f72");
    CHECK(digest_of("message digest") == "f96b697d7cb7938d525a2f31aaf161d0");
    CHECK(digest_of("abcdefghijklmnopqrstuvwxyz") == "c3fcd3d76192e4007dfb496cca67e13b");
    CHECK(digest_of("12345678901234567890123456789012345678901234567890123456789012345678901234"
                    "567890") == "57edf4a22be3c955ac49da2e2107b67a");

    std::mt19937 rng(1321);
    for (int round = 0; round < 2000; ++round) {
        // Every length around the 56- and 64-byte padding edges, then longer ones.
        std::vector<unsigned char> data(round < 200 ? static_cast<std::size_t>(round)
                                                    : rng() % 5000);
        for (auto& c : data)
            c = static_cast<unsigned char>(rng());
        detail::md5 m;
        for (std::size_t at = 0; at < data.size();) {
            const std::size_t piece = std::min<std::size_t>(data.size() - at, rng() % 150);
            m.update(data.data() + at, piece);
            at += piece;
        }
        const detail::md5_digest ours = m.finish();
        detail::md5_digest theirs{};
        unsigned int length = 0;
        REQUIRE(EVP_Digest(data.data(), data.size(), theirs.data(), &length, EVP_md5(), nullptr) ==
                1);
        INFO(data.size() << " bytes");
        REQUIRE(ours == theirs);
    }
}

TEST_CASE("cancellation: a shared fetch and a worker group stay whole when a caller is "
          "cancelled",
          "[core]") {
    namespace asio = boost::asio;
    constexpr auto terminal = asio::cancellation_type::terminal;
    asio::io_context io;
    auto forever = [&]() -> asio::awaitable<void> {
        asio::steady_timer never(io, asio::steady_timer::time_point::max());
        auto [ec] = co_await never.async_wait(asio::as_tuple(asio::use_awaitable));
        (void)ec;
    };

    // A cancelled leader of a single_flight does not pass its cancellation to a follower: the
    // follower fetches on its own.
    detail::single_flight<int> flights;
    auto stalled = [&]() -> asio::awaitable<int> {
        asio::steady_timer never(io, asio::steady_timer::time_point::max());
        co_await never.async_wait(asio::use_awaitable);
        co_return 1;
    };
    auto immediate = []() -> asio::awaitable<int> { co_return 2; };
    asio::cancellation_signal stop_leader;
    std::error_code leader;
    std::optional<int> follower;
    asio::co_spawn(
        io, flights.run("key", stalled()),
        asio::bind_cancellation_slot(stop_leader.slot(), [&](std::exception_ptr ep, int) {
            leader = detail::error_from(ep);
        }));
    asio::co_spawn(io, flights.run("key", immediate()), [&](std::exception_ptr ep, int value) {
        if (!ep) follower = value;
    });
    io.poll();
    stop_leader.emit(terminal);
    io.run_for(std::chrono::seconds(5));
    CHECK(leader == std::errc::operation_canceled);
    CHECK(follower == 2);

    // A worker group's caller returns only once its workers, which use its frame, have ended;
    // they are cancelled with it.
    io.restart();
    std::size_t ended = 0, ended_at_return = 0;
    auto group = [&]() -> asio::awaitable<void> {
        auto worker = [&]() -> asio::awaitable<void> {
            co_await forever();
            ++ended;
        };
        try {
            co_await detail::run_workers(3, worker);
        } catch (...) {
            ended_at_return = ended;
            throw;
        }
        ended_at_return = ended;
    };
    asio::cancellation_signal stop_group;
    std::error_code caller;
    asio::co_spawn(io, group(),
                   asio::bind_cancellation_slot(stop_group.slot(), [&](std::exception_ptr ep) {
                       caller = detail::error_from(ep);
                   }));
    io.poll();
    stop_group.emit(terminal);
    io.run_for(std::chrono::seconds(5));
    CHECK(caller == std::errc::operation_canceled);
    CHECK(ended == 3);
    CHECK(ended_at_return == 3);
}

} // namespace skyvol::test
