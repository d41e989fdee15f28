#ifndef SKYVOL_FS_DETAIL_TRANSFER_HPP
#define SKYVOL_FS_DETAIL_TRANSFER_HPP

/// @file
/// Moving whole objects between a local file and a store: uploads pick a single put or a
/// multipart upload by size (and abort the upload if a part fails); downloads read in chunks.
/// Memory stays bounded by one part (or one chunk) whatever the object's size.

#include <skyvol/error.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/detail/posix_file.hpp>
#include <skyvol/store/object_info.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace skyvol::detail {

inline constexpr auto as_result = boost::asio::as_tuple(boost::asio::use_awaitable);

/// Throws a system_error for `ec` (caught and turned back into a code at the API's edge).
[[noreturn]] inline void fail(std::error_code ec) {
    throw boost::system::system_error(ec);
}

/// Throws the error as Asio does, so callers can co_await without checking each step.
inline void throw_on(const boost::system::error_code& ec) {
    if (ec) throw boost::system::system_error(ec);
}

/// Part size for `size` bytes: at least `preferred`, rounded up to whole MiB, and large enough
/// that the object needs no more than 10,000 parts.
inline std::uint64_t part_size_for(std::uint64_t size, std::uint64_t preferred) {
    constexpr std::uint64_t mib = 1ull << 20;
    std::uint64_t part =
        std::max({preferred, multipart_limits::min_part_size,
                  (size + multipart_limits::max_parts - 1) / multipart_limits::max_parts});
    return (part + mib - 1) / mib * mib;
}

/// Uploads `size` bytes of the open file `fd` to `key`.
template <object_store Store>
boost::asio::awaitable<put_result>
upload_from_file(Store& store, std::string key, int fd, std::uint64_t size, put_options options,
                 std::uint64_t multipart_threshold, std::uint64_t preferred_part_size) {
    if (size <= multipart_threshold) {
        std::string data(size, '\0');
        std::error_code read_ec;
        if (pread_full(fd, data.data(), data.size(), 0, read_ec) != size || read_ec)
            throw boost::system::system_error(read_ec ? read_ec : std::error_code(errc::io_error));
        auto [ec, result] =
            co_await store.async_put(key, boost::asio::buffer(data), options, as_result);
        throw_on(ec);
        co_return result;
    }
    auto [cec, upload_id] = co_await store.async_create_multipart(key, options, as_result);
    throw_on(cec);
    const std::uint64_t part_size = part_size_for(size, preferred_part_size);
    std::vector<completed_part> parts;
    std::string buffer;
    boost::system::error_code failure;
    for (std::uint64_t at = 0; at < size && !failure; at += part_size) {
        buffer.resize(static_cast<std::size_t>(std::min(part_size, size - at)));
        std::error_code read_ec;
        if (pread_full(fd, buffer.data(), buffer.size(), static_cast<off_t>(at), read_ec) !=
                buffer.size() ||
            read_ec) {
            failure = read_ec ? read_ec : std::error_code(errc::io_error);
            break;
        }
        const int number = static_cast<int>(parts.size() + 1);
        auto [pec, part] = co_await store.async_upload_part(key, upload_id, number,
                                                            boost::asio::buffer(buffer), as_result);
        if (pec)
            failure = pec;
        else
            parts.push_back(std::move(part));
    }
    if (!failure) {
        auto [ec, result] =
            co_await store.async_complete_multipart(key, upload_id, parts, as_result);
        if (!ec) co_return result;
        failure = ec;
    }
    // Best effort: an abandoned upload only costs storage until the bucket's lifecycle rule.
    auto [ignored] = co_await store.async_abort_multipart(key, upload_id, as_result);
    (void)ignored;
    throw boost::system::system_error(failure);
}

/// Downloads `size` bytes of `key` into the open file `fd` from offset 0.
template <object_store Store>
boost::asio::awaitable<std::uint64_t> download_to_file(Store& store, std::string key, int fd,
                                                       std::uint64_t size) {
    constexpr std::size_t chunk = 8u << 20;
    std::string buffer(static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size)), '\0');
    std::uint64_t done = 0;
    while (done < size) {
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - done));
        auto [ec, n] = co_await store.async_get(key, done, boost::asio::buffer(buffer.data(), want),
                                                as_result);
        throw_on(ec);
        if (n == 0) break; // the object shrank meanwhile: keep what there is
        if (::pwrite(fd, buffer.data(), n, static_cast<off_t>(done)) != static_cast<ssize_t>(n))
            throw boost::system::system_error(last_error());
        done += n;
    }
    co_return done;
}

} // namespace skyvol::detail

#endif
