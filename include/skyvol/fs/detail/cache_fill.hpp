#ifndef SKYVOL_FS_DETAIL_CACHE_FILL_HPP
#define SKYVOL_FS_DETAIL_CACHE_FILL_HPP

/// @file
/// A whole-object download into the disk cache that readers use while it runs: a read waits
/// only for the chunks it covers, not for the whole object, so the first bytes of a cold file
/// come as soon as its first chunk is written, and reading overlaps downloading.

#include <skyvol/detail/posix_file.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace skyvol::detail {

class cache_fill {
public:
    /// `fd`: the file being filled, `size` bytes in chunks of `chunk` bytes.
    cache_fill(boost::asio::any_io_executor executor, unique_fd fd, std::uint64_t size,
               std::uint64_t chunk)
        : executor_(std::move(executor))
        , fd_(std::move(fd))
        , chunk_(std::max<std::uint64_t>(chunk, 1))
        , written_(static_cast<std::size_t>((size + chunk_ - 1) / chunk_), false)
        , changed_(std::make_shared<signal>(executor_)) {}

    int fd() const noexcept { return fd_.get(); }

    /// The download wrote the chunk at `offset`.
    void written(std::uint64_t offset) {
        update([&] {
            const auto i = static_cast<std::size_t>(offset / chunk_);
            if (i < written_.size()) written_[i] = true;
        });
    }
    /// The download ended: every byte it could write is there (an object that shrank since its
    /// status was read ends early).
    void finish() {
        update([&] { done_ = true; });
    }
    void fail(std::exception_ptr error) {
        update([&] { error_ = std::move(error); });
    }

    /// Waits until the bytes [offset, offset + length) are written or the download ended;
    /// rethrows the download's failure.
    boost::asio::awaitable<void> wait_for(std::uint64_t offset, std::uint64_t length) {
        for (;;) {
            std::shared_ptr<signal> next;
            {
                std::lock_guard lock(mutex_);
                if (error_) std::rethrow_exception(error_);
                if (done_ || covered(offset, length)) co_return;
                next = changed_;
            }
            // Closed at the next change; a close before this wait completes it at once.
            boost::system::error_code closed;
            co_await next->async_receive(
                boost::asio::redirect_error(boost::asio::use_awaitable, closed));
        }
    }

private:
    using signal = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;

    /// Applies `change` and wakes every waiter, which then looks again.
    template <class Change>
    void update(Change change) {
        std::shared_ptr<signal> wake;
        {
            std::lock_guard lock(mutex_);
            change();
            wake = std::exchange(changed_, std::make_shared<signal>(executor_));
        }
        wake->close();
    }

    bool covered(std::uint64_t offset, std::uint64_t length) const {
        if (length == 0) return true;
        const auto first = static_cast<std::size_t>(offset / chunk_);
        const auto last =
            std::min(written_.size(), static_cast<std::size_t>((offset + length - 1) / chunk_ + 1));
        for (std::size_t i = first; i < last; ++i)
            if (!written_[i]) return false;
        return true;
    }

    const boost::asio::any_io_executor executor_;
    const unique_fd fd_;
    const std::uint64_t chunk_;
    std::mutex mutex_; ///< guards the members below
    std::vector<bool> written_;
    bool done_ = false;
    std::exception_ptr error_;
    std::shared_ptr<signal> changed_;
};

} // namespace skyvol::detail

#endif
