#ifndef SKYVOL_TESTS_STORE_CONFORMANCE_HPP
#define SKYVOL_TESTS_STORE_CONFORMANCE_HPP

// The store conformance suite: what every object store must do, checked through the async API.
//
// Include it after defining SKYVOL_CONFORMANCE_STORES, the fixtures' type names separated by
// commas (each case's name ends with its fixture's, which CTest filters on). A fixture is
// default-constructible, gives a fresh empty bucket in its member `store`, and names
// itself in `static constexpr const char* name`. A new store joins by adding its fixture there.
// A fixture whose server lacks part of the API lists it in `static constexpr server_gaps gaps`.

#include "support/async.hpp"
#include "support/temp_dir.hpp"
#include "support/test_servers.hpp"

#include <skyvol/detail/md5.hpp>
#include <skyvol/detail/posix_file.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/key.hpp>
#include <skyvol/store/object_info.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace skyvol::test {

using boost::asio::awaitable;
using boost::asio::use_awaitable;

// g++ 12 miscompiles brace-initialised temporaries inside co_await expressions (a moved
// std::string ends up pointing into a dead frame), so tests pass these named values instead.
inline const put_options no_options;
inline const list_request everything;

/// The API gaps of a fixture's server: none unless it declares `gaps`.
template <class Fixture>
constexpr server_gaps gaps_of() {
    if constexpr (requires { Fixture::gaps; })
        return Fixture::gaps;
    else
        return server_gaps();
}

/// Deterministic bytes that differ at every offset and between seeds.
inline std::string pattern(std::size_t size, std::uint32_t seed = 1) {
    std::string out(size, '\0');
    std::uint32_t x = seed * 2654435761u + 12345u;
    for (std::size_t i = 0; i < size; ++i) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        out[i] = static_cast<char>(x);
    }
    return out;
}

template <class Store>
awaitable<put_result> put_text(Store& s, std::string key, std::string_view data, put_options opts) {
    auto [ec, result] =
        co_await s.async_put(key, boost::asio::buffer(data), std::move(opts), as_result);
    INFO("put " << key);
    REQUIRE_FALSE(ec);
    co_return result;
}

// Not a default argument: g++ 12 mishandles `= {}` defaults of coroutine parameters.
template <class Store>
awaitable<put_result> put_text(Store& s, std::string key, std::string_view data) {
    return put_text(s, std::move(key), data, put_options());
}

/// The whole object, read in chunks so that multi-chunk reads are exercised.
template <class Store>
awaitable<std::string> get_text(Store& s, std::string key) {
    auto [ec, info] = co_await s.async_head(key, as_result);
    INFO("head " << key << ": " << ec.message());
    REQUIRE_FALSE(ec);
    std::string out(info.size, '\0');
    constexpr std::size_t chunk = 8u << 20;
    for (std::size_t at = 0; at < out.size(); at += chunk) {
        const std::size_t n = std::min(chunk, out.size() - at);
        auto [gec, got] =
            co_await s.async_get(key, at, boost::asio::buffer(out.data() + at, n), as_result);
        REQUIRE_FALSE(gec);
        REQUIRE(got == n);
    }
    co_return out;
}

/// Every key and common prefix of a listing, following continuation tokens.
struct full_listing {
    std::vector<std::string> keys;
    std::vector<std::string> prefixes;
    int pages = 0;
};

template <class Store>
awaitable<full_listing> list_all(Store& s, list_request request, server_gaps gaps) {
    full_listing all;
    do {
        auto [ec, page] = co_await s.async_list(request, as_result);
        REQUIRE_FALSE(ec);
        if (!gaps.prefix_paging || request.delimiter.empty())
            REQUIRE(page.objects.size() + page.common_prefixes.size() <= request.max_keys);
        for (auto& o : page.objects)
            all.keys.push_back(o.key);
        for (auto& p : page.common_prefixes)
            all.prefixes.push_back(p);
        ++all.pages;
        REQUIRE(all.pages < 10000);
        request.continuation_token = page.next_continuation_token;
        request.start_after.clear();
    } while (!request.continuation_token.empty());
    co_return all;
}

