#ifndef SKYVOL_FS_DETAIL_READ_AHEAD_HPP
#define SKYVOL_FS_DETAIL_READ_AHEAD_HPP

/// @file
/// Read-ahead for one open file without a read cache. A sequential reader finds its bytes
/// already fetched by parallel ranged GETs: the window ahead of it doubles each time it consumes
/// a fetched range, up to a limit, and collapses on a random read, which then fetches just the
/// bytes it asks for. Buffers of all open files together stay within one budget.

#include <skyvol/detail/buffer_pool.hpp>
#include <skyvol/detail/throw.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <utility>

namespace skyvol::detail {

/// How a reader's window grows (from `volume_options`).
struct read_ahead_limits {
    std::uint64_t first = 1ull << 20;   ///< the first ranged GET of a sequential reader
    std::uint64_t part = 8ull << 20;    ///< the largest single ranged GET
    std::uint64_t window = 64ull << 20; ///< most bytes fetched ahead of one reader; 0: none
};

/// Bytes that all open files' read-ahead buffers may hold together, and the buffers they reuse.
class read_ahead_budget {
public:
    /// Freed buffers kept for reuse at most: a reader's ranges come and go at 1-8 MiB each.
    static constexpr std::size_t keep_idle = 32u << 20;

    explicit read_ahead_budget(std::uint64_t limit) noexcept
        : limit_(limit)
        , buffers_(keep_idle) {}

    /// Takes `n` bytes if they fit.
    bool try_take(std::uint64_t n) noexcept {
        std::uint64_t used = used_.load();
        do {
            if (used + n > limit_) return false;
        } while (!used_.compare_exchange_weak(used, used + n));
        return true;
    }
    /// Takes `n` bytes whether or not they fit: what a reader waits for is always fetched.
    void take(std::uint64_t n) noexcept { used_ += n; }
    void give_back(std::uint64_t n) noexcept { used_ -= n; }
    std::uint64_t in_use() const noexcept { return used_.load(); }
    buffer_pool& buffers() noexcept { return buffers_; }

private:
    std::atomic<std::uint64_t> used_{0};
    std::uint64_t limit_;
    buffer_pool buffers_;
};

class read_ahead {
public:
    using executor_type = boost::asio::any_io_executor;
    /// Reads up to `buffer.size()` bytes of the object at `offset`; throws on failure.
    using fetch_function = std::function<boost::asio::awaitable<std::size_t>(
        std::uint64_t offset, boost::asio::mutable_buffer buffer)>;

    read_ahead(executor_type executor, std::uint64_t size, fetch_function fetch,
               read_ahead_limits limits, std::shared_ptr<read_ahead_budget> budget)
        : strand_(boost::asio::make_strand(std::move(executor)))
        , size_(size)
        , fetch_(std::move(fetch))
        , limits_(limits)
        , budget_(std::move(budget)) {
        limits_.first = std::max<std::uint64_t>(limits_.first, 4096);
        limits_.part = std::max(limits_.part, limits_.first);
    }
    /// A reader that goes stops the GETs still filling its ranges: a stuck one would hold its
    /// connection until the request timed out. The fills run on the strand; so does this stop.
    ~read_ahead() {
        boost::asio::post(strand_, [ranges = std::move(ranges_)] {
            for (const range_ptr& r : ranges)
                if (!r->done) r->stop.emit(boost::asio::cancellation_type::terminal);
        });
    }
    read_ahead(const read_ahead&) = delete;
    read_ahead& operator=(const read_ahead&) = delete;

    /// Reads at `offset` into `buffer`; fewer bytes only at the end of the object. Callers may
    /// overlap reads; they run one at a time on the reader's strand. `self` keeps the reader
    /// alive until the read is done.
    static boost::asio::awaitable<std::size_t> read(std::shared_ptr<read_ahead> self,
                                                    std::uint64_t offset,
                                                    boost::asio::mutable_buffer buffer) {
        const std::size_t n = co_await boost::asio::co_spawn(
            self->strand_, self->read_here(offset, buffer), boost::asio::use_awaitable);
        co_return n;
    }

