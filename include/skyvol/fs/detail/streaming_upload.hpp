#ifndef SKYVOL_FS_DETAIL_STREAMING_UPLOAD_HPP
#define SKYVOL_FS_DETAIL_STREAMING_UPLOAD_HPP

/// @file
/// A multipart upload that runs while its file is still being written. Once the file is larger
/// than the multipart threshold, each part the writer has moved past goes up in the background;
/// at close only the rest (and any part written to again since) is left. Parts are cut at fixed
/// offsets, so a part that changes after its upload is simply uploaded again under its number.

#include <skyvol/detail/posix_file.hpp>
#include <skyvol/fs/detail/parallel.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/store/object_info.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace skyvol::detail {

/// The store's multipart calls for one key (each throws on failure).
struct multipart_calls {
    std::function<boost::asio::awaitable<std::string>(put_options)> create;
    std::function<boost::asio::awaitable<completed_part>(std::string upload_id, int number,
                                                         file_range data)>
        upload_part;
    std::function<boost::asio::awaitable<put_result>(std::string upload_id,
                                                     std::vector<completed_part> parts)>
        complete;
    std::function<boost::asio::awaitable<void>(std::string upload_id)> abort;
};

class streaming_upload : public std::enable_shared_from_this<streaming_upload> {
public:
    using executor_type = boost::asio::any_io_executor;

    /// `fd` is the staging file (duplicated here, so parts in flight outlive its closing);
    /// its first `initial_size` bytes are already content. `options` go with the upload.
    streaming_upload(executor_type executor, int fd, std::uint64_t initial_size,
                     transfer_shape shape, put_options options, multipart_calls calls)
        : executor_(std::move(executor))
        , fd_(::dup(fd))
        , shape_(shape)
        , part_size_(part_size_for(0, shape.part_size))
        , options_(std::move(options))
        , calls_(std::move(calls))
        , idle_(executor_, 1) {
        shape_.parallel = std::max<std::size_t>(shape_.parallel, 1);
        if (!fd_) disabled_ = true;
        changed_locked(0, initial_size); // no other thread sees it yet
    }
    streaming_upload(const streaming_upload&) = delete;
    streaming_upload& operator=(const streaming_upload&) = delete;

    /// After bytes [offset, offset + n) were written to the file, which is now `file_size`
    /// long: parts behind the writer go up, in the background.
    void written(std::uint64_t offset, std::uint64_t n, std::uint64_t file_size) {
        std::unique_lock lock(mutex_);
        changed_locked(offset, n);
        schedule_locked(file_size);
        launch(std::move(lock));
    }

    /// After the file was truncated or extended to `size`.
    void resized(std::uint64_t old_size, std::uint64_t size) {
        std::unique_lock lock(mutex_);
        const std::uint64_t from = std::min(old_size, size);
        changed_locked(from, std::max(old_size, size) - from);
        schedule_locked(size);
        launch(std::move(lock));
    }

    /// Ends the upload as the object of `size` bytes: waits for parts in flight, uploads what
    /// is missing or changed, completes. Returns nothing where streaming did not apply (small
    /// file, other options, too many parts): the upload is aborted and the caller puts the
    /// file as usual. Throws what the store threw, after aborting.
    static boost::asio::awaitable<std::optional<put_result>>
    finish(std::shared_ptr<streaming_upload> self, std::uint64_t size, put_options options) {
        co_await self->stop();
        const bool usable = !self->upload_id_.empty() && !self->failed_ &&
                            size > self->shape_.multipart_threshold &&
                            size <= self->part_size_ * multipart_limits::max_parts &&
                            options.metadata == self->options_.metadata &&
                            options.content_type == self->options_.content_type;
        if (!usable) {
            co_await self->abort_quietly();
            co_return std::nullopt;
        }
        std::exception_ptr failure;
        try {
            co_return co_await self->complete(size);
        } catch (...) {
            failure = std::current_exception();
        }
        co_await self->abort_quietly();
        std::rethrow_exception(failure);
    }

