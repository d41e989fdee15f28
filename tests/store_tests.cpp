// The store conformance suite run against the embedded stores, plus what only the local store
// promises: files a person can read in the bucket folder, and no way out of it.

#include "support/async.hpp"
#include "support/files.hpp"
#include "support/temp_dir.hpp"
#include "support/test_servers.hpp"

#include <skyvol/store/local_store.hpp>
#include <skyvol/store/memory_store.hpp>
#include <skyvol/store/s3_store.hpp>

#include <boost/asio/use_future.hpp>

#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <sys/xattr.h>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace skyvol::test {

struct memory_fixture {
    static constexpr const char* name = "memory";
    memory_store store;
};

struct local_fixture {
    static constexpr const char* name = "local";
    temp_dir dir{"skyvol-local"};
    local_store store{dir.path() / "bucket"};
};

/// A fresh bucket on an S3 test server, one per test.
inline s3_store fresh_bucket(server_kind kind) {
    static std::atomic<int> counter{0};
    test_server& server = shared_server(kind);
    s3_options o;
    o.endpoint = server.endpoint();
    o.credentials = auth::credentials{server.access_key(), server.secret_key(), {}, std::nullopt};
    s3_store s("conformance-" + std::to_string(::getpid()) + "-" + std::to_string(++counter), o);
    s.async_create_bucket(boost::asio::use_future).get();
    return s;
}

/// The test process's s3rver.
struct s3rver_fixture {
    static constexpr const char* name = "s3rver";
    // What s3rver 3.7 does not implement (tests/servers, ../docs/testing.md); the suite says
    // which checks it skips, and the s3 store's own tests cover those paths with stand-ins.
    static constexpr server_gaps gaps = {.conditional_puts = true,
                                         .multipart_validation = true,
                                         .multipart_etags = true,
                                         .byte_order_listing = true,
                                         .prefix_paging = true,
                                         .multipart_abort = true};
    s3_store store = fresh_bucket(server_kind::s3rver);
};

/// The CTest run's radosgw: a real S3 server, which verifies signatures and validates multipart
/// uploads. What Ceph 16.2 does otherwise than S3 (docs/testing.md): it sorts the parts of a
/// completion instead of refusing them out of order, its continuation token is the last key
/// listed (so any text is one), and it answers the completion of an aborted upload with 500
/// InternalError ("This multipart completion is already in progress").
struct radosgw_fixture {
    static constexpr const char* name = "radosgw";
    static constexpr server_gaps gaps = {
        .part_order = true, .any_continuation_token = true, .aborted_completion = true};
    s3_store store = fresh_bucket(server_kind::radosgw);
};

#define SKYVOL_CONFORMANCE_STORES memory_fixture, local_fixture, s3rver_fixture, radosgw_fixture

} // namespace skyvol::test

#include "store_conformance.hpp"

