#ifndef SKYVOL_TESTS_SUPPORT_MOUNTS_HPP
#define SKYVOL_TESTS_SUPPORT_MOUNTS_HPP

// Real kernel mounts for tests: run the `skyvol` tool, and always leave the mount point clean.

#include <skyvol/fuse/control.hpp>
#include <skyvol/fuse/mount_point.hpp>

#include <catch2/catch.hpp>

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace skyvol::test {

struct command_result {
    int status = -1; ///< exit code, or -1 if it did not exit normally
    std::string output;
};

/// Runs a shell command; stdout and stderr together.
inline command_result run(const std::string& command) {
    command_result r;
    std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, p)) > 0)
        r.output.append(buffer, n);
    const int status = ::pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

/// A whole file's bytes ("" if it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

/// Replaces a file's bytes; the test fails if they do not all reach it.
inline void spit(const std::filesystem::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
    out.close();
    REQUIRE(out.good());
}

/// `p` as one shell word, whatever it holds.
inline std::string quoted(const std::filesystem::path& p) {
    std::string out = "'";
    for (char c : p.string())
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

inline std::string skyvol_tool() {
    return SKYVOL_TOOL_PATH;
}

/// Whether anything is mounted at `path` (mountinfo escapes spaces; mounted_type reads them).
inline bool is_mounted(const std::filesystem::path& path) {
    return !skyvol::fuse::mounted_type(path.string()).empty();
}

/// What a mount test mounts: a URI, the arguments it needs, and for the local store the
/// folder behind it (tests of other stores look at the bucket through a fresh mount instead).
struct mount_source {
    std::string uri;
    std::string args;
    std::optional<std::filesystem::path> folder;
};

inline mount_source local_source(const std::filesystem::path& folder) {
    return {"file://" + folder.string(), "", folder};
}

/// A bucket mounted through `skyvol mount`; unmounted (by force if need be) at the end.
class tool_mount {
public:
    tool_mount(const mount_source& source, const std::filesystem::path& at, const std::string& mode,
               const std::string& extra = "")
        : path_(at) {
        std::filesystem::create_directories(at);
        result_ = run(skyvol_tool() + " mount " + source.uri + " " + quoted(at) + " --mode " +
                      mode + " " + source.args + " " + extra);
    }
    tool_mount(const std::filesystem::path& bucket, const std::filesystem::path& at,
               const std::string& mode, const std::string& extra = "")
        : tool_mount(local_source(bucket), at, mode, extra) {}
    tool_mount(const tool_mount&) = delete;
    tool_mount& operator=(const tool_mount&) = delete;
    ~tool_mount() {
        if (!is_mounted(path_)) return;
        run(skyvol_tool() + " unmount " + quoted(path_));
        if (is_mounted(path_)) ::umount2(path_.c_str(), MNT_DETACH);
    }

    const command_result& result() const { return result_; }
    bool ok() const { return result_.status == 0; }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& relative) const { return path_ / relative; }

    command_result unmount() { return run(skyvol_tool() + " unmount " + quoted(path_)); }

    /// The daemon's process id, from the mount's control attribute.
    int pid() const {
        char value[32] = {};
        const ssize_t n =
            ::getxattr(path_.c_str(), skyvol::fuse::control::pid, value, sizeof value - 1);
        return n > 0 ? std::atoi(value) : -1;
    }
    std::size_t pending() const {
        char value[32] = {};
        const ssize_t n =
            ::getxattr(path_.c_str(), skyvol::fuse::control::pending, value, sizeof value - 1);
        return n > 0 ? static_cast<std::size_t>(std::atoll(value)) : 0;
    }

private:
    std::filesystem::path path_;
    command_result result_;
};

/// A tmpfs of `bytes` at `at` (created if need be), unmounted when it goes: a disk that fills.
class small_disk {
public:
    small_disk(std::filesystem::path at, std::uint64_t bytes)
        : path_(std::move(at)) {
        std::filesystem::create_directories(path_);
        const std::string options = "size=" + std::to_string(bytes);
        if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) != 0)
            FAIL("cannot mount a " << bytes << "-byte tmpfs at " << path_ << ": "
                                   << std::strerror(errno) << " (the test needs root)");
    }
    small_disk(const small_disk&) = delete;
    small_disk& operator=(const small_disk&) = delete;
    ~small_disk() { ::umount2(path_.c_str(), MNT_DETACH); }

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& relative) const { return path_ / relative; }
    /// Bytes in use on it.
    std::uint64_t used() const {
        struct statvfs fs {};
        if (::statvfs(path_.c_str(), &fs) != 0) return 0;
        return static_cast<std::uint64_t>(fs.f_blocks - fs.f_bfree) * fs.f_frsize;
    }

private:
    std::filesystem::path path_;
};

/// Regular files below `dir` whose names end with `ending` (0 if `dir` does not exist).
inline std::size_t files_in(const std::filesystem::path& dir, std::string_view ending = {}) {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        n += it->is_regular_file() && it->path().filename().string().ends_with(ending);
    return n;
}

/// `sha256sum` of every file below `dir`, by relative path: equal strings mean equal trees.
inline std::string checksums(const std::filesystem::path& dir) {
    return run("cd " + quoted(dir) +
               " && find . -path ./.skyvol.sys -prune -o -type f -print0 | sort -z | "
               "xargs -0 -r sha256sum")
        .output;
}

} // namespace skyvol::test

#endif
