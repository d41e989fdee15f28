#ifndef SKYVOL_STORE_DETAIL_LOCAL_FILES_HPP
#define SKYVOL_STORE_DETAIL_LOCAL_FILES_HPP

/// @file
/// The blocking core of `local_store`: objects as files under a root folder. Every path is
/// resolved one component at a time from the root with O_NOFOLLOW, so no key and no symlink
/// planted in the folder can reach outside it. Thread-safe; the store runs it on its own pool.
///
/// Layout: key `a/b/c` is the file `ROOT/a/b/c`; a marker key `a/b/` is the folder `ROOT/a/b`
/// flagged with an xattr (any empty folder also reads as a marker). Content type, user metadata
/// and the ETag live in the xattr `user.skyvol`, written before the rename that publishes the
/// file, so a put is atomic with its metadata. `ROOT/.skyvol.sys/` holds temp files and
/// multipart uploads and is not part of the bucket.

#include <skyvol/detail/md5.hpp>
#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/record.hpp>
#include <skyvol/error.hpp>
#include <skyvol/store/detail/list_builder.hpp>
#include <skyvol/store/detail/metadata.hpp>
#include <skyvol/store/key.hpp>
#include <skyvol/store/object_info.hpp>

#include <boost/asio/buffer.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <limits.h>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace skyvol::detail {

/// Name of the folder under the root that the local store keeps for itself.
inline constexpr std::string_view local_system_dir = ".skyvol.sys";

/// `validate_key` plus what a file tree cannot hold: empty or "." segments (they would alias
/// another key), components over NAME_MAX, and the reserved system folder.
inline std::error_code validate_local_key(std::string_view key) {
    if (auto ec = validate_key(key)) return ec;
    const std::string_view body = key.ends_with('/') ? key.substr(0, key.size() - 1) : key;
    if (body.empty()) return errc::invalid_key;
    std::size_t start = 0;
    bool first = true;
    while (start <= body.size()) {
        const std::size_t end = std::min(body.find('/', start), body.size());
        const std::string_view segment = body.substr(start, end - start);
        if (segment.empty() || segment == "." || (first && segment == local_system_dir))
            return errc::invalid_key;
        if (segment.size() > NAME_MAX) return errc::name_too_long;
        first = false;
        start = end + 1;
    }
    return {};
}

/// Metadata as stored in the xattr: "name=value" lines, with '%', '=' and newlines escaped.
struct stored_attributes {
    std::string content_type;
    std::string etag;
    std::uint64_t size = 0;    ///< file size when the ETag was computed
    std::int64_t mtime_ns = 0; ///< file mtime when the ETag was computed
    bool marker = false;
    user_metadata metadata;

    std::string encode() const {
        record_writer out;
        out.field("ct", content_type);
        out.field("etag", etag);
        out.field("size", std::to_string(size));
        out.field("mtime", std::to_string(mtime_ns));
        if (marker) out.field("marker", "1");
        for (const auto& [name, value] : metadata)
            out.field("m." + name, value);
        return out.text();
    }

    /// False if `text` is not ours; the caller then treats the object as having no metadata.
    bool decode(std::string_view text) {
        return read_record(text, [this](const std::string& name, const std::string& value) {
            if (name == "ct")
                content_type = value;
            else if (name == "etag")
                etag = value;
            else if (name == "size")
                size = std::strtoull(value.c_str(), nullptr, 10);
            else if (name == "mtime")
                mtime_ns = std::strtoll(value.c_str(), nullptr, 10);
            else if (name == "marker")
                marker = value == "1";
            else if (name.starts_with("m."))
                metadata.emplace(name.substr(2), value);
        });
    }
};

class local_files {
public:
    static constexpr const char* xattr_name = "user.skyvol";

    struct options {
        bool durable = true; ///< fsync files and folders before a write reports success
        std::uint64_t min_part_size = multipart_limits::min_part_size;
    };