    /// Drops the upload (the file was discarded): in the background, once parts in flight end.
    static void abandon(std::shared_ptr<streaming_upload> self) {
        auto ex = self->executor_;
        boost::asio::co_spawn(ex, drop(std::move(self)), boost::asio::detached);
    }

    /// Parts uploaded in the background so far (for tests and statistics).
    std::size_t parts_streamed() const {
        std::lock_guard lock(mutex_);
        return streamed_;
    }

private:
    struct part_state {
        std::uint64_t generation = 0; ///< raised after each change to the part's bytes
        std::optional<std::uint64_t> uploaded_generation;
        std::uint64_t uploaded_length = 0;
        std::string etag;
    };

    /// A part whose generation moved after its upload read the file goes up again at finish.
    void changed_locked(std::uint64_t offset, std::uint64_t n) {
        if (n == 0) return;
        const auto first = static_cast<std::size_t>(offset / part_size_);
        const auto last = static_cast<std::size_t>((offset + n - 1) / part_size_);
        if (last >= multipart_limits::max_parts) {
            disabled_ = true; // the file outgrew fixed parts: put as usual at close
            return;
        }
        if (parts_.size() <= last) parts_.resize(last + 1);
        for (std::size_t i = first; i <= last; ++i)
            ++parts_[i].generation;
    }

    /// Queues the whole parts before `file_size` not queued yet; parts never written (a sparse
    /// jump) wait for finish.
    void schedule_locked(std::uint64_t file_size) {
        if (disabled_ || stopping_ || file_size <= shape_.multipart_threshold) return;
        const auto whole = static_cast<std::size_t>(
            std::min<std::uint64_t>(file_size / part_size_, parts_.size()));
        for (; scheduled_ < whole; ++scheduled_)
            if (parts_[scheduled_].generation > 0) queue_.push_back(scheduled_);
    }

    /// Starts the create, or workers for queued parts, then releases `lock`. The tasks are
    /// spawned after it is released: co_spawn may run them at once on this thread, and they
    /// take the lock.
    void launch(std::unique_lock<std::mutex> lock) {
        bool create_now = false;
        std::size_t workers = 0;
        if (!stopping_ && !failed_ && !queue_.empty()) {
            if (upload_id_.empty()) {
                create_now = !creating_;
                creating_ = true;
            } else {
                workers =
                    std::min(shape_.parallel - std::min(active_, shape_.parallel), queue_.size());
            }
        }
        active_ += workers + (create_now ? 1 : 0);
        lock.unlock();
        if (create_now)
            boost::asio::co_spawn(executor_, create(shared_from_this()), boost::asio::detached);
        for (std::size_t i = 0; i < workers; ++i)
            boost::asio::co_spawn(executor_, work(shared_from_this()), boost::asio::detached);
    }

    static boost::asio::awaitable<void> create(std::shared_ptr<streaming_upload> self) {
        std::string id;
        try {
            id = co_await self->calls_.create(self->options_);
        } catch (...) {
            // Streaming is an optimisation: close puts the file as usual.
        }
        std::unique_lock lock(self->mutex_);
        self->creating_ = false;
        self->upload_id_ = std::move(id);
        if (self->upload_id_.empty()) self->failed_ = true;
        self->end_task_locked();
        self->launch(std::move(lock));
    }

    /// Uploads queued parts until the queue is empty.
    static boost::asio::awaitable<void> work(std::shared_ptr<streaming_upload> self) {
        for (;;) {
            std::size_t index = 0;
            std::uint64_t generation = 0;
            {
                std::lock_guard lock(self->mutex_);
                if (self->queue_.empty() || self->stopping_) {
                    self->end_task_locked();
                    co_return;
                }
                index = self->queue_.front();
                self->queue_.pop_front();
                generation = self->parts_[index].generation; // before the bytes are read
            }
            bool ok = true;
            try {
                co_await self->upload(index, generation, self->part_size_);
            } catch (...) {
                ok = false; // finish uploads it again, and reports if that fails too
            }
            std::lock_guard lock(self->mutex_);
            if (ok) ++self->streamed_;
        }
    }

