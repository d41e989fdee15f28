#ifndef SKYVOL_FS_DETAIL_NAMESPACE_HPP
#define SKYVOL_FS_DETAIL_NAMESPACE_HPP

/// @file
/// What the bucket says about a volume's paths: statuses (HEAD, then a peek below for
/// directories), listings (pages of delimiter listings, HEADs for entries that carry no
/// metadata), and the stats a listing reader will ask next, asked ahead in the background. It
/// owns the metadata cache in front of all of that. It knows nothing of open files or the
/// write-back journal: the core lays those over what this returns.

#include <skyvol/detail/printable.hpp>
#include <skyvol/detail/single_flight.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/detail/listing_prefetch.hpp>
#include <skyvol/fs/detail/metadata_cache.hpp>
#include <skyvol/fs/detail/object_layout.hpp>
#include <skyvol/fs/detail/parallel.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/fs/path.hpp>
#include <skyvol/fs/status.hpp>
#include <skyvol/log.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/key.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace skyvol::detail {

/// A directory's entries as the store lists them, before the core's overlays.
struct store_listing {
    std::map<std::string, directory_entry> entries; ///< by name
    std::set<std::string> incomplete;               ///< listed without metadata
    std::set<std::string> overlaid; ///< open or pending files: newer than anything cached
};

template <object_store Store>
class object_namespace : public std::enable_shared_from_this<object_namespace<Store>> {
public:
    using executor_type = boost::asio::any_io_executor;

    object_namespace(executor_type executor, Store store, const object_layout& layout,
                     const volume_options& options)
        : executor_(std::move(executor))
        , store_(std::move(store))
        , layout_(layout)
        , cache_(options.metadata.ttl, options.metadata.negative_ttl)
        , listing_heads_(options.metadata.listing_heads)
        , listed_(4 * options.metadata.listing_heads)
        , log_(options.log) {}

    /// Listed keys no path can name (NUL, not UTF-8, `..`...), hidden from listings: each
    /// counted and logged once (the first 10,000).
    std::uint64_t hidden_keys() const {
        std::lock_guard lock(hidden_mutex_);
        return hidden_.size();
    }

    metadata_cache& cache() noexcept { return cache_; }

    /// Stops asking ahead (workers end at their next entry).
    void stop() { stopping_ = true; }

    /// The status of `path` as far as the bucket (and the cache) know.
    boost::asio::awaitable<file_status> lookup(std::string path) {
        // Before the cache: answers asked ahead are hits, and keep the window moving.
        if (auto ahead = listed_.ahead_of(path); !ahead.empty()) ask_ahead(std::move(ahead));
        if (auto cached = cache_.lookup(path)) co_return *cached;
        co_return co_await fetch_status(std::move(path));
    }

    /// Asks the store what is at `path`; concurrent askers share one round of requests unless
    /// this volume changed something after the first one asked.
    boost::asio::awaitable<file_status> fetch_status(std::string path) {
        const std::uint64_t since = cache_.changes();
        std::string flight = path + '\0' + std::to_string(since);
        co_return co_await stats_.run(std::move(flight), status_from_store(std::move(path), since));
    }

    /// Every entry the store lists directly in directory `dir`.
    boost::asio::awaitable<store_listing> list(const std::string& dir) {
        store_listing out;
        list_request request;
        request.prefix = layout_.dir_key_of(dir);
        request.delimiter = "/";
        do {
            auto [ec, page] = co_await store_.async_list(request, as_result);
            throw_on(ec);
            for (const std::string& cp : page.common_prefixes) {
                const std::string name =
                    cp.substr(request.prefix.size(), cp.size() - request.prefix.size() - 1);
                if (!shown(name, cp)) continue;
                if (out.entries
                        .try_emplace(name, join_path(dir, name),
                                     layout_.new_status(file_type::directory))
                        .second)
                    out.incomplete.insert(name); // its marker may hold a mode
            }
            for (const object_info& object : page.objects) {
                if (object.key == request.prefix) continue; // the directory's own marker
                const std::string name = object.key.substr(request.prefix.size());
                if (!shown(name, object.key)) continue;
                // A file and a directory of the same name: the file wins, as in stat().
                out.entries.insert_or_assign(
                    name, directory_entry(join_path(dir, name), layout_.status_of(object, false)));
                if (object.metadata.empty())
                    out.incomplete.insert(name);
                else
                    out.incomplete.erase(name);
            }
            request.continuation_token = page.next_continuation_token;
        } while (!request.continuation_token.empty());
        co_return out;
    }

