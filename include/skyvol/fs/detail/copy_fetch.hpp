#ifndef SKYVOL_FS_DETAIL_COPY_FETCH_HPP
#define SKYVOL_FS_DETAIL_COPY_FETCH_HPP

/// @file
/// Copy mode's fetch: brings every object under a prefix into a local_store mirror, several at
/// once, skipping objects whose ETag has not changed since the last fetch and removing local
/// copies of objects the bucket no longer has. The source ETag is kept in the mirror object's
/// metadata under `skyvol-source-etag`.

#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/printable.hpp>
#include <skyvol/fs/detail/parallel.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/log.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/local_store.hpp>

#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace skyvol::detail {

inline constexpr const char* source_etag_name = "skyvol-source-etag";

template <object_store Store>
class copy_fetch {
public:
    copy_fetch(Store source, std::string prefix, local_store mirror, std::size_t parallelism,
               std::function<void(const copy_progress&)> on_progress, log_sink log)
        : source_(std::move(source))
        , prefix_(std::move(prefix))
        , mirror_(std::move(mirror))
        , parallelism_(std::max<std::size_t>(1, parallelism))
        , on_progress_(std::move(on_progress))
        , log_(std::move(log)) {}

    boost::asio::awaitable<copy_stats> run() {
        // What the bucket has now.
        std::vector<object_info> remote;
        copy_stats stats;
        list_request request;
        request.prefix = prefix_;
        do {
            auto [ec, page] = co_await source_.async_list(request, as_result);
            throw_on(ec);
            for (auto& o : page.objects) {
                if (o.key.size() <= prefix_.size()) continue; // the prefix's own marker
                if (validate_local_key(o.key.substr(prefix_.size())))
                    skip(stats, o.key, "a local file tree cannot hold this name");
                else
                    remote.push_back(std::move(o));
            }
            request.continuation_token = page.next_continuation_token;
        } while (!request.continuation_token.empty());
        drop_shadowed(remote, stats);

        // What the mirror has that the bucket no longer does goes first: a file may be where a
        // folder was (`a/b` gone, `a` new).
        std::set<std::string> wanted;
        for (const auto& o : remote)
            wanted.insert(o.key.substr(prefix_.size()));
        list_request local;
        std::vector<std::string> stale;
        do {
            auto [ec, page] = co_await mirror_.async_list(local, as_result);
            throw_on(ec);
            for (const auto& o : page.objects)
                if (!wanted.count(o.key)) stale.push_back(o.key);
            local.continuation_token = page.next_continuation_token;
        } while (!local.continuation_token.empty());
        for (const auto& key : stale) {
            auto [ec] = co_await mirror_.async_remove(key, as_result);
            throw_on(ec);
            ++stats.removed;
        }

        copy_progress progress;
        progress.files_total = remote.size();
        for (const auto& o : remote)
            progress.bytes_total += o.size;
        std::mutex progress_mutex;
        std::atomic<std::size_t> next{0};

        auto worker = [&]() -> boost::asio::awaitable<void> {
            for (std::size_t i; (i = next++) < remote.size();) {
                const object_info& object = remote[i];
                const bool fetched = co_await fetch_one(object);
                std::lock_guard lock(progress_mutex);
                ++progress.files_done;
                progress.bytes_done += object.size;
                if (fetched)
                    ++stats.fetched, stats.bytes += object.size;
                else
                    ++stats.unchanged;
                if (on_progress_) on_progress_(progress);
            }
        };
        co_await run_workers(std::min(parallelism_, std::max<std::size_t>(1, remote.size())),
                             worker);
        co_return stats;
    }

private:
    void skip(copy_stats& stats, const std::string& key, std::string_view why) {
        stats.skipped.push_back(key);
        if (log_)
            log_(log_level::warning,
                 "copy: skipped key '" + printable(key) + "': " + std::string(why));
    }

    /// A bucket can hold `a` and `a/b`, a file tree not: the file wins, as stat() and listings
    /// of a mount show it, and the keys below it are skipped.
    void drop_shadowed(std::vector<object_info>& remote, copy_stats& stats) {
        std::set<std::string, std::less<>> files; // copies: `remote` moves away below
        for (const auto& o : remote)
            if (!o.key.ends_with('/')) files.insert(o.key.substr(prefix_.size()));
        auto shadowed_by = [&](std::string_view local_key) -> std::string {
            for (std::size_t slash = local_key.find('/'); slash != std::string_view::npos;
                 slash = local_key.find('/', slash + 1))
                if (auto it = files.find(local_key.substr(0, slash)); it != files.end()) return *it;
            return {};
        };
        std::vector<object_info> kept;
        kept.reserve(remote.size());
        for (auto& o : remote) {
            const std::string file = shadowed_by(std::string_view(o.key).substr(prefix_.size()));
            if (file.empty())
                kept.push_back(std::move(o));
            else
                skip(stats, o.key,
                     "the key '" + printable(prefix_ + file) +
                         "' is a file where this needs a folder");
        }
        remote = std::move(kept);
    }

    /// Fetches one object unless the mirror already has this version; true if fetched.
    boost::asio::awaitable<bool> fetch_one(const object_info& listed) {
        const std::string local_key = listed.key.substr(prefix_.size());
        auto [lec, have] = co_await mirror_.async_head(local_key, as_result);
        if (!lec) {
            auto it = have.metadata.find(source_etag_name);
            if (it != have.metadata.end() && it->second == listed.etag) co_return false;
        }
        auto [hec, info] = co_await source_.async_head(listed.key, as_result);
        throw_on(hec);
        put_options options;
        options.content_type = info.content_type;
        options.metadata = info.metadata;
        options.metadata[source_etag_name] = info.etag;
        if (local_key.ends_with('/')) {
            auto [ec, r] = co_await mirror_.async_put(local_key, boost::asio::buffer("", 0),
                                                      options, as_result);
            throw_on(ec);
            co_return true;
        }
        // Into a file inside the mirror's folder, which then becomes the object by a rename:
        // memory stays bounded by one chunk per worker, each byte is written once, and nothing
        // lands in $TMPDIR (often a tmpfs, which would hold the object in RAM).
        std::error_code ec;
        local_store::staged_file file = mirror_.stage(ec);
        throw_on(ec);
        // Objects already move copy.parallelism at a time: two chunks each is enough.
        const transfer_shape shape{multipart_limits::max_part_size, 8ull << 20, 2};
        const std::uint64_t got =
            co_await download_to_file(source_, listed.key, file.fd(), info.size, shape);
        // The object shrank between the HEAD and the GETs: keep what the GETs returned.
        if (::ftruncate(file.fd(), static_cast<off_t>(got)) != 0) fail(last_error());
        auto [pec, put] =
            co_await mirror_.async_put_staged(local_key, std::move(file), options, as_result);
        throw_on(pec);
        co_return true;
    }

    Store source_;
    std::string prefix_;
    local_store mirror_;
    std::size_t parallelism_;
    std::function<void(const copy_progress&)> on_progress_;
    log_sink log_;
};

} // namespace skyvol::detail

#endif
