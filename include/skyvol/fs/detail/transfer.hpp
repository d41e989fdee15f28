#ifndef SKYVOL_FS_DETAIL_TRANSFER_HPP
#define SKYVOL_FS_DETAIL_TRANSFER_HPP

/// @file
/// Moving whole objects between a local file and a store: uploads pick a single put or a
/// multipart upload by size (and abort the upload if a part fails); downloads read in chunks.
/// Both move several parts at once; memory stays bounded by one part per worker.

#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/throw.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/detail/parallel.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/object_info.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include <unistd.h>

namespace skyvol::detail {

/// Fills `buffer` from `fd` at `offset`, or throws: a file shorter than expected is an I/O error.
inline void read_exactly(int fd, std::string& buffer, std::uint64_t offset) {
    std::error_code ec;
    if (pread_full(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset), ec) !=
            buffer.size() ||
        ec)
        fail(ec ? ec : std::error_code(errc::io_error));
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

/// How one whole-object transfer moves its bytes.
struct transfer_shape {
    std::uint64_t multipart_threshold = 16ull << 20; ///< uploads above this go in parts
    std::uint64_t part_size = 8ull << 20;            ///< preferred part (and download chunk)
    std::size_t parallel = 4;                        ///< parts or chunks in flight at once
};

/// Puts `range` of a local file as the object `key`: straight from the file where the store
/// reads files itself, else through one buffer.
template <object_store Store>
boost::asio::awaitable<put_result> put_from_file(Store& store, std::string key, file_range range,
                                                 put_options options) {
    if constexpr (uploads_from_files<Store>) {
        auto [ec, result] = co_await store.async_put_file(key, range, options, as_result);
        throw_on(ec);
        co_return result;
    } else {
        std::string data(static_cast<std::size_t>(range.length), '\0');
        read_exactly(range.fd, data, range.offset);
        auto [ec, result] =
            co_await store.async_put(key, boost::asio::buffer(data), options, as_result);
        throw_on(ec);
        co_return result;
    }
}

/// Uploads `range` of a local file as part `number`; `buffer` is the worker's own, used only
/// where the store cannot read files itself.
template <object_store Store>
boost::asio::awaitable<completed_part>
upload_part_from_file(Store& store, std::string key, std::string upload_id, int number,
                      file_range range, std::string& buffer) {
    if constexpr (uploads_from_files<Store>) {
        auto [ec, part] =
            co_await store.async_upload_part_file(key, upload_id, number, range, as_result);
        throw_on(ec);
        co_return part;
    } else {
        buffer.resize(static_cast<std::size_t>(range.length));
        read_exactly(range.fd, buffer, range.offset);
        auto [ec, part] = co_await store.async_upload_part(key, upload_id, number,
                                                           boost::asio::buffer(buffer), as_result);
        throw_on(ec);
        co_return part;
    }
}

/// Uploads `size` bytes of the open file `fd` to `key`. Parts go up `shape.parallel` at a time,
/// read from the file as they are sent (or through one part-sized buffer per worker, where the
/// store takes only memory).
template <object_store Store>
boost::asio::awaitable<put_result> upload_from_file(Store& store, std::string key, int fd,
                                                    std::uint64_t size, put_options options,
                                                    transfer_shape shape) {
    if (size <= shape.multipart_threshold) {
        const file_range whole{fd, 0, size};
        put_result result = co_await put_from_file(store, key, whole, options);
        co_return result;
    }
    auto [cec, upload_id] = co_await store.async_create_multipart(key, options, as_result);
    throw_on(cec);
    const std::uint64_t part_size = part_size_for(size, shape.part_size);
    const auto count = static_cast<std::size_t>((size + part_size - 1) / part_size);
    std::vector<completed_part> parts(count);
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    auto worker = [&]() -> boost::asio::awaitable<void> {
        std::string buffer;
        for (std::size_t i; !failed && (i = next++) < count;) {
            const std::uint64_t at = i * part_size;
            const file_range range{fd, at, std::min(part_size, size - at)};
            try {
                parts[i] = co_await upload_part_from_file(store, key, upload_id,
                                                          static_cast<int>(i + 1), range, buffer);
            } catch (...) {
                failed = true;
                throw;
            }
        }
    };
    std::exception_ptr failure;
    try {
        co_await run_workers(std::clamp<std::size_t>(shape.parallel, 1, count), worker);
    } catch (...) {
        failure = std::current_exception();
    }
    if (!failure) {
        auto [ec, result] =
            co_await store.async_complete_multipart(key, upload_id, parts, as_result);
        if (!ec) co_return result;
        failure = std::make_exception_ptr(boost::system::system_error(ec));
    }
    // Best effort: an abandoned upload only costs storage until the bucket's lifecycle rule.
    auto [ignored] = co_await store.async_abort_multipart(key, upload_id, as_result);
    (void)ignored;
    std::rethrow_exception(failure);
}

/// The chunk size of `download_to_file`: one ranged GET each.
inline std::uint64_t download_chunk_size(const transfer_shape& shape) {
    return std::max<std::uint64_t>(shape.part_size, 1u << 20);
}

/// Writes a chunk into the file as its GET brings it, in pieces of at least `piece` bytes, so
/// that each is copied while it is still in the CPU's cache: writing a 16 MiB buffer whole cost
/// this VM 2-3 s of system time per GiB, in 256 KiB pieces 0.25 s.
class chunk_writer {
public:
    static constexpr std::size_t piece = 256 * 1024;

