#ifndef SKYVOL_FS_DETAIL_VOLUME_CORE_HPP
#define SKYVOL_FS_DETAIL_VOLUME_CORE_HPP

/// @file
/// Filesystem semantics over one object store, as coroutines on the volume's executor. The
/// public `volume` only gates this by mode and adds blocking and token-based faces.
///
/// Paths are canonical (fs/path.hpp). A file is the object `prefix + path`; a directory is a
/// `prefix + path + "/"` marker object or any key below it. Lookups go through the metadata
/// cache; this process's writes update it at once. With deferred uploads (write_back), closed
/// files sit in the journal and are served from it until the uploader has put them in the
/// bucket; metadata operations (remove, rename, attribute changes) first drain the journal so
/// that they apply to what the bucket holds, in order.

#include <skyvol/detail/single_flight.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/detail/cache_fill.hpp>
#include <skyvol/fs/detail/listing_prefetch.hpp>
#include <skyvol/fs/detail/metadata_cache.hpp>
#include <skyvol/fs/detail/parallel.hpp>
#include <skyvol/fs/detail/read_ahead.hpp>
#include <skyvol/fs/detail/read_cache.hpp>
#include <skyvol/fs/detail/staging.hpp>
#include <skyvol/fs/detail/streaming_upload.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/fs/detail/write_back_uploader.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/fs/path.hpp>
#include <skyvol/fs/status.hpp>
#include <skyvol/store/concepts.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace skyvol {

namespace detail {

/// Which read cache a volume uses (from its cache policy type).
enum class read_cache_kind { none, memory, disk };

template <object_store Store>
class volume_core : public std::enable_shared_from_this<volume_core<Store>> {
public:
    using executor_type = boost::asio::any_io_executor;

    volume_core(executor_type executor, Store store, volume_options options, bool deferred_uploads,
                read_cache_kind read_cache = read_cache_kind::none)
        : executor_(std::move(executor))
        , store_(std::move(store))
        , options_(std::move(options))
        , cache_(options_.metadata_ttl, options_.negative_ttl)
        , read_ahead_budget_(std::make_shared<read_ahead_budget>(options_.read_ahead_budget)) {
        if (!options_.prefix.empty() && !options_.prefix.ends_with('/')) options_.prefix += '/';
        if (!options_.prefix.empty() && validate_key(options_.prefix)) fail(errc::invalid_config);
        defaults_.uid = options_.uid.value_or(::getuid());
        defaults_.gid = options_.gid.value_or(::getgid());
        defaults_.file_permissions = options_.file_permissions & 07777;
        defaults_.directory_permissions = options_.directory_permissions & 07777;
        if (options_.cache_dir.empty()) {
            if (deferred_uploads) fail(errc::invalid_config); // crash recovery needs a known place
            std::string pattern =
                (std::filesystem::temp_directory_path() / "skyvol-XXXXXX").string();
            if (!::mkdtemp(pattern.data())) fail(last_error());
            options_.cache_dir = pattern;
            owns_cache_dir_ = true;
        }
        staging_.emplace(options_.cache_dir / "staging");
        if (deferred_uploads) {
            typename write_back_uploader<Store>::settings s;
            s.delay = options_.write_back_delay;
            s.attempts = options_.upload_attempts;
            s.shape = transfer();
            s.log = options_.log;
            uploads_ = std::make_shared<write_back_uploader<Store>>(
                executor_, store_, options_.cache_dir, std::move(s));
            journal_ = &uploads_->journal();
        }
        if (read_cache == read_cache_kind::memory)
            blocks_ = std::make_unique<block_cache>(
                options_.memory_cache_bytes,
                std::max<std::size_t>(4096, options_.cache_block_size));
        else if (read_cache == read_cache_kind::disk)
            objects_ = std::make_unique<object_cache>(options_.cache_dir / "objects",
                                                      options_.disk_cache_bytes);
    }

    /// Bytes the read cache holds now (0 without one).
    std::uint64_t read_cache_bytes() const {
        return blocks_ ? blocks_->used_bytes() : objects_ ? objects_->used_bytes() : 0;
    }

    ~volume_core() {
        if (owns_cache_dir_) {
            std::error_code ignored;
            std::filesystem::remove_all(options_.cache_dir, ignored);
        }
    }

    /// Starts the background uploader (write_back); call once, after construction.
    void start() {
        if (uploads_)
            uploads_->start([weak = this->weak_from_this()](const std::string& path) {
                if (auto self = weak.lock()) self->cache_.forget(path);
            });
    }

    /// Asks the uploader to stop; pending entries stay journaled.
    void stop() {
        stopping_ = true;
        if (uploads_) uploads_->stop();
    }
    bool uploader_done() const noexcept { return !uploads_ || uploads_->done(); }
    write_back_stats upload_stats() const {
        return uploads_ ? uploads_->stats() : write_back_stats{};
    }

