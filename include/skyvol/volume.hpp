#ifndef SKYVOL_VOLUME_HPP
#define SKYVOL_VOLUME_HPP

/// @file
/// `skyvol::volume<Store, Mode, Cache>`: a bucket (or a prefix of it) as a filesystem, for
/// programs directly. Every operation comes three ways: `f(args)` throws `skyvol::error`,
/// `f(args, std::error_code&)` does not, and `async_f(args, token)` takes any Asio completion
/// token and completes with `(error_code, result)`.
///
/// A volume built without an executor runs `volume_options::io_threads` threads of its own, so
/// the blocking calls work anywhere. A volume built with an executor runs on it; its blocking
/// calls wait for that executor, so they must not be made from its threads (they would wait
/// forever; with the volume's own threads this is detected and refused with
/// `std::errc::resource_deadlock_would_occur`). Mutating members exist only in writable modes (see
/// mode.hpp); in copy mode, the constructor fetches the prefix and `refresh()` fetches what
/// changed.
///
/// Lookups, reads, listings and `flush` honour Asio's per-operation cancellation (a terminal
/// cancellation through the handler's cancellation slot): they complete with
/// `operation_aborted` at their next wait, and what they fetched for others stays valid.
/// Operations that change data run to their end, cancelled or not.

#include <skyvol/detail/run.hpp>
#include <skyvol/error.hpp>
#include <skyvol/file.hpp>
#include <skyvol/fs/detail/cache_folder.hpp>
#include <skyvol/fs/detail/copy_fetch.hpp>
#include <skyvol/fs/detail/volume_core.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/fs/path.hpp>
#include <skyvol/fs/status.hpp>
#include <skyvol/mode.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/local_store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace skyvol {

namespace detail {

/// A file open for reading: reads stream through read-ahead, or go to the volume's cache (or
/// journal) at each call. `path` is the resolved file, not a symlink.
template <class Core>
class reader_file final : public file_impl {
public:
    reader_file(std::shared_ptr<Core> core, std::string path, file_status status)
        : core_(std::move(core))
        , path_(std::move(path))
        , key_(core_->key_of(path_))
        , status_(std::move(status))
        , ahead_(core_->make_read_ahead(path_, status_.size)) {}
    std::size_t read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer,
                        std::error_code& ec) override {
        return run_blocking(core_->get_executor(), reading(offset, buffer), ec);
    }
    std::size_t write_at(std::uint64_t, boost::asio::const_buffer, std::error_code& ec) override {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return 0;
    }
    std::uint64_t size() const override { return status_.size; }
    file_status status() const override { return status_; }
    void resize(std::uint64_t, std::error_code& ec) override {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
    }
    void sync(std::error_code& ec) override { ec.clear(); }
    void close(std::error_code& ec) override { ec.clear(); }
    bool appends() const override { return false; }
    error_context where() const override { return core_->where(key_); }

    void async_read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer,
                       read_handler done) override {
        async_run<void(asio_error_code, std::size_t), stops_on_cancel>(
            core_->get_executor(), std::move(done), reading(offset, buffer), core_);
    }
    void async_sync(done_handler done) override {
        async_complete<void(asio_error_code)>(core_->get_executor(), std::move(done),
                                              asio_error_code{});
    }
    void async_close(done_handler done) override { async_sync(std::move(done)); }

    /// Ranged GETs this file's read-ahead started (0 without read-ahead).
    std::uint64_t fetches() const noexcept { return ahead_ ? ahead_->fetches() : 0; }

private:
    /// Makes the read's awaitable; what it captures keeps the stream and the volume alive.
    auto reading(std::uint64_t offset, boost::asio::mutable_buffer buffer) {
        return [core = core_, ahead = ahead_, path = path_, offset, buffer] {
            return ahead ? read_ahead::read(ahead, offset, buffer)
                         : core->read(path, offset, buffer);
        };
    }

    std::shared_ptr<Core> core_;
    std::string path_;
    std::string key_;                   ///< owned here: error_context only views it
    file_status status_;                ///< as it was at open
    std::shared_ptr<read_ahead> ahead_; ///< null where the volume reads through a cache
};

