#ifndef SKYVOL_FS_DETAIL_COMMITS_HPP
#define SKYVOL_FS_DETAIL_COMMITS_HPP

/// @file
/// How a closed (or synced) file becomes its object, one type per mode family, picked by
/// `commits_for<Mode>`:
///
/// - `write_through_commits` (read_only, write_through, copy): the commit uploads, and returns
///   once the object is in the bucket; files open for writing stream their parts meanwhile.
/// - `journal_commits` (write_back): the commit journals the file durably and returns; the
///   uploader puts it in the bucket later, in close order.
///
/// Both answer the core's questions about files committed but not in the bucket yet (the
/// journal's overlay; none for write-through), so the core asks without knowing the mode.

#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/throw.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/detail/staging.hpp>
#include <skyvol/fs/detail/streaming_upload.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/fs/detail/write_back_journal.hpp>
#include <skyvol/fs/detail/write_back_uploader.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/fs/status.hpp>
#include <skyvol/mode.hpp>
#include <skyvol/store/concepts.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cerrno>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace skyvol::detail {

/// What every commits type is built from.
template <object_store Store>
struct commits_context {
    boost::asio::any_io_executor executor;
    Store store;
    const volume_options& options;
    std::filesystem::path cache_dir;
    transfer_shape shape;
    /// Frees `bytes` of the local disk by evicting clean cached copies; true if it freed any.
    std::function<bool(std::uint64_t)> make_room;
};

/// A file committed but not in the bucket yet, and its content open for reading.
using pending_file = std::pair<write_back_journal::entry, unique_fd>;

template <object_store Store>
class write_through_commits {
public:
    /// Whether a volume with these commits may run without a known cache folder.
    static constexpr bool needs_known_folder = false;

    explicit write_through_commits(commits_context<Store> c)
        : executor_(std::move(c.executor))
        , store_(std::move(c.store))
        , shape_(c.shape) {}

    // Nothing is ever committed and not in the bucket.
    std::optional<write_back_journal::entry> latest_for(const std::string&) const { return {}; }
    std::map<std::string, write_back_journal::entry> children_of(const std::string&) const {
        return {};
    }
    std::optional<pending_file> open_latest(const std::string&) const { return {}; }
    bool has_pending_within(const std::string&) const { return false; }
    std::size_t pending() const { return 0; }
    write_back_stats stats() const { return {}; }
    boost::asio::awaitable<void> flush(std::string_view, std::string_view) { co_return; }
    void start(std::function<void(const std::string&)>) {}
    void stop() {}
    bool done() const { return true; }

    /// Lets `staged` upload its parts while it is written. `status` must have its final owner
    /// and permissions: metadata is sent before the last write, so the object's mtime is then its
    /// completion time.
    void stream(staged_file& staged, const std::string& key, const file_status& status) {
        put_options put;
        put.metadata = streamed_metadata(status, false);
        multipart_calls calls;
        calls.create = [store = store_, key](put_options o) { return create(store, key, o); };
        calls.upload_part = [store = store_, key](std::string id, int number, file_range data) {
            return upload_part(store, key, std::move(id), number, data);
        };
        calls.complete = [store = store_, key](std::string id, std::vector<completed_part> parts) {
            return complete(store, key, std::move(id), std::move(parts));
        };
        calls.abort = [store = store_, key](std::string id) {
            return abort(store, key, std::move(id));
        };
        staged.streaming = std::make_shared<streaming_upload>(
            executor_, staged.fd(), status.size, shape_, std::move(put), std::move(calls));
    }

    /// Uploads `staged` (whose status is `st`) as `key`; returns the status to cache.
    boost::asio::awaitable<std::optional<file_status>> commit(staged_file& staged,
                                                              const std::string& key,
                                                              file_status st, put_options put,
                                                              bool keep_mtime) {
        struct remove_staging {
            std::filesystem::path p;
            ~remove_staging() {
                std::error_code ignored;
                std::filesystem::remove(p, ignored);
            }
        } cleanup{staged.staging_path()};
        if (auto streaming = std::exchange(staged.streaming, nullptr)) {
            put_options streamed = put;
            streamed.metadata = streamed_metadata(st, keep_mtime);
            const std::optional<put_result> done =
                co_await streaming_upload::finish(std::move(streaming), st.size, streamed);
            if (done) {
                st.etag = done->etag;
                co_return st;
            }
        }
        const put_result result =
            co_await upload_from_file(store_, key, staged.fd(), st.size, put, shape_);
        st.etag = result.etag;
        co_return st;
    }

private:
    /// Metadata of a streamed upload: without mtime (sent before the last write), unless the
    /// file's mtime was set explicitly.
    static user_metadata streamed_metadata(const file_status& st, bool keep_mtime) {
        user_metadata m = metadata_of(st);
        if (!keep_mtime) m.erase("mtime");
        return m;
    }
    static boost::asio::awaitable<std::string> create(Store store, std::string key,
                                                      put_options options) {
        auto [ec, id] = co_await store.async_create_multipart(key, options, as_result);
        throw_on(ec);
        co_return id;
    }
    static boost::asio::awaitable<completed_part>
    upload_part(Store store, std::string key, std::string id, int number, file_range data) {
        std::string buffer; // only where the store cannot read the file itself
        completed_part part = co_await upload_part_from_file(store, key, id, number, data, buffer);
        co_return part;
    }
    static boost::asio::awaitable<put_result> complete(Store store, std::string key, std::string id,
                                                       std::vector<completed_part> parts) {
        auto [ec, result] = co_await store.async_complete_multipart(key, id, parts, as_result);
        throw_on(ec);
        co_return result;
    }
    static boost::asio::awaitable<void> abort(Store store, std::string key, std::string id) {
        auto [ec] = co_await store.async_abort_multipart(key, id, as_result);
        throw_on(ec);
    }