    /// Uploads part `index` (`length` bytes) from the file. A write meanwhile raises the part's
    /// generation, so a part read half before and half after it goes up again at completion.
    boost::asio::awaitable<void> upload(std::size_t index, std::uint64_t generation,
                                        std::uint64_t length) {
        const file_range part_bytes{fd_.get(), index * part_size_, length};
        completed_part part =
            co_await calls_.upload_part(upload_id_, static_cast<int>(index + 1), part_bytes);
        std::lock_guard lock(mutex_);
        part_state& p = parts_[index];
        p.uploaded_generation = generation;
        p.uploaded_length = length;
        p.etag = std::move(part.etag);
    }

    /// Only `stop` waits for idleness, so only then is it signalled: no stale signal remains.
    void end_task_locked() {
        if (--active_ == 0 && stopping_) idle_.try_send(boost::system::error_code());
    }

    /// Stops queueing and waits until no create or part upload runs.
    boost::asio::awaitable<void> stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            queue_.clear();
            if (active_ == 0) co_return;
        }
        co_await idle_.async_receive(boost::asio::use_awaitable);
    }

    /// Uploads the parts of a `size`-byte object that are not up in their current form, then
    /// completes the upload.
    boost::asio::awaitable<put_result> complete(std::uint64_t size) {
        const auto count = static_cast<std::size_t>((size + part_size_ - 1) / part_size_);
        std::vector<std::size_t> missing;
        {
            std::lock_guard lock(mutex_);
            if (parts_.size() < count) parts_.resize(count);
            for (std::size_t i = 0; i < count; ++i) {
                const part_state& p = parts_[i];
                const std::uint64_t length = std::min(part_size_, size - i * part_size_);
                if (p.uploaded_generation != p.generation || p.uploaded_length != length)
                    missing.push_back(i);
            }
        }
        std::atomic<std::size_t> next{0};
        auto worker = [&]() -> boost::asio::awaitable<void> {
            for (std::size_t n; (n = next++) < missing.size();) {
                const std::size_t i = missing[n];
                std::uint64_t generation = 0;
                {
                    std::lock_guard lock(mutex_);
                    generation = parts_[i].generation;
                }
                co_await upload(i, generation, std::min(part_size_, size - i * part_size_));
            }
        };
        co_await run_workers(std::min(shape_.parallel, missing.size()), worker);
        std::vector<completed_part> parts(count);
        {
            std::lock_guard lock(mutex_);
            for (std::size_t i = 0; i < count; ++i) {
                parts[i].part_number = static_cast<int>(i + 1);
                parts[i].etag = parts_[i].etag;
            }
        }
        put_result result = co_await calls_.complete(upload_id_, std::move(parts));
        upload_id_.clear(); // nothing left to abort
        co_return result;
    }

    /// Best effort: an abandoned upload only costs storage until the bucket's lifecycle rule.
    boost::asio::awaitable<void> abort_quietly() {
        if (upload_id_.empty()) co_return;
        try {
            co_await calls_.abort(std::exchange(upload_id_, std::string()));
        } catch (...) {
        }
    }

    static boost::asio::awaitable<void> drop(std::shared_ptr<streaming_upload> self) {
        co_await self->stop();
        co_await self->abort_quietly();
    }

    executor_type executor_;
    unique_fd fd_;
    transfer_shape shape_;
    std::uint64_t part_size_;
    put_options options_;
    multipart_calls calls_;
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> idle_;

    mutable std::mutex mutex_; ///< guards everything below (upload_id_ once set is only read)
    std::vector<part_state> parts_;
    std::deque<std::size_t> queue_;
    std::size_t scheduled_ = 0; ///< parts before this one were queued (or skipped) already
    std::size_t active_ = 0;    ///< the create or part uploads running
    std::size_t streamed_ = 0;
    std::string upload_id_;
    bool creating_ = false;
    bool failed_ = false;   ///< the create failed: close puts the file as usual
    bool disabled_ = false; ///< more than max_parts parts, or no descriptor
    bool stopping_ = false;
};

} // namespace skyvol::detail

#endif
