#ifndef SKYVOL_FS_DETAIL_READ_CACHE_HPP
#define SKYVOL_FS_DETAIL_READ_CACHE_HPP

/// @file
/// The two read caches behind `cache::memory` and `cache::disk`. Both key on the object's key
/// and ETag, so a new version of an object never reads as the old one once the volume has seen
/// its new ETag (which the metadata TTL bounds).
///
/// - `block_cache`: fixed-size blocks of objects in memory, least recently used out first.
/// - `object_cache`: whole objects as files in a folder, least recently used out first; an
///   object is downloaded whole on its first read (cheap for datasets read end to end; costly
///   for a few small reads of a huge object: use `cache::memory` there).

#include <skyvol/detail/md5.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace skyvol::detail {

class block_cache {
public:
    block_cache(std::uint64_t capacity_bytes, std::size_t block_size)
        : capacity_(capacity_bytes)
        , block_size_(block_size) {}

    std::size_t block_size() const noexcept { return block_size_; }

    std::shared_ptr<const std::string> find(const std::string& object_id, std::uint64_t block) {
        std::lock_guard lock(mutex_);
        auto it = index_.find(id(object_id, block));
        if (it == index_.end()) return nullptr;
        lru_.splice(lru_.begin(), lru_, it->second.position);
        return it->second.data;
    }

    void insert(const std::string& object_id, std::uint64_t block,
                std::shared_ptr<const std::string> data) {
        std::lock_guard lock(mutex_);
        const std::string key = id(object_id, block);
        if (index_.count(key) || data->size() > capacity_) return;
        lru_.push_front(key);
        used_ += data->size();
        index_.emplace(key, slot{std::move(data), lru_.begin()});
        while (used_ > capacity_ && !lru_.empty()) {
            auto victim = index_.find(lru_.back());
            used_ -= victim->second.data->size();
            index_.erase(victim);
            lru_.pop_back();
        }
    }

    std::uint64_t used_bytes() const {
        std::lock_guard lock(mutex_);
        return used_;
    }

private:
    static std::string id(const std::string& object_id, std::uint64_t block) {
        return object_id + '\0' + std::to_string(block);
    }
    struct slot {
        std::shared_ptr<const std::string> data;
        std::list<std::string>::iterator position;
    };
    const std::uint64_t capacity_;
    const std::size_t block_size_;
    mutable std::mutex mutex_;
    std::list<std::string> lru_;
    std::unordered_map<std::string, slot> index_;
    std::uint64_t used_ = 0;
};

class object_cache {
public:
    object_cache(std::filesystem::path dir, std::uint64_t capacity_bytes)
        : dir_(std::move(dir))
        , capacity_(capacity_bytes) {
        std::filesystem::create_directories(dir_);
        // What a previous run cached is still good (ETags name the versions); oldest first.
        std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> found;
        for (const auto& e : std::filesystem::directory_iterator(dir_)) {
            if (e.path().extension() == ".tmp")
                std::filesystem::remove(e.path());
            else if (e.is_regular_file())
                found.emplace_back(e.last_write_time(), e.path());
        }
        std::sort(found.begin(), found.end());
        for (auto& [time, path] : found)
            add(path.filename().string(), std::filesystem::file_size(path));
        evict();
    }

    /// The cached copy of this version of `key`, if there is one.
    std::optional<std::filesystem::path> find(const std::string& key, const std::string& etag) {
        const std::string name = name_of(key, etag);
        std::lock_guard lock(mutex_);
        auto it = index_.find(name);
        if (it == index_.end()) return std::nullopt;
        lru_.splice(lru_.begin(), lru_, it->second.position);
        return dir_ / name;
    }

    /// A fresh temp path in the cache folder to download into.
    std::filesystem::path temp_path() {
        return dir_ / (std::to_string(++counter_) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
                       ".tmp");
    }

    /// Moves a finished download into the cache; returns its final path.
    std::filesystem::path publish(const std::filesystem::path& temp, const std::string& key,
                                  const std::string& etag, std::uint64_t size) {
        const std::string name = name_of(key, etag);
        std::filesystem::rename(temp, dir_ / name);
        std::lock_guard lock(mutex_);
        if (!index_.count(name)) add(name, size);
        evict_locked(name);
        return dir_ / name;
    }

    std::uint64_t used_bytes() const {
        std::lock_guard lock(mutex_);
        return used_;
    }

private:
    static std::string name_of(const std::string& key, const std::string& etag) {
        md5 k, e;
        k.update(key.data(), key.size());
        e.update(etag.data(), etag.size());
        return to_hex(k.finish()) + "-" + to_hex(e.finish());
    }
    void add(const std::string& name, std::uint64_t size) {
        lru_.push_front(name);
        index_.emplace(name, slot{size, lru_.begin()});
        used_ += size;
    }
    void evict() {
        std::lock_guard lock(mutex_);
        evict_locked({});
    }
    /// Drops least recently used files until under capacity, sparing `keep`.
    void evict_locked(const std::string& keep) {
        while (used_ > capacity_ && !lru_.empty() && lru_.back() != keep) {
            auto it = index_.find(lru_.back());
            std::error_code ignored; // a reader holding it open keeps reading its descriptor
            std::filesystem::remove(dir_ / it->first, ignored);
            used_ -= it->second.size;
            index_.erase(it);
            lru_.pop_back();
        }
    }
    struct slot {
        std::uint64_t size;
        std::list<std::string>::iterator position;
    };
    const std::filesystem::path dir_;
    const std::uint64_t capacity_;
    mutable std::mutex mutex_;
    std::list<std::string> lru_;
    std::unordered_map<std::string, slot> index_;
    std::uint64_t used_ = 0;
    std::atomic<std::uint64_t> counter_{0};
};

} // namespace skyvol::detail

#endif
