#ifndef SKYVOL_FS_DETAIL_WRITE_BACK_JOURNAL_HPP
#define SKYVOL_FS_DETAIL_WRITE_BACK_JOURNAL_HPP

/// @file
/// The write-back journal: closed files waiting for upload, durable on local disk so that a
/// crash loses nothing that was closed. Each entry is two files in `DIR/journal/`:
/// `SEQ.data` (the content) and `SEQ.entry` (key, path, content type, metadata), both fsynced,
/// the entry written last through a rename, so an entry on disk always has its data. Uploads
/// happen in sequence order, which is close order.
///
/// A rewrite supersedes: an entry committed right after a pending entry of the same path (no
/// other close in between, none under way) takes its place, and the older one is dropped unless
/// it is being uploaded. Readers then never see a state that close order did not have.

#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/record.hpp>
#include <skyvol/detail/throw.hpp>
#include <skyvol/error.hpp>
#include <skyvol/store/object_info.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace skyvol::detail {

class write_back_journal {
public:
    struct entry {
        std::uint64_t seq = 0;
        std::string key;
        std::string path; ///< volume path, for the overlay that serves pending files
        put_options options;
        std::uint64_t size = 0;
        std::chrono::steady_clock::time_point closed_at{};
    };

    /// Opens (creating) `dir/journal` and reads back what a previous run left pending.
    explicit write_back_journal(const std::filesystem::path& dir)
        : dir_(dir / "journal") {
        std::filesystem::create_directories(dir_);
        std::vector<std::uint64_t> seqs;
        for (const auto& e : std::filesystem::directory_iterator(dir_)) {
            const std::string name = e.path().filename().string();
            if (name.ends_with(".entry"))
                seqs.push_back(std::strtoull(name.c_str(), nullptr, 10));
            else if (name.ends_with(".tmp"))
                std::filesystem::remove(e.path());
        }
        std::sort(seqs.begin(), seqs.end());
        // A recovered entry's write-back delay runs from now: left at the steady clock's
        // epoch it would be due at once whenever uptime exceeds the delay, and the delay
        // is what lets a rewrite after a restart supersede it before it uploads.
        const auto recovered_at = std::chrono::steady_clock::now();
        for (std::uint64_t seq : seqs) {
            entry e;
            e.closed_at = recovered_at;
            if (read_entry(seq, e)) pending_.emplace(seq, std::move(e));
            next_seq_ = std::max(next_seq_, seq + 1);
        }
        // Data files without an entry were never closed (crash mid-commit): not promised.
        for (const auto& f : std::filesystem::directory_iterator(dir_)) {
            const std::string name = f.path().filename().string();
            if (name.ends_with(".data") &&
                !pending_.count(std::strtoull(name.c_str(), nullptr, 10)))
                std::filesystem::remove(f.path());
        }
    }

    /// Where the content of a new entry is written before `commit`.
    std::filesystem::path data_path(std::uint64_t seq) const {
        return dir_ / (std::to_string(seq) + ".data");
    }

    /// The record of entry `seq` (its data is at `data_path`).
    std::filesystem::path entry_path(std::uint64_t seq) const {
        return dir_ / (std::to_string(seq) + ".entry");
    }

    /// A sequence number for an entry about to be committed; `commit` or `abandon` it.
    std::uint64_t reserve() {
        std::lock_guard lock(mutex_);
        reserved_.insert(next_seq_);
        return next_seq_++;
    }

    /// Gives up a reserved number whose entry will not be committed (and removes its data).
    void abandon(std::uint64_t seq) {
        std::error_code ignored;
        std::filesystem::remove(data_path(seq), ignored);
        std::lock_guard lock(mutex_);
        reserved_.erase(seq);
    }