// Not a default argument: g++ 12 mishandles `= {}` defaults of coroutine parameters.
template <class Store>
awaitable<full_listing> list_all(Store& s, list_request request) {
    return list_all(s, std::move(request), server_gaps());
}

/// Records in the report which checks a fixture's server cannot take.
inline void skipped_for(const char* fixture, const char* what) {
    WARN(fixture << " server: not checked: " << what);
    SUCCEED();
}

/// Splits at spaces: a list literal that coroutines can hold (see the multipart test).
inline std::vector<std::string> strings(std::string_view words) {
    std::vector<std::string> out;
    for (std::size_t start = 0; start < words.size();) {
        const std::size_t end = std::min(words.find(' ', start), words.size());
        out.emplace_back(words.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

/// "many/007/item-0047": 40 folders of 65 keys for the paging tests.
inline std::string numbered_key(int i) {
    std::string key(32, '\0');
    key.resize(static_cast<std::size_t>(
        std::snprintf(key.data(), key.size(), "many/%03d/item-%04d", i % 40, i)));
    return key;
}

inline std::vector<std::string> hostile_keys() {
    return {"",
            "..",
            "../escape",
            "a/../../escape",
            "a/..",
            "/absolute",
            std::string("nul\0byte", 8),
            std::string(max_key_length + 1, 'k'),
            "bad-utf8-\xff",
            "overlong-\xc0\xaf",
            "surrogate-\xed\xa0\x80",
            "truncated-\xe2\x82"};
}

TEMPLATE_TEST_CASE("store: put, head and get round-trip", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        const std::string data = pattern(100'000, 7);
        const auto before = std::chrono::system_clock::now() - std::chrono::seconds(5);
        put_options opts;
        opts.content_type = "text/x-skyvol";
        const put_result put = co_await put_text(s, "dir/object.bin", data, opts);
        CHECK(put.etag.size() == 32); // MD5 hex: single-part uploads have content ETags

        auto [ec, info] = co_await s.async_head("dir/object.bin", as_result);
        REQUIRE_FALSE(ec);
        CHECK(info.key == "dir/object.bin");
        CHECK(info.size == data.size());
        CHECK(info.etag == put.etag);
        CHECK(info.content_type == "text/x-skyvol");
        CHECK(info.last_modified >= before);
        CHECK(info.last_modified <= std::chrono::system_clock::now() + std::chrono::seconds(5));
        CHECK(co_await get_text(s, "dir/object.bin") == data);

        auto [mec, missing] = co_await s.async_head("dir/missing", as_result);
        CHECK(mec == errc::not_found);
        char byte;
        auto [gec, n] =
            co_await s.async_get("dir/missing", 0, boost::asio::buffer(&byte, 1), as_result);
        CHECK(gec == errc::not_found);
        CHECK(n == 0);
    });
}

TEMPLATE_TEST_CASE("store: ranged gets", "[store][conformance]", SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        const std::string data = pattern(10'000, 3);
        co_await put_text(s, "ranged", data);
        auto read = [&](std::uint64_t offset, std::size_t size) -> awaitable<std::string> {
            std::string out(size, '\0');
            auto [ec, n] =
                co_await s.async_get("ranged", offset, boost::asio::buffer(out), as_result);
            REQUIRE_FALSE(ec);
            out.resize(n);
            co_return out;
        };
        CHECK(co_await read(0, 10) == data.substr(0, 10));           // head of the object
        CHECK(co_await read(4321, 1000) == data.substr(4321, 1000)); // inside
        CHECK(co_await read(9990, 100) == data.substr(9990));        // crossing the end
        CHECK(co_await read(0, 20'000) == data);                     // bigger than the object
        CHECK(co_await read(10'000, 10) == "");                      // at the end
        CHECK(co_await read(50'000, 10) == "");                      // past the end
        CHECK(co_await read(100, 0) == "");                          // zero length

        // Scattered buffers fill in order.
        std::string a(3, '\0'), b(5, '\0');
        std::vector<boost::asio::mutable_buffer> both;
        both.push_back(boost::asio::buffer(a));
        both.push_back(boost::asio::buffer(b));
        auto [ec, n] = co_await s.async_get("ranged", 20, both, as_result);
        REQUIRE_FALSE(ec);
        CHECK(n == 8);
        CHECK(a + b == data.substr(20, 8));
    });
}

TEMPLATE_TEST_CASE("store: overwrite and empty objects", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        const auto first = co_await put_text(s, "k", "first version");
        const auto second = co_await put_text(s, "k", "second");
        CHECK(first.etag != second.etag);
        CHECK(co_await get_text(s, "k") == "second");

        const auto empty = co_await put_text(s, "empty", "");
        CHECK(empty.etag == "d41d8cd98f00b204e9800998ecf8427e");
        auto [ec, info] = co_await s.async_head("empty", as_result);
        REQUIRE_FALSE(ec);
        CHECK(info.size == 0);
        CHECK(co_await get_text(s, "empty") == "");
    });
}

TEMPLATE_TEST_CASE("store: conditional puts", "[store][conformance]", SKYVOL_CONFORMANCE_STORES) {
    if (gaps_of<TestType>().conditional_puts)
        return skipped_for(TestType::name, "If-None-Match and If-Match are ignored");
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        put_options create_only;
        create_only.if_none_match = true;
        const auto v1 = co_await put_text(s, "cond", "one", create_only);
        auto [ec, r] =
            co_await s.async_put("cond", boost::asio::buffer("two", 3), create_only, as_result);
        CHECK(ec == errc::already_exists);
        put_options replace;
        replace.if_match = "0123456789abcdef0123456789abcdef";
        std::tie(ec, r) =
            co_await s.async_put("cond", boost::asio::buffer("two", 3), replace, as_result);
        CHECK(ec == errc::precondition_failed);
        replace.if_match = v1.etag;
        std::tie(ec, r) =
            co_await s.async_put("cond", boost::asio::buffer("two", 3), replace, as_result);
        CHECK_FALSE(ec);
        CHECK(co_await get_text(s, "cond") == "two");
    });
}

TEMPLATE_TEST_CASE("store: 64 MiB object through multipart", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    constexpr server_gaps gaps = gaps_of<TestType>();
    if (gaps.multipart_validation)
        skipped_for(TestType::name, "invalid completions and parts after completion");
    if (gaps.multipart_etags) skipped_for(TestType::name, "the -N ETag of a multipart upload");
    if (gaps.part_order) skipped_for(TestType::name, "a completion listing parts out of order");
    run_async([&]() -> awaitable<void> {
        constexpr std::size_t part_size = multipart_limits::min_part_size;
        const std::string data = pattern((64u << 20) + 12345, 11);
        put_options opts;
        opts.content_type = "application/x-checkpoint";
        opts.metadata = {{"origin", "multipart"}};
        auto [cec, id] = co_await s.async_create_multipart("big/ckpt.pt", opts, as_result);
        REQUIRE_FALSE(cec);
        REQUIRE_FALSE(id.empty());

        std::vector<completed_part> parts;
        int number = 1;
        for (std::size_t at = 0; at < data.size(); at += part_size, ++number) {
            const std::size_t n = std::min(part_size, data.size() - at);
            auto [pec, part] = co_await s.async_upload_part(
                "big/ckpt.pt", id, number, boost::asio::buffer(data.data() + at, n), as_result);
            REQUIRE_FALSE(pec);
            CHECK(part.part_number == number);
            parts.push_back(part);
        }
        REQUIRE(parts.size() == 13);

        // Not a valid completion: a part out of order, then a part with a wrong ETag.
        if (!gaps.multipart_validation && !gaps.part_order) {
            auto swapped = parts;
            std::swap(swapped[0], swapped[1]);
            auto [bad, r0] =
                co_await s.async_complete_multipart("big/ckpt.pt", id, swapped, as_result);
            CHECK(bad == errc::invalid_upload);
        }
        if (!gaps.multipart_validation) {
            auto wrong = parts;
            wrong[2].etag = "00000000000000000000000000000000";
            auto [bad, r0] =
                co_await s.async_complete_multipart("big/ckpt.pt", id, wrong, as_result);
            CHECK(bad == errc::invalid_upload);
        }

        auto [ec, result] =
            co_await s.async_complete_multipart("big/ckpt.pt", id, parts, as_result);
        REQUIRE_FALSE(ec);
        if (!gaps.multipart_etags) CHECK(result.etag.ends_with("-13"));

        auto [hec, info] = co_await s.async_head("big/ckpt.pt", as_result);
        REQUIRE_FALSE(hec);
        CHECK(info.size == data.size());
        CHECK(info.etag == result.etag);
        CHECK(info.content_type == "application/x-checkpoint");
        CHECK(info.metadata == user_metadata{{"origin", "multipart"}});
        // A read that crosses the boundary between parts 3 and 4.
        std::string across(1000, '\0');
        auto [gec, n] = co_await s.async_get("big/ckpt.pt", 3 * part_size - 500,
                                             boost::asio::buffer(across), as_result);
        REQUIRE_FALSE(gec);
        CHECK(n == 1000);
        CHECK(across == data.substr(3 * part_size - 500, 1000));
        CHECK(co_await get_text(s, "big/ckpt.pt") == data);

        // The upload is finished: its id is no longer accepted.
        if (!gaps.multipart_validation) {
            auto [late, p] = co_await s.async_upload_part("big/ckpt.pt", id, 1,
                                                          boost::asio::buffer("x", 1), as_result);
            CHECK(late == errc::invalid_upload);
        }
    });
}

TEMPLATE_TEST_CASE("store: multipart limits and abort", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    constexpr server_gaps gaps = gaps_of<TestType>();
    if (gaps.multipart_validation) skipped_for(TestType::name, "the 5 MiB minimum part size");
    if (gaps.multipart_abort) skipped_for(TestType::name, "abort (the server answers 405)");
    if (gaps.aborted_completion)
        skipped_for(TestType::name, "completing an aborted upload (the server answers 500)");
    run_async([&]() -> awaitable<void> {
        auto [cec, id] = co_await s.async_create_multipart("small-parts", no_options, as_result);
        REQUIRE_FALSE(cec);
        const std::string small = pattern(1024, 5);
        auto [e1, p1] = co_await s.async_upload_part("small-parts", id, 1,
                                                     boost::asio::buffer(small), as_result);
        auto [e2, p2] = co_await s.async_upload_part("small-parts", id, 2,
                                                     boost::asio::buffer(small), as_result);
        REQUIRE_FALSE(e1);
        REQUIRE_FALSE(e2);
        auto [bad_number, p0] = co_await s.async_upload_part("small-parts", id, 0,
                                                             boost::asio::buffer(small), as_result);
        CHECK(bad_number == errc::invalid_argument);
        auto [bad_number2, p10001] = co_await s.async_upload_part(
            "small-parts", id, 10001, boost::asio::buffer(small), as_result);
        CHECK(bad_number2 == errc::invalid_argument);
        // Every part but the last must be at least 5 MiB.
        // (Named vectors: g++ 12 cannot put an initializer list's array in a coroutine frame.)
        std::vector<completed_part> both_parts, first_part;
        both_parts.push_back(p1);
        both_parts.push_back(p2);
        first_part.push_back(p1);
        if (!gaps.multipart_validation) {
            auto [small_ec, r] =
                co_await s.async_complete_multipart("small-parts", id, both_parts, as_result);
            CHECK(small_ec == errc::entity_too_small);
        }

        auto [aec] = co_await s.async_abort_multipart("small-parts", id, as_result);
        if (gaps.multipart_abort) {
            CHECK(aec == errc::not_supported); // a clear error, not a protocol failure
        } else {
            CHECK_FALSE(aec);
            if (!gaps.aborted_completion) {
                auto [after_abort, r] =
                    co_await s.async_complete_multipart("small-parts", id, first_part, as_result);
                CHECK(after_abort == errc::invalid_upload);
            }
            auto [hec, info] = co_await s.async_head("small-parts", as_result);
            CHECK(hec == errc::not_found);
            auto [unknown] =
                co_await s.async_abort_multipart("small-parts", "no-such-upload", as_result);
            CHECK(unknown == errc::invalid_upload);
        }

        // A single (last) small part is a valid upload.
        auto [cec2, id2] = co_await s.async_create_multipart("one-part", no_options, as_result);
        REQUIRE_FALSE(cec2);
        auto [pe, part] =
            co_await s.async_upload_part("one-part", id2, 1, boost::asio::buffer(small), as_result);
        REQUIRE_FALSE(pe);
        std::vector<completed_part> only_part(1, part);
        auto [done, result] =
            co_await s.async_complete_multipart("one-part", id2, only_part, as_result);
        REQUIRE_FALSE(done);
        if (!gaps.multipart_etags) CHECK(result.etag.ends_with("-1"));
        CHECK(co_await get_text(s, "one-part") == small);
    });
}

TEMPLATE_TEST_CASE("store: list with delimiter and prefix", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    constexpr server_gaps gaps = gaps_of<TestType>();
    if (gaps.byte_order_listing) skipped_for(TestType::name, "byte order and start-after");
    run_async([&]() -> awaitable<void> {
        const std::vector<std::string> keys = strings("a.txt b/1 b/2 b/c/3 b-c b0 d/ d/e/f z");
        for (const std::string& key : keys)
            co_await put_text(s, key, key);

        list_request top;
        top.delimiter = "/";
        auto all = co_await list_all(s, top);
        CHECK(all.keys == std::vector<std::string>{"a.txt", "b-c", "b0", "z"});
        CHECK(all.prefixes == std::vector<std::string>{"b/", "d/"});

        list_request under_b;
        under_b.prefix = "b/";
        under_b.delimiter = "/";
        all = co_await list_all(s, under_b);
        CHECK(all.keys == std::vector<std::string>{"b/1", "b/2"});
        CHECK(all.prefixes == std::vector<std::string>{"b/c/"});

        list_request marker;
        marker.prefix = "d/";
        marker.delimiter = "/";
        all = co_await list_all(s, marker);
        CHECK(all.keys == std::vector<std::string>{"d/"}); // the directory marker itself
        CHECK(all.prefixes == std::vector<std::string>{"d/e/"});

        list_request partial;
        partial.prefix = "b";
        partial.delimiter = "/";
        all = co_await list_all(s, partial);
        CHECK(all.keys == std::vector<std::string>{"b-c", "b0"});
        CHECK(all.prefixes == std::vector<std::string>{"b/"});

        list_request flat; // no delimiter: the whole subtree in byte order
        all = co_await list_all(s, flat);
        if (gaps.byte_order_listing) std::sort(all.keys.begin(), all.keys.end());
        CHECK(all.keys == std::vector<std::string>{"a.txt", "b-c", "b/1", "b/2", "b/c/3", "b0",
                                                   "d/", "d/e/f", "z"});
        CHECK(all.prefixes.empty());

        if (!gaps.byte_order_listing) { // start-after follows the server's order
            list_request after;
            after.start_after = "b/2";
            all = co_await list_all(s, after);
            CHECK(all.keys == std::vector<std::string>{"b/c/3", "b0", "d/", "d/e/f", "z"});
        }

        list_request nothing;
        nothing.prefix = "no-such-prefix/";
        nothing.delimiter = "/";
        all = co_await list_all(s, nothing);
        CHECK(all.keys.empty());
        CHECK(all.prefixes.empty());

        // Listings carry sizes and ETags (but no user metadata).
        list_request under_b_page;
        under_b_page.prefix = "b/";
        under_b_page.delimiter = "/";
        auto [ec, page] = co_await s.async_list(under_b_page, as_result);
        REQUIRE_FALSE(ec);
        REQUIRE(page.objects.size() == 2);
        CHECK(page.objects[0].size == 3);
        CHECK_FALSE(page.objects[0].etag.empty());
    });
}

TEMPLATE_TEST_CASE("store: list pagination over 2,600 keys", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    constexpr server_gaps gaps = gaps_of<TestType>();
    if (gaps.prefix_paging) skipped_for(TestType::name, "max-keys over common prefixes");
    if (gaps.any_continuation_token) skipped_for(TestType::name, "a made-up continuation token");
    run_async([&]() -> awaitable<void> {
        std::set<std::string> expected_keys, expected_prefixes;
        for (int i = 0; i < 2600; ++i) {
            const std::string key = numbered_key(i);
            co_await put_text(s, key, "x");
            expected_keys.insert(key);
            expected_prefixes.insert(key.substr(0, 9));
        }
        co_await put_text(s, "many/top-level", "x");

        list_request flat;
        flat.prefix = "many/";
        auto all = co_await list_all(s, flat);
        CHECK(all.pages == 3);
        CHECK(all.keys.size() == 2601);
        CHECK(std::is_sorted(all.keys.begin(), all.keys.end()));
        CHECK(std::adjacent_find(all.keys.begin(), all.keys.end()) == all.keys.end());

        // Small pages across common prefixes: each prefix comes exactly once, in order.
        list_request grouped;
        grouped.prefix = "many/";
        grouped.delimiter = "/";
        grouped.max_keys = 7;
        all = co_await list_all(s, grouped, gaps);
        if (!gaps.prefix_paging) CHECK(all.pages == 6);
        CHECK(all.keys == std::vector<std::string>{"many/top-level"});
        CHECK(all.prefixes ==
              std::vector<std::string>(expected_prefixes.begin(), expected_prefixes.end()));

        list_request one_folder;
        one_folder.prefix = "many/007/";
        one_folder.max_keys = 10;
        all = co_await list_all(s, one_folder);
        CHECK(all.keys.size() == 65);
        CHECK(all.pages == 7);

        if (!gaps.any_continuation_token) {
            list_request bad_token;
            bad_token.continuation_token = "not a token we gave";
            auto [ec, page] = co_await s.async_list(bad_token, as_result);
            CHECK(ec);
        }
    });
}

TEMPLATE_TEST_CASE("store: keys with spaces, unicode and URL-special characters",
                   "[store][conformance]", SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        const std::vector<std::string> keys = {
            "with space/file name.txt",
            "unicode/\xc3\xa9t\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt",
            "emoji/\xf0\x9f\x98\x80",
            "pct/100%25 and %",
            "plus/a+b",
            "eq/k=v",
            "query/what?",
            "hash/#tag",
            "amp/a&b;c",
            "quote/'\"",
            "tilde/~user",
            "star/*",
            "dot.start/.hidden",
            "dots/a..b"};
        for (std::size_t i = 0; i < keys.size(); ++i)
            co_await put_text(s, keys[i], "content " + std::to_string(i));
        for (std::size_t i = 0; i < keys.size(); ++i) {
            INFO(keys[i]);
            CHECK(co_await get_text(s, keys[i]) == "content " + std::to_string(i));
        }
        auto all = co_await list_all(s, everything);
        auto sorted = keys;
        std::sort(sorted.begin(), sorted.end());
        CHECK(all.keys == sorted);
    });
}

TEMPLATE_TEST_CASE("store: copy", "[store][conformance]", SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        put_options opts;
        opts.content_type = "text/plain";
        opts.metadata = {{"mode", "33188"}, {"owner", "training job"}};
        const std::string data = pattern(3000, 2);
        co_await put_text(s, "src/file", data, opts);

        auto [ec, result] = co_await s.async_copy("src/file", "dst/kept", std::nullopt, as_result);
        REQUIRE_FALSE(ec);
        CHECK(co_await get_text(s, "dst/kept") == data);
        auto [hec, kept] = co_await s.async_head("dst/kept", as_result);
        REQUIRE_FALSE(hec);
        CHECK(kept.metadata == opts.metadata);
        CHECK(kept.content_type == "text/plain");

        put_options replaced;
        replaced.content_type = "application/x-new";
        replaced.metadata = {{"mode", "33261"}};
        std::tie(ec, result) = co_await s.async_copy("src/file", "src/file", replaced, as_result);
        REQUIRE_FALSE(ec);
        auto [h2, self] = co_await s.async_head("src/file", as_result);
        REQUIRE_FALSE(h2);
        CHECK(self.metadata == replaced.metadata);
        CHECK(self.content_type == "application/x-new");
        CHECK(co_await get_text(s, "src/file") == data);

        std::tie(ec, result) =
            co_await s.async_copy("src/missing", "dst/x", std::nullopt, as_result);
        CHECK(ec == errc::not_found);
        auto [h3, none] = co_await s.async_head("dst/x", as_result);
        CHECK(h3 == errc::not_found);
    });
}