/// A file open for writing: a staging copy committed at close (and at each sync).
template <class Core>
class writer_file final : public file_impl, public std::enable_shared_from_this<writer_file<Core>> {
public:
    writer_file(std::shared_ptr<Core> core, std::shared_ptr<staged_file> staged, bool append,
                bool dirty)
        : core_(std::move(core))
        , staged_(std::move(staged))
        , key_(core_->key_of(staged_->path()))
        , append_(append)
        , dirty_(dirty) {}
    ~writer_file() override {
        if (staged_) core_->discard(staged_);
    }
    std::size_t read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer,
                        std::error_code& ec) override {
        ec.clear();
        return pread_full(staged_->fd(), buffer.data(), buffer.size(), static_cast<off_t>(offset),
                          ec);
    }
    std::size_t write_at(std::uint64_t offset, boost::asio::const_buffer data,
                         std::error_code& ec) override {
        ec.clear();
        const char* p = static_cast<const char*>(data.data());
        std::size_t done = 0;
        bool made_room = false;
        while (done < data.size()) {
            const ssize_t n = ::pwrite(staged_->fd(), p + done, data.size() - done,
                                       static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                // A full disk: the read cache's clean copies give way, once per write.
                if ((errno == ENOSPC || errno == EDQUOT) && !made_room &&
                    (made_room = core_->make_room(data.size() - done)))
                    continue;
                ec = last_error();
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        const std::uint64_t size = core_->staging().wrote_up_to(*staged_, offset + done);
        dirty_ = true;
        if (staged_->streaming) staged_->streaming->written(offset, done, size);
        return done;
    }
    std::uint64_t size() const override { return core_->staging().size(*staged_); }
    file_status status() const override { return core_->staging().view(*staged_).status; }
    void resize(std::uint64_t size, std::error_code& ec) override {
        ec.clear();
        if (::ftruncate(staged_->fd(), static_cast<off_t>(size)) != 0) {
            ec = last_error();
            return;
        }
        const std::uint64_t before = core_->staging().resized(*staged_, size);
        if (staged_->streaming) staged_->streaming->resized(before, size);
        dirty_ = true;
    }
    // Attribute changes alone wait for close: a snapshot of a file this writer did not change
    // could replace newer content another writer committed.
    void sync(std::error_code& ec) override {
        ec.clear();
        const std::uint64_t changes = attribute_changes();
        if (!dirty_.exchange(false)) return; // writes from here on belong to the next sync
        run_blocking(core_->get_executor(), syncing(changes), ec);
    }
    void close(std::error_code& ec) override {
        ec.clear();
        auto core = core_;
        const bool wrote = dirty_;
        const bool changed = attribute_changes() != committed_changes_;
        auto staged = std::exchange(staged_, nullptr);
        if (!wrote && !changed) {
            core->discard(staged);
            return;
        }
        run_blocking(core->get_executor(), closing(core, staged, wrote), ec);
    }
    // The staging copy is read here, not later: a close may take it once this returns.
    void async_read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer,
                       read_handler done) override {
        std::error_code ec;
        const std::size_t n = read_at(offset, buffer, ec);
        async_complete<void(asio_error_code, std::size_t)>(core_->get_executor(), std::move(done),
                                                           asio_error_code(ec), n);
    }
    void async_sync(done_handler done) override {
        const std::uint64_t changes = attribute_changes();
        if (!dirty_.exchange(false))
            return async_complete<void(asio_error_code)>(core_->get_executor(), std::move(done),
                                                         asio_error_code{});
        async_run<void(asio_error_code)>(core_->get_executor(), std::move(done), syncing(changes),
                                         core_);
    }
    void async_close(done_handler done) override {
        auto core = core_;
        const bool wrote = dirty_;
        const bool changed = attribute_changes() != committed_changes_;
        auto staged = std::exchange(staged_, nullptr);
        if (!wrote && !changed) {
            core->discard(staged);
            return async_complete<void(asio_error_code)>(core->get_executor(), std::move(done),
                                                         asio_error_code{});
        }
        async_run<void(asio_error_code)>(core->get_executor(), std::move(done),
                                         closing(core, staged, wrote), core);
    }
    bool appends() const override { return append_; }
    error_context where() const override { return core_->where(key_); }

private:
    /// chmod, chown and utimens applied to this file while open: each needs a commit too.
    std::uint64_t attribute_changes() const {
        return core_->staging().view(*staged_).attribute_changes;
    }

    /// Makes the close's awaitable: commit what was written, or only the attribute changes.
    static auto closing(std::shared_ptr<Core> core, std::shared_ptr<staged_file> staged,
                        bool wrote) {
        return [core, staged, wrote] { return finish(core, staged, wrote); };
    }
    /// Owns the volume's core until the commit is done (a member coroutine would not).
    static boost::asio::awaitable<void> finish(std::shared_ptr<Core> core,
                                               std::shared_ptr<staged_file> staged, bool wrote) {
        if (wrote)
            co_await core->commit_or_discard(staged);
        else
            co_await core->close_with_attributes(staged);
    }

    /// Commits a copy of what is staged now; this file stays open on its own staging copy.
    static boost::asio::awaitable<void> commit_copy(std::shared_ptr<Core> core,
                                                    std::shared_ptr<staged_file> source) {
        auto copy = core->snapshot_of(*source); // named: g++ 12 and temporaries in co_await
        co_await core->commit_or_discard(copy);
    }
    /// Makes a sync's awaitable, which holds this file until it is done. (A plain lambda
    /// around a coroutine function: a coroutine lambda's captures would die with the lambda.)
    auto syncing(std::uint64_t changes) {
        return [this_file = this->shared_from_this(), source = staged_, changes] {
            return synced(this_file, source, changes);
        };
    }
    /// A sync's commit: what it committed is recorded, a failure leaves the file dirty.
    static boost::asio::awaitable<void> synced(std::shared_ptr<writer_file> self,
                                               std::shared_ptr<staged_file> source,
                                               std::uint64_t changes) {
        try {
            co_await commit_copy(self->core_, source);
        } catch (...) {
            self->dirty_ = true;
            throw;
        }
        self->committed_changes_ = changes;
    }

    std::shared_ptr<Core> core_;
    std::shared_ptr<staged_file> staged_;
    std::string key_; ///< owned here: error_context only views it
    bool append_;
    std::atomic<bool> dirty_;
    std::atomic<std::uint64_t> committed_changes_{0}; ///< attribute changes the bucket has
};

} // namespace detail

