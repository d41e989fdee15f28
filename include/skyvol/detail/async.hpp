#ifndef SKYVOL_DETAIL_ASYNC_HPP
#define SKYVOL_DETAIL_ASYNC_HPP

/// @file
/// The one way skyvol turns a blocking or immediate computation into an Asio asynchronous
/// operation: run it on a work executor, then complete on the handler's associated executor.

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

namespace skyvol::detail {

/// Asio's error type in completion signatures; it wraps and gives back `std::error_code`s intact.
using asio_error_code = boost::system::error_code;

/// Pass as the work executor to run the work where the handler will run (cheap, non-blocking
/// work such as the memory store's).
struct on_handler_executor_t {};
inline constexpr on_handler_executor_t on_handler_executor{};

/// Starts an operation with completion signature `Signature` for `token`. `work` runs on
/// `work_executor` and returns a tuple of the completion arguments (`asio_error_code` first).
/// The handler is invoked on its own associated executor, or `io_executor` if it has none,
/// and never inside the initiating call. `work_context` owns what `work_executor` runs on.
template <class Signature, class WorkExecutor, class IoExecutor, class CompletionToken, class Work>
auto async_offload(const WorkExecutor& work_executor, const IoExecutor& io_executor,
                   CompletionToken&& token, Work&& work,
                   std::shared_ptr<const void> work_context = nullptr) {
    return boost::asio::async_initiate<CompletionToken, Signature>(
        [work_executor, io_executor, work_context = std::move(work_context)](auto handler,
                                                                             auto operation) {
            // Held on this thread's stack until post() returns: the work may run, complete and
            // drop every other reference to the context first, and post() still signals the
            // context's condition variable then (ThreadSanitizer, twice in CI). The initiation
            // itself is no place for it: with use_awaitable it lives in a coroutine frame that
            // the completion, on another thread, may destroy before post() returns.
            const std::shared_ptr<const void> held = work_context;
            const WorkExecutor target = work_executor;
            (void)target; // unused when the work runs on the handler's executor
            auto handler_executor =
                boost::asio::prefer(boost::asio::get_associated_executor(handler, io_executor),
                                    boost::asio::execution::outstanding_work.tracked);
            auto run_and_complete = [handler = std::move(handler), operation = std::move(operation),
                                     handler_executor]() mutable {
                auto results = operation();
                boost::asio::dispatch(handler_executor, [handler = std::move(handler),
                                                         results = std::move(results)]() mutable {
                    std::apply(std::move(handler), std::move(results));
                });
            };
            // Through the I/O executor into the handler's: a type-erased handler's executor
            // (any_completion_executor) only dispatches, it cannot be posted to.
            if constexpr (std::is_same_v<WorkExecutor, on_handler_executor_t>)
                boost::asio::post(io_executor, boost::asio::bind_executor(
                                                   handler_executor, std::move(run_and_complete)));
            else
                boost::asio::post(target, std::move(run_and_complete));
        },
        token, std::forward<Work>(work));
}

/// Completes `handler` with `results...`, known already, the way async_offload does: on the
/// handler's executor (`io_executor` if it has none), never inside this call.
template <class Signature, class IoExecutor, class Handler, class... Results>
void async_complete(const IoExecutor& io_executor, Handler&& handler, Results... results) {
    async_offload<Signature>(on_handler_executor, io_executor, std::forward<Handler>(handler),
                             [results...] { return std::tuple(results...); });
}

} // namespace skyvol::detail

#endif
