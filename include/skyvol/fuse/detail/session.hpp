#ifndef SKYVOL_FUSE_DETAIL_SESSION_HPP
#define SKYVOL_FUSE_DETAIL_SESSION_HPP

/// @file
/// One kernel mount: checks the mount point, mounts, runs libfuse's multi-threaded loop on a
/// thread of its own, and takes it all down again.

#include <skyvol/error.hpp>
#include <skyvol/fuse/detail/filesystem.hpp>
#include <skyvol/fuse/detail/fuse_api.hpp>
#include <skyvol/fuse/detail/kernel_read_ahead.hpp>
#include <skyvol/fuse/options.hpp>

#include <dirent.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace skyvol::fuse::detail {

/// Mount points are listed in /proc/self/mountinfo with octal escapes for space, tab, newline
/// and backslash.
inline std::string unescape_mountinfo(const std::string& field) {
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            const std::string digits = field.substr(i + 1, 3);
            if (digits.find_first_not_of("01234567") == std::string::npos) {
                out += static_cast<char>(std::stoi(digits, nullptr, 8));
                i += 3;
                continue;
            }
        }
        out += field[i];
    }
    return out;
}

/// The file system type mounted at `path` ("fuse.skyvol", "ext4"...), or empty if none is.
inline std::string mounted_type(const std::string& path) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line, found;
    while (std::getline(in, line)) {
        // id parent major:minor root mount-point options [optional...] - type source super
        std::vector<std::string> fields;
        std::size_t start = 0;
        while (start <= line.size()) {
            const std::size_t end = std::min(line.find(' ', start), line.size());
            fields.push_back(line.substr(start, end - start));
            start = end + 1;
        }
        if (fields.size() < 7 || unescape_mountinfo(fields[4]) != path) continue;
        for (std::size_t i = 6; i + 1 < fields.size(); ++i)
            if (fields[i] == "-") found = fields[i + 1]; // the last mount there wins
    }
    return found;
}

/// Checks that `path` can take a mount; its absolute form goes to `absolute`.
inline std::error_code check_mount_point(const std::string& path, bool nonempty,
                                         std::string& absolute) {
    char resolved[PATH_MAX];
    if (!::realpath(path.c_str(), resolved)) {
        if (errno == ENOTCONN) return std::make_error_code(std::errc::not_connected); // stale
        return errno == ENOENT ? make_error_code(errc::not_found)
                               : std::error_code(errno, std::system_category());
    }
    absolute = resolved;
    struct stat st;
    if (::stat(resolved, &st) != 0) return std::error_code(errno, std::system_category());
    if (!S_ISDIR(st.st_mode)) return make_error_code(errc::not_a_directory);
    if (!mounted_type(absolute).empty())
        return std::make_error_code(std::errc::device_or_resource_busy);
    if (!nonempty) {
        DIR* dir = ::opendir(resolved);
        if (!dir) return std::error_code(errno, std::system_category());
        bool empty = true;
        while (dirent* e = ::readdir(dir))
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
                empty = false;
                break;
            }
        ::closedir(dir);
        if (!empty) return make_error_code(errc::not_empty);
    }
    return {};
}

/// A sentence for what `check_mount_point` or mounting found wrong with `path`.
inline std::string mount_point_problem(const std::error_code& ec, const std::string& path) {
    if (ec == std::errc::not_connected)
        return "mount point '" + path +
               "' is a stale mount whose process died; run `skyvol unmount " + path + "` first";
    if (ec == errc::not_found) return "mount point '" + path + "' does not exist";
    if (ec == errc::not_a_directory) return "mount point '" + path + "' is not a directory";
    if (ec == std::errc::device_or_resource_busy)
        return "'" + path + "' is already a mount point; unmount it first";
    if (ec == errc::not_empty)
        return "mount point '" + path +
               "' is not empty (its files would be hidden; pass -o nonempty to mount anyway)";
    return "cannot mount at '" + path + "': " + ec.message();
}

class session {
public:
    static constexpr std::uint32_t default_read_ahead_kb = 1024; ///< see mount_options

