#ifndef SKYVOL_FS_DETAIL_CACHED_READS_HPP
#define SKYVOL_FS_DETAIL_CACHED_READS_HPP

/// @file
/// How a volume reads an object whose status it knows, one type per cache policy, picked by
/// `reads_for<Cache>`:
///
/// - `direct_reads` (cache::none): each read is one ranged GET; open files stream through
///   read-ahead instead (the core builds it where this says `streams`).
/// - `block_reads` (cache::memory): blocks of `caches.block_size`, each one ranged GET, kept in
///   memory for the next reader.
/// - `disk_reads` (cache::disk): the whole object downloaded into the disk cache on its first
///   read, served while the download runs; concurrent first reads share one download.
///
/// Each gets the core's `get_range` (a ranged GET that also tells the metadata cache when the
/// object is gone) and reads nothing but the bucket: the journal's overlay is the core's.

#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/run.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/detail/cache_fill.hpp>
#include <skyvol/fs/detail/read_cache.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/fs/status.hpp>
#include <skyvol/mode.hpp>
#include <skyvol/store/concepts.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace skyvol::detail {

/// A ranged GET of the object at a volume path: `(path, offset, buffer)` to bytes read.
using range_getter = std::function<boost::asio::awaitable<std::size_t>(
    const std::string& path, std::uint64_t offset, boost::asio::mutable_buffer buffer)>;

/// Reads `buffer.size()` bytes (fewer at the end) of local file `fd` at `offset`, or throws.
inline std::size_t read_local(int fd, std::uint64_t offset, boost::asio::mutable_buffer buffer) {
    std::error_code ec;
    const std::size_t n =
        pread_full(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset), ec);
    if (ec) fail(ec);
    return n;
}

/// What every reads type is built from.
template <object_store Store>
struct reads_context {
    boost::asio::any_io_executor executor;
    Store store;
    const volume_options& options;
    range_getter get_range;
    transfer_shape download_shape;
    std::shared_ptr<const void> folder; ///< kept alive while downloads write into it
};

template <object_store Store>
class direct_reads {
public:
    static constexpr bool streams = true; ///< open files read ahead
    explicit direct_reads(reads_context<Store> c)
        : get_range_(std::move(c.get_range)) {}
    boost::asio::awaitable<std::size_t> read(const std::string& path, const std::string&,
                                             const file_status&, std::uint64_t offset,
                                             boost::asio::mutable_buffer buffer) {
        co_return co_await get_range_(path, offset, buffer);
    }
    std::uint64_t bytes() const noexcept { return 0; }
    bool make_room(std::uint64_t) noexcept { return false; }

private:
    range_getter get_range_;
};

template <object_store Store>
class block_reads {
public:
    static constexpr bool streams = false;
    explicit block_reads(reads_context<Store> c)
        : get_range_(std::move(c.get_range))
        , blocks_(c.options.caches.memory_bytes,
                  std::max<std::size_t>(4096, c.options.caches.block_size)) {}

    boost::asio::awaitable<std::size_t> read(const std::string& path, const std::string& key,
                                             const file_status& st, std::uint64_t offset,
                                             boost::asio::mutable_buffer buffer) {
        if (st.etag.empty() || offset >= st.size || buffer.size() == 0)
            co_return co_await get_range_(path, offset, buffer);
        const std::string object_id = key + '\0' + st.etag;
        const std::size_t block_size = blocks_.block_size();
        std::size_t done = 0;
        while (done < buffer.size() && offset + done < st.size) {
            const std::uint64_t at = offset + done;
            const std::uint64_t index = at / block_size;
            auto block = blocks_.find(object_id, index);
            if (!block) {
                auto fresh =
                    std::make_shared<std::string>(static_cast<std::size_t>(std::min<std::uint64_t>(
                                                      block_size, st.size - index * block_size)),
                                                  '\0');
                const std::size_t n =
                    co_await get_range_(path, index * block_size, boost::asio::buffer(*fresh));
                fresh->resize(n);
                block = fresh;
                blocks_.insert(object_id, index, block);
            }
            const std::size_t within = static_cast<std::size_t>(at - index * block_size);
            if (within >= block->size()) break; // the object is shorter than its status said
            const std::size_t n = std::min(block->size() - within, buffer.size() - done);
            std::memcpy(static_cast<char*>(buffer.data()) + done, block->data() + within, n);
            done += n;
        }
        co_return done;
    }
    std::uint64_t bytes() const { return blocks_.used_bytes(); }
    bool make_room(std::uint64_t) noexcept { return false; }

private:
    range_getter get_range_;
    block_cache blocks_;
};

template <object_store Store>
class disk_reads {
public:
    static constexpr bool streams = false;
    explicit disk_reads(reads_context<Store> c)
        : state_(std::make_shared<state>(std::move(c))) {}

