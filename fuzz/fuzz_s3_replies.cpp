// Every parser of what an S3 server or a credential endpoint answers: error, list, multipart,
// copy and delete replies, bucket-location hints, dates, URL-encoded keys, STS and the
// container/IMDS JSON. Whatever the bytes, each parser returns or sets an error code; it never
// crashes, throws or hands back a page that breaks its own rules.
//
// Input: the first byte picks the root element name of the result parsers; the rest is the body.
#include "require.hpp"

#include <skyvol/auth/detail/credential_replies.hpp>
#include <skyvol/store/detail/s3_protocol.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using skyvol::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    constexpr std::string_view roots[] = {"CompleteMultipartUploadResult", "CopyObjectResult",
                                          "CopyPartResult", "InitiateMultipartUploadResult"};
    const std::string_view root = roots[data[0] % 4];
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    namespace s3 = skyvol::detail::s3;

    const s3::error_reply e = s3::parse_error(body);
    (void)e.describe();
    (void)s3::error_for(403, e.code);
    (void)s3::error_region(body);

    std::error_code ec;
    const skyvol::list_page page = s3::parse_list(body, ec);
    if (ec) require(page.objects.empty() && page.common_prefixes.empty());
    // A truncated page says where to go on (the store refuses a loop; the parser must not
    // invent a token).
    if (!ec && page.truncated()) require(!page.next_continuation_token.empty());

    (void)s3::parse_upload_id(body, ec);
    skyvol::detail::s3::error_reply embedded;
    (void)s3::parse_result_etag(body, root, ec, embedded);
    (void)s3::parse_delete_result(body, ec);

    std::string decoded;
    if (s3::url_decode(body, decoded)) require(decoded.size() <= body.size());
    (void)s3::unquote(body);
    (void)s3::parse_iso8601(body);
    (void)s3::parse_http_date(body);

    std::string problem;
    const auto keys = skyvol::auth::detail::parse_json_credentials(body, problem);
    require(keys.has_value() || !problem.empty());
    (void)skyvol::auth::detail::parse_sts_reply(body, "AssumeRoleWithWebIdentity");
    return 0;
}
