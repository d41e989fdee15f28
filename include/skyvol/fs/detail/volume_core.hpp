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

#include <skyvol/error.hpp>
#include <skyvol/fs/detail/cache_folder.hpp>
#include <skyvol/fs/detail/cached_reads.hpp>
#include <skyvol/fs/detail/commits.hpp>
#include <skyvol/fs/detail/namespace.hpp>
#include <skyvol/fs/detail/object_layout.hpp>
#include <skyvol/fs/detail/parallel.hpp>
#include <skyvol/fs/detail/read_ahead.hpp>
#include <skyvol/fs/detail/staging.hpp>
#include <skyvol/fs/detail/streaming_upload.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/fs/path.hpp>
#include <skyvol/fs/status.hpp>
#include <skyvol/store/concepts.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

namespace skyvol {

namespace detail {

/// `Reads` is the read path of the volume's cache policy (cached_reads.hpp), `Commits` how its
/// mode turns closed files into objects (commits.hpp).
template <object_store Store, class Reads = direct_reads<Store>,
          class Commits = write_through_commits<Store>>
class volume_core : public std::enable_shared_from_this<volume_core<Store, Reads, Commits>> {
public:
    using executor_type = boost::asio::any_io_executor;

    volume_core(executor_type executor, Store store, volume_options options)
        : executor_(std::move(executor))
        , store_(std::move(store))
        , options_(std::move(options))
        , layout_(options_)
        , names_(std::make_shared<object_namespace<Store>>(executor_, store_, layout_, options_))
        , cache_(names_->cache())
        , read_ahead_budget_(std::make_shared<read_ahead_budget>(options_.read_ahead.budget))
        , folder_(std::make_shared<cache_folder>(known_folder(options_.cache_dir), "skyvol")) {
        options_.prefix = layout_.prefix();
        options_.cache_dir = folder_->path();
        staging_.emplace(options_.cache_dir / "staging");
        // reads_ is built next; the commits call this only once the volume is in use.
        auto make_room = [this](std::uint64_t bytes) { return this->make_room(bytes); };
        commits_.emplace(commits_context<Store>{executor_, store_, options_, folder_->path(),
                                                transfer(), std::move(make_room)});
        reads_.emplace(reads_context<Store>{executor_, store_, options_, range_getter_of(),
                                            download_shape(), folder_});
    }

    /// Bytes the read cache holds now (0 without one).
    std::uint64_t read_cache_bytes() const { return reads_->bytes(); }

    /// A write found the local disk full: the read cache's clean copies give way until `bytes`
    /// more are free. True if any did (worth one more try).
    bool make_room(std::uint64_t bytes) { return reads_->make_room(bytes); }

    /// write_back's crash recovery needs a known place: an empty `cache_dir` is refused.
    static std::filesystem::path known_folder(std::filesystem::path dir) {
        if (dir.empty() && Commits::needs_known_folder) fail(errc::invalid_config);
        return dir;
    }

    /// Starts the background uploader (write_back); call once, after construction.
    void start() {
        commits_->start([weak = this->weak_from_this()](const std::string& path) {
            if (auto self = weak.lock()) self->cache_.forget(path);
        });
    }

    /// Asks the uploader to stop; pending entries stay journaled.
    void stop() {
        names_->stop();
        commits_->stop();
    }
    bool uploader_done() const noexcept { return commits_->done(); }
    write_back_stats upload_stats() const { return commits_->stats(); }
    std::uint64_t hidden_keys() const { return names_->hidden_keys(); }

    const executor_type& get_executor() const noexcept { return executor_; }
    Store& store() noexcept { return store_; }
    const volume_options& options() const noexcept { return options_; }
    std::size_t pending_uploads() const { return commits_->pending(); }

    std::string key_of(const std::string& path) const { return layout_.key_of(path); }
    std::string dir_key_of(const std::string& path) const { return layout_.dir_key_of(path); }

    /// Context for error messages about `path`.
    error_context where(const std::string& key) const {
        return {store_.store_name(), store_.bucket_name(), key, {}};
    }

    // ---- lookups -----------------------------------------------------------------------------

