#ifndef SKYVOL_DETAIL_POSIX_FILE_HPP
#define SKYVOL_DETAIL_POSIX_FILE_HPP

/// @file
/// Small POSIX helpers for every layer that touches local files: an owning file descriptor, errno
/// to skyvol codes, and full-length read/write loops that survive EINTR and short transfers.

#include <skyvol/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace skyvol::detail {

class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) noexcept
        : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Gives up ownership without closing.
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

/// The skyvol code for an errno from a file operation; unusual values keep their errno.
inline std::error_code from_errno(int e) noexcept {
    switch (e) {
    case ENOENT:
        return errc::not_found;
    case EEXIST:
        return errc::already_exists;
    case EACCES:
    case EPERM:
        return errc::access_denied;
    case ENOTDIR:
        return errc::not_a_directory;
    case EISDIR:
        return errc::is_a_directory;
    case ENAMETOOLONG:
        return errc::name_too_long;
    case ENOSPC:
    case EDQUOT:
        return errc::no_space;
    case ENOTEMPTY:
        return errc::not_empty;
    case EROFS:
        return errc::read_only;
    case EIO:
        return errc::io_error;
    default:
        return {e, std::generic_category()};
    }
}

inline std::error_code last_error() noexcept {
    return from_errno(errno);
}

/// Writes all of `data` at the file position; returns the error, if any.
inline std::error_code write_all(int fd, const void* data, std::size_t size) {
    auto p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return last_error();
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return {};
}

/// Reads up to `size` bytes at `offset`; fewer only at end of file.
inline std::size_t pread_full(int fd, void* data, std::size_t size, off_t offset,
                              std::error_code& ec) {
    auto p = static_cast<char*>(data);
    std::size_t done = 0;
    while (done < size) {
        const ssize_t n = ::pread(fd, p + done, size - done, offset + static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) continue;
            ec = last_error();
            break;
        }
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return done;
}

/// Copies `in` from offset 0 to its end into `out` at out's file position, handing each chunk
/// to `on_chunk(data, size)` first (for digests); returns the error, if any.
template <class OnChunk>
std::error_code copy_content(int in, int out, OnChunk&& on_chunk) {
    std::vector<char> buffer(1 << 20);
    for (off_t offset = 0;;) {
        std::error_code ec;
        const std::size_t n = pread_full(in, buffer.data(), buffer.size(), offset, ec);
        if (ec) return ec;
        if (n == 0) return {};
        on_chunk(buffer.data(), n);
        if ((ec = write_all(out, buffer.data(), n))) return ec;
        offset += static_cast<off_t>(n);
    }
}

inline std::error_code copy_content(int in, int out) {
    return copy_content(in, out, [](const char*, std::size_t) {});
}

/// Hands `length` bytes of `fd` from `offset` to `visit(data, size)` in pieces of `piece` bytes,
/// stopping at the first error `visit` returns; a file that ends early is an I/O error.
template <class Visit>
std::error_code for_each_piece(int fd, std::uint64_t offset, std::uint64_t length, Visit&& visit,
                               std::size_t piece = 256 * 1024) {
    std::vector<char> buffer(static_cast<std::size_t>(std::min<std::uint64_t>(piece, length)));
    for (std::uint64_t done = 0; done < length;) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(piece, length - done));
        std::error_code ec;
        const std::size_t n =
            pread_full(fd, buffer.data(), want, static_cast<off_t>(offset + done), ec);
        if (ec) return ec;
        if (n < want) return errc::io_error;
        if ((ec = visit(static_cast<const char*>(buffer.data()), n))) return ec;
        done += n;
    }
    return {};
}

} // namespace skyvol::detail

#endif
