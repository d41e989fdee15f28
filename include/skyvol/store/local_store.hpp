#ifndef SKYVOL_STORE_LOCAL_STORE_HPP
#define SKYVOL_STORE_LOCAL_STORE_HPP

/// @file
/// `local_store`: a folder acting as a bucket, the embedded default that lets skyvol run with no
/// cloud. Key `a/b.txt` is the file `ROOT/a/b.txt`, so the bucket can be read with plain tools.
/// Puts are atomic (temp file, then rename) and durable (fsync) by default; content type and
/// user metadata travel in an xattr. Keys that could leave the folder are refused; see
/// detail/local_files.hpp for the layout. Disk work runs on the store's own small thread pool,
/// so completion handlers never wait behind a disk.
///
/// Limits of the mapping, where S3 differs: an object `a` and an object `a/b` cannot both exist
/// (`errc::not_a_directory` / `errc::is_a_directory`); symlinks in the folder are not objects.

#include <skyvol/detail/async.hpp>
#include <skyvol/error.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/detail/local_files.hpp>
#include <skyvol/store/object_info.hpp>
#include <skyvol/uri.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace skyvol {

/// Settings of a `local_store`.
struct local_store_options {
    /// fsync each object and its folder before reporting success; off trades crash safety
    /// for speed (scratch buckets, tests).
    bool durable = true;
    /// Threads doing disk I/O for this store and its copies.
    std::size_t io_threads = 4;
    /// Smallest non-final multipart part (S3's 5 MiB); lower it only in tests.
    std::uint64_t min_part_size = multipart_limits::min_part_size;
};

class local_store {
public:
    using executor_type = boost::asio::any_io_executor;

    using options = local_store_options;

    /// Opens (creating if missing) the folder `root` as a bucket. Throws `skyvol::error`.
    explicit local_store(std::filesystem::path root, options opts = {},
                         executor_type executor = boost::asio::system_executor{})
        : executor_(std::move(executor)) {
        std::error_code ec;
        init(std::move(root), opts, ec);
        detail::throw_if(ec, {"local", root_name_, {}, {}});
    }

    /// As above, reporting failure through `ec`; the store is unusable if `ec` is set.
    local_store(std::filesystem::path root, options opts, executor_type executor,
                std::error_code& ec)
        : executor_(std::move(executor)) {
        init(std::move(root), opts, ec);
    }

    /// The folder a `file:///absolute/folder` URI names; `why` says what is wrong with another.
    static std::string folder_of(std::string_view text, std::string& why, std::error_code& ec) {
        const store_uri uri = parse_store_uri(text, why, ec);
        if (ec) return {};
        if (uri.scheme != "file")
            why = "the local store takes file:///folder URIs, not " + uri.scheme + "://";
        else if (!uri.authority.empty() && uri.authority != "localhost")
            why = "file URIs name a local folder: file:///folder (three slashes), not file://" +
                  uri.authority + "/...";
        else if (uri.path.empty() || uri.path == "/")
            why = "file URI '" + std::string(text) + "' names no folder";
        if (!why.empty()) ec = errc::invalid_config;
        return ec ? std::string() : uri.path;
    }
    /// The store a `file:///absolute/folder` URI names (created if missing). Throws
    /// `skyvol::error` saying what is wrong.
    static local_store from_uri(std::string_view text, options opts = {}) {
        std::string why;
        std::error_code ec;
        const std::string folder = folder_of(text, why, ec);
        detail::throw_if(ec, {"local", {}, {}, why});
        return local_store(folder, opts);
    }

    executor_type get_executor() const { return executor_; }
    std::string_view store_name() const noexcept { return "local"; }
    std::string_view bucket_name() const noexcept { return root_name_; }
    const std::filesystem::path& root() const noexcept { return files_->root(); }

    template <class CompletionToken>
    auto async_head(std::string key, CompletionToken&& token) {
        return run<void(detail::asio_error_code, object_info)>(
            std::forward<CompletionToken>(token), [key = std::move(key)](detail::local_files& f) {
                std::error_code ec;
                auto info = f.head(key, ec);
                return std::tuple(detail::asio_error_code(ec), std::move(info));
            });
    }

    template <class MutableBufferSequence, class CompletionToken>
    auto async_get(std::string key, std::uint64_t offset, const MutableBufferSequence& buffers,
                   CompletionToken&& token) {
        return run<void(detail::asio_error_code, std::size_t)>(
            std::forward<CompletionToken>(token),
            [key = std::move(key), offset, buffers](detail::local_files& f) {
                std::error_code ec;
                const std::size_t n = f.read(key, offset, buffers, ec);
                return std::tuple(detail::asio_error_code(ec), n);
            });
    }

