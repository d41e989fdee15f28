// write_back (MOUNT_CACHED): the journal, its uploader, flush, superseded rewrites and crash
// recovery, with failures injected into the store and the journal's folder.

#include "support/files.hpp"
#include "support/mounts.hpp"
#include "support/temp_dir.hpp"
#include "support/volume_fixtures.hpp"

#include <skyvol/fs/detail/write_back_journal.hpp>
#include <skyvol/store/local_store.hpp>
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace skyvol::test {
namespace {

/// Runs `f` on a thread of its own and gives its result, or ends the test process when it does
/// not return in time: a hung flush or destructor would otherwise hang the suite, not fail it.
template <class F>
auto within(std::chrono::seconds limit, const char* what, F f) {
    using result_type = decltype(f());
    auto promise = std::make_shared<std::promise<result_type>>();
    auto future = promise->get_future();
    std::thread([promise, f = std::move(f)]() mutable {
        try {
            if constexpr (std::is_void_v<result_type>) {
                f();
                promise->set_value();
            } else {
                promise->set_value(f());
            }
        } catch (...) {
            promise->set_exception(std::current_exception());
        }
    }).detach();
    if (future.wait_for(limit) != std::future_status::ready) {
        std::cerr << "FAILED: " << what << " did not return within " << limit.count() << " s\n";
        std::_Exit(3);
    }
    return future.get();
}

/// Log lines a volume sent to its sink.
struct captured_log {
    std::mutex mutex;
    std::vector<std::string> lines;
    log_sink sink() {
        return [this](log_level, std::string_view message) {
            std::lock_guard lock(mutex);
            lines.emplace_back(message);
        };
    }
    bool has(std::string_view text) {
        std::lock_guard lock(mutex);
        for (const auto& l : lines)
            if (l.find(text) != std::string::npos) return true;
        return false;
    }
};

/// A memory store whose uploads of one key fail while `failing` is set, in a chosen way.
struct faulty_bucket {
    enum class how { error_code, exception };
    std::atomic<bool> failing{true};
    std::atomic<int> failures{0};
    how kind;
    memory_store store;
    explicit faulty_bucket(how k, std::string key)
        : kind(k)
        , store(options(this, std::move(key))) {}
    static memory_store_options options(faulty_bucket* self, std::string key) {
        memory_store_options o;
        o.fault = [self, key](std::string_view op, std::string_view k) -> std::error_code {
            if (k != key || !self->failing || (op != "put" && op != "create_multipart")) return {};
            ++self->failures;
            if (self->kind == how::exception) throw std::runtime_error("client bug while sending");
            return errc::throttled;
        };
        return o;
    }
};

volume_options quick_retries(const std::filesystem::path& cache, captured_log& log) {
    volume_options o;
    o.cache_dir = cache;
    o.write_back.upload_attempts = 3;
    o.log = log.sink();
    return o;
}

} // namespace

TEST_CASE("write-back: flush and pending uploads", "[volume][write-back]") {
    memory_store store;
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    o.write_back.delay = std::chrono::seconds(30); // nothing uploads until flush asks
    volume<memory_store, mode::write_back> v(store, o);
    for (int i = 0; i < 5; ++i)
        v.write_file(std::string("f").append(std::to_string(i)), pattern(100, i));
    CHECK(v.pending_uploads() == 5);
    CHECK(store.size() == 0);
    CHECK(v.read_file("f3") == pattern(100, 3)); // served from the journal
    CHECK(names(v.directory("")).size() == 5);
    v.flush();
    CHECK(v.pending_uploads() == 0);
    CHECK(store.size() == 5);
    CHECK(object_text(store, "f4") == pattern(100, 4));
    CHECK(v.upload_stats().uploaded == 5);

    // Crash recovery needs a known place: a write-back volume without a cache folder is refused.
    volume_options no_cache;
    CHECK_THROWS_AS((volume<memory_store, mode::write_back>(store, no_cache)), skyvol::error);
}

TEST_CASE("write-back: a full cache disk refuses writes with ENOSPC and keeps nothing of them "
          "and clean cached copies give way to writers",
          "[volume][write-back][cache]") {
    temp_dir dir;
    small_disk disk(dir.path() / "disk", 24u << 20);
    memory_store store;
    const std::string huge = pattern(40u << 20, 1);
    put_object(store, "huge", huge);
    std::vector<std::string> shards;
    for (unsigned i = 0; i < 3; ++i) {
        shards.push_back(pattern(6u << 20, 10 + i));
        put_object(store, "shard" + std::to_string(i), shards.back());
    }
    volume_options o;
    o.cache_dir = disk / "cache";
    o.write_back.delay = std::chrono::hours(1); // nothing uploads until flush asks
    o.caches.disk_bytes = 16u << 20;
    volume<memory_store, mode::write_back, cache::disk> v(store, o);
    const std::filesystem::path objects = o.cache_dir / "objects",
                                journal = o.cache_dir / "journal";

    // Larger than the disk: read from the bucket, nothing kept.
    CHECK(v.read_file("huge") == huge);
    CHECK(v.read_cache_bytes() == 0);
    CHECK(files_in(objects) == 0);
    // Under the cap of 16 MiB, the last two shards stay (a download moves in just after its
    // read returns).
    for (unsigned i = 0; i < 3; ++i)
        CHECK(v.read_file("shard" + std::to_string(i)) == shards[i]);
    for (int i = 0; i < 5000 && v.read_cache_bytes() != 12u << 20; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(v.read_cache_bytes() == 12u << 20);
    CHECK(files_in(objects) == 2);

    // 16 MiB of new data fits once clean copies leave.
    const std::string checkpoint = pattern(16u << 20, 2);
    v.write_file("ckpt.pt", checkpoint);
    CHECK(v.pending_uploads() == 1);
    CHECK(v.read_cache_bytes() < 12u << 20);

    // More than is left beside the pending upload: ENOSPC, and nothing of it stays.
    std::error_code ec;
    v.write_file("more.pt", pattern(12u << 20, 3), ec);
    CHECK(to_errno(ec) == ENOSPC);
    CHECK(files_in(journal) == 2); // ckpt.pt's data and entry
    CHECK(files_in(o.cache_dir / "staging") == 0);
    CHECK(v.pending_uploads() == 1);
    CHECK_FALSE(v.status("more.pt").exists());
    CHECK(v.read_file("shard0") == shards[0]); // reads go on

    // Space returns as uploads finish.
    v.flush();
    CHECK(object_text(store, "ckpt.pt") == checkpoint);
    CHECK(files_in(journal) == 0);
    CHECK(disk.used() <= (12u << 20) + (1u << 20));
    const std::string more = pattern(12u << 20, 4);
    v.write_file("more.pt", more);
    CHECK(v.read_file("more.pt") == more);
}

TEST_CASE("write-back: a cancelled flush returns at once and the upload goes on",
          "[volume][write-back]") {
    using namespace std::chrono_literals;
    held_operation upload("put", "ckpt.pt");
    memory_store store(upload.options());
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    volume<memory_store, mode::write_back> v(store, o);
    v.write_file("ckpt.pt", "weights");
    REQUIRE(upload.started());

    boost::asio::cancellation_signal stop;
    auto flushed =
        v.async_flush(boost::asio::bind_cancellation_slot(stop.slot(), boost::asio::use_future));
    stop.emit(boost::asio::cancellation_type::terminal);
    REQUIRE(flushed.wait_for(20s) == std::future_status::ready);
    try {
        flushed.get();
        FAIL("a cancelled flush reported success with the upload held");
    } catch (const boost::system::system_error& e) {
        CHECK(std::error_code(e.code()) == std::errc::operation_canceled);
    }
    CHECK(v.pending_uploads() == 1);

    upload.release();
    within(60s, "the flush after the cancelled one", [&] { v.flush(); });
    CHECK(object_text(store, "ckpt.pt") == "weights");
}

TEST_CASE("write-back: a failing upload is retried, reported by flush and delivered later",
          "[volume][write-back]") {
    // Each kind of failure the uploader can meet: the store's error, an exception that is no
    // system_error (a client's own fault), and the journal unable to forget an uploaded entry.
    const auto kind = GENERATE(faulty_bucket::how::error_code, faulty_bucket::how::exception);
    INFO((kind == faulty_bucket::how::exception ? "exception" : "error code"));
    faulty_bucket bucket(kind, "ckpt/model.pt");
    temp_dir cache;
    captured_log log;
    {
        volume<memory_store, mode::write_back> v(bucket.store, quick_retries(cache.path(), log));
        v.create_directory("ckpt");
        v.write_file("ckpt/model.pt", "weights v1");
        v.write_file("ckpt/after.txt", "closed later"); // waits behind the failing one
        std::error_code ec = within(std::chrono::seconds(60), "flush of a failing upload", [&v] {
            std::error_code e;
            v.flush(e);
            return e;
        });
        CHECK(ec);
        if (kind == faulty_bucket::how::error_code) CHECK(ec == errc::throttled);
        CHECK(bucket.failures >= 3);
        CHECK(v.pending_uploads() == 2);
        CHECK(v.read_file("ckpt/model.pt") == "weights v1"); // still served from the journal
        CHECK(log.has("ckpt/model.pt"));
        if (kind == faulty_bucket::how::exception) {
            CHECK(log.has("client bug while sending"));
            CHECK(v.upload_stats().unexpected_errors >= 3);
        }
        CHECK(v.upload_stats().failed_attempts >= 3);

        // A second flush tries as many times again before it gives up.
        const int before = bucket.failures;
        ec = within(std::chrono::seconds(60), "a second flush of a failing upload", [&v] {
            std::error_code e;
            v.flush(e);
            return e;
        });
        CHECK(ec);
        CHECK(bucket.failures - before >= 3);

        bucket.failing = false; // the server recovers: the next flush delivers both, in order
        within(std::chrono::seconds(60), "flush after recovery", [&v] { v.flush(); });
        CHECK(v.pending_uploads() == 0);
    }
    CHECK(object_text(bucket.store, "ckpt/model.pt") == "weights v1");
    CHECK(object_text(bucket.store, "ckpt/after.txt") == "closed later");
}

TEST_CASE("write-back: a journal that cannot forget an uploaded entry keeps the uploader alive",
          "[volume][write-back]") {
    memory_store store;
    temp_dir cache;
    captured_log log;
    volume_options o = quick_retries(cache.path(), log);
    o.write_back.delay = std::chrono::seconds(30);
    const std::string journal = (cache.path() / "journal").string();
    {
        volume<memory_store, mode::write_back> v(store, o);
        v.write_file("a.txt", "first");
        // An immutable folder: its entries cannot be removed, even by root (ext4, xfs, btrfs).
        if (std::system(("chattr +i '" + journal + "' 2>/dev/null").c_str()) != 0) {
            WARN("chattr +i is not supported under " << journal << ": case not run");
            return;
        }
        std::error_code ec = within(std::chrono::seconds(60), "flush with a stuck journal", [&v] {
            std::error_code e;
            v.flush(e);
            return e;
        });
        std::system(("chattr -i '" + journal + "'").c_str());
        CHECK(ec);
        CHECK(log.has("a.txt"));
        CHECK(v.upload_stats().unexpected_errors >= 1);
        CHECK(object_text(store, "a.txt") == "first"); // uploaded: only forgetting it failed
        within(std::chrono::seconds(60), "flush after the journal recovers", [&v] { v.flush(); });
        CHECK(v.pending_uploads() == 0);
    }
    CHECK(object_text(store, "a.txt") == "first");
}

TEST_CASE("write-back: a volume whose uploads keep failing closes and keeps them for the next one",
          "[volume][write-back]") {
    faulty_bucket bucket(faulty_bucket::how::exception, "x/y");
    temp_dir cache;
    captured_log log;
    within(std::chrono::seconds(60), "a volume's destructor while uploads fail", [&] {
        volume<memory_store, mode::write_back> v(bucket.store, quick_retries(cache.path(), log));
        v.create_directory("x");
        v.write_file("x/y", "kept");
    });
    CHECK(log.has("not uploaded"));
    // Still failing while the next volume is looked at: its uploader starts at once, and could
    // otherwise deliver the file before the check (it did, once, under ASan).
    volume<memory_store, mode::write_back> next(bucket.store, quick_retries(cache.path(), log));
    CHECK(next.pending_uploads() == 1);
    bucket.failing = false;
    next.flush();
    CHECK(object_text(bucket.store, "x/y") == "kept");
}

TEST_CASE("write-back: what a journal reads back counts as closed when it is read",
          "[volume][write-back]") {
    temp_dir cache;
    {
        detail::write_back_journal journal(cache.path());
        detail::write_back_journal::entry e;
        e.seq = journal.reserve();
        e.key = "k";
        e.path = "p";
        std::ofstream(journal.data_path(e.seq)) << "data";
        e.size = 4;
        std::error_code ec;
        journal.commit(e, ec);
        REQUIRE_FALSE(ec);
    }
    // The write-back delay of a recovered entry runs from its recovery, whatever the uptime.
    const auto before = std::chrono::steady_clock::now();
    detail::write_back_journal recovered(cache.path());
    const auto front = recovered.front();
    REQUIRE(front);
    CHECK(front->key == "k");
    CHECK(front->closed_at >= before);
}

TEST_CASE("write-back: a rewrite supersedes its pending version, never another file's turn",
          "[volume][write-back]") {
    memory_store store;
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    o.write_back.delay = std::chrono::seconds(30);
    volume<memory_store, mode::write_back> v(store, o);

    // Five closes of one file in a row: one upload, of the last content.
    for (int i = 0; i < 5; ++i)
        v.write_file("ckpt.pt", pattern(1000, i));
    CHECK(v.pending_uploads() == 1);
    CHECK(v.read_file("ckpt.pt") == pattern(1000, 4));
    v.flush();
    CHECK(store.requests().writes() == 1);
    CHECK(v.upload_stats().superseded == 4);
    CHECK(object_text(store, "ckpt.pt") == pattern(1000, 4));

    // A rewrite with another file closed in between keeps its turn: dropping the first version
    // would let a reader see "done" before the content it announces.
    v.write_file("data", "v1");
    v.write_file("done", "data is v1");
    v.write_file("data", "v2");
    CHECK(v.pending_uploads() == 3);
    v.flush();
    CHECK(store.requests().writes() == 4);
    CHECK(object_text(store, "data") == "v2");

    // A file written through open/write/close twice is coalesced the same way.
    for (int i = 0; i < 2; ++i) {
        file f = v.open("log.txt", open_mode::append);
        f.write(std::to_string(i));
        f.close();
    }
    CHECK(v.pending_uploads() == 1);
    v.flush();
    CHECK(store.requests().writes() == 5);
    CHECK(object_text(store, "log.txt") == "01");
}

TEST_CASE("write-back: a file uploaded while its directory is listed is listed",
          "[volume][write-back]") {
    // The uploader may put a file and forget its journal entry between the listing's pages:
    // the listing must still find it, in the bucket or in the journal. The root holds more than
    // a page of objects that sort after "a", and the second page waits for the upload of "a".
    using volume_type = volume<memory_store, mode::write_back>;
    std::atomic<int> root_lists{0};
    std::atomic<bool> uploaded_meanwhile{false};
    std::atomic<const volume_type*> watched{nullptr}; // set once the volume exists
    memory_store_options mo;
    mo.fault = [&](std::string_view op, std::string_view prefix) -> std::error_code {
        if (op != "list" || !prefix.empty() || ++root_lists != 2) return {};
        for (int i = 0; i < 1000 && !uploaded_meanwhile; ++i) {
            const volume_type* v = watched;
            if (v && v->pending_uploads() == 0)
                uploaded_meanwhile = true;
            else
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return {};
    };
    memory_store store(mo);
    for (int i = 0; i < 1001; ++i)
        put_object(store, "z" + std::to_string(1000 + i), "listed before a is uploaded");
    temp_dir cache;
    volume_options o;
    o.cache_dir = cache.path();
    o.write_back.delay = std::chrono::milliseconds(100); // pending when the listing starts
    volume_type v(store, o);
    watched = &v;
    v.write_file("a", "closed before the listing");
    const auto entries = names(v.directory(""));
    CHECK(uploaded_meanwhile);
    REQUIRE(entries.size() == 1002);
    CHECK(entries.front() == "a");
    CHECK(object_text(store, "a") == "closed before the listing");
}

namespace {

constexpr int crash_files = 12;

std::uint64_t crash_file_size(int i) {
    return i == 7 ? (20ull << 20) + 3 : static_cast<std::uint64_t>(i * i * 1000); // 0 B .. 20 MiB
}

template <class Store>
void crash_child_work(Store store, const std::filesystem::path& cache) {
    volume_options o;
    o.prefix = "ckpt/";
    o.cache_dir = cache;
    o.write_back.delay = std::chrono::hours(1); // keep every upload pending until the kill
    volume<Store, mode::write_back> v(store, o);
    std::ofstream closed(cache / "closed.log");
    for (int i = 0; i < crash_files; ++i) {
        const std::string name = "f" + std::to_string(i);
        v.write_file(name, pattern(crash_file_size(i), static_cast<unsigned>(i)));
        closed << name << std::endl; // closed, so promised
    }
    file unfinished = v.open("unfinished", open_mode::write);
    unfinished.write("never closed");
    std::ofstream(cache / "ready") << "ready" << std::endl;
    std::this_thread::sleep_for(std::chrono::minutes(10)); // until SIGKILL
}

} // namespace

// Run by the crash test in a child process, never on its own (hidden tag).
TEST_CASE("volume: write-back crash child", "[.crash-child]") {
    const char* cache = std::getenv("SKYVOL_CRASH_CACHE");
    const char* bucket = std::getenv("SKYVOL_CRASH_BUCKET");
    if (!cache || !bucket) return;
    if (*bucket)
        crash_child_work(local_store(bucket), cache);
    else
        crash_child_work(memory_store(), cache);
}

TEMPLATE_TEST_CASE("volume: write-back delivers every closed file after SIGKILL", "[volume][crash]",
                   memory_bucket, local_bucket) {
    TestType bucket;
    temp_dir cache;
    std::string bucket_root;
    if constexpr (std::is_same_v<TestType, local_bucket>)
        bucket_root = bucket.store.root().string();

    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
        env_strings.emplace_back(*e);
    env_strings.push_back("SKYVOL_CRASH_CACHE=" + cache.path().string());
    env_strings.push_back("SKYVOL_CRASH_BUCKET=" + bucket_root);
    std::vector<char*> envp;
    for (auto& e : env_strings)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::string test_name = "volume: write-back crash child";
    char* argv[] = {self.data(), test_name.data(), nullptr};
    // The child's output, shown with any failure below: it runs where CI's log cannot see it.
    const std::filesystem::path child_log =
        cache.path().parent_path() / (cache.path().filename().string() + ".child.log");
    posix_spawn_file_actions_t output;
    ::posix_spawn_file_actions_init(&output);
    ::posix_spawn_file_actions_addopen(&output, STDOUT_FILENO, child_log.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::posix_spawn_file_actions_adddup2(&output, STDOUT_FILENO, STDERR_FILENO);
    pid_t child = -1;
    const int spawned = ::posix_spawn(&child, self.c_str(), &output, nullptr, argv, envp.data());
    ::posix_spawn_file_actions_destroy(&output);
    REQUIRE(spawned == 0);
    const auto started = std::chrono::steady_clock::now();
    int status = 0;
    bool running = true;
    while (running && !std::filesystem::exists(cache.path() / "ready") &&
           std::chrono::steady_clock::now() < started + std::chrono::minutes(3)) {
        running = ::waitpid(child, &status, WNOHANG) == 0;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (running) {
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
    }
    INFO("the child ran " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - started)
                                 .count()
                          << " ms and wrote:\n"
                          << read_file(child_log));
    std::filesystem::remove(child_log);
    REQUIRE(running); // it must have been killed, not have ended
    REQUIRE(std::filesystem::exists(cache.path() / "ready"));

    // Every closed file is journaled; nothing reached the bucket yet.
    std::size_t journaled = 0;
    for (const auto& e : std::filesystem::directory_iterator(cache.path() / "journal"))
        journaled += e.path().extension() == ".entry";
    CHECK(journaled == crash_files);
    auto listed = bucket.store.async_list(list_request(), boost::asio::use_future).get();
    CHECK(listed.objects.empty());

    {
        volume_options o;
        o.prefix = "ckpt/";
        o.cache_dir = cache.path();
        o.write_back.delay = std::chrono::hours(1); // only the flush uploads: count them first
        volume<typename TestType::store_type, mode::write_back> recovered(bucket.reopen(), o);
        CHECK(recovered.pending_uploads() == crash_files);
        CHECK(recovered.read_file("f3") == pattern(crash_file_size(3), 3)); // served before upload
        recovered.flush();
        CHECK(recovered.pending_uploads() == 0);
        CHECK_FALSE(recovered.exists("unfinished"));
    }
    for (int i = 0; i < crash_files; ++i) {
        INFO("f" << i);
        CHECK(object_text(bucket.store, "ckpt/f" + std::to_string(i)) ==
              pattern(crash_file_size(i), static_cast<unsigned>(i)));
    }
    listed = bucket.store.async_list(list_request(), boost::asio::use_future).get();
    CHECK(listed.objects.size() == crash_files);
}

} // namespace skyvol::test
