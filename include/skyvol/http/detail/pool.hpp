#ifndef SKYVOL_HTTP_DETAIL_POOL_HPP
#define SKYVOL_HTTP_DETAIL_POOL_HPP

/// @file
/// The client's shared state: one pool of connections per scheme, host and port, a bound on how
/// many are open, and the requests waiting for one. A mutex guards it; waiters are completion
/// handlers resumed on their own executors.

#include <skyvol/error.hpp>
#include <skyvol/http/detail/connection.hpp>
#include <skyvol/http/detail/tls.hpp>
#include <skyvol/http/options.hpp>
#include <skyvol/log.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace skyvol::http::detail {

using acquire_signature = void(boost::system::error_code, std::shared_ptr<connection>);

struct pool_waiter {
    boost::asio::any_completion_handler<acquire_signature> handler;
    boost::asio::any_io_executor work; // the handler's executor, kept busy while it waits
};

struct host_pool {
    std::vector<std::shared_ptr<connection>> idle; // most recently used last
    std::size_t open = 0;                          // idle, in use and being connected
    std::deque<pool_waiter> waiters;
};

struct client_state {
    client_state(boost::asio::any_io_executor ex, client_options o)
        : executor(std::move(ex))
        , options(std::move(o)) {
        if (!options.verify_peer && options.log)
            options.log(log_level::warning,
                        "TLS certificate verification is off: any server can pose as the endpoint");
        // A CA file named in the options is checked now, so that a typo fails at construction;
        // anything else (tens of milliseconds to parse a bundle) waits for the first https use.
        if (options.verify_peer && !options.ca_file.empty()) tls = make_tls_context(options);
    }

    boost::asio::any_io_executor executor;
    client_options options;
    std::shared_ptr<boost::asio::ssl::context> tls; // set once, under the mutex

    std::mutex mutex;
    std::map<std::string, host_pool> pools;
    std::set<std::shared_ptr<boost::asio::steady_timer>> sleepers; // backoffs under way
    bool shut = false;

    std::size_t max_open() const noexcept {
        return std::max<std::size_t>(1, options.max_connections_per_host);
    }

    /// Makes the TLS context on first use (outside take(), which holds the mutex).
    void need_tls() {
        std::lock_guard lock(mutex);
        if (!tls) tls = make_tls_context(options);
    }

    std::shared_ptr<connection> new_connection(bool secure) {
        return std::make_shared<connection>(boost::asio::make_strand(executor),
                                            secure ? tls : nullptr);
    }

    /// Under the lock: an idle connection, a slot for a new one (a fresh connection), or null
    /// when the caller must wait. Expired idle connections move to `expired`.
    std::shared_ptr<connection> take(host_pool& p, bool secure,
                                     std::vector<std::shared_ptr<connection>>& expired) {
        const auto oldest = std::chrono::steady_clock::now() - options.idle_timeout;
        while (!p.idle.empty() && p.idle.front()->idle_since <= oldest) {
            expired.push_back(std::move(p.idle.front()));
            p.idle.erase(p.idle.begin());
            --p.open;
        }
        if (!p.idle.empty()) {
            std::shared_ptr<connection> c = std::move(p.idle.back());
            p.idle.pop_back();
            return c;
        }
        if (p.open < max_open()) {
            ++p.open;
            return new_connection(secure);
        }
        return nullptr;
    }
};

inline void complete_waiter(pool_waiter w, boost::system::error_code ec,
                            std::shared_ptr<connection> c) {
    boost::asio::any_io_executor ex = w.work;
    boost::asio::post(ex, [h = std::move(w.handler), ec, c = std::move(c),
                           work = std::move(w.work)]() mutable { std::move(h)(ec, std::move(c)); });
}