    /// Ranged GETs this reader started (for tests and statistics).
    std::uint64_t fetches() const noexcept { return fetches_; }

private:
    /// One fetched range. Owns its share of the budget; readers hold it while they copy out.
    struct range {
        range(const executor_type& ex, std::uint64_t at, std::size_t n,
              std::shared_ptr<read_ahead_budget> b)
            : offset(at)
            , length(n)
            , data(b->buffers().acquire(n))
            , ready(ex, boost::asio::steady_timer::time_point::max())
            , budget(std::move(b)) {}
        ~range() {
            budget->buffers().recycle(std::move(data));
            budget->give_back(length);
        }
        std::uint64_t end() const noexcept { return offset + length; }

        std::uint64_t offset;
        std::size_t length;
        mapped_buffer data;
        std::size_t got = 0; ///< bytes the fetch delivered (less: the object is shorter)
        bool done = false;
        std::exception_ptr error;
        boost::asio::steady_timer ready;       ///< cancelled when done: wakes every waiter
        boost::asio::cancellation_signal stop; ///< cancels the fill (on the strand, until done)
        std::shared_ptr<read_ahead_budget> budget;
    };
    using range_ptr = std::shared_ptr<range>;

    /// How far out of order the reads of one sequential stream may arrive: the kernel sends its
    /// read-ahead as several 1 MiB requests at once, served by different threads. A read this
    /// far behind is served alone, one this far ahead continues the stream; neither resets it.
    static constexpr std::uint64_t reorder_slack = 8ull << 20;
    /// The smallest read that may start a stream ahead of where the last read ended.
    static constexpr std::size_t min_overtaking_read = 128u << 10;
    /// How far behind the newest read fetched ranges are kept for such stragglers.
    static constexpr std::uint64_t keep_behind = 1ull << 20;

    boost::asio::awaitable<std::size_t> read_here(std::uint64_t offset,
                                                  boost::asio::mutable_buffer buffer) {
        if (offset >= size_ || buffer.size() == 0) co_return 0;
        const std::uint64_t end = std::min<std::uint64_t>(size_, offset + buffer.size());
        const auto want = static_cast<std::size_t>(end - offset);
        char* const out = static_cast<char*>(buffer.data());

        const bool fetched =
            !ranges_.empty() && offset >= ranges_.front()->offset && offset < ranges_.back()->end();
        const bool behind = !ranges_.empty() && offset < ranges_.front()->offset &&
                            offset + reorder_slack >= ranges_.front()->offset;
        // Ahead of the stream, or of where it would start: one of the kernel's parallel requests
        // overtook the others. Small reads never count: the kernel sends random reads as pages.
        const std::uint64_t stream_end = ranges_.empty() ? expected_ : ranges_.back()->end();
        const bool streaming = !fetched && offset > expected_ && offset >= stream_end &&
                               offset <= std::max(expected_, stream_end) + reorder_slack &&
                               (!ranges_.empty() || buffer.size() >= min_overtaking_read);
        if (limits_.window == 0 || (!fetched && !streaming && offset != expected_)) {
            // A read straggling just behind the stream is served alone, the stream kept.
            if (!behind) collapse();
            const std::size_t n = co_await fetch_direct(offset, out, want);
            if (!behind) expected_ = offset + n;
            co_return n;
        }
        if (!fetched) start_stream(offset, streaming);
        drop_consumed(offset);
        top_up(offset, end);

        std::size_t copied = 0;
        while (copied < want) {
            const std::uint64_t at = offset + copied;
            range_ptr r = find(at);
            if (!r) {
                // Another read collapsed the stream while this one waited.
                copied += co_await fetch_direct(at, out + copied, want - copied);
                break;
            }
            if (!r->done) {
                auto [ignored] =
                    co_await r->ready.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
                (void)ignored;
                // The fill ends the wait by cancelling the timer once done; a wait that ends
                // before is this read's own cancellation, not the end of the object.
                if (!r->done) fail_cancelled();
            }
            if (r->error) {
                forget_from(r);
                if (copied > 0) break;
                std::rethrow_exception(r->error);
            }
            const std::uint64_t available = r->offset + r->got;
            if (at >= available) break; // the object is shorter than when it was opened
            const auto n = static_cast<std::size_t>(std::min(available, end) - at);
            std::memcpy(out + copied, r->data.data() + (at - r->offset), n);
            copied += n;
            if (r->got < r->length) break;
        }
        expected_ = std::max(expected_, offset + copied); // a straggler does not move it back
        co_return copied;
    }

