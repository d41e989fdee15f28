#ifndef SKYVOL_DETAIL_SINGLE_FLIGHT_HPP
#define SKYVOL_DETAIL_SINGLE_FLIGHT_HPP

/// @file
/// Lets concurrent callers that need the same thing share one fetch of it: a lookup and a
/// stat asked ahead for the same entry arrive at the same moment, and each would otherwise HEAD
/// on its own.

#include <skyvol/detail/throw.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/experimental/channel_error.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace skyvol::detail {

template <class T>
class single_flight {
public:
    /// Awaits `work`, unless a call under the same `name` is running already: then `work` is
    /// dropped unstarted, and this call waits for that one and shares its result or exception.
    boost::asio::awaitable<T> run(std::string name, boost::asio::awaitable<T> work) {
        auto executor = co_await boost::asio::this_coro::executor;
        for (;;) {
            std::shared_ptr<flight> f;
            bool leads = false;
            {
                std::lock_guard lock(mutex_);
                auto& slot = flights_[name];
                if (!slot) {
                    slot = std::make_shared<flight>(executor);
                    leads = true;
                }
                f = slot;
            }
            if (leads) co_return co_await lead(std::move(name), f, std::move(work));
            // The leader closes the channel when done; a close before this wait completes it
            // at once, so no wake-up is lost. Only this caller's cancellation aborts the wait.
            boost::system::error_code waited;
            co_await f->done.async_receive(
                boost::asio::redirect_error(boost::asio::use_awaitable, waited));
            if (waited != boost::asio::experimental::error::channel_closed) fail_cancelled();
            // A leader that was cancelled fetched nothing this caller asked to go without: it
            // leads a fetch of its own.
            if (f->cancelled) continue;
            if (f->error) std::rethrow_exception(f->error);
            co_return *f->value;
        }
    }

private:
    struct flight {
        explicit flight(const boost::asio::any_io_executor& executor)
            : done(executor) {}
        boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
        std::optional<T> value;
        std::exception_ptr error;
        bool cancelled = false; ///< the leader's caller cancelled it (set before `done` closes)
    };

    boost::asio::awaitable<T> lead(std::string name, std::shared_ptr<flight> f,
                                   boost::asio::awaitable<T> work) {
        try {
            T value = co_await std::move(work); // not as an argument: g++ 12 miscompiles that
            f->value.emplace(std::move(value));
        } catch (...) {
            f->error = std::current_exception();
        }
        const auto state = co_await boost::asio::this_coro::cancellation_state;
        f->cancelled = state.cancelled() != boost::asio::cancellation_type::none;
        {
            std::lock_guard lock(mutex_);
            flights_.erase(name);
        }
        f->done.close();
        if (f->error) std::rethrow_exception(f->error);
        co_return *f->value;
    }

    std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<flight>> flights_;
};

} // namespace skyvol::detail

#endif
