#ifndef SKYVOL_FS_DETAIL_LISTING_PREFETCH_HPP
#define SKYVOL_FS_DETAIL_LISTING_PREFETCH_HPP

/// @file
/// Listings of S3-like stores carry no user metadata, so a listing for readdir leaves its entries
/// incomplete and `find` needs no HEAD at all. `ls -l` then stats every entry in listing order,
/// one at a time; this remembers what recent listings left incomplete, so that a stat of one
/// entry can ask ahead for the ones listed after it, as read-ahead does for bytes.

#include <skyvol/fs/path.hpp>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace skyvol::detail {

class listing_prefetch {
public:
    /// Recent listings kept, and entries kept over all of them (about 100 bytes each).
    static constexpr std::size_t max_directories = 16;
    static constexpr std::size_t max_entries = 1u << 18;

    /// `window`: how far past the latest stat the entries are asked for; 0 turns this off.
    explicit listing_prefetch(std::size_t window)
        : window_(window) {}

    /// Remembers the names (sorted) that a listing of `dir` left incomplete, replacing what an
    /// earlier listing of it left.
    void remember(const std::string& dir, std::vector<std::string> names) {
        std::lock_guard lock(mutex_);
        drop_locked(dir);
        if (window_ == 0 || names.empty() || names.size() > max_entries) return;
        while (!order_.empty() &&
               (order_.size() >= max_directories || entries_ + names.size() > max_entries))
            drop_locked(std::string(order_.front())); // a copy: dropping erases the original
        entries_ += names.size();
        order_.push_back(dir);
        listing l;
        l.names = std::move(names);
        listings_.emplace(dir, std::move(l));
    }

    /// If `path` is an entry a remembered listing left incomplete, and the stats of that listing
    /// go in its order (this one is its first entry, or follows the previous stat closely): the
    /// paths of the entries listed after it, up to `window` past it, that no earlier stat asked
    /// for. Stats in random order (a shuffled dataset) ask for nothing.
    std::vector<std::string> ahead_of(const std::string& path) {
        std::vector<std::string> out;
        const std::string dir(parent_of(path));
        const std::string_view name = name_of(path);
        std::lock_guard lock(mutex_);
        auto it = listings_.find(dir);
        if (it == listings_.end()) return out;
        listing& l = it->second;
        auto at = std::lower_bound(l.names.begin(), l.names.end(), name);
        if (at == l.names.end() || *at != name) return out;
        const auto index = static_cast<std::size_t>(at - l.names.begin());
        const bool in_order = index == 0 || (l.last_stat != none && index > l.last_stat &&
                                             index - l.last_stat <= max_gap);
        l.last_stat = index;
        if (!in_order) return out;
        const std::size_t next = index + 1;
        const std::size_t from = std::max(l.asked_until, next);
        const std::size_t until = std::min(l.names.size(), next + window_);
        for (std::size_t i = from; i < until; ++i)
            out.push_back(join_path(dir, l.names[i]));
        l.asked_until = std::max(l.asked_until, until);
        return out;
    }

private:
    static constexpr std::size_t none = static_cast<std::size_t>(-1);
    /// Entries a stat in listing order may skip (complete entries are not in `names`, and the
    /// kernel's parallel lookups may arrive slightly out of order).
    static constexpr std::size_t max_gap = 8;

    struct listing {
        std::vector<std::string> names;
        std::size_t asked_until = 0; ///< entries before this index were asked for already
        std::size_t last_stat = none;
    };

    void drop_locked(const std::string& dir) {
        auto it = listings_.find(dir);
        if (it == listings_.end()) return;
        entries_ -= it->second.names.size();
        listings_.erase(it);
        order_.erase(std::find(order_.begin(), order_.end(), dir));
    }

    const std::size_t window_;
    std::mutex mutex_;
    std::map<std::string, listing> listings_;
    std::deque<std::string> order_; ///< oldest first
    std::size_t entries_ = 0;
};

} // namespace skyvol::detail

#endif
