#ifndef SKYVOL_FS_DETAIL_WRITE_BACK_UPLOADER_HPP
#define SKYVOL_FS_DETAIL_WRITE_BACK_UPLOADER_HPP

/// @file
/// The write-back uploader: one coroutine that puts the journal's entries into the bucket in
/// close order, and the flush barrier that waits for it. It never dies unnoticed: every failure,
/// expected or not, is logged, counted and retried with backoff; `flush` reports the error once
/// an entry has failed `attempts` times, and returns as soon as it is woken, not by polling.

#include <skyvol/detail/throw.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/fs/detail/write_back_journal.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/log.hpp>
#include <skyvol/store/concepts.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <fcntl.h>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace skyvol::detail {

template <object_store Store>
class write_back_uploader : public std::enable_shared_from_this<write_back_uploader<Store>> {
public:
    using executor_type = boost::asio::any_io_executor;

    struct settings {
        std::chrono::milliseconds delay{0}; ///< after a close, before its upload starts
        int attempts = 5;                   ///< failures of one entry before flush reports
        transfer_shape shape;
        log_sink log = log_to_stderr;
    };

    /// Opens the journal under `cache_dir` (with what a previous run left pending).
    write_back_uploader(executor_type executor, Store store, const std::filesystem::path& cache_dir,
                        settings s)
        : executor_(std::move(executor))
        , store_(std::move(store))
        , journal_(cache_dir)
        , settings_(std::move(s))
        , wake_(executor_, 1) {}

    write_back_journal& journal() noexcept { return journal_; }
    const write_back_journal& journal() const noexcept { return journal_; }

    /// Starts the upload coroutine; call once. `on_uploaded(path)` runs after each upload.
    void start(std::function<void(const std::string& path)> on_uploaded) {
        on_uploaded_ = std::move(on_uploaded);
        boost::asio::co_spawn(executor_, run(this->shared_from_this()),
                              [self = this->shared_from_this()](std::exception_ptr ep) {
                                  // run() catches everything; this is the last line of defence.
                                  if (ep) self->report_unexpected("the uploader stopped", ep);
                                  self->done_ = true;
                                  self->notify_waiters();
                              });
    }

    /// Asks the uploader to stop at its next step; an upload under way finishes first, and
    /// what is still pending stays journaled for the next volume on the cache folder.
    void stop() {
        stopping_ = true;
        wake();
    }
    bool done() const noexcept { return done_; }

    /// A new entry was committed, or something else the uploader waits for changed.
    void wake() { wake_.try_send(boost::system::error_code{}); }

    /// Records a committed entry (superseding a pending rewrite of it) and wakes the uploader.
    void committed(std::size_t superseded) {
        superseded_ += superseded;
        wake();
    }

    write_back_stats stats() const {
        write_back_stats out{uploaded_.load(),
                             superseded_.load(),
                             failed_attempts_.load(),
                             unexpected_errors_.load(),
                             {}};
        std::lock_guard lock(mutex_);
        out.last_failure = last_failure_;
        return out;
    }

    /// Waits until the journal is empty. Throws the error of an entry that failed `attempts`
    /// times during this flush, naming its key; pending entries stay queued either way.
    boost::asio::awaitable<void> flush(std::string_view store_name, std::string_view bucket) {
        ++flushing_; // uploads start without waiting for their delay
        auto signal = std::make_shared<channel>(executor_, 1);
        {
            std::lock_guard lock(mutex_);
            waiters_.push_back(signal);
            failure_.reset();  // a new flush tries again,
            retry_at_.reset(); // at once,
            attempts_ = 0;     // as many times as the first
        }
        struct done_waiting {
            write_back_uploader& u;
            std::shared_ptr<channel> signal;
            ~done_waiting() {
                std::lock_guard lock(u.mutex_);
                u.waiters_.remove(signal);
                --u.flushing_;
            }
        } guard{*this, signal};
        wake();
        for (;;) {
            // The signal is registered before each look, so no change can slip between the two.
            if (journal_.size() == 0) co_return;
            std::optional<std::pair<std::error_code, std::string>> failed;
            {
                std::lock_guard lock(mutex_);
                failed = failure_;
            }
            if (failed)
                throw skyvol::error(failed->first, {store_name, bucket, failed->second, {}});
            if (done_)
                throw skyvol::error(errc::cancelled, {store_name, bucket, {}, "uploader stopped"});
            co_await signal->async_receive(boost::asio::use_awaitable);
        }
    }

private:
    using channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;

