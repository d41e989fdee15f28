#ifndef SKYVOL_FUSE_DETAIL_INODE_TABLE_HPP
#define SKYVOL_FUSE_DETAIL_INODE_TABLE_HPP

/// @file
/// The kernel names files by inode; a volume by path. This table gives each path the kernel
/// has looked up an inode number, counts the lookups as FUSE requires, and follows renames.
/// A removed path keeps its inode until the kernel forgets it, but a new file at that path
/// gets a new one.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace skyvol::fuse::detail {

class inode_table {
public:
    static constexpr std::uint64_t root = 1; ///< FUSE_ROOT_ID; its path is ""

    /// The inode of `path`, created if needed; counts one lookup.
    std::uint64_t remember(const std::string& path) {
        if (path.empty()) return root;
        std::lock_guard lock(mutex_);
        auto [it, fresh] = by_path_.try_emplace(path, next_);
        if (fresh) nodes_.emplace(next_++, node{path, 0, false});
        ++nodes_.at(it->second).lookups;
        return it->second;
    }

    /// The current path of `ino`; empty optional if the kernel already forgot it.
    std::optional<std::string> path_of(std::uint64_t ino) const {
        if (ino == root) return std::string();
        std::lock_guard lock(mutex_);
        auto it = nodes_.find(ino);
        if (it == nodes_.end()) return std::nullopt;
        return it->second.path;
    }

    /// The kernel dropped `count` lookups of `ino`.
    void forget(std::uint64_t ino, std::uint64_t count) {
        if (ino == root) return;
        std::lock_guard lock(mutex_);
        auto it = nodes_.find(ino);
        if (it == nodes_.end()) return;
        it->second.lookups -= std::min(count, it->second.lookups);
        if (it->second.lookups > 0) return;
        if (!it->second.detached) by_path_.erase(it->second.path);
        nodes_.erase(it);
    }

    /// `path` (and, for a directory, everything below) is gone.
    void removed(const std::string& path) {
        std::lock_guard lock(mutex_);
        detach_tree(path);
    }

    /// `from` (and everything below) is now at `to`; whatever was at `to` is gone.
    void renamed(const std::string& from, const std::string& to) {
        std::lock_guard lock(mutex_);
        detach_tree(to);
        std::map<std::string, std::uint64_t> moved;
        if (auto it = by_path_.find(from); it != by_path_.end()) {
            moved.emplace(to, it->second);
            by_path_.erase(it);
        }
        const std::string below = from + '/';
        for (auto it = by_path_.lower_bound(below);
             it != by_path_.end() && it->first.compare(0, below.size(), below) == 0;) {
            moved.emplace(to + it->first.substr(from.size()), it->second);
            it = by_path_.erase(it);
        }
        for (auto& [path, ino] : moved) {
            nodes_.at(ino).path = path;
            by_path_.insert_or_assign(path, ino);
        }
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return nodes_.size();
    }

private:
    struct node {
        std::string path;
        std::uint64_t lookups;
        bool detached; ///< removed or replaced: no longer in by_path_
    };

    void detach_tree(const std::string& path) {
        if (auto it = by_path_.find(path); it != by_path_.end()) {
            nodes_.at(it->second).detached = true;
            by_path_.erase(it);
        }
        const std::string below = path + '/';
        for (auto it = by_path_.lower_bound(below);
             it != by_path_.end() && it->first.compare(0, below.size(), below) == 0;) {
            nodes_.at(it->second).detached = true;
            it = by_path_.erase(it);
        }
    }

    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, node> nodes_;
    std::map<std::string, std::uint64_t> by_path_;
    std::uint64_t next_ = root + 1;
};

} // namespace skyvol::fuse::detail

#endif
