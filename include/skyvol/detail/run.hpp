#ifndef SKYVOL_DETAIL_RUN_HPP
#define SKYVOL_DETAIL_RUN_HPP

/// @file
/// The two faces of a coroutine operation: `async_run` completes any Asio completion token with
/// `(error_code, results...)`; `run_blocking` waits for it on another thread's executor.
/// Exceptions inside the coroutine become error codes at this edge.

#include <skyvol/detail/async.hpp>
#include <skyvol/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/channel_error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <memory>
#include <new>
#include <system_error>
#include <utility>

namespace skyvol::detail {

/// The error code an exception stands for. A cancelled channel wait is a cancelled operation,
/// as every other wait tells it.
inline std::error_code error_from(std::exception_ptr ep) noexcept {
    if (!ep) return {};
    try {
        std::rethrow_exception(ep);
    } catch (const boost::system::system_error& e) {
        if (e.code() == boost::asio::experimental::error::channel_cancelled)
            return boost::system::error_code(boost::asio::error::operation_aborted);
        return e.code();
    } catch (const std::system_error& e) {
        return e.code();
    } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
    } catch (...) {
        return errc::io_error;
    }
}

/// How an operation answers Asio's per-operation cancellation (the cancellation slot associated
/// with its handler). An operation that changes data runs to its end whatever is asked: a
/// caller told "cancelled" could not know what half of it happened.
struct runs_to_end {
    template <class Executor, class Awaitable, class Handler>
    static void spawn(const Executor& executor, Awaitable work, boost::asio::cancellation_slot,
                      Handler completion) {
        boost::asio::co_spawn(executor, std::move(work), std::move(completion));
    }
};

/// A terminal cancellation (co_spawn's default filter; Asio's parallel groups and awaitable
/// operators emit it) stops the operation at its next wait, and it completes with
/// `operation_aborted`. Only for operations that change nothing a caller could miss: lookups,
/// reads, listings, waits.
///
/// The coroutine runs on a strand of `executor`: a cancellation must reach it serialized with
/// its own steps, which a multi-threaded pool alone does not do. The signal is forwarded, not
/// the caller's slot handed to co_spawn, so that a cancellation emitted from any thread, or
/// late, only posts to the strand and finds the operation done (the state it posts to is
/// shared): FUSE interrupts arrive on the session's threads.
struct stops_on_cancel {
    template <class Executor, class Awaitable, class Handler>
    static void spawn(const Executor& executor, Awaitable work, boost::asio::cancellation_slot slot,
                      Handler completion) {
        if (!slot.is_connected())
            return runs_to_end::spawn(executor, std::move(work), slot, std::move(completion));
        using strand_type = boost::asio::strand<Executor>;
        struct forwarding {
            explicit forwarding(strand_type s)
                : on(std::move(s)) {}
            strand_type on;
            boost::asio::cancellation_signal inner; ///< only touched on `on`
            bool done = false;                      ///< only touched on `on`
        };
        auto state = std::make_shared<forwarding>(boost::asio::make_strand(executor));
        slot.assign([state](boost::asio::cancellation_type_t type) {
            boost::asio::post(state->on, [state, type] {
                if (!state->done) state->inner.emit(type);
            });
        });
        boost::asio::co_spawn(
            state->on, std::move(work),
            boost::asio::bind_cancellation_slot(
                state->inner.slot(),
                boost::asio::bind_executor(state->on, [state, completion = std::move(completion)](
                                                          auto&&... results) mutable {
                    state->done = true;
                    std::move(completion)(std::forward<decltype(results)>(results)...);
                })));
    }
};

/// Runs `make()` (an awaitable) on `executor`; completes `token` with signature `Signature`,
/// whose first argument is the error code. `context` owns what `executor` runs on.
/// `Cancellation` is runs_to_end or stops_on_cancel.
template <class Signature, class Cancellation = runs_to_end, class Executor, class CompletionToken,
          class MakeAwaitable>
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
            auto slot = boost::asio::get_associated_cancellation_slot(handler);
            Cancellation::spawn(
                target, maker(), slot,
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
