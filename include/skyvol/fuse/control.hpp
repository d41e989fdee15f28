#ifndef SKYVOL_FUSE_CONTROL_HPP
#define SKYVOL_FUSE_CONTROL_HPP

/// @file
/// The extended attributes on a mount's root through which a running mount is asked and told
/// things (`skyvol unmount` and `skyvol flush` use them; so can any program, with getfattr and
/// setfattr), and what each means for a volume: the FUSE adaptor only passes them through.

#include <skyvol/detail/async.hpp>
#include <skyvol/mode.hpp>

#include <boost/asio/async_result.hpp>

#include <unistd.h>

#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace skyvol::fuse::control {

/// Read: how many closed files are not in the bucket yet (write-back; "0" otherwise).
inline constexpr char pending[] = "user.skyvol.pending";
/// Read: the process id serving the mount.
inline constexpr char pid[] = "user.skyvol.pid";
/// Read: the cache folder, where a write-back mount keeps closed files until they are uploaded.
inline constexpr char cache_dir[] = "user.skyvol.cache_dir";
/// Write (any value): returns once every closed file is uploaded, or with the upload's error.
inline constexpr char flush[] = "user.skyvol.flush";
/// Read: why the last upload attempt failed, naming the key and the cause, "" once an upload
/// succeeds after it (write-back; "" otherwise). What a failed flush's errno cannot say.
inline constexpr char upload_error[] = "user.skyvol.upload_error";

/// The value of the readable attribute `name` for `volume`; none if `name` is not one.
template <class Volume>
std::optional<std::string> value_of(const Volume& volume, std::string_view name) {
    if (name == pending) {
        if constexpr (write_back_mode<typename Volume::mode_type>)
            return std::to_string(volume.pending_uploads());
        else
            return "0";
    }
    if (name == upload_error) {
        if constexpr (write_back_mode<typename Volume::mode_type>)
            return volume.upload_stats().last_failure;
        else
            return std::string();
    }
    if (name == pid) return std::to_string(::getpid());
    if (name == cache_dir) return volume.options().cache_dir.string();
    return std::nullopt;
}

/// Carries out the writable attribute `name` on `volume`; completes `token` with
/// `(error_code)`: `operation_not_supported` if `name` is not one, the flush's error otherwise.
template <class Volume, class CompletionToken>
auto async_write(Volume& volume, std::string_view name, CompletionToken&& token) {
    using signature = void(skyvol::detail::asio_error_code);
    const bool is_flush = name == flush;
    return boost::asio::async_initiate<CompletionToken, signature>(
        [&volume, is_flush](auto handler) {
            if constexpr (write_back_mode<typename Volume::mode_type>)
                if (is_flush) return volume.async_flush(std::move(handler));
            // Nothing to flush outside write-back: close already uploaded.
            skyvol::detail::async_complete<signature>(
                volume.get_executor(), std::move(handler),
                skyvol::detail::asio_error_code(
                    is_flush ? std::error_code{}
                             : std::make_error_code(std::errc::operation_not_supported)));
        },
        token);
}

} // namespace skyvol::fuse::control

#endif
