#ifndef SKYVOL_FUSE_DETAIL_SESSION_HPP
#define SKYVOL_FUSE_DETAIL_SESSION_HPP

/// @file
/// One kernel mount: checks the mount point, mounts, runs libfuse's multi-threaded loop on a
/// thread of its own, and takes it all down again.

#include <skyvol/error.hpp>
#include <skyvol/fuse/detail/filesystem.hpp>
#include <skyvol/fuse/detail/fuse_api.hpp>
#include <skyvol/fuse/detail/kernel_read_ahead.hpp>
#include <skyvol/fuse/mount_point.hpp>
#include <skyvol/fuse/options.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace skyvol::fuse::detail {

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
    /// Lazily detaches the mount; true once the mount point is not ours any more. A connection
    /// aborted from outside leaves its mount in place, and this removes it too.
    bool detach() const {
        const std::error_code ec = unmount_mount_point(mountpoint_, true);
        return !ec || ec == std::errc::invalid_argument; // EINVAL: nothing mounted there now
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
