#ifndef SKYVOL_URI_HPP
#define SKYVOL_URI_HPP

/// @file
/// Where a volume's objects live, written as a URI: `file:///srv/bucket` for the local store;
/// `s3://bucket/prefix` and friends as their stores arrive. Parsing is shared; each store
/// checks its own scheme and rules in its `from_uri`.

#include <skyvol/error.hpp>

#include <string>
#include <string_view>

namespace skyvol {

struct store_uri {
    std::string scheme;    ///< lower case: "file", "s3", ...
    std::string authority; ///< the bucket for object stores; empty for file:///
    std::string path;      ///< after the authority: "/srv/bucket", or "/prefix/..."
};

/// Splits `scheme://authority/path`; `errc::invalid_config` with `why` set if it is not one.
inline store_uri parse_store_uri(std::string_view text, std::string& why, std::error_code& ec) {
    ec.clear();
    store_uri uri;
    const std::size_t colon = text.find("://");
    if (colon == std::string_view::npos || colon == 0) {
        why = "'" + std::string(text) +
              "' is not a URI (expected scheme://..., e.g. file:///srv/bucket)";
        ec = errc::invalid_config;
        return uri;
    }
    for (char c : text.substr(0, colon)) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
        if (!ok) {
            why = "'" + std::string(text) + "' has an invalid scheme";
            ec = errc::invalid_config;
            return uri;
        }
        uri.scheme += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    const std::string_view rest = text.substr(colon + 3);
    const std::size_t slash = rest.find('/');
    uri.authority = std::string(rest.substr(0, slash));
    uri.path = slash == std::string_view::npos ? std::string() : std::string(rest.substr(slash));
    if (text.find('\0') != std::string_view::npos) {
        why = "the URI contains a NUL byte";
        ec = errc::invalid_config;
    }
    return uri;
}

} // namespace skyvol

#endif
