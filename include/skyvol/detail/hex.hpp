#ifndef SKYVOL_DETAIL_HEX_HPP
#define SKYVOL_DETAIL_HEX_HPP

/// @file
/// Lower-case hex of digests (ETags, SigV4 hashes).

#include <array>
#include <cstddef>
#include <string>

namespace skyvol::detail {

inline std::string to_hex(const unsigned char* data, std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(size * 2, '0');
    for (std::size_t i = 0; i < size; ++i) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xF];
    }
    return out;
}

template <std::size_t N>
std::string to_hex(const std::array<unsigned char, N>& digest) {
    return to_hex(digest.data(), digest.size());
}

} // namespace skyvol::detail

#endif