TEMPLATE_TEST_CASE("store: remove and batch remove", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        co_await put_text(s, "gone/one", "1");
        auto [ec] = co_await s.async_remove("gone/one", as_result);
        CHECK_FALSE(ec);
        auto [hec, info] = co_await s.async_head("gone/one", as_result);
        CHECK(hec == errc::not_found);
        std::tie(ec) = co_await s.async_remove("gone/never-existed", as_result);
        CHECK_FALSE(ec); // S3: removing a missing key succeeds

        std::vector<std::string> batch;
        for (int i = 0; i < 50; ++i) {
            batch.push_back("batch/" + std::to_string(i));
            co_await put_text(s, batch.back(), "b");
        }
        co_await put_text(s, "batch-keep", "k");
        batch.push_back("batch/missing");
        batch.push_back("../evil");
        auto [bec, failures] = co_await s.async_remove_batch(batch, as_result);
        REQUIRE_FALSE(bec);
        REQUIRE(failures.size() == 1);
        CHECK(failures[0].key == "../evil");
        CHECK(failures[0].error == errc::invalid_key);
        auto all = co_await list_all(s, everything);
        CHECK(all.keys == std::vector<std::string>{"batch-keep"});

        std::vector<std::string> too_many(max_batch_remove + 1, "k");
        std::tie(bec, failures) = co_await s.async_remove_batch(too_many, as_result);
        CHECK(bec == errc::invalid_argument);
    });
}

