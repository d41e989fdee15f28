// The volume: filesystem semantics over the memory and local stores, in every mode.

#include "support/async.hpp"
#include "support/temp_dir.hpp"
#include "support/volume_fixtures.hpp"

#include <skyvol/store/local_store.hpp>
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <future>
#include <latch>
#include <optional>
#include <thread>
#include <tuple>

namespace skyvol::test {

TEMPLATE_LIST_TEST_CASE("volume: files, directories and errors", "[volume]", writable_setups) {
    TestType s;
    auto& v = *s.vol;
    v.create_directories("logs/a");
    v.write_file("node-0.pt", "weights");
    v.write_file("logs/a/one.txt", "1");
    CHECK(v.read_file("node-0.pt") == "weights");

    const file_status st = v.status("node-0.pt");
    CHECK(st.is_regular_file());
    CHECK(st.size == 7);
    CHECK(st.permissions == 0644);
    CHECK(st.uid == ::getuid());
    CHECK(st.mtime > std::chrono::system_clock::now() - std::chrono::minutes(1));
    CHECK(v.status("logs").is_directory());
    CHECK(v.status("logs/a/").is_directory()); // trailing slashes and doubled ones are fine
    CHECK_FALSE(v.status("missing").exists());
    CHECK(v.exists("/logs//a/./one.txt"));

    CHECK(names(v.directory("")) == std::vector<std::string>{"logs", "node-0.pt"});
    const auto entries = v.directory("logs/a");
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].path() == "logs/a/one.txt");
    CHECK(entries[0].size() == 1);
    CHECK(entries[0].is_regular_file());

    std::error_code ec;
    v.create_directory("logs", ec);
    CHECK(ec == errc::already_exists);
    v.create_directory("no/such/parent", ec);
    CHECK(ec == errc::not_found);
    v.write_file("missing-dir/file", "x", ec);
    CHECK(ec == errc::not_found);
    v.write_file("node-0.pt/child", "x", ec);
    CHECK(ec == errc::not_a_directory);
    v.write_file("logs", "x", ec);
    CHECK(ec == errc::is_a_directory);
    v.read_file("logs", ec);
    CHECK(ec == errc::is_a_directory);
    v.read_file("nope", ec);
    CHECK(ec == errc::not_found);
    v.directory("node-0.pt", ec);
    CHECK(ec == errc::not_a_directory);
    v.write_file(std::string(256, 'n'), "x", ec);
    CHECK(ec == errc::name_too_long);
    v.read_file("../escape", ec);
    CHECK(ec == errc::invalid_argument);
    v.remove("logs", ec);
    CHECK(ec == errc::not_empty);
    v.remove("nope", ec);
    CHECK(ec == errc::not_found);
    CHECK_THROWS_AS(v.read_file("nope"), skyvol::error);
    try {
        v.read_file("nope/file.txt");
    } catch (const skyvol::error& e) {
        CHECK(std::string(e.what()).find("vol/nope/file.txt") != std::string::npos);
    }

    v.remove("logs/a/one.txt");
    v.remove("logs/a");
    CHECK_FALSE(v.exists("logs/a"));
    CHECK(v.exists("logs")); // created by create_directories: a marker keeps it
    v.flush();
    // The objects are where the prefix says, with s3fs's attribute metadata.
    auto info = s.bucket.store.async_head("vol/node-0.pt", boost::asio::use_future).get();
    CHECK(info.metadata.at("mode") == std::to_string(S_IFREG | 0644));
    CHECK(info.metadata.at("uid") == std::to_string(::getuid()));
    CHECK(info.metadata.count("mtime") == 1);
    CHECK(object_text(s.bucket.store, "vol/node-0.pt") == "weights");
}

TEMPLATE_LIST_TEST_CASE("volume: open, append, random writes, truncate, sync", "[volume]",
                        writable_setups) {
    TestType s;
    auto& v = *s.vol;
    {
        file log = v.open("train.log", open_mode::append);
        log.write("epoch 1\n");
        log.write("epoch 2\n");
        log.close();
    }
    {
        file log = v.open("train.log", open_mode::append);
        log.write(boost::asio::buffer(std::string("epoch 3\n")));
        CHECK(v.status("train.log").size == 24); // visible while open, from the staging copy
        log.close();
    }
    CHECK(v.read_file("train.log") == "epoch 1\nepoch 2\nepoch 3\n");

    {
        file f = v.open("train.log", open_mode::read_write);
        std::error_code ec;
        f.write_at(6, boost::asio::buffer("X", 1), ec);
        REQUIRE_FALSE(ec);
        char buf[8] = {};
        CHECK(f.read_at(0, boost::asio::buffer(buf, 7), ec) == 7);
        CHECK(std::string(buf, 7) == "epoch X");
        f.close();
    }
    CHECK(v.read_file("train.log").substr(0, 8) == "epoch X\n");

    v.resize_file("train.log", 5);
    CHECK(v.read_file("train.log") == "epoch");
    v.resize_file("train.log", 8);
    CHECK(v.read_file("train.log") == std::string("epoch\0\0\0", 8));

    std::error_code ec;
    v.open("fresh", open_mode::write | open_mode::exclusive).close();
    CHECK(v.status("fresh").size == 0);
    v.open("fresh", open_mode::write | open_mode::exclusive, ec);
    CHECK(ec == errc::already_exists);
    v.open("absent", open_mode::read_write, ec);
    CHECK(ec == errc::not_found);

    // sync: the content so far reaches the bucket (or the journal) while the file stays open.
    file ckpt = v.open("ckpt.bin", open_mode::write);
    const std::string big = pattern(3u << 20, 9);
    ckpt.write(boost::asio::buffer(big));
    ckpt.sync();
    v.flush();
    CHECK(object_text(s.bucket.store, "vol/ckpt.bin") == big);
    ckpt.write("tail");
    ckpt.close();
    v.flush();
    CHECK(object_text(s.bucket.store, "vol/ckpt.bin") == big + "tail");

    // Offset reads.
    std::string window(6, '\0');
    CHECK(v.read("ckpt.bin", 3u << 20, boost::asio::buffer(window)) == 4);
    CHECK(window.substr(0, 4) == "tail");
    file reader = v.open("ckpt.bin");
    std::string head(4, '\0');
    CHECK(reader.read(boost::asio::buffer(head)) == 4);
    CHECK(head == big.substr(0, 4));
}

