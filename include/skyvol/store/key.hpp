#ifndef SKYVOL_STORE_KEY_HPP
#define SKYVOL_STORE_KEY_HPP

/// @file
/// Object-key validation shared by every store: what no store accepts, so that a hostile key is
/// refused before it reaches a disk or a URL.

#include <skyvol/error.hpp>

#include <cstddef>
#include <string_view>

namespace skyvol {

/// Longest key in bytes (S3's limit).
inline constexpr std::size_t max_key_length = 1024;

/// True when `text` is well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
constexpr bool is_valid_utf8(std::string_view text) noexcept {
    std::size_t i = 0;
    const std::size_t n = text.size();
    while (i < n) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t extra = 0;
        unsigned min = 0, cp = 0;
        if ((c & 0xE0) == 0xC0)
            extra = 1, min = 0x80, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            extra = 2, min = 0x800, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            extra = 3, min = 0x10000, cp = c & 0x07;
        else
            return false;
        if (n - i <= extra) return false;
        for (std::size_t k = 1; k <= extra; ++k) {
            const auto cc = static_cast<unsigned char>(text[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += extra + 1;
    }
    return true;
}

/// Checks a key against the rules every store enforces; returns `errc::invalid_key` when it is
/// empty, longer than 1024 bytes, starts with '/', holds NUL or a '..' segment, or is not UTF-8.
inline std::error_code validate_key(std::string_view key) noexcept {
    if (key.empty() || key.size() > max_key_length || key.front() == '/' ||
        key.find('\0') != std::string_view::npos || !is_valid_utf8(key))
        return errc::invalid_key;
    for (std::size_t start = 0; start <= key.size();) {
        const std::size_t end = std::min(key.find('/', start), key.size());
        if (key.substr(start, end - start) == "..") return errc::invalid_key;
        start = end + 1;
    }
    return {};
}

/// Like `validate_key`, but for a listing prefix or a start-after key, which may be empty.
inline std::error_code validate_prefix(std::string_view prefix) noexcept {
    return prefix.empty() ? std::error_code{} : validate_key(prefix);
}

} // namespace skyvol

#endif