/// A connection of the pool `key`: idle, or new and unconnected; waits while the pool is full.
/// Throws errc::cancelled once the client is shut down.
inline boost::asio::awaitable<std::shared_ptr<connection>> acquire(std::shared_ptr<client_state> s,
                                                                   std::string key, bool secure) {
    if (secure) s->need_tls();
    std::shared_ptr<connection> c;
    std::vector<std::shared_ptr<connection>> expired;
    {
        std::lock_guard lock(s->mutex);
        if (!s->shut) c = s->take(s->pools[key], secure, expired);
    }
    expired.clear();
    if (c) co_return c;
    auto initiate = [s, key, secure](auto handler) {
        std::vector<std::shared_ptr<connection>> old;
        boost::asio::any_io_executor work =
            boost::asio::prefer(boost::asio::get_associated_executor(handler, s->executor),
                                boost::asio::execution::outstanding_work.tracked);
        pool_waiter w{boost::asio::any_completion_handler<acquire_signature>(std::move(handler)),
                      std::move(work)};
        std::unique_lock lock(s->mutex);
        if (s->shut) {
            lock.unlock();
            complete_waiter(std::move(w), boost::asio::error::operation_aborted, nullptr);
            return;
        }
        host_pool& p = s->pools[key];
        if (std::shared_ptr<connection> now = s->take(p, secure, old)) {
            lock.unlock();
            complete_waiter(std::move(w), boost::system::error_code(), std::move(now));
            return;
        }
        p.waiters.push_back(std::move(w));
    };
    auto [ec, given] = co_await boost::asio::async_initiate<const use_tuple_t&, acquire_signature>(
        std::move(initiate), use_tuple);
    if (ec) throw_http_error(errc::cancelled, "the HTTP client was shut down");
    if (!given) given = s->new_connection(secure); // a slot handed over without a connection
    co_return given;
}

/// Gives a connection back: to a waiter, to the idle list if `keep`, or closes it.
inline void release(const std::shared_ptr<client_state>& s, const std::string& key,
                    std::shared_ptr<connection> c, bool keep) {
    std::shared_ptr<connection> dropped;
    // Emplaced, not assigned: any_completion_handler's move assignment is broken in Boost 1.81.
    std::optional<pool_waiter> w;
    {
        std::lock_guard lock(s->mutex);
        host_pool& p = s->pools[key];
        keep = keep && !s->shut;
        if (keep)
            c->idle_since = std::chrono::steady_clock::now();
        else
            dropped = std::move(c);
        if (!p.waiters.empty()) {
            w.emplace(std::move(p.waiters.front()));
            p.waiters.pop_front();
        } else if (keep) {
            p.idle.push_back(std::move(c));
        } else {
            --p.open;
        }
    }
    dropped.reset();
    if (w) complete_waiter(std::move(*w), boost::system::error_code(), std::move(c));
}

/// Closes idle connections, fails waiting acquires and cuts backoffs short.
inline void shutdown(const std::shared_ptr<client_state>& s) {
    std::vector<std::shared_ptr<connection>> idle;
    std::vector<pool_waiter> waiters;
    std::vector<std::shared_ptr<boost::asio::steady_timer>> timers;
    {
        std::lock_guard lock(s->mutex);
        s->shut = true;
        for (auto& [key, p] : s->pools) {
            p.open -= p.idle.size();
            for (auto& c : p.idle)
                idle.push_back(std::move(c));
            p.idle.clear();
            for (auto& w : p.waiters)
                waiters.push_back(std::move(w));
            p.waiters.clear();
        }
        timers.assign(s->sleepers.begin(), s->sleepers.end());
    }
    idle.clear();
    for (auto& w : waiters)
        complete_waiter(std::move(w), boost::asio::error::operation_aborted, nullptr);
    for (auto& t : timers)
        boost::asio::post(t->get_executor(), [t] { t->cancel(); });
}

/// Waits `delay` on the timer's strand, unless shutdown() cancels it.
inline boost::asio::awaitable<void> sleep_on_strand(std::shared_ptr<client_state> s,
                                                    std::shared_ptr<boost::asio::steady_timer> t,
                                                    std::chrono::milliseconds delay) {
    {
        std::lock_guard lock(s->mutex);
        if (s->shut) co_return;
        s->sleepers.insert(t);
    }
    // Registration and the wait start in one strand turn, so a posted cancel finds the wait.
    t->expires_after(delay);
    auto [ec] = co_await t->async_wait(use_tuple);
    (void)ec;
    std::lock_guard lock(s->mutex);
    s->sleepers.erase(t);
}

/// Backs off for `delay`; shutdown() ends it early.
inline boost::asio::awaitable<void> backoff(std::shared_ptr<client_state> s,
                                            std::chrono::milliseconds delay) {
    auto strand = boost::asio::make_strand(s->executor);
    auto timer = std::make_shared<boost::asio::steady_timer>(strand);
    co_await boost::asio::co_spawn(strand, sleep_on_strand(s, timer, delay),
                                   boost::asio::use_awaitable);
}

} // namespace skyvol::http::detail

#endif