    /// Waits until `until` or a wake-up, whichever comes first.
    boost::asio::awaitable<void> wait(boost::asio::steady_timer& timer,
                                      std::chrono::steady_clock::time_point until) {
        using namespace boost::asio::experimental::awaitable_operators;
        timer.expires_at(until);
        co_await (wake_.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable)) ||
                  timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable)));
    }

    static boost::asio::awaitable<void> run(std::shared_ptr<write_back_uploader> self) {
        boost::asio::steady_timer timer(self->executor_);
        while (!self->stopping_) {
            std::exception_ptr failure;
            std::optional<write_back_journal::entry> next;
            try {
                const auto now = std::chrono::steady_clock::now();
                next = self->journal_.front();
                std::optional<std::chrono::steady_clock::time_point> retry_at;
                {
                    std::lock_guard lock(self->mutex_);
                    retry_at = self->retry_at_;
                }
                if (!next) {
                    co_await self->wait(timer, now + std::chrono::hours(1));
                    continue;
                }
                const auto due = next->closed_at + self->settings_.delay;
                if (self->flushing_ == 0 && now < due) {
                    co_await self->wait(timer, due);
                    continue;
                }
                if (retry_at && now < *retry_at) {
                    co_await self->wait(timer, *retry_at);
                    continue;
                }
                if (!co_await self->upload(*next)) continue; // superseded meanwhile
                {
                    std::lock_guard lock(self->mutex_);
                    self->retry_at_.reset();
                    self->attempts_ = 0;
                    self->last_failure_.clear();
                }
                ++self->uploaded_;
                self->notify_waiters();
                continue;
            } catch (...) {
                failure = std::current_exception();
            }
            // Not in the handler: a coroutine cannot suspend inside a catch block.
            self->failed(failure, next ? next->seq : 0, next ? next->key : std::string());
        }
    }

    /// Uploads one entry and forgets it; false if a rewrite superseded it before it started.
    /// Throws what went wrong.
    boost::asio::awaitable<bool> upload(const write_back_journal::entry& e) {
        if (!journal_.begin_upload(e.seq)) co_return false;
        bool uploaded = false;
        struct end_upload_on_exit {
            write_back_journal& journal;
            std::uint64_t seq;
            const bool& uploaded;
            ~end_upload_on_exit() {
                if (!uploaded) journal.end_upload(seq, false);
            }
        } guard{journal_, e.seq, uploaded};
        unique_fd fd(::open(journal_.data_path(e.seq).c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) fail(last_error());
        co_await upload_from_file(store_, e.key, fd.get(), e.size, e.options, settings_.shape);
        uploaded = true;
        // Before the entry leaves the journal, so a flush that returns finds no stale status.
        if (on_uploaded_) on_uploaded_(e.path);
        if (const std::error_code ec = journal_.end_upload(e.seq, true))
            throw std::filesystem::filesystem_error("cannot forget an uploaded journal entry",
                                                    journal_.entry_path(e.seq), ec);
        co_return true;
    }

    /// Logs and counts a failed attempt of entry `seq`; once it has failed `attempts` times in a
    /// row (since the last flush began), flush reports it.
    void failed(std::exception_ptr failure, std::uint64_t seq, const std::string& key) {
        ++failed_attempts_;
        int attempts = 0;
        {
            std::lock_guard lock(mutex_);
            if (attempts_seq_ != seq) attempts_ = 0; // another entry is at the front now
            attempts_seq_ = seq;
            attempts = ++attempts_;
        }
        std::error_code ec;
        std::string what, reason; // reason: a store error's explanation (not unexpected)
        try {
            std::rethrow_exception(failure);
        } catch (const explained_error& e) {
            ec = e.code();
            reason = e.what();
        } catch (const boost::system::system_error& e) {
            ec = e.code();
        } catch (const std::system_error& e) {
            ec = e.code(); // std::filesystem's errors among them: local, so unexpected
            what = e.what();
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
            what = "unknown exception";
        }
        if (!what.empty()) {
            ++unexpected_errors_;
            if (!ec) ec = errc::io_error;
        }
        const auto limit = std::max(1, settings_.attempts);
        if (reason.empty()) reason = what;
        const std::string sentence =
            describe(ec, {store_.store_name(), store_.bucket_name(), key, reason});
        std::string message = "upload of " + sentence + ", attempt " + std::to_string(attempts);
        message += attempts >= limit ? "; flush reports it, retries go on" : "; retrying";
        if (settings_.log)
            settings_.log(attempts >= limit ? log_level::error : log_level::warning, message);
        // Backoff: 50 ms doubling per failure, at most 30 s; a flush retries at once.
        const auto backoff = std::min<std::chrono::milliseconds>(
            std::chrono::milliseconds(50L << std::min(attempts, 10)), std::chrono::seconds(30));
        {
            std::lock_guard lock(mutex_);
            retry_at_ = std::chrono::steady_clock::now() + backoff;
            last_failure_ = sentence;
            if (attempts >= limit) failure_.emplace(ec, key);
        }
        if (attempts >= limit) notify_waiters();
    }

    void report_unexpected(const char* what, std::exception_ptr ep) {
        ++unexpected_errors_;
        std::string message = std::string(what) + ": ";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            message += e.what();
        } catch (...) {
            message += "unknown exception";
        }
        if (settings_.log) settings_.log(log_level::error, message);
    }

    void notify_waiters() {
        std::lock_guard lock(mutex_);
        for (const auto& w : waiters_)
            w->try_send(boost::system::error_code{});
    }

    executor_type executor_;
    Store store_;
    write_back_journal journal_;
    settings settings_;
    std::function<void(const std::string& path)> on_uploaded_;
    channel wake_; ///< one pending wake-up at most: the loop looks at everything when woken
    std::atomic<bool> stopping_{false}, done_{false};
    std::atomic<int> flushing_{0};
    std::atomic<std::uint64_t> uploaded_{0}, superseded_{0}, failed_attempts_{0},
        unexpected_errors_{0};

    /// Guards the members below; never held across a suspension, nor together with the
    /// journal's own mutex.
    mutable std::mutex mutex_;
    std::list<std::shared_ptr<channel>> waiters_;                    ///< one per running flush
    std::optional<std::pair<std::error_code, std::string>> failure_; ///< code and key
    std::optional<std::chrono::steady_clock::time_point> retry_at_;
    std::string last_failure_; ///< why the last attempt failed; cleared by an upload
    int attempts_ = 0;         ///< failures in a row of entry attempts_seq_
    std::uint64_t attempts_seq_ = 0;
};

} // namespace skyvol::detail

#endif
