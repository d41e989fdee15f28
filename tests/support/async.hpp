#ifndef SKYVOL_TESTS_SUPPORT_ASYNC_HPP
#define SKYVOL_TESTS_SUPPORT_ASYNC_HPP

// Runs a test body written as a coroutine on a private io_context, on the calling thread, so
// Catch2's assertions stay on the test's thread.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <utility>

namespace skyvol::test {

/// `co_await op(args..., as_result)` gives a tuple with the error code first, without throwing.
inline constexpr auto as_result = boost::asio::as_tuple(boost::asio::use_awaitable);

template <class MakeAwaitable>
auto run_async(MakeAwaitable&& make) {
    boost::asio::io_context io;
    auto result =
        boost::asio::co_spawn(io, std::forward<MakeAwaitable>(make)(), boost::asio::use_future);
    io.run();
    return result.get();
}

} // namespace skyvol::test

#endif
