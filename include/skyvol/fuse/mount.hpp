#ifndef SKYVOL_FUSE_MOUNT_HPP
#define SKYVOL_FUSE_MOUNT_HPP

/// @file
/// Mounts a volume at a path through libfuse3:
///
///     skyvol::volume<skyvol::local_store, skyvol::mode::write_back> vol(store, options);
///     auto m = skyvol::fuse::mount(vol, "/data");
///     // ... /data is the bucket; m.unmount() or m's destruction flushes and unmounts.
///
/// The volume must outlive the mount. Read-only and copy volumes mount `ro` and answer EROFS to
/// every change.

#include <skyvol/error.hpp>
#include <skyvol/fuse/detail/filesystem.hpp>
#include <skyvol/fuse/detail/session.hpp>
#include <skyvol/fuse/mount_point.hpp>
#include <skyvol/fuse/options.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace skyvol::fuse {

/// A live mount. Its destruction flushes pending uploads (write-back) and unmounts.
class mount_handle {
public:
    mount_handle() = default;
    explicit mount_handle(std::unique_ptr<detail::session> session)
        : session_(std::move(session)) {}
    mount_handle(mount_handle&&) noexcept = default;
    mount_handle& operator=(mount_handle&& other) noexcept {
        if (this != &other) {
            std::error_code ignored;
            unmount(ignored);
            session_ = std::move(other.session_);
        }
        return *this;
    }
    ~mount_handle() {
        std::error_code ignored;
        unmount(ignored);
    }

    /// The absolute mount point.
    const std::string& path() const {
        static const std::string none;
        return session_ ? session_->mountpoint() : none;
    }
    /// False once unmounted, here or from outside (`umount`, `fusermount3 -u`).
    bool mounted() const { return session_ && session_->running(); }

    /// Blocks until the mount ends from outside.
    void wait() {
        if (session_) session_->wait();
    }
    /// Blocks until the mount ends from outside, or `timeout`; true if it ended.
    bool wait_for(std::chrono::milliseconds timeout) {
        return !session_ || session_->wait(timeout);
    }

    /// Waits for pending uploads, then unmounts. If the uploads fail the mount ends anyway
    /// and `ec` says why; the files stay in the cache folder for the next volume on it.
    void unmount(std::error_code& ec) {
        ec.clear();
        if (!session_) return;
        session_->stop(true, ec);
        session_.reset();
    }
    void unmount() {
        const std::string where = path();
        std::error_code ec;
        unmount(ec);
        detail_throw(ec, "unmount of " + where + ": uploads failed; they stay in the cache");
    }

private:
    static void detail_throw(const std::error_code& ec, const std::string& what) {
        skyvol::detail::throw_if(ec, {"fuse", {}, {}, what});
    }
    std::unique_ptr<detail::session> session_;
};

/// Mounts `volume` at `mountpoint`; `ec` says what was wrong (see `mount_point_problem`).
template <class Volume>
mount_handle mount(Volume& volume, std::string_view mountpoint, mount_options options,
                   std::error_code& ec) {
    auto fs = std::make_unique<detail::filesystem<Volume>>(volume, options);
    auto session =
        std::make_unique<detail::session>(std::move(fs), std::string(mountpoint), options, ec);
    if (ec) return {};
    return mount_handle(std::move(session));
}

/// Mounts `volume` at `mountpoint`; throws `skyvol::error` with a sentence saying what is wrong.
template <class Volume>
mount_handle mount(Volume& volume, std::string_view mountpoint, mount_options options = {}) {
    std::error_code ec;
    mount_handle m = mount(volume, mountpoint, std::move(options), ec);
    if (ec) {
        const std::string why = mount_point_problem(ec, std::string(mountpoint));
        skyvol::detail::throw_if(ec, {"fuse", {}, {}, why});
    }
    return m;
}

} // namespace skyvol::fuse

#endif