    local_files(std::filesystem::path root, options opts, std::error_code& ec)
        : root_(std::move(root))
        , opts_(opts) {
        std::error_code fs_ec;
        std::filesystem::create_directories(root_, fs_ec);
        root_fd_.reset(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!root_fd_) {
            ec = last_error();
            return;
        }
        for (const char* sub : {".skyvol.sys", ".skyvol.sys/tmp", ".skyvol.sys/uploads"})
            if (::mkdirat(root_fd_.get(), sub, 0700) != 0 && errno != EEXIST) {
                ec = last_error();
                return;
            }
        tmp_fd_.reset(
            ::openat(root_fd_.get(), ".skyvol.sys/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        uploads_fd_.reset(
            ::openat(root_fd_.get(), ".skyvol.sys/uploads", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!tmp_fd_ || !uploads_fd_) {
            ec = last_error();
            return;
        }
        remove_stale_temp_files();
    }

    const std::filesystem::path& root() const noexcept { return root_; }

    object_info head(const std::string& key, std::error_code& ec) const {
        object_info info;
        if ((ec = validate_local_key(key))) return info;
        unique_fd fd = open_object(key, ec);
        if (ec) return info;
        describe(fd.get(), key, info, true, ec);
        return info;
    }

    /// Fills `buffers` (a sequence of mutable buffers) from `offset`; returns bytes read.
    template <class MutableBufferSequence>
    std::size_t read(const std::string& key, std::uint64_t offset,
                     const MutableBufferSequence& buffers, std::error_code& ec) const {
        if ((ec = validate_local_key(key))) return 0;
        unique_fd fd = open_object(key, ec);
        if (ec || key.ends_with('/')) return 0;
        std::size_t total = 0;
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers); ++it) {
            boost::asio::mutable_buffer b(*it);
            const std::size_t n =
                pread_full(fd.get(), b.data(), b.size(), static_cast<off_t>(offset + total), ec);
            total += n;
            if (ec || n < b.size()) break;
        }
        return total;
    }

    /// Writes an object from `fill(fd, md5&)`, which writes the content at the file position.
    /// `etag` overrides the content MD5 (multipart objects).
    using filler = std::function<std::error_code(int fd, md5& digest)>;

    put_result write(const std::string& key, put_options opts, const filler& fill,
                     std::error_code& ec, std::string etag = {}) {
        return install(key, std::move(opts), nullptr, fill, ec, std::move(etag));
    }

    /// A temp file in the store's own folder (for puts, and for `adopt`); open for reading and
    /// writing.
    unique_fd create_temp(std::string& name, std::error_code& ec) const {
        name = random_name();
        unique_fd fd(
            ::openat(tmp_fd_.get(), name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644));
        if (!fd) ec = last_error();
        return fd;
    }
    void discard_temp(const std::string& name) const { ::unlinkat(tmp_fd_.get(), name.c_str(), 0); }

    /// Makes the temp file `name` (from create_temp, filled through `fd`) the object `key` by
    /// renaming it: its bytes are read once for the ETag, never copied. The temp file is gone
    /// afterwards, whatever the outcome.
    put_result adopt(const std::string& key, put_options opts, unique_fd fd, std::string name,
                     std::error_code& ec) {
        temp_file given{std::move(fd), std::move(name)};
        return install(key, std::move(opts), &given, digesting(), ec, {});
    }

    put_result write_buffer(const std::string& key, const void* data, std::size_t size,
                            put_options opts, std::error_code& ec) {
        return write(key, std::move(opts), writing(boost::asio::const_buffer(data, size)), ec);
    }

    /// A filler that writes `data` (a copy of the sequence, not of its bytes), digesting it.
    template <class ConstBufferSequence>
    static filler writing(const ConstBufferSequence& data) {
        return [data](int fd, md5& digest) {
            for (auto it = boost::asio::buffer_sequence_begin(data);
                 it != boost::asio::buffer_sequence_end(data); ++it) {
                boost::asio::const_buffer b(*it);
                digest.update(b.data(), b.size());
                if (auto e = write_all(fd, b.data(), b.size())) return e;
            }
            return std::error_code{};
        };
    }

