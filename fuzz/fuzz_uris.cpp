// The URI parsers a user's text reaches: http(s) endpoints, store URIs (file://, s3://, ...) and
// the S3 family's provider URIs. Each either refuses with a reason or gives parts that obey
// their own rules: an endpoint's origin parses back to the same scheme, host and port; a bucket
// is never empty and holds no '/'; a prefix never starts with '/'.
#include "require.hpp"

#include <skyvol/http/url.hpp>
#include <skyvol/store/s3_uri.hpp>
#include <skyvol/uri.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using skyvol::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::error_code ec;

    const skyvol::http::url u = skyvol::http::parse_url(text, ec);
    if (!ec) {
        require(u.scheme == "http" || u.scheme == "https");
        require(!u.host.empty());
        require(!u.path.empty() && u.path.front() == '/');
        std::error_code again;
        const skyvol::http::url back = skyvol::http::parse_url(u.origin(), again);
        require(!again);
        require(back.scheme == u.scheme && back.host == u.host &&
                (back.port == u.port || (u.port == 0 && back.port == u.default_port()) ||
                 (back.port == 0 && u.port == u.default_port())));
    }

    std::string why;
    const skyvol::store_uri s = skyvol::parse_store_uri(text, why, ec);
    if (ec)
        require(!why.empty());
    else
        require(!s.scheme.empty());

    why.clear();
    const skyvol::s3_location where = skyvol::parse_s3_uri(text, why, ec);
    if (ec) {
        require(!why.empty());
    } else {
        require(!where.bucket.empty());
        require(where.bucket.find('/') == std::string::npos);
        require(where.prefix.empty() || where.prefix.front() != '/');
    }
    return 0;
}
