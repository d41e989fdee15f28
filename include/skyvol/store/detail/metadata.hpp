#ifndef SKYVOL_STORE_DETAIL_METADATA_HPP
#define SKYVOL_STORE_DETAIL_METADATA_HPP

/// @file
/// User-metadata rules the embedded stores share with S3: names are HTTP tokens, compared
/// case-insensitively (so stored lower-case), and names plus values stay within 2 KiB.

#include <skyvol/error.hpp>
#include <skyvol/store/object_info.hpp>

#include <cstddef>
#include <string>

namespace skyvol::detail {

/// S3's limit on the user-defined metadata of one object.
inline constexpr std::size_t max_user_metadata_bytes = 2048;

inline bool is_token_char(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

/// Lower-cases names and checks them; `errc::invalid_argument` or `errc::entity_too_large`.
inline std::error_code normalize_metadata(user_metadata& metadata) {
    user_metadata normalized;
    std::size_t total = 0;
    for (auto& [name, value] : metadata) {
        if (name.empty()) return errc::invalid_argument;
        std::string lower;
        for (char c : name) {
            if (!is_token_char(c)) return errc::invalid_argument;
            lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        }
        for (char c : value)
            if (c == '\r' || c == '\n' || c == '\0') return errc::invalid_argument;
        total += lower.size() + value.size();
        normalized.emplace(std::move(lower), value);
    }
    if (total > max_user_metadata_bytes) return errc::entity_too_large;
    metadata = std::move(normalized);
    return {};
}

inline constexpr const char* default_content_type = "application/octet-stream";

} // namespace skyvol::detail

#endif