    boost::asio::awaitable<std::size_t> read(const std::string& path, const std::string& key,
                                             const file_status& st, std::uint64_t offset,
                                             boost::asio::mutable_buffer buffer) {
        if (st.etag.empty() || offset >= st.size || buffer.size() == 0)
            co_return co_await state_->get_range(path, offset, buffer);
        std::optional<std::filesystem::path> cached;
        std::shared_ptr<cache_fill> fill = fill_for(key, st, cached);
        if (fill) {
            const std::uint64_t length = std::min<std::uint64_t>(buffer.size(), st.size - offset);
            std::exception_ptr failure;
            try {
                co_await fill->wait_for(offset, length);
            } catch (...) {
                failure = std::current_exception();
            }
            // The disk filled up under the download (writers took the space): read the bucket.
            if (failure && to_errno(error_from(failure)) == ENOSPC)
                co_return co_await state_->get_range(path, offset, buffer);
            if (failure) std::rethrow_exception(failure);
            co_return read_local(fill->fd(), offset, buffer);
        }
        // Too big for the cache as the disk is now: the bucket serves it, nothing is kept.
        if (!cached) co_return co_await state_->get_range(path, offset, buffer);
        unique_fd fd(::open(cached->c_str(), O_RDONLY | O_CLOEXEC));
        // Evicted by other downloads before this read could open it: read the bucket.
        if (!fd && errno == ENOENT) co_return co_await state_->get_range(path, offset, buffer);
        if (!fd) fail(last_error());
        co_return read_local(fd.get(), offset, buffer);
    }
    std::uint64_t bytes() const { return state_->objects.used_bytes(); }
    /// A writer found the disk full: clean copies give way. True if any did.
    bool make_room(std::uint64_t bytes) { return state_->objects.make_room(bytes); }

private:
    /// Shared with the downloads running in the background.
    struct state {
        explicit state(reads_context<Store> c)
            : executor(std::move(c.executor))
            , store(std::move(c.store))
            , get_range(std::move(c.get_range))
            , shape(c.download_shape)
            , folder(std::move(c.folder))
            , objects(c.options.cache_dir / "objects", c.options.caches.disk_bytes,
                      c.options.caches.disk_keep_free) {}
        boost::asio::any_io_executor executor;
        Store store;
        range_getter get_range;
        transfer_shape shape;
        std::shared_ptr<const void> folder; ///< the cache folder, removed after the last fill
        object_cache objects;
        /// Guards fills; never held across a suspension. Lock order: this, then the object
        /// cache's own.
        std::mutex fills_mutex;
        std::unordered_map<std::string, std::shared_ptr<cache_fill>> fills; ///< by key and ETag
    };

    /// The disk cache's copy of this version of `key`: its path in `cached`, or the download
    /// filling it, which this call starts if none runs and there is room. Concurrent first reads
    /// share one. Neither (null, and `cached` empty) where the object cannot be cached now.
    std::shared_ptr<cache_fill> fill_for(const std::string& key, const file_status& st,
                                         std::optional<std::filesystem::path>& cached) {
        const std::string id = key + '\0' + st.etag;
        std::filesystem::path temp;
        std::shared_ptr<cache_fill> fill;
        std::shared_ptr<object_cache::reservation> room;
        {
            // A fill leaves the map only after publishing: absent here, the copy is complete
            // or was never started.
            std::lock_guard lock(state_->fills_mutex);
            if (auto it = state_->fills.find(id); it != state_->fills.end()) return it->second;
            if ((cached = state_->objects.find(key, st.etag))) return nullptr;
            room = std::make_shared<object_cache::reservation>(state_->objects.reserve(st.size));
            if (!*room) return nullptr;
            temp = state_->objects.temp_path();
            unique_fd out(::open(temp.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
            if (!out) {
                const std::error_code ec = last_error();
                if (to_errno(ec) == ENOSPC) return nullptr;
                fail(ec);
            }
            fill = std::make_shared<cache_fill>(state_->executor, std::move(out), st.size,
                                                download_chunk_size(state_->shape));
            state_->fills.emplace(id, fill);
        }
        boost::asio::co_spawn(state_->executor,
                              fill_cache(state_, id, key, st, temp, fill, std::move(room)),
                              boost::asio::detached);
        return fill;
    }

    /// Downloads a whole object into `temp`, telling `fill`'s readers and the reservation of
    /// each chunk, then moves it into the disk cache.
    static boost::asio::awaitable<void>
    fill_cache(std::shared_ptr<state> self, std::string id, std::string key, file_status st,
               std::filesystem::path temp, std::shared_ptr<cache_fill> fill,
               std::shared_ptr<object_cache::reservation> room) {
        // Named, not a temporary in the co_await: g++ 12 destroys such temporaries twice.
        chunk_written on_chunk = [fill, room](std::uint64_t offset, std::size_t n) {
            room->wrote(n);
            fill->written(offset);
        };
        std::exception_ptr failure;
        try {
            const std::uint64_t got = co_await download_to_file(
                self->store, key, fill->fd(), st.size, self->shape, std::move(on_chunk));
            self->objects.publish(temp, key, st.etag, got, std::move(*room));
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            std::error_code ignored;
            std::filesystem::remove(temp, ignored);
            *room = object_cache::reservation(); // before the readers fall back to the bucket
            fill->fail(failure);
        } else {
            fill->finish();
        }
        std::lock_guard lock(self->fills_mutex);
        self->fills.erase(id);
    }

    std::shared_ptr<state> state_;
};

/// The reads type of a cache policy.
template <class Cache, class Store>
struct reads_for;
template <class Store>
struct reads_for<cache::none, Store> {
    using type = direct_reads<Store>;
};
template <class Store>
struct reads_for<cache::memory, Store> {
    using type = block_reads<Store>;
};
template <class Store>
struct reads_for<cache::disk, Store> {
    using type = disk_reads<Store>;
};

} // namespace skyvol::detail

#endif
