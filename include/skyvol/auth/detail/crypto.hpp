#ifndef SKYVOL_AUTH_DETAIL_CRYPTO_HPP
#define SKYVOL_AUTH_DETAIL_CRYPTO_HPP

/// @file
/// SHA-256 and HMAC-SHA256 through OpenSSL 3, for request signing and payload hashes.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <skyvol/detail/hex.hpp>

#include <array>
#include <climits>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace skyvol::auth::detail {

using sha256_digest = std::array<unsigned char, 32>;

using skyvol::detail::to_hex;

/// Incremental SHA-256, for payloads hashed chunk by chunk; `finish` starts it afresh.
class sha256_hasher {
public:
    sha256_hasher()
        : ctx_(EVP_MD_CTX_new()) {
        if (!ctx_) throw std::runtime_error("skyvol: OpenSSL cannot allocate a SHA-256 context");
        reset();
    }

    void update(const void* data, std::size_t size) {
        if (size != 0 && EVP_DigestUpdate(ctx_.get(), data, size) != 1)
            throw std::runtime_error("skyvol: OpenSSL SHA-256 update failed");
    }
    void update(std::string_view data) { update(data.data(), data.size()); }

    sha256_digest finish() {
        sha256_digest out{};
        unsigned int size = 0;
        if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &size) != 1 || size != out.size())
            throw std::runtime_error("skyvol: OpenSSL SHA-256 finish failed");
        reset();
        return out;
    }
    std::string finish_hex() { return to_hex(finish()); }

private:
    void reset() {
        if (EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
            throw std::runtime_error("skyvol: OpenSSL cannot initialise SHA-256");
    }

    struct free_ctx {
        void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
    };
    std::unique_ptr<EVP_MD_CTX, free_ctx> ctx_;
};

inline sha256_digest sha256(std::string_view data) {
    sha256_digest out{};
    unsigned int size = 0;
    // OpenSSL may not accept a null pointer even with a zero length.
    static constexpr unsigned char none = 0;
    const void* bytes = data.empty() ? &none : static_cast<const void*>(data.data());
    if (EVP_Digest(bytes, data.size(), out.data(), &size, EVP_sha256(), nullptr) != 1 ||
        size != out.size())
        throw std::runtime_error("skyvol: OpenSSL SHA-256 failed");
    return out;
}

inline std::string sha256_hex(std::string_view data) {
    return to_hex(sha256(data));
}

/// HMAC-SHA256 of `data` under the raw key bytes.
inline sha256_digest hmac_sha256(const unsigned char* key, std::size_t key_size,
                                 std::string_view data) {
    static constexpr unsigned char none = 0;
    if (key_size > static_cast<std::size_t>(INT_MAX))
        throw std::length_error("skyvol: HMAC key too long");
    sha256_digest out{};
    unsigned int size = 0;
    const auto* bytes = data.empty() ? &none : reinterpret_cast<const unsigned char*>(data.data());
    if (!HMAC(EVP_sha256(), key_size ? key : &none, static_cast<int>(key_size), bytes, data.size(),
              out.data(), &size) ||
        size != out.size())
        throw std::runtime_error("skyvol: OpenSSL HMAC-SHA256 failed");
    return out;
}

inline sha256_digest hmac_sha256(std::string_view key, std::string_view data) {
    return hmac_sha256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), data);
}

inline sha256_digest hmac_sha256(const sha256_digest& key, std::string_view data) {
    return hmac_sha256(key.data(), key.size(), data);
}

} // namespace skyvol::auth::detail

#endif