    const executor_type& get_executor() const noexcept { return executor_; }
    Store& store() noexcept { return store_; }
    const volume_options& options() const noexcept { return options_; }
    std::size_t pending_uploads() const { return journal_ ? journal_->size() : 0; }

    std::string key_of(const std::string& path) const { return options_.prefix + path; }
    std::string dir_key_of(const std::string& path) const {
        return path.empty() ? options_.prefix : options_.prefix + path + "/";
    }

    /// Context for error messages about `path`.
    error_context where(const std::string& key) const {
        return {store_.store_name(), store_.bucket_name(), key, {}};
    }

    // ---- lookups -----------------------------------------------------------------------------

    /// The status of `path`; `file_type::not_found` if nothing is there. Symlinks are not
    /// followed.
    boost::asio::awaitable<file_status> stat(std::string path) {
        if (path.empty()) co_return new_status(file_type::directory);
        if (auto open = staging_->status_of(path)) co_return *open;
        if (journal_)
            if (auto pending = journal_->latest_for(path)) co_return pending_status(*pending);
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

    boost::asio::awaitable<file_status> status_from_store(std::string path, std::uint64_t since) {
        file_status st;
        auto [ec, info] = co_await store_.async_head(key_of(path), as_result);
        if (!ec) {
            st = status_of(info, false, defaults_);
        } else if (ec != errc::not_found) {
            fail(ec);
        } else {
            // Not a file: a directory if a marker or any key lies below.
            const list_page page = co_await peek_below(path);
            const std::string marker_key = dir_key_of(path);
            const bool has_marker = !page.objects.empty() && page.objects[0].key == marker_key;
            if (has_marker) {
                auto [mec, marker] = co_await store_.async_head(marker_key, as_result);
                st = status_of(mec ? page.objects[0] : marker, true, defaults_);
            } else if (!page.objects.empty() || !page.common_prefixes.empty()) {
                st = new_status(file_type::directory);
            }
        }
        cache_.store_fetched(path, st, since);
        co_return st;
    }

    /// Stats `paths` in the background, `listing_heads` at a time, so that the stats a listing
    /// reader makes next find their answers cached or on the way.
    void ask_ahead(std::vector<std::string> paths) {
        std::size_t start = 0;
        {
            std::lock_guard lock(ahead_mutex_);
            for (auto& p : paths)
                ahead_queue_.push_back(std::move(p));
            while (ahead_workers_ < options_.listing_heads &&
                   ahead_workers_ < ahead_queue_.size()) {
                ++ahead_workers_;
                ++start;
            }
        }
        for (; start > 0; --start)
            boost::asio::co_spawn(executor_, ask_ahead_worker(this->shared_from_this()),
                                  boost::asio::detached);
    }

    static boost::asio::awaitable<void> ask_ahead_worker(std::shared_ptr<volume_core> self) {
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

    /// Like `stat`, but follows symlinks (relative targets, within the volume, 8 hops at most).
    boost::asio::awaitable<std::pair<std::string, file_status>> resolve(std::string path) {
        for (int hop = 0; hop <= 8; ++hop) {
            file_status st = co_await stat(path);
            if (!st.is_symlink()) co_return std::pair(std::move(path), std::move(st));
            std::string target = co_await read_link(path);
            std::error_code ec;
            path = resolve_relative(std::string(parent_of(path)), target, ec);
            if (ec) fail(ec);
        }
        fail(std::error_code(ELOOP, std::generic_category()));
    }

    boost::asio::awaitable<std::vector<directory_entry>> list(std::string path,
                                                              listing_detail detail) {
        const auto [dir, st] = co_await resolve(path);
        if (!st.exists()) fail(errc::not_found);
        if (!st.is_directory()) fail(errc::not_a_directory);

        std::map<std::string, directory_entry> entries;
        std::set<std::string> incomplete; // listed without metadata: HEADed below
        list_request request;
        request.prefix = dir_key_of(dir);
        request.delimiter = "/";
        do {
            auto [ec, page] = co_await store_.async_list(request, as_result);
            throw_on(ec);
            for (const std::string& cp : page.common_prefixes) {
                const std::string name =
                    cp.substr(request.prefix.size(), cp.size() - request.prefix.size() - 1);
                if (!usable_name(name)) continue;
                if (entries
                        .try_emplace(name, join_path(dir, name), new_status(file_type::directory))
                        .second)
                    incomplete.insert(name); // its marker may hold a mode
            }
            for (const object_info& object : page.objects) {
                if (object.key == request.prefix) continue; // the directory's own marker
                const std::string name = object.key.substr(request.prefix.size());
                if (!usable_name(name)) continue;
                // A file and a directory of the same name: the file wins, as in stat().
                entries.insert_or_assign(
                    name,
                    directory_entry(join_path(dir, name), status_of(object, false, defaults_)));
                if (object.metadata.empty())
                    incomplete.insert(name);
                else
                    incomplete.erase(name);
            }
            request.continuation_token = page.next_continuation_token;
        } while (!request.continuation_token.empty());
        if (journal_)
            for (auto& [p, e] : journal_->children_of(dir)) {
                entries.insert_or_assign(std::string(name_of(p)),
                                         directory_entry(p, pending_status(e)));
                incomplete.erase(std::string(name_of(p)));
            }
        for (auto& [p, open_status] : staging_->children_of(dir))
            entries.try_emplace(std::string(name_of(p)), p, open_status);
        std::vector<directory_entry> out;
        out.reserve(entries.size());
        std::vector<std::size_t> to_complete;
        std::vector<std::string> left_incomplete;
        const bool trusted = options_.listing_heads == 0;
        for (auto& [name, e] : entries) {
            // Prefer what the volume already knows in full (permissions, owner, symlinks).
            if (auto known = cache_.lookup(e.path());
                known && known->exists() && known->is_directory() == e.is_directory()) {
                e = directory_entry(e.path(), *known);
            } else if (incomplete.count(name) && !trusted) {
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
                const std::string key = is_dir ? dir_key_of(e.path()) : key_of(e.path());
                auto [ec, info] = co_await store_.async_head(key, as_result);
                if (ec == errc::not_found) {
                    if (is_dir) cache_.store_fetched(e.path(), e.status(), since); // implicit
                    continue;
                }
                throw_on(ec);
                const file_status st = status_of(info, is_dir, defaults_);
                cache_.store_fetched(e.path(), st, since);
                e = directory_entry(e.path(), st);
            }
        };
        co_await run_workers(std::min(options_.listing_heads, which.size()), worker);
    }

    boost::asio::awaitable<std::string> read_link(std::string path) {
        const file_status st = co_await stat(path);
        if (!st.exists()) fail(errc::not_found);
        if (!st.is_symlink()) fail(errc::invalid_argument);
        std::string target(st.size, '\0');
        const std::size_t n = co_await read_object(path, st, 0, boost::asio::buffer(target));
        target.resize(n);
        co_return target;
    }

    // ---- reads -------------------------------------------------------------------------------

    /// A read-ahead stream over the object at `path` (resolved, `size` bytes), for a volume
    /// without a read cache or journal; null where reads go through those.
    std::shared_ptr<read_ahead> make_read_ahead(const std::string& path, std::uint64_t size) {
        if (blocks_ || objects_ || journal_) return nullptr;
        read_ahead_limits limits;
        limits.first = options_.read_ahead_first;
        limits.part = options_.read_ahead_part;
        limits.window = options_.read_ahead_window;
        auto fetch = [self = this->shared_from_this(), path](std::uint64_t offset,
                                                             boost::asio::mutable_buffer buffer) {
            return self->get_range(path, offset, buffer);
        };
        return std::make_shared<read_ahead>(executor_, size, std::move(fetch), limits,
                                            read_ahead_budget_);
    }

    /// Bytes the volume's read-ahead buffers hold now.
    std::uint64_t read_ahead_bytes() const { return read_ahead_budget_->in_use(); }

    /// Reads from a regular file (symlinks followed) at `offset` into `buffer`.
    boost::asio::awaitable<std::size_t> read(std::string path, std::uint64_t offset,
                                             boost::asio::mutable_buffer buffer) {
        const auto [file, st] = co_await resolve(path);
        if (!st.exists()) fail(errc::not_found);
        if (st.is_directory()) fail(errc::is_a_directory);
        co_return co_await read_object(file, st, offset, buffer);
    }

    boost::asio::awaitable<std::string> read_file(std::string path) {
        const auto [file, st] = co_await resolve(path);
        if (!st.exists()) fail(errc::not_found);
        if (st.is_directory()) fail(errc::is_a_directory);
        std::string out(st.size, '\0');
        std::size_t done = 0;
        constexpr std::size_t chunk = 8u << 20;
        const auto ahead = make_read_ahead(file, st.size);
        while (done < out.size()) {
            const auto into =
                boost::asio::buffer(out.data() + done, std::min(chunk, out.size() - done));
            std::size_t n = 0; // (g++ 12 miscompiles co_await on both sides of ?:)
            if (ahead)
                n = co_await read_ahead::read(ahead, done, into);
            else
                n = co_await read_object(file, st, done, into);
            if (n == 0) break;
            done += n;
        }
        out.resize(done);
        co_return out;
    }

    // ---- writes ------------------------------------------------------------------------------

    staging_area& staging() noexcept { return *staging_; }

    /// Opens `path` for writing into a staging copy. `keep_content` copies what is there now
    /// (append, read-write, partial overwrite); otherwise the file starts empty. A file that is
    /// created gets `permissions` if given.
    boost::asio::awaitable<std::shared_ptr<staged_file>>
    open_for_write(std::string path, bool create, bool exclusive, bool keep_content,
                   std::optional<std::uint32_t> permissions = std::nullopt) {
        if (path.empty()) fail(errc::is_a_directory);
        co_await require_parent_directory(path);
        const file_status existing = co_await stat(path);
        if (existing.is_directory()) fail(errc::is_a_directory);
        if (existing.is_symlink()) fail(errc::invalid_argument);
        if (existing.exists() && exclusive) fail(errc::already_exists);
        if (!existing.exists() && !create) fail(errc::not_found);

        file_status st = existing.exists() ? existing : new_status(file_type::regular);
        if (!existing.exists() && permissions) st.permissions = *permissions & 07777;
        auto staged = staging_->create(path, std::move(st), !existing.exists());
        std::uint64_t size = 0;
        try {
            if (existing.exists() && keep_content) {
                bool copied = false;
                if (journal_)
                    if (auto pending = journal_->open_latest(path)) {
                        copy_local(pending->second.get(), staged->fd());
                        size = pending->first.size;
                        copied = true;
                    }
                if (!copied && existing.size > 0)
                    size = co_await download_to_file(store_, key_of(path), staged->fd(),
                                                     existing.size, download_shape());
            }
        } catch (...) {
            discard(staged);
            throw;
        }
        staging_area::set_initial_size(*staged, size);
        staging_->publish(staged);
        co_return staged;
    }

    /// A private copy of what `source` (open for writing) holds now, with its attributes, to be
    /// committed while `source` stays open. Not published: stat keeps showing `source`.
    std::shared_ptr<staged_file> snapshot_of(const staged_file& source) {
        const staged_view now = staging_->view(source);
        auto copy = staging_->create(source.path(), now.status, now.created);
        if (const std::error_code ec = copy_content(source.fd(), copy->fd())) {
            discard(copy);
            fail(ec);
        }
        staging_->copy_attributes(source, *copy);
        return copy;
    }

    /// Lets a file open for writing upload its parts while it is written (write_through: the
    /// journal of write_back must hold the whole file first). Call once its owner and
    /// permissions are final. The object's mtime is then its completion time: metadata is sent
    /// before the last write.
    void stream_uploads(staged_file& staged) {
        if (journal_) return;
        const staged_view now = staging_->view(staged);
        put_options put;
        put.metadata = streamed_metadata(now.status, false);
        multipart_calls calls;
        auto self = this->shared_from_this();
        const std::string key = key_of(staged.path());
        calls.create = [self, key](put_options o) { return self->create_upload(key, o); };
        calls.upload_part = [self, key](std::string id, int number,
                                        boost::asio::const_buffer data) {
            return self->upload_part(key, std::move(id), number, data);
        };
        calls.complete = [self, key](std::string id, std::vector<completed_part> parts) {
            return self->complete_upload(key, std::move(id), std::move(parts));
        };
        calls.abort = [self, key](std::string id) {
            return self->abort_upload(key, std::move(id));
        };
        staged.streaming = std::make_shared<streaming_upload>(
            executor_, staged.fd(), now.status.size, transfer(), std::move(put), std::move(calls));
    }

    /// Makes a staged file the content of its path: uploads it (write_through) or journals it
    /// (write_back). The staged file is consumed either way.
    boost::asio::awaitable<void> commit(std::shared_ptr<staged_file> staged) {
        staging_->forget(staged);
        const staged_view last = staging_->view(*staged);
        file_status st = last.status;
        st.type = file_type::regular;
        if (!last.keep_mtime) st.mtime = std::chrono::system_clock::now();
        put_options put;
        put.metadata = metadata_of(st);
        const std::string& path = staged->path();
        const std::string key = key_of(path);
        if (journal_) {
            const std::uint64_t seq = journal_->reserve();
            struct abandon_unless_committed {
                write_back_journal& journal;
                std::uint64_t seq;
                bool committed = false;
                ~abandon_unless_committed() {
                    if (!committed) journal.abandon(seq);
                }
            } reservation{*journal_, seq};
            if (::fsync(staged->fd()) != 0) fail(last_error());
            staged->close_fd();
            std::error_code ec;
            std::filesystem::rename(staged->staging_path(), journal_->data_path(seq), ec);
            if (ec) fail(ec);
            write_back_journal::entry e;
            e.seq = seq;
            e.key = key;
            e.path = path;
            e.options = std::move(put);
            e.size = st.size;
            const std::size_t superseded = journal_->commit(std::move(e), ec);
            if (ec) fail(ec);
            reservation.committed = true;
            cache_.forget(path);
            uploads_->committed(superseded);
            co_return;
        }
        struct remove_staging {
            std::filesystem::path p;
            ~remove_staging() {
                std::error_code ignored;
                std::filesystem::remove(p, ignored);
            }
        } cleanup{staged->staging_path()};
        if (auto streaming = std::exchange(staged->streaming, nullptr)) {
            put_options streamed = put;
            streamed.metadata = streamed_metadata(st, last.keep_mtime);
            const std::optional<put_result> done =
                co_await streaming_upload::finish(std::move(streaming), st.size, streamed);
            if (done) {
                st.etag = done->etag;
                cache_.store(path, st);
                co_return;
            }
        }
        const put_result result =
            co_await upload_from_file(store_, key, staged->fd(), st.size, put, transfer());
        st.etag = result.etag;
        cache_.store(path, st);
    }

    /// Drops a staged file without committing it.
    void discard(const std::shared_ptr<staged_file>& staged) {
        staging_->forget(staged);
        if (staged->streaming) streaming_upload::abandon(std::exchange(staged->streaming, nullptr));
        staged->close_fd();
        std::error_code ignored;
        std::filesystem::remove(staged->staging_path(), ignored);
    }

    boost::asio::awaitable<void> write_file(std::string path, std::string data) {
        auto staged = co_await open_for_write(path, true, false, false);
        if (auto ec = write_all(staged->fd(), data.data(), data.size())) {
            discard(staged);
            fail(ec);
        }
        staging_->wrote_up_to(*staged, data.size());
        co_await commit_or_discard(staged);
    }

    boost::asio::awaitable<void> resize(std::string path, std::uint64_t size) {
        auto staged = co_await open_for_write(path, false, false, size > 0);
        if (::ftruncate(staged->fd(), static_cast<off_t>(size)) != 0) {
            discard(staged);
            fail(last_error());
        }
        staging_->resized(*staged, size);
        co_await commit_or_discard(staged);
    }

    boost::asio::awaitable<void> commit_or_discard(std::shared_ptr<staged_file> staged) {
        try {
            co_await commit(staged);
        } catch (...) {
            discard(staged);
            throw;
        }
    }

    /// mkdir; with `parents`, mkdir -p (existing directories are fine). New directories get
    /// `permissions`, or the default.
    boost::asio::awaitable<void> make_directory(std::string path, bool parents,
                                                std::optional<std::uint32_t> permissions) {
        if (path.empty()) {
            if (parents) co_return;
            fail(errc::already_exists);
        }
        const file_status existing = co_await stat(path);
        if (existing.exists()) {
            if (parents && existing.is_directory()) co_return;
            fail(errc::already_exists);
        }
        if (parents)
            co_await make_directory(std::string(parent_of(path)), true, permissions);
        else
            co_await require_parent_directory(path);
        file_status st = new_status(file_type::directory);
        if (permissions) st.permissions = *permissions & 07777;
        put_options put;
        put.content_type = "application/x-directory";
        put.metadata = metadata_of(st);
        auto [ec, result] =
            co_await store_.async_put(dir_key_of(path), boost::asio::buffer("", 0), put, as_result);
        throw_on(ec);
        st.etag = result.etag;
        cache_.store(path, st);
    }

    boost::asio::awaitable<void> make_symlink(std::string target, std::string link) {
        if (target.empty() || target.size() > 4096) fail(errc::invalid_argument);
        co_await require_parent_directory(link);
        const file_status existing = co_await stat(link);
        if (existing.exists()) fail(errc::already_exists);
        file_status st = new_status(file_type::symlink);
        st.permissions = 0777;
        st.size = target.size();
        put_options put;
        put.metadata = metadata_of(st);
        auto [ec, result] =
            co_await store_.async_put(key_of(link), boost::asio::buffer(target), put, as_result);
        throw_on(ec);
        st.etag = result.etag;
        cache_.store(link, st);
    }

    /// unlink or rmdir: directories must be empty.
    boost::asio::awaitable<void> remove(std::string path) {
        if (path.empty()) fail(errc::invalid_argument);
        co_await drain_within(path);
        const file_status st = co_await stat(path);
        if (!st.exists()) fail(errc::not_found);
        if (st.is_directory()) {
            const list_page page = co_await peek_below(path);
            const std::string marker_key = dir_key_of(path);
            for (const auto& o : page.objects)
                if (o.key != marker_key) fail(errc::not_empty);
            if (!page.common_prefixes.empty()) fail(errc::not_empty);
            auto [ec] = co_await store_.async_remove(marker_key, as_result);
            throw_on(ec);
        } else {
            auto [ec] = co_await store_.async_remove(key_of(path), as_result);
            throw_on(ec);
        }
        cache_.store(path, file_status{});
        cache_.forget(std::string(parent_of(path))); // an implicit parent may be gone now
    }

    /// rename(2) over objects: copy, then delete. Not atomic; a directory moves key by key.
    boost::asio::awaitable<void> rename(std::string from, std::string to) {
        if (from.empty() || to.empty()) fail(errc::invalid_argument);
        if (from == to) co_return;
        if (is_within(to, from)) fail(errc::invalid_argument); // a directory into itself
        co_await drain_within(from);
        co_await drain_within(to);
        const file_status source = co_await stat(from);
        if (!source.exists()) fail(errc::not_found);
        co_await require_parent_directory(to);
        const file_status target = co_await stat(to);

        if (!source.is_directory()) {
            if (target.is_directory()) fail(errc::is_a_directory);
            auto [ec, r] = co_await store_.async_copy(key_of(from), key_of(to),
                                                      std::optional<put_options>(), as_result);
            throw_on(ec);
            auto [rec] = co_await store_.async_remove(key_of(from), as_result);
            throw_on(rec);
        } else {
            if (target.exists()) {
                if (!target.is_directory()) fail(errc::not_a_directory);
                const auto children = co_await list(to, listing_detail::full);
                if (!children.empty()) fail(errc::not_empty);
                auto [mec] = co_await store_.async_remove(dir_key_of(to), as_result);
                throw_on(mec);
            }
            const std::string from_key = dir_key_of(from), to_key = dir_key_of(to);
            std::vector<std::string> moved;
            list_request all;
            all.prefix = from_key;
            do {
                auto [ec, page] = co_await store_.async_list(all, as_result);
                throw_on(ec);
                for (const object_info& o : page.objects) {
                    auto [cec, r] =
                        co_await store_.async_copy(o.key, to_key + o.key.substr(from_key.size()),
                                                   std::optional<put_options>(), as_result);
                    throw_on(cec);
                    moved.push_back(o.key);
                }
                all.continuation_token = page.next_continuation_token;
            } while (!all.continuation_token.empty());
            for (std::size_t at = 0; at < moved.size(); at += max_batch_remove) {
                std::vector<std::string> batch(
                    moved.begin() + static_cast<std::ptrdiff_t>(at),
                    moved.begin() +
                        static_cast<std::ptrdiff_t>(std::min(moved.size(), at + max_batch_remove)));
                auto [bec, failures] = co_await store_.async_remove_batch(batch, as_result);
                throw_on(bec);
                if (!failures.empty()) fail(failures.front().error);
            }
        }
        cache_.forget_tree(from);
        cache_.forget_tree(to);
        cache_.forget(std::string(parent_of(from)));
    }

    /// chmod/chown/utimens: rewrites the object's metadata in place (a self-copy).
    template <class Change>
    boost::asio::awaitable<void> change_attributes(std::string path, Change change) {
        // A file open for writing takes the change at its commit (fchmod, futimens while
        // writing), which its close then makes even if nothing else changed.
        if (staging_->change_open(path, change)) co_return;
        co_await drain_within(path);
        file_status st = co_await stat(path);
        if (!st.exists()) fail(errc::not_found);
        if (path.empty()) fail(errc::not_supported);
        change(st);
        put_options put;
        put.metadata = metadata_of(st);
        if (st.is_directory()) {
            put.content_type = "application/x-directory";
            // Implicit directories get a marker to carry their attributes.
            auto [ec, r] = co_await store_.async_put(dir_key_of(path), boost::asio::buffer("", 0),
                                                     put, as_result);
            throw_on(ec);
        } else {
            auto [hec, info] = co_await store_.async_head(key_of(path), as_result);
            throw_on(hec);
            put.content_type = info.content_type;
            put.metadata = metadata_of(st, info.metadata);
            auto [ec, r] = co_await store_.async_copy(key_of(path), key_of(path),
                                                      std::optional<put_options>(put), as_result);
            throw_on(ec);
        }
        cache_.store(path, st);
    }

    /// Waits until every closed file is in the bucket; throws the upload error that stopped it.
    boost::asio::awaitable<void> flush() {
        if (uploads_) co_await uploads_->flush(store_.store_name(), store_.bucket_name());
    }

private:
    static bool usable_name(const std::string& name) {
        return !name.empty() && name != "." && name != ".." && name.size() <= max_name_length &&
               name.find('/') == std::string::npos;
    }

    static std::string resolve_relative(const std::string& dir, const std::string& target,
                                        std::error_code& ec) {
        std::vector<std::string> parts;
        if (!target.starts_with('/'))
            for (std::size_t s = 0; s <= dir.size() && !dir.empty();) {
                const std::size_t e = std::min(dir.find('/', s), dir.size());
                parts.push_back(dir.substr(s, e - s));
                s = e + 1;
            }
        for (std::size_t s = 0; s <= target.size();) {
            const std::size_t e = std::min(target.find('/', s), target.size());
            const std::string name = target.substr(s, e - s);
            s = e + 1;
            if (name.empty() || name == ".") continue;
            if (name == "..") {
                if (parts.empty()) {
                    ec = errc::not_found; // leads outside the volume
                    return {};
                }
                parts.pop_back();
            } else {
                parts.push_back(name);
            }
        }
        std::string out;
        for (const auto& p : parts)
            out = join_path(out, p);
        return normalize_path(out, ec);
    }

    /// The first entries below directory `path` (its marker, files, subdirectories): enough to
    /// tell whether it exists and whether it is empty.
    boost::asio::awaitable<list_page> peek_below(const std::string& path) {
        list_request below;
        below.prefix = dir_key_of(path);
        below.delimiter = "/";
        below.max_keys = 2;
        auto [ec, page] = co_await store_.async_list(below, as_result);
        throw_on(ec);
        co_return page;
    }

    file_status new_status(file_type type) const {
        file_status st;
        st.type = type;
        st.permissions = type == file_type::directory ? defaults_.directory_permissions
                                                      : defaults_.file_permissions;
        st.uid = defaults_.uid;
        st.gid = defaults_.gid;
        st.mtime = std::chrono::system_clock::now();
        return st;
    }

    file_status pending_status(const write_back_journal::entry& e) const {
        object_info info;
        info.key = e.key;
        info.size = e.size;
        info.metadata = e.options.metadata;
        info.last_modified = std::chrono::system_clock::now();
        return status_of(info, false, defaults_);
    }

    /// Metadata of a streamed upload: without mtime (sent before the last write), unless the
    /// file's mtime was set explicitly.
    static user_metadata streamed_metadata(const file_status& st, bool keep_mtime) {
        user_metadata m = metadata_of(st);
        if (!keep_mtime) m.erase("mtime");
        return m;
    }
    boost::asio::awaitable<std::string> create_upload(std::string key, put_options options) {
        auto [ec, id] = co_await store_.async_create_multipart(key, options, as_result);
        throw_on(ec);
        co_return id;
    }
    boost::asio::awaitable<completed_part> upload_part(std::string key, std::string id, int number,
                                                       boost::asio::const_buffer data) {
        auto [ec, part] = co_await store_.async_upload_part(key, id, number, data, as_result);
        throw_on(ec);
        co_return part;
    }
    boost::asio::awaitable<put_result> complete_upload(std::string key, std::string id,
                                                       std::vector<completed_part> parts) {
        auto [ec, result] = co_await store_.async_complete_multipart(key, id, parts, as_result);
        throw_on(ec);
        co_return result;
    }
    boost::asio::awaitable<void> abort_upload(std::string key, std::string id) {
        auto [ec] = co_await store_.async_abort_multipart(key, id, as_result);
        throw_on(ec);
    }

    boost::asio::awaitable<void> require_parent_directory(const std::string& path) {
        const std::string parent(parent_of(path));
        if (parent.empty()) co_return;
        const file_status st = co_await stat(parent);
        if (!st.exists()) fail(errc::not_found);
        if (!st.is_directory()) fail(errc::not_a_directory);
    }

    /// Reads an object (or its pending journal copy) whose status `st` is known, through the
    /// read cache if the volume has one.
    boost::asio::awaitable<std::size_t> read_object(const std::string& path, const file_status& st,
                                                    std::uint64_t offset,
                                                    boost::asio::mutable_buffer buffer) {
        if (journal_)
            if (auto pending = journal_->open_latest(path))
                co_return read_local(pending->second.get(), offset, buffer);
        const std::string key = key_of(path);
        if (st.etag.empty() || offset >= st.size || buffer.size() == 0 || (!blocks_ && !objects_))
            co_return co_await get_range(path, offset, buffer);
        if (objects_) {
            std::optional<std::filesystem::path> cached;
            std::shared_ptr<cache_fill> fill = fill_for(key, st, cached);
            if (fill) {
                const std::uint64_t length =
                    std::min<std::uint64_t>(buffer.size(), st.size - offset);
                co_await fill->wait_for(offset, length);
                co_return read_local(fill->fd(), offset, buffer);
            }
            unique_fd fd(::open(cached->c_str(), O_RDONLY | O_CLOEXEC));
            // Evicted by other downloads before this read could open it: read the bucket.
            if (!fd && errno == ENOENT) co_return co_await get_range(path, offset, buffer);
            if (!fd) fail(last_error());
            co_return read_local(fd.get(), offset, buffer);
        }
        // Memory blocks: each block is one ranged GET, kept for the next reader.
        const std::string object_id = key + '\0' + st.etag;
        const std::size_t block_size = blocks_->block_size();
        std::size_t done = 0;
        while (done < buffer.size() && offset + done < st.size) {
            const std::uint64_t at = offset + done;
            const std::uint64_t index = at / block_size;
            auto block = blocks_->find(object_id, index);
            if (!block) {
                auto fresh =
                    std::make_shared<std::string>(static_cast<std::size_t>(std::min<std::uint64_t>(
                                                      block_size, st.size - index * block_size)),
                                                  '\0');
                const std::size_t n =
                    co_await get_range(path, index * block_size, boost::asio::buffer(*fresh));
                fresh->resize(n);
                block = fresh;
                blocks_->insert(object_id, index, block);
            }
            const std::size_t within = static_cast<std::size_t>(at - index * block_size);
            if (within >= block->size()) break; // the object is shorter than its status said
            const std::size_t n = std::min(block->size() - within, buffer.size() - done);
            std::memcpy(static_cast<char*>(buffer.data()) + done, block->data() + within, n);
            done += n;
        }
        co_return done;
    }

    /// The disk cache's copy of this version of `key`: its path in `cached`, or the download
    /// filling it, which this call starts if none runs. Concurrent first reads share one.
    std::shared_ptr<cache_fill> fill_for(const std::string& key, const file_status& st,
                                         std::optional<std::filesystem::path>& cached) {
        const std::string id = key + '\0' + st.etag;
        std::filesystem::path temp;
        std::shared_ptr<cache_fill> fill;
        {
            // A fill leaves the map only after publishing: absent here, the copy is complete
            // or was never started.
            std::lock_guard lock(fills_mutex_);
            if (auto it = fills_.find(id); it != fills_.end()) return it->second;
            if ((cached = objects_->find(key, st.etag))) return nullptr;
            temp = objects_->temp_path();
            unique_fd out(::open(temp.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
            if (!out) fail(last_error());
            fill = std::make_shared<cache_fill>(executor_, std::move(out), st.size,
                                                download_chunk_size(download_shape()));
            fills_.emplace(id, fill);
        }
        boost::asio::co_spawn(executor_,
                              fill_cache(this->shared_from_this(), id, key, st, temp, fill),
                              boost::asio::detached);
        return fill;
    }

    /// Downloads a whole object into `temp`, telling `fill`'s readers of each chunk, then
    /// moves it into the disk cache.
    static boost::asio::awaitable<void> fill_cache(std::shared_ptr<volume_core> self,
                                                   std::string id, std::string key, file_status st,
                                                   std::filesystem::path temp,
                                                   std::shared_ptr<cache_fill> fill) {
        // Named, not a temporary in the co_await: g++ 12 destroys such temporaries twice.
        chunk_written on_chunk = [fill](std::uint64_t offset, std::size_t) {
            fill->written(offset);
        };
        std::exception_ptr failure;
        try {
            const std::uint64_t got =
                co_await download_to_file(self->store_, key, fill->fd(), st.size,
                                          self->download_shape(), std::move(on_chunk));
            self->objects_->publish(temp, key, st.etag, got);
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            std::error_code ignored;
            std::filesystem::remove(temp, ignored);
            fill->fail(failure);
        } else {
            fill->finish();
        }
        std::lock_guard lock(self->fills_mutex_);
        self->fills_.erase(id);
    }

    transfer_shape transfer() const {
        return {options_.multipart_threshold, options_.part_size, options_.transfer_parallelism};
    }
    transfer_shape download_shape() const {
        transfer_shape shape = transfer();
        shape.parallel = options_.download_parallelism;
        return shape;
    }

    /// One ranged GET of the object at `path`, straight from the store.
    boost::asio::awaitable<std::size_t> get_range(std::string path, std::uint64_t offset,
                                                  boost::asio::mutable_buffer buffer) {
        auto [ec, n] = co_await store_.async_get(key_of(path), offset, buffer, as_result);
        if (ec == errc::not_found) cache_.forget(path);
        throw_on(ec);
        co_return n;
    }

    static std::size_t read_local(int fd, std::uint64_t offset,
                                  boost::asio::mutable_buffer buffer) {
        std::error_code ec;
        const std::size_t n =
            pread_full(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset), ec);
        if (ec) fail(ec);
        return n;
    }

    /// Copies the local file `from_fd` into `to_fd`, both from their start.
    static void copy_local(int from_fd, int to_fd) {
        if (::ftruncate(to_fd, 0) != 0 || ::lseek(to_fd, 0, SEEK_SET) != 0) fail(last_error());
        if (auto ec = copy_content(from_fd, to_fd)) fail(ec);
    }

    /// Waits for journaled uploads at or under `path`, so a metadata change applies after them.
    boost::asio::awaitable<void> drain_within(const std::string& path) {
        if (journal_ && journal_->has_pending_within(path)) co_await flush();
    }

    executor_type executor_;
    Store store_;
    volume_options options_;
    attribute_defaults defaults_;
    metadata_cache cache_;
    std::shared_ptr<read_ahead_budget> read_ahead_budget_;
    bool owns_cache_dir_ = false;
    std::optional<staging_area> staging_; ///< set once the cache folder is known

    std::shared_ptr<write_back_uploader<Store>> uploads_; ///< write_back
    write_back_journal* journal_ = nullptr;               ///< uploads_'s, or none
    std::unique_ptr<block_cache> blocks_;                 ///< cache::memory
    std::unique_ptr<object_cache> objects_;               ///< cache::disk
    /// Guards fills_; never held across a suspension. Lock order: fills_mutex_, then the object
    /// cache's own.
    std::mutex fills_mutex_;
    std::unordered_map<std::string, std::shared_ptr<cache_fill>> fills_; ///< by key and ETag
    single_flight<file_status> stats_; ///< by path and cache_.changes()
    listing_prefetch listed_{4 * options_.listing_heads};
    std::mutex ahead_mutex_; ///< guards the two below (never held across a suspension)
    std::deque<std::string> ahead_queue_;
    std::size_t ahead_workers_ = 0;
    std::atomic<bool> stopping_{false};
};

} // namespace detail
} // namespace skyvol

#endif
