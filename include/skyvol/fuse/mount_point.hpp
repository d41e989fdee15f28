#ifndef SKYVOL_FUSE_MOUNT_POINT_HPP
#define SKYVOL_FUSE_MOUNT_POINT_HPP

/// @file
/// Mount points: what is mounted at a path, whether a path can take a mount, and taking a
/// kernel mount away (the library's unmount and `skyvol unmount` share it).

#include <skyvol/error.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace skyvol::fuse {

namespace detail {

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

} // namespace detail

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
        if (fields.size() < 7 || detail::unescape_mountinfo(fields[4]) != path) continue;
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

/// Takes the kernel mount at `mountpoint` away: with umount2 where the caller may (root),
/// otherwise through fusermount3, as libfuse does. `lazy` detaches a busy or dead mount at once
/// and lets it go when its last user does. EINVAL means nothing is mounted there; where
/// fusermount3 refuses, `output` gets what it said.
inline std::error_code unmount_mount_point(const std::string& mountpoint, bool lazy,
                                           std::string* output = nullptr) {
    if (::geteuid() == 0) {
        if (::umount2(mountpoint.c_str(), lazy ? MNT_DETACH : 0) == 0) return {};
        return {errno, std::system_category()};
    }
    // Spawned, not run through a shell: the path may hold any character.
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return {errno, std::system_category()};
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    std::vector<const char*> argv = {"fusermount3", "-u"};
    if (lazy) argv.push_back("-z");
    argv.insert(argv.end(), {"--", mountpoint.c_str(), nullptr});
    pid_t pid = 0;
    const int spawned = ::posix_spawnp(&pid, "fusermount3", &actions, nullptr,
                                       const_cast<char**>(argv.data()), ::environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    std::string said;
    char buffer[512];
    ssize_t n;
    while (spawned == 0 &&
           ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0) said.append(buffer, static_cast<std::size_t>(n));
    ::close(pipe_fds[0]);
    if (spawned != 0) return {spawned, std::system_category()};
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
    while (!said.empty() && (said.back() == '\n' || said.back() == ' '))
        said.pop_back();
    if (output) *output = said; // fusermount3 names itself
    return std::make_error_code(std::errc::operation_not_permitted);
}

} // namespace skyvol::fuse

#endif
