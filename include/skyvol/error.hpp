#ifndef SKYVOL_ERROR_HPP
#define SKYVOL_ERROR_HPP

/// @file
/// skyvol's error codes: one `std::error_category`, a mapping to errno for the FUSE edge, and an
/// exception whose message names the store, bucket and key an operation failed on.

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace skyvol {

/// What went wrong, independent of the store that reported it.
enum class errc {
    not_found = 1,       ///< no object (or directory) under that key
    already_exists,      ///< create-only operation found something there
    access_denied,       ///< credentials refused or missing permission
    invalid_key,         ///< key is empty, too long, escapes the root, has NUL or invalid UTF-8
    name_too_long,       ///< a path component is longer than the store or filesystem allows
    precondition_failed, ///< If-Match / If-None-Match style condition did not hold
    throttled,           ///< the service asked us to slow down (503 SlowDown, 429)
    timed_out,           ///< no answer in time
    connection_failed,   ///< could not connect, or the connection dropped
    protocol_error,      ///< the reply was malformed, truncated or not what the protocol says
    io_error,            ///< local disk I/O failed
    read_only,           ///< mutation through a read-only store or volume
    not_empty,           ///< directory removal found children
    not_a_directory,     ///< a path component is a file where a directory is needed
    is_a_directory,      ///< a file operation named a directory
    invalid_argument,    ///< a parameter is out of range (part number, offset, option value)
    invalid_upload,      ///< unknown multipart upload id, or parts that do not fit together
    entity_too_small,    ///< a multipart part below the minimum size
    entity_too_large,    ///< an object or part above the maximum size
    no_space,            ///< local disk or cache is full
    not_supported,       ///< the store or mode cannot do this
    invalid_config,      ///< a configuration value or URI is malformed
    cancelled,           ///< the operation was cancelled
};

/// The category of `skyvol::errc`.
inline const std::error_category& error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "skyvol"; }
        std::string message(int value) const override {
            switch (static_cast<errc>(value)) {
            case errc::not_found:
                return "not found";
            case errc::already_exists:
                return "already exists";
            case errc::access_denied:
                return "access denied";
            case errc::invalid_key:
                return "invalid key";
            case errc::name_too_long:
                return "name too long";
            case errc::precondition_failed:
                return "precondition failed";
            case errc::throttled:
                return "throttled by the service";
            case errc::timed_out:
                return "timed out";
            case errc::connection_failed:
                return "connection failed";
            case errc::protocol_error:
                return "protocol error";
            case errc::io_error:
                return "I/O error";
            case errc::read_only:
                return "read-only";
            case errc::not_empty:
                return "directory not empty";
            case errc::not_a_directory:
                return "not a directory";
            case errc::is_a_directory:
                return "is a directory";
            case errc::invalid_argument:
                return "invalid argument";
            case errc::invalid_upload:
                return "invalid multipart upload";
            case errc::entity_too_small:
                return "part too small";
            case errc::entity_too_large:
                return "object too large";
            case errc::no_space:
                return "no space left";
            case errc::not_supported:
                return "operation not supported";
            case errc::invalid_config:
                return "invalid configuration";
            case errc::cancelled:
                return "operation cancelled";
            }
            return "unknown skyvol error";
        }
    };
    static const category instance;
    return instance;
}

/// Found by ADL; lets `std::error_code ec = errc::not_found;` and `ec == errc::not_found` work.
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// The errno a file API should report for `ec`: skyvol codes map to the closest POSIX value,
/// generic and system codes pass through, anything else is EIO.
inline int to_errno(const std::error_code& ec) noexcept {
    if (!ec) return 0;
    if (ec.category() == std::generic_category() || ec.category() == std::system_category())
        return ec.value();
    if (ec.category() != error_category()) return EIO;
    switch (static_cast<errc>(ec.value())) {
    case errc::not_found:
        return ENOENT;
    case errc::already_exists:
        return EEXIST;
    case errc::access_denied:
        return EACCES;
    case errc::invalid_key:
        return EINVAL;
    case errc::name_too_long:
        return ENAMETOOLONG;
    case errc::precondition_failed:
        return EIO;
    case errc::throttled:
        return EAGAIN;
    case errc::timed_out:
        return ETIMEDOUT;
    case errc::connection_failed:
        return EIO;
    case errc::protocol_error:
        return EIO;
    case errc::io_error:
        return EIO;
    case errc::read_only:
        return EROFS;
    case errc::not_empty:
        return ENOTEMPTY;
    case errc::not_a_directory:
        return ENOTDIR;
    case errc::is_a_directory:
        return EISDIR;
    case errc::invalid_argument:
        return EINVAL;
    case errc::invalid_upload:
        return EINVAL;
    case errc::entity_too_small:
        return EINVAL;
    case errc::entity_too_large:
        return EFBIG;
    case errc::no_space:
        return ENOSPC;
    case errc::not_supported:
        return ENOTSUP;
    case errc::invalid_config:
        return EINVAL;
    case errc::cancelled:
        return ECANCELED;
    }
    return EIO;
}

/// Where an error happened: enough for a message a user can act on. Never holds a secret.
struct error_context {
    std::string_view store;  ///< "local", "memory", "s3", ...
    std::string_view bucket; ///< bucket name, or the local store's root folder
    std::string_view key;    ///< object key, or empty
    std::string_view detail; ///< extra text from the server (code, message, request id), or empty
};

/// Formats "s3: bucket 'b', key 'k': not found (NoSuchKey, request id X)".
inline std::string describe(const std::error_code& ec, const error_context& where) {
    std::string text;
    text.append(where.store.empty() ? std::string_view{"skyvol"} : where.store);
    if (!where.bucket.empty()) text.append(": bucket '").append(where.bucket).append("'");
    if (!where.key.empty())
        text.append(where.bucket.empty() ? ": key '" : ", key '").append(where.key).append("'");
    text.append(": ").append(ec.message());
    if (!where.detail.empty()) text.append(" (").append(where.detail).append(")");
    return text;
}

/// Thrown by the throwing overloads of blocking calls; `code()` compares equal to `errc` values
/// and `what()` is `describe(code(), where)`: what failed, then why.
class error : public std::system_error {
public:
    error(std::error_code ec, const error_context& where)
        : std::system_error(ec)
        , text_(describe(ec, where)) {}
    const char* what() const noexcept override { return text_.c_str(); }

private:
    std::string text_;
};

namespace detail {
/// Throws `skyvol::error` when `ec` is set; the bridge from `(..., ec)` overloads to throwing ones.
inline void throw_if(const std::error_code& ec, const error_context& where) {
    if (ec) throw error(ec, where);
}
} // namespace detail

} // namespace skyvol

template <>
struct std::is_error_code_enum<skyvol::errc> : std::true_type {};

#endif
