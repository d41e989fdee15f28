#ifndef SKYVOL_STORE_S3_URI_HPP
#define SKYVOL_STORE_S3_URI_HPP

/// @file
/// The URIs of S3-compatible services and the options that reach them:
///
///     s3://bucket/prefix           Amazon S3 (or any endpoint given with --endpoint)
///     r2://bucket/prefix           Cloudflare R2; account from CLOUDFLARE_ACCOUNT_ID
///     gs://bucket/prefix           GCS through its XML API with HMAC keys
///     cos://region/bucket/prefix   IBM Cloud Object Storage
///     oci://bucket@region/prefix   Oracle Cloud; namespace from OCI_NAMESPACE
///
/// Bucket names are checked with each service's rules before any request.

#include <skyvol/error.hpp>
#include <skyvol/store/detail/bucket_names.hpp>
#include <skyvol/store/s3_options.hpp>
#include <skyvol/uri.hpp>

#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>

namespace skyvol {

/// What an S3-compatible URI names.
struct s3_location {
    s3_provider provider = s3_provider::aws;
    std::string bucket;
    std::string prefix; ///< without a leading slash; for the volume
    std::string region; ///< from the URI (cos://, oci://), else empty
};

namespace detail::s3 {

inline std::string getenv_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

/// Region and namespace names end up in host names: letters, digits and hyphens only.
inline bool is_host_label(std::string_view text) noexcept {
    if (text.empty() || text.size() > 63) return false;
    for (char c : text)
        if (!is_lower_alnum(c) && c != '-' && !(c >= 'A' && c <= 'Z')) return false;
    return text.front() != '-' && text.back() != '-';
}

inline bool is_provider_scheme(std::string_view scheme) noexcept {
    return scheme == "s3" || scheme == "r2" || scheme == "gs" || scheme == "cos" || scheme == "oci";
}

} // namespace detail::s3

/// True for the schemes `parse_s3_uri` takes.
inline bool is_s3_uri(std::string_view text) {
    std::string why;
    std::error_code ec;
    const store_uri uri = parse_store_uri(text, why, ec);
    return !ec && detail::s3::is_provider_scheme(uri.scheme);
}

/// Parses one of the URIs above; `errc::invalid_config` with `why` naming the rule broken.
inline s3_location parse_s3_uri(std::string_view text, std::string& why, std::error_code& ec) {
    s3_location where;
    const store_uri uri = parse_store_uri(text, why, ec);
    if (ec) return where;
    auto fail = [&](std::string sentence) {
        why = std::move(sentence);
        ec = errc::invalid_config;
        return s3_location();
    };
    std::string path = uri.path.empty() ? std::string() : uri.path.substr(1);
    if (uri.scheme == "s3" || uri.scheme == "r2" || uri.scheme == "gs") {
        where.provider = uri.scheme == "s3"   ? s3_provider::aws
                         : uri.scheme == "r2" ? s3_provider::r2
                                              : s3_provider::gcs;
        where.bucket = uri.authority;
    } else if (uri.scheme == "cos") {
        where.provider = s3_provider::ibm_cos;
        where.region = uri.authority;
        if (!detail::s3::is_host_label(where.region))
            return fail("cos:// URIs name a region first: cos://REGION/BUCKET/prefix (e.g. "
                        "cos://us-south/my-bucket), not '" +
                        where.region + "'");
        const std::size_t slash = path.find('/');
        where.bucket = path.substr(0, slash);
        path = slash == std::string::npos ? std::string() : path.substr(slash + 1);
    } else if (uri.scheme == "oci") {
        where.provider = s3_provider::oci;
        const std::size_t at = uri.authority.find('@');
        if (at == std::string::npos)
            return fail("oci:// URIs name the bucket and its region: oci://BUCKET@REGION/prefix");
        where.bucket = uri.authority.substr(0, at);
        where.region = uri.authority.substr(at + 1);
        if (!detail::s3::is_host_label(where.region))
            return fail("oci:// region '" + where.region +
                        "' is not a region name (e.g. us-ashburn-1)");
    } else {
        return fail("S3-compatible stores take s3://, r2://, gs://, cos:// or oci:// URIs, not " +
                    uri.scheme + "://");
    }
    if (where.bucket.empty())
        return fail(uri.scheme + ":// URI '" + std::string(text) + "' names no bucket");
    if (std::string problem = detail::s3::bucket_name_problem(where.bucket, where.provider);
        !problem.empty())
        return fail("bucket '" + where.bucket + "': " + problem);
    // "s3://b//x" is "s3://b/x": a prefix with a leading '/' would make keys that start with one.
    const std::size_t first = path.find_first_not_of('/');
    where.prefix = first == std::string::npos ? std::string() : path.substr(first);
    return where;
}

/// `base` completed for `where`: its provider, and the service's endpoint and region unless
/// `base` gives them. `errc::invalid_config` with `why` if the service's endpoint needs
/// configuration that is missing (R2's account, OCI's namespace) and none was given.
inline s3_options options_for(const s3_location& where, s3_options base, std::string& why,
                              std::error_code& ec) {
    ec.clear();
    base.provider = where.provider;
    auto missing = [&](std::string sentence) {
        why = std::move(sentence);
        ec = errc::invalid_config;
        return base;
    };
    const bool has_endpoint = !base.endpoint.empty();
    switch (where.provider) {
    case s3_provider::aws:
        break;
    case s3_provider::r2:
        if (base.region.empty()) base.region = "auto"; // R2 signs every request for "auto"
        if (!has_endpoint) {
            std::string account = detail::s3::getenv_or_empty("CLOUDFLARE_ACCOUNT_ID");
            if (account.empty()) account = detail::s3::getenv_or_empty("R2_ACCOUNT_ID");
            if (account.empty())
                return missing("r2://" + where.bucket +
                               ": set CLOUDFLARE_ACCOUNT_ID to the account's id, or give the "
                               "endpoint (https://ACCOUNT_ID.r2.cloudflarestorage.com)");
            if (!detail::s3::is_host_label(account))
                return missing("CLOUDFLARE_ACCOUNT_ID is not an account id");
            base.endpoint = "https://" + account + ".r2.cloudflarestorage.com";
        }
        break;
    case s3_provider::gcs:
        if (base.region.empty()) base.region = "auto";
        if (!has_endpoint) base.endpoint = "https://storage.googleapis.com";
        break;
    case s3_provider::ibm_cos:
        if (base.region.empty()) base.region = where.region;
        if (!has_endpoint)
            base.endpoint = "https://s3." + where.region + ".cloud-object-storage.appdomain.cloud";
        break;
    case s3_provider::oci:
        if (base.region.empty()) base.region = where.region;
        base.style = s3_options::addressing::path; // OCI has no virtual-hosted buckets
        if (!has_endpoint) {
            const std::string ns = detail::s3::getenv_or_empty("OCI_NAMESPACE");
            if (ns.empty())
                return missing("oci://" + where.bucket + "@" + where.region +
                               ": set OCI_NAMESPACE to the tenancy's object storage namespace, "
                               "or give the endpoint");
            if (!detail::s3::is_host_label(ns))
                return missing("OCI_NAMESPACE is not a namespace name");
            base.endpoint =
                "https://" + ns + ".compat.objectstorage." + where.region + ".oraclecloud.com";
        }
        break;
    }
    return base;
}

} // namespace skyvol

#endif
