#ifndef SKYVOL_HTTP_DETAIL_EXCHANGE_HPP
#define SKYVOL_HTTP_DETAIL_EXCHANGE_HPP

/// @file
/// One attempt: connect if needed, write the request, read the response. Runs on the
/// connection's strand and reports failures as values, classified for the retry loop.

#include <skyvol/error.hpp>
#include <skyvol/http/detail/connection.hpp>
#include <skyvol/http/detail/tls.hpp>
#include <skyvol/http/message.hpp>
#include <skyvol/http/options.hpp>
#include <skyvol/http/url.hpp>
#include <skyvol/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/optional/optional.hpp>
#include <boost/system/error_code.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace skyvol::http::detail {

/// How far a file body is read and sent at a time.
inline constexpr std::size_t upload_chunk = 256 * 1024;

/// What one attempt gave: a response, or a failure and what the retry loop needs to know.
struct attempt_result {
    bool ok = false;
    response reply;
    std::error_code code; ///< a skyvol errc when !ok
    std::string what;
    bool maybe_sent = false; ///< the request may have reached the server
    bool stale = false;      ///< a reused connection failed before any byte of a response
    bool retryable = false;  ///< another attempt may succeed (if the request allows it)
    bool reusable = false;   ///< the connection can carry another request
    bool connecting = false; ///< failed before the connection was up (resolve, TCP, TLS)
};

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        char y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

inline std::string millis(std::chrono::milliseconds d) {
    return std::to_string(d.count()) + " ms";
}

inline bool is_timeout(const boost::system::error_code& ec) noexcept {
    return ec == boost::beast::error::timeout;
}

/// The peer closed or reset the connection (as opposed to sending something malformed).
inline bool is_disconnect(const boost::system::error_code& ec) noexcept {
    namespace bhttp = boost::beast::http;
    return ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
           ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset ||
           ec == boost::asio::error::connection_aborted || ec == boost::asio::error::broken_pipe ||
           ec == boost::asio::error::not_connected || ec == boost::asio::error::bad_descriptor ||
           ec == boost::asio::error::operation_aborted ||
           ec == boost::asio::ssl::error::stream_truncated;
}

inline bool is_parse_error(const boost::system::error_code& ec) noexcept {
    return ec.category() ==
           boost::beast::http::make_error_code(boost::beast::http::error::bad_version).category();
}

inline attempt_result failure(errc code, std::string what, bool retryable) {
    attempt_result r;
    r.code = code;
    r.what = std::move(what);
    r.retryable = retryable;
    return r;
}

/// Resolves, connects and (for https) handshakes, all within connect_timeout and by
/// `connect_by` (what the request's earlier attempts left of it).
inline boost::asio::awaitable<attempt_result>
connect(std::shared_ptr<connection> c, url origin, const client_options* o,
        std::chrono::steady_clock::time_point connect_by) {
    using boost::asio::ip::tcp;
    const auto began = std::chrono::steady_clock::now();
    const auto deadline = std::max(began, std::min(began + o->connect_timeout, connect_by));
    const std::string allowed =
        millis(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - began));
    const std::string where = origin.origin();
    tcp::resolver resolver(c->strand);
    const std::string service = std::to_string(origin.port);
    auto [rec, endpoints] = co_await resolver.async_resolve(origin.host, service, use_tuple);
    // A name the resolver says does not exist will not exist a moment later either.
    if (rec)
        co_return failure(errc::connection_failed, "cannot resolve " + where + ": " + rec.message(),
                          rec != boost::asio::error::host_not_found);
    c->tcp().expires_at(deadline);
    auto [cec, endpoint] = co_await c->tcp().async_connect(endpoints, use_tuple);
    (void)endpoint;
    if (is_timeout(cec))
        co_return failure(errc::timed_out,
                          "connecting to " + where + " took longer than " + allowed, true);
    if (cec)
        co_return failure(errc::connection_failed,
                          "cannot connect to " + where + ": " + cec.message(), true);
    boost::system::error_code ignored;
    c->tcp().socket().set_option(tcp::no_delay(true), ignored);
    if (c->secure) {
        prepare_tls(*c->secure, origin.host, o->verify_peer);
        c->tcp().expires_at(deadline);
        auto [hec] =
            co_await c->secure->async_handshake(boost::asio::ssl::stream_base::client, use_tuple);
        if (hec) {
            const std::string reason =
                o->verify_peer ? verification_failure(*c->secure) : std::string();
            c->close();
            // A certificate that fails verification will fail again: no retry.
            if (!reason.empty())
                co_return failure(
                    errc::connection_failed,
                    "TLS certificate verification failed for " + where + ": " + reason, false);
            if (is_timeout(hec))
                co_return failure(errc::timed_out,
                                  "the TLS handshake with " + where + " took longer than " +
                                      allowed +
                                      " (the server accepted the connection but "
                                      "does not answer TLS)",
                                  true);
            co_return failure(errc::connection_failed,
                              "TLS handshake with " + where + " failed: " + hec.message(), true);
        }
    }
    c->tcp().expires_never();
    c->connected = true;
    attempt_result done;
    done.ok = true;
    co_return done;
}

