#ifndef SKYVOL_HTTP_CLIENT_HPP
#define SKYVOL_HTTP_CLIENT_HPP

/// @file
/// The HTTP/1.1 client under the S3 store: pooled keep-alive connections, TLS with certificate
/// and host-name checks, timeouts, and retries with exponential backoff and full jitter.
///
///     http::client c(executor, options);
///     http::request r;
///     r.target = "/bucket/key";
///     http::response reply = co_await c.send(endpoint, std::move(r));

#include <skyvol/http/detail/pool.hpp>
#include <skyvol/http/detail/send.hpp>
#include <skyvol/http/message.hpp>
#include <skyvol/http/options.hpp>
#include <skyvol/http/url.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include <memory>
#include <utility>

namespace skyvol::http {

/// Sends requests over pooled connections; see client_options for the knobs. Thread-safe.
class client {
public:
    /// Connections and timers run on `executor` (a strand per connection, so a thread pool is
    /// fine). Throws boost::system::system_error with errc::invalid_config, saying why, when
    /// options.ca_file cannot be loaded; CAs from the environment or the system are loaded on
    /// the first https request (or load_tls) instead.
    explicit client(boost::asio::any_io_executor executor, client_options options = {})
        : s_(std::make_shared<detail::client_state>(std::move(executor), std::move(options))) {}

    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { shutdown(); }

    /// Sends `r` to `origin` (scheme, host and port used; path ignored) over a pooled keep-alive
    /// connection (TLS with SNI and host-name verification for https), retrying connection
    /// failures, resets, refusals, timeouts and retryable responses with exponential backoff and
    /// full jitter, bounded by max_attempts and max_retry_time. A non-idempotent request is
    /// retried only if it certainly never reached the server. Returns the final response
    /// whatever its status; throws boost::system::system_error with errc::connection_failed,
    /// errc::timed_out, errc::protocol_error (malformed reply, wrong Content-Length, connection
    /// dropped mid-body), errc::io_error (the body's file cannot be read), errc::invalid_config
    /// (the CAs from the environment or the system cannot be loaded) or errc::cancelled (after
    /// shutdown) when no response could be had. `r.body_fd` must stay open until the awaitable
    /// completes.
    boost::asio::awaitable<response> send(const url& origin, request r) {
        return detail::send(s_, origin, std::move(r), boost::asio::mutable_buffer(), false);
    }

    /// Like send, but a 2xx body is read straight into `into` (at most into.size() bytes; a
    /// longer body is a protocol_error) and never buffered whole; response.body_bytes says how
    /// much arrived, and `r.on_body` (if set) is told as it does. Other statuses' bodies land in
    /// response.body. `into` must stay valid until the awaitable completes.
    boost::asio::awaitable<response> send_into(const url& origin, request r,
                                               boost::asio::mutable_buffer into) {
        return detail::send(s_, origin, std::move(r), into, true);
    }

    /// Loads the CA certificates now (the options', the environment's or the system's; see
    /// detail::configured_ca) instead of at the first https request, so that a wrong CA file
    /// fails by name before any request; throws like the constructor.
    void load_tls() { s_->need_tls(); }

    /// Closes idle connections and fails waiting and later sends with errc::cancelled; sends
    /// already talking to a server finish.
    void shutdown() { detail::shutdown(s_); }

private:
    std::shared_ptr<detail::client_state> s_;
};

} // namespace skyvol::http

#endif
