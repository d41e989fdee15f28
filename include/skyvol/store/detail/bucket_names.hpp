#ifndef SKYVOL_STORE_DETAIL_BUCKET_NAMES_HPP
#define SKYVOL_STORE_DETAIL_BUCKET_NAMES_HPP

/// @file
/// Each S3-compatible service's rules for bucket names, checked before any request so that a
/// bad name fails with the rule it breaks rather than with a server's 400 or a DNS error.

#include <skyvol/store/s3_options.hpp>

#include <string>
#include <string_view>

namespace skyvol::detail::s3 {

inline bool is_lower_alnum(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/// Four dot-separated groups of digits: a name that reads as an IPv4 address.
inline bool looks_like_ip(std::string_view name) noexcept {
    int dots = 0;
    for (char c : name) {
        if (c == '.')
            ++dots;
        else if (c < '0' || c > '9')
            return false;
    }
    return dots == 3;
}

/// The rules most services share: 3 to 63 characters from `allowed`, letter or digit at both
/// ends, no IP-like names; empty if `name` follows them.
inline std::string common_bucket_problem(std::string_view name, std::string_view allowed,
                                         std::string_view allowed_text) {
    if (name.size() < 3 || name.size() > 63) return "bucket names are 3 to 63 characters long";
    for (char c : name)
        if (!is_lower_alnum(c) && allowed.find(c) == std::string_view::npos)
            return "bucket names use only lower-case letters, digits" + std::string(allowed_text);
    if (!is_lower_alnum(name.front()) || !is_lower_alnum(name.back()))
        return "bucket names begin and end with a letter or digit";
    if (name.find("..") != std::string_view::npos) return "bucket names have no two adjacent dots";
    if (looks_like_ip(name)) return "bucket names are not IP addresses";
    return {};
}

/// Amazon S3's general-purpose bucket rules; the sentence says which one `name` breaks.
inline std::string bucket_name_problem(std::string_view name) {
    if (std::string p = common_bucket_problem(name, ".-", ", dots and hyphens"); !p.empty())
        return p;
    if (name.starts_with("xn--") || name.starts_with("sthree-"))
        return "bucket names do not begin with xn-- or sthree-";
    if (name.ends_with("-s3alias") || name.ends_with("--ol-s3"))
        return "bucket names do not end with -s3alias or --ol-s3";
    return {};
}

/// Google Cloud Storage: dots allow up to 222 characters in parts of at most 63; underscores
/// are allowed; no "goog" prefix and no "google" inside.
inline std::string gcs_bucket_name_problem(std::string_view name) {
    const bool dotted = name.find('.') != std::string_view::npos;
    if (name.size() < 3 || name.size() > (dotted ? 222u : 63u))
        return "GCS bucket names are 3 to 63 characters long (222 with dots)";
    for (std::size_t start = 0; start <= name.size();) {
        const std::size_t end = std::min(name.find('.', start), name.size());
        if (end - start > 63)
            return "each dot-separated part of a GCS bucket name is 63 characters at most";
        start = end + 1;
    }
    for (char c : name)
        if (!is_lower_alnum(c) && c != '.' && c != '-' && c != '_')
            return "GCS bucket names use only lower-case letters, digits, dots, hyphens and "
                   "underscores";
    if (!is_lower_alnum(name.front()) || !is_lower_alnum(name.back()))
        return "GCS bucket names begin and end with a letter or digit";
    if (name.find("..") != std::string_view::npos)
        return "GCS bucket names have no two adjacent dots";
    if (looks_like_ip(name)) return "GCS bucket names are not IP addresses";
    if (name.starts_with("goog")) return "GCS bucket names do not begin with goog";
    if (name.find("google") != std::string_view::npos ||
        name.find("g00gle") != std::string_view::npos)
        return "GCS bucket names do not contain google";
    return {};
}

/// Bucket-name rules of `provider`; the sentence says which one `name` breaks, empty if none.
inline std::string bucket_name_problem(std::string_view name, s3_provider provider) {
    switch (provider) {
    case s3_provider::r2:
        if (std::string p = common_bucket_problem(name, "-", " and hyphens"); !p.empty())
            return "R2 " + p;
        return {};
    case s3_provider::gcs:
        return gcs_bucket_name_problem(name);
    case s3_provider::ibm_cos:
        if (std::string p = common_bucket_problem(name, ".-", ", dots and hyphens"); !p.empty())
            return "IBM COS " + p;
        return {};
    case s3_provider::oci:
        // Path-style only, so upper case and underscores are fine; no dot-only names.
        if (name.empty() || name.size() > 256)
            return "OCI bucket names are 1 to 256 characters long";
        for (char c : name)
            if (!is_lower_alnum(c) && !(c >= 'A' && c <= 'Z') && c != '-' && c != '_' && c != '.')
                return "OCI bucket names use only letters, digits, hyphens, underscores and dots";
        if (name == "." || name == "..") return "OCI bucket names are not . or ..";
        return {};
    case s3_provider::aws:
        break;
    }
    return bucket_name_problem(name);
}

} // namespace skyvol::detail::s3

#endif
