#ifndef SKYVOL_FS_PATH_HPP
#define SKYVOL_FS_PATH_HPP

/// @file
/// Volume paths: what a caller writes ("/train/0001.jpg", "logs//a/./b") reduced to one
/// canonical relative form ("train/0001.jpg"; "" is the root), and the keys behind it.

#include <skyvol/error.hpp>
#include <skyvol/store/key.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace skyvol {

/// Longest name of one path component, as on Linux filesystems.
inline constexpr std::size_t max_name_length = 255;

/// Canonical relative path: leading, doubled and trailing '/' and "." segments go; ".." is
/// refused (a volume has no way out), as are NUL and components over 255 bytes.
inline std::string normalize_path(std::string_view path, std::error_code& ec) {
    ec.clear();
    std::string out;
    for (std::size_t start = 0; start <= path.size();) {
        const std::size_t end = std::min(path.find('/', start), path.size());
        const std::string_view name = path.substr(start, end - start);
        start = end + 1;
        if (name.empty() || name == ".") continue;
        if (name == ".." || name.find('\0') != std::string_view::npos) {
            ec = errc::invalid_argument;
            return {};
        }
        if (name.size() > max_name_length) {
            ec = errc::name_too_long;
            return {};
        }
        if (!out.empty()) out += '/';
        out.append(name);
    }
    if (!is_valid_utf8(out)) ec = errc::invalid_argument;
    return out;
}

/// "a/b/c" -> "a/b"; "a" -> ""; "" -> "".
inline std::string_view parent_of(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash);
}

/// "a/b/c" -> "c".
inline std::string_view name_of(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

/// True if `path` is `dir` or lies under it.
inline bool is_within(std::string_view path, std::string_view dir) {
    if (dir.empty()) return true;
    return path == dir ||
           (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/');
}

/// "a" + "b" -> "a/b"; "" + "b" -> "b".
inline std::string join_path(std::string_view dir, std::string_view name) {
    std::string out(dir);
    if (!out.empty()) out += '/';
    out.append(name);
    return out;
}

} // namespace skyvol

#endif
