#ifndef SKYVOL_MOUNT_HPP
#define SKYVOL_MOUNT_HPP

/// @file
/// The common case in one call: a store from its URI, a volume in a mode, mounted at a path.
///
///     auto m = skyvol::mount<skyvol::local_store, skyvol::mode::write_back>(
///         "file:///srv/bucket", "/data", volume_options);
///
/// The result owns the volume and the mount; its destruction flushes and unmounts.

#include <skyvol/fuse/mount.hpp>
#include <skyvol/volume.hpp>

#include <memory>
#include <string_view>

namespace skyvol {

template <object_store Store, storage_mode Mode, cache_policy Cache = typename Mode::default_cache>
class mounted_volume {
public:
    using volume_type = volume<Store, Mode, Cache>;

    mounted_volume(std::unique_ptr<volume_type> vol, fuse::mount_handle handle)
        : volume_(std::move(vol))
        , mount_(std::move(handle)) {}

    volume_type& get_volume() noexcept { return *volume_; }
    fuse::mount_handle& handle() noexcept { return mount_; }
    const std::string& path() const { return mount_.path(); }

    /// Flushes and unmounts; see `fuse::mount_handle::unmount`.
    void unmount(std::error_code& ec) { mount_.unmount(ec); }
    void unmount() { mount_.unmount(); }

private:
    std::unique_ptr<volume_type> volume_;
    fuse::mount_handle mount_; ///< declared last: unmounted before the volume goes
};

/// Opens `Store::from_uri(uri)`, makes a `volume<Store, Mode>` on it and mounts it at
/// `mountpoint`. Throws `skyvol::error` saying what is wrong.
template <object_store Store, storage_mode Mode, cache_policy Cache = typename Mode::default_cache>
mounted_volume<Store, Mode, Cache> mount(std::string_view uri, std::string_view mountpoint,
                                         volume_options options = {},
                                         fuse::mount_options mounting = {}) {
    using volume_type = volume<Store, Mode, Cache>;
    auto vol = std::make_unique<volume_type>(Store::from_uri(uri), std::move(options));
    if (mounting.source.empty()) mounting.source = std::string(uri);
    auto handle = fuse::mount(*vol, mountpoint, std::move(mounting));
    return mounted_volume<Store, Mode, Cache>(std::move(vol), std::move(handle));
}

} // namespace skyvol

#endif
