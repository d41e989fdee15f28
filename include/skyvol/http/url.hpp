#ifndef SKYVOL_HTTP_URL_HPP
#define SKYVOL_HTTP_URL_HPP

/// @file
/// An http(s) URL split into the parts a client needs: where to connect and what to ask for.

#include <skyvol/error.hpp>
#include <skyvol/http/detail/url_chars.hpp>

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace skyvol::http {

/// An absolute http or https URL. `host` holds an IPv6 literal without its brackets.
struct url {
    std::string scheme;     ///< "http" or "https", lower case
    std::string host;       ///< lower case; "::1" for "[::1]"
    std::uint16_t port = 0; ///< the explicit port, else 80 or 443
    std::string path = "/"; ///< as written (percent-encoded), "/" when absent
    std::string query;      ///< after '?', without it; the fragment is dropped

    /// Whether the scheme is https.
    bool tls() const noexcept { return scheme == "https"; }

    /// The scheme's port: 443 for https, 80 otherwise.
    std::uint16_t default_port() const noexcept { return tls() ? 443 : 80; }

    /// The Host header value: "host", or "host:port" when the port is not the scheme's default;
    /// IPv6 literals in brackets.
    std::string host_header() const {
        std::string text = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        if (port != 0 && port != default_port()) text += ":" + std::to_string(port);
        return text;
    }

    /// "scheme://host[:port]".
    std::string origin() const { return scheme + "://" + host_header(); }
};

/// Parses an absolute http or https URL ("https://s3.eu-west-1.amazonaws.com",
/// "http://[::1]:9000/base?x=y"). On failure sets `ec` to `errc::invalid_config` and returns an
/// empty url: another scheme, user information, an empty or malformed host, a port outside
/// 1-65535, spaces or control characters.
inline url parse_url(std::string_view text, std::error_code& ec) {
    ec.clear();
    auto fail = [&ec] {
        ec = errc::invalid_config;
        return url{};
    };
    for (char c : text)
        if (!detail::url_char_ok(c)) return fail();
    const std::size_t colon = text.find("://");
    if (colon == std::string_view::npos) return fail();
    url u;
    for (char c : text.substr(0, colon))
        u.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (u.scheme != "http" && u.scheme != "https") return fail();
    std::string_view rest = text.substr(colon + 3);
    if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos)
        rest = rest.substr(0, hash);
    const std::size_t authority_end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, authority_end);
    std::string_view tail =
        authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
    if (authority.find('@') != std::string_view::npos) return fail();
    std::string_view host;
    std::string_view port_text;
    bool has_port = false;
    if (authority.starts_with('[')) {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return fail();
        host = authority.substr(1, close - 1);
        if (!detail::is_ipv6_literal(host)) return fail();
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail();
            has_port = true;
            port_text = after.substr(1);
        }
    } else {
        const std::size_t p = authority.find(':');
        host = authority.substr(0, p);
        if (p != std::string_view::npos) {
            has_port = true;
            port_text = authority.substr(p + 1);
        }
        if (!detail::is_reg_name(host)) return fail();
    }
    for (char c : host)
        u.host += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (has_port) {
        if (port_text.empty() || port_text.size() > 5) return fail();
        unsigned value = 0;
        for (char c : port_text) {
            if (c < '0' || c > '9') return fail();
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value == 0 || value > 65535) return fail();
        u.port = static_cast<std::uint16_t>(value);
    } else {
        u.port = u.default_port();
    }
    const std::size_t q = tail.find('?');
    std::string_view path = tail.substr(0, q);
    if (q != std::string_view::npos) u.query = std::string(tail.substr(q + 1));
    u.path = path.empty() ? std::string("/") : std::string(path);
    return u;
}

} // namespace skyvol::http

#endif
