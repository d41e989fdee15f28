#ifndef SKYVOL_FUSE_CONTROL_HPP
#define SKYVOL_FUSE_CONTROL_HPP

/// @file
/// The extended attributes on a mount's root through which a running mount is asked and told
/// things (`skyvol unmount` and `skyvol flush` use them; so can any program, with getfattr and
/// setfattr).

namespace skyvol::fuse::control {

/// Read: how many closed files are not in the bucket yet (write-back; "0" otherwise).
inline constexpr char pending[] = "user.skyvol.pending";
/// Read: the process id serving the mount.
inline constexpr char pid[] = "user.skyvol.pid";
/// Read: the cache folder, where a write-back mount keeps closed files until they are uploaded.
inline constexpr char cache_dir[] = "user.skyvol.cache_dir";
/// Write (any value): returns once every closed file is uploaded, or with the upload's error.
inline constexpr char flush[] = "user.skyvol.flush";

} // namespace skyvol::fuse::control

#endif
