#ifndef SKYVOL_HTTP_MESSAGE_HPP
#define SKYVOL_HTTP_MESSAGE_HPP

/// @file
/// What the HTTP client sends and what it gives back: plain values, no Beast types but the verb.

// Boost 1.81's verb.hpp streams a string_view without including <ostream> itself.
#include <ostream>

#include <boost/beast/http/verb.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skyvol::http {

/// Told during send_into how many bytes of the 2xx body are in the caller's buffer so far, after
/// each read; a retry starts again from 0. Lets a caller write the body on while it is hot.
using body_progress = std::function<void(std::size_t received)>;

/// One HTTP/1.1 request, without the origin it goes to.
struct request {
    /// The method.
    boost::beast::http::verb method = boost::beast::http::verb::get;
    /// The origin-form target as sent, already percent-encoded: "/bucket/key?x=y".
    std::string target = "/";
    /// Header fields in order; the client adds Host and User-Agent when absent and always sets
    /// Content-Length itself when there is a body (or the method is PUT, POST or PATCH).
    std::vector<std::pair<std::string, std::string>> headers;
    /// A body held in memory; ignored when `body_fd` is set.
    std::string body;
    /// A body streamed from this file with pread, `body_length` bytes from `body_offset`,
    /// never read into memory whole. The caller keeps the descriptor open until send ends.
    int body_fd = -1;
    std::uint64_t body_offset = 0; ///< where the file body starts
    std::uint64_t body_length = 0; ///< how many bytes of the file to send
    /// False: never retried once the request may have reached the server.
    bool idempotent = true;
    /// A 429 or 503 answer says this server did not act on the request (S3's SlowDown and
    /// ServiceUnavailable): retry it then, even when it is not idempotent.
    bool refusals_retryable = false;
    /// send_into only: called as the body arrives (see body_progress).
    body_progress on_body;
};

/// The answer to a request.
struct response {
    /// The status code (200, 404...).
    unsigned status = 0;
    /// Header fields in order, names lower-cased.
    std::vector<std::pair<std::string, std::string>> headers;
    /// The body, unless send_into streamed a 2xx body into the caller's buffer.
    std::string body;
    /// How many bytes send_into wrote into the caller's buffer.
    std::size_t body_bytes = 0;

    /// The first value of the header `lower_name` (compared without case), "" if absent.
    std::string_view header(std::string_view lower_name) const noexcept {
        for (const auto& [name, value] : headers) {
            if (name.size() != lower_name.size()) continue;
            bool same = true;
            for (std::size_t i = 0; i < name.size() && same; ++i) {
                char c = lower_name[i];
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
                same = name[i] == c;
            }
            if (same) return value;
        }
        return {};
    }
};

} // namespace skyvol::http

#endif
