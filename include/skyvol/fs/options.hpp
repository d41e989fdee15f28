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
    /// Keys a local file tree cannot hold (empty or "." segments, names over 255 bytes, keys
    /// below a key that is a file: `a/b` beside `a`): listed here and logged as warnings, never
    /// silently dropped.
    std::vector<std::string> skipped;
};

/// What a write_back volume's uploader has done since the volume opened.
struct write_back_stats {
    std::uint64_t uploaded = 0;   ///< journal entries put into the bucket
    std::uint64_t superseded = 0; ///< pending versions dropped for a rewrite closed right after
    std::uint64_t failed_attempts = 0;   ///< upload attempts that failed (each is retried)
    std::uint64_t unexpected_errors = 0; ///< of those, failures that were no store error
    /// Why the last upload attempt failed, naming the key ("s3: bucket 'b', key 'k': throttled
    /// by the service (...)"); empty again once an upload succeeds.
    std::string last_failure;
};

/// Owner and permissions of objects that carry none (written by tools other than s3fs/skyvol).
struct ownership_options {
    /// Default: the process's uid and gid.
    std::optional<std::uint32_t> uid{}, gid{};
    std::uint32_t file_permissions = 0644;
    std::uint32_t directory_permissions = 0755;
};

/// How long what the volume learnt from the store is believed, and what listings fill in.
struct metadata_options {
    /// How long a looked-up status is trusted before asking the store again. Short by default:
    /// other nodes' changes must show up soon (close-to-open consistency).
    std::chrono::milliseconds ttl{1000};
    /// How long "no such path" is trusted.
    std::chrono::milliseconds negative_ttl{1000};
    /// Listings of S3-like stores carry no user metadata (mode, mtime, owner, symlinks), so a
    /// directory listing HEADs the entries the volume does not know yet, this many at once, as
    /// s3fs does. 0 trusts the listing: default permissions, and symlinks show as files.
    std::size_t listing_heads = 16;
};

/// How uploads and whole-object downloads are cut into requests, and how many run at once.
struct transfer_options {
    /// Files above this size upload in parts (S3 needs parts above 5 GiB anyway).
    std::uint64_t multipart_threshold = 16ull << 20;
    /// Part size for multipart uploads, and the chunk of a whole-object download; raised
    /// automatically so an object stays within 10,000 parts.
    std::uint64_t part_size = 8ull << 20;
    /// Parts one upload moves at once.
    std::size_t upload_parallelism = 4;
    /// Chunks one whole-object download fetches at once: the disk cache's, and opening a file
    /// for update.
    std::size_t download_parallelism = 8;
};

/// Reads without a cache (cache::none): a sequential reader's first ranged GET, the largest
/// one, and how far ahead of one reader GETs may run. The window doubles with each range the
/// reader consumes and collapses on a random read. See docs/benchmarks.md for the measurements
/// behind these.
struct read_ahead_options {
    std::uint64_t first = 1ull << 20;
    std::uint64_t part = 8ull << 20;
    /// 0 turns read-ahead off.
    std::uint64_t window = 64ull << 20;
    /// Bytes all open files' read-ahead buffers may hold together.
    std::uint64_t budget = 192ull << 20;
};

/// The read caches' sizes.
struct cache_options {
    /// cache::memory: bytes of object blocks kept in RAM, and the block size (one ranged GET).
    std::uint64_t memory_bytes = 256ull << 20;
    std::size_t block_size = 1u << 20;
    /// cache::disk: bytes of whole objects kept under cache_dir/objects; 0 sets no cap beyond
    /// `disk_keep_free`.
    std::uint64_t disk_bytes = 0;
    /// cache::disk: the share of cache_dir's filesystem kept free. Cached objects (clean copies
    /// of the bucket) leave, least recently used first, before free space falls below it, and
    /// give way to writers that find the disk full; an object that cannot fit is read from the
    /// bucket without being cached. Staged and journaled writes are never evicted.
    double disk_keep_free = 0.05;
};

/// mode::write_back's uploader.
struct write_back_options {
    /// Wait this long after a close before uploading (coalesces quick rewrites, as rclone's
    /// --vfs-write-back does).
    std::chrono::milliseconds delay{0};
    /// Failed attempts of one upload before flush() reports it (the data stays queued, and
    /// retries go on with backoff).
    int upload_attempts = 5;
};

/// mode::copy's fetch.
struct copy_mode_options {
    /// Objects fetched at once.
    std::size_t parallelism = 8;
    /// Called after each object fetched, on a volume thread.
    std::function<void(const copy_progress&)> on_progress{};
};

/// What a volume can be told, grouped by the part of the volume that reads it.
struct volume_options {
    /// Key prefix the volume's root maps to ("run-042/"); a missing trailing '/' is added.
    std::string prefix{};
    /// Local folder for staged writes, the write-back journal and copy-mode files. Required by
    /// write_back (its crash recovery lives there); others use a private temp folder if empty.
    std::filesystem::path cache_dir{};
    /// Threads a volume built without an executor runs for its I/O.
    std::size_t io_threads = 2;
    ownership_options ownership{};
    metadata_options metadata{};
    transfer_options transfers{};
    read_ahead_options read_ahead{};
    cache_options caches{};
    write_back_options write_back{};
    copy_mode_options copy{};
    /// Where the volume reports what it cannot return to a caller (failed background uploads,
    /// files left pending at close); names paths and keys, never credentials.
    log_sink log = log_to_stderr;
};

} // namespace skyvol

#endif