namespace skyvol::test {

TEST_CASE("local store: objects are plain files in the bucket folder", "[store][local]") {
    local_fixture f;
    const auto root = f.dir.path() / "bucket";
    run_async([&]() -> awaitable<void> {
        co_await put_text(f.store, "photos/2024/cat.jpg", "meow");
        co_await put_text(f.store, "empty-dir/", "");
        co_return;
    });
    CHECK(read_file(root / "photos/2024/cat.jpg") == "meow");
    CHECK(std::filesystem::is_directory(root / "empty-dir"));
    // Nothing but the objects and the store's own folder.
    std::set<std::string> top;
    for (const auto& e : std::filesystem::directory_iterator(root))
        top.insert(e.path().filename().string());
    CHECK(top == std::set<std::string>{".skyvol.sys", "empty-dir", "photos"});
    CHECK(std::filesystem::is_empty(root / ".skyvol.sys/tmp"));
}

TEST_CASE("local store: metadata survives a new store on the same folder", "[store][local]") {
    temp_dir dir;
    put_options opts;
    opts.content_type = "text/csv";
    opts.metadata = {{"mode", "33188"}, {"uid", "1000"}};
    std::string etag;
    {
        local_store first(dir.path());
        etag = run_async([&]() -> awaitable<std::string> {
            co_return (co_await put_text(first, "data.csv", "a,b\n1,2\n", opts)).etag;
        });
    }
    local_store second(dir.path());
    run_async([&]() -> awaitable<void> {
        auto [ec, info] = co_await second.async_head("data.csv", as_result);
        REQUIRE_FALSE(ec);
        CHECK(info.etag == etag);
        CHECK(info.content_type == "text/csv");
        CHECK(info.metadata == opts.metadata);
    });
}

TEST_CASE("local store: files written by other tools are objects too", "[store][local]") {
    temp_dir dir;
    local_store s(dir.path());
    write_file(dir.path() / "external/notes.txt", "written by hand");
    run_async([&]() -> awaitable<void> {
        auto [ec, info] = co_await s.async_head("external/notes.txt", as_result);
        REQUIRE_FALSE(ec);
        CHECK(info.size == 15);
        CHECK(info.content_type == "application/octet-stream");
        CHECK_FALSE(info.etag.empty());
        CHECK(co_await get_text(s, "external/notes.txt") == "written by hand");

        // Changed behind the store's back: the ETag must change with the content.
        const auto put = co_await put_text(s, "tracked", "v1");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        write_file(dir.path() / "tracked", "v2 changed");
        auto [hec, now] = co_await s.async_head("tracked", as_result);
        REQUIRE_FALSE(hec);
        CHECK(now.etag != put.etag);
        CHECK(now.size == 10);
    });
}

TEST_CASE("local store: a key cannot be both a file and a folder", "[store][local]") {
    local_fixture f;
    run_async([&]() -> awaitable<void> {
        auto& s = f.store;
        co_await put_text(s, "node", "file");
        auto [ec, r] =
            co_await s.async_put("node/child", boost::asio::buffer("x", 1), no_options, as_result);
        CHECK(ec == errc::not_a_directory);
        co_await put_text(s, "folder/child", "x");
        std::tie(ec, r) =
            co_await s.async_put("folder", boost::asio::buffer("x", 1), no_options, as_result);
        CHECK(ec == errc::is_a_directory);
        // Reading through a file as if it were a folder finds nothing.
        auto [hec, info] = co_await s.async_head("node/child", as_result);
        CHECK(hec == errc::not_found);
        std::tie(hec, info) = co_await s.async_head("folder", as_result);
        CHECK(hec == errc::not_found);
    });
}

TEST_CASE("local store: symlinks cannot lead out of the bucket", "[store][local]") {
    temp_dir dir;
    const auto root = dir.path() / "bucket";
    const auto outside = dir.path() / "outside";
    write_file(outside / "secret.txt", "top secret");
    local_store s(root);
    std::filesystem::create_directory_symlink(outside, root / "link-dir");
    std::filesystem::create_symlink(outside / "secret.txt", root / "link-file");
    run_async([&]() -> awaitable<void> {
        auto [ec, info] = co_await s.async_head("link-dir/secret.txt", as_result);
        CHECK(ec == errc::not_found);
        std::tie(ec, info) = co_await s.async_head("link-file", as_result);
        CHECK(ec == errc::not_found);
        char buf[16];
        auto [gec, n] = co_await s.async_get("link-file", 0, boost::asio::buffer(buf), as_result);
        CHECK(gec == errc::not_found);
        auto [pec, r] = co_await s.async_put("link-dir/secret.txt", boost::asio::buffer("pwn", 3),
                                             no_options, as_result);
        CHECK(pec == errc::not_a_directory);
        auto [rec] = co_await s.async_remove("link-dir/secret.txt", as_result);
        CHECK_FALSE(rec); // nothing there as far as the bucket is concerned
        auto [cec, c] = co_await s.async_copy("link-file", "copied", std::nullopt, as_result);
        CHECK(cec == errc::not_found);
        auto all = co_await list_all(s, everything);
        CHECK(all.keys.empty());
    });
    CHECK(read_file(outside / "secret.txt") == "top secret");
    CHECK(std::filesystem::is_symlink(root / "link-dir"));
}

TEST_CASE("local store: hostile keys never touch the disk outside the root", "[store][local]") {
    temp_dir dir;
    const auto root = dir.path() / "deep/bucket";
    local_store s(root);
    auto snapshot = [&] {
        std::set<std::string> files;
        for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path()))
            files.insert(e.path().string());
        return files;
    };
    const auto before = snapshot();
    run_async([&]() -> awaitable<void> {
        for (std::string key : hostile_keys()) {
            auto [ec, r] =
                co_await s.async_put(key, boost::asio::buffer("x", 1), no_options, as_result);
            CHECK(ec == errc::invalid_key);
        }
        // What only a file tree cannot hold.
        for (std::string key : {"a//b", "./a", "a/./b", ".skyvol.sys/tmp/x", "/", "//"}) {
            INFO(key);
            auto [ec, r] =
                co_await s.async_put(key, boost::asio::buffer("x", 1), no_options, as_result);
            CHECK(ec == errc::invalid_key);
        }
        auto [ec, r] = co_await s.async_put(std::string(256, 'n'), boost::asio::buffer("x", 1),
                                            no_options, as_result);
        CHECK(ec == errc::name_too_long);
    });
    CHECK(snapshot() == before);
}