    list_page list(const list_request& request, std::error_code& ec) const {
        if ((ec = validate_prefix(request.prefix))) return {};
        list_builder builder(request, ec);
        if (ec) return {};
        const std::string& prefix = request.prefix;
        const std::string base = prefix.substr(0, prefix.rfind('/') + 1);
        unique_fd dir = base.empty() ? unique_fd(::dup(root_fd_.get())) : open_dir(base, ec);
        if (ec) {
            // A prefix with no folder behind it lists nothing.
            ec = ec == errc::not_found || ec == errc::not_a_directory ? std::error_code{} : ec;
            return {};
        }
        // The marker of the folder the prefix names is a key of the listing too.
        if (base == prefix && !base.empty() && is_marker(dir.get()) && builder.offer(base, [&] {
                object_info info;
                describe(dir.get(), base, info, false, ec);
                return info;
            }) == list_builder::verdict::full)
            return std::move(builder).finish();
        walk(dir.get(), base, builder, ec);
        return std::move(builder).finish();
    }

    void remove(const std::string& key, std::error_code& ec) {
        if ((ec = validate_local_key(key))) return;
        std::string leaf;
        std::error_code open_ec;
        unique_fd parent = open_parent(key, false, leaf, open_ec);
        if (open_ec) return; // nothing there: removing a missing key succeeds
        if (key.ends_with('/')) {
            unique_fd dir(::openat(parent.get(), leaf.c_str(),
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!dir) return;
            ::fremovexattr(dir.get(), xattr_name);
            if (::unlinkat(parent.get(), leaf.c_str(), AT_REMOVEDIR) != 0 && errno != ENOTEMPTY &&
                errno != EEXIST && errno != ENOENT) {
                ec = last_error();
                return;
            }
        } else if (::unlinkat(parent.get(), leaf.c_str(), 0) != 0 && errno != ENOENT &&
                   errno != EISDIR) {
            ec = last_error();
            return;
        }
        prune(key);
    }

    put_result copy(const std::string& from, const std::string& to,
                    const std::optional<put_options>& replace, std::error_code& ec) {
        if ((ec = validate_local_key(from))) return {};
        unique_fd source = open_object(from, ec);
        if (ec) return {};
        object_info info;
        describe(source.get(), from, info, true, ec);
        if (ec) return {};
        put_options opts;
        if (replace)
            opts = *replace;
        else
            opts.content_type = info.content_type, opts.metadata = info.metadata;
        if (from.ends_with('/')) return write_buffer(to, "", 0, std::move(opts), ec);
        return write(
            to, std::move(opts),
            [&](int fd, md5& digest) { return copy_content(source.get(), fd, digest); }, ec);
    }

    std::string create_upload(const std::string& key, put_options opts, std::error_code& ec) {
        if ((ec = validate_local_key(key))) return {};
        if ((ec = normalize_metadata(opts.metadata))) return {};
        const std::string id = random_name();
        if (::mkdirat(uploads_fd_.get(), id.c_str(), 0700) != 0) {
            ec = last_error();
            return {};
        }
        stored_attributes attrs;
        attrs.content_type = opts.content_type;
        attrs.metadata = std::move(opts.metadata);
        attrs.etag = key; // the upload folder's record: which key it belongs to
        const std::string encoded = attrs.encode();
        unique_fd dir(::openat(uploads_fd_.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir || ::fsetxattr(dir.get(), xattr_name, encoded.data(), encoded.size(), 0) != 0) {
            ec = last_error();
            remove_upload(id);
            return {};
        }
        return id;
    }

    template <class ConstBufferSequence>
    completed_part upload_part(const std::string& key, const std::string& id, int number,
                               const ConstBufferSequence& data, std::error_code& ec) {
        return upload_part(key, id, number, boost::asio::buffer_size(data), writing(data), ec);
    }

    /// Stores part `number` of `size` bytes from `fill(fd, md5&)`.
    completed_part upload_part(const std::string& key, const std::string& id, int number,
                               std::uint64_t size, const filler& fill, std::error_code& ec) {
        completed_part part{number, {}};
        if (number < 1 || number > multipart_limits::max_parts) {
            ec = errc::invalid_argument;
            return part;
        }
        if (size > multipart_limits::max_part_size) {
            ec = errc::entity_too_large;
            return part;
        }
        unique_fd dir = open_upload(key, id, nullptr, ec);
        if (ec) return part;
        const std::string tmp_name = "tmp." + random_name();
        unique_fd fd(
            ::openat(dir.get(), tmp_name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
        if (!fd) {
            ec = last_error();
            return part;
        }
        md5 digest;
        ec = fill(fd.get(), digest);
        part.etag = to_hex(digest.finish());
        if (!ec) ec = sync(fd.get());
        if (!ec && ::fsetxattr(fd.get(), xattr_name, part.etag.data(), part.etag.size(), 0) != 0)
            ec = last_error();
        const std::string name = "part." + std::to_string(number);
        if (!ec && ::renameat(dir.get(), tmp_name.c_str(), dir.get(), name.c_str()) != 0)
            ec = last_error();
        if (ec) ::unlinkat(dir.get(), tmp_name.c_str(), 0);
        return part;
    }

    /// A filler for a temp file already holding the content: digests it from its start.
    static filler digesting() {
        return [](int fd, md5& digest) {
            struct stat st {};
            if (::fstat(fd, &st) != 0) return last_error();
            return for_each_piece(fd, 0, static_cast<std::uint64_t>(st.st_size),
                                  [&](const char* data, std::size_t n) {
                                      digest.update(data, n);
                                      return std::error_code{};
                                  });
        };
    }

    /// A filler that copies `range` of a local file, digesting it on the way.
    static filler copying(file_range range) {
        return [range](int fd, md5& digest) {
            return for_each_piece(range.fd, range.offset, range.length,
                                  [&](const char* data, std::size_t n) {
                                      digest.update(data, n);
                                      return write_all(fd, data, n);
                                  });
        };
    }

    put_result complete_upload(const std::string& key, const std::string& id,
                               const std::vector<completed_part>& parts, std::error_code& ec) {
        stored_attributes record;
        unique_fd dir = open_upload(key, id, &record, ec);
        if (ec) return {};
        if (parts.empty()) {
            ec = errc::invalid_upload;
            return {};
        }
        std::vector<unique_fd> files;
        std::vector<std::string> etags;
        int previous = 0;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            const std::string name = "part." + std::to_string(parts[i].part_number);
            unique_fd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            std::array<char, 64> stored{};
            const ssize_t n =
                fd ? ::fgetxattr(fd.get(), xattr_name, stored.data(), stored.size()) : -1;
            if (parts[i].part_number <= previous || n <= 0 ||
                std::string_view(stored.data(), static_cast<std::size_t>(n)) != parts[i].etag) {
                ec = errc::invalid_upload;
                return {};
            }
            struct stat st {};
            ::fstat(fd.get(), &st);
            if (i + 1 < parts.size() &&
                static_cast<std::uint64_t>(st.st_size) < opts_.min_part_size) {
                ec = errc::entity_too_small;
                return {};
            }
            previous = parts[i].part_number;
            etags.push_back(parts[i].etag);
            files.push_back(std::move(fd));
        }
        put_options opts;
        opts.content_type = record.content_type;
        opts.metadata = record.metadata;
        put_result result = write(
            key, std::move(opts),
            [&](int out, md5& digest) {
                for (const auto& in : files)
                    if (auto e = copy_content(in.get(), out, digest)) return e;
                return std::error_code{};
            },
            ec, multipart_etag(etags));
        if (!ec) remove_upload(id);
        return result;
    }

    void abort_upload(const std::string& key, const std::string& id, std::error_code& ec) {
        unique_fd dir = open_upload(key, id, nullptr, ec);
        if (!ec) remove_upload(id);
    }

private:
    struct temp_file {
        unique_fd fd;
        std::string name;
    };

    /// Writes (`given` null: into a new temp file, through `fill`) or adopts (`given`: a filled
    /// temp file, which `fill` digests) an object, then renames it into place.
    put_result install(const std::string& key, put_options opts, temp_file* given,
                       const filler& fill, std::error_code& ec, std::string etag) {
        temp_file made; // before `removal`, which reads its name when it goes
        // The temp file, given or made, is removed on every return but a successful rename.
        struct temp_removal {
            const local_files* files;
            const temp_file* pending;
            ~temp_removal() {
                if (pending) files->discard_temp(pending->name);
            }
        } removal{this, given};
        if ((ec = validate_local_key(key))) return {};
        if ((ec = normalize_metadata(opts.metadata))) return {};
        std::unique_lock<std::mutex> conditional;
        if (opts.if_match) {
            conditional = std::unique_lock(conditional_mutex_);
            std::error_code head_ec;
            const object_info current = head(key, head_ec);
            if (head_ec || current.etag != *opts.if_match) {
                ec = head_ec == errc::not_found || !head_ec ? errc::precondition_failed : head_ec;
                return {};
            }
        }
        stored_attributes attrs;
        attrs.content_type = opts.content_type.empty() ? default_content_type : opts.content_type;
        attrs.metadata = std::move(opts.metadata);
        if (key.ends_with('/')) return write_marker(key, attrs, opts.if_none_match, ec);

        if (!given) {
            made.fd = create_temp(made.name, ec);
            if (ec) return {};
            removal.pending = &made;
        }
        temp_file& temp = given ? *given : made;
        md5 digest;
        if ((ec = fill(temp.fd.get(), digest)) || (ec = sync(temp.fd.get()))) return {};
        struct stat st {};
        ::fstat(temp.fd.get(), &st);
        attrs.etag = etag.empty() ? to_hex(digest.finish()) : etag;
        attrs.size = static_cast<std::uint64_t>(st.st_size);
        attrs.mtime_ns = mtime_ns(st);
        const std::string encoded = attrs.encode();
        if (::fsetxattr(temp.fd.get(), xattr_name, encoded.data(), encoded.size(), 0) != 0) {
            ec = errno == ENOTSUP ? std::error_code(errc::not_supported) : last_error();
            return {};
        }
        temp.fd.reset();
        // A concurrent remove may prune the parent folder between mkdir and rename: try again.
        for (int attempt = 0; attempt < 3; ++attempt) {
            std::string leaf;
            unique_fd parent = open_parent(key, true, leaf, ec);
            if (ec) break;
            const unsigned flags = opts.if_none_match ? RENAME_NOREPLACE : 0;
            if (::renameat2(tmp_fd_.get(), temp.name.c_str(), parent.get(), leaf.c_str(), flags) ==
                0) {
                removal.pending = nullptr;
                ec = sync(parent.get());
                return {attrs.etag};
            }
            ec = errno == EISDIR || errno == ENOTEMPTY ? std::error_code(errc::is_a_directory)
                                                       : last_error();
            if (errno != ENOENT) break;
        }
        return {};
    }

    /// Temp files a crashed writer left behind. A day old is far past any live put's lifetime
    /// (another process may share the folder, so younger files are left alone).
    void remove_stale_temp_files() {
        const auto cutoff = std::chrono::system_clock::now() - std::chrono::hours(24);
        const std::int64_t cutoff_ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(cutoff.time_since_epoch()).count();
        for (const dir_entry& e : read_dir(tmp_fd_.get(), false)) {
            struct stat st {};
            if (!e.is_dir &&
                ::fstatat(tmp_fd_.get(), e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                mtime_ns(st) < cutoff_ns)
                ::unlinkat(tmp_fd_.get(), e.name.c_str(), 0);
        }
    }

    static std::int64_t mtime_ns(const struct stat& st) {
        return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    }

    static std::string random_name() {
        thread_local std::mt19937_64 rng{std::random_device{}()};
        std::array<unsigned char, 16> bytes{};
        for (auto& b : bytes)
            b = static_cast<unsigned char>(rng());
        return to_hex(bytes.data(), bytes.size());
    }

    std::error_code sync(int fd) const {
        if (opts_.durable && ::fsync(fd) != 0) return last_error();
        return {};
    }

    static std::error_code copy_content(int in, int out, md5& digest) {
        return detail::copy_content(
            in, out, [&digest](const char* data, std::size_t size) { digest.update(data, size); });
    }

    /// Opens the folder holding `key`'s last component, component by component without
    /// following symlinks; with `create`, missing folders are made. `leaf` gets the last name.
    unique_fd open_parent(std::string_view key, bool create, std::string& leaf,
                          std::error_code& ec) const {
        if (key.ends_with('/')) key.remove_suffix(1);
        unique_fd dir(::dup(root_fd_.get()));
        std::size_t start = 0;
        for (std::size_t slash; (slash = key.find('/', start)) != std::string_view::npos;
             start = slash + 1) {
            const std::string name(key.substr(start, slash - start));
            unique_fd next(
                ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!next && errno == ENOENT && create) {
                if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
                    ec = last_error();
                    return {};
                }
                next.reset(::openat(dir.get(), name.c_str(),
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            }
            if (!next) {
                // A file or a symlink where a folder should be.
                ec = errno == ELOOP || errno == ENOTDIR ? std::error_code(errc::not_a_directory)
                                                        : last_error();
                return {};
            }
            dir = std::move(next);
        }
        leaf = std::string(key.substr(start));
        return dir;
    }

    unique_fd open_dir(std::string_view key, std::error_code& ec) const {
        std::string leaf;
        unique_fd parent = open_parent(key, false, leaf, ec);
        if (ec) return {};
        unique_fd dir(
            ::openat(parent.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir) ec = errno == ELOOP ? std::error_code(errc::not_a_directory) : last_error();
        return dir;
    }

    /// Opens the file (or, for a marker key, the folder) of an existing object; anything that
    /// is not one, such as a symlink or a folder named by a plain key, is `not_found`.
    unique_fd open_object(const std::string& key, std::error_code& ec) const {
        std::error_code open_ec;
        if (key.ends_with('/')) {
            unique_fd dir = open_dir(key, open_ec);
            if (open_ec || !is_marker(dir.get())) {
                ec = open_ec && open_ec != errc::not_found && open_ec != errc::not_a_directory
                         ? open_ec
                         : std::error_code(errc::not_found);
                return {};
            }
            return dir;
        }
        std::string leaf;
        unique_fd parent = open_parent(key, false, leaf, open_ec);
        unique_fd fd;
        if (!open_ec) {
            fd.reset(::openat(parent.get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!fd) open_ec = errno == ELOOP ? std::error_code(errc::not_found) : last_error();
        }
        struct stat st {};
        if (!open_ec && (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)))
            open_ec = errc::not_found;
        if (open_ec) {
            ec = open_ec == errc::not_a_directory ? std::error_code(errc::not_found) : open_ec;
            return {};
        }
        return fd;
    }

    static bool read_attributes(int fd, stored_attributes& attrs) {
        std::string buffer(4096, '\0');
        ssize_t n = ::fgetxattr(fd, xattr_name, buffer.data(), buffer.size());
        if (n < 0 && errno == ERANGE) {
            n = ::fgetxattr(fd, xattr_name, nullptr, 0);
            if (n > 0) {
                buffer.resize(static_cast<std::size_t>(n));
                n = ::fgetxattr(fd, xattr_name, buffer.data(), buffer.size());
            }
        }
        if (n <= 0) return false;
        return attrs.decode(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    }

    /// A directory stream over its own copy of `dir_fd`, from the start; close with closedir.
    static DIR* open_dir_stream(int dir_fd) {
        unique_fd own(::dup(dir_fd));
        DIR* d = own ? ::fdopendir(own.get()) : nullptr;
        if (!d) return nullptr;
        own.release(); // the stream owns the descriptor now
        ::rewinddir(d);
        return d;
    }

    static bool is_marker(int dir_fd) {
        stored_attributes attrs;
        if (read_attributes(dir_fd, attrs) && attrs.marker) return true;
        DIR* d = open_dir_stream(dir_fd);
        if (!d) return false;
        bool empty = true;
        while (const dirent* e = ::readdir(d)) {
            const std::string_view name = e->d_name;
            if (name != "." && name != "..") {
                empty = false;
                break;
            }
        }
        ::closedir(d);
        return empty;
    }

    /// Fills `info` for an open object; with `with_metadata`, user metadata too.
    void describe(int fd, const std::string& key, object_info& info, bool with_metadata,
                  std::error_code& ec) const {
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            ec = last_error();
            return;
        }
        stored_attributes attrs;
        const bool ours = read_attributes(fd, attrs);
        info.key = key;
        info.size = S_ISDIR(st.st_mode) ? 0 : static_cast<std::uint64_t>(st.st_size);
        info.last_modified = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(mtime_ns(st))));
        info.content_type =
            ours && !attrs.content_type.empty() ? attrs.content_type : default_content_type;
        if (S_ISDIR(st.st_mode))
            info.etag = "d41d8cd98f00b204e9800998ecf8427e"; // MD5("")
        else if (ours && attrs.size == info.size && attrs.mtime_ns == mtime_ns(st))
            info.etag = attrs.etag;
        else // changed behind our back: an ETag from identity, size and time, as web servers do
            info.etag = std::to_string(st.st_ino) + "-" + std::to_string(st.st_size) + "-" +
                        std::to_string(mtime_ns(st));
        if (with_metadata && ours) info.metadata = attrs.metadata;
    }

    put_result write_marker(const std::string& key, stored_attributes& attrs, bool if_none_match,
                            std::error_code& ec) {
        std::string leaf;
        unique_fd parent = open_parent(key, true, leaf, ec);
        if (ec) return {};
        if (::mkdirat(parent.get(), leaf.c_str(), 0755) != 0 && errno != EEXIST) {
            ec = last_error();
            return {};
        }
        unique_fd dir(
            ::openat(parent.get(), leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir) {
            ec = errno == ENOTDIR || errno == ELOOP ? std::error_code(errc::already_exists)
                                                    : last_error();
            return {};
        }
        stored_attributes existing;
        if (if_none_match && read_attributes(dir.get(), existing) && existing.marker) {
            ec = errc::already_exists;
            return {};
        }
        attrs.marker = true;
        attrs.etag = "d41d8cd98f00b204e9800998ecf8427e";
        const std::string encoded = attrs.encode();
        if (::fsetxattr(dir.get(), xattr_name, encoded.data(), encoded.size(), 0) != 0) {
            ec = errno == ENOTSUP ? std::error_code(errc::not_supported) : last_error();
            return {};
        }
        ec = sync(parent.get());
        return {attrs.etag};
    }

    /// Removes the now-empty folders above `key` that no marker keeps, innermost first.
    void prune(std::string_view key) {
        if (key.ends_with('/')) key.remove_suffix(1);
        for (auto slash = key.rfind('/'); slash != std::string_view::npos && slash > 0;
             slash = key.rfind('/')) {
            key = key.substr(0, slash);
            std::string leaf;
            std::error_code ec;
            unique_fd parent = open_parent(key, false, leaf, ec);
            if (ec) return;
            unique_fd dir(::openat(parent.get(), leaf.c_str(),
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            stored_attributes attrs;
            if (!dir || (read_attributes(dir.get(), attrs) && attrs.marker)) return;
            if (::unlinkat(parent.get(), leaf.c_str(), AT_REMOVEDIR) != 0) return;
        }
    }

    struct dir_entry {
        std::string name;
        bool is_dir;
        std::string sort_key; ///< name, plus '/' for folders: gives the keys' byte order
    };

    static std::vector<dir_entry> read_dir(int dir_fd, bool at_root) {
        std::vector<dir_entry> entries;
        DIR* d = open_dir_stream(dir_fd);
        if (!d) return entries;
        while (const dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name == "." || name == ".." || (at_root && name == local_system_dir) ||
                !is_valid_utf8(name))
                continue;
            unsigned char type = e->d_type;
            if (type == DT_UNKNOWN) {
                struct stat st {};
                if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
                type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
            }
            if (type != DT_DIR && type != DT_REG) continue; // symlinks and devices are not objects
            dir_entry entry{std::move(name), type == DT_DIR, {}};
            entry.sort_key = entry.is_dir ? entry.name + '/' : entry.name;
            entries.push_back(std::move(entry));
        }
        ::closedir(d);
        std::sort(entries.begin(), entries.end(),
                  [](const dir_entry& a, const dir_entry& b) { return a.sort_key < b.sort_key; });
        return entries;
    }

    /// Feeds the keys under `dir_key` to `builder` in byte order; false once the page is full.
    bool walk(int dir_fd, const std::string& dir_key, list_builder& builder,
              std::error_code& ec) const {
        using verdict = list_builder::verdict;
        for (const dir_entry& entry : read_dir(dir_fd, dir_key.empty())) {
            const std::string key = dir_key + entry.sort_key;
            if (key.size() > max_key_length) continue;
            if (!entry.is_dir) {
                const verdict v = builder.offer(key, [&] {
                    object_info info;
                    info.key = key;
                    unique_fd fd(
                        ::openat(dir_fd, entry.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
                    std::error_code describe_ec;
                    if (fd) describe(fd.get(), key, info, false, describe_ec);
                    return info;
                });
                if (v == verdict::full) return false;
                continue;
            }
            const verdict v = builder.offer_subtree(key);
            if (v == verdict::full) return false;
            if (v != verdict::descend) continue;
            unique_fd sub(::openat(dir_fd, entry.name.c_str(),
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub) continue;
            if (is_marker(sub.get())) {
                const verdict m = builder.offer(key, [&] {
                    object_info info;
                    std::error_code describe_ec;
                    describe(sub.get(), key, info, false, describe_ec);
                    return info;
                });
                if (m == verdict::full) return false;
            }
            if (!walk(sub.get(), key, builder, ec)) return false;
        }
        return true;
    }

    unique_fd open_upload(const std::string& key, const std::string& id,
                          stored_attributes* record_out, std::error_code& ec) const {
        stored_attributes record;
        const bool plausible_id =
            id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
        unique_fd dir;
        if (plausible_id)
            dir.reset(::openat(uploads_fd_.get(), id.c_str(),
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir || !read_attributes(dir.get(), record) || record.etag != key) {
            ec = errc::invalid_upload;
            return {};
        }
        if (record_out) *record_out = std::move(record);
        return dir;
    }

    void remove_upload(const std::string& id) {
        unique_fd dir(::openat(uploads_fd_.get(), id.c_str(),
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (dir)
            for (const dir_entry& e : read_dir(dir.get(), false))
                ::unlinkat(dir.get(), e.name.c_str(), 0);
        ::unlinkat(uploads_fd_.get(), id.c_str(), AT_REMOVEDIR);
    }

    std::filesystem::path root_;
    options opts_;
    unique_fd root_fd_, tmp_fd_, uploads_fd_;
    std::mutex conditional_mutex_; ///< serialises If-Match puts within this process
};

} // namespace skyvol::detail

#endif
