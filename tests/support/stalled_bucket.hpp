#ifndef SKYVOL_TESTS_SUPPORT_STALLED_BUCKET_HPP
#define SKYVOL_TESTS_SUPPORT_STALLED_BUCKET_HPP

// A scripted S3 endpoint whose answers for some keys never come in a test's time, for tests of
// cancellation and interrupts: HEAD of "stalled-head" and GET of "stalled.bin" wait two minutes,
// HEAD of "stalled.bin" says 4096 bytes at once, PUTs take a second, listings are empty and
// everything else is not there.

#include "http_test_server.hpp"

#include <skyvol/auth/credentials.hpp>
#include <skyvol/store/s3_options.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace skyvol::test {

inline constexpr std::uint64_t stalled_object_size = 4096;

inline http_reply stalled_bucket_reply(const http_exchange& in) {
    using namespace std::chrono_literals;
    const auto names = [&](std::string_view key) {
        const auto query = in.target.find('?');
        const std::string_view path = std::string_view(in.target).substr(0, query);
        return path.ends_with("/" + std::string(key));
    };
    http_reply reply;
    if (in.method == "HEAD" && names("stalled-head")) {
        reply.delay = 120s;
        reply.status = 404;
    } else if (in.method == "HEAD" && names("stalled.bin")) {
        reply.content_length = stalled_object_size;
        reply.headers.emplace_back("ETag", "\"stalled\"");
        reply.headers.emplace_back("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT");
    } else if (in.method == "GET" && names("stalled.bin")) {
        reply.delay = 120s;
        reply.body = std::string(stalled_object_size, 's');
    } else if (in.method == "PUT") {
        reply.delay = 1s;
        reply.headers.emplace_back("ETag", "\"put\"");
    } else if (in.method == "GET" && in.target.find("list-type=2") != std::string::npos) {
        reply.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>stalled"
                     "</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false"
                     "</IsTruncated></ListBucketResult>";
    } else if (in.method == "HEAD") {
        reply.status = 404;
    } else {
        reply.status = 500;
    }
    return reply;
}

/// Options for an s3_store on `server`.
inline s3_options stalled_bucket_options(const http_test_server& server) {
    s3_options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    o.credentials = auth::credentials{"AKIDSTALLED", "stalled-secret", {}, std::nullopt};
    return o;
}

/// Waits up to 20 s until `server` has received a `method` request whose target contains
/// `fragment`, `count` of them.
inline bool received_request(const http_test_server& server, std::string_view method,
                             std::string_view fragment, std::size_t count = 1) {
    for (int i = 0; i < 2000; ++i) {
        std::size_t seen = 0;
        for (const http_exchange& e : server.received())
            if (e.method == method && e.target.find(fragment) != std::string::npos) ++seen;
        if (seen >= count) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

} // namespace skyvol::test

#endif
