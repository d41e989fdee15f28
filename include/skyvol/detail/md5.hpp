#ifndef SKYVOL_DETAIL_MD5_HPP
#define SKYVOL_DETAIL_MD5_HPP

/// @file
/// MD5 (RFC 1321), for S3-style ETags computed by the embedded stores and the read cache. Our
/// own, so that a program using the local store needs no OpenSSL; the tests hold it to
/// OpenSSL's.

#include <skyvol/detail/hex.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace skyvol::detail {

using md5_digest = std::array<unsigned char, 16>;

/// Incremental MD5.
class md5 {
public:
    void update(const void* data, std::size_t size) {
        if (size == 0) return; // `data` may be null then, and memcpy must not see it
        auto* in = static_cast<const unsigned char*>(data);
        length_ += size;
        if (buffered_) {
            const std::size_t take = std::min(size, block_size - buffered_);
            std::memcpy(buffer_.data() + buffered_, in, take);
            buffered_ += take;
            in += take;
            size -= take;
            if (buffered_ < block_size) return;
            compress(buffer_.data());
            buffered_ = 0;
        }
        for (; size >= block_size; in += block_size, size -= block_size)
            compress(in);
        std::memcpy(buffer_.data(), in, size);
        buffered_ = size;
    }

    md5_digest finish() {
        const std::uint64_t bits = length_ * 8;
        static constexpr unsigned char padding[block_size] = {0x80};
        update(padding, buffered_ < 56 ? 56 - buffered_ : 56 + block_size - buffered_);
        unsigned char encoded_length[8];
        for (int i = 0; i < 8; ++i)
            encoded_length[i] = static_cast<unsigned char>(bits >> (8 * i));
        update(encoded_length, sizeof encoded_length);
        md5_digest out{};
        for (std::size_t i = 0; i < 16; ++i)
            out[i] = static_cast<unsigned char>(state_[i / 4] >> (8 * (i % 4)));
        return out;
    }

private:
    static constexpr std::size_t block_size = 64;

    // floor(|sin(i + 1)| * 2^32), and the per-round shifts (RFC 1321, 3.4).
    static constexpr std::uint32_t k[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391};
    static constexpr int shift[4][4] = {
        {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

    static constexpr std::uint32_t rotate_left(std::uint32_t x, int n) {
        return (x << n) | (x >> (32 - n));
    }

    template <int I>
    static void step(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c, std::uint32_t& d,
                     const std::uint32_t* m) {
        std::uint32_t f;
        int word;
        if constexpr (I < 16) {
            f = d ^ (b & (c ^ d));
            word = I;
        } else if constexpr (I < 32) {
            f = c ^ (d & (b ^ c));
            word = (5 * I + 1) % 16;
        } else if constexpr (I < 48) {
            f = b ^ c ^ d;
            word = (3 * I + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            word = (7 * I) % 16;
        }
        const std::uint32_t next = b + rotate_left(a + f + k[I] + m[word], shift[I / 16][I % 4]);
        a = d;
        d = c;
        c = b;
        b = next;
    }
    template <int... I>
    static void rounds(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c, std::uint32_t& d,
                       const std::uint32_t* m, std::integer_sequence<int, I...>) {
        (step<I>(a, b, c, d, m), ...);
    }

    void compress(const unsigned char* block) {
        std::uint32_t m[16];
        for (int i = 0; i < 16; ++i)
            m[i] = std::uint32_t(block[4 * i]) | std::uint32_t(block[4 * i + 1]) << 8 |
                   std::uint32_t(block[4 * i + 2]) << 16 | std::uint32_t(block[4 * i + 3]) << 24;
        std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
        rounds(a, b, c, d, m, std::make_integer_sequence<int, 64>());
        state_[0] += a;
        state_[1] += b;
        state_[2] += c;
        state_[3] += d;
    }

    std::uint32_t state_[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    std::array<unsigned char, block_size> buffer_{};
    std::size_t buffered_ = 0;
    std::uint64_t length_ = 0;
};

/// Parses 32 hex digits; false if `hex` is anything else.
inline bool from_hex(std::string_view hex, md5_digest& out) {
    if (hex.size() != 32) return false;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < 16; ++i) {
        const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    return true;
}

/// S3's ETag of a multipart object: MD5 of the parts' binary MD5s, then "-" and the part count.
/// Returns empty if a part ETag is not a plain MD5.
template <class PartEtags>
std::string multipart_etag(const PartEtags& part_etags) {
    md5 combined;
    std::size_t count = 0;
    for (const std::string& etag : part_etags) {
        md5_digest d;
        if (!from_hex(etag, d)) return {};
        combined.update(d.data(), d.size());
        ++count;
    }
    return to_hex(combined.finish()) + "-" + std::to_string(count);
}

} // namespace skyvol::detail

#endif
