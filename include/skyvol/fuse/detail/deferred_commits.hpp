#ifndef SKYVOL_FUSE_DETAIL_DEFERRED_COMMITS_HPP
#define SKYVOL_FUSE_DETAIL_DEFERRED_COMMITS_HPP

/// @file
/// The adaptor's commits that close(2) does not wait for, by path. A flush of a handle that only
/// its open changed (O_CREAT, O_TRUNC) commits nothing and leaves the commit to release, which
/// the kernel sends without waiting for it; a request that must see the path as the last
/// close(2) left it (open, truncate, remove, rename) first commits such handles, as their flush
/// would have, and waits for every commit of the path under way.
///
/// Locks: `settle` takes an open file's mutex with this object's mutex released, and marks the
/// handles it works on, so a release (`forget`) waits for it to let go before the handle is
/// freed. `defer`, `undefer` and `started` may be called under an open file's mutex (that
/// mutex, then this object's); nothing here is held while a handler runs.

#include <skyvol/file.hpp>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace skyvol::fuse::detail {

template <class Handle>
class deferred_commits {
public:
    /// `h` (whose path it is) was flushed without a commit; its release, or `settle`, commits.
    void defer(Handle* h) {
        std::lock_guard lock(mutex_);
        for (auto [it, end] = deferred_.equal_range(h->path); it != end; ++it)
            if (it->second == h) return; // two descriptors flushed at once
        deferred_.emplace(h->path, h);
    }

    /// `h` was written or resized after its flush deferred it: its own close commits it now.
    /// Never waits (a writer calls it under its file's mutex, which a settle may wait for).
    void undefer(Handle* h) {
        std::lock_guard lock(mutex_);
        for (auto [it, end] = deferred_.equal_range(h->path); it != end; ++it)
            if (it->second == h) return (void)deferred_.erase(it);
    }

    /// `h` is flushed again or released: what commits it now is its own close. Waits while a
    /// `settle` works on it. (Found by pointer: there are few, and a handle's path is the one
    /// it was opened by.)
    void forget(Handle* h) {
        std::unique_lock lock(mutex_);
        let_go_.wait(lock, [&] { return !settling_.count(h); });
        for (auto it = deferred_.begin(); it != deferred_.end(); ++it)
            if (it->second == h) return (void)deferred_.erase(it);
    }

    /// A commit of `path` starts; `ended(path)` follows when it is done.
    void started(const std::string& path) {
        std::lock_guard lock(mutex_);
        ++paths_[path].in_flight;
    }
    void ended(const std::string& path) {
        std::vector<std::function<void()>> ready;
        {
            std::lock_guard lock(mutex_);
            auto it = paths_.find(path);
            if (it == paths_.end() || --it->second.in_flight > 0) return;
            ready = std::move(it->second.waiters);
            paths_.erase(it);
        }
        for (auto& then : ready)
            then();
    }

    /// Commits what `path`'s deferred handles hold (`commit(file)` must call `ended(path)` when
    /// done) and calls `then` once no commit of `path` is under way: at once if none is.
    template <class Commit>
    void settle(const std::string& path, Commit commit, std::function<void()> then) {
        std::vector<Handle*> taken;
        {
            std::lock_guard lock(mutex_);
            for (auto [it, end] = deferred_.equal_range(path); it != end;) {
                taken.push_back(it->second);
                settling_.insert(it->second);
                it = deferred_.erase(it);
            }
        }
        std::vector<skyvol::file> files;
        for (Handle* h : taken) {
            // One written since (between this taking it and its writer's `undefer`) is left to
            // its own close.
            std::lock_guard handle_lock(h->mutex);
            if (h->file.is_open() && !h->changed)
                files.push_back(std::exchange(h->file, skyvol::file()));
        }
        bool wait = false;
        {
            std::lock_guard lock(mutex_);
            for (Handle* h : taken)
                settling_.erase(h);
            if (!files.empty() || paths_.count(path)) {
                path_state& state = paths_[path];
                state.in_flight += files.size();
                state.waiters.push_back(std::move(then));
                wait = true;
            }
        }
        if (!taken.empty()) let_go_.notify_all();
        for (auto& f : files)
            commit(std::move(f));
        if (!wait) then();
    }

private:
    struct path_state {
        std::size_t in_flight = 0;
        std::vector<std::function<void()>> waiters;
    };

    std::mutex mutex_;
    std::condition_variable let_go_; ///< a handle left settling_
    std::multimap<std::string, Handle*> deferred_;
    std::set<Handle*> settling_;              ///< handles a settle works on, outside mutex_
    std::map<std::string, path_state> paths_; ///< paths with commits under way
};

} // namespace skyvol::fuse::detail

#endif