    /// The buffers must stay valid until completion, as with every Asio write.
    template <class ConstBufferSequence, class CompletionToken>
    auto async_put(std::string key, const ConstBufferSequence& data, put_options opts,
                   CompletionToken&& token) {
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [key = std::move(key), data, opts = std::move(opts)](detail::local_files& f) mutable {
                std::error_code ec;
                if (boost::asio::buffer_size(data) > multipart_limits::max_part_size)
                    return std::tuple(detail::asio_error_code(errc::entity_too_large),
                                      put_result{});
                auto result = f.write(key, std::move(opts), detail::local_files::writing(data), ec);
                return std::tuple(detail::asio_error_code(ec), std::move(result));
            });
    }

    /// Reads `body` as it writes the object (uploads_from_files).
    template <class CompletionToken>
    auto async_put_file(std::string key, file_range body, put_options opts,
                        CompletionToken&& token) {
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [key = std::move(key), body, opts = std::move(opts)](detail::local_files& f) mutable {
                std::error_code ec;
                if (body.length > multipart_limits::max_part_size)
                    return std::tuple(detail::asio_error_code(errc::entity_too_large),
                                      put_result{});
                auto result = f.write(key, std::move(opts), detail::local_files::copying(body), ec);
                return std::tuple(detail::asio_error_code(ec), std::move(result));
            });
    }

    /// A file inside the store's folder that `async_put_staged` makes an object by renaming it,
    /// so a caller that fills a file (a download) writes its bytes once. Dropping it unused
    /// removes it.
    class staged_file {
    public:
        staged_file() = default;
        staged_file(staged_file&&) noexcept = default;
        staged_file& operator=(staged_file&& other) noexcept {
            discard();
            files_ = std::move(other.files_);
            fd_ = std::move(other.fd_);
            name_ = std::move(other.name_);
            return *this;
        }
        ~staged_file() { discard(); }

        /// Open for reading and writing, at offset 0.
        int fd() const noexcept { return fd_.get(); }

    private:
        friend class local_store;
        void discard() noexcept {
            if (files_) std::exchange(files_, nullptr)->discard_temp(name_);
        }
        std::shared_ptr<detail::local_files> files_; ///< null once moved from or put
        detail::unique_fd fd_;
        std::string name_;
    };

    /// A new, empty staged file; fails with the store folder's error (a full disk, say).
    staged_file stage(std::error_code& ec) const {
        staged_file file;
        file.fd_ = files_->create_temp(file.name_, ec);
        if (!ec) file.files_ = files_;
        return file;
    }

    /// Makes `file`'s content the object `key`: read once for its ETag, then renamed into place.
    template <class CompletionToken>
    auto async_put_staged(std::string key, staged_file file, put_options opts,
                          CompletionToken&& token) {
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [key = std::move(key), file = std::move(file),
             opts = std::move(opts)](detail::local_files& f) mutable {
                std::error_code ec;
                if (!file.files_) // moved from, or a stage() that failed
                    return std::tuple(detail::asio_error_code(errc::invalid_argument),
                                      put_result{});
                file.files_.reset(); // adopt removes the temp file, whatever happens
                auto result =
                    f.adopt(key, std::move(opts), std::move(file.fd_), std::move(file.name_), ec);
                return std::tuple(detail::asio_error_code(ec), std::move(result));
            });
    }

    template <class CompletionToken>
    auto async_list(list_request request, CompletionToken&& token) {
        return run<void(detail::asio_error_code, list_page)>(
            std::forward<CompletionToken>(token),
            [request = std::move(request)](detail::local_files& f) {
                std::error_code ec;
                auto page = f.list(request, ec);
                return std::tuple(detail::asio_error_code(ec), std::move(page));
            });
    }

    template <class CompletionToken>
    auto async_remove(std::string key, CompletionToken&& token) {
        return run<void(detail::asio_error_code)>(
            std::forward<CompletionToken>(token), [key = std::move(key)](detail::local_files& f) {
                std::error_code ec;
                f.remove(key, ec);
                return std::tuple(detail::asio_error_code(ec));
            });
    }

    template <class CompletionToken>
    auto async_remove_batch(std::vector<std::string> keys, CompletionToken&& token) {
        return run<void(detail::asio_error_code, std::vector<remove_failure>)>(
            std::forward<CompletionToken>(token), [keys = std::move(keys)](detail::local_files& f) {
                std::vector<remove_failure> failures;
                if (keys.size() > max_batch_remove)
                    return std::tuple(detail::asio_error_code(errc::invalid_argument),
                                      std::move(failures));
                for (const auto& key : keys) {
                    std::error_code ec;
                    f.remove(key, ec);
                    if (ec) failures.push_back({key, ec});
                }
                return std::tuple(detail::asio_error_code{}, std::move(failures));
            });
    }

    template <class CompletionToken>
    auto async_copy(std::string from, std::string to, std::optional<put_options> replace,
                    CompletionToken&& token) {
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [from = std::move(from), to = std::move(to),
             replace = std::move(replace)](detail::local_files& f) {
                std::error_code ec;
                auto result = f.copy(from, to, replace, ec);
                return std::tuple(detail::asio_error_code(ec), std::move(result));
            });
    }

    template <class CompletionToken>
    auto async_create_multipart(std::string key, put_options opts, CompletionToken&& token) {
        return run<void(detail::asio_error_code, std::string)>(
            std::forward<CompletionToken>(token),
            [key = std::move(key), opts = std::move(opts)](detail::local_files& f) mutable {
                std::error_code ec;
                auto id = f.create_upload(key, std::move(opts), ec);
                return std::tuple(detail::asio_error_code(ec), std::move(id));
            });
    }

    template <class ConstBufferSequence, class CompletionToken>
    auto async_upload_part(std::string key, std::string upload_id, int part_number,
                           const ConstBufferSequence& data, CompletionToken&& token) {
        return run<void(detail::asio_error_code, completed_part)>(
            std::forward<CompletionToken>(token), [key = std::move(key), id = std::move(upload_id),
                                                   part_number, data](detail::local_files& f) {
                std::error_code ec;
                auto part = f.upload_part(key, id, part_number, data, ec);
                return std::tuple(detail::asio_error_code(ec), std::move(part));
            });
    }

    /// Reads `body` as it writes the part (uploads_from_files).
    template <class CompletionToken>
    auto async_upload_part_file(std::string key, std::string upload_id, int part_number,
                                file_range body, CompletionToken&& token) {
        return run<void(detail::asio_error_code, completed_part)>(
            std::forward<CompletionToken>(token), [key = std::move(key), id = std::move(upload_id),
                                                   part_number, body](detail::local_files& f) {
                std::error_code ec;
                auto part = f.upload_part(key, id, part_number, body.length,
                                          detail::local_files::copying(body), ec);
                return std::tuple(detail::asio_error_code(ec), std::move(part));
            });
    }

    template <class CompletionToken>
    auto async_complete_multipart(std::string key, std::string upload_id,
                                  std::vector<completed_part> parts, CompletionToken&& token) {
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [key = std::move(key), id = std::move(upload_id),
             parts = std::move(parts)](detail::local_files& f) {
                std::error_code ec;
                auto result = f.complete_upload(key, id, parts, ec);
                return std::tuple(detail::asio_error_code(ec), std::move(result));
            });
    }

    template <class CompletionToken>
    auto async_abort_multipart(std::string key, std::string upload_id, CompletionToken&& token) {
        return run<void(detail::asio_error_code)>(
            std::forward<CompletionToken>(token),
            [key = std::move(key), id = std::move(upload_id)](detail::local_files& f) {
                std::error_code ec;
                f.abort_upload(key, id, ec);
                return std::tuple(detail::asio_error_code(ec));
            });
    }

