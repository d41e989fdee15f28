#ifndef SKYVOL_FS_DETAIL_STAGING_HPP
#define SKYVOL_FS_DETAIL_STAGING_HPP

/// @file
/// Files open for writing: each is a local staging copy that becomes the object at commit, and
/// while open it is what the volume shows at its path (status, listings). `staging_area` owns
/// the staging folder and the registry of open files, and is the one owner of the lock under
/// which an open file's attributes and size are read and written: writers, stat, listings and
/// attribute changes meet there from different threads.

#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/throw.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/path.hpp>
#include <skyvol/fs/status.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unistd.h>
#include <utility>

namespace skyvol::detail {

class streaming_upload;

/// A file open for writing. The fd, the staging path and the streaming upload belong to the
/// one writer that holds it; what others may look at (attributes, size, whether it is new) is
/// reached only through its `staging_area`.
class staged_file {
public:
    staged_file(std::string path, std::filesystem::path staging_path, unique_fd fd)
        : path_(std::move(path))
        , staging_path_(std::move(staging_path))
        , fd_(std::move(fd)) {}

    const std::string& path() const noexcept { return path_; }
    const std::filesystem::path& staging_path() const noexcept { return staging_path_; }
    int fd() const noexcept { return fd_.get(); }
    void close_fd() noexcept { fd_.reset(); }
    std::shared_ptr<streaming_upload> streaming; ///< parts going up while it is written

private:
    friend class staging_area;
    const std::string path_;
    const std::filesystem::path staging_path_;
    unique_fd fd_;
    // Guarded by the staging area's mutex once the file is registered.
    file_status status_; ///< owner and permissions to record; size and mtime set at commit
    std::uint64_t size_ = 0;
    bool created_ = false;    ///< nothing was at the path when it was opened
    bool keep_mtime_ = false; ///< utimens while open: commit keeps status.mtime, not the time
    std::uint64_t attribute_changes_ = 0; ///< chmod, chown, utimens applied while open
    bool committing_ = false; ///< its close is committing it: still shown, no longer changed
};

/// What a staged file looks like at one moment.
struct staged_view {
    file_status status; ///< with the staged size
    bool created = false;
    bool keep_mtime = false;
    std::uint64_t attribute_changes = 0;
};

class staging_area {
public:
    /// Uses `dir` (created if missing) for staging copies. Copies left there by a process that
    /// died were never closed, so nothing promised them: they are removed.
    explicit staging_area(std::filesystem::path dir)
        : dir_(std::move(dir)) {
        std::filesystem::create_directories(dir_);
        for (const auto& e : std::filesystem::directory_iterator(dir_))
            std::filesystem::remove(e.path());
    }

    /// A new, empty staging copy for `path`, not yet visible to others (see `publish`).
    std::shared_ptr<staged_file> create(std::string path, file_status status, bool created) {
        auto staging_path = dir_ / ("w" + std::to_string(++counter_));
        unique_fd fd(::open(staging_path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
        if (!fd) fail(last_error());
        auto staged =
            std::make_shared<staged_file>(std::move(path), std::move(staging_path), std::move(fd));
        status.type = file_type::regular;
        staged->status_ = std::move(status);
        staged->created_ = created;
        return staged;
    }

    /// Sets the size of a file not yet published (its content was copied in).
    static void set_initial_size(staged_file& staged, std::uint64_t size) {
        staged.size_ = size;
        staged.status_.size = size;
    }

    /// Makes `staged` what stat and listings show at its path, until `forget`.
    void publish(const std::shared_ptr<staged_file>& staged) {
        std::lock_guard lock(mutex_);
        open_.emplace(staged->path_, staged);
    }

    /// Marks `staged` as being committed: stat and listings show it until its commit is done
    /// and it is forgotten (the bucket or the journal shows it from then on), while attribute
    /// changes pass it by (its commit has read them already).
    void begin_commit(staged_file& staged) {
        std::lock_guard lock(mutex_);
        staged.committing_ = true;
    }

    void forget(const std::shared_ptr<staged_file>& staged) {
        std::lock_guard lock(mutex_);
        auto range = open_.equal_range(staged->path_);
        for (auto it = range.first; it != range.second; ++it)
            if (it->second == staged) {
                open_.erase(it);
                break;
            }
    }

    /// Whether a file is open for writing (or closing) at `path`.
    bool has(const std::string& path) const {
        std::lock_guard lock(mutex_);
        return open_.contains(path);
    }

    /// The status of the newest file open for writing at `path`, with its size now.
    std::optional<file_status> status_of(const std::string& path) const {
        std::lock_guard lock(mutex_);
        auto range = open_.equal_range(path);
        if (range.first == range.second) return std::nullopt;
        return view_locked(*std::prev(range.second)->second).status;
    }

    /// Files open for writing directly in `dir`, newest per path.
    std::map<std::string, file_status> children_of(const std::string& dir) const {
        std::map<std::string, file_status> out;
        std::lock_guard lock(mutex_);
        for (const auto& [p, f] : open_)
            if (parent_of(p) == dir) out.insert_or_assign(p, view_locked(*f).status);
        return out;
    }

    staged_view view(const staged_file& staged) const {
        std::lock_guard lock(mutex_);
        return view_locked(staged);
    }

    std::uint64_t size(const staged_file& staged) const {
        std::lock_guard lock(mutex_);
        return staged.size_;
    }

    /// Records bytes written up to `end`; returns the size after it.
    std::uint64_t wrote_up_to(staged_file& staged, std::uint64_t end) {
        std::lock_guard lock(mutex_);
        staged.size_ = std::max(staged.size_, end);
        return staged.size_;
    }

    /// Records a truncation or extension to `size`; returns the size before it.
    std::uint64_t resized(staged_file& staged, std::uint64_t size) {
        std::lock_guard lock(mutex_);
        return std::exchange(staged.size_, size);
    }

    /// Applies `change(status)` to every file open for writing at `path` (not to those being
    /// committed); false if none is. The change reaches the bucket with the file's next commit
    /// (its writer commits at close for it): a metadata rewrite of the object now could land
    /// after that commit and bring back older content.
    template <class Change>
    bool change_open(const std::string& path, Change&& change) {
        std::lock_guard lock(mutex_);
        auto range = open_.equal_range(path);
        bool changed = false;
        for (auto it = range.first; it != range.second; ++it) {
            staged_file& open = *it->second;
            if (open.committing_) continue;
            const auto before = open.status_.mtime;
            change(open.status_);
            if (open.status_.mtime != before) open.keep_mtime_ = true;
            ++open.attribute_changes_;
            changed = true;
        }
        return changed;
    }

    /// Gives `to` (a snapshot of `from` being committed) `from`'s attributes and size.
    void copy_attributes(const staged_file& from, staged_file& to) {
        std::lock_guard lock(mutex_);
        to.status_ = from.status_;
        to.size_ = from.size_;
        to.keep_mtime_ = from.keep_mtime_;
        to.attribute_changes_ = from.attribute_changes_;
    }

private:
    static staged_view view_locked(const staged_file& f) {
        staged_view v{f.status_, f.created_, f.keep_mtime_, f.attribute_changes_};
        v.status.size = f.size_;
        return v;
    }

    const std::filesystem::path dir_;
    std::atomic<std::uint64_t> counter_{0};
    /// Guards open_ and the guarded members of every staged file; never held across a
    /// suspension, and no other lock is taken while it is held.
    mutable std::mutex mutex_;
    std::multimap<std::string, std::shared_ptr<staged_file>> open_;
};

} // namespace skyvol::detail

#endif
