// Streaming upload (write-through): parts go up while the file is written, and what a close
// still has to send.

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
        calls.upload_part = [this](std::string id, int number, file_range b) {
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
    boost::asio::awaitable<completed_part> upload_part(std::string id, int number, file_range b) {
        ++part_uploads;
        if (number == fail_part && std::exchange(fail_part, 0) > 0)
            throw boost::system::system_error(make_error_code(errc::connection_failed));
        const std::string key = "big"; // named: g++ 12 and temporaries in co_await
        std::string buffer;
        completed_part part =
            co_await detail::upload_part_from_file(store, key, id, number, b, buffer);
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

} // namespace skyvol::test