    chunk_writer(int fd, const char* data, std::uint64_t at)
        : fd_(fd)
        , data_(data)
        , at_(at) {}

    void received(std::size_t bytes) {
        if (bytes < written_) written_ = 0; // a retry started the body over
        if (bytes - written_ >= piece) write_up_to(bytes);
    }

    /// Writes what is left of the `bytes` the GET returned; the first failure, if any.
    std::error_code finish(std::size_t bytes) {
        if (written_ > bytes) written_ = 0;
        write_up_to(bytes);
        return error_;
    }

private:
    void write_up_to(std::size_t bytes) {
        if (error_) return;
        while (written_ < bytes) {
            const ssize_t n = ::pwrite(fd_, data_ + written_, bytes - written_,
                                       static_cast<off_t>(at_ + written_));
            if (n <= 0) {
                error_ = n < 0 ? last_error() : std::make_error_code(std::errc::io_error);
                return;
            }
            written_ += static_cast<std::size_t>(n);
        }
    }

    int fd_;
    const char* data_;
    std::uint64_t at_;
    std::size_t written_ = 0;
    std::error_code error_;
};

/// Called with each chunk's offset and length once a download wrote it.
using chunk_written = std::function<void(std::uint64_t offset, std::size_t length)>;

/// Downloads `size` bytes of `key` into the open file `fd` from offset 0, in chunks of
/// `shape.part_size`, `shape.parallel` at a time, lowest offsets first, telling `on_chunk` (if
/// set) of each. Returns the bytes written: fewer if the object shrank meanwhile.
template <object_store Store>
boost::asio::awaitable<std::uint64_t> download_to_file(Store& store, std::string key, int fd,
                                                       std::uint64_t size, transfer_shape shape,
                                                       chunk_written on_chunk) {
    const std::uint64_t chunk = download_chunk_size(shape);
    const auto count = static_cast<std::size_t>((size + chunk - 1) / chunk);
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::atomic<std::uint64_t> end{size}; // lowered where a chunk comes back short
    auto worker = [&]() -> boost::asio::awaitable<void> {
        std::string buffer;
        for (std::size_t i; !failed && (i = next++) < count;) {
            const std::uint64_t at = i * chunk;
            buffer.resize(static_cast<std::size_t>(std::min(chunk, size - at)));
            chunk_writer writer{fd, buffer.data(), at};
            boost::system::error_code ec;
            std::size_t n = 0;
            if constexpr (reports_get_progress<Store>) {
                // Named: g++ 12 destroys a capturing temporary in a co_await expression twice.
                const get_progress progress = [&writer](std::size_t received) {
                    writer.received(received);
                };
                std::tie(ec, n) = co_await store.async_get(key, at, boost::asio::buffer(buffer),
                                                           progress, as_result);
            } else {
                std::tie(ec, n) =
                    co_await store.async_get(key, at, boost::asio::buffer(buffer), as_result);
            }
            if (ec) failed = true;
            throw_on(ec);
            if (const std::error_code wec = writer.finish(n)) {
                failed = true;
                throw boost::system::system_error(wec);
            }
            if (n < buffer.size()) {
                std::uint64_t seen = end.load();
                while (at + n < seen && !end.compare_exchange_weak(seen, at + n)) {
                }
            }
            if (on_chunk) on_chunk(at, n);
        }
    };
    co_await run_workers(
        std::clamp<std::size_t>(shape.parallel, 1, std::max<std::size_t>(count, 1)), worker);
    co_return end.load();
}

template <object_store Store>
boost::asio::awaitable<std::uint64_t> download_to_file(Store& store, std::string key, int fd,
                                                       std::uint64_t size, transfer_shape shape) {
    return download_to_file(store, std::move(key), fd, size, shape, chunk_written());
}

} // namespace skyvol::detail

#endif
