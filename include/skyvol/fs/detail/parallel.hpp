#ifndef SKYVOL_FS_DETAIL_PARALLEL_HPP
#define SKYVOL_FS_DETAIL_PARALLEL_HPP

/// @file
/// Runs `count` copies of one worker coroutine at once and waits for all of them; the first
/// exception any of them threw is rethrown. Workers share their queue through captures, which
/// stay alive because the caller awaits this; a cancelled caller's workers are cancelled too.

#include <skyvol/detail/throw.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

namespace skyvol::detail {

template <class Worker>
boost::asio::awaitable<void> run_workers(std::size_t count, Worker& worker) {
    if (count == 0) co_return;
    auto executor = co_await boost::asio::this_coro::executor;
    // A caller cancelled already does not get here: co_await throws at once.
    const auto caller = co_await boost::asio::this_coro::cancellation_state;
    // Shared with each completion, so the last one never touches a frame that has resumed and
    // gone (Boost 1.81's ranged parallel_group does, on a multi-threaded pool).
    struct state {
        state(const boost::asio::any_io_executor& ex, std::size_t n)
            : done(ex, n)
            , stop(n) {}
        boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
        std::mutex mutex;
        std::exception_ptr first;
        std::vector<boost::asio::cancellation_signal> stop; ///< one per worker
    };
    auto shared = std::make_shared<state>(executor, count);
    for (std::size_t w = 0; w < count; ++w)
        boost::asio::co_spawn(executor, worker(),
                              boost::asio::bind_cancellation_slot(
                                  shared->stop[w].slot(), [shared](std::exception_ptr ep) {
                                      if (ep) {
                                          std::lock_guard lock(shared->mutex);
                                          if (!shared->first) shared->first = ep;
                                      }
                                      shared->done.try_send(boost::system::error_code());
                                  }));
    // The workers use the caller's frame, so this waits for all of them whatever happens: a
    // cancellation of the caller is passed on to each worker (it arrives on this executor, the
    // workers'), and the waits themselves take none.
    boost::asio::cancellation_slot forward = caller.slot();
    if (forward.is_connected())
        forward.assign([shared](boost::asio::cancellation_type_t type) {
            for (auto& s : shared->stop)
                s.emit(type);
        });
    const bool throwing = co_await boost::asio::this_coro::throw_if_cancelled();
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    for (std::size_t w = 0; w < count; ++w)
        co_await shared->done.async_receive(boost::asio::bind_cancellation_slot(
            boost::asio::cancellation_slot(), boost::asio::use_awaitable));
    if (forward.is_connected()) forward.clear();
    co_await boost::asio::this_coro::throw_if_cancelled(throwing);
    std::lock_guard lock(shared->mutex);
    if (shared->first) std::rethrow_exception(shared->first);
    if (caller.cancelled() != boost::asio::cancellation_type::none) fail_cancelled();
}

} // namespace skyvol::detail

#endif
