#ifndef SKYVOL_FS_DETAIL_METADATA_CACHE_HPP
#define SKYVOL_FS_DETAIL_METADATA_CACHE_HPP

/// @file
/// Path -> status answers with a time to live, including negative answers ("no such path"), so
/// repeated lookups of the same path do not each cost a request. This process's own changes
/// update it at once; changes by others show when the entry expires.

#include <skyvol/fs/path.hpp>
#include <skyvol/fs/status.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace skyvol::detail {

class metadata_cache {
public:
    using clock = std::chrono::steady_clock;

    metadata_cache(clock::duration ttl, clock::duration negative_ttl)
        : ttl_(ttl)
        , negative_ttl_(negative_ttl) {}

    /// A fresh answer (possibly "not found"), or nothing if the cache does not know.
    std::optional<file_status> lookup(const std::string& path) {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(path);
        if (it == entries_.end()) return std::nullopt;
        if (it->second.expires <= clock::now()) {
            entries_.erase(it);
            return std::nullopt;
        }
        return it->second.status;
    }

    /// Records what a change made by this volume left at `path`.
    void store(const std::string& path, const file_status& status) {
        std::lock_guard lock(mutex_);
        ++changes_;
        put_locked(path, status);
    }

    /// Records what a fetch begun when `changes()` was `since` found, unless this volume changed
    /// something meanwhile: the answer may predate that change.
    void store_fetched(const std::string& path, const file_status& status, std::uint64_t since) {
        std::lock_guard lock(mutex_);
        if (changes_ == since) put_locked(path, status);
    }

    /// Counts this volume's changes (store, forget); a fetch begun before one is stale.
    std::uint64_t changes() const {
        std::lock_guard lock(mutex_);
        return changes_;
    }

    void forget(const std::string& path) {
        std::lock_guard lock(mutex_);
        ++changes_;
        entries_.erase(path);
    }

    /// Forgets `dir` and everything under it.
    void forget_tree(const std::string& dir) {
        std::lock_guard lock(mutex_);
        ++changes_;
        for (auto it = entries_.begin(); it != entries_.end();)
            it = is_within(it->first, dir) ? entries_.erase(it) : std::next(it);
    }

    void clear() {
        std::lock_guard lock(mutex_);
        ++changes_;
        entries_.clear();
    }

private:
    static constexpr std::size_t max_entries = 200'000;

    void put_locked(const std::string& path, const file_status& status) {
        const auto ttl = status.exists() ? ttl_ : negative_ttl_;
        if (ttl <= clock::duration::zero()) return;
        if (entries_.size() >= max_entries) prune();
        entries_[path] = entry{status, clock::now() + ttl};
    }

    void prune() {
        const auto now = clock::now();
        for (auto it = entries_.begin(); it != entries_.end();)
            it = it->second.expires <= now ? entries_.erase(it) : std::next(it);
        if (entries_.size() >= max_entries) entries_.clear();
    }

    struct entry {
        file_status status;
        clock::time_point expires;
    };
    const clock::duration ttl_, negative_ttl_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> entries_;
    std::uint64_t changes_ = 0;
};

} // namespace skyvol::detail

#endif