TEST_CASE("local store: removing the last object removes empty folders, markers stay",
          "[store][local]") {
    local_fixture f;
    const auto root = f.dir.path() / "bucket";
    run_async([&]() -> awaitable<void> {
        co_await put_text(f.store, "a/b/c/file", "x");
        co_await put_text(f.store, "a/", "");
        auto [ec] = co_await f.store.async_remove("a/b/c/file", as_result);
        CHECK_FALSE(ec);
        CHECK_FALSE(std::filesystem::exists(root / "a/b"));
        CHECK(std::filesystem::is_directory(root / "a"));
        auto all = co_await list_all(f.store, everything);
        CHECK(all.keys == std::vector<std::string>{"a/"});
        std::tie(ec) = co_await f.store.async_remove("a/", as_result);
        CHECK_FALSE(ec);
        CHECK_FALSE(std::filesystem::exists(root / "a"));
    });
}

TEST_CASE("local store: temp files a crash left behind are cleaned at the next start",
          "[store][local]") {
    temp_dir dir;
    { local_store first(dir.path()); }
    const auto tmp = dir.path() / ".skyvol.sys/tmp";
    write_file(tmp / "stale", "half a put");
    write_file(tmp / "fresh", "a put in progress elsewhere");
    std::filesystem::last_write_time(tmp / "stale", std::filesystem::file_time_type::clock::now() -
                                                        std::chrono::hours(48));
    local_store second(dir.path());
    CHECK_FALSE(std::filesystem::exists(tmp / "stale"));
    CHECK(std::filesystem::exists(tmp / "fresh"));
}

