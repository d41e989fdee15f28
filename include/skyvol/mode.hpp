#ifndef SKYVOL_MODE_HPP
#define SKYVOL_MODE_HPP

/// @file
/// Storage modes and cache policies: types, so that what a mode cannot do does not compile.
///
/// | mode                  | users know it as | writes                                  | reads |
/// |-----------------------|------------------|-----------------------------------------|------------------|
/// | `mode::read_only`     | read-only mount  | none (no mutating member compiles)      | streamed
/// | | `mode::write_through` | MOUNT            | staged locally, uploaded on close/fsync |
/// streamed         | | `mode::copy`          | COPY             | none | from a local copy of the
/// prefix, fetched at open | | `mode::write_back`    | MOUNT_CACHED     | journaled locally,
/// uploaded in the background in close order | through the disk cache |
///
/// The cache policy is the volume's third parameter and defaults per mode. `cache::none` streams
/// every read; `cache::memory` keeps recently read blocks in RAM; `cache::disk` keeps whole
/// objects on local disk. Sizes are runtime options. Modes that live on local disk (copy,
/// write_back) require `cache::disk`: any other choice is a compile error.

#include <concepts>
#include <type_traits>

namespace skyvol {

namespace cache {
/// Every read goes to the store.
struct none {
    static constexpr const char* name = "none";
};
/// Recently read blocks stay in memory, up to `cache_options::memory_bytes`.
struct memory {
    static constexpr const char* name = "memory";
};
/// Whole objects stay on local disk under `volume_options::cache_dir`, up to
/// `cache_options::disk_bytes`, checked against the store's ETag on open.
struct disk {
    static constexpr const char* name = "disk";
};
} // namespace cache

/// A cache policy type.
template <class C>
concept cache_policy =
    std::same_as<C, cache::none> || std::same_as<C, cache::memory> || std::same_as<C, cache::disk>;

namespace mode {
struct read_only {
    static constexpr const char* name = "read-only";
    static constexpr bool writable = false;
    static constexpr bool local_copy = false;
    static constexpr bool deferred_upload = false;
    using default_cache = cache::none;
};
struct write_through {
    static constexpr const char* name = "mount";
    static constexpr bool writable = true;
    static constexpr bool local_copy = false;
    static constexpr bool deferred_upload = false;
    using default_cache = cache::none;
};
struct copy {
    static constexpr const char* name = "copy";
    static constexpr bool writable = false;
    static constexpr bool local_copy = true;
    static constexpr bool deferred_upload = false;
    using default_cache = cache::disk;
};
struct write_back {
    static constexpr const char* name = "mount-cached";
    static constexpr bool writable = true;
    static constexpr bool local_copy = false;
    static constexpr bool deferred_upload = true;
    using default_cache = cache::disk;
};
} // namespace mode

/// A storage mode type.
template <class M>
concept storage_mode = std::same_as<M, mode::read_only> || std::same_as<M, mode::write_through> ||
    std::same_as<M, mode::copy> || std::same_as<M, mode::write_back>;

/// Modes with a write path: mutating members of `volume` require it.
template <class M>
concept writable_mode = storage_mode<M> && M::writable;

/// Modes whose closed files upload in the background: `flush()` waits for them.
template <class M>
concept write_back_mode = storage_mode<M> && M::deferred_upload;

/// Modes that prefetch the prefix to local disk: `refresh()` re-syncs it.
template <class M>
concept local_copy_mode = storage_mode<M> && M::local_copy;

/// Whether a mode and a cache policy go together: local-disk modes need the disk cache.
template <class M, class C>
concept mode_accepts_cache = storage_mode<M> && cache_policy<C> &&
    (!(M::local_copy || M::deferred_upload) || std::same_as<C, cache::disk>);

} // namespace skyvol

#endif
