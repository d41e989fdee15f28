// Read paths: the memory and disk caches keyed by ETag, shared first reads, listings without a
// HEAD per entry, and read-ahead with parallel ranged GETs.

#include "support/async.hpp"
#include "support/files.hpp"
#include "support/mounts.hpp"
#include "support/temp_dir.hpp"
#include "support/volume_fixtures.hpp"

#include <skyvol/fs/detail/read_cache.hpp>
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

TEMPLATE_TEST_CASE("volume: read caches keep what was read, keyed by ETag", "[volume][cache]",
                   cache::none, cache::memory, cache::disk) {
    memory_store store;
    const std::string first = pattern(3u << 20, 1), second = pattern(3u << 20, 2);
    put_object(store, "data/blob", first);
    temp_dir cache_dir;
    volume_options o;
    o.prefix = "data/";
    o.cache_dir = cache_dir.path();
    o.caches.disk_keep_free = 0; // whatever this machine's disk has free (see small_disk tests)
    o.metadata.ttl = std::chrono::hours(1); // the volume keeps believing the first ETag
    o.caches.memory_bytes = 8u << 20;
    o.caches.disk_bytes = 4u << 20;
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
        CHECK(v.read_cache_bytes() <= o.caches.disk_bytes);
    }
}

TEST_CASE("object cache: room for downloads under the cap and the disk's margin, least "
          "recently used out first",
          "[cache]") {
    temp_dir dir;
    small_disk disk(dir.path() / "disk", 16u << 20);
    // No margin, a 12 MiB cap.
    detail::object_cache cache(disk / "objects", 12u << 20, 0.0);
    const auto fill = [&](std::uint64_t size) {
        const std::filesystem::path temp = cache.temp_path();
        write_file(temp, std::string(static_cast<std::size_t>(size), 'x'));
        return temp;
    };

    // A download 8 MiB into its 10 MiB counts 2 MiB against the free space, 10 against the cap.
    auto first = cache.reserve(10u << 20);
    REQUIRE(first);
    const auto first_temp = fill(8u << 20);
    first.wrote(8u << 20);
    CHECK_FALSE(cache.reserve(3u << 20)); // over the cap
    auto second = cache.reserve(2u << 20);
    CHECK(second);                        // 8 MiB free, 4 of them still to be written
    CHECK_FALSE(cache.reserve(1u << 20)); // the cap again: 10 + 2 held
    cache.publish(first_temp, "a", "1", 8u << 20, std::move(first));
    second = {};
    CHECK(cache.used_bytes() == 8u << 20);

    // Another 6 MiB needs the cap: the least recently used copy goes. More than the cap never fits.
    auto third = cache.reserve(6u << 20);
    REQUIRE(third);
    CHECK(cache.used_bytes() == 0);
    CHECK_FALSE(cache.find("a", "1"));
    cache.publish(fill(6u << 20), "b", "1", 6u << 20, std::move(third));
    CHECK_FALSE(cache.reserve(13u << 20));
    CHECK(cache.find("b", "1")); // evicting nothing for it

    // A writer that finds the disk full takes the clean copies' room.
    CHECK(cache.make_room(12u << 20));
    CHECK(cache.used_bytes() == 0);
    CHECK_FALSE(cache.make_room(1)); // nothing left to give
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
    o.caches.disk_keep_free = 0; // whatever this machine's disk has free (see small_disk tests)
    o.metadata.ttl = std::chrono::hours(1);
    o.transfers.part_size = 1u << 20; // a download of several ranged GETs
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
    o.caches.disk_keep_free = 0; // whatever this machine's disk has free (see small_disk tests)
    o.transfers.part_size = 1u << 20;
    o.transfers.download_parallelism = 1; // the download's 8 GETs, one after another: 400 ms
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
    o.metadata.ttl = std::chrono::hours(1);
    volume<memory_store, mode::read_only> v(store, o);
    const std::size_t window = 4 * o.metadata.listing_heads;
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
    o.metadata.listing_heads = 0;
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
    o.read_ahead.window = 8u << 20;
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
        CHECK(v.read_ahead_bytes() <= o.read_ahead.window + 2 * o.read_ahead.part);
    }
    CHECK(v.read_file("big") == big);
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // GETs still in flight finish
    CHECK(v.read_ahead_bytes() == 0);
}

} // namespace skyvol::test
