// The volume: filesystem semantics over the memory and local stores, in every mode.

#include "support/async.hpp"
#include "support/scoped_env.hpp"
#include "support/temp_dir.hpp"
#include "support/volume_fixtures.hpp"

#include <skyvol/fuse/control.hpp>
#include <skyvol/store/local_store.hpp>
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <future>
#include <latch>
#include <mutex>
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

TEMPLATE_LIST_TEST_CASE("volume: unlink and rmdir take only their kind; a rename can refuse to "
                        "replace",
                        "[volume]", writable_setups) {
    TestType s;
    auto& v = *s.vol;
    v.create_directory("d");
    v.write_file("f", "file");
    v.write_file("g", "other");
    std::error_code ec;
    v.remove("d", removal::file, ec);
    CHECK(ec == errc::is_a_directory);
    CHECK(v.status("d").is_directory());
    v.remove("f", removal::directory, ec);
    CHECK(ec == errc::not_a_directory);
    CHECK(v.read_file("f") == "file");
    v.rename("g", "f", rename_mode::no_replace, ec);
    CHECK(ec == errc::already_exists);
    CHECK(v.read_file("f") == "file");
    CHECK(v.read_file("g") == "other");
    v.async_rename("g", "h", rename_mode::no_replace, boost::asio::use_future).get();
    CHECK(v.read_file("h") == "other");
    CHECK_FALSE(v.exists("g"));
    v.async_remove("f", removal::file, boost::asio::use_future).get();
    v.remove("d", removal::directory);
    CHECK_FALSE(v.exists("f"));
    CHECK_FALSE(v.exists("d"));
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

    // Every change has its asynchronous form, and `exists` its error_code one.
    v.async_create_directories("deep/er/est", boost::asio::use_future).get();
    CHECK(v.status("deep/er/est").is_directory());
    v.async_permissions("cb.txt", 0640, boost::asio::use_future).get();
    CHECK(v.status("cb.txt").permissions == 0640);
    const std::chrono::system_clock::time_point when(std::chrono::seconds(1'500'000'000));
    v.async_last_write_time("cb.txt", when, boost::asio::use_future).get();
    CHECK(v.status("cb.txt").mtime == when);
    std::error_code exists_ec;
    CHECK(v.exists("deep/er", exists_ec));
    CHECK_FALSE(exists_ec);
    CHECK_FALSE(v.exists("../escape", exists_ec));
    CHECK(exists_ec == errc::invalid_argument);

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

TEMPLATE_LIST_TEST_CASE("volume: create_file makes an empty file and an open file tells its status",
                        "[volume]", writable_setups) {
    TestType s;
    auto& v = *s.vol;
    const file_status made = v.create_file("node", 0600);
    CHECK(made.is_regular_file());
    CHECK(made.size == 0);
    CHECK(made.permissions == 0600);
    CHECK(v.status("node").permissions == 0600);
    CHECK(v.read_file("node").empty());
    std::error_code ec;
    v.create_file("node", ec);
    CHECK(ec == errc::already_exists);
    v.create_file("no/parent", ec);
    CHECK(ec == errc::not_found);
    CHECK(v.async_create_file("other", std::nullopt, boost::asio::use_future).get().permissions ==
          0644);

    // What the adaptor's create replies with comes from the file itself, not another lookup.
    file w = v.open("fresh", open_mode::write | open_mode::exclusive, ec, 0640);
    REQUIRE_FALSE(ec);
    w.write(std::string_view("12345"));
    CHECK(w.status().is_regular_file());
    CHECK(w.status().size == 5);
    CHECK(w.status().permissions == 0640);
    w.close();
    CHECK_FALSE(w.status().exists());
    file r = v.open("fresh");
    CHECK(r.status().size == 5);
    CHECK(r.status().permissions == 0640);

    // The file's asynchronous forms complete on the handler's own executor, and a closed file
    // says so there too.
    boost::asio::io_context io;
    char buffer[8] = {};
    std::optional<std::size_t> read;
    r.async_read_at(1, boost::asio::buffer(buffer),
                    boost::asio::bind_executor(io, [&](boost::system::error_code e, std::size_t n) {
                        CHECK_FALSE(e);
                        CHECK(io.get_executor().running_in_this_thread());
                        read = n;
                    }));
    std::optional<boost::system::error_code> closed;
    file none;
    none.async_sync(boost::asio::bind_executor(io, [&](boost::system::error_code e) {
        CHECK(io.get_executor().running_in_this_thread());
        closed = e;
    }));
    CHECK_FALSE(closed); // never inside the call
    io.run();            // until the volume lets go of the executor: its work there is tracked
    REQUIRE(read);
    REQUIRE(closed);
    CHECK(*read == 4);
    CHECK(std::string_view(buffer, 4) == "2345");
    CHECK(*closed == std::errc::bad_file_descriptor);
}

TEMPLATE_LIST_TEST_CASE("volume: the control attributes a mount's root answers", "[volume]",
                        writable_setups) {
    TestType s;
    auto& v = *s.vol;
    namespace control = fuse::control;
    CHECK(control::value_of(v, control::pending) == "0");
    CHECK(control::value_of(v, control::pid) == std::to_string(::getpid()));
    CHECK(control::value_of(v, control::cache_dir) == v.options().cache_dir.string());
    CHECK_FALSE(control::value_of(v, "user.other"));
    CHECK_FALSE(control::value_of(v, control::flush)); // written, not read
    v.write_file("f", "data");
    control::async_write(v, control::flush, boost::asio::use_future).get();
    CHECK(control::value_of(v, control::pending) == "0");
    try {
        control::async_write(v, "user.other", boost::asio::use_future).get();
        FAIL("no error");
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == std::errc::operation_not_supported);
    }
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
    held_operation second_put("put", "notes.txt", false);
    memory_store store(second_put.options());
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    o.io_threads = 4; // the held put blocks one of them
    volume<memory_store, mode::write_through> v(store, o);
    v.write_file("notes.txt", "v1");
    second_put.arm();
    auto closing = std::async(std::launch::async, [&] { v.write_file("notes.txt", "version 2"); });
    REQUIRE(second_put.started());
    const file_status st = v.status("notes.txt");
    CHECK(st.exists());
    CHECK(st.size == 9);
    const auto listed = v.directory("");
    REQUIRE(listed.size() == 1);
    CHECK(listed.front().status().size == 9);
    file appender = v.open("notes.txt", open_mode::read_write);
    CHECK(appender.size() == 2); // "v1": the close in progress has not finished
    appender.close();            // nothing written: nothing committed
    second_put.release();
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
    o.metadata.ttl = std::chrono::milliseconds(0);
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
    o.copy.on_progress = [&](const copy_progress& p) {
        std::lock_guard lock(seen_mutex);
        seen.push_back(p);
    };
    // Downloads land in the mirror's own folder, never in $TMPDIR (often a tmpfs: RAM).
    scoped_env env;
    env.set("TMPDIR", (cache.path() / "no-such-folder").string());
    volume<typename TestType::store_type, mode::copy> copy(bucket.store, o);
    CHECK(std::filesystem::is_empty(cache.path() / "copy/.skyvol.sys/tmp"));
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

    put("set/f3", "changed too");
    const copy_stats again = copy.async_refresh(boost::asio::use_future).get();
    CHECK(again.fetched == 1);
    CHECK(again.unchanged == 40);
    CHECK(copy.read_file("f3") == "changed too");
}

TEST_CASE("volume: copy mode fetches a bucket holding a file and keys below it, and names the "
          "keys it skips",
          "[volume][copy]") {
    memory_store store;
    for (const char* key : {"ckpt", "ckpt/shard-0", "ckpt/meta/step", "ckpt/", "data/x", "top"})
        put_object(store, key, std::string("body of ") + key);
    put_object(store, "run/y", "below a folder for now");
    std::mutex mutex;
    std::vector<std::string> warnings;
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    o.log = [&](log_level level, std::string_view text) {
        std::lock_guard lock(mutex);
        if (level == log_level::warning) warnings.emplace_back(text);
    };
    volume<memory_store, mode::copy> copy(store, o);
    // The file wins, as a mount shows it; what it hides is named.
    CHECK(copy.read_file("ckpt") == "body of ckpt");
    CHECK(copy.read_file("data/x") == "body of data/x");
    CHECK(copy.read_file("top") == "body of top");
    CHECK(copy.read_file("run/y") == "below a folder for now");
    auto skipped = copy.initial_fetch().skipped;
    std::sort(skipped.begin(), skipped.end());
    CHECK(skipped == std::vector<std::string>{"ckpt/", "ckpt/meta/step", "ckpt/shard-0"});
    CHECK(copy.initial_fetch().fetched == 4);
    {
        std::lock_guard lock(mutex);
        CHECK(warnings.size() == 3);
        for (const auto& w : warnings)
            CHECK(w.find("the key 'ckpt' is a file where this needs a folder") !=
                  std::string::npos);
        CHECK(std::count_if(warnings.begin(), warnings.end(), [](const std::string& w) {
                  return w.starts_with("copy: skipped key 'ckpt/shard-0': ");
              }) == 1);
    }

    // A file appears where the copy has a folder: the folder's copies go, the file comes.
    put_object(store, "run", "now a file");
    const copy_stats stats = copy.refresh();
    CHECK(stats.removed == 1);
    CHECK(stats.fetched == 1);
    CHECK(std::find(stats.skipped.begin(), stats.skipped.end(), "run/y") != stats.skipped.end());
    CHECK(copy.read_file("run") == "now a file");
}

} // namespace skyvol::test
