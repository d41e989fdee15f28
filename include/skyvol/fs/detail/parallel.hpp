#ifndef SKYVOL_FS_DETAIL_PARALLEL_HPP
#define SKYVOL_FS_DETAIL_PARALLEL_HPP

/// @file
/// Runs `count` copies of one worker coroutine at once and waits for all of them; the first
/// exception any of them threw is rethrown. Workers share their queue through captures, which
/// stay alive because the caller awaits this.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>

namespace skyvol::detail {

template <class Worker>
boost::asio::awaitable<void> run_workers(std::size_t count, Worker& worker) {
    if (count == 0) co_return;
    auto executor = co_await boost::asio::this_coro::executor;
    // Shared with each completion, so the last one never touches a frame that has resumed and
    // gone (Boost 1.81's ranged parallel_group does, on a multi-threaded pool).
    struct state {
        state(const boost::asio::any_io_executor& ex, std::size_t n)
            : done(ex, n) {}
        boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
        std::mutex mutex;
        std::exception_ptr first;
    };
    auto shared = std::make_shared<state>(executor, count);
    for (std::size_t w = 0; w < count; ++w)
        boost::asio::co_spawn(executor, worker(), [shared](std::exception_ptr ep) {
            if (ep) {
                std::lock_guard lock(shared->mutex);
                if (!shared->first) shared->first = ep;
            }
            shared->done.try_send(boost::system::error_code());
        });
    for (std::size_t w = 0; w < count; ++w)
        co_await shared->done.async_receive(boost::asio::use_awaitable);
    std::lock_guard lock(shared->mutex);
    if (shared->first) std::rethrow_exception(shared->first);
}

} // namespace skyvol::detail

#endif
