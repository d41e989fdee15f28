#ifndef SKYVOL_FS_DETAIL_OBJECT_LAYOUT_HPP
#define SKYVOL_FS_DETAIL_OBJECT_LAYOUT_HPP

/// @file
/// Where a volume's paths live in the bucket, and what status a path gets when the bucket says
/// nothing of it. A file is the object `prefix + path`; a directory is the marker object
/// `prefix + path + "/"` or any key below it; the root is the prefix itself.

#include <skyvol/detail/throw.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/options.hpp>
#include <skyvol/fs/status.hpp>
#include <skyvol/store/key.hpp>
#include <skyvol/store/object_info.hpp>

#include <chrono>
#include <string>
#include <unistd.h>

namespace skyvol::detail {

class object_layout {
public:
    /// Takes the prefix (a missing trailing '/' is added; an invalid one is refused) and the
    /// attribute defaults from `options`.
    explicit object_layout(const volume_options& options)
        : prefix_(options.prefix) {
        if (!prefix_.empty() && !prefix_.ends_with('/')) prefix_ += '/';
        if (!prefix_.empty() && validate_key(prefix_)) fail(errc::invalid_config);
        defaults_.uid = options.ownership.uid.value_or(::getuid());
        defaults_.gid = options.ownership.gid.value_or(::getgid());
        defaults_.file_permissions = options.ownership.file_permissions & 07777;
        defaults_.directory_permissions = options.ownership.directory_permissions & 07777;
    }

    const std::string& prefix() const noexcept { return prefix_; }
    const attribute_defaults& defaults() const noexcept { return defaults_; }

    std::string key_of(const std::string& path) const { return prefix_ + path; }
    std::string dir_key_of(const std::string& path) const {
        return path.empty() ? prefix_ : prefix_ + path + "/";
    }

    /// The status of an object the store describes (a file, or a directory's marker).
    file_status status_of(const object_info& info, bool directory_marker) const {
        return ::skyvol::detail::status_of(info, directory_marker, defaults_);
    }

    /// A path of `type` this volume creates now, with the default owner and permissions.
    file_status new_status(file_type type) const {
        file_status st;
        st.type = type;
        st.permissions = type == file_type::directory ? defaults_.directory_permissions
                                                      : defaults_.file_permissions;
        st.uid = defaults_.uid;
        st.gid = defaults_.gid;
        st.mtime = std::chrono::system_clock::now();
        return st;
    }

private:
    std::string prefix_;
    attribute_defaults defaults_;
};

} // namespace skyvol::detail

#endif
