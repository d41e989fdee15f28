#ifndef SKYVOL_FS_OPTIONS_HPP
#define SKYVOL_FS_OPTIONS_HPP

/// @file
/// What a volume can be told, with defaults and the reasons for them.

#include <skyvol/fs/status.hpp>
#include <skyvol/log.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace skyvol {

/// Progress of a copy-mode fetch, reported after each object.
struct copy_progress {
    std::size_t files_done = 0;
    std::size_t files_total = 0;
    std::uint64_t bytes_done = 0;
    std::uint64_t bytes_total = 0;
};

/// What a copy-mode fetch or refresh changed.
struct copy_stats {
    std::size_t fetched = 0;   ///< objects downloaded (new or changed)
    std::size_t removed = 0;   ///< local copies of objects gone from the bucket
    std::size_t unchanged = 0; ///< objects whose ETag had not changed
    std::uint64_t bytes = 0;   ///< bytes downloaded
    /// Keys a local file tree cannot hold (empty or "." segments, names over 255 bytes): listed
    /// here, never silently dropped.
    std::vector<std::string> skipped;
};

/// What a write_back volume's uploader has done since the volume opened.
struct write_back_stats {
    std::uint64_t uploaded = 0;   ///< journal entries put into the bucket
    std::uint64_t superseded = 0; ///< pending versions dropped for a rewrite closed right after
    std::uint64_t failed_attempts = 0;   ///< upload attempts that failed (each is retried)
    std::uint64_t unexpected_errors = 0; ///< of those, failures that were no store error
};

struct volume_options {
    /// Key prefix the volume's root maps to ("run-042/"); a missing trailing '/' is added.
    std::string prefix{};
    /// Local folder for staged writes, the write-back journal and copy-mode files. Required by
    /// write_back (its crash recovery lives there); others use a private temp folder if empty.
    std::filesystem::path cache_dir{};
    /// How long a looked-up status is trusted before asking the store again. Short by default:
    /// other nodes' changes must show up soon (close-to-open consistency).
    std::chrono::milliseconds metadata_ttl{1000};
    /// How long "no such path" is trusted.
    std::chrono::milliseconds negative_ttl{1000};
    /// Owner of objects that carry none; default: the process's uid and gid.
    std::optional<std::uint32_t> uid{}, gid{};
    std::uint32_t file_permissions = 0644;
    std::uint32_t directory_permissions = 0755;
    /// Threads a volume built without an executor runs for its I/O.
    std::size_t io_threads = 2;
    /// Files above this size upload in parts (S3 needs parts above 5 GiB anyway).
    std::uint64_t multipart_threshold = 16ull << 20;
    /// Part size for multipart uploads; raised automatically so an object stays within 10,000.
    std::uint64_t part_size = 8ull << 20;
    /// Parts one upload moves at once.
    std::size_t transfer_parallelism = 4;
    /// Chunks (`part_size` each) one whole-object download fetches at once: the disk cache's, and
    /// opening a file for update.
    std::size_t download_parallelism = 8;
    /// write_back: wait this long after a close before uploading (coalesces quick rewrites, as
    /// rclone's --vfs-write-back does).
    std::chrono::milliseconds write_back_delay{0};
    /// write_back: failed attempts of one upload before flush() reports it (the data stays
    /// queued, and retries go on with backoff).
    int upload_attempts = 5;
    /// Reads without a cache (cache::none): a sequential reader's first ranged GET, the largest
    /// one, and how far ahead of one reader GETs may run. The window doubles with each range the
    /// reader consumes and collapses on a random read; 0 turns read-ahead off. See
    /// docs/benchmarks.md for the measurements behind these.
    std::uint64_t read_ahead_first = 1ull << 20;
    std::uint64_t read_ahead_part = 8ull << 20;
    std::uint64_t read_ahead_window = 64ull << 20;
    /// Bytes all open files' read-ahead buffers may hold together.
    std::uint64_t read_ahead_budget = 192ull << 20;
    /// cache::memory: bytes of object blocks kept in RAM, and the block size (one ranged GET).
    std::uint64_t memory_cache_bytes = 256ull << 20;
    std::size_t cache_block_size = 1u << 20;
    /// cache::disk: bytes of whole objects kept under cache_dir/objects.
    std::uint64_t disk_cache_bytes = 10ull << 30;
    /// copy: objects fetched at once.
    std::size_t copy_parallelism = 8;
    /// Listings of S3-like stores carry no user metadata (mode, mtime, owner, symlinks), so a
    /// directory listing HEADs the entries the volume does not know yet, this many at once, as
    /// s3fs does. 0 trusts the listing: default permissions, and symlinks show as files.
    std::size_t listing_heads = 16;
    /// copy: called after each object fetched, on a volume thread.
    std::function<void(const copy_progress&)> on_copy_progress{};
    /// Where the volume reports what it cannot return to a caller (failed background uploads,
    /// files left pending at close); names paths and keys, never credentials.
    log_sink log = log_to_stderr;
};

} // namespace skyvol

#endif
