#ifndef SKYVOL_HTTP_DETAIL_SEND_HPP
#define SKYVOL_HTTP_DETAIL_SEND_HPP

/// @file
/// The retry loop around single attempts: which failures and responses are worth another try,
/// exponential backoff with full jitter, and the bounds on attempts and time.

#include <skyvol/detail/redact.hpp>
#include <skyvol/detail/throw.hpp>
#include <skyvol/error.hpp>
#include <skyvol/http/detail/connection.hpp>
#include <skyvol/http/detail/exchange.hpp>
#include <skyvol/http/detail/pool.hpp>
#include <skyvol/http/detail/tls.hpp>
#include <skyvol/http/message.hpp>
#include <skyvol/http/options.hpp>
#include <skyvol/http/url.hpp>
#include <skyvol/log.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>

namespace skyvol::http::detail {

/// `target` with the values of signing query parameters (presigned URLs: X-Amz-Signature,
/// X-Amz-Security-Token, X-Amz-Credential...) redacted, as any server text is.
inline std::string redact_target(std::string_view target) {
    const std::size_t q = target.find('?');
    if (q == std::string_view::npos) return std::string(target);
    return std::string(target.substr(0, q + 1)) +
           skyvol::detail::redact_secrets(std::string(target.substr(q + 1)));
}

inline bool retryable_status(unsigned status) noexcept {
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/// The backoff before attempt `attempt + 1`: full jitter over an exponential cap, at least what
/// a Retry-After header asks for (up to max_backoff).
inline std::chrono::milliseconds backoff_delay(const client_options& o, int attempt,
                                               const response* reply) {
    thread_local std::mt19937_64 random_bits{std::random_device()()};
    const auto base = std::max<std::int64_t>(0, o.base_backoff.count());
    const auto most = std::max<std::int64_t>(0, o.max_backoff.count());
    std::int64_t cap = base;
    for (int i = 1; i < attempt && cap < most; ++i)
        cap *= 2;
    cap = std::min(cap, most);
    std::uniform_int_distribution<std::int64_t> pick(0, cap);
    std::int64_t delay = pick(random_bits);
    if (reply) {
        const std::string_view after = reply->header("retry-after");
        std::int64_t seconds = 0;
        bool digits = !after.empty() && after.size() < 9;
        for (char c : after) {
            digits = digits && c >= '0' && c <= '9';
            if (digits) seconds = seconds * 10 + (c - '0');
        }
        if (digits) delay = std::max(delay, std::min(seconds * 1000, most));
    }
    return std::chrono::milliseconds(delay);
}

/// Sends `r` with retries; see client::send.
inline boost::asio::awaitable<response> send(std::shared_ptr<client_state> s, url origin, request r,
                                             boost::asio::mutable_buffer into, bool into_mode) {
    if (origin.port == 0) origin.port = origin.default_port();
    const client_options& o = s->options;
    const bool secure = origin.tls();
    const std::string key = origin.scheme + "://" + origin.host + ":" + std::to_string(origin.port);
    const std::string label = std::string(boost::beast::http::to_string(r.method)) + " " +
                              origin.origin() + redact_target(r.target);
    const auto start = std::chrono::steady_clock::now();
    const int max_attempts = std::max(1, o.max_attempts);
    bool stale_retried = false;
    // Connecting has one budget over all attempts, connect_timeout from the first attempt
    // that could not connect: an unreachable or stalled server fails in that time, not in
    // max_attempts times it.
    auto connect_by = std::chrono::steady_clock::time_point::max();
    for (int attempt = 1;; ++attempt) {
        std::shared_ptr<connection> c = co_await acquire(s, key, secure);
        const auto attempt_began = std::chrono::steady_clock::now();
        auto [ep, result] = co_await boost::asio::co_spawn(
            c->strand, exchange(c, origin, &r, into, into_mode, &o, connect_by), use_tuple);
        if (ep) {
            release(s, key, std::move(c), false);
            std::rethrow_exception(ep);
        }
        release(s, key, std::move(c), result.reusable);
        // A cancelled request (its connection closed by the abort) ends here, not in a retry.
        const auto state = co_await boost::asio::this_coro::cancellation_state;
        if (state.cancelled() != boost::asio::cancellation_type::none)
            skyvol::detail::fail_cancelled();

        std::string reason;
        if (result.ok) {
            const unsigned status = result.reply.status;
            const bool again =
                (r.idempotent && (retryable_status(status) ||
                                  (o.retryable_response && o.retryable_response(result.reply)))) ||
                (r.refusals_retryable && (status == 429 || status == 503));
            if (!again) co_return std::move(result.reply);
            reason = "status " + std::to_string(result.reply.status);
        } else {
            const bool may_repeat = r.idempotent || !result.maybe_sent;
            // A kept-alive connection the server dropped meanwhile: one free try on a new one.
            if (result.stale && may_repeat && !stale_retried) {
                stale_retried = true;
                --attempt;
                if (o.log)
                    o.log(log_level::debug, "sending " + label +
                                                " again on a new connection: the kept-alive one "
                                                "was closed by the server (" +
                                                result.what + ")");
                continue;
            }
            if (!result.retryable || !may_repeat || attempt >= max_attempts)
                throw_http_error(static_cast<errc>(result.code.value()),
                                 label + ": " + result.what);
            reason = result.what;
        }
        const std::chrono::milliseconds delay =
            backoff_delay(o, attempt, result.ok ? &result.reply : nullptr);
        if (!result.ok && result.connecting) {
            connect_by = std::min(connect_by, attempt_began + o.connect_timeout);
            if (std::chrono::steady_clock::now() + delay >= connect_by)
                throw_http_error(static_cast<errc>(result.code.value()),
                                 label + ": " + result.what + " (gave up after " +
                                     std::to_string(attempt) + " attempt(s): connecting has " +
                                     millis(o.connect_timeout) + " in all)");
        } else {
            connect_by = std::chrono::steady_clock::time_point::max(); // the server is reachable
        }
        const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
        if (attempt >= max_attempts || elapsed + delay > o.max_retry_time) {
            if (result.ok) co_return std::move(result.reply);
            throw_http_error(static_cast<errc>(result.code.value()),
                             label + ": " + result.what + " (gave up retrying after " +
                                 millis(elapsed) + ")");
        }
        if (o.log)
            o.log(log_level::info,
                  "retrying " + label + " (attempt " + std::to_string(attempt + 1) + " of " +
                      std::to_string(max_attempts) + ") in " + millis(delay) + ": " + reason);
        co_await backoff(s, delay);
    }
}

} // namespace skyvol::http::detail

#endif