TEMPLATE_LIST_TEST_CASE("volume: rename files and directories", "[volume]", writable_setups) {
    TestType s;
    auto& v = *s.vol;
    v.create_directories("run/logs/deep");
    v.write_file("run/a.txt", "A");
    v.write_file("run/logs/b.txt", "B");
    v.write_file("run/logs/deep/c.txt", "C");
    v.write_file("other.txt", "O");

    v.rename("run/a.txt", "a-moved.txt");
    CHECK_FALSE(v.exists("run/a.txt"));
    CHECK(v.read_file("a-moved.txt") == "A");
    v.rename("a-moved.txt", "other.txt"); // replaces a file
    CHECK(v.read_file("other.txt") == "A");

    v.rename("run", "final");
    CHECK_FALSE(v.exists("run"));
    CHECK(v.read_file("final/logs/b.txt") == "B");
    CHECK(v.read_file("final/logs/deep/c.txt") == "C");
    CHECK(names(v.directory("final")) == std::vector<std::string>{"logs"});

    std::error_code ec;
    v.rename("other.txt", "final", ec);
    CHECK(ec == errc::is_a_directory);
    v.create_directory("empty");
    v.rename("final", "empty"); // onto an empty directory
    CHECK(v.read_file("empty/logs/b.txt") == "B");
    v.create_directory("full");
    v.write_file("full/x", "x");
    v.rename("empty", "full", ec);
    CHECK(ec == errc::not_empty);
    v.rename("full", "full/inside", ec);
    CHECK(ec == errc::invalid_argument);
    v.rename("nothing", "else", ec);
    CHECK(ec == errc::not_found);
    v.flush();
    CHECK(object_text(s.bucket.store, "vol/empty/logs/deep/c.txt") == "C");
}

TEMPLATE_LIST_TEST_CASE("volume: symlinks, permissions and times as s3fs stores them", "[volume]",
                        writable_setups) {
    TestType s;
    auto& v = *s.vol;
    v.create_directories("data/v2");
    v.write_file("data/v2/train.csv", "a,b\n");
    v.create_symlink("v2/train.csv", "data/current.csv");
    CHECK(v.status("data/current.csv").is_symlink());
    CHECK(v.read_symlink("data/current.csv") == "v2/train.csv");
    CHECK(v.read_file("data/current.csv") == "a,b\n");
    std::error_code ec;
    v.create_symlink("x", "data/current.csv", ec);
    CHECK(ec == errc::already_exists);

    v.permissions("data/v2/train.csv", 0600);
    const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1'600'000'000));
    v.last_write_time("data/v2/train.csv", when);
    const file_status st = v.status("data/v2/train.csv");
    CHECK(st.permissions == 0600);
    CHECK(st.mtime == when);
    CHECK(v.read_file("data/v2/train.csv") == "a,b\n");
    v.flush();
    auto link = s.bucket.store.async_head("vol/data/current.csv", boost::asio::use_future).get();
    CHECK(link.metadata.at("mode") == std::to_string(S_IFLNK | 0777));
    CHECK(object_text(s.bucket.store, "vol/data/current.csv") == "v2/train.csv");
    auto file_info =
        s.bucket.store.async_head("vol/data/v2/train.csv", boost::asio::use_future).get();
    CHECK(file_info.metadata.at("mode") == std::to_string(S_IFREG | 0600));
    CHECK(file_info.metadata.at("mtime") == "1600000000");
}

TEMPLATE_LIST_TEST_CASE("volume: asynchronous operations with completion tokens", "[volume]",
                        writable_setups) {
    TestType s;
    auto& v = *s.vol;
    v.write_file("async.txt", "through a coroutine");
    boost::asio::io_context io;
    auto done = boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<std::string> {
            const std::string name = "async.txt";
            co_return co_await v.async_read_file(name, boost::asio::use_awaitable);
        },
        boost::asio::use_future);
    io.run();
    CHECK(done.get() == "through a coroutine");

    CHECK_FALSE(v.async_status("missing/x", boost::asio::use_future).get().exists());
    try {
        v.async_read_file("missing/x", boost::asio::use_future).get();
        FAIL("no error");
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == errc::not_found);
    }
    std::promise<bool> called;
    v.async_write_file("cb.txt", "callback",
                       [&](boost::system::error_code e) { called.set_value(!e); });
    CHECK(called.get_future().get());
    CHECK(v.read_file("cb.txt") == "callback");

    // A blocking call from inside a completion handler on the volume's own threads is refused
    // instead of waiting for itself.
    std::promise<std::error_code> nested;
    v.async_status("cb.txt", [&](boost::system::error_code, file_status) {
        std::error_code inner;
        v.read_file("cb.txt", inner);
        nested.set_value(inner);
    });
    CHECK(nested.get_future().get() == std::errc::resource_deadlock_would_occur);
}

TEMPLATE_LIST_TEST_CASE("volume: concurrent writers and readers on different files", "[volume]",
                        writable_setups) {
    TestType s;
    auto& v = *s.vol;
    v.create_directory("par");
    constexpr int threads = 8, rounds = 25;
    std::vector<std::thread> workers;
    std::atomic<int> mismatches{0};
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&, t] {
            for (int r = 0; r < rounds; ++r) {
                const std::string path = "par/t" + std::to_string(t) + "-" + std::to_string(r % 5);
                const std::string data =
                    pattern(1000 + static_cast<std::size_t>(r), static_cast<unsigned>(t * 100 + r));
                v.write_file(path, data);
                if (v.read_file(path) != data) ++mismatches;
                file log = v.open("par/log" + std::to_string(t), open_mode::append);
                log.write("x");
                log.close();
            }
        });
    for (auto& w : workers)
        w.join();
    CHECK(mismatches == 0);
    CHECK(v.directory("par").size() == threads * 6);
    for (int t = 0; t < threads; ++t)
        CHECK(v.read_file("par/log" + std::to_string(t)) == std::string(rounds, 'x'));
}