    session(std::unique_ptr<filesystem_base> fs, std::string mountpoint,
            const mount_options& options, std::error_code& ec)
        : fs_(std::move(fs)) {
        ec = check_mount_point(mountpoint, options.nonempty, mountpoint_);
        if (ec) return;
        const std::string source = options.source.empty() ? std::string("skyvol") : options.source;
        std::string o = "subtype=skyvol,fsname=" + escape(source);
        if (fs_->read_only()) o += ",ro";
        if (options.allow_other) o += ",allow_other";
        if (options.default_permissions) o += ",default_permissions";
        for (const auto& extra : options.extra)
            o += "," + escape(extra);
        std::vector<std::string> argv_text = {"skyvol", "-o", o};
        std::vector<char*> argv;
        for (auto& a : argv_text)
            argv.push_back(a.data());
        fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
        const fuse_lowlevel_ops& ops = fs_->operations();
        se_ = fuse_session_new(&args, &ops, sizeof ops, fs_.get());
        fuse_opt_free_args(&args);
        if (!se_) {
            ec = errc::invalid_config; // libfuse printed which option it refused
            return;
        }
        if (fuse_session_mount(se_, mountpoint_.c_str()) != 0) {
            fuse_session_destroy(se_);
            se_ = nullptr;
            ec = std::make_error_code(std::errc::operation_not_permitted);
            return;
        }
        const unsigned max_threads = std::max(1u, options.max_threads);
        loop_ = std::thread([this, max_threads] {
            fuse_loop_config* config = fuse_loop_cfg_create();
            fuse_loop_cfg_set_max_threads(config, max_threads);
            fuse_loop_cfg_set_idle_threads(config, std::min(max_threads, 4u));
            fuse_session_loop_mt(se_, config);
            fuse_loop_cfg_destroy(config);
            std::lock_guard lock(mutex_);
            ended_ = true;
            ended_cv_.notify_all();
        });
        const std::uint32_t kib = options.read_ahead_kb.value_or(default_read_ahead_kb);
        if (kib == 0) return;
        // Off the caller's thread: the stat it needs is served by the mount's own loop, and the
        // volume's answer for "/" may wait on an executor the caller runs later. Files opened
        // before it is set keep 128 KiB, so the mount is ready once it is (or after a second).
        auto tuned = std::make_shared<std::promise<void>>();
        std::future<void> done = tuned->get_future();
        tuner_ =
            std::thread([path = mountpoint_, kib, log = options.log, tuned,
                         level = options.read_ahead_kb ? log_level::warning : log_level::info] {
                std::error_code tune_ec;
                set_kernel_read_ahead(path, kib, tune_ec);
                if (tune_ec && log)
                    log(level, "read-ahead of " + std::to_string(kib) + " KiB not set on '" + path +
                                   "' (needs root): " + tune_ec.message());
                tuned->set_value();
            });
        done.wait_for(std::chrono::seconds(1));
    }

    session(const session&) = delete;
    session& operator=(const session&) = delete;
    ~session() {
        std::error_code ignored;
        stop(false, ignored);
    }

    const std::string& mountpoint() const noexcept { return mountpoint_; }

    /// True until the mount ends (unmounted here or from outside).
    bool running() const {
        std::lock_guard lock(mutex_);
        return se_ && !ended_;
    }

    /// Waits until the mount ends, or `timeout` passes; true if it ended.
    bool wait(std::chrono::milliseconds timeout = std::chrono::milliseconds::max()) {
        std::unique_lock lock(mutex_);
        if (timeout == std::chrono::milliseconds::max()) {
            ended_cv_.wait(lock, [&] { return ended_ || !se_; });
            return true;
        }
        return ended_cv_.wait_for(lock, timeout, [&] { return ended_ || !se_; });
    }

    /// Flushes (with `flush_first`), then unmounts and ends the loop. `ec` is the flush's
    /// error: the mount ends anyway and what was not uploaded stays in the cache folder.
    void stop(bool flush_first, std::error_code& ec) {
        ec.clear();
        if (!se_) return;
        if (flush_first && running()) fs_->flush(ec);
        fuse_session_exit(se_);
        // The kernel goes first and libfuse's descriptor after the loop: fuse_session_unmount
        // closes the descriptor the loop's threads read, and a file opened meanwhile would
        // take its number. Where the detach fails, libfuse's own unmount ends the loop.
        const bool detached = detach();
        if (!detached) fuse_session_unmount(se_);
        if (tuner_.joinable()) tuner_.join();
        if (loop_.joinable()) loop_.join();
        // The loop ends when the kernel goes, not when the bucket has answered: a request the
        // volume still works on replies through se_ and touches the file system when it ends.
        fs_->wait_for_completions();
        if (detached) fuse_session_unmount(se_); // closes the descriptor; the mount is gone
        fuse_session_destroy(se_);
        se_ = nullptr;
    }

private:
    /// Lazily detaches the mount (as root) or has fusermount3 do it, as libfuse would; true
    /// once the mount point is not ours any more. A connection aborted from outside leaves its
    /// mount in place, and this removes it too.
    bool detach() const {
        if (::umount2(mountpoint_.c_str(), MNT_DETACH) == 0 || errno == EINVAL) return true;
        const char* argv[] = {"fusermount3", "-u", "-q", "-z", "--", mountpoint_.c_str(), nullptr};
        pid_t pid = 0;
        if (::posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char**>(argv),
                           ::environ) != 0)
            return false;
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }

    /// libfuse splits -o at commas; a backslash keeps one.
    static std::string escape(const std::string& text) {
        std::string out;
        for (char c : text) {
            if (c == ',' || c == '\\') out += '\\';
            out += c;
        }
        return out;
    }

    std::unique_ptr<filesystem_base> fs_;
    std::string mountpoint_;
    fuse_session* se_ = nullptr;
    std::thread loop_;
    std::thread tuner_; ///< sets the kernel's read-ahead once the mount answers
    mutable std::mutex mutex_;
    std::condition_variable ended_cv_;
    bool ended_ = false;
};

} // namespace skyvol::fuse::detail

#endif