template <object_store Store, storage_mode Mode, cache_policy Cache = typename Mode::default_cache>
requires mode_accepts_cache<Mode, Cache>
class volume {
    /// Copy mode serves reads from a local mirror; every other mode from the store itself.
    using served_store = std::conditional_t<Mode::local_copy, local_store, Store>;
    /// Copy mode reads its mirror directly; the others through their cache policy's reads.
    using reads_type = std::conditional_t<Mode::local_copy, detail::direct_reads<local_store>,
                                          typename detail::reads_for<Cache, Store>::type>;
    using core_type =
        detail::volume_core<served_store, reads_type, detail::commits_for<Mode, served_store>>;

public:
    using store_type = Store;
    using mode_type = Mode;
    using cache_type = Cache;
    using executor_type = boost::asio::any_io_executor;

    /// A volume with its own I/O threads.
    explicit volume(Store store, volume_options options = {})
        : pool_(std::make_unique<boost::asio::thread_pool>(
              std::max<std::size_t>(1, options.io_threads))) {
        init(pool_->get_executor(), std::move(store), std::move(options));
    }

    /// A volume on the caller's executor.
    volume(executor_type executor, Store store, volume_options options = {}) {
        init(std::move(executor), std::move(store), std::move(options));
    }

    volume(const volume&) = delete;
    volume& operator=(const volume&) = delete;

