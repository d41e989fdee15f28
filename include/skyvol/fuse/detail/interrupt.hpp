#ifndef SKYVOL_FUSE_DETAIL_INTERRUPT_HPP
#define SKYVOL_FUSE_DETAIL_INTERRUPT_HPP

/// @file
/// A kernel interrupt of one request, as Asio cancellation of the volume operation serving it.
/// The kernel sends FUSE_INTERRUPT when the process waiting for the request gets a signal (a
/// Ctrl-C on a `cat` stuck on a dead endpoint); libfuse then calls the request's interrupt
/// function on one of its session threads, under the request's lock.
///
/// Lock order: libfuse's request lock, then `request_interrupt::mutex_`. `arm` takes the request
/// lock and may call the interrupt function inside, so it runs before `start` takes the mutex.

#include <skyvol/fuse/detail/fuse_api.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <mutex>

namespace skyvol::fuse::detail {

class request_interrupt {
public:
    /// Registers with libfuse; an interrupt that came already is remembered for `start`.
    void arm(fuse_req_t req) { fuse_req_interrupt_func(req, &on_interrupt, this); }

    /// Starts the operation with `begin(slot)`, which binds the slot to the operation's handler.
    /// The operation installs its cancellation handler while this holds the mutex, so that an
    /// interrupt on another thread cannot emit into a half-installed slot.
    template <class Begin>
    void start(Begin begin) {
        std::lock_guard lock(mutex_);
        begin(signal_.slot());
        if (interrupted_) signal_.emit(boost::asio::cancellation_type::terminal);
    }

    /// Called by the completion before it replies: once this returns, libfuse calls nothing
    /// more (it waits for a call in progress), so this object may go with the request.
    void disarm(fuse_req_t req) { fuse_req_interrupt_func(req, nullptr, nullptr); }

private:
    static void on_interrupt(fuse_req_t, void* data) {
        auto& self = *static_cast<request_interrupt*>(data);
        std::lock_guard lock(self.mutex_);
        self.interrupted_ = true;
        self.signal_.emit(boost::asio::cancellation_type::terminal);
    }

    std::mutex mutex_; ///< guards the two below
    boost::asio::cancellation_signal signal_;
    bool interrupted_ = false;
};

} // namespace skyvol::fuse::detail

#endif