    /// The status of `path`; `file_type::not_found` if nothing is there. Symlinks are not
    /// followed.
    boost::asio::awaitable<file_status> stat(std::string path) {
        if (path.empty()) co_return layout_.new_status(file_type::directory);
        if (auto open = staging_->status_of(path)) co_return *open;
        if (auto pending = commits_->latest_for(path)) co_return pending_status(*pending);
        co_return co_await names_->lookup(std::move(path));
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

        // Files open for writing, then closed files not uploaded yet, over what the bucket has.
        // Taken in that order, before the bucket is asked: a file moves from staging to the
        // journal to the bucket, so one that moves on meanwhile is in the snapshot before it.
        auto open_files = staging_->children_of(dir);
        auto pending_files = commits_->children_of(dir);
        store_listing listing = co_await names_->list(dir);
        // Both as stat shows them: open files first, then pending ones, then the bucket.
        auto overlay = [&listing](const std::string& p, const file_status& shown) {
            std::string name(name_of(p));
            listing.entries.insert_or_assign(name, directory_entry(p, shown));
            listing.incomplete.erase(name);
            listing.overlaid.insert(std::move(name));
        };
        for (auto& [p, e] : pending_files)
            overlay(p, pending_status(e));
        for (auto& [p, open_status] : open_files)
            overlay(p, open_status);
        co_return co_await names_->finish(dir, std::move(listing), detail);
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
        if (!Reads::streams) return nullptr;
        read_ahead_limits limits;
        limits.first = options_.read_ahead.first;
        limits.part = options_.read_ahead.part;
        limits.window = options_.read_ahead.window;
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

        // `existing` is another writer's if one has the file open or is closing it.
        const bool another_writer = staging_->has(path);
        file_status st = existing.exists() ? existing : layout_.new_status(file_type::regular);
        if (!existing.exists() && permissions) st.permissions = *permissions & 07777;
        auto staged = staging_->create(path, std::move(st), !existing.exists());
        std::uint64_t size = 0;
        try {
            // The content of the last close, from the journal or the bucket; another writer's
            // status is not what to copy.
            if (existing.exists() && keep_content) {
                if (auto pending = commits_->open_latest(path)) {
                    copy_local(pending->second.get(), staged->fd());
                    size = pending->first.size;
                } else {
                    file_status stored = existing;
                    if (another_writer) stored = co_await names_->lookup(path);
                    if (stored.is_regular_file() && stored.size > 0)
                        size = co_await download_to_file(store_, key_of(path), staged->fd(),
                                                         stored.size, download_shape());
                }
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
        // The size seen before the copy: a write since may have its bytes in the copy or not,
        // but never promises more than the copy holds.
        staging_area::set_initial_size(*copy, now.status.size);
        return copy;
    }

    /// Closes a writer that changed no byte but took attribute changes (chmod, chown, utimens
    /// while open): they go to the object, whose content this writer must not replace (another
    /// writer may have committed newer content meanwhile).
    boost::asio::awaitable<void> close_with_attributes(std::shared_ptr<staged_file> staged) {
        const staged_view last = staging_->view(*staged);
        discard(staged);
        // Named, not temporaries in the co_await: g++ 12 destroys such temporaries twice.
        std::string path = staged->path();
        auto apply = [last](file_status& st) {
            st.permissions = last.status.permissions;
            st.uid = last.status.uid;
            st.gid = last.status.gid;
            if (last.keep_mtime) st.mtime = last.status.mtime;
        };
        co_await change_attributes(std::move(path), apply);
    }

    /// Lets a file open for writing upload its parts while it is written, where its mode
    /// does (write_through). Call once its owner and permissions are final.
    void stream_uploads(staged_file& staged) {
        commits_->stream(staged, key_of(staged.path()), staging_->view(staged).status);
    }

    /// Makes a staged file the content of its path: uploads it (write_through) or journals it
    /// (write_back). The staged file is consumed either way. Stat and listings show it until
    /// then: a new file does not vanish while its upload runs.
    boost::asio::awaitable<void> commit(std::shared_ptr<staged_file> staged) {
        staging_->begin_commit(*staged);
        const staged_view last = staging_->view(*staged);
        file_status st = last.status;
        st.type = file_type::regular;
        if (!last.keep_mtime) st.mtime = std::chrono::system_clock::now();
        put_options put;
        put.metadata = metadata_of(st);
        const std::string& path = staged->path();
        const std::string key = key_of(path); // named: see close_with_attributes
        const std::optional<file_status> stored =
            co_await commits_->commit(*staged, key, st, std::move(put), last.keep_mtime);
        if (stored)
            cache_.store(path, *stored);
        else
            cache_.forget(path);
        staging_->forget(staged); // after the cache or the journal has it
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
        std::error_code ec = write_all(staged->fd(), data.data(), data.size());
        // A full disk: clean cached copies give way, and the write starts again.
        if (to_errno(ec) == ENOSPC && make_room(data.size()) && ::ftruncate(staged->fd(), 0) == 0 &&
            ::lseek(staged->fd(), 0, SEEK_SET) == 0)
            ec = write_all(staged->fd(), data.data(), data.size());
        if (ec) {
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
        file_status st = layout_.new_status(file_type::directory);
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
        file_status st = layout_.new_status(file_type::symlink);
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
    boost::asio::awaitable<void> remove(std::string path, removal what) {
        if (path.empty()) fail(errc::invalid_argument);
        co_await drain_within(path);
        const file_status st = co_await stat(path);
        if (!st.exists()) fail(errc::not_found);
        if (what == removal::file && st.is_directory()) fail(errc::is_a_directory);
        if (what == removal::directory && !st.is_directory()) fail(errc::not_a_directory);
        if (st.is_directory()) {
            const list_page page = co_await names_->peek_below(path);
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
    /// `no_replace` checks the target before it copies: another client's object written in
    /// between is replaced (object stores have no conditional copy to close that window).
    boost::asio::awaitable<void> rename(std::string from, std::string to, rename_mode how) {
        if (from.empty() || to.empty()) fail(errc::invalid_argument);
        if (from == to) co_return;
        if (is_within(to, from)) fail(errc::invalid_argument); // a directory into itself
        co_await drain_within(from);
        co_await drain_within(to);
        const file_status source = co_await stat(from);
        if (!source.exists()) fail(errc::not_found);
        co_await require_parent_directory(to);
        const file_status target = co_await stat(to);
        if (how == rename_mode::no_replace && target.exists()) fail(errc::already_exists);

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
        co_await commits_->flush(store_.store_name(), store_.bucket_name());
    }

private:
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

    file_status pending_status(const write_back_journal::entry& e) const {
        object_info info;
        info.key = e.key;
        info.size = e.size;
        info.metadata = e.options.metadata;
        info.last_modified = std::chrono::system_clock::now();
        return layout_.status_of(info, false);
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
        if (auto pending = commits_->open_latest(path))
            co_return read_local(pending->second.get(), offset, buffer);
        co_return co_await reads_->read(path, key_of(path), st, offset, buffer);
    }

    transfer_shape transfer() const {
        const transfer_options& t = options_.transfers;
        return {t.multipart_threshold, t.part_size, t.upload_parallelism};
    }
    transfer_shape download_shape() const {
        transfer_shape shape = transfer();
        shape.parallel = options_.transfers.download_parallelism;
        return shape;
    }

    /// One ranged GET of the object at `path`, straight from the store.
    boost::asio::awaitable<std::size_t> get_range(std::string path, std::uint64_t offset,
                                                  boost::asio::mutable_buffer buffer) {
        std::string key = key_of(path);
        return fetch_range(store_, std::move(key), names_, std::move(path), offset, buffer);
    }

    /// `get_range` for the read path, which may outlive this core (disk-cache downloads).
    range_getter range_getter_of() {
        return [store = store_, layout = layout_,
                names = names_](const std::string& path, std::uint64_t offset,
                                boost::asio::mutable_buffer buffer) {
            return fetch_range(store, layout.key_of(path), names, path, offset, buffer);
        };
    }

    static boost::asio::awaitable<std::size_t>
    fetch_range(Store store, std::string key, std::shared_ptr<object_namespace<Store>> names,
                std::string path, std::uint64_t offset, boost::asio::mutable_buffer buffer) {
        auto [ec, n] = co_await store.async_get(std::move(key), offset, buffer, as_result);
        if (ec == errc::not_found) names->cache().forget(path); // gone: the next stat asks
        throw_on(ec);
        co_return n;
    }

    /// Copies the local file `from_fd` into `to_fd`, both from their start.
    static void copy_local(int from_fd, int to_fd) {
        if (::ftruncate(to_fd, 0) != 0 || ::lseek(to_fd, 0, SEEK_SET) != 0) fail(last_error());
        if (auto ec = copy_content(from_fd, to_fd)) fail(ec);
    }

    /// Waits for journaled uploads at or under `path`, so a metadata change applies after them.
    boost::asio::awaitable<void> drain_within(const std::string& path) {
        if (commits_->has_pending_within(path)) co_await flush();
    }

    executor_type executor_;
    Store store_;
    volume_options options_;
    object_layout layout_;
    std::shared_ptr<object_namespace<Store>> names_; ///< shared with its ask-ahead workers
    metadata_cache& cache_;                          ///< names_'s
    std::shared_ptr<read_ahead_budget> read_ahead_budget_;
    /// The options' cache_dir, or a private one removed at the end: shared with the disk
    /// cache's downloads, which may outlive this.
    std::shared_ptr<cache_folder> folder_;
    std::optional<staging_area> staging_; ///< set once the cache folder is known

    std::optional<Commits> commits_; ///< set once the cache folder is known
    std::optional<Reads> reads_;     ///< set once the cache folder is known
};

} // namespace detail
} // namespace skyvol

#endif
