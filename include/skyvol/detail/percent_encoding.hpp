#ifndef SKYVOL_DETAIL_PERCENT_ENCODING_HPP
#define SKYVOL_DETAIL_PERCENT_ENCODING_HPP

/// @file
/// RFC 3986 percent-encoding, as SigV4 signs URIs and as servers echo them.

#include <string>
#include <string_view>

namespace skyvol::detail {

/// Unreserved A-Z a-z 0-9 - _ . ~ kept, every other byte %XX (upper-case hex), '/' kept unless
/// `encode_slash`.
inline std::string percent_encode(std::string_view text, bool encode_slash) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                                c == '~';
        if (unreserved || (c == '/' && !encode_slash)) {
            out += ch;
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 0xF];
        }
    }
    return out;
}

} // namespace skyvol::detail

#endif