/// Reads `length` bytes at `offset` of `fd` into `chunk`, whole (pread may return less).
inline std::error_code read_file_chunk(int fd, std::uint64_t offset, std::size_t length,
                                       std::vector<char>& chunk) {
    chunk.resize(length);
    std::size_t done = 0;
    while (done < length) {
        const ssize_t n =
            ::pread(fd, chunk.data() + done, length - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::error_code(errno, std::generic_category());
        if (n == 0) return errc::io_error; // the file is shorter than body_offset + body_length
        done += static_cast<std::size_t>(n);
    }
    return {};
}

/// Writes the request and reads the response over a connected stream.
template <class Stream>
boost::asio::awaitable<attempt_result>
talk(std::shared_ptr<connection> c, Stream* stream, url origin, const request* r,
     boost::asio::mutable_buffer into, bool into_mode, const client_options* o, bool reused) {
    namespace bhttp = boost::beast::http;
    const std::string where = origin.origin();

    bhttp::request<bhttp::buffer_body> msg;
    msg.method(r->method);
    msg.target(r->target);
    msg.version(11);
    bool has_host = false;
    bool has_agent = false;
    for (const auto& [name, value] : r->headers) {
        if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
        has_host = has_host || iequals(name, "host");
        has_agent = has_agent || iequals(name, "user-agent");
        msg.insert(name, value);
    }
    if (!has_host) msg.set(bhttp::field::host, origin.host_header());
    if (!has_agent) msg.set(bhttp::field::user_agent, "skyvol/" SKYVOL_VERSION_STRING);
    const bool from_file = r->body_fd >= 0;
    const std::uint64_t length = from_file ? r->body_length : r->body.size();
    if (length > 0 || r->method == bhttp::verb::put || r->method == bhttp::verb::post ||
        r->method == bhttp::verb::patch)
        msg.content_length(length);
    const bool request_keep_alive = msg.keep_alive();

    // Write: in-memory bodies go out with the header in one write; file bodies chunk by chunk.
    bhttp::request_serializer<bhttp::buffer_body> serializer(msg);
    std::vector<char> chunk;
    std::uint64_t file_sent = 0;
    std::size_t bytes_written = 0;
    for (;;) {
        if (from_file) {
            const auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(upload_chunk, length - file_sent));
            if (const std::error_code fec =
                    read_file_chunk(r->body_fd, r->body_offset + file_sent, n, chunk)) {
                c->close();
                attempt_result f =
                    failure(errc::io_error,
                            "cannot read the request body from its file: " + fec.message(), false);
                f.maybe_sent = bytes_written > 0;
                co_return f;
            }
            file_sent += n;
            msg.body().data = chunk.data();
            msg.body().size = n;
            msg.body().more = file_sent < length;
        } else {
            msg.body().data = const_cast<char*>(r->body.data());
            msg.body().size = r->body.size();
            msg.body().more = false;
        }
        c->tcp().expires_after(o->first_byte_timeout);
        auto [wec, written] = co_await bhttp::async_write(*stream, serializer, use_tuple);
        bytes_written += written;
        if (wec == bhttp::error::need_buffer) wec = {};
        if (wec) {
            c->close();
            attempt_result f =
                is_timeout(wec) ? failure(errc::timed_out,
                                          "sending the request to " + where + " stalled for " +
                                              millis(o->first_byte_timeout),
                                          true)
                                : failure(errc::connection_failed,
                                          "connection to " + where +
                                              " lost while sending the request: " + wec.message(),
                                          true);
            f.maybe_sent = bytes_written > 0;
            f.stale = reused && bytes_written == 0;
            co_return f;
        }
        if (serializer.is_done()) break;
    }

    // Read the head, skipping interim 1xx responses.
    std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
    for (;;) {
        parser.emplace();
        parser->body_limit(boost::none);
        parser->header_limit(64 * 1024);
        if (r->method == bhttp::verb::head) parser->skip(true);
        c->tcp().expires_after(o->first_byte_timeout);
        auto [hec, head_bytes] =
            co_await bhttp::async_read_header(*stream, c->buffer, *parser, use_tuple);
        if (hec) {
            c->close();
            attempt_result f;
            if (is_timeout(hec)) {
                f = failure(
                    errc::timed_out,
                    "no response from " + where + " within " + millis(o->first_byte_timeout), true);
            } else if (hec == bhttp::error::partial_message) {
                f = failure(errc::protocol_error,
                            "connection to " + where + " closed in the middle of the response head",
                            true);
            } else if (is_disconnect(hec)) {
                f = failure(
                    errc::connection_failed,
                    "connection to " + where + " closed before a response: " + hec.message(), true);
                f.stale = reused;
            } else if (is_parse_error(hec)) {
                f = failure(errc::protocol_error,
                            "malformed response head from " + where + ": " + hec.message(), false);
            } else {
                f = failure(errc::connection_failed,
                            "reading the response from " + where + " failed: " + hec.message(),
                            true);
            }
            f.maybe_sent = true;
            co_return f;
        }
        const unsigned status = parser->get().result_int();
        if (status >= 200 || status == 101) break;
    }

    attempt_result out;
    out.ok = true;
    out.maybe_sent = true;
    response& reply = out.reply;
    reply.status = parser->get().result_int();
    for (const auto& field : parser->get())
        reply.headers.emplace_back(lower(field.name_string()), std::string(field.value()));

    const bool to_caller = into_mode && reply.status >= 200 && reply.status < 300;
    const boost::optional<std::uint64_t> announced = parser->content_length();
    auto body_failure = [&](const boost::system::error_code& ec, std::uint64_t received) {
        c->close();
        std::string of = announced ? " of " + std::to_string(*announced) : std::string();
        attempt_result f =
            is_timeout(ec) ? failure(errc::timed_out,
                                     "the response body from " + where + " stalled for " +
                                         millis(o->first_byte_timeout),
                                     true)
                           : failure(errc::protocol_error,
                                     "the response body from " + where + " ended after " +
                                         std::to_string(received) + of + " bytes: " + ec.message(),
                                     is_disconnect(ec));
        f.maybe_sent = true;
        return f;
    };
    if (to_caller) {
        if (announced && *announced > into.size()) {
            c->close();
            attempt_result f = failure(
                errc::protocol_error,
                "the response body from " + where + " (" + std::to_string(*announced) +
                    " bytes) is longer than the " + std::to_string(into.size()) + "-byte buffer",
                false);
            f.maybe_sent = true;
            co_return f;
        }
        char* const base = static_cast<char*>(into.data());
        std::size_t filled = 0;
        const bool sized = announced && !parser->chunked() && !parser->is_done();
        if (sized) {
            // A sized body goes straight from the socket into the caller's buffer: no copy
            // through the parser, and each read takes whatever the socket holds.
            const auto body_length = static_cast<std::size_t>(*announced);
            filled = boost::asio::buffer_copy(into, c->buffer.data(), body_length);
            c->buffer.consume(filled);
            if (r->on_body && filled > 0) r->on_body(filled);
            while (filled < body_length) {
                c->tcp().expires_after(o->first_byte_timeout);
                auto [bec, n] = co_await stream->async_read_some(
                    boost::asio::buffer(base + filled, body_length - filled), use_tuple);
                filled += n;
                if (r->on_body && n > 0) r->on_body(filled);
                if (bec && filled < body_length) co_return body_failure(bec, filled);
            }
        }
        while (!sized && !parser->is_done()) {
            if (filled == into.size()) {
                c->close();
                attempt_result f =
                    failure(errc::protocol_error,
                            "the response body from " + where + " is longer than the " +
                                std::to_string(into.size()) + "-byte buffer",
                            false);
                f.maybe_sent = true;
                co_return f;
            }
            parser->get().body().data = base + filled;
            parser->get().body().size = into.size() - filled;
            c->tcp().expires_after(o->first_byte_timeout);
            auto [bec, n] = co_await bhttp::async_read(*stream, c->buffer, *parser, use_tuple);
            (void)n;
            const std::size_t before = filled;
            filled = into.size() - parser->get().body().size;
            if (r->on_body && filled > before) r->on_body(filled);
            if (bec == bhttp::error::need_buffer) bec = {};
            if (bec) co_return body_failure(bec, filled);
        }
        reply.body_bytes = filled;
    } else {
        std::string& body = reply.body;
        while (!parser->is_done()) {
            const std::size_t old = body.size();
            std::size_t want = 64 * 1024;
            if (announced && *announced > old)
                want = static_cast<std::size_t>(
                    std::min<std::uint64_t>(*announced - old, static_cast<std::uint64_t>(1) << 20));
            body.resize(old + want);
            parser->get().body().data = body.data() + old;
            parser->get().body().size = want;
            c->tcp().expires_after(o->first_byte_timeout);
            auto [bec, n] = co_await bhttp::async_read(*stream, c->buffer, *parser, use_tuple);
            (void)n;
            body.resize(old + want - parser->get().body().size);
            if (bec == bhttp::error::need_buffer) bec = {};
            if (bec) co_return body_failure(bec, body.size());
        }
    }
    c->tcp().expires_never();
    // Bytes after the body mean a wrong Content-Length or a confused server: do not reuse.
    out.reusable = request_keep_alive && parser->keep_alive() && c->buffer.size() == 0;
    if (!out.reusable) c->close();
    co_return out;
}

/// One attempt over `c`, connecting it first if it is new or its idle peer went away.
inline boost::asio::awaitable<attempt_result>
exchange(std::shared_ptr<connection> c, url origin, const request* r,
         boost::asio::mutable_buffer into, bool into_mode, const client_options* o,
         std::chrono::steady_clock::time_point connect_by) {
    if (c->connected && !c->looks_alive()) c->reset();
    const bool reused = c->connected;
    if (!c->connected) {
        attempt_result connected = co_await connect(c, origin, o, connect_by);
        if (!connected.ok) {
            c->reset();
            connected.connecting = true;
            co_return connected;
        }
    }
    if (c->secure) {
        attempt_result result =
            co_await talk(c, &*c->secure, std::move(origin), r, into, into_mode, o, reused);
        co_return result;
    }
    attempt_result result =
        co_await talk(c, &*c->plain, std::move(origin), r, into, into_mode, o, reused);
    co_return result;
}

} // namespace skyvol::http::detail

#endif