// Run under ThreadSanitizer (scripts/test tsan), this fails on any unsynchronised access to
// an open file's size or attributes: a writer, stat, listings, chmod and fsync meet on them.
TEMPLATE_LIST_TEST_CASE("volume: an open file is written, stat-ed, listed, chmod-ed and synced at "
                        "once",
                        "[volume][race]", writable_setups) {
    TestType s;
    auto& v = *s.vol;
    std::error_code ec;
    file f = v.open("busy.bin", open_mode::write | open_mode::exclusive, ec, 0600);
    REQUIRE_FALSE(ec);
    CHECK(v.status("busy.bin").permissions == 0600);
    constexpr int writes = 200;
    std::atomic<bool> writing{true};
    std::atomic<int> shrank{0};
    std::thread observer([&] {
        std::uint64_t last = 0;
        for (int i = 0; writing; ++i) {
            const file_status st = v.status("busy.bin");
            if (st.size < last) ++shrank;
            last = st.size;
            (void)v.directory("");
            attribute_change change;
            change.permissions = (i % 2) ? 0640u : 0600u;
            v.set_attributes("busy.bin", change);
        }
    });
    const std::string block(1000, 'b');
    for (int i = 0; i < writes; ++i) {
        f.write(block);
        if (i % 50 == 49) f.sync();
    }
    writing = false;
    observer.join();
    CHECK(shrank == 0);
    CHECK(f.size() == writes * block.size());
    f.close();
    v.flush();
    INFO("status " << v.status("busy.bin").size << ", bucket "
                   << object_text(s.bucket.store, "vol/busy.bin").size());
    CHECK(v.read_file("busy.bin").size() == writes * block.size());
    const auto mode = v.status("busy.bin").permissions;
    CHECK((mode == 0600 || mode == 0640));
}

TEMPLATE_LIST_TEST_CASE("volume: a writer that only took a chmod does not bring back old content",
                        "[volume]", writable_setups) {
    TestType s;
    auto& v = *s.vol;
    v.write_file("f", "old");
    file idle = v.open("f", open_mode::read_write); // opened for writing, never written
    v.write_file("f", "new");
    v.permissions("f", 0600);
    idle.close();
    v.flush();
    CHECK(v.read_file("f") == "new");
    CHECK(v.status("f").permissions == 0600);
}

TEST_CASE("volume: a file being closed is shown by stat and listings until its upload is done",
          "[volume][race]") {
    // Write-through uploads at close. Until the upload is done, stat and listings show the
    // closed version (they used to show nothing, or the old object); a writer opening the
    // file meanwhile starts from the last finished close, whose size is not the one shown.
    std::atomic<bool> hold{false};
    std::promise<void> put_started, release;
    std::shared_future<void> released = release.get_future().share();
    memory_store_options mo;
    mo.fault = [&](std::string_view op, std::string_view key) -> std::error_code {
        if (op == "put" && key == "notes.txt" && hold.exchange(false)) {
            put_started.set_value();
            released.wait();
        }
        return {};
    };
    memory_store store(mo);
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    o.io_threads = 4; // the held put blocks one of them
    volume<memory_store, mode::write_through> v(store, o);
    v.write_file("notes.txt", "v1");
    hold = true;
    auto closing = std::async(std::launch::async, [&] { v.write_file("notes.txt", "version 2"); });
    REQUIRE(put_started.get_future().wait_for(std::chrono::seconds(20)) ==
            std::future_status::ready);
    const file_status st = v.status("notes.txt");
    CHECK(st.exists());
    CHECK(st.size == 9);
    const auto listed = v.directory("");
    REQUIRE(listed.size() == 1);
    CHECK(listed.front().status().size == 9);
    file appender = v.open("notes.txt", open_mode::read_write);
    CHECK(appender.size() == 2); // "v1": the close in progress has not finished
    appender.close();            // nothing written: nothing committed
    release.set_value();
    closing.get();
    CHECK(v.status("notes.txt").size == 9);
    CHECK(object_text(store, "notes.txt") == "version 2");
}

TEST_CASE("volume: opening a stored file to append asks the bucket once for what it is",
          "[volume]") {
    // With no other writer, the status found first is the stored object's: its content is
    // fetched without a second lookup (which used to cost a HEAD per open without the cache).
    std::atomic<int> heads{0}, gets{0};
    memory_store_options mo;
    mo.fault = [&](std::string_view op, std::string_view) -> std::error_code {
        if (op == "head") ++heads;
        if (op == "get") ++gets;
        return {};
    };
    memory_store store(mo);
    put_object(store, "log.txt", "line 1\n");
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    o.metadata_ttl = std::chrono::milliseconds(0);
    volume<memory_store, mode::write_through> v(store, o);
    file appender = v.open("log.txt", open_mode::append);
    CHECK(heads == 1);
    CHECK(gets == 1);
    appender.write("line 2\n");
    appender.close();
    CHECK(object_text(store, "log.txt") == "line 1\nline 2\n");
}

TEST_CASE("volume: runs on the caller's executor when given one", "[volume]") {
    boost::asio::thread_pool caller(2);
    memory_store store;
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    volume<memory_store, mode::write_back> v(caller.get_executor(), store, o);
    v.write_file("on-caller", "yes");
    std::promise<bool> ran_on_caller;
    v.async_status("on-caller", [&](boost::system::error_code ec, file_status st) {
        ran_on_caller.set_value(!ec && st.size == 3 &&
                                caller.get_executor().running_in_this_thread());
    });
    CHECK(ran_on_caller.get_future().get());
    v.flush();
    CHECK(object_text(store, "on-caller") == "yes");
}

