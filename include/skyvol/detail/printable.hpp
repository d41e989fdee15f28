#ifndef SKYVOL_DETAIL_PRINTABLE_HPP
#define SKYVOL_DETAIL_PRINTABLE_HPP

/// @file
/// Keys and names from a bucket as they can go into a log line: any bytes at all.

#include <string>
#include <string_view>

namespace skyvol::detail {

/// `text` with every byte that is not printable ASCII (and the backslash) as \xNN.
inline std::string printable(std::string_view text) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f && c != '\\') {
            out += c;
        } else {
            out += "\\x";
            out += digits[u >> 4];
            out += digits[u & 15];
        }
    }
    return out;
}

} // namespace skyvol::detail

#endif
