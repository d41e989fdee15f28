#ifndef SKYVOL_AUTH_CREDENTIAL_PROVIDER_HPP
#define SKYVOL_AUTH_CREDENTIAL_PROVIDER_HPP

/// @file
/// `auth::credential_provider`: credentials shared by every request of a store, cached, and
/// refreshed before they expire. Fixed keys never refresh; the AWS chain (environment, profile,
/// web identity, container endpoint, IMDSv2; see docs/credentials.md) refreshes temporary ones
/// when they are within `refresh_window` of expiry, once for all the requests waiting.
///
///     auth::credential_provider creds(executor);                  // the chain
///     auth::credentials keys = co_await creds.async_get(boost::asio::use_awaitable);

#include <skyvol/auth/credentials.hpp>
#include <skyvol/auth/detail/credential_sources.hpp>
#include <skyvol/auth/detail/credential_text.hpp>
#include <skyvol/error.hpp>
#include <skyvol/http/client.hpp>
#include <skyvol/log.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace skyvol::auth {

/// How a credential_provider fetches and refreshes.
struct credential_provider_options {
    /// Credentials expiring within this are fetched again before use (AWS SDKs use 5 minutes).
    std::chrono::seconds refresh_window{300};
    /// After a failed refresh, credentials that have not expired yet are still handed out, and
    /// the next refresh waits this long, so that a broken endpoint is not asked per request.
    std::chrono::seconds retry_interval{10};
    /// For STS, the container endpoint and IMDS: 1 s to connect, 2 attempts.
    http::client_options http = detail::credential_http_options();
    /// Fetches (info) and failures (warning); never a secret. May be empty.
    log_sink log;
};

/// One fetch from a source: credentials and where they came from, or a `credential_error`
/// naming the source. Gets the provider's HTTP client.
using credential_fetch =
    std::function<boost::asio::awaitable<resolved_credentials>(std::shared_ptr<http::client>)>;

/// Credentials for signing, shared and thread-safe; copies share one cache. See the file
/// comment.
class credential_provider {
public:
    using executor_type = boost::asio::any_io_executor;

    /// Fixed credentials (explicit keys; empty ones mean anonymous): handed out as they are,
    /// never refreshed. `source` names them in logs.
    credential_provider(executor_type executor, credentials fixed,
                        std::string source = "explicit credentials")
        : s_(std::make_shared<state>(std::move(executor), credential_provider_options())) {
        s_->cached = resolved_credentials{std::move(fixed), std::move(source)};
    }

    /// The AWS chain. The source is chosen at the first fetch, from the environment and the
    /// shared files, and asked again at each refresh; nothing is fetched until the first get.
    explicit credential_provider(executor_type executor, credential_provider_options options = {})
        : credential_provider(std::move(executor), chain_fetch(), std::move(options)) {}

    /// Credentials from `fetch`, cached and refreshed like the chain's. Network fetches run on
    /// `executor`.
    credential_provider(executor_type executor, credential_fetch fetch,
                        credential_provider_options options = {})
        : s_(std::make_shared<state>(std::move(executor), std::move(options))) {
        s_->fetch = std::move(fetch);
        s_->client = std::make_shared<http::client>(s_->executor, s_->options.http);
    }

    /// Completes with `(boost::system::error_code, credentials)`: the cached credentials, or
    /// fresh ones when there are none yet or they expire within the refresh window. Concurrent
    /// calls share one fetch. Errors: errc::access_denied or errc::invalid_config (last_error()
    /// says why), errc::cancelled after shutdown(). The handler runs on its associated executor
    /// (else the provider's), never inside this call.
    template <class CompletionToken>
    auto async_get(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(boost::system::error_code, credentials)>(
            [](auto handler, std::shared_ptr<state> s) {
                std::unique_ptr<waiter> w = make_waiter(s, std::move(handler));
                start(s, std::move(w));
            },
            token, s_);
    }

    /// Blocks until async_get would complete; `why` names the failing source. Must not run on
    /// the only thread that runs the provider's executor.
    resolved_credentials get(std::string& why, std::error_code& ec) const {
        std::promise<outcome> done;
        std::future<outcome> result = done.get_future();
        start(s_, std::make_unique<promise_waiter>(std::move(done)));
        outcome got = result.get();
        ec = got.ec;
        why = std::move(got.why);
        return std::move(got.creds);
    }

    /// Where the current credentials came from ("" before the first fetch).
    std::string source() const {
        std::lock_guard lock(s_->mutex);
        return s_->cached ? s_->cached->source : std::string();
    }

    /// The sentence of the last failed fetch, "" after a success.
    std::string last_error() const {
        std::lock_guard lock(s_->mutex);
        return s_->last_error;
    }

    /// Successful fetches so far (0 for fixed credentials).
    std::size_t fetches() const {
        std::lock_guard lock(s_->mutex);
        return s_->fetches;
    }

    /// Closes the HTTP client's connections; fetches under way fail with errc::cancelled. Call
    /// before joining the executor's threads.
    void shutdown() {
        if (s_->client) s_->client->shutdown();
    }

    executor_type get_executor() const noexcept { return s_->executor; }

private:
    using clock = std::chrono::system_clock;

    struct outcome {
        std::error_code ec;
        resolved_credentials creds;
        std::string why;
    };