TEMPLATE_TEST_CASE("volume: read caches keep what was read, keyed by ETag", "[volume][cache]",
                   cache::none, cache::memory, cache::disk) {
    memory_store store;
    const std::string first = pattern(3u << 20, 1), second = pattern(3u << 20, 2);
    put_object(store, "data/blob", first);
    temp_dir cache_dir;
    volume_options o;
    o.prefix = "data/";
    o.cache_dir = cache_dir.path();
    o.metadata_ttl = std::chrono::hours(1); // the volume keeps believing the first ETag
    o.memory_cache_bytes = 8u << 20;
    o.disk_cache_bytes = 4u << 20;
    volume<memory_store, mode::read_only, TestType> v(store, o);
    CHECK(v.read_file("blob") == first);
    std::string window(100, '\0');
    CHECK(v.read("blob", (2u << 20) - 50, boost::asio::buffer(window)) == 100); // across blocks
    CHECK(window == first.substr((2u << 20) - 50, 100));

    // Replaced behind the volume's back: a cache serves the version it knows; none reads anew.
    put_object(store, "data/blob", second);
    if constexpr (std::is_same_v<TestType, cache::none>) {
        CHECK(v.read_file("blob") == second);
        CHECK(v.read_cache_bytes() == 0);
    } else {
        CHECK(v.read_file("blob") == first);
        CHECK(v.read_cache_bytes() == first.size());
    }

    if constexpr (std::is_same_v<TestType, cache::disk>) {
        // Bounded: older objects leave the disk cache as newer ones arrive.
        for (int i = 0; i < 3; ++i) {
            const std::string name = "other" + std::to_string(i);
            put_object(store, "data/" + name, first);
            CHECK(v.read_file(name) == first);
        }
        // A read returns once its bytes are down; the download moves into the cache just after.
        auto files = [&] {
            std::size_t n = 0;
            for (const auto& e : std::filesystem::directory_iterator(cache_dir.path() / "objects"))
                n += e.is_regular_file();
            return n;
        };
        for (int i = 0; i < 2000 && files() != 1; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        CHECK(files() == 1);
        CHECK(v.read_cache_bytes() <= o.disk_cache_bytes);
    }
}

TEST_CASE("volume: concurrent first reads share one stat and one disk-cache download",
          "[volume][cache]") {
    memory_store_options so;
    so.latency = std::chrono::milliseconds(2); // so that the readers' requests overlap
    memory_store store(so);
    const std::string blob = pattern(5u << 20, 3), other = pattern(5u << 20, 4);
    for (const auto& [key, body] : {std::pair{"d/blob", &blob}, std::pair{"d/other", &other}})
        put_object(store, key, *body);
    temp_dir cache_dir;
    volume_options o;
    o.prefix = "d/";
    o.cache_dir = cache_dir.path();
    o.metadata_ttl = std::chrono::hours(1);
    o.part_size = 1u << 20; // a download of several ranged GETs
    volume<memory_store, mode::read_only, cache::disk> v(store, o);

    // What one reader alone costs: one HEAD, then the download's GETs.
    const auto before = store.requests();
    CHECK(v.read_file("other") == other);
    const std::size_t heads_alone = store.requests().head - before.head;
    const std::size_t gets_alone = store.requests().get - before.get;
    CHECK(heads_alone == 1);
    CHECK(gets_alone >= 5);

    const auto start = store.requests();
    constexpr int readers = 8;
    std::latch go(readers);
    std::vector<std::string> got(readers, std::string(1u << 20, '\0'));
    std::vector<std::thread> threads;
    for (int i = 0; i < readers; ++i)
        threads.emplace_back([&, i] {
            go.arrive_and_wait();
            const std::uint64_t at = static_cast<std::uint64_t>(i % 5) << 20;
            v.read("blob", at, boost::asio::buffer(got[static_cast<std::size_t>(i)]));
        });
    for (auto& t : threads)
        t.join();
    for (int i = 0; i < readers; ++i)
        CHECK(got[static_cast<std::size_t>(i)] ==
              blob.substr(static_cast<std::size_t>(i % 5) << 20, 1u << 20));
    CHECK(store.requests().head - start.head == heads_alone);
    CHECK(store.requests().get - start.get == gets_alone);
}

TEST_CASE("volume: a cold read through the disk cache returns before the whole object is down",
          "[volume][cache]") {
    memory_store_options so;
    so.latency = std::chrono::milliseconds(50);
    memory_store store(so);
    const std::string blob = pattern(8u << 20, 5);
    put_object(store, "d/blob", blob);
    temp_dir cache_dir;
    volume_options o;
    o.prefix = "d/";
    o.cache_dir = cache_dir.path();
    o.part_size = 1u << 20;
    o.download_parallelism = 1; // the download's 8 GETs, one after another: 400 ms
    volume<memory_store, mode::read_only, cache::disk> v(store, o);
    std::string first(1000, '\0'), last(1000, '\0');
    CHECK(v.read("blob", 10, boost::asio::buffer(first)) == first.size());
    CHECK(first == blob.substr(10, first.size()));
    CHECK(store.requests().get < 8); // the rest is still on its way
    CHECK(v.read("blob", blob.size() - last.size(), boost::asio::buffer(last)) == last.size());
    CHECK(last == blob.substr(blob.size() - last.size()));
    CHECK(v.read_file("blob") == blob);
    CHECK(store.requests().get == 8); // one download served all three reads
    CHECK(v.read_cache_bytes() == blob.size());
}

TEST_CASE("volume: listings for readdir need no HEAD, and stats of listed entries ask ahead",
          "[volume]") {
    memory_store_options so;
    so.latency = std::chrono::microseconds(200);
    memory_store store(so);
    constexpr std::size_t count = 100;
    auto name = [](std::size_t i) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "f%03zu", i);
        return std::string(buf);
    };
    for (std::size_t i = 0; i < count; ++i) {
        put_options p;
        p.metadata["mode"] = std::to_string(S_IFREG | 0700); // as s3fs stores it
        store
            .async_put("d/dir/" + name(i), boost::asio::buffer(name(i)), p, boost::asio::use_future)
            .get();
    }
    put_options link;
    link.metadata["mode"] = std::to_string(S_IFLNK | 0777);
    store
        .async_put("d/dir/link", boost::asio::buffer(std::string("f000")), link,
                   boost::asio::use_future)
        .get();
    const std::string big(directory_entry::max_symlink_target + 1, 'b');
    put_object(store, "d/big", big);
    put_object(store, "d/empty", std::string());
    volume_options o;
    o.prefix = "d/";
    o.metadata_ttl = std::chrono::hours(1);
    volume<memory_store, mode::read_only> v(store, o);
    const std::size_t window = 4 * o.listing_heads;
    REQUIRE(window < count);

    CHECK(v.status("dir").is_directory());
    const auto start = store.requests();
    const auto listed = v.directory("dir", listing_detail::listed);
    REQUIRE(listed.size() == count + 1);
    CHECK(store.requests().head == start.head);
    for (const directory_entry& e : listed) {
        CHECK_FALSE(e.complete());
        CHECK(e.is_regular_file()); // the symlink too: only a stat can tell
        CHECK(e.may_be_symlink());  // as any object small enough to hold a target
        CHECK(e.status().permissions == 0644);
    }
    for (const directory_entry& e : v.directory("", listing_detail::listed))
        CHECK(e.may_be_symlink() == false); // a directory, and objects too big or empty

    // A stat out of listing order (a shuffled reader) asks ahead for nothing.
    auto heads = [&] { return store.requests().head - start.head; };
    CHECK(v.status("dir/" + name(50)).permissions == 0700);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(heads() == 1);

    // ls -l: the first entry's stat asks ahead for a window of the entries listed after it (one
    // of them known already), no more.
    CHECK(v.status("dir/" + name(0)).permissions == 0700);
    for (int i = 0; i < 2000 && heads() < 1 + window; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(heads() == 1 + window);
    for (std::size_t i = 1; i < count; ++i)
        CHECK(v.status("dir/" + name(i)).permissions == 0700);
    CHECK(v.status("dir/link").is_symlink());
    CHECK(heads() == count + 1); // each entry HEADed once: stats shared the ones asked ahead

    // A full listing now comes from what the stats cached; trusted listings are complete.
    for (const directory_entry& e : v.directory("dir"))
        CHECK(e.complete());
    CHECK(heads() == count + 1);
    o.listing_heads = 0;
    volume<memory_store, mode::read_only> trusting(store, o);
    for (const directory_entry& e : trusting.directory("dir", listing_detail::listed))
        CHECK((e.complete() && e.is_regular_file()));
}