    /// Drains pending uploads (write_back); what cannot be uploaded stays in the cache folder
    /// for the next volume on it, and is reported to `volume_options::log`.
    ~volume() {
        if (!core_) return;
        if constexpr (write_back_mode<Mode>) {
            std::error_code ec;
            detail::run_blocking(
                core_->get_executor(), [core = core_] { return core->flush(); }, ec);
            if (ec && core_->options().log)
                core_->options().log(log_level::error,
                                     std::to_string(core_->pending_uploads()) +
                                         " closed file(s) not uploaded (" + ec.message() +
                                         "); they stay in " + core_->options().cache_dir.string() +
                                         " for the next volume on that cache folder");
            core_->stop();
            if (pool_)
                while (!core_->uploader_done())
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        fetcher_.reset();
        core_.reset();
        if (pool_) pool_->join();
        copy_folder_.reset();
    }

    executor_type get_executor() const { return core_->get_executor(); }
    const volume_options& options() const { return core_->options(); }

    // Each operation is written once, as `async_X(args, token)`; `X(args, ec)` starts it and
    // waits (`wait_for`), and `X(args)` throws what `ec` would hold, naming the key.

    // ---- reading (every mode) ----------------------------------------------------------------

    template <class CompletionToken>
    auto async_status(std::string_view path, CompletionToken&& token) {
        return start<void(detail::asio_error_code, file_status), detail::stops_on_cancel>(
            path, std::forward<CompletionToken>(token),
            [](std::shared_ptr<core_type> c, std::string p) { return c->stat(std::move(p)); });
    }
    /// The status of `path` (symlinks not followed); `exists()` is false if nothing is there.
    file_status status(std::string_view path, std::error_code& ec) {
        return wait_for(ec, [&](auto token) { return async_status(path, token); });
    }
    file_status status(std::string_view path) { return throwing(&volume::status, path); }
    bool exists(std::string_view path, std::error_code& ec) { return status(path, ec).exists(); }
    bool exists(std::string_view path) { return status(path).exists(); }

    template <class CompletionToken>
    auto async_read_file(std::string_view path, CompletionToken&& token) {
        return start<void(detail::asio_error_code, std::string), detail::stops_on_cancel>(
            path, std::forward<CompletionToken>(token),
            [](std::shared_ptr<core_type> c, std::string p) { return c->read_file(std::move(p)); });
    }
    /// The whole content of a file (symlinks followed).
    std::string read_file(std::string_view path, std::error_code& ec) {
        return wait_for(ec, [&](auto token) { return async_read_file(path, token); });
    }
    std::string read_file(std::string_view path) { return throwing(&volume::read_file, path); }

    template <class CompletionToken>
    auto async_read(std::string_view path, std::uint64_t offset, boost::asio::mutable_buffer buffer,
                    CompletionToken&& token) {
        return start<void(detail::asio_error_code, std::size_t), detail::stops_on_cancel>(
            path, std::forward<CompletionToken>(token),
            [offset, buffer](std::shared_ptr<core_type> c, std::string p) {
                return c->read(std::move(p), offset, buffer);
            });
    }
    /// Reads at `offset` into `buffer`; fewer bytes than asked only at the end of the file.
    std::size_t read(std::string_view path, std::uint64_t offset,
                     boost::asio::mutable_buffer buffer, std::error_code& ec) {
        return wait_for(ec, [&](auto token) { return async_read(path, offset, buffer, token); });
    }
    std::size_t read(std::string_view path, std::uint64_t offset,
                     boost::asio::mutable_buffer buffer) {
        std::error_code ec;
        const std::size_t n = read(path, offset, buffer, ec);
        raise(ec, path);
        return n;
    }

    template <class CompletionToken>
    auto async_directory(std::string_view path, listing_detail detail, CompletionToken&& token) {
        return start<void(detail::asio_error_code, std::vector<directory_entry>),
                     detail::stops_on_cancel>(
            path, std::forward<CompletionToken>(token),
            [detail](std::shared_ptr<core_type> c, std::string p) {
                return c->list(std::move(p), detail);
            });
    }
    template <class CompletionToken>
    auto async_directory(std::string_view path, CompletionToken&& token) {
        return async_directory(path, listing_detail::full, std::forward<CompletionToken>(token));
    }
    /// The entries of a directory, sorted by name.
    std::vector<directory_entry> directory(std::string_view path, listing_detail detail,
                                           std::error_code& ec) {
        return wait_for(ec, [&](auto token) { return async_directory(path, detail, token); });
    }
    std::vector<directory_entry> directory(std::string_view path, std::error_code& ec) {
        return directory(path, listing_detail::full, ec);
    }
    std::vector<directory_entry> directory(std::string_view path,
                                           listing_detail detail = listing_detail::full) {
        std::error_code ec;
        auto entries = directory(path, detail, ec);
        raise(ec, path);
        return entries;
    }

    template <class CompletionToken>
    auto async_read_symlink(std::string_view path, CompletionToken&& token) {
        return start<void(detail::asio_error_code, std::string), detail::stops_on_cancel>(
            path, std::forward<CompletionToken>(token),
            [](std::shared_ptr<core_type> c, std::string p) { return c->read_link(std::move(p)); });
    }
    std::string read_symlink(std::string_view path, std::error_code& ec) {
        return wait_for(ec, [&](auto token) { return async_read_symlink(path, token); });
    }
    std::string read_symlink(std::string_view path) {
        return throwing(&volume::read_symlink, path);
    }

    /// `open(path)` without waiting: for reading, in every mode; completes with
    /// `(error_code, file)`.
    template <class CompletionToken>
    auto async_open(std::string_view path, CompletionToken&& token) {
        return start<void(detail::asio_error_code, file), detail::stops_on_cancel>(
            path, std::forward<CompletionToken>(token),
            [](std::shared_ptr<core_type> c, std::string p) {
                return open_reader(std::move(c), std::move(p));
            });
    }
    /// Opens a file for reading.
    file open(std::string_view path, std::error_code& ec) {
        return wait_for(ec, [&](auto token) { return async_open(path, token); });
    }
    file open(std::string_view path) { return throwing(&volume::open, path); }

    // ---- writing (write_through, write_back) -------------------------------------------------

    /// `open(path, how)` without waiting; a file it creates gets `permissions`.
    template <class CompletionToken>
    auto async_open(std::string_view path, open_mode how, std::optional<std::uint32_t> permissions,
                    CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code, file)>(
            path, std::forward<CompletionToken>(token),
            [how, permissions](std::shared_ptr<core_type> c, std::string p) {
                return has(how, open_mode::write_access)
                           ? open_writer(std::move(c), std::move(p), how, permissions)
                           : open_reader(std::move(c), std::move(p));
            });
    }
    template <class CompletionToken>
    auto async_open(std::string_view path, open_mode how,
                    CompletionToken&& token) requires writable_mode<Mode> {
        return async_open(path, how, std::nullopt, std::forward<CompletionToken>(token));
    }
    /// Opens a file with `how` (open_mode::write, append, read_write, ...). Without write access
    /// this is `open(path)`. A file it creates gets `permissions` (the volume's default if none).
    file
    open(std::string_view path, open_mode how, std::error_code& ec,
         std::optional<std::uint32_t> permissions = std::nullopt) requires writable_mode<Mode> {
        return wait_for(ec, [&](auto token) { return async_open(path, how, permissions, token); });
    }
    file open(std::string_view path, open_mode how) requires writable_mode<Mode> {
        std::error_code ec;
        file f = open(path, how, ec);
        raise(ec, path);
        return f;
    }