private:
    void init(std::filesystem::path root, const options& opts, std::error_code& ec) {
        root_name_ = root.string();
        auto files = std::make_shared<detail::local_files>(
            std::move(root), detail::local_files::options{opts.durable, opts.min_part_size}, ec);
        if (ec) return;
        files_ = std::move(files);
        // The last copy of the store may be dropped on one of the pool's own threads (inside a
        // completion handler); a thread cannot join itself, so hand the join to a new thread.
        pool_ = std::shared_ptr<boost::asio::thread_pool>(
            new boost::asio::thread_pool(opts.io_threads ? opts.io_threads : 1),
            [](boost::asio::thread_pool* pool) {
                if (pool->get_executor().running_in_this_thread()) {
                    std::thread([pool] {
                        pool->join();
                        delete pool;
                    }).detach();
                } else {
                    pool->join();
                    delete pool;
                }
            });
    }

    template <class Signature, class CompletionToken, class Work>
    auto run(CompletionToken&& token, Work work) {
        return detail::async_offload<Signature>(
            pool_->get_executor(), executor_, std::forward<CompletionToken>(token),
            // The operation holds the pool: it may be posted to after the last store copy went
            // (a deferred initiation), and must find the pool's threads still there.
            [files = files_, pool = pool_, work = std::move(work)]() mutable {
                return work(*files);
            },
            pool_);
    }

    std::string root_name_;
    std::shared_ptr<detail::local_files> files_;
    std::shared_ptr<boost::asio::thread_pool> pool_;
    executor_type executor_;
};

static_assert(object_store<local_store>);

} // namespace skyvol

#endif