namespace {

/// An object that read-ahead fetches from, recording each ranged GET. Fetches take `latency`
/// so that several can be in flight; `fail_at` makes the GET starting there fail once.
struct recorded_object {
    std::string data;
    std::vector<std::pair<std::uint64_t, std::size_t>> gets;
    int in_flight = 0, most_in_flight = 0;
    std::optional<std::uint64_t> fail_at;
    std::chrono::milliseconds latency{1};

    detail::read_ahead::fetch_function fetch() {
        return [this](std::uint64_t offset, boost::asio::mutable_buffer buffer) {
            return get(offset, buffer);
        };
    }
    /// A reader of this object, which it believes `extra` bytes longer than it is.
    std::shared_ptr<detail::read_ahead> reader(const boost::asio::any_io_executor& ex,
                                               std::shared_ptr<detail::read_ahead_budget> budget,
                                               std::size_t extra = 0) {
        detail::read_ahead_limits limits;
        limits.first = 1u << 20;
        limits.part = 4u << 20;
        limits.window = 16u << 20;
        return std::make_shared<detail::read_ahead>(ex, data.size() + extra, fetch(), limits,
                                                    std::move(budget));
    }
    boost::asio::awaitable<std::size_t> get(std::uint64_t offset,
                                            boost::asio::mutable_buffer buffer) {
        gets.emplace_back(offset, buffer.size());
        most_in_flight = std::max(most_in_flight, ++in_flight);
        boost::asio::steady_timer delay(co_await boost::asio::this_coro::executor, latency);
        co_await delay.async_wait(boost::asio::use_awaitable);
        --in_flight;
        if (fail_at == offset) {
            fail_at.reset();
            throw boost::system::system_error(make_error_code(errc::connection_failed));
        }
        const std::size_t n =
            offset >= data.size() ? 0 : std::min(buffer.size(), data.size() - offset);
        std::memcpy(buffer.data(), data.data() + offset, n);
        co_return n;
    }
};

} // namespace

TEST_CASE("read-ahead: a sequential reader gets growing parallel ranges", "[read-ahead]") {
    recorded_object object;
    object.data = pattern(40u << 20, 7);
    // Long enough that the ranges started together are still in flight when the last starts,
    // even on a loaded machine under a sanitizer (1 ms was not, once).
    object.latency = std::chrono::milliseconds(25);
    auto budget = std::make_shared<detail::read_ahead_budget>(64u << 20);
    run_async([&]() -> boost::asio::awaitable<void> {
        const auto ex = co_await boost::asio::this_coro::executor;
        auto reader = object.reader(ex, budget);
        std::string got(object.data.size(), '\0');
        constexpr std::size_t piece = 128u << 10; // what the kernel asks of a FUSE file
        for (std::size_t at = 0; at < got.size(); at += piece) {
            const std::size_t n = co_await detail::read_ahead::read(
                reader, at, boost::asio::buffer(got.data() + at, piece));
            CHECK(n == piece);
        }
        CHECK(got == object.data);
        std::string past(10, 'x');
        {
            const std::size_t read_n =
                co_await detail::read_ahead::read(reader, got.size(), boost::asio::buffer(past));
            CHECK(read_n == 0);
        }
        CHECK(reader->fetches() == object.gets.size());
    });
    // 1, 2, 4 MiB, then 4 MiB parts: a dozen GETs instead of 320, several at once.
    REQUIRE(object.gets.size() >= 3);
    CHECK(object.gets.size() <= 14);
    CHECK(object.gets[0] == std::pair<std::uint64_t, std::size_t>(0, 1u << 20));
    CHECK(object.gets[1] == std::pair<std::uint64_t, std::size_t>(1u << 20, 2u << 20));
    CHECK(object.gets[2].second == 4u << 20);
    std::uint64_t next = 0;
    for (const auto& [offset, length] : object.gets) {
        CHECK(offset == next); // each byte fetched once, in order
        next = offset + length;
    }
    CHECK(object.most_in_flight >= 3);
    CHECK(budget->in_use() == 0); // every buffer went back when the reader did
}

TEST_CASE("read-ahead: reads of one stream that arrive out of order keep the stream",
          "[read-ahead]") {
    // The kernel sends its read-ahead as several 1 MiB requests at once; threads deliver them
    // in any order. Here each group of four arrives last-first.
    recorded_object object;
    object.data = pattern(24u << 20, 11);
    auto budget = std::make_shared<detail::read_ahead_budget>(64u << 20);
    run_async([&]() -> boost::asio::awaitable<void> {
        const auto ex = co_await boost::asio::this_coro::executor;
        auto reader = object.reader(ex, budget);
        std::string got(object.data.size(), '\0');
        constexpr std::uint64_t piece = 1u << 20;
        for (std::uint64_t group = 0; group < got.size(); group += 4 * piece) {
            std::vector<std::uint64_t> offsets;
            for (int i = 3; i >= 0; --i)
                offsets.push_back(group + static_cast<std::uint64_t>(i) * piece);
            std::size_t next = 0;
            auto worker = [&]() -> boost::asio::awaitable<void> {
                const std::uint64_t at = offsets[next++];
                const std::size_t n = co_await detail::read_ahead::read(
                    reader, at, boost::asio::buffer(got.data() + at, piece));
                CHECK(n == piece);
            };
            co_await detail::run_workers(offsets.size(), worker);
        }
        CHECK(got == object.data);
    });
    // One stream: a few growing ranges, each byte fetched once, none re-fetched alone.
    std::uint64_t fetched = 0;
    for (const auto& get : object.gets)
        fetched += get.second;
    CHECK(fetched == object.data.size());
    CHECK(object.gets.size() <= 10);
    CHECK(budget->in_use() == 0);
}

