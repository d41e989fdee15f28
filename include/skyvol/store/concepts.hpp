#ifndef SKYVOL_STORE_CONCEPTS_HPP
#define SKYVOL_STORE_CONCEPTS_HPP

/// @file
/// The object-store concept, built from one small concept per capability so that a store that
/// misses one gets an error naming it. Every operation is asynchronous and takes any Asio
/// completion token (callbacks, `use_future`, `use_awaitable`, `as_tuple(...)`).
///
/// | operation                                                    | completion signature          |
/// |--------------------------------------------------------------|-------------------------------|
/// | `async_head(key, token)`                                     | `(error_code, object_info)`   |
/// | `async_get(key, offset, MutableBufferSequence, token)`       | `(error_code, size_t bytes)`  |
/// | `async_put(key, ConstBufferSequence, put_options, token)`    | `(error_code, put_result)`    |
/// | `async_list(list_request, token)`                            | `(error_code, list_page)`     |
/// | `async_remove(key, token)`                                   | `(error_code)`                |
/// | `async_remove_batch(vector<string> keys, token)`             | `(error_code,
/// vector<remove_failure>)` | | `async_copy(from, to, optional<put_options>, token)`         |
/// `(error_code, put_result)`    | | `async_create_multipart(key, put_options, token)`            |
/// `(error_code, string upload_id)` | | `async_upload_part(key, id, number, ConstBufferSequence,
/// token)` | `(error_code, completed_part)` | | `async_complete_multipart(key, id,
/// vector<completed_part>, token)` | `(error_code, put_result)` | | `async_abort_multipart(key, id,
/// token)`                      | `(error_code)`                |
///
/// `error_code` is `boost::system::error_code` (Asio's), holding a `std::error_code` that
/// compares equal to `skyvol::errc` values. Semantics every store shares (the conformance suite in
/// tests/store_conformance.hpp holds them to it):
/// - `async_get` fills the buffers from `offset`; fewer bytes than the buffers hold means the
/// object
///   ended; an offset at or past the end reads 0 bytes without error; a missing key is `not_found`.
/// - `async_remove` of a missing key succeeds, as in S3.
/// - keys failing `validate_key` are refused with `errc::invalid_key` before any I/O.
/// - multipart parts are 1..10000, at least 5 MiB except the last; ETags follow S3's form.

#include <skyvol/store/object_info.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace skyvol {

namespace detail {
/// A completion handler with exactly this signature: what the concept checks calls against.
template <class Signature>
struct handler_archetype;

template <class... Args>
struct handler_archetype<void(Args...)> {
    void operator()(Args...) {}
};

using ec_t = boost::system::error_code;
} // namespace detail

/// Says who it is, for error messages: `store_name()` ("s3") and `bucket_name()`.
template <class S>
concept names_itself = requires(const S& s) {
    { s.store_name() } -> std::convertible_to<std::string_view>;
    { s.bucket_name() } -> std::convertible_to<std::string_view>;
};

template <class S>
concept heads_objects = requires(S& s, std::string key,
                                 detail::handler_archetype<void(detail::ec_t, object_info)> h) {
    s.async_head(key, std::move(h));
};

template <class S>
concept gets_objects = requires(S& s, std::string key, std::uint64_t offset,
                                boost::asio::mutable_buffer buffer,
                                detail::handler_archetype<void(detail::ec_t, std::size_t)> h) {
    s.async_get(key, offset, buffer, std::move(h));
};

template <class S>
concept puts_objects = requires(S& s, std::string key, boost::asio::const_buffer data,
                                put_options options,
                                detail::handler_archetype<void(detail::ec_t, put_result)> h) {
    s.async_put(key, data, options, std::move(h));
};

template <class S>
concept lists_objects = requires(S& s, list_request request,
                                 detail::handler_archetype<void(detail::ec_t, list_page)> h) {
    s.async_list(request, std::move(h));
};

template <class S>
concept removes_objects =
    requires(S& s, std::string key, std::vector<std::string> keys,
             detail::handler_archetype<void(detail::ec_t)> h,
             detail::handler_archetype<void(detail::ec_t, std::vector<remove_failure>)> hb) {
    s.async_remove(key, std::move(h));
    s.async_remove_batch(keys, std::move(hb));
};

template <class S>
concept copies_objects = requires(S& s, std::string key, std::optional<put_options> options,
                                  detail::handler_archetype<void(detail::ec_t, put_result)> h) {
    s.async_copy(key, key, options, std::move(h));
};

template <class S>
concept uploads_multipart =
    requires(S& s, std::string key, std::string id, int number, boost::asio::const_buffer data,
             put_options options, std::vector<completed_part> parts,
             detail::handler_archetype<void(detail::ec_t, std::string)> created,
             detail::handler_archetype<void(detail::ec_t, completed_part)> uploaded,
             detail::handler_archetype<void(detail::ec_t, put_result)> completed,
             detail::handler_archetype<void(detail::ec_t)> aborted) {
    s.async_create_multipart(key, options, std::move(created));
    s.async_upload_part(key, id, number, data, std::move(uploaded));
    s.async_complete_multipart(key, id, parts, std::move(completed));
    s.async_abort_multipart(key, id, std::move(aborted));
};

/// Everything the file layer needs from an object store.
template <class S>
concept object_store = std::copy_constructible<S> && names_itself<S> && heads_objects<S> &&
    gets_objects<S> && puts_objects<S> && lists_objects<S> && removes_objects<S> &&
    copies_objects<S> && uploads_multipart<S>;

/// Told how many bytes of a ranged GET are in the caller's buffer so far, after each read (from
/// 0 again when a retry starts the body over).
using get_progress = std::function<void(std::size_t received)>;

/// Optional: `async_get(key, offset, mutable_buffer, get_progress, token)` tells of the body as
/// it arrives, so a caller can write it on while it is still in the CPU's cache. Stores that
/// read memory or local files gain nothing from it and need not offer it.
template <class S>
concept reports_get_progress =
    requires(S& s, std::string key, std::uint64_t offset, boost::asio::mutable_buffer buffer,
             get_progress progress, detail::handler_archetype<void(detail::ec_t, std::size_t)> h) {
    s.async_get(key, offset, buffer, progress, std::move(h));
};

/// Optional: `async_put_file(key, file_range, put_options, token)` and
/// `async_upload_part_file(key, id, number, file_range, token)` read the body from the file as
/// they send it, with the completions of `async_put` and `async_upload_part`: an upload then needs
/// no part-sized buffer and no copy of it. A file shorter than the range is `errc::io_error`,
/// and nothing is stored.
template <class S>
concept uploads_from_files =
    requires(S& s, std::string key, std::string id, int number, file_range body,
             put_options options, detail::handler_archetype<void(detail::ec_t, put_result)> put,
             detail::handler_archetype<void(detail::ec_t, completed_part)> uploaded) {
    s.async_put_file(key, body, options, std::move(put));
    s.async_upload_part_file(key, id, number, body, std::move(uploaded));
};

} // namespace skyvol

#endif
