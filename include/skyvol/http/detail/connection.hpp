#ifndef SKYVOL_HTTP_DETAIL_CONNECTION_HPP
#define SKYVOL_HTTP_DETAIL_CONNECTION_HPP

/// @file
/// One kept-alive connection. Its sockets, timers and TLS state live on its own strand: the
/// client's executor may run many threads, and Beast's timed streams are not thread-safe.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/system/error_code.hpp>

#include <poll.h>

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

namespace skyvol::http::detail {

/// `co_await op(..., use_tuple)` gives the error code in a tuple instead of throwing.
using use_tuple_t = boost::asio::as_tuple_t<boost::asio::use_awaitable_t<>>;
inline constexpr use_tuple_t use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

struct connection {
    using strand_type = boost::asio::strand<boost::asio::any_io_executor>;
    using plain_stream = boost::beast::tcp_stream;
    using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

    connection(strand_type s, std::shared_ptr<boost::asio::ssl::context> context)
        : strand(std::move(s))
        , tls_context(std::move(context)) {
        // Beast sizes each socket read by the buffer's free capacity: 512 bytes unless reserved.
        buffer.reserve(64 * 1024);
        reset();
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    strand_type strand;
    std::shared_ptr<boost::asio::ssl::context> tls_context; // null: plain TCP
    std::optional<plain_stream> plain;
    std::optional<tls_stream> secure;
    boost::beast::flat_buffer buffer;
    bool connected = false;
    std::chrono::steady_clock::time_point idle_since;

    boost::beast::tcp_stream& tcp() {
        return secure ? boost::beast::get_lowest_layer(*secure) : *plain;
    }

    /// Fresh, unconnected streams on the same strand (a TLS stream cannot be reused).
    void reset() {
        buffer.clear();
        connected = false;
        plain.reset();
        secure.reset();
        if (tls_context)
            secure.emplace(strand, *tls_context);
        else
            plain.emplace(strand);
    }

    void close() noexcept {
        boost::system::error_code ignored;
        tcp().socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        tcp().socket().close(ignored);
        connected = false;
    }

    /// Whether an idle connection still looks usable: the peer has not closed it and sent
    /// nothing unasked (TLS may deliver session tickets, so data alone is fine there).
    bool looks_alive() {
        if (!connected || buffer.size() != 0 || !tcp().socket().is_open()) return false;
        pollfd p{};
        p.fd = tcp().socket().native_handle();
        p.events = POLLIN | POLLRDHUP;
        const int n = ::poll(&p, 1, 0);
        if (n < 0) return false;
        if (n == 0) return true;
        if ((p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) != 0) return false;
        return secure.has_value();
    }
};

} // namespace skyvol::http::detail

#endif