    boost::asio::any_io_executor executor_;
    Store store_;
    transfer_shape shape_;
};

template <object_store Store>
class journal_commits {
public:
    static constexpr bool needs_known_folder = true; ///< crash recovery reads it back

    explicit journal_commits(commits_context<Store> c) {
        typename write_back_uploader<Store>::settings s;
        s.delay = c.options.write_back.delay;
        s.attempts = c.options.write_back.upload_attempts;
        s.shape = c.shape;
        s.log = c.options.log;
        uploads_ = std::make_shared<write_back_uploader<Store>>(c.executor, std::move(c.store),
                                                                c.cache_dir, std::move(s));
        make_room_ = std::move(c.make_room);
    }

    std::optional<write_back_journal::entry> latest_for(const std::string& path) const {
        return journal().latest_for(path);
    }
    std::map<std::string, write_back_journal::entry> children_of(const std::string& dir) const {
        return journal().children_of(dir);
    }
    std::optional<pending_file> open_latest(const std::string& path) const {
        return journal().open_latest(path);
    }
    bool has_pending_within(const std::string& path) const {
        return journal().has_pending_within(path);
    }
    std::size_t pending() const { return journal().size(); }
    write_back_stats stats() const { return uploads_->stats(); }
    boost::asio::awaitable<void> flush(std::string_view store_name, std::string_view bucket) {
        co_await uploads_->flush(store_name, bucket);
    }
    void start(std::function<void(const std::string&)> on_uploaded) {
        uploads_->start(std::move(on_uploaded));
    }
    void stop() { uploads_->stop(); }
    bool done() const { return uploads_->done(); }

    /// The journal must hold the whole closed file first: nothing streams.
    void stream(staged_file&, const std::string&, const file_status&) {}

    /// Journals `staged` durably as `key`; the uploader takes it from there. Nothing to cache:
    /// the pending entry is what stat shows until the upload is done.
    boost::asio::awaitable<std::optional<file_status>>
    commit(staged_file& staged, const std::string& key, file_status st, put_options put, bool) {
        write_back_journal& journal = uploads_->journal();
        const std::uint64_t seq = journal.reserve();
        struct abandon_unless_committed {
            write_back_journal& journal;
            std::uint64_t seq;
            bool committed = false;
            ~abandon_unless_committed() {
                if (!committed) journal.abandon(seq);
            }
        } reservation{journal, seq};
        if (::fsync(staged.fd()) != 0) fail(last_error());
        staged.close_fd();
        std::error_code ec;
        std::filesystem::rename(staged.staging_path(), journal.data_path(seq), ec);
        if (ec) fail(ec);
        write_back_journal::entry e;
        e.seq = seq;
        e.key = key;
        e.path = staged.path();
        e.options = std::move(put);
        e.size = st.size;
        std::size_t superseded = journal.commit(e, ec);
        // The entry is a few hundred bytes: clean cached copies give way to it.
        if (to_errno(ec) == ENOSPC && make_room_ && make_room_(64 << 10))
            superseded = journal.commit(std::move(e), ec);
        if (ec) fail(ec);
        reservation.committed = true;
        uploads_->committed(superseded);
        co_return std::nullopt;
    }

private:
    const write_back_journal& journal() const { return uploads_->journal(); }

    std::shared_ptr<write_back_uploader<Store>> uploads_; ///< shared with its coroutine
    std::function<bool(std::uint64_t)> make_room_;
};

/// The commits type of a mode.
template <class Mode, class Store>
using commits_for =
    std::conditional_t<write_back_mode<Mode>, journal_commits<Store>, write_through_commits<Store>>;

} // namespace skyvol::detail

#endif