TEMPLATE_TEST_CASE("store: user metadata round trip", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        put_options opts;
        // s3fs's attribute convention, plus names in mixed case and values with spaces.
        opts.metadata = {{"mode", "33188"}, {"mtime", "1700000000"},      {"uid", "1000"},
                         {"gid", "1000"},   {"Content-Origin", "Node 7"}, {"empty", ""}};
        co_await put_text(s, "meta/file", "m", opts);
        auto [ec, info] = co_await s.async_head("meta/file", as_result);
        REQUIRE_FALSE(ec);
        const user_metadata expected = {
            {"mode", "33188"}, {"mtime", "1700000000"},      {"uid", "1000"},
            {"gid", "1000"},   {"content-origin", "Node 7"}, {"empty", ""}};
        CHECK(info.metadata == expected);

        put_options bad;
        bad.metadata = {{"bad name", "x"}};
        auto [bec, r] =
            co_await s.async_put("meta/bad", boost::asio::buffer("x", 1), bad, as_result);
        CHECK(bec == errc::invalid_argument);
        put_options huge;
        huge.metadata = {{"big", std::string(3000, 'v')}};
        std::tie(bec, r) =
            co_await s.async_put("meta/huge", boost::asio::buffer("x", 1), huge, as_result);
        CHECK(bec == errc::entity_too_large);
    });
}