    boost::asio::awaitable<std::size_t> fetch_direct(std::uint64_t at, char* out, std::size_t n) {
        ++fetches_;
        const std::size_t got = co_await fetch_(at, boost::asio::buffer(out, n));
        co_return got;
    }

    void collapse() {
        ranges_.clear();
        window_ = 0;
    }

    /// Starts a stream at `offset`; `overtaken`: at `expected_`, where the requests this read
    /// overtook will ask.
    void start_stream(std::uint64_t offset, bool overtaken) {
        if (overtaken && !ranges_.empty()) return; // the stream goes on
        ranges_.clear();
        next_fetch_ = overtaken ? expected_ : offset;
        next_size_ = limits_.first;
        window_ = std::min(limits_.window, 2 * limits_.first);
    }

    /// Ranges the reader has left behind go; each one consumed doubles the window.
    void drop_consumed(std::uint64_t offset) {
        while (!ranges_.empty() && ranges_.front()->done &&
               ranges_.front()->end() + keep_behind <= offset) {
            ranges_.pop_front();
            window_ = std::min(limits_.window, window_ * 2);
        }
    }

    /// Starts ranged GETs until the window ahead of `offset` is covered or the budget is spent;
    /// what the read itself wants, up to `end`, is fetched even beyond the budget.
    void top_up(std::uint64_t offset, std::uint64_t end) {
        const std::uint64_t horizon = std::min(size_, offset + window_);
        while (next_fetch_ < size_ && (next_fetch_ < end || next_fetch_ < horizon)) {
            auto n =
                static_cast<std::size_t>(std::min({next_size_, limits_.part, size_ - next_fetch_}));
            if (!budget_->try_take(n)) {
                if (next_fetch_ >= end) break;
                n = static_cast<std::size_t>(std::min<std::uint64_t>(n, end - next_fetch_));
                budget_->take(n);
            }
            auto r = std::make_shared<range>(strand_, next_fetch_, n, budget_);
            ranges_.push_back(r);
            ++fetches_;
            boost::asio::co_spawn(
                strand_, fill(r, fetch_),
                boost::asio::bind_cancellation_slot(r->stop.slot(), boost::asio::detached));
            next_fetch_ += n;
            next_size_ = std::min(limits_.part, next_size_ * 2);
        }
    }

    /// Fetches one range; holds only the range and a copy of the fetch function, so a reader
    /// that closes while GETs are in flight leaves nothing dangling.
    static boost::asio::awaitable<void> fill(range_ptr r, fetch_function fetch) {
        std::exception_ptr error;
        std::size_t got = 0;
        try {
            got = co_await fetch(r->offset, boost::asio::buffer(r->data.data(), r->length));
        } catch (...) {
            error = std::current_exception();
        }
        r->got = got;
        r->error = error;
        r->done = true;
        r->ready.cancel();
    }

    range_ptr find(std::uint64_t at) const {
        for (const auto& r : ranges_)
            if (at >= r->offset && at < r->end()) return r;
        return nullptr;
    }

    /// A failed range and everything after it is fetched anew by the next read.
    void forget_from(const range_ptr& failed) {
        const auto it = std::find(ranges_.begin(), ranges_.end(), failed);
        if (it == ranges_.end()) return;
        next_fetch_ = failed->offset;
        next_size_ = limits_.first;
        ranges_.erase(it, ranges_.end());
    }

    boost::asio::strand<executor_type> strand_;
    std::uint64_t size_;
    fetch_function fetch_;
    read_ahead_limits limits_;
    std::shared_ptr<read_ahead_budget> budget_;
    std::deque<range_ptr> ranges_; ///< contiguous, in offset order
    std::uint64_t next_fetch_ = 0; ///< where the next range starts
    std::uint64_t next_size_ = 0;  ///< the next range's length (doubles up to `part`)
    std::uint64_t window_ = 0;     ///< bytes to keep fetched ahead of the reader
    std::uint64_t expected_ = 0;   ///< where a sequential reader reads next
    std::atomic<std::uint64_t> fetches_{0};
};

} // namespace skyvol::detail

#endif
