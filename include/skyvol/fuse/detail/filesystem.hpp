#ifndef SKYVOL_FUSE_DETAIL_FILESYSTEM_HPP
#define SKYVOL_FUSE_DETAIL_FILESYSTEM_HPP

/// @file
/// Kernel requests to volume operations, and back. Each request copies what it needs, starts
/// the volume's asynchronous operation and returns; the completion replies from the volume's
/// executor. No request waits in a FUSE thread for the bucket. Semantics live in the volume;
/// here are only inodes, handles and errno. Requests that change nothing (lookups, stats,
/// reads, listings) and the flush barrier are interruptible: a signal to the waiting process
/// cancels the volume operation, and the request is answered EINTR.

#include <skyvol/detail/buffer_pool.hpp>
#include <skyvol/error.hpp>
#include <skyvol/file.hpp>
#include <skyvol/fs/path.hpp>
#include <skyvol/fs/status.hpp>
#include <skyvol/fuse/control.hpp>
#include <skyvol/fuse/detail/deferred_commits.hpp>
#include <skyvol/fuse/detail/fuse_api.hpp>
#include <skyvol/fuse/detail/in_flight.hpp>
#include <skyvol/fuse/detail/inode_table.hpp>
#include <skyvol/fuse/detail/interrupt.hpp>
#include <skyvol/fuse/options.hpp>
#include <skyvol/mode.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/system/error_code.hpp>

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace skyvol::fuse::detail {

/// What a mount needs from its file system whatever the volume type.
class filesystem_base {
public:
    virtual ~filesystem_base() = default;
    /// Waits until every closed file is in the bucket (write-back); nothing to do otherwise.
    virtual void flush(std::error_code& ec) = 0;
    virtual const fuse_lowlevel_ops& operations() const = 0;
    virtual bool read_only() const = 0;
    /// Returns once every request's completion has finished (the session calls it after its
    /// loop ended, before it destroys the session and this file system).
    void wait_for_completions() { completions_.wait_until_none(); }

protected:
    /// Every handler given to the volume goes through `completions_.track`.
    in_flight_completions completions_;
};

/// A file opened by the kernel: `fuse_file_info::fh` points to one.
struct open_file {
    std::mutex mutex; ///< guards `file` (reopened by a write after flush closed it)
    std::string path;
    skyvol::file file;
    bool writable = false;
    bool append = false;
    /// Written or resized through this handle since open or its last commit (guarded by
    /// `mutex`). A flush commits only then: see `close`.
    bool changed = false;
    bool deferred = false;          ///< a flush left its commit to release (guarded by `mutex`)
    std::string store, bucket, key; ///< for messages
};

/// A directory opened by the kernel: its entries as they were at opendir.
struct open_directory {
    std::string path;
    std::vector<directory_entry> entries;
};

template <class Volume>
class filesystem final : public filesystem_base {
public:
    using mode_type = typename Volume::mode_type;
    static constexpr bool writable = writable_mode<mode_type>;
    using error_code = boost::system::error_code;

    filesystem(Volume& volume, mount_options options)
        : volume_(volume)
        , options_(std::move(options)) {}
    filesystem(const filesystem&) = delete;
    filesystem& operator=(const filesystem&) = delete;

    void flush(std::error_code& ec) override {
        ec.clear();
        if constexpr (write_back_mode<mode_type>) volume_.flush(ec);
    }
    bool read_only() const override { return !writable || options_.read_only; }
    const fuse_lowlevel_ops& operations() const override {
        static const fuse_lowlevel_ops ops = make_operations();
        return ops;
    }

private:
    static fuse_lowlevel_ops make_operations() {
        fuse_lowlevel_ops ops{};
        ops.init = [](void* self, fuse_conn_info* conn) { as(self).init(conn); };
        ops.lookup = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
            of(req).lookup(req, parent, name);
        };
        ops.forget = [](fuse_req_t req, fuse_ino_t ino, uint64_t count) {
            of(req).inodes_.forget(ino, count);
            fuse_reply_none(req);
        };
        ops.forget_multi = [](fuse_req_t req, size_t count, fuse_forget_data* forgets) {
            for (size_t i = 0; i < count; ++i)
                of(req).inodes_.forget(forgets[i].ino, forgets[i].nlookup);
            fuse_reply_none(req);
        };
        ops.getattr = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
            of(req).getattr(req, ino);
        };
        ops.setattr = [](fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                         fuse_file_info* fi) { of(req).setattr(req, ino, *attr, to_set, fi); };
        ops.readlink = [](fuse_req_t req, fuse_ino_t ino) { of(req).readlink(req, ino); };
        ops.mknod = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
            of(req).mknod(req, parent, name, mode);
        };
        ops.mkdir = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
            of(req).mkdir(req, parent, name, mode);
        };
        ops.unlink = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
            of(req).remove(req, parent, name, false);
        };
        ops.rmdir = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
            of(req).remove(req, parent, name, true);
        };
        ops.symlink = [](fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
            of(req).symlink(req, target, parent, name);
        };
        ops.rename = [](fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                        const char* new_name, unsigned int flags) {
            of(req).rename(req, parent, name, new_parent, new_name, flags);
        };
        ops.open = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
            of(req).open(req, ino, *fi);
        };
        ops.read = [](fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
            of(req).read(req, handle(fi), size, offset);
        };
        ops.write = [](fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t offset,
                       fuse_file_info* fi) { of(req).write(req, handle(fi), data, size, offset); };
        ops.flush = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
            of(req).close(req, handle(fi), false);
        };
        ops.release = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
            of(req).close(req, handle(fi), true);
        };
        ops.fsync = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
            of(req).fsync(req, handle(fi));
        };
        ops.opendir = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
            of(req).opendir(req, ino, *fi);
        };
        ops.readdir = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                         fuse_file_info* fi) {
            of(req).readdir(req, ino, size, offset, *directory(fi), false);
        };
        ops.readdirplus = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                             fuse_file_info* fi) {
            of(req).readdir(req, ino, size, offset, *directory(fi), true);
        };
        ops.releasedir = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
            of(req).drop(directory(fi));
            fuse_reply_err(req, 0);
        };
        ops.fsyncdir = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
            fuse_reply_err(req, 0);
        };
        ops.statfs = [](fuse_req_t req, fuse_ino_t) { statfs(req); };
        ops.setxattr = [](fuse_req_t req, fuse_ino_t ino, const char* name, const char*, size_t,
                          int) { of(req).setxattr(req, ino, name); };
        ops.getxattr = [](fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
            of(req).getxattr(req, ino, name, size);
        };
        ops.listxattr = [](fuse_req_t req, fuse_ino_t, size_t size) {
            if (size == 0)
                fuse_reply_xattr(req, 0);
            else
                fuse_reply_buf(req, nullptr, 0);
        };
        ops.removexattr = [](fuse_req_t req, fuse_ino_t, const char*) {
            fuse_reply_err(req, ENODATA);
        };
        ops.create = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                        fuse_file_info* fi) { of(req).create(req, parent, name, mode, *fi); };
        return ops;
    }

    static filesystem& as(void* self) { return *static_cast<filesystem*>(self); }
    /// A completion the session waits for before it goes (see in_flight.hpp).
    template <class Handler>
    auto tracked(Handler handler) {
        return completions_.track(std::move(handler));
    }
    /// Starts `begin(handler)` for a request a kernel interrupt may cancel; `handler` replies
    /// unless the operation was cancelled, which replies EINTR (see interrupt.hpp).
    template <class Begin, class Handler>
    void interruptible(fuse_req_t req, Begin begin, Handler handler) {
        auto interrupt = std::make_shared<request_interrupt>();
        interrupt->arm(req);
        interrupt->start([&](boost::asio::cancellation_slot slot) {
            begin(boost::asio::bind_cancellation_slot(
                slot, tracked([req, interrupt, handler = std::move(handler)](
                                  error_code ec, auto&&... results) mutable {
                    interrupt->disarm(req);
                    if (std::error_code(ec) == std::errc::operation_canceled)
                        return (void)fuse_reply_err(req, EINTR);
                    handler(ec, std::forward<decltype(results)>(results)...);
                })));
        });
    }
    static filesystem& of(fuse_req_t req) { return as(fuse_req_userdata(req)); }
    static open_file* handle(fuse_file_info* fi) {
        return reinterpret_cast<open_file*>(static_cast<std::uintptr_t>(fi->fh));
    }
    static open_directory* directory(fuse_file_info* fi) {
        return reinterpret_cast<open_directory*>(static_cast<std::uintptr_t>(fi->fh));
    }
    /// Takes ownership of a handle about to be given to the kernel.
    template <class Handle>
    Handle* keep(std::unique_ptr<Handle> handle) {
        Handle* raw = handle.get();
        std::lock_guard lock(handles_mutex_);
        handles_of(raw).emplace(raw, std::move(handle));
        return raw;
    }
    /// Frees a handle the kernel released (or never got), outside the lock: closing a file
    /// may run a commit.
    template <class Handle>
    void drop(Handle* handle) {
        typename owned_handles<Handle>::node_type released;
        {
            std::lock_guard lock(handles_mutex_);
            released = handles_of(handle).extract(handle);
        }
    }
    template <class Handle>
    using owned_handles = std::unordered_map<Handle*, std::unique_ptr<Handle>>;
    owned_handles<open_file>& handles_of(open_file*) { return files_; }
    owned_handles<open_directory>& handles_of(open_directory*) { return directories_; }

    template <class T>
    static std::uint64_t handle_value(T* p) {
        return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
    }

    static void reply_error(fuse_req_t req, const std::error_code& ec) {
        fuse_reply_err(req, ec ? to_errno(ec) : 0);
    }
    static void reply_error(fuse_req_t req, const error_code& ec) {
        reply_error(req, std::error_code(ec));
    }
    /// `reply_error` for a request about `path`. An EIO (the bucket or the network failed, not
    /// the caller) also gets an error line naming the path, the key and the cause: the kernel
    /// passes on only the number.
    void reply_failure(fuse_req_t req, const error_code& ec, std::string_view op,
                       const std::string& path) {
        const std::error_code e(ec);
        if (e && to_errno(e) == EIO)
            options_.log(log_level::error, std::string(op) + " of '/" + path +
                                               "' failed with EIO; " + volume_.describe(e, path));
        reply_error(req, e);
    }

    void init(fuse_conn_info* conn) {
        // O_TRUNC comes with open, so truncation needs no upload of its own.
        if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
        // The kernel must send every write: close-to-open consistency depends on it.
        conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
    }

    // ---- attributes --------------------------------------------------------------------------

    struct stat to_stat(std::uint64_t ino, const file_status& st) const {
        struct stat s;
        std::memset(&s, 0, sizeof s);
        s.st_ino = ino;
        std::uint32_t mode = st.mode();
        if (options_.umask) mode &= ~*options_.umask;
        s.st_mode = mode;
        s.st_nlink = st.is_directory() ? 2 : 1;
        s.st_uid = options_.uid.value_or(st.uid);
        s.st_gid = options_.gid.value_or(st.gid);
        s.st_size = static_cast<off_t>(st.size);
        s.st_blksize = 128 * 1024;
        s.st_blocks = static_cast<blkcnt_t>((st.size + 511) / 512);
        const auto since = st.mtime.time_since_epoch();
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
        timespec t;
        t.tv_sec = static_cast<time_t>(secs.count());
        t.tv_nsec = static_cast<long>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count());
        s.st_mtim = s.st_ctim = s.st_atim = t;
        return s;
    }

    fuse_entry_param entry_of(std::uint64_t ino, const file_status& st) const {
        fuse_entry_param e;
        std::memset(&e, 0, sizeof e);
        e.ino = ino;
        e.generation = 1;
        e.attr = to_stat(ino, st);
        e.attr_timeout = options_.attribute_timeout.count();
        e.entry_timeout = options_.entry_timeout.count();
        return e;
    }

    /// Replies to lookup/mkdir/symlink/mknod with what is at `path` now.
    void reply_entry(fuse_req_t req, const std::string& path) {
        volume_.async_status(path, tracked([this, req, path](error_code ec, file_status st) {
                                 answer_entry(req, path, ec, st);
                             }));
    }
    void answer_entry(fuse_req_t req, const std::string& path, const error_code& ec,
                      const file_status& st) {
        if (ec) return reply_failure(req, ec, "lookup", path);
        if (!st.exists()) return (void)fuse_reply_err(req, ENOENT);
        reply_entry_with(req, path, st);
    }

    /// Replies with `st`, the status of what is at `path` now.
    void reply_entry_with(fuse_req_t req, const std::string& path, const file_status& st) {
        const fuse_entry_param e = entry_of(inodes_.remember(path), st);
        if (fuse_reply_entry(req, &e) != 0) inodes_.forget(e.ino, 1);
    }

    /// The path of `name` in directory `parent`; false after replying with the error.
    bool child_path(fuse_req_t req, fuse_ino_t parent, const char* name, std::string& out) {
        auto dir = inodes_.path_of(parent);
        if (!dir) return fuse_reply_err(req, ESTALE), false;
        const std::string_view n(name);
        if (n.size() > max_name_length) return fuse_reply_err(req, ENAMETOOLONG), false;
        out = join_path(*dir, n);
        return true;
    }

    bool path_of(fuse_req_t req, fuse_ino_t ino, std::string& out) {
        auto p = inodes_.path_of(ino);
        if (!p) return fuse_reply_err(req, ESTALE), false;
        out = std::move(*p);
        return true;
    }

    void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
        std::string path;
        if (!child_path(req, parent, name, path)) return;
        interruptible(
            req, [&](auto done) { volume_.async_status(path, std::move(done)); },
            [this, req, path](error_code ec, file_status st) { answer_entry(req, path, ec, st); });
    }

    void getattr(fuse_req_t req, fuse_ino_t ino) {
        std::string path;
        if (!path_of(req, ino, path)) return;
        interruptible(
            req, [&](auto done) { volume_.async_status(path, std::move(done)); },
            [this, req, ino, path](error_code ec, file_status st) {
                if (ec) return reply_failure(req, ec, "stat", path);
                if (!st.exists()) return (void)fuse_reply_err(req, ENOENT);
                const struct stat s = to_stat(ino, st);
                fuse_reply_attr(req, &s, options_.attribute_timeout.count());
            });
    }

    void setattr(fuse_req_t req, fuse_ino_t ino, const struct stat& attr, int to_set,
                 fuse_file_info* fi) {
        std::string path;
        if (!path_of(req, ino, path)) return;
        if (fi) return setattr_settled(req, ino, path, attr, to_set, fi); // through a handle
        settled(path, [this, req, ino, path, attr, to_set] {
            setattr_settled(req, ino, path, attr, to_set, nullptr);
        });
    }
    void setattr_settled(fuse_req_t req, fuse_ino_t ino, const std::string& path,
                         const struct stat& attr, int to_set, fuse_file_info* fi) {
        constexpr int changes = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
                                FUSE_SET_ATTR_GID | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW;
        auto finish = tracked([this, req, ino, path](error_code ec) {
            if (ec) return reply_failure(req, ec, "change of attributes", path);
            getattr(req, ino);
        });
        if (!(to_set & changes)) return finish(error_code{}); // atime only: not stored
        if constexpr (!writable) {
            fuse_reply_err(req, EROFS);
        } else {
            attribute_change change;
            if (to_set & FUSE_SET_ATTR_MODE) change.permissions = attr.st_mode & 07777;
            if (to_set & FUSE_SET_ATTR_UID) change.uid = attr.st_uid;
            if (to_set & FUSE_SET_ATTR_GID) change.gid = attr.st_gid;
            if (to_set & FUSE_SET_ATTR_MTIME_NOW)
                change.mtime = std::chrono::system_clock::now();
            else if (to_set & FUSE_SET_ATTR_MTIME)
                change.mtime = std::chrono::system_clock::time_point(
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::seconds(attr.st_mtim.tv_sec) +
                        std::chrono::nanoseconds(attr.st_mtim.tv_nsec)));
            const bool has_change = (to_set & changes & ~FUSE_SET_ATTR_SIZE) != 0;
            auto attributes =
                tracked([this, path, change, has_change, finish](error_code ec) mutable {
                    if (ec || !has_change) return finish(ec);
                    volume_.async_set_attributes(path, change, finish);
                });
            if (!(to_set & FUSE_SET_ATTR_SIZE)) return attributes(error_code{});
            const auto size = static_cast<std::uint64_t>(attr.st_size);
            if (open_file* h = fi ? handle(fi) : nullptr; h && h->writable) {
                std::unique_lock lock(h->mutex);
                if (h->file.is_open()) {
                    std::error_code ec;
                    h->file.resize(size, ec);
                    mark_changed(*h);
                    lock.unlock();
                    return attributes(error_code(ec));
                }
            }
            // Through a handle whose file a flush closed: by path, as the last close left it.
            if (fi)
                return settled(path, [this, path, size, attributes]() mutable {
                    volume_.async_resize_file(path, size, std::move(attributes));
                });
            volume_.async_resize_file(path, size, attributes);
        }
    }

    static void statfs(fuse_req_t req) {
        struct statvfs s;
        std::memset(&s, 0, sizeof s);
        // A bucket has no size: report a large, constant one so that tools do not refuse.
        s.f_bsize = s.f_frsize = 4096;
        s.f_blocks = s.f_bfree = s.f_bavail = std::uint64_t(1) << 38; // 1 PiB
        s.f_files = s.f_ffree = s.f_favail = std::uint64_t(1) << 32;
        s.f_namemax = max_name_length;
        fuse_reply_statfs(req, &s);
    }

    // ---- names -------------------------------------------------------------------------------

    void readlink(fuse_req_t req, fuse_ino_t ino) {
        std::string path;
        if (!path_of(req, ino, path)) return;
        interruptible(
            req, [&](auto done) { volume_.async_read_symlink(path, std::move(done)); },
            [req](error_code ec, std::string target) {
                if (ec) return reply_error(req, ec);
                fuse_reply_readlink(req, target.c_str());
            });
    }

    void mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
        if constexpr (!writable) {
            fuse_reply_err(req, EROFS);
        } else {
            if (!S_ISREG(mode)) return (void)fuse_reply_err(req, EPERM); // no devices or fifos
            std::string path;
            if (!child_path(req, parent, name, path)) return;
            volume_.async_create_file(path, creation_mode(req, mode),
                                      tracked([this, req, path](error_code ec, file_status st) {
                                          if (ec) return reply_failure(req, ec, "mknod", path);
                                          reply_entry_with(req, path, st);
                                      }));
        }
    }

    void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
        if constexpr (!writable) {
            fuse_reply_err(req, EROFS);
        } else {
            std::string path;
            if (!child_path(req, parent, name, path)) return;
            volume_.async_create_directory(path, creation_mode(req, mode),
                                           tracked([this, req, path](error_code ec) {
                                               if (ec) return reply_failure(req, ec, "mkdir", path);
                                               reply_entry(req, path);
                                           }));
        }
    }

    void symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
        if constexpr (!writable) {
            fuse_reply_err(req, EROFS);
        } else {
            std::string path;
            if (!child_path(req, parent, name, path)) return;
            volume_.async_create_symlink(target, path, tracked([this, req, path](error_code ec) {
                                             if (ec) return reply_failure(req, ec, "symlink", path);
                                             reply_entry(req, path);
                                         }));
        }
    }

    /// unlink (`directory` false) or rmdir.
    void remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool directory) {
        if constexpr (!writable) {
            fuse_reply_err(req, EROFS);
        } else {
            std::string path;
            if (!child_path(req, parent, name, path)) return;
            settled(path, [this, req, path, directory] {
                volume_.async_remove(path, directory ? removal::directory : removal::file,
                                     tracked([this, req, path](error_code ec) {
                                         if (!ec) inodes_.removed(path);
                                         reply_failure(req, ec, "removal", path);
                                     }));
            });
        }
    }

    void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                const char* new_name, unsigned int flags) {
        if constexpr (!writable) {
            fuse_reply_err(req, EROFS);
        } else {
            if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE))
                return (void)fuse_reply_err(req, EINVAL); // RENAME_EXCHANGE, RENAME_WHITEOUT
            std::string from, to;
            if (!child_path(req, parent, name, from) || !child_path(req, new_parent, new_name, to))
                return;
            const rename_mode how =
                flags & RENAME_NOREPLACE ? rename_mode::no_replace : rename_mode::replace;
            settled(from, [this, req, from, to, how] {
                settled(to, [this, req, from, to, how] {
                    volume_.async_rename(
                        from, to, how, tracked([this, req, from, to](error_code ec) {
                            if (!ec) inodes_.renamed(from, to);
                            reply_failure(req, ec, "rename to '/" + to + "'", from);
                        }));
                });
            });
        }
    }

    // ---- files -------------------------------------------------------------------------------

    /// The permissions a new file or directory gets: what was asked, less the caller's umask.
    static std::uint32_t creation_mode(fuse_req_t req, mode_t mode) {
        const fuse_ctx* ctx = fuse_req_ctx(req);
        return static_cast<std::uint32_t>(mode & ~(ctx ? ctx->umask : 022) & 07777);
    }

    static open_mode open_mode_of(int flags) {
        open_mode how = open_mode::read;
        if ((flags & O_ACCMODE) != O_RDONLY) {
            how = open_mode::write_access;
            if ((flags & O_ACCMODE) == O_RDWR) how = how | open_mode::read;
            if (flags & O_TRUNC) how = how | open_mode::truncate;
            if (flags & O_APPEND) how = how | open_mode::append_bit;
        }
        return how;
    }

    /// Wraps an opened file in a handle and replies; closes it if the kernel went away.
    void reply_open(fuse_req_t req, std::string path, file f, fuse_file_info fi,
                    const fuse_entry_param* entry) {
        auto* h = keep(std::make_unique<open_file>());
        h->path = std::move(path);
        const error_context where = f.where();
        h->store = where.store;
        h->bucket = where.bucket;
        h->key = where.key;
        h->file = std::move(f);
        h->writable = (fi.flags & O_ACCMODE) != O_RDONLY;
        h->append = (fi.flags & O_APPEND) != 0;
        fi.fh = handle_value(h);
        fi.keep_cache = 0; // another node may have changed the object since the last open
        const int failed = entry ? fuse_reply_create(req, entry, &fi) : fuse_reply_open(req, &fi);
        if (failed) {
            if (entry) inodes_.forget(entry->ino, 1);
            h->file.async_close(tracked([this, h](error_code) { drop(h); }));
        }
    }

    void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info fi) {
        std::string path;
        if (!path_of(req, ino, path)) return;
        settled(path, [this, req, path, fi] { open_settled(req, path, fi); });
    }
    void open_settled(fuse_req_t req, const std::string& path, fuse_file_info fi) {
        const open_mode how = open_mode_of(fi.flags);
        auto opened = [this, req, path, fi](error_code ec, file f) {
            if (ec) return reply_failure(req, ec, "open", path);
            reply_open(req, path, std::move(f), fi, nullptr);
        };
        if (!has(how, open_mode::write_access))
            return interruptible(
                req, [&](auto done) { volume_.async_open(path, std::move(done)); },
                std::move(opened));
        if (read_only()) return (void)fuse_reply_err(req, EROFS);
        if constexpr (writable) volume_.async_open(path, how, tracked(std::move(opened)));
    }

    void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                fuse_file_info fi) {
        if constexpr (!writable) {
            fuse_reply_err(req, EROFS);
        } else {
            std::string path;
            if (!child_path(req, parent, name, path)) return;
            open_mode how = open_mode_of(fi.flags) | open_mode::write_access | open_mode::create;
            if (fi.flags & O_EXCL) how = how | open_mode::exclusive;
            const std::uint32_t permissions = creation_mode(req, mode);
            settled(path, [this, req, path, fi, how, permissions] {
                volume_.async_open(
                    path, how, permissions, tracked([this, req, path, fi](error_code ec, file f) {
                        if (ec) return reply_failure(req, ec, "creation", path);
                        const fuse_entry_param e = entry_of(inodes_.remember(path), f.status());
                        reply_open(req, path, std::move(f), fi, &e);
                    }));
            });
        }
    }

    void read(fuse_req_t req, open_file* h, std::size_t size, off_t offset) {
        auto buffer = std::make_shared<skyvol::detail::mapped_buffer>(read_buffers_.acquire(size));
        const auto at = static_cast<std::uint64_t>(offset);
        const auto into = boost::asio::buffer(buffer->data(), size);
        interruptible(
            req,
            [&](auto done) {
                std::lock_guard lock(h->mutex);
                if (h->file.is_open())
                    h->file.async_read_at(at, into, std::move(done));
                else
                    volume_.async_read(h->path, at, into, std::move(done));
            },
            [this, req, buffer, path = h->path](error_code ec, std::size_t n) {
                if (ec)
                    reply_failure(req, ec, "read", path);
                else
                    fuse_reply_buf(req, buffer->data(), n);
                read_buffers_.recycle(std::move(*buffer));
            });
    }

    void write(fuse_req_t req, open_file* h, const char* data, std::size_t size, off_t offset) {
        if constexpr (!writable) {
            fuse_reply_err(req, EROFS);
        } else {
            if (!h->writable) return (void)fuse_reply_err(req, EBADF);
            {
                std::lock_guard lock(h->mutex);
                if (h->file.is_open()) return write_open(req, *h, data, size, offset);
            }
            // Written after a flush closed it (another descriptor of the same open file):
            // reopen with the content as committed. `data` lives only until we return.
            auto copy = std::make_shared<std::string>(data, size);
            open_mode how = open_mode::read_write;
            if (h->append) how = how | open_mode::append_bit;
            settled(h->path, [this, req, h, copy, offset, how] {
                volume_.async_open(h->path, how,
                                   tracked([this, req, h, copy, offset](error_code ec, file f) {
                                       if (ec) return reply_failure(req, ec, "reopen", h->path);
                                       std::lock_guard lock(h->mutex);
                                       if (!h->file.is_open()) h->file = std::move(f);
                                       write_open(req, *h, copy->data(), copy->size(), offset);
                                   }));
            });
        }
    }

    /// Writes into the staging copy (local disk) and replies; `h.mutex` is held.
    void write_open(fuse_req_t req, open_file& h, const char* data, std::size_t size,
                    off_t offset) {
        std::error_code ec;
        const std::uint64_t at = h.append ? h.file.size() : static_cast<std::uint64_t>(offset);
        const std::size_t n = h.file.write_at(at, boost::asio::buffer(data, size), ec);
        mark_changed(h);
        if (ec) return reply_error(req, ec);
        fuse_reply_write(req, n);
    }

    /// What close(2) and fsync(2) report when the upload (or journaling) failed: EIO, as for a
    /// disk that failed to write, except for a full local disk.
    static int commit_errno(const error_code& ec) {
        if (!ec) return 0;
        const int e = to_errno(std::error_code(ec));
        return e == ENOSPC || e == EDQUOT ? e : EIO;
    }

    /// flush (on every close(2)) commits what was written, so that close reports the upload;
    /// release commits what is left and frees the handle. A flush of a handle that only its
    /// open changed (O_CREAT, O_TRUNC) commits nothing: `cmd > f` and `dd of=f` open, duplicate
    /// the descriptor and close the original before writing, and committing then would replace
    /// the old object with an empty one before the new content is safe (and upload twice).
    /// A later request about the path commits such a handle first (`settled`), so this mount
    /// shows what close(2) left.
    void close(fuse_req_t req, open_file* h, bool release) {
        deferred_.forget(h); // committed here, or nothing to commit
        std::unique_lock lock(h->mutex);
        if (!h->file.is_open() || !h->writable) {
            lock.unlock();
            if (release) drop(h); // a reader's file closes without I/O
            return (void)fuse_reply_err(req, 0);
        }
        if (!release && !h->changed) {
            // Under the lock: a settle must not miss it. No release before this flush's reply.
            deferred_.defer(h);
            h->deferred = true;
            lock.unlock();
            return (void)fuse_reply_err(req, 0);
        }
        h->changed = false; // what arrives from here on reopens the file (see `write`)
        h->deferred = false;
        const std::string path = h->path;
        deferred_.started(path);
        // Closed with the lock released: a release's completion frees `h` (and its mutex), and
        // it may run on another thread before async_close returns.
        file closing = std::exchange(h->file, file());
        lock.unlock();
        closing.async_close(tracked([this, req, h, release, path](error_code ec) {
            if (ec)
                options_.log(log_level::error, "close of '/" + h->path + "' failed; " +
                                                   describe(ec, {h->store, h->bucket, h->key, {}}));
            deferred_.ended(path);
            if (release) {
                drop(h);
                fuse_reply_err(req, 0); // the kernel ignores release errors: flush reported it
            } else {
                fuse_reply_err(req, commit_errno(ec));
            }
        }));
    }

    /// `h` was written or resized (`h.mutex` is held): a flush that deferred its commit no longer
    /// speaks for it.
    void mark_changed(open_file& h) {
        h.changed = true;
        if (std::exchange(h.deferred, false)) deferred_.undefer(&h);
    }

    /// Runs `then` once `path` is as the last close(2) of it left it: deferred handles of it
    /// committed, and no commit of it under way (see deferred_commits.hpp).
    void settled(const std::string& path, std::function<void()> then) {
        deferred_.settle(
            path,
            [this, path](file f) {
                const error_context where = f.where();
                const std::string store(where.store), bucket(where.bucket), key(where.key);
                f.async_close(tracked([this, path, store, bucket, key](error_code ec) {
                    if (ec)
                        options_.log(log_level::error, "close of '/" + path + "' failed; " +
                                                           describe(ec, {store, bucket, key, {}}));
                    deferred_.ended(path);
                }));
            },
            std::move(then));
    }

    void fsync(fuse_req_t req, open_file* h) {
        std::lock_guard lock(h->mutex);
        if (!h->writable || !h->file.is_open()) return (void)fuse_reply_err(req, 0);
        h->file.async_sync(tracked([this, req, h](error_code ec) {
            if (ec)
                options_.log(log_level::error, "fsync of '/" + h->path + "' failed; " +
                                                   describe(ec, {h->store, h->bucket, h->key, {}}));
            fuse_reply_err(req, commit_errno(ec));
        }));
    }

    // ---- directories -------------------------------------------------------------------------

    void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info fi) {
        std::string path;
        if (!path_of(req, ino, path)) return;
        // No HEAD per entry here: find needs names and types only, and ls -l's stats ask ahead.
        interruptible(
            req,
            [&](auto done) {
                volume_.async_directory(path, listing_detail::listed, std::move(done));
            },
            [this, req, path, fi](error_code ec, std::vector<directory_entry> entries) mutable {
                if (ec) return reply_failure(req, ec, "listing", path);
                auto* d = keep(
                    std::make_unique<open_directory>(open_directory{path, std::move(entries)}));
                fi.fh = handle_value(d);
                if (fuse_reply_open(req, &fi) != 0) drop(d);
            });
    }

    /// The d_type bits of an entry: none (DT_UNKNOWN) where the listing cannot tell a symlink
    /// from a file, so find and ls stat it rather than trust a wrong type.
    static mode_t listed_type(const directory_entry& entry) {
        return entry.may_be_symlink() ? 0 : entry.status().mode() & S_IFMT;
    }

    /// Entries 0 and 1 are "." and ".."; offsets are indexes into the listing taken at opendir.
    void readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t offset,
                 const open_directory& d, bool plus) {
        std::vector<char> buffer(size);
        std::size_t used = 0;
        for (std::size_t i = static_cast<std::size_t>(offset); i < d.entries.size() + 2; ++i) {
            const bool dots = i < 2;
            const std::string name(i == 0 ? "." : i == 1 ? ".." : d.entries[i - 2].filename());
            const auto next = static_cast<off_t>(i + 1);
            std::size_t need = 0;
            if (plus) {
                need = fuse_add_direntry_plus(req, nullptr, 0, name.c_str(), nullptr, 0);
                if (used + need > size) break;
                fuse_entry_param e;
                std::memset(&e, 0, sizeof e);
                if (dots) {
                    e.attr.st_ino = ino;
                    e.attr.st_mode = S_IFDIR;
                } else if (const directory_entry& entry = d.entries[i - 2]; !entry.complete()) {
                    // Node id 0: a name and type only, no inode; a stat looks it up in full.
                    e.attr.st_ino = std::hash<std::string>{}(entry.path()) | 1;
                    e.attr.st_mode = listed_type(entry);
                } else {
                    e = entry_of(inodes_.remember(entry.path()), entry.status());
                }
                fuse_add_direntry_plus(req, buffer.data() + used, size - used, name.c_str(), &e,
                                       next);
            } else {
                struct stat s;
                std::memset(&s, 0, sizeof s);
                s.st_ino = dots ? ino : std::hash<std::string>{}(d.entries[i - 2].path()) | 1;
                s.st_mode = dots ? S_IFDIR : listed_type(d.entries[i - 2]);
                need = fuse_add_direntry(req, buffer.data() + used, size - used, name.c_str(), &s,
                                         next);
                if (used + need > size) break;
            }
            used += need;
        }
        fuse_reply_buf(req, buffer.data(), used);
    }

    // ---- control: the tool asks a mount to flush through its root's extended attributes ----

    void setxattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
        if (ino != inode_table::root) return (void)fuse_reply_err(req, ENOTSUP);
        const bool flushing = std::string_view(name) == control::flush;
        const std::string attribute(name);
        interruptible(
            req, [&](auto done) { control::async_write(volume_, attribute, std::move(done)); },
            [this, req, flushing](error_code ec) {
                if (ec && flushing) {
                    const std::string why = *control::value_of(volume_, control::upload_error);
                    options_.log(log_level::error, "flush failed, uploads stay queued: " +
                                                       (why.empty() ? ec.message() : why));
                }
                reply_error(req, ec);
            });
    }

    void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, std::size_t size) {
        std::optional<std::string> value;
        if (ino == inode_table::root) value = control::value_of(volume_, name);
        if (!value) return (void)fuse_reply_err(req, ENODATA);
        if (size == 0) return (void)fuse_reply_xattr(req, value->size());
        if (size < value->size()) return (void)fuse_reply_err(req, ERANGE);
        fuse_reply_buf(req, value->data(), value->size());
    }

    Volume& volume_;
    mount_options options_;
    inode_table inodes_;
    /// Reply buffers, reused: at 1 MiB per read request, fresh ones would fault in every page.
    skyvol::detail::buffer_pool read_buffers_{16u << 20};
    std::mutex handles_mutex_; ///< guards the two maps; no other lock is taken under it
    /// What the kernel holds. A connection that ends without releases (an abort) leaves its
    /// handles here, and their destruction closes them: a writer's close commits what it wrote.
    owned_handles<open_file> files_;
    deferred_commits<open_file> deferred_; ///< handles whose flush left the commit to release
    owned_handles<open_directory> directories_;
};

} // namespace skyvol::fuse::detail

#endif