TEMPLATE_TEST_CASE("store: hostile keys are refused and write nothing", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        co_await put_text(s, "legit", "ok");
        for (const std::string& key : hostile_keys()) {
            INFO("key of " << key.size() << " bytes");
            auto [pec, r] =
                co_await s.async_put(key, boost::asio::buffer("x", 1), no_options, as_result);
            CHECK(pec == errc::invalid_key);
            auto [hec, info] = co_await s.async_head(key, as_result);
            CHECK(hec == errc::invalid_key);
            char byte;
            auto [gec, n] = co_await s.async_get(key, 0, boost::asio::buffer(&byte, 1), as_result);
            CHECK(gec == errc::invalid_key);
            auto [rec] = co_await s.async_remove(key, as_result);
            CHECK(rec == errc::invalid_key);
            auto [cec, c] = co_await s.async_copy("legit", key, std::nullopt, as_result);
            CHECK(cec == errc::invalid_key);
            auto [mec, id] = co_await s.async_create_multipart(key, no_options, as_result);
            CHECK(mec == errc::invalid_key);
        }
        auto all = co_await list_all(s, everything);
        CHECK(all.keys == std::vector<std::string>{"legit"});
    });
}

TEMPLATE_TEST_CASE("store: concurrent operations on different keys", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    run_async([&]() -> awaitable<void> {
        auto ex = co_await boost::asio::this_coro::executor;
        constexpr int writers = 16;
        std::vector<std::string> payloads;
        for (int i = 0; i < writers; ++i)
            payloads.push_back(pattern(50'000 + i, i));
        int done = 0;
        for (int i = 0; i < writers; ++i)
            s.async_put("par/" + std::to_string(i), boost::asio::buffer(payloads[i]), no_options,
                        boost::asio::bind_executor(ex, [&done](auto ec, auto) {
                            REQUIRE_FALSE(ec);
                            ++done;
                        }));
        while (done < writers) {
            boost::asio::steady_timer t(ex, std::chrono::milliseconds(2));
            co_await t.async_wait(use_awaitable);
        }
        for (int i = 0; i < writers; ++i)
            CHECK(co_await get_text(s, "par/" + std::to_string(i)) == payloads[i]);
    });
}

/// The MD5 hex of `data`: a single-part object's ETag.
inline std::string md5_hex(std::string_view data) {
    skyvol::detail::md5 digest;
    digest.update(data.data(), data.size());
    return skyvol::detail::to_hex(digest.finish());
}

TEMPLATE_TEST_CASE("store: uploads read straight from a file", "[store][conformance]",
                   SKYVOL_CONFORMANCE_STORES) {
    TestType fixture;
    auto& s = fixture.store;
    if constexpr (!uploads_from_files<std::remove_reference_t<decltype(s)>>) {
        skipped_for(TestType::name, "uploads from files: the store takes bodies from memory");
    } else {
        temp_dir dir;
        const std::string data = pattern(multipart_limits::min_part_size + 300'001, 5);
        std::ofstream(dir.path() / "source", std::ios::binary) << data;
        const skyvol::detail::unique_fd fd(
            ::open((dir.path() / "source").c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        run_async([&]() -> awaitable<void> {
            // A range from the middle of the file: the object holds exactly those bytes.
            const file_range middle{fd.get(), 1000, 300'000};
            auto [ec, put] =
                co_await s.async_put_file("file/middle", middle, no_options, as_result);
            REQUIRE_FALSE(ec);
            CHECK(put.etag == md5_hex(std::string_view(data).substr(1000, 300'000)));
            CHECK(co_await get_text(s, "file/middle") == data.substr(1000, 300'000));

            // Both parts of a multipart upload from the file, the second one shorter.
            auto [cec, id] = co_await s.async_create_multipart("file/parts", no_options, as_result);
            REQUIRE_FALSE(cec);
            const file_range first{fd.get(), 0, multipart_limits::min_part_size};
            const file_range rest{fd.get(), multipart_limits::min_part_size,
                                  data.size() - multipart_limits::min_part_size};
            std::vector<completed_part> parts(2);
            auto [p1, part1] =
                co_await s.async_upload_part_file("file/parts", id, 1, first, as_result);
            auto [p2, part2] =
                co_await s.async_upload_part_file("file/parts", id, 2, rest, as_result);
            REQUIRE_FALSE(p1);
            REQUIRE_FALSE(p2);
            parts[0] = part1;
            parts[1] = part2;
            auto [mec, whole] =
                co_await s.async_complete_multipart("file/parts", id, parts, as_result);
            REQUIRE_FALSE(mec);
            CHECK(co_await get_text(s, "file/parts") == data);

            // A range the file does not hold: an I/O error, and nothing is stored.
            const file_range beyond{fd.get(), data.size() - 10, 100};
            auto [sec, short_put] =
                co_await s.async_put_file("file/short", beyond, no_options, as_result);
            CHECK(sec == errc::io_error);
            auto [hec, info] = co_await s.async_head("file/short", as_result);
            CHECK(hec == errc::not_found);
            auto [uec, id2] =
                co_await s.async_create_multipart("file/short", no_options, as_result);
            REQUIRE_FALSE(uec);
            auto [spec, short_part] =
                co_await s.async_upload_part_file("file/short", id2, 1, beyond, as_result);
            CHECK(spec == errc::io_error);
            // Cleanup only: s3rver answers NoSuchUpload for an upload that holds no part.
            auto [aec] = co_await s.async_abort_multipart("file/short", id2, as_result);
            (void)aec;

            // A hostile key is refused before the file is read.
            auto [kec, refused] =
                co_await s.async_put_file("../escape", middle, no_options, as_result);
            CHECK(kec == errc::invalid_key);
        });
    }
}

} // namespace skyvol::test

#endif
