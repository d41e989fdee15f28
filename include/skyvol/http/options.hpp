#ifndef SKYVOL_HTTP_OPTIONS_HPP
#define SKYVOL_HTTP_OPTIONS_HPP

/// @file
/// `client_options`: what an HTTP client can be told (timeouts, retries, TLS, pool sizes). Its
/// own header, so that the client's detail headers and the stores' options can name it.

#include <skyvol/http/message.hpp>
#include <skyvol/log.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace skyvol::http {

/// How an `http::client` connects, waits and retries.
struct client_options {
    /// Connecting (to every address the name resolves to, in turn) and the TLS handshake
    /// together. Name resolution itself is bounded by the system resolver's own timeouts.
    std::chrono::milliseconds connect_timeout{10000};
    /// From the request sent to the response's first byte; also the longest stall allowed while
    /// writing the request or reading the body.
    std::chrono::milliseconds first_byte_timeout{30000};
    /// A kept-alive connection unused this long is closed instead of reused.
    std::chrono::milliseconds idle_timeout{60000};
    /// Connections open at once to one scheme, host and port; further requests wait.
    std::size_t max_connections_per_host = 16;
    /// Attempts per request, the first included: 1 means no retries.
    int max_attempts = 5;
    /// Backoff before retry n is uniform in [0, min(max_backoff, base_backoff * 2^(n-1))].
    std::chrono::milliseconds base_backoff{100};
    std::chrono::milliseconds max_backoff{20000}; ///< the longest single backoff
    /// No retry starts once this much time has passed since the first attempt.
    std::chrono::milliseconds max_retry_time{120000};
    /// Check the server's certificate and host name; turning it off logs a warning.
    bool verify_peer = true;
    /// CA certificates (PEM) to trust; empty: $AWS_CA_BUNDLE, else $SSL_CERT_FILE, else the
    /// system's default paths.
    std::string ca_file;
    /// Also retry responses this accepts (500, 502, 503, 504 and 429 always are).
    std::function<bool(const response&)> retryable_response;
    /// Retries (info) and insecure settings (warning) go here; may be empty.
    log_sink log;
};

} // namespace skyvol::http

#endif
