#ifndef SKYVOL_DETAIL_RUN_HPP
#define SKYVOL_DETAIL_RUN_HPP

/// @file
/// The two faces of a coroutine operation: `async_run` completes any Asio completion token with
/// `(error_code, results...)`; `run_blocking` waits for it on another thread's executor.
/// Exceptions inside the coroutine become error codes at this edge.

#include <skyvol/detail/async.hpp>
#include <skyvol/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <memory>
#include <new>
#include <system_error>
#include <utility>

namespace skyvol::detail {

/// The error code an exception stands for.
inline std::error_code error_from(std::exception_ptr ep) noexcept {
    if (!ep) return {};
    try {
        std::rethrow_exception(ep);
    } catch (const boost::system::system_error& e) {
        return e.code();
    } catch (const std::system_error& e) {
        return e.code();
    } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
    } catch (...) {
        return errc::io_error;
    }
}

/// Runs `make()` (an awaitable) on `executor`; completes `token` with signature `Signature`,
/// whose first argument is the error code. `context` owns what `executor` runs on.
template <class Signature, class Executor, class CompletionToken, class MakeAwaitable>
auto async_run(const Executor& executor, CompletionToken&& token, MakeAwaitable make,
               std::shared_ptr<const void> context = nullptr) {
    return boost::asio::async_initiate<CompletionToken, Signature>(
        [executor, context = std::move(context)](auto handler, MakeAwaitable maker) {
            // Held on this thread's stack while co_spawn posts, as in async_offload: the
            // coroutine may end, and drop the last other reference to the context, before the
            // post has returned.
            const std::shared_ptr<const void> held = context;
            const Executor target = executor;
            auto handler_executor =
                boost::asio::prefer(boost::asio::get_associated_executor(handler, executor),
                                    boost::asio::execution::outstanding_work.tracked);
            boost::asio::co_spawn(
                target, maker(),
                [handler = std::move(handler), handler_executor](std::exception_ptr ep,
                                                                 auto&&... results) mutable {
                    asio_error_code ec(error_from(ep));
                    boost::asio::dispatch(handler_executor,
                                          [handler = std::move(handler), ec,
                                           ... results = std::move(results)]() mutable {
                                              std::move(handler)(ec, std::move(results)...);
                                          });
                });
        },
        token, std::move(make));
}

/// Runs `make()` on `executor` and waits; the executor must run on other threads.
template <class Executor, class MakeAwaitable>
auto run_blocking(const Executor& executor, MakeAwaitable make, std::error_code& ec) {
    using result_type = typename decltype(make())::value_type;
    ec.clear();
    try {
        if constexpr (std::is_void_v<result_type>)
            boost::asio::co_spawn(executor, make(), boost::asio::use_future).get();
        else
            return boost::asio::co_spawn(executor, make(), boost::asio::use_future).get();
    } catch (...) {
        ec = error_from(std::current_exception());
    }
    if constexpr (!std::is_void_v<result_type>) return result_type{};
}

} // namespace skyvol::detail

#endif
