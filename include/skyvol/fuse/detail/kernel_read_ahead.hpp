#ifndef SKYVOL_FUSE_DETAIL_KERNEL_READ_AHEAD_HPP
#define SKYVOL_FUSE_DETAIL_KERNEL_READ_AHEAD_HPP

/// @file
/// The kernel's read-ahead for a FUSE mount. It starts at 128 KiB, so a sequential reader's
/// bytes arrive in 128 KiB requests, one round trip each; a larger window lets the kernel send
/// up to 1 MiB per request and several requests at once.

#include <skyvol/error.hpp>

#include <cerrno>
#include <cstdio>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace skyvol::fuse::detail {

/// The sysfs file that holds the read-ahead of the filesystem mounted at `mountpoint`. Its
/// stat is answered by the mount itself, so this returns once the kernel has finished FUSE's
/// INIT (which would otherwise lower the window again).
inline std::string read_ahead_control(const std::string& mountpoint, std::error_code& ec) {
    ec.clear();
    struct stat st;
    if (::stat(mountpoint.c_str(), &st) != 0) {
        ec = std::error_code(errno, std::generic_category());
        return {};
    }
    return "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
           std::to_string(minor(st.st_dev)) + "/read_ahead_kb";
}

/// Sets the read-ahead of the mount at `mountpoint` to `kib` KiB. Needs root (sysfs).
inline void set_kernel_read_ahead(const std::string& mountpoint, unsigned kib,
                                  std::error_code& ec) {
    const std::string control = read_ahead_control(mountpoint, ec);
    if (ec) return;
    std::FILE* f = std::fopen(control.c_str(), "we");
    if (!f) {
        ec = std::error_code(errno, std::generic_category());
        return;
    }
    const bool written = std::fprintf(f, "%u\n", kib) > 0;
    // sysfs reports a refused value at close.
    if (std::fclose(f) != 0 || !written) ec = std::error_code(errno, std::generic_category());
}

} // namespace skyvol::fuse::detail

#endif
