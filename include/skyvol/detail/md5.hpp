#ifndef SKYVOL_DETAIL_MD5_HPP
#define SKYVOL_DETAIL_MD5_HPP

/// @file
/// MD5 through OpenSSL's EVP interface, for S3-style ETags computed by the embedded stores.

#include <openssl/evp.h>

#include <skyvol/detail/hex.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace skyvol::detail {

using md5_digest = std::array<unsigned char, 16>;

/// Incremental MD5.
class md5 {
public:
    md5()
        : ctx_(EVP_MD_CTX_new()) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_md5(), nullptr) != 1)
            throw std::runtime_error("skyvol: OpenSSL cannot initialise MD5");
    }
    void update(const void* data, std::size_t size) {
        if (size) EVP_DigestUpdate(ctx_.get(), data, size);
    }
    md5_digest finish() {
        md5_digest out{};
        unsigned int n = 0;
        EVP_DigestFinal_ex(ctx_.get(), out.data(), &n);
        return out;
    }

private:
    struct free_ctx {
        void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
    };
    std::unique_ptr<EVP_MD_CTX, free_ctx> ctx_;
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