    /// mknod(2) of a regular file without waiting: an empty file where nothing is
    /// (`errc::already_exists` otherwise), with `permissions` (the volume's default if none);
    /// completes with `(error_code, file_status)`, the new file's status.
    template <class CompletionToken>
    auto async_create_file(std::string_view path, std::optional<std::uint32_t> permissions,
                           CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code, file_status)>(
            path, std::forward<CompletionToken>(token),
            [permissions](std::shared_ptr<core_type> c, std::string p) {
                return create_empty(std::move(c), std::move(p), permissions);
            });
    }
    file_status create_file(std::string_view path, std::error_code& ec,
                            std::optional<std::uint32_t> permissions = std::nullopt) requires
        writable_mode<Mode> {
        return wait_for(ec,
                        [&](auto token) { return async_create_file(path, permissions, token); });
    }
    file_status create_file(std::string_view path, std::optional<std::uint32_t> permissions =
                                                       std::nullopt) requires writable_mode<Mode> {
        std::error_code ec;
        file_status st = create_file(path, ec, permissions);
        raise(ec, path);
        return st;
    }

    template <class CompletionToken>
    auto async_write_file(std::string_view path, std::string data,
                          CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code)>(
            path, std::forward<CompletionToken>(token),
            [data = std::move(data)](std::shared_ptr<core_type> c, std::string p) mutable {
                return c->write_file(std::move(p), std::move(data));
            });
    }
    /// Creates or replaces a file with `data` (the parent directory must exist).
    void write_file(std::string_view path, std::string_view data,
                    std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_write_file(path, std::string(data), token); });
    }
    void write_file(std::string_view path, std::string_view data) requires writable_mode<Mode> {
        std::error_code ec;
        write_file(path, data, ec);
        raise(ec, path);
    }

    /// mkdir without waiting; the directory gets `permissions` (the volume's default if none).
    template <class CompletionToken>
    auto async_create_directory(std::string_view path, std::optional<std::uint32_t> permissions,
                                CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code)>(
            path, std::forward<CompletionToken>(token),
            [permissions](std::shared_ptr<core_type> c, std::string p) {
                return c->make_directory(std::move(p), false, permissions);
            });
    }
    template <class CompletionToken>
    auto async_create_directory(std::string_view path,
                                CompletionToken&& token) requires writable_mode<Mode> {
        return async_create_directory(path, std::nullopt, std::forward<CompletionToken>(token));
    }
    /// mkdir: the parent must exist; `errc::already_exists` if the path does.
    void create_directory(std::string_view path, std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_create_directory(path, token); });
    }
    void create_directory(std::string_view path) requires writable_mode<Mode> {
        std::error_code ec;
        create_directory(path, ec);
        raise(ec, path);
    }

    /// mkdir -p without waiting.
    template <class CompletionToken>
    auto async_create_directories(std::string_view path,
                                  CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code)>(
            path, std::forward<CompletionToken>(token),
            [](std::shared_ptr<core_type> c, std::string p) {
                return c->make_directory(std::move(p), true, std::nullopt);
            });
    }
    /// mkdir -p.
    void create_directories(std::string_view path,
                            std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_create_directories(path, token); });
    }
    void create_directories(std::string_view path) requires writable_mode<Mode> {
        std::error_code ec;
        create_directories(path, ec);
        raise(ec, path);
    }

    /// Removes a file, or an empty directory (`errc::not_empty` otherwise); `what` limits it to
    /// one kind (unlink, rmdir).
    template <class CompletionToken>
    auto async_remove(std::string_view path, removal what,
                      CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code)>(
            path, std::forward<CompletionToken>(token),
            [what](std::shared_ptr<core_type> c, std::string p) {
                return c->remove(std::move(p), what);
            });
    }
    template <class CompletionToken>
    auto async_remove(std::string_view path, CompletionToken&& token) requires writable_mode<Mode> {
        return async_remove(path, removal::any, std::forward<CompletionToken>(token));
    }
    void remove(std::string_view path, removal what,
                std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_remove(path, what, token); });
    }
    void remove(std::string_view path, std::error_code& ec) requires writable_mode<Mode> {
        remove(path, removal::any, ec);
    }
    void remove(std::string_view path, removal what = removal::any) requires writable_mode<Mode> {
        std::error_code ec;
        remove(path, what, ec);
        raise(ec, path);
    }

    /// rename(2): files and directories; replaces a file, or an empty directory by a directory,
    /// unless `how` is `rename_mode::no_replace`. Not atomic: objects are copied, then deleted
    /// (a directory key by key).
    template <class CompletionToken>
    auto async_rename(std::string_view from, std::string_view to, rename_mode how,
                      CompletionToken&& token) requires writable_mode<Mode> {
        std::error_code ec;
        std::string target = normalize_path(to, ec);
        return start<void(detail::asio_error_code)>(
            from, std::forward<CompletionToken>(token),
            [target, ec, how](std::shared_ptr<core_type> c, std::string p) {
                return checked(ec, c->rename(std::move(p), target, how));
            });
    }
    template <class CompletionToken>
    auto async_rename(std::string_view from, std::string_view to,
                      CompletionToken&& token) requires writable_mode<Mode> {
        return async_rename(from, to, rename_mode::replace, std::forward<CompletionToken>(token));
    }
    void rename(std::string_view from, std::string_view to, rename_mode how,
                std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_rename(from, to, how, token); });
    }
    void rename(std::string_view from, std::string_view to,
                std::error_code& ec) requires writable_mode<Mode> {
        rename(from, to, rename_mode::replace, ec);
    }
    void rename(std::string_view from, std::string_view to,
                rename_mode how = rename_mode::replace) requires writable_mode<Mode> {
        std::error_code ec;
        rename(from, to, how, ec);
        raise(ec, from);
    }

    template <class CompletionToken>
    auto async_create_symlink(std::string_view target, std::string_view link,
                              CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code)>(
            link, std::forward<CompletionToken>(token),
            [t = std::string(target)](std::shared_ptr<core_type> c, std::string p) {
                return c->make_symlink(t, std::move(p));
            });
    }
    /// A symlink at `link` pointing to `target` (stored the way s3fs stores them).
    void create_symlink(std::string_view target, std::string_view link,
                        std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_create_symlink(target, link, token); });
    }
    void create_symlink(std::string_view target,
                        std::string_view link) requires writable_mode<Mode> {
        std::error_code ec;
        create_symlink(target, link, ec);
        raise(ec, link);
    }

    template <class CompletionToken>
    auto async_resize_file(std::string_view path, std::uint64_t size,
                           CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code)>(
            path, std::forward<CompletionToken>(token),
            [size](std::shared_ptr<core_type> c, std::string p) {
                return c->resize(std::move(p), size);
            });
    }
    /// truncate(2): shrinks or extends (with zeros) a file.
    void resize_file(std::string_view path, std::uint64_t size,
                     std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_resize_file(path, size, token); });
    }
    void resize_file(std::string_view path, std::uint64_t size) requires writable_mode<Mode> {
        std::error_code ec;
        resize_file(path, size, ec);
        raise(ec, path);
    }

    template <class CompletionToken>
    auto async_set_attributes(std::string_view path, attribute_change change,
                              CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code)>(
            path, std::forward<CompletionToken>(token),
            [change](std::shared_ptr<core_type> c, std::string p) {
                return c->change_attributes(std::move(p),
                                            [change](file_status& st) { change.apply_to(st); });
            });
    }
    /// chmod, chown and utimens in one metadata rewrite.
    void set_attributes(std::string_view path, const attribute_change& change,
                        std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_set_attributes(path, change, token); });
    }
    void set_attributes(std::string_view path,
                        const attribute_change& change) requires writable_mode<Mode> {
        std::error_code ec;
        set_attributes(path, change, ec);
        raise(ec, path);
    }

    /// chmod without waiting: the low 12 bits of `mode`.
    template <class CompletionToken>
    auto async_permissions(std::string_view path, std::uint32_t mode,
                           CompletionToken&& token) requires writable_mode<Mode> {
        attribute_change change;
        change.permissions = mode;
        return async_set_attributes(path, change, std::forward<CompletionToken>(token));
    }
    /// chmod: the low 12 bits of `mode`.
    void permissions(std::string_view path, std::uint32_t mode,
                     std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_permissions(path, mode, token); });
    }
    void permissions(std::string_view path, std::uint32_t mode) requires writable_mode<Mode> {
        std::error_code ec;
        permissions(path, mode, ec);
        raise(ec, path);
    }

    /// Sets the modification time without waiting.
    template <class CompletionToken>
    auto async_last_write_time(std::string_view path, std::chrono::system_clock::time_point when,
                               CompletionToken&& token) requires writable_mode<Mode> {
        attribute_change change;
        change.mtime = when;
        return async_set_attributes(path, change, std::forward<CompletionToken>(token));
    }
    /// Sets the modification time.
    void last_write_time(std::string_view path, std::chrono::system_clock::time_point when,
                         std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_last_write_time(path, when, token); });
    }
    void last_write_time(std::string_view path,
                         std::chrono::system_clock::time_point when) requires writable_mode<Mode> {
        std::error_code ec;
        last_write_time(path, when, ec);
        raise(ec, path);
    }

    template <class CompletionToken>
    auto async_flush(CompletionToken&& token) requires writable_mode<Mode> {
        return start<void(detail::asio_error_code), detail::stops_on_cancel>(
            "", std::forward<CompletionToken>(token),
            [](std::shared_ptr<core_type> c, std::string) { return c->flush(); });
    }
    /// Returns once every closed file is in the bucket (immediately in write_through, where
    /// close already uploaded). On failure the files stay queued and the error names a key.
    void flush(std::error_code& ec) requires writable_mode<Mode> {
        wait_for(ec, [&](auto token) { return async_flush(token); });
    }
    void flush() requires writable_mode<Mode> {
        std::error_code ec;
        flush(ec);
        raise(ec, "");
    }
    /// Bytes the read cache (cache::memory or cache::disk) holds now.
    std::uint64_t read_cache_bytes() const { return core_->read_cache_bytes(); }

    /// `ec` as a sentence about `path`: "s3: bucket 'b', key 'run/f': connection failed".
    std::string describe(const std::error_code& ec, std::string_view path) const {
        const std::string key = key_for(path);
        return skyvol::describe(ec, core_->where(key));
    }
    /// Bytes that open files' read-ahead buffers hold now (within `read_ahead_options::budget`,
    /// beyond it only by what readers wait for).
    std::uint64_t read_ahead_bytes() const { return core_->read_ahead_bytes(); }

    /// Closed files not yet in the bucket.
    std::size_t pending_uploads() const requires write_back_mode<Mode> {
        return core_->pending_uploads();
    }
    /// What the background uploader has done: uploads, superseded rewrites, failed attempts.
    write_back_stats upload_stats() const requires write_back_mode<Mode> {
        return core_->upload_stats();
    }
    /// Keys that listings hide because no path can name them (a NUL byte, not UTF-8, a `..`
    /// segment, a name over 255 bytes), counted once each; each is logged once as a warning.
    std::uint64_t hidden_keys() const { return core_->hidden_keys(); }

    // ---- copy mode ---------------------------------------------------------------------------

    /// `refresh()` without waiting; completes with `(error_code, copy_stats)`.
    template <class CompletionToken>
    auto async_refresh(CompletionToken&& token) requires local_copy_mode<Mode> {
        return detail::async_run<void(detail::asio_error_code, copy_stats)>(
            core_->get_executor(), std::forward<CompletionToken>(token),
            [fetcher = fetcher_] { return refreshing(fetcher); });
    }
    /// Fetches what changed in the bucket since the last fetch; removes what is gone.
    copy_stats refresh(std::error_code& ec) requires local_copy_mode<Mode> {
        return wait_for(ec, [&](auto token) { return async_refresh(token); });
    }
    copy_stats refresh() requires local_copy_mode<Mode> {
        std::error_code ec;
        auto stats = refresh(ec);
        raise(ec, "");
        return stats;
    }
    /// What the fetch at construction did.
    const copy_stats& initial_fetch() const requires local_copy_mode<Mode> { return initial_; }