    /// Makes entry `e` (whose data file is written and fsynced) durable and pending. Returns how
    /// many older entries it superseded (0 or 1).
    std::size_t commit(entry e, std::error_code& ec) {
        ec.clear();
        record_writer record;
        record.field("key", e.key);
        record.field("path", e.path);
        record.field("ct", e.options.content_type);
        record.field("size", std::to_string(e.size));
        for (const auto& [name, value] : e.options.metadata)
            record.field("m." + name, value);
        const std::string& text = record.text();
        const auto final_path = entry_path(e.seq);
        const auto tmp_path = dir_ / (std::to_string(e.seq) + ".entry.tmp");
        unique_fd fd(::open(tmp_path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600));
        if (!fd || (ec = write_all(fd.get(), text.data(), text.size())) || ::fsync(fd.get()) != 0 ||
            ::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
            if (!ec) ec = last_error();
            ::unlink(tmp_path.c_str()); // a full disk keeps nothing of it
            return 0;
        }
        unique_fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (dir) ::fsync(dir.get());
        e.closed_at = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex_);
        reserved_.erase(e.seq);
        const std::size_t superseded = supersede_before(e);
        pending_.emplace(e.seq, std::move(e));
        return superseded;
    }

    /// The uploader starts on entry `seq`: no rewrite may supersede it now. False if a rewrite
    /// already did (between the uploader's look at the front and this call).
    bool begin_upload(std::uint64_t seq) {
        std::lock_guard lock(mutex_);
        if (!pending_.count(seq)) return false;
        uploading_ = seq;
        return true;
    }

    /// The oldest pending entry, if any.
    std::optional<entry> front() const {
        std::lock_guard lock(mutex_);
        if (pending_.empty()) return std::nullopt;
        return pending_.begin()->second;
    }

    /// The newest pending entry for `path`: what a reader of that path must see.
    std::optional<entry> latest_for(const std::string& path) const {
        std::lock_guard lock(mutex_);
        for (auto it = pending_.rbegin(); it != pending_.rend(); ++it)
            if (it->second.path == path) return it->second;
        return std::nullopt;
    }

    /// The newest pending entry for `path` with its content open for reading. Opened under the
    /// lock that uploads and rewrites take to remove entries, so the content cannot vanish
    /// between the look-up and the open.
    std::optional<std::pair<entry, unique_fd>> open_latest(const std::string& path) const {
        std::lock_guard lock(mutex_);
        for (auto it = pending_.rbegin(); it != pending_.rend(); ++it)
            if (it->second.path == path) {
                unique_fd fd(::open(data_path(it->first).c_str(), O_RDONLY | O_CLOEXEC));
                if (!fd && errno == ENOENT) return std::nullopt; // removed behind our back
                if (!fd) fail(last_error());
                return std::pair(it->second, std::move(fd));
            }
        return std::nullopt;
    }

    /// Pending entries whose path lies directly in `dir`, newest per path.
    std::map<std::string, entry> children_of(const std::string& dir) const {
        std::map<std::string, entry> out;
        std::lock_guard lock(mutex_);
        for (const auto& [seq, e] : pending_) {
            const auto slash = e.path.rfind('/');
            const std::string parent = slash == std::string::npos ? "" : e.path.substr(0, slash);
            if (parent == dir) out[e.path] = e;
        }
        return out;
    }

    /// True if some pending entry lies at or under `path`.
    bool has_pending_within(const std::string& path) const {
        std::lock_guard lock(mutex_);
        for (const auto& [seq, e] : pending_)
            if (path.empty() || e.path == path ||
                (e.path.size() > path.size() && e.path.starts_with(path) &&
                 e.path[path.size()] == '/'))
                return true;
        return false;
    }

    /// Entry `seq` is in the bucket (or its upload failed, with `uploaded` false): forget it,
    /// or let it be superseded again. If its record cannot be removed it stays pending, so it is
    /// uploaded again rather than lost from the order; a data file left behind is removed by the
    /// next start.
    std::error_code end_upload(std::uint64_t seq, bool uploaded) {
        std::lock_guard lock(mutex_); // held across the unlinks: pending_ always has its files
        uploading_ = 0;
        if (!uploaded) return {};
        if (::unlink(entry_path(seq).c_str()) != 0 && errno != ENOENT) return last_error();
        ::unlink(data_path(seq).c_str());
        pending_.erase(seq);
        return {};
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return pending_.size();
    }

private:
    /// Drops the entry `e` replaces, if it is the newest pending one, of the same path, not
    /// being uploaded, with no close of another file between the two. Under mutex_.
    std::size_t supersede_before(const entry& e) {
        auto older = pending_.lower_bound(e.seq);
        if (older == pending_.begin()) return 0;
        --older;
        const std::uint64_t seq = older->first;
        if (older->second.path != e.path || seq == uploading_) return 0;
        if (auto between = reserved_.upper_bound(seq);
            between != reserved_.end() && *between < e.seq)
            return 0;
        if (::unlink(entry_path(seq).c_str()) != 0) return 0;
        ::unlink(data_path(seq).c_str());
        pending_.erase(older);
        return 1;
    }

    bool read_entry(std::uint64_t seq, entry& e) const {
        std::FILE* f = std::fopen(entry_path(seq).c_str(), "rb");
        if (!f) return false;
        std::string text;
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
            text.append(buf, n);
        std::fclose(f);
        e.seq = seq;
        const bool ours =
            read_record(text, [&e](const std::string& name, const std::string& value) {
                if (name == "key")
                    e.key = value;
                else if (name == "path")
                    e.path = value;
                else if (name == "ct")
                    e.options.content_type = value;
                else if (name == "size")
                    e.size = std::strtoull(value.c_str(), nullptr, 10);
                else if (name.starts_with("m."))
                    e.options.metadata[name.substr(2)] = value;
            });
        if (!ours) return false;
        return !e.key.empty() && std::filesystem::exists(data_path(seq));
    }

    std::filesystem::path dir_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, entry> pending_;
    std::set<std::uint64_t> reserved_; ///< numbers handed out whose entries are not committed
    std::uint64_t uploading_ = 0;      ///< the entry being uploaded, 0 if none
    std::uint64_t next_seq_ = 1;
};

} // namespace skyvol::detail

#endif
