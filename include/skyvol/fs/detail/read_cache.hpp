#ifndef SKYVOL_FS_DETAIL_READ_CACHE_HPP
#define SKYVOL_FS_DETAIL_READ_CACHE_HPP

/// @file
/// The two read caches behind `cache::memory` and `cache::disk`. Both key on the object's key
/// and ETag, so a new version of an object never reads as the old one once the volume has seen
/// its new ETag (which the metadata TTL bounds).
///
/// - `block_cache`: fixed-size blocks of objects in memory, least recently used out first.
/// - `object_cache`: whole objects as files in a folder, least recently used out first, under a
///   cap and a margin of the filesystem kept free; an object is downloaded whole on its first
///   read (cheap for datasets read end to end; costly for a few small reads of a huge object:
///   use `cache::memory` there).

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
#include <sys/statvfs.h>
#include <unordered_map>
#include <utility>
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

/// Lock order: `object_cache`'s mutex is taken last (nothing is called under it but the file
/// system).
class object_cache {
public:
    /// Room held for one download, counted against the cap at its full size and against the
    /// free space by what it has still to write; given back when published or dropped.
    class reservation {
    public:
        reservation() = default;
        reservation(reservation&& other) noexcept
            : cache_(std::exchange(other.cache_, nullptr))
            , size_(other.size_)
            , written_(other.written_) {}
        reservation& operator=(reservation&& other) noexcept {
            if (this != &other) {
                release();
                cache_ = std::exchange(other.cache_, nullptr);
                size_ = other.size_;
                written_ = other.written_;
            }
            return *this;
        }
        ~reservation() { release(); }
        explicit operator bool() const noexcept { return cache_ != nullptr; }

        /// The download wrote `n` more bytes: on the disk now, no longer ahead of it.
        void wrote(std::uint64_t n) {
            if (!cache_) return;
            std::lock_guard lock(cache_->mutex_);
            n = std::min(n, size_ - written_);
            written_ += n;
            cache_->ahead_ -= n;
        }

    private:
        friend class object_cache;
        reservation(object_cache* cache, std::uint64_t size)
            : cache_(cache)
            , size_(size) {}
        void release() {
            if (!cache_) return;
            std::lock_guard lock(cache_->mutex_);
            cache_->reserved_ -= size_;
            cache_->ahead_ -= size_ - written_;
            cache_ = nullptr;
        }
        object_cache* cache_ = nullptr;
        std::uint64_t size_ = 0;
        std::uint64_t written_ = 0; ///< guarded by the cache's mutex
    };

    /// `capacity_bytes` caps the cached objects (0: no cap); `keep_free` is the share of the
    /// folder's filesystem they leave free.
    object_cache(std::filesystem::path dir, std::uint64_t capacity_bytes, double keep_free = 0)
        : dir_(std::move(dir))
        , capacity_(capacity_bytes) {
        std::filesystem::create_directories(dir_);
        struct statvfs fs {};
        if (::statvfs(dir_.c_str(), &fs) == 0)
            margin_ = static_cast<std::uint64_t>(std::clamp(keep_free, 0.0, 1.0) *
                                                 static_cast<double>(fs.f_blocks) *
                                                 static_cast<double>(fs.f_frsize));
        // What a previous run cached is still good (ETags name the versions); oldest first.
        std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> found;
        for (const auto& e : std::filesystem::directory_iterator(dir_)) {
            if (e.path().extension() == ".tmp")
                std::filesystem::remove(e.path());
            else if (e.is_regular_file())
                found.emplace_back(e.last_write_time(), e.path());
        }
        std::sort(found.begin(), found.end());
        std::lock_guard lock(mutex_);
        for (auto& [time, path] : found)
            add(path.filename().string(), std::filesystem::file_size(path));
        while (!lru_.empty() && (over_capacity(0) || free_bytes() < margin_))
            evict_oldest();
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

    /// Room for a download of `size` bytes: evicts least recently used objects until it fits
    /// under the cap and leaves the margin free, beside what the downloads under way have still
    /// to write. Empty where even an empty cache could not hold it (nothing is evicted then):
    /// the object is read from the bucket instead.
    reservation reserve(std::uint64_t size) {
        std::lock_guard lock(mutex_);
        // Evicting every copy would leave the cap free, and about `used_` more bytes on disk
        // (less what open readers still hold).
        if (capacity_ && reserved_ + size > capacity_) return {};
        if (free_bytes() + used_ < margin_ + ahead_ + size) return {};
        const auto fits = [&] {
            return !over_capacity(size) && free_bytes() >= margin_ + ahead_ + size;
        };
        while (!fits() && !lru_.empty())
            evict_oldest();
        if (!fits()) return {};
        reserved_ += size;
        ahead_ += size;
        return reservation(this, size);
    }

    /// A fresh temp path in the cache folder to download into.
    std::filesystem::path temp_path() {
        return dir_ / (std::to_string(++counter_) + "-" +
                       std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
                       ".tmp");
    }

    /// Moves a finished download of `size` bytes into the cache, giving back its reservation;
    /// returns its final path.
    std::filesystem::path publish(const std::filesystem::path& temp, const std::string& key,
                                  const std::string& etag, std::uint64_t size, reservation room) {
        const std::string name = name_of(key, etag);
        std::filesystem::rename(temp, dir_ / name);
        room = reservation();
        std::lock_guard lock(mutex_);
        if (!index_.count(name)) add(name, size);
        while (over_capacity(0) && !lru_.empty() && lru_.back() != name)
            evict_oldest();
        return dir_ / name;
    }

    /// A writer found the disk full: evicts least recently used objects until `bytes` more are
    /// free besides the margin, or none is left. True if it evicted any.
    bool make_room(std::uint64_t bytes) {
        std::lock_guard lock(mutex_);
        bool evicted = false;
        while (!lru_.empty() && free_bytes() < margin_ + bytes) {
            evict_oldest();
            evicted = true;
        }
        return evicted;
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
    /// Bytes the folder's filesystem has free for us (all, where it cannot say).
    std::uint64_t free_bytes() const {
        struct statvfs fs {};
        if (::statvfs(dir_.c_str(), &fs) != 0) return std::uint64_t(-1) / 2;
        return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    }
    bool over_capacity(std::uint64_t more) const {
        return capacity_ && used_ + reserved_ + more > capacity_;
    }
    void add(const std::string& name, std::uint64_t size) {
        lru_.push_front(name);
        index_.emplace(name, slot{size, lru_.begin()});
        used_ += size;
    }
    void evict_oldest() {
        auto it = index_.find(lru_.back());
        std::error_code ignored; // a reader holding it open keeps reading its descriptor
        std::filesystem::remove(dir_ / it->first, ignored);
        used_ -= it->second.size;
        index_.erase(it);
        lru_.pop_back();
    }
    struct slot {
        std::uint64_t size;
        std::list<std::string>::iterator position;
    };
    const std::filesystem::path dir_;
    const std::uint64_t capacity_;
    std::uint64_t margin_ = 0; ///< bytes of the filesystem kept free; set once
    mutable std::mutex mutex_; ///< guards the members below
    std::list<std::string> lru_;
    std::unordered_map<std::string, slot> index_;
    std::uint64_t used_ = 0;
    std::uint64_t reserved_ = 0; ///< downloads under way, at their full size
    std::uint64_t ahead_ = 0;    ///< what downloads under way have still to write
    std::atomic<std::uint64_t> counter_{0};
};

} // namespace skyvol::detail

#endif