    /// Turns a listing (with the core's overlays) into entries: what the cache knows in full
    /// wins; entries without metadata are HEADed now (`full`), or left for stats to ask ahead.
    boost::asio::awaitable<std::vector<directory_entry>>
    finish(const std::string& dir, store_listing listing, listing_detail detail) {
        std::vector<directory_entry> out;
        out.reserve(listing.entries.size());
        std::vector<std::size_t> to_complete;
        std::vector<std::string> left_incomplete;
        const bool trusted = listing_heads_ == 0;
        for (auto& [name, e] : listing.entries) {
            // Prefer what the volume already knows in full (permissions, owner, symlinks),
            // unless the core's overlays know better.
            if (listing.overlaid.count(name)) {
                out.push_back(std::move(e));
                continue;
            }
            if (auto known = cache_.lookup(e.path());
                known && known->exists() && known->is_directory() == e.is_directory()) {
                e = directory_entry(e.path(), *known);
            } else if (listing.incomplete.count(name) && !trusted) {
                if (detail == listing_detail::full) {
                    to_complete.push_back(out.size());
                } else {
                    e = directory_entry(e.path(), e.status(), false);
                    left_incomplete.push_back(name);
                }
            }
            out.push_back(std::move(e));
        }
        if (!to_complete.empty()) co_await complete_entries(out, to_complete);
        listed_.remember(dir, std::move(left_incomplete));
        co_return out;
    }

    /// The first entries below directory `path` (its marker, files, subdirectories): enough to
    /// tell whether it exists and whether it is empty.
    boost::asio::awaitable<list_page> peek_below(const std::string& path) {
        list_request below;
        below.prefix = layout_.dir_key_of(path);
        below.delimiter = "/";
        below.max_keys = 2;
        auto [ec, page] = co_await store_.async_list(below, as_result);
        throw_on(ec);
        co_return page;
    }

private:
    boost::asio::awaitable<file_status> status_from_store(std::string path, std::uint64_t since) {
        file_status st;
        auto [ec, info] = co_await store_.async_head(layout_.key_of(path), as_result);
        if (!ec) {
            st = layout_.status_of(info, false);
        } else if (ec != errc::not_found) {
            fail(ec);
        } else {
            // Not a file: a directory if a marker or any key lies below.
            const list_page page = co_await peek_below(path);
            const std::string marker_key = layout_.dir_key_of(path);
            const bool has_marker = !page.objects.empty() && page.objects[0].key == marker_key;
            if (has_marker) {
                auto [mec, marker] = co_await store_.async_head(marker_key, as_result);
                st = layout_.status_of(mec ? page.objects[0] : marker, true);
            } else if (!page.objects.empty() || !page.common_prefixes.empty()) {
                st = layout_.new_status(file_type::directory);
            }
        }
        cache_.store_fetched(path, st, since);
        co_return st;
    }

