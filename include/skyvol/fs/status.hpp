#ifndef SKYVOL_FS_STATUS_HPP
#define SKYVOL_FS_STATUS_HPP

/// @file
/// What a volume says about a path: type, size, times, owner and permissions, read from and
/// written to object user metadata in the convention s3fs uses, so a bucket written by one tool
/// reads right in the other: `mode` (decimal st_mode, file type bits included), `mtime` (seconds
/// since the epoch), `uid`, `gid`. s3fs stores a symlink as an object whose content is the
/// target and whose mode has S_IFLNK, and a directory as a "dir/" object; so does skyvol.

#include <skyvol/fs/path.hpp>
#include <skyvol/store/object_info.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <sys/stat.h>

namespace skyvol {

enum class file_type { not_found, regular, directory, symlink };

struct file_status {
    file_type type = file_type::not_found;
    std::uint64_t size = 0;
    std::chrono::system_clock::time_point mtime{};
    std::uint32_t permissions = 0; ///< the low 12 bits of st_mode (rwx, setuid, setgid, sticky)
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::string etag; ///< of the object behind the path; empty for implicit directories

    bool exists() const noexcept { return type != file_type::not_found; }
    bool is_regular_file() const noexcept { return type == file_type::regular; }
    bool is_directory() const noexcept { return type == file_type::directory; }
    bool is_symlink() const noexcept { return type == file_type::symlink; }
    /// st_mode: type bits plus permissions.
    std::uint32_t mode() const noexcept {
        const std::uint32_t bits = type == file_type::directory ? S_IFDIR
                                   : type == file_type::symlink ? S_IFLNK
                                                                : S_IFREG;
        return bits | permissions;
    }
};

/// What `volume::set_attributes` changes (chmod, chown, utimens); unset members stay.
struct attribute_change {
    std::optional<std::uint32_t> permissions; ///< low 12 bits used
    std::optional<std::uint32_t> uid;
    std::optional<std::uint32_t> gid;
    std::optional<std::chrono::system_clock::time_point> mtime;

    void apply_to(file_status& st) const {
        if (permissions) st.permissions = *permissions & 07777;
        if (uid) st.uid = *uid;
        if (gid) st.gid = *gid;
        if (mtime) st.mtime = *mtime;
    }
};

/// Owner and permissions for objects that carry none (written by tools other than s3fs/skyvol).
struct attribute_defaults {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint32_t file_permissions = 0644;
    std::uint32_t directory_permissions = 0755;
};

/// How much a directory listing tells of each entry.
enum class listing_detail {
    /// Each entry's whole status. Listings of S3-like stores carry no user metadata, so the
    /// volume HEADs the entries it does not know yet (`metadata_options::listing_heads`).
    full,
    /// What the listing itself says: names, types, sizes. Entries it lacks metadata for are
    /// marked incomplete; their stat fetches the rest, and asks ahead for the entries after them.
    listed,
};

/// What a removal may take: `file` is unlink(2) (files and symlinks; `errc::is_a_directory`
/// otherwise), `directory` rmdir(2) (`errc::not_a_directory` otherwise), `any` either, as
/// std::filesystem::remove.
enum class removal { any, file, directory };

/// Whether a rename may replace what is at its target (`no_replace` is RENAME_NOREPLACE:
/// `errc::already_exists` if anything is there).
enum class rename_mode { replace, no_replace };

/// One entry of a directory listing. Its status comes from the listing itself: type, size and
/// time are right; permissions and owner are the defaults unless the volume already knew the
/// path (ask `volume::status` for the stored ones).
class directory_entry {
public:
    directory_entry() = default;
    directory_entry(std::string path, file_status status, bool complete = true)
        : path_(std::move(path))
        , status_(std::move(status))
        , complete_(complete) {}

    const std::string& path() const noexcept { return path_; }
    std::string_view filename() const noexcept { return name_of(path_); }
    std::uint64_t size() const noexcept { return status_.size; }
    bool is_directory() const noexcept { return status_.is_directory(); }
    bool is_regular_file() const noexcept { return status_.is_regular_file(); }
    bool is_symlink() const noexcept { return status_.is_symlink(); }
    const file_status& status() const noexcept { return status_; }
    /// False for an entry of a `listing_detail::listed` listing whose listing had no metadata:
    /// permissions, owner and mtime are defaults, and a symlink shows as a regular file.
    bool complete() const noexcept { return complete_; }
    /// Whether an incomplete entry's object could be a symlink, whose content is its target:
    /// only objects of 1 to 4096 (PATH_MAX) bytes can.
    bool may_be_symlink() const noexcept {
        return !complete_ && status_.is_regular_file() && status_.size > 0 &&
               status_.size <= max_symlink_target;
    }
    static constexpr std::uint64_t max_symlink_target = 4096;

private:
    std::string path_;
    file_status status_;
    bool complete_ = true;
};

namespace detail {

inline bool parse_u32(const user_metadata& m, const char* name, std::uint32_t& out) {
    auto it = m.find(name);
    if (it == m.end() || it->second.empty()) return false;
    char* end = nullptr;
    const unsigned long v = std::strtoul(it->second.c_str(), &end, 10);
    if (*end != '\0' || v > 0xFFFFFFFFul) return false;
    out = static_cast<std::uint32_t>(v);
    return true;
}

/// The status an object describes; `directory_marker` for "dir/" keys.
inline file_status status_of(const object_info& object, bool directory_marker,
                             const attribute_defaults& defaults) {
    file_status st;
    st.size = object.size;
    st.etag = object.etag;
    st.mtime = object.last_modified;
    st.uid = defaults.uid;
    st.gid = defaults.gid;
    std::uint32_t mode = 0;
    const bool has_mode = parse_u32(object.metadata, "mode", mode);
    if (directory_marker || (has_mode && S_ISDIR(mode)))
        st.type = file_type::directory;
    else if (has_mode && S_ISLNK(mode))
        st.type = file_type::symlink;
    else
        st.type = file_type::regular;
    st.permissions =
        has_mode ? (mode & 07777)
                 : (st.is_directory() ? defaults.directory_permissions : defaults.file_permissions);
    if (st.is_directory()) st.size = 0;
    parse_u32(object.metadata, "uid", st.uid);
    parse_u32(object.metadata, "gid", st.gid);
    if (auto it = object.metadata.find("mtime"); it != object.metadata.end()) {
        char* end = nullptr;
        const double seconds = std::strtod(it->second.c_str(), &end);
        if (end != it->second.c_str() && seconds >= 0)
            st.mtime = std::chrono::system_clock::time_point(
                std::chrono::duration_cast<std::chrono::system_clock::duration>(
                    std::chrono::duration<double>(seconds)));
    }
    return st;
}

/// The user metadata that records `st` (s3fs's names), merged over `base`.
inline user_metadata metadata_of(const file_status& st, user_metadata base = {}) {
    base["mode"] = std::to_string(st.mode());
    base["mtime"] = std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(st.mtime.time_since_epoch()).count());
    base["uid"] = std::to_string(st.uid);
    base["gid"] = std::to_string(st.gid);
    return base;
}

} // namespace detail
} // namespace skyvol

#endif
