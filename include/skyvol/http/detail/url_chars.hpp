#ifndef SKYVOL_HTTP_DETAIL_URL_CHARS_HPP
#define SKYVOL_HTTP_DETAIL_URL_CHARS_HPP

/// @file
/// Character classes parse_url checks a URL's parts against.

#include <cctype>
#include <string_view>

namespace skyvol::http::detail {

/// A character allowed anywhere in a URL as skyvol accepts them (no space, control or
/// unsafe character).
inline bool url_char_ok(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' && c != '^' &&
           c != '`' && c != '{' && c != '|' && c != '}';
}

/// Hex digits, colons and dots with at least one colon (an embedded IPv4 tail is fine).
inline bool is_ipv6_literal(std::string_view s) noexcept {
    if (s.size() < 2) return false;
    for (char c : s)
        if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) return false;
    return s.find(':') != std::string_view::npos;
}

/// A DNS-style host name: letters, digits, '-', '.', '_'.
inline bool is_reg_name(std::string_view s) noexcept {
    if (s.empty() || s.size() > 253) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
            return false;
    return true;
}

} // namespace skyvol::http::detail

#endif