    /// HEADs listed entries whose listing had no metadata, `listing_heads` at a time, and
    /// caches what they say; an entry that vanished meanwhile keeps its listed status.
    boost::asio::awaitable<void> complete_entries(std::vector<directory_entry>& entries,
                                                  const std::vector<std::size_t>& which) {
        const std::uint64_t since = cache_.changes();
        std::atomic<std::size_t> next{0};
        auto worker = [&]() -> boost::asio::awaitable<void> {
            for (std::size_t i; (i = next++) < which.size();) {
                directory_entry& e = entries[which[i]];
                const bool is_dir = e.is_directory();
                const std::string key =
                    is_dir ? layout_.dir_key_of(e.path()) : layout_.key_of(e.path());
                auto [ec, info] = co_await store_.async_head(key, as_result);
                if (ec == errc::not_found) {
                    if (is_dir) cache_.store_fetched(e.path(), e.status(), since); // implicit
                    continue;
                }
                throw_on(ec);
                const file_status st = layout_.status_of(info, is_dir);
                cache_.store_fetched(e.path(), st, since);
                e = directory_entry(e.path(), st);
            }
        };
        co_await run_workers(std::min(listing_heads_, which.size()), worker);
    }

    /// Stats `paths` in the background, `listing_heads` at a time, so that the stats a listing
    /// reader makes next find their answers cached or on the way.
    void ask_ahead(std::vector<std::string> paths) {
        std::size_t start = 0;
        {
            std::lock_guard lock(ahead_mutex_);
            for (auto& p : paths)
                ahead_queue_.push_back(std::move(p));
            while (ahead_workers_ < listing_heads_ && ahead_workers_ < ahead_queue_.size()) {
                ++ahead_workers_;
                ++start;
            }
        }
        for (; start > 0; --start)
            boost::asio::co_spawn(executor_, ask_ahead_worker(this->shared_from_this()),
                                  boost::asio::detached);
    }

    static boost::asio::awaitable<void> ask_ahead_worker(std::shared_ptr<object_namespace> self) {
        for (;;) {
            std::string path;
            {
                std::lock_guard lock(self->ahead_mutex_);
                if (self->ahead_queue_.empty() || self->stopping_) {
                    --self->ahead_workers_;
                    co_return;
                }
                path = std::move(self->ahead_queue_.front());
                self->ahead_queue_.pop_front();
            }
            if (self->cache_.lookup(path)) continue;
            try {
                co_await self->fetch_status(std::move(path));
            } catch (const std::exception&) {
                // Only a guess: the stat that needs this entry asks again and reports.
            }
        }
    }

    /// Why no path can name a listed entry called `name` ("" if one can): stat and open would
    /// refuse it, so a listing must not show it.
    static std::string_view unnamable(const std::string& name) {
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
            return "its name would be empty, '.', '..' or hold '/'";
        if (name.size() > max_name_length) return "its name is longer than 255 bytes";
        if (name.find('\0') != std::string::npos) return "it holds a NUL byte";
        if (!is_valid_utf8(name)) return "it is not UTF-8";
        return {};
    }

    /// Whether a listing shows the entry `name` of `key`; an entry it hides is counted and
    /// logged the first time.
    bool shown(const std::string& name, const std::string& key) {
        const std::string_view why = unnamable(name);
        if (why.empty()) return true;
        bool first = false;
        {
            std::lock_guard lock(hidden_mutex_);
            if (hidden_.size() < max_hidden_logged) first = hidden_.insert(key).second;
        }
        if (first && log_)
            log_(log_level::warning, "key '" + printable(key) + "' is hidden from listings: " +
                                         std::string(why) + ", so no file name can refer to it");
        return false;
    }

    static constexpr std::size_t max_hidden_logged = 10000;

    executor_type executor_;
    Store store_;
    const object_layout layout_; ///< a copy: ask-ahead workers may outlive the core
    metadata_cache cache_;
    const std::size_t listing_heads_;
    single_flight<file_status> stats_; ///< by path and cache_.changes()
    listing_prefetch listed_;
    std::atomic<bool> stopping_{false};
    std::mutex ahead_mutex_; ///< guards the two below (never held across a suspension)
    std::deque<std::string> ahead_queue_;
    std::size_t ahead_workers_ = 0;
    log_sink log_;
    mutable std::mutex hidden_mutex_; ///< guards hidden_ (never held across a suspension)
    std::set<std::string> hidden_;
};

} // namespace skyvol::detail

#endif
