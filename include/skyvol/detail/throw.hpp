#ifndef SKYVOL_DETAIL_THROW_HPP
#define SKYVOL_DETAIL_THROW_HPP

/// @file
/// How coroutines inside skyvol report errors: `co_await op(..., as_result)` gives the error
/// code with the results, `throw_on`/`fail` throw it, and the API's edge (detail/run.hpp) turns
/// the exception back into the code. One exception type for all of it, so that the edge and the
/// write-back uploader can tell a store's or the system's error from anything unexpected.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <system_error>
#include <utility>

namespace skyvol::detail {

/// A failure with the sentence that explains it (a connection's, TLS's or a server's reason,
/// naming the endpoint): still the one exception type for code that only wants the code, but
/// `what()` is the sentence alone, without Boost's "message [category:value]".
class explained_error : public boost::system::system_error {
public:
    explained_error(std::error_code ec, std::string reason)
        : boost::system::system_error(ec)
        , reason_(std::move(reason)) {}
    const char* what() const noexcept override { return reason_.c_str(); }

private:
    std::string reason_;
};

inline constexpr auto as_result = boost::asio::as_tuple(boost::asio::use_awaitable);

/// Throws a system_error for `ec` (caught and turned back into a code at the API's edge).
[[noreturn]] inline void fail(std::error_code ec) {
    throw boost::system::system_error(ec);
}

/// Throws `ec` with the sentence that explains it.
[[noreturn]] inline void fail(std::error_code ec, std::string reason) {
    throw explained_error(ec, std::move(reason));
}

/// Throws what a cancelled operation completes with (operation_aborted), for waits that end
/// early without saying so themselves.
[[noreturn]] inline void fail_cancelled() {
    throw boost::system::system_error(boost::asio::error::operation_aborted);
}

/// Throws the error as Asio does, so callers can co_await without checking each step.
inline void throw_on(const boost::system::error_code& ec) {
    if (ec) throw boost::system::system_error(ec);
}

} // namespace skyvol::detail

#endif