TEST_CASE("read-ahead: random reads fetch only what they ask", "[read-ahead]") {
    recorded_object object;
    object.data = pattern(8u << 20, 3);
    auto budget = std::make_shared<detail::read_ahead_budget>(64u << 20);
    run_async([&]() -> boost::asio::awaitable<void> {
        const auto ex = co_await boost::asio::this_coro::executor;
        auto reader = object.reader(ex, budget);
        std::uint64_t at = 5000;
        for (int i = 0; i < 50; ++i) {
            at = (at * 7919 + 12345) % (object.data.size() - 4096);
            std::string got(4096, '\0');
            {
                const std::size_t read_n =
                    co_await detail::read_ahead::read(reader, at, boost::asio::buffer(got));
                CHECK(read_n == 4096);
            }
            CHECK(got == object.data.substr(at, 4096));
        }
    });
    CHECK(object.gets.size() == 50);
    for (const auto& g : object.gets)
        CHECK(g.second == 4096);
}

TEST_CASE("read-ahead: stragglers, failures, short objects and the budget", "[read-ahead]") {
    recorded_object object;
    object.data = pattern(12u << 20, 5);
    auto budget = std::make_shared<detail::read_ahead_budget>(3u << 20);
    run_async([&]() -> boost::asio::awaitable<void> {
        const auto ex = co_await boost::asio::this_coro::executor;
        auto reader = object.reader(ex, budget);
        std::string got(256u << 10, '\0');
        for (std::uint64_t at = 0; at < (6u << 20); at += got.size()) {
            {
                const std::size_t read_n =
                    co_await detail::read_ahead::read(reader, at, boost::asio::buffer(got));
                CHECK(read_n == got.size());
            }
            CHECK(got == object.data.substr(at, got.size()));
            // Beyond the budget only what reads wait for, kept a little behind them.
            CHECK(budget->in_use() <= (4u << 20) + 2 * got.size());
        }
        // A read that arrives a little late, behind the stream, is served without resetting it.
        const std::size_t before = object.gets.size();
        std::string late(4096, '\0');
        {
            const std::size_t read_n = co_await detail::read_ahead::read(
                reader, (6u << 20) - (1u << 19) - 4096, boost::asio::buffer(late));
            CHECK(read_n == 4096);
        }
        CHECK(late == object.data.substr((6u << 20) - (1u << 19) - 4096, 4096));
        {
            const std::size_t read_n =
                co_await detail::read_ahead::read(reader, 6u << 20, boost::asio::buffer(got));
            CHECK(read_n == got.size());
        }
        CHECK(object.gets.size() - before <= 3);

        // A failed GET fails the read that waits for it; the next read fetches again.
        object.fail_at = object.gets.back().first + object.gets.back().second;
        std::uint64_t at = (6u << 20) + got.size();
        bool failed = false;
        for (; at < (12u << 20) && !failed; at += got.size()) {
            try {
                const std::size_t n =
                    co_await detail::read_ahead::read(reader, at, boost::asio::buffer(got));
                CHECK(n == got.size());
                CHECK(got == object.data.substr(at, got.size()));
            } catch (const boost::system::system_error& e) {
                CHECK(e.code() == errc::connection_failed);
                failed = true;
                at -= got.size();
            }
        }
        CHECK(failed);
        {
            const std::size_t read_n =
                co_await detail::read_ahead::read(reader, at, boost::asio::buffer(got));
            CHECK(read_n == got.size());
        }
        CHECK(got == object.data.substr(at, got.size()));

        // The object is shorter than when it was opened: reads end where its bytes do.
        auto stale = object.reader(ex, budget, 5000);
        std::string rest(1u << 20, '\0');
        {
            const std::size_t read_n =
                co_await detail::read_ahead::read(stale, 0, boost::asio::buffer(rest));
            CHECK(read_n == rest.size());
        }
        {
            const std::size_t read_n = co_await detail::read_ahead::read(
                stale, object.data.size() - 1000, boost::asio::buffer(rest));
            CHECK(read_n == 1000);
        }
        CHECK(rest.substr(0, 1000) == object.data.substr(object.data.size() - 1000));
    });
    CHECK(budget->in_use() == 0);
}

TEST_CASE("volume: files opened for reading stream through read-ahead", "[volume][read-ahead]") {
    memory_store store;
    const std::string big = pattern(20u << 20, 9);
    put_object(store, "d/big", big);
    volume_options o;
    o.prefix = "d/";
    o.read_ahead_window = 8u << 20;
    temp_dir cache;
    o.cache_dir = cache.path();
    volume<memory_store, mode::write_through> v(store, o);
    v.create_symlink("big", "link");
    {
        file f = v.open("link"); // a symlink: the reader streams its target
        CHECK(f.size() == big.size());
        std::string got(big.size(), '\0');
        for (std::size_t at = 0; at < got.size(); at += 128u << 10)
            CHECK(f.read_at(at, boost::asio::buffer(got.data() + at, 128u << 10)) == 128u << 10);
        CHECK(got == big);
        CHECK(v.read_ahead_bytes() > 0);
        CHECK(v.read_ahead_bytes() <= o.read_ahead_window + 2 * o.read_ahead_part);
    }
    CHECK(v.read_file("big") == big);
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // GETs still in flight finish
    CHECK(v.read_ahead_bytes() == 0);
}