    /// A get waiting for a fetch; completed once.
    struct waiter {
        virtual ~waiter() = default;
        virtual void complete(outcome result) = 0;
    };

    template <class Handler, class WorkExecutor>
    struct handler_waiter final : waiter {
        handler_waiter(Handler h, WorkExecutor w)
            : handler(std::move(h))
            , work(std::move(w)) {}
        void complete(outcome result) override {
            boost::asio::post(work,
                              [h = std::move(handler), ec = boost::system::error_code(result.ec),
                               keys = std::move(result.creds.keys)]() mutable {
                                  std::move(h)(ec, std::move(keys));
                              });
        }
        Handler handler;
        WorkExecutor work; ///< keeps the handler's executor busy until completion
    };

    struct promise_waiter final : waiter {
        explicit promise_waiter(std::promise<outcome> p)
            : done(std::move(p)) {}
        void complete(outcome result) override { done.set_value(std::move(result)); }
        std::promise<outcome> done;
    };

    struct state {
        state(executor_type e, credential_provider_options o)
            : executor(std::move(e))
            , options(std::move(o)) {}

        executor_type executor;
        credential_provider_options options;
        credential_fetch fetch; ///< empty for fixed credentials
        std::shared_ptr<http::client> client;

        mutable std::mutex mutex;
        std::optional<resolved_credentials> cached;
        std::string last_error;
        clock::time_point next_try{}; ///< no refresh before this after a failure
        bool refreshing = false;
        std::size_t fetches = 0;
        std::vector<std::unique_ptr<waiter>> waiters;
    };

    static credential_fetch chain_fetch() {
        auto memo = std::make_shared<detail::chain_memo>();
        // A plain lambda calling the coroutine: the memo is copied into its frame.
        return [memo](std::shared_ptr<http::client> c) {
            return detail::fetch_chain(memo, std::move(c));
        };
    }

    template <class Handler>
    static std::unique_ptr<waiter> make_waiter(const std::shared_ptr<state>& s, Handler handler) {
        auto work = boost::asio::prefer(boost::asio::get_associated_executor(handler, s->executor),
                                        boost::asio::execution::outstanding_work.tracked);
        return std::make_unique<handler_waiter<Handler, decltype(work)>>(std::move(handler),
                                                                         std::move(work));
    }

    /// Whether the cached credentials may be handed out at `now` without a fetch.
    static bool usable(const state& s, clock::time_point now) {
        const auto& expiration = s.cached->keys.expiration;
        if (!s.fetch || !expiration) return true; // fixed or long-term keys
        if (now + s.options.refresh_window < *expiration) return true;
        return now < *expiration && now < s.next_try; // a refresh failed lately
    }

    static void start(const std::shared_ptr<state>& s, std::unique_ptr<waiter> w) {
        std::unique_lock lock(s->mutex);
        if (s->cached && usable(*s, clock::now())) {
            outcome ready{{}, *s->cached, {}};
            lock.unlock();
            w->complete(std::move(ready));
            return;
        }
        s->waiters.push_back(std::move(w));
        if (s->refreshing) return;
        s->refreshing = true;
        lock.unlock();
        launch(s);
    }

    static void launch(const std::shared_ptr<state>& s) {
        std::optional<boost::asio::awaitable<resolved_credentials>> fetching;
        try {
            fetching.emplace(s->fetch(s->client));
        } catch (...) {
            finish(s, std::current_exception(), resolved_credentials());
            return;
        }
        boost::asio::co_spawn(s->executor, std::move(*fetching),
                              [s](std::exception_ptr ep, resolved_credentials got) {
                                  finish(s, ep, std::move(got));
                              });
    }

    static void finish(const std::shared_ptr<state>& s, std::exception_ptr ep,
                       resolved_credentials got) {
        std::vector<std::unique_ptr<waiter>> waiting;
        outcome result;
        std::string message;
        log_level level = log_level::info;
        {
            std::lock_guard lock(s->mutex);
            s->refreshing = false;
            const clock::time_point now = clock::now();
            if (!ep) {
                ++s->fetches;
                s->last_error.clear();
                s->next_try = clock::time_point();
                message = "credentials from " + got.source + ": " + redacted(got.keys);
                if (got.keys.expiration)
                    message += ", valid until " + detail::format_iso8601(*got.keys.expiration);
                s->cached = got;
                result.creds = std::move(got);
            } else {
                std::tie(result.ec, result.why) = detail::describe_failure(ep);
                s->last_error = result.why;
                s->next_try = now + s->options.retry_interval;
                level = log_level::warning;
                message = "credentials: " + result.why;
                const auto& cached = s->cached;
                if (cached && cached->keys.expiration && now < *cached->keys.expiration) {
                    // Still valid: keep working and try again after retry_interval.
                    message += " (the current ones stay in use until " +
                               detail::format_iso8601(*cached->keys.expiration) + ")";
                    result.ec.clear();
                    result.why.clear();
                    result.creds = *cached;
                }
            }
            waiting.swap(s->waiters);
        }
        if (s->options.log) s->options.log(level, message);
        for (auto& w : waiting)
            w->complete(result);
    }

    std::shared_ptr<state> s_;
};

} // namespace skyvol::auth

#endif
