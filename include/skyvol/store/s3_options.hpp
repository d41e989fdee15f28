#ifndef SKYVOL_STORE_S3_OPTIONS_HPP
#define SKYVOL_STORE_S3_OPTIONS_HPP

/// @file
/// How `s3_store` reaches a bucket: the service, endpoint, region, addressing and keys.

#include <skyvol/auth/credentials.hpp>
#include <skyvol/http/options.hpp>

#include <cstddef>
#include <optional>
#include <string>

namespace skyvol {

/// The S3-compatible services whose URIs, endpoints and bucket-name rules skyvol knows. Any
/// other S3 endpoint (MinIO, Wasabi, Backblaze B2...) is `aws` with an explicit endpoint.
enum class s3_provider {
    aws,     ///< s3://bucket: Amazon S3, or any endpoint given explicitly
    r2,      ///< r2://bucket: Cloudflare R2
    gcs,     ///< gs://bucket: Google Cloud Storage's XML interoperability API, HMAC keys
    ibm_cos, ///< cos://region/bucket: IBM Cloud Object Storage
    oci,     ///< oci://bucket@region: Oracle Cloud's Amazon S3 compatibility API
};

struct s3_options {
    /// "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000"... Empty: AWS_ENDPOINT_URL,
    /// else AWS's endpoint for the region (s3_store::from_uri fills it for other providers).
    std::string endpoint{};
    /// Empty: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1.
    std::string region{};
    /// Whose bucket-name rules apply.
    s3_provider provider = s3_provider::aws;
    enum class addressing { automatic, virtual_hosted, path };
    /// automatic: virtual-hosted on AWS (path style for dotted names), path style on custom
    /// endpoints, where virtual hosts rarely resolve.
    addressing style = addressing::automatic;
    /// Explicit keys; without them the credential chain's (auth/credential_chain.hpp).
    std::optional<auth::credentials> credentials{};
    /// Send unsigned requests (public buckets).
    bool anonymous = false;
    http::client_options http{};
    std::size_t io_threads = 2;
};

} // namespace skyvol

#endif