private:
    void init(executor_type executor, Store store, volume_options options) {
        if constexpr (Mode::local_copy) {
            std::string prefix = options.prefix;
            if (!prefix.empty() && !prefix.ends_with('/')) prefix += '/';
            const std::string store_name(store.store_name()), bucket(store.bucket_name());
            try {
                copy_folder_.emplace(options.cache_dir, "skyvol-copy");
            } catch (const std::exception&) {
                detail::throw_if(detail::error_from(std::current_exception()),
                                 {store_name, bucket, prefix, "cannot make the copy's folder"});
            }
            options.cache_dir = copy_folder_->path();
            // The mirror is a cache of the bucket: fsync is not worth its cost.
            local_store_options mirror_options;
            mirror_options.durable = false;
            local_store mirror(options.cache_dir / "copy", mirror_options);
            volume_options local = options;
            local.prefix.clear();
            core_ = std::make_shared<core_type>(executor, mirror, local);
            fetcher_ = std::make_shared<detail::copy_fetch<Store>>(
                std::move(store), prefix, mirror, options.copy.parallelism,
                options.copy.on_progress, options.log);
            std::error_code ec;
            initial_ = detail::run_blocking(
                core_->get_executor(), [this] { return fetcher_->run(); }, ec);
            detail::throw_if(ec, {store_name, bucket, prefix, {}});
        } else {
            const std::string store_name(store.store_name()), bucket(store.bucket_name());
            const std::string prefix = options.prefix;
            try {
                core_ = std::make_shared<core_type>(std::move(executor), std::move(store),
                                                    std::move(options));
            } catch (const std::exception&) {
                detail::throw_if(detail::error_from(std::current_exception()),
                                 {store_name, bucket, prefix, "cannot open the volume"});
            }
            core_->start();
        }
    }

    static boost::asio::awaitable<file> open_reader(std::shared_ptr<core_type> core,
                                                    std::string path) {
        auto [target, st] = co_await core->resolve(path);
        if (!st.exists()) detail::fail(errc::not_found);
        if (st.is_directory()) detail::fail(errc::is_a_directory);
        co_return file(
            std::make_shared<detail::reader_file<core_type>>(core, std::move(target), st));
    }

    static boost::asio::awaitable<file> open_writer(std::shared_ptr<core_type> core,
                                                    std::string path, open_mode how,
                                                    std::optional<std::uint32_t> permissions) {
        const bool truncate = has(how, open_mode::truncate);
        auto staged =
            co_await core->open_for_write(path, has(how, open_mode::create),
                                          has(how, open_mode::exclusive), !truncate, permissions);
        core->stream_uploads(*staged);
        // A file that did not exist must appear at close even if nothing was written.
        const bool dirty = truncate || core->staging().view(*staged).created;
        co_return file(std::make_shared<detail::writer_file<core_type>>(
            core, std::move(staged), has(how, open_mode::append_bit), dirty));
    }

    /// Commits an empty new file at once, and gives its status as stat shows it from now on.
    static boost::asio::awaitable<file_status>
    create_empty(std::shared_ptr<core_type> core, std::string path,
                 std::optional<std::uint32_t> permissions) {
        auto staged = co_await core->open_for_write(path, true, true, false, permissions);
        co_await core->commit_or_discard(staged);
        co_return co_await core->stat(path);
    }

    /// Starts an operation with `start_operation(use_future)` and waits for it; its error goes
    /// to `ec`. A call from one of the volume's own threads would wait for itself: refused.
    template <class Start>
    auto wait_for(std::error_code& ec, Start start_operation) {
        using result_type = decltype(start_operation(boost::asio::use_future).get());
        ec.clear();
        if (pool_ && pool_->get_executor().running_in_this_thread())
            ec = std::make_error_code(std::errc::resource_deadlock_would_occur);
        else
            try {
                return start_operation(boost::asio::use_future).get();
            } catch (const boost::system::system_error& e) {
                ec = e.code();
            }
        if constexpr (!std::is_void_v<result_type>) return result_type{};
    }

    /// The copy's refresh; the coroutine holds the fetcher, which may outlive the volume.
    static boost::asio::awaitable<copy_stats>
    refreshing(std::shared_ptr<detail::copy_fetch<Store>> fetcher) {
        co_return co_await fetcher->run();
    }

    template <class Signature, class Cancellation = detail::runs_to_end, class CompletionToken,
              class Make>
    auto start(std::string_view path, CompletionToken&& token, Make make) {
        std::error_code ec;
        std::string p = normalize_path(path, ec);
        auto core = core_;
        return detail::async_run<Signature, Cancellation>(
            core_->get_executor(), std::forward<CompletionToken>(token),
            [core, p = std::move(p), ec, make = std::move(make)]() mutable {
                return checked(ec, make(core, std::move(p)));
            });
    }

    template <class T>
    static boost::asio::awaitable<T> checked(std::error_code ec, boost::asio::awaitable<T> op) {
        if (ec) detail::fail(ec);
        co_return co_await std::move(op);
    }
    static boost::asio::awaitable<void> checked(std::error_code ec,
                                                boost::asio::awaitable<void> op) {
        if (ec) detail::fail(ec);
        co_await std::move(op);
    }

    /// The key a path names in messages (as given where it does not normalize).
    std::string key_for(std::string_view path) const {
        std::error_code norm;
        return core_->key_of(normalize_path(path, norm));
    }
    void raise(const std::error_code& ec, std::string_view path) const {
        if (!ec) return;
        const std::string key = key_for(path);
        detail::throw_if(ec, core_->where(key));
    }

    template <class R>
    R throwing(R (volume::*op)(std::string_view, std::error_code&), std::string_view path) {
        std::error_code ec;
        R result = (this->*op)(path, ec);
        raise(ec, path);
        return result;
    }

    std::unique_ptr<boost::asio::thread_pool> pool_;
    std::shared_ptr<core_type> core_;
    std::shared_ptr<detail::copy_fetch<Store>> fetcher_;
    copy_stats initial_;
    std::optional<detail::cache_folder> copy_folder_; ///< copy mode: the mirror's folder
};

} // namespace skyvol

#endif
