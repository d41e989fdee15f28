#ifndef SKYVOL_FUSE_DETAIL_IN_FLIGHT_HPP
#define SKYVOL_FUSE_DETAIL_IN_FLIGHT_HPP

/// @file
/// The completions a mount still owes. A kernel request's completion runs on the volume's
/// executor, replies through the FUSE session and may touch the file system after replying; the
/// session waits for every one of them before it destroys either. The kernel does not wait: an
/// aborted connection (`umount -f`, fusectl's abort) ends the request loop at once.

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>

namespace skyvol::fuse::detail {

class in_flight_completions {
public:
    /// Held by a completion handler for as long as the handler exists; its copies share it.
    using token = std::shared_ptr<void>;

    token enter() {
        {
            std::lock_guard lock(state_->mutex);
            ++state_->count;
        }
        // The state is shared, not borrowed: the last token may go after the waiter returned.
        return token(nullptr, [state = state_](void*) {
            std::lock_guard lock(state->mutex);
            if (--state->count == 0) state->idle.notify_all();
        });
    }

    /// Returns once no handler made since `enter()` exists.
    void wait_until_none() {
        std::unique_lock lock(state_->mutex);
        state_->idle.wait(lock, [&] { return state_->count == 0; });
    }

    /// `handler`, holding a token until it is destroyed (after it ran, or unrun at shutdown).
    template <class Handler>
    auto track(Handler handler) {
        return tracked<Handler>{enter(), std::move(handler)};
    }

private:
    template <class Handler>
    struct tracked {
        token held; ///< declared first, so released after the handler's own captures
        Handler handler;
        template <class... Args>
        void operator()(Args&&... args) {
            handler(std::forward<Args>(args)...);
        }
    };

    struct state {
        std::mutex mutex;
        std::condition_variable idle;
        std::size_t count = 0;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

} // namespace skyvol::fuse::detail

#endif