namespace {

/// A staging file and its streaming upload to "big" in a memory store, counting the store
/// calls; `fail_part` makes that part's next upload fail, `fail_create` the create.
struct streamed_file {
    memory_store store;
    temp_dir dir{"skyvol-stream"};
    detail::unique_fd fd;
    std::string data; ///< what the file holds
    int creates = 0, part_uploads = 0, completes = 0, aborts = 0;
    int fail_part = 0;
    bool fail_create = false;
    std::shared_ptr<detail::streaming_upload> upload;

    void start(const boost::asio::any_io_executor& ex, put_options options = put_options()) {
        fd.reset(::open((dir.path() / "staging").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
        REQUIRE(fd);
        detail::transfer_shape shape;
        shape.multipart_threshold = 16u << 20;
        shape.part_size = 8u << 20;
        shape.parallel = 2;
        detail::multipart_calls calls;
        calls.create = [this](put_options o) { return create(std::move(o)); };
        calls.upload_part = [this](std::string id, int number, boost::asio::const_buffer b) {
            return upload_part(std::move(id), number, b);
        };
        calls.complete = [this](std::string id, std::vector<completed_part> parts) {
            return complete(std::move(id), std::move(parts));
        };
        calls.abort = [this](std::string id) { return abort(std::move(id)); };
        upload = std::make_shared<detail::streaming_upload>(ex, fd.get(), 0, shape,
                                                            std::move(options), std::move(calls));
    }
    /// Writes `bytes` at `at` as a writer_file does: into the file, then tells the upload.
    void write(std::uint64_t at, const std::string& bytes) {
        REQUIRE(::pwrite(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(at)) ==
                static_cast<ssize_t>(bytes.size()));
        if (data.size() < at + bytes.size()) data.resize(at + bytes.size());
        data.replace(at, bytes.size(), bytes);
        upload->written(at, bytes.size(), data.size());
    }
    void write_sequentially(std::uint64_t size, unsigned seed) {
        const std::string bytes = pattern(size, seed);
        for (std::uint64_t at = 0; at < size; at += 1u << 20)
            write(at, bytes.substr(at, 1u << 20));
    }
    void resize(std::uint64_t size) {
        REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
        const std::uint64_t old = data.size();
        data.resize(size);
        upload->resized(old, size);
    }
    /// Lets background uploads run until `parts` went up (or a few seconds passed).
    boost::asio::awaitable<void> wait_streamed(std::size_t parts) {
        boost::asio::steady_timer tick(co_await boost::asio::this_coro::executor);
        for (int i = 0; i < 5000 && upload->parts_streamed() < parts; ++i) {
            tick.expires_after(std::chrono::milliseconds(1));
            co_await tick.async_wait(boost::asio::use_awaitable);
        }
    }
    /// Not a coroutine itself: the streaming upload's finish runs on its own frame.
    boost::asio::awaitable<std::optional<put_result>> finish(put_options options = put_options()) {
        return detail::streaming_upload::finish(std::exchange(upload, nullptr), data.size(),
                                                std::move(options));
    }

    boost::asio::awaitable<std::string> create(put_options o) {
        ++creates;
        if (fail_create) throw boost::system::system_error(make_error_code(errc::access_denied));
        auto [ec, id] = co_await store.async_create_multipart("big", o, as_result);
        detail::throw_on(ec);
        co_return id;
    }
    boost::asio::awaitable<completed_part> upload_part(std::string id, int number,
                                                       boost::asio::const_buffer b) {
        ++part_uploads;
        if (number == fail_part && std::exchange(fail_part, 0) > 0)
            throw boost::system::system_error(make_error_code(errc::connection_failed));
        auto [ec, part] = co_await store.async_upload_part("big", id, number, b, as_result);
        detail::throw_on(ec);
        co_return part;
    }
    boost::asio::awaitable<put_result> complete(std::string id, std::vector<completed_part> p) {
        ++completes;
        auto [ec, result] = co_await store.async_complete_multipart("big", id, p, as_result);
        detail::throw_on(ec);
        co_return result;
    }
    boost::asio::awaitable<void> abort(std::string id) {
        ++aborts;
        auto [ec] = co_await store.async_abort_multipart("big", id, as_result);
        detail::throw_on(ec);
    }
};

} // namespace

TEST_CASE("streaming upload: parts go up while the file is written, changed parts again at close",
          "[streaming]") {
    streamed_file f;
    run_async([&]() -> boost::asio::awaitable<void> {
        const auto ex = co_await boost::asio::this_coro::executor;
        f.start(ex);
        f.write_sequentially(44u << 20, 1);
        co_await f.wait_streamed(5); // parts 1-5 (8 MiB each) are behind the writer
        CHECK(f.upload->parts_streamed() == 5);
        CHECK(f.completes == 0);
        CHECK(f.store.pending_uploads() == 1);
        f.write((9u << 20) + 7, std::string(100, 'x')); // part 2 changes after its upload
        const std::optional<put_result> done = co_await f.finish();
        REQUIRE(done);
        CHECK(!done->etag.empty());
    });
    CHECK(f.creates == 1);
    CHECK(f.part_uploads == 7); // five while writing; at close the 4 MiB tail and part 2 again
    CHECK(f.completes == 1);
    CHECK(f.aborts == 0);
    CHECK(f.store.pending_uploads() == 0);
    CHECK(object_text(f.store, "big") == f.data);
}

TEST_CASE("streaming upload: truncation, small files, other metadata and failures", "[streaming]") {
    streamed_file f;
    SECTION("a file cut short keeps the parts before the cut") {
        run_async([&]() -> boost::asio::awaitable<void> {
            const auto ex = co_await boost::asio::this_coro::executor;
            f.start(ex);
            f.write_sequentially(44u << 20, 2);
            co_await f.wait_streamed(5);
            f.resize(20u << 20);
            const std::optional<put_result> done = co_await f.finish();
            CHECK(done);
        });
        CHECK(f.part_uploads == 6); // part 3 shrank to 4 MiB and went up again
        CHECK(object_text(f.store, "big") == f.data);
    }
    SECTION("a file no larger than the threshold never starts an upload") {
        run_async([&]() -> boost::asio::awaitable<void> {
            const auto ex = co_await boost::asio::this_coro::executor;
            f.start(ex);
            f.write_sequentially(16u << 20, 3);
            const std::optional<put_result> done = co_await f.finish();
            CHECK(!done); // the caller puts it in one request
        });
        CHECK(f.creates == 0);
    }
    SECTION("metadata changed while open: the upload is dropped, the caller puts the file") {
        run_async([&]() -> boost::asio::awaitable<void> {
            const auto ex = co_await boost::asio::this_coro::executor;
            f.start(ex);
            f.write_sequentially(24u << 20, 4);
            co_await f.wait_streamed(3);
            put_options chmodded;
            chmodded.metadata["mode"] = "33188";
            const std::optional<put_result> done = co_await f.finish(chmodded);
            CHECK(!done);
        });
        CHECK(f.aborts == 1);
        CHECK(f.store.pending_uploads() == 0);
    }
    SECTION("a part that failed in the background goes up again at close") {
        f.fail_part = 2;
        run_async([&]() -> boost::asio::awaitable<void> {
            const auto ex = co_await boost::asio::this_coro::executor;
            f.start(ex);
            f.write_sequentially(30u << 20, 5);
            co_await f.wait_streamed(2);
            const std::optional<put_result> done = co_await f.finish();
            CHECK(done);
        });
        CHECK(f.part_uploads == 5); // 1, 2 (failed), 3 while writing; 2 and the tail at close
        CHECK(object_text(f.store, "big") == f.data);
    }
    SECTION("a failed create leaves the upload to the caller") {
        f.fail_create = true;
        run_async([&]() -> boost::asio::awaitable<void> {
            const auto ex = co_await boost::asio::this_coro::executor;
            f.start(ex);
            f.write_sequentially(24u << 20, 6);
            const std::optional<put_result> done = co_await f.finish();
            CHECK(!done);
        });
        CHECK(f.creates == 1);
        CHECK(f.part_uploads == 0);
    }
    SECTION("a part that fails at close fails the close, and the upload is aborted") {
        run_async([&]() -> boost::asio::awaitable<void> {
            const auto ex = co_await boost::asio::this_coro::executor;
            f.start(ex);
            f.write_sequentially(20u << 20, 7);
            co_await f.wait_streamed(2);
            f.fail_part = 3; // the 4 MiB tail
            bool threw = false;
            try {
                co_await f.finish();
            } catch (const boost::system::system_error& e) {
                threw = e.code() == errc::connection_failed;
            }
            CHECK(threw);
        });
        CHECK(f.aborts == 1);
        CHECK(f.store.pending_uploads() == 0);
    }
    SECTION("an abandoned file's upload is aborted once its parts in flight end") {
        run_async([&]() -> boost::asio::awaitable<void> {
            const auto ex = co_await boost::asio::this_coro::executor;
            f.start(ex);
            f.write_sequentially(40u << 20, 8);
            detail::streaming_upload::abandon(std::exchange(f.upload, nullptr));
            co_return;
        });
        CHECK(f.aborts == 1);
        CHECK(f.store.pending_uploads() == 0);
    }
}

TEMPLATE_TEST_CASE("volume: read-only over objects written by other tools", "[volume]",
                   memory_bucket, local_bucket) {
    TestType bucket;
    auto& store = bucket.store;
    const std::string body = "plain object";
    put_object(store, "ds/train/0001.jpg", body);
    put_object(store, "ds/train/0002.jpg", body);
    put_object(store, "ds/README", body);
    volume_options o;
    o.prefix = "ds";
    volume<typename TestType::store_type, mode::read_only> data(store, o);
    CHECK(data.status("train").is_directory()); // implicit: no marker object
    CHECK(data.status("train").permissions == 0755);
    CHECK(data.status("README").permissions == 0644);
    CHECK(names(data.directory("train")) == std::vector<std::string>{"0001.jpg", "0002.jpg"});
    std::string buf(5, '\0');
    CHECK(data.read("train/0001.jpg", 6, boost::asio::buffer(buf)) == 5);
    CHECK(buf == "objec");
    for (const directory_entry& e : data.directory(""))
        CHECK((e.is_directory() || e.size() == 12));
    std::error_code ec;
    data.status("../outside", ec);
    CHECK(ec == errc::invalid_argument);
}

TEMPLATE_TEST_CASE("volume: copy mode fetches the prefix with progress and refreshes",
                   "[volume][copy]", memory_bucket, local_bucket) {
    TestType bucket;
    auto put = [&](const std::string& key, const std::string& body) {
        put_object(bucket.store, key, body);
    };
    for (int i = 0; i < 40; ++i)
        put("set/f" + std::to_string(i), pattern(1000 + i, i));
    put("set/sub/big.bin", pattern(20u << 20, 77)); // multipart into the mirror
    put("elsewhere", "not in the prefix");
    // A key no file tree can hold (the local store cannot even hold it as a source).
    const bool odd_key = std::is_same_v<TestType, memory_bucket>;
    if (odd_key) put("set/odd//name", "reported, not fetched");

    std::vector<copy_progress> seen;
    std::mutex seen_mutex;
    temp_dir cache;
    volume_options o;
    o.prefix = "set/";
    o.cache_dir = cache.path();
    o.on_copy_progress = [&](const copy_progress& p) {
        std::lock_guard lock(seen_mutex);
        seen.push_back(p);
    };
    volume<typename TestType::store_type, mode::copy> copy(bucket.store, o);
    REQUIRE(seen.size() == 41);
    CHECK(seen.back().files_done == 41);
    CHECK(seen.back().files_total == 41);
    CHECK(seen.back().bytes_done == seen.back().bytes_total);
    CHECK(copy.initial_fetch().fetched == 41);
    CHECK(copy.initial_fetch().skipped.size() == (odd_key ? 1u : 0u));
    CHECK(copy.read_file("f7") == pattern(1007, 7));
    CHECK(copy.read_file("sub/big.bin") == pattern(20u << 20, 77));
    CHECK_FALSE(copy.exists("elsewhere"));

    // Served locally: the bucket can change without the copy noticing until refresh().
    put("set/f1", "changed");
    put("set/new", "new");
    bucket.store.async_remove("set/f2", boost::asio::use_future).get();
    CHECK(copy.read_file("f1") == pattern(1001, 1));
    const copy_stats stats = copy.refresh();
    CHECK(stats.fetched == 2);
    CHECK(stats.removed == 1);
    CHECK(stats.unchanged == 39);
    CHECK(copy.read_file("f1") == "changed");
    CHECK(copy.read_file("new") == "new");
    CHECK_FALSE(copy.exists("f2"));
}

} // namespace skyvol::test