TEST_CASE("local store: a staged file becomes an object by a rename", "[store][local]") {
    local_fixture f;
    const auto root = f.dir.path() / "bucket";
    const auto tmp = root / ".skyvol.sys/tmp";
    const std::string body = "downloaded once, never copied";
    run_async([&]() -> awaitable<void> {
        std::error_code ec;
        local_store::staged_file file = f.store.stage(ec);
        REQUIRE_FALSE(ec);
        REQUIRE(::pwrite(file.fd(), body.data(), body.size(), 0) == ssize_t(body.size()));
        struct stat staged {};
        REQUIRE(::fstat(file.fd(), &staged) == 0);
        put_options opts;
        opts.content_type = "text/plain";
        opts.metadata["origin"] = "bucket";
        auto [pec, put] =
            co_await f.store.async_put_staged("set/a.txt", std::move(file), opts, as_result);
        REQUIRE_FALSE(pec);
        struct stat stored {};
        REQUIRE(::stat((root / "set/a.txt").c_str(), &stored) == 0);
        CHECK(stored.st_ino == staged.st_ino); // the very file, not a copy of it
        auto [hec, info] = co_await f.store.async_head("set/a.txt", as_result);
        REQUIRE_FALSE(hec);
        CHECK(info.size == body.size());
        CHECK(info.etag == put.etag);
        CHECK(info.etag == md5_hex(body));
        CHECK(info.content_type == "text/plain");
        CHECK(info.metadata.at("origin") == "bucket");
        CHECK(read_file(root / "set/a.txt") == body);
        CHECK(std::filesystem::is_empty(tmp));

        // Dropped unused, refused for a hostile key, or put twice: no temp file stays behind.
        {
            local_store::staged_file dropped = f.store.stage(ec);
            REQUIRE_FALSE(ec);
            CHECK_FALSE(std::filesystem::is_empty(tmp));
        }
        CHECK(std::filesystem::is_empty(tmp));
        local_store::staged_file hostile = f.store.stage(ec);
        REQUIRE_FALSE(ec);
        const put_options none;
        auto [kec, kput] =
            co_await f.store.async_put_staged("../escape", std::move(hostile), none, as_result);
        CHECK(kec == errc::invalid_key);
        CHECK(std::filesystem::is_empty(tmp));
        CHECK_FALSE(std::filesystem::exists(f.dir.path() / "escape"));
        auto [mec, mput] =
            co_await f.store.async_put_staged("b.txt", std::move(hostile), none, as_result);
        CHECK(mec == errc::invalid_argument);

        // An ordinary put that fails after its temp file exists removes it too (under ASan this
        // read a destroyed name once).
        put_options create_only;
        create_only.if_none_match = true;
        auto [cec, cput] = co_await f.store.async_put("set/a.txt", boost::asio::buffer(body),
                                                      create_only, as_result);
        CHECK(cec == errc::already_exists);
        CHECK(std::filesystem::is_empty(tmp));
    });
}

TEST_CASE("local store: an unusable root is a clear error", "[store][local]") {
    temp_dir dir;
    write_file(dir.path() / "a-file", "x");
    std::error_code ec;
    local_store s(dir.path() / "a-file", {}, boost::asio::system_executor{}, ec);
    CHECK(ec);
    try {
        local_store thrown(dir.path() / "a-file");
        FAIL("no exception");
    } catch (const skyvol::error& e) {
        CHECK(std::string(e.what()).find(dir.path() / "a-file") != std::string::npos);
    }
}

TEST_CASE("stores: completion runs on the handler's executor", "[store]") {
    temp_dir dir;
    local_store s(dir.path());
    boost::asio::thread_pool handlers(1);
    std::promise<bool> on_handler_thread;
    s.async_head("missing", boost::asio::bind_executor(handlers, [&](auto ec, auto) {
                     on_handler_thread.set_value(ec == errc::not_found &&
                                                 handlers.get_executor().running_in_this_thread());
                 }));
    CHECK(on_handler_thread.get_future().get());
    handlers.join();
}

TEST_CASE("stores: model the object_store concept", "[store]") {
    STATIC_REQUIRE(object_store<memory_store>);
    STATIC_REQUIRE(object_store<local_store>);
    STATIC_REQUIRE_FALSE(object_store<int>);
    struct half_store {
        std::string_view store_name() const { return "half"; }
        std::string_view bucket_name() const { return "b"; }
    };
    STATIC_REQUIRE(names_itself<half_store>);
    STATIC_REQUIRE_FALSE(heads_objects<half_store>);
}

} // namespace skyvol::test
