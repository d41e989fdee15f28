#ifndef SKYVOL_STORE_OBJECT_INFO_HPP
#define SKYVOL_STORE_OBJECT_INFO_HPP

/// @file
/// The plain values that cross the store concept: object descriptions, list requests and pages,
/// upload options and multipart bookkeeping. No I/O here.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace skyvol {

/// User metadata: lower-case names without any protocol prefix (`mode`, not `x-amz-meta-mode`).
using user_metadata = std::map<std::string, std::string>;

/// What a store knows about one object.
struct object_info {
    std::string key;
    std::uint64_t size = 0;
    std::string etag; ///< opaque, without quotes; changes whenever the content changes
    std::chrono::system_clock::time_point last_modified{};
    std::string content_type;
    user_metadata metadata; ///< filled by head; listings leave it empty
};

/// A byte range of an object: `length` empty means "to the end".
struct byte_range {
    std::uint64_t offset = 0;
    std::optional<std::uint64_t> length;
};

/// Options for a put, a copy that replaces metadata, or a multipart upload's creation.
struct put_options {
    std::string content_type; ///< empty: the store's default (application/octet-stream)
    user_metadata metadata;
    bool if_none_match = false; ///< create only: fail with `errc::already_exists` if present
    std::optional<std::string> if_match; ///< replace only if the current ETag is this one
};

/// A byte range of an open local file, the body of an upload that reads it as it sends it.
/// The caller keeps `fd` open and the range unchanged until the upload completes.
struct file_range {
    int fd = -1;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

/// The answer to a put, copy or completed multipart upload.
struct put_result {
    std::string etag;
};

/// One ListObjects request. Keys come back in ascending byte order.
struct list_request {
    std::string prefix;
    std::string delimiter;          ///< usually "/"; empty lists the whole subtree flat
    std::string continuation_token; ///< from the previous page, or empty for the first
    std::string start_after;        ///< list keys strictly after this one (first page only)
    std::size_t max_keys = 1000;    ///< objects + common prefixes per page, 1..1000
};

/// One page of a listing.
struct list_page {
    std::vector<object_info> objects;         ///< metadata left empty
    std::vector<std::string> common_prefixes; ///< each ends with the delimiter
    std::string next_continuation_token;      ///< empty when this was the last page
    bool truncated() const noexcept { return !next_continuation_token.empty(); }
};

/// A part that was uploaded, as `complete_multipart` needs it.
struct completed_part {
    int part_number = 0; ///< 1..10000
    std::string etag;
};

/// A key that a batch removal could not remove.
struct remove_failure {
    std::string key;
    std::error_code error;
};

/// Limits every store follows so that code tested on one behaves the same on the others.
struct multipart_limits {
    static constexpr int max_parts = 10000;
    static constexpr std::uint64_t min_part_size = 5ull << 20; ///< except the last part
    static constexpr std::uint64_t max_part_size = 5ull << 30;
    static constexpr std::uint64_t max_object_size = 5ull << 40;
};

/// Most keys a batch removal takes in one call (S3's DeleteObjects limit).
inline constexpr std::size_t max_batch_remove = 1000;

} // namespace skyvol

#endif
