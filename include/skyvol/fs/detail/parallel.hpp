#ifndef SKYVOL_FS_DETAIL_PARALLEL_HPP
#define SKYVOL_FS_DETAIL_PARALLEL_HPP

/// @file
/// Runs `count` copies of one worker coroutine at once and waits for all of them; the first
/// exception any of them threw is rethrown. Workers share their queue through captures, which
/// stay alive because the caller awaits this.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <vector>

namespace skyvol::detail {

template <class Worker>
boost::asio::awaitable<void> run_workers(std::size_t count, Worker& worker) {
    auto executor = co_await boost::asio::this_coro::executor;
    using op_type = decltype(boost::asio::co_spawn(executor, worker(), boost::asio::deferred));
    std::vector<op_type> workers;
    for (std::size_t w = 0; w < count; ++w)
        workers.push_back(boost::asio::co_spawn(executor, worker(), boost::asio::deferred));
    auto [order, errors] =
        co_await boost::asio::experimental::make_parallel_group(std::move(workers))
            .async_wait(boost::asio::experimental::wait_for_all(), boost::asio::use_awaitable);
    (void)order;
    for (const auto& ep : errors)
        if (ep) std::rethrow_exception(ep);
}

} // namespace skyvol::detail

#endif
