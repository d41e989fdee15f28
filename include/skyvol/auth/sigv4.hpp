#ifndef SKYVOL_AUTH_SIGV4_HPP
#define SKYVOL_AUTH_SIGV4_HPP

/// @file
/// AWS Signature Version 4 as S3 wants it: the Authorization header for a request, and presigned
/// URLs. Pure computation, no I/O. The intermediate steps live in `detail` so tests can compare
/// them with AWS's published examples. Errors never contain the secret key or session token.

#include <skyvol/auth/credentials.hpp>
#include <skyvol/auth/detail/crypto.hpp>
#include <skyvol/detail/percent_encoding.hpp>
#include <skyvol/error.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace skyvol::auth {

/// RFC 3986 percent-encoding as AWS wants it: unreserved A-Z a-z 0-9 - _ . ~ kept, everything
/// else %XX (upper-case hex, byte by byte), '/' kept unless `encode_slash`.
inline std::string uri_encode(std::string_view text, bool encode_slash) {
    return skyvol::detail::percent_encode(text, encode_slash);
}

/// Where a signature is valid: the region and the service name.
struct signing_scope {
    std::string region = "us-east-1";
    std::string service = "s3";
};

/// The payload hash of a request whose body is not hashed (S3 over TLS allows it).
inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";

/// Lower-case hex SHA-256 of `data`: the payload hash of a request with that body.
inline std::string sha256_hex(std::string_view data) {
    return detail::sha256_hex(data);
}

/// The payload hash of a body fed in pieces (one streamed from a file), as `sha256_hex` gives it.
class payload_hasher {
public:
    void update(const void* data, std::size_t size) { hasher_.update(data, size); }
    std::string finish_hex() { return hasher_.finish_hex(); }

private:
    detail::sha256_hasher hasher_;
};

/// What gets signed. `path` is the request path exactly as sent on the wire (already
/// uri_encode'd, e.g. "/bucket/a%20b.txt"); S3 uses it as the canonical URI without normalisation
/// or double encoding. `query` is the raw query string as sent, without '?', may be empty (e.g.
/// "list-type=2&prefix=a%2Fb&delimiter=%2F"); the canonical query string is built from it (split
/// on '&', keys with no '=' get empty values, decode then re-encode each key and value with
/// uri_encode(encode_slash=true), sort by key then value). `headers` must contain "host"; names
/// compare case-insensitively.
struct signable_request {
    std::string method; // "GET", "PUT", ...
    std::string path;
    std::string query;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string payload_hash; // hex SHA-256 of the body, or unsigned_payload
};

namespace detail {

/// The signer's errors: `errc::invalid_argument` with a reason that never quotes a credential.
[[noreturn]] inline void fail(std::string_view why) {
    throw skyvol::error(errc::invalid_argument, {"sigv4", {}, {}, why});
}

inline char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        c = ascii_lower(c);
    return out;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

/// True if `text` has a byte that could end or split an HTTP header line.
inline bool has_line_break_or_nul(std::string_view text) noexcept {
    return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

/// True if every byte is printable ASCII other than space: what an encoded path or query holds.
inline bool is_wire_safe(std::string_view text) noexcept {
    return std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7F; });
}

/// RFC 7230 token characters: what a header name may consist of.
inline bool is_header_name(std::string_view name) noexcept {
    constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               extra.find(c) != std::string_view::npos;
    });
}

/// Decodes %XX sequences; a '%' not followed by two hex digits stays as it is, '+' stays '+'.
inline std::string percent_decode(std::string_view text) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && nibble(text[i + 1]) >= 0 &&
            nibble(text[i + 2]) >= 0) {
            out += static_cast<char>(nibble(text[i + 1]) << 4 | nibble(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

using query_params = std::vector<std::pair<std::string, std::string>>;

/// The parameters of a raw query string in their order, each key and value decoded and
/// re-encoded the canonical way; a key without '=' gets an empty value, empty pieces are dropped.
inline query_params canonical_query_params(std::string_view query) {
    query_params params;
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view piece = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (piece.empty()) continue;
        const std::size_t eq = piece.find('=');
        const std::string_view key = piece.substr(0, eq);
        const std::string_view value =
            eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1);
        params.emplace_back(uri_encode(percent_decode(key), true),
                            uri_encode(percent_decode(value), true));
    }
    return params;
}

/// "k=v&k=v" in the given order.
inline std::string join_query(const query_params& params) {
    std::string out;
    for (const auto& [key, value] : params) {
        if (!out.empty()) out += '&';
        out.append(key).append("=").append(value);
    }
    return out;
}

/// Sorted by encoded key, then encoded value, byte by byte.
inline std::string canonical_query_string(query_params params) {
    std::sort(params.begin(), params.end());
    return join_query(params);
}

inline std::string canonical_query_string(std::string_view query) {
    return canonical_query_string(canonical_query_params(query));
}

/// Headers left out of the signature, as botocore does: hop-by-hop headers that proxies may
/// change or drop, and the Authorization header itself. `name` is lower case.
inline bool is_unsigned_header(std::string_view name) noexcept {
    constexpr std::string_view names[] = {"authorization",
                                          "connection",
                                          "expect",
                                          "keep-alive",
                                          "proxy-authenticate",
                                          "proxy-authorization",
                                          "te",
                                          "trailer",
                                          "transfer-encoding",
                                          "upgrade",
                                          "user-agent",
                                          "x-amzn-trace-id"};
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

/// AWS's Trimall: no leading or trailing whitespace, inner runs of it become one space.
inline std::string trim_header_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    bool gap = false;
    for (const char c : value) {
        if (c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n') {
            gap = !out.empty();
            continue;
        }
        if (gap) out += ' ';
        gap = false;
        out += c;
    }
    return out;
}

/// The canonical headers block (each "name:value\n") and the signed header names ("a;b;c").
struct canonical_headers {
    std::string text;
    std::string signed_names;
};

/// Lower-cased names sorted; values of repeated names joined with ',' in their order.
inline canonical_headers
make_canonical_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
    std::vector<std::pair<std::string, std::string>> entries;
    entries.reserve(headers.size());
    for (const auto& [name, value] : headers) {
        std::string lower = ascii_lower(name);
        if (!is_unsigned_header(lower))
            entries.emplace_back(std::move(lower), trim_header_value(value));
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    canonical_headers out;
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const bool repeat = i > 0 && entries[i].first == entries[i - 1].first;
        if (repeat) {
            out.text.pop_back(); // the previous line's '\n'
            out.text.append(",").append(entries[i].second).append("\n");
            continue;
        }
        if (!out.signed_names.empty()) out.signed_names += ';';
        out.signed_names += entries[i].first;
        out.text.append(entries[i].first).append(":").append(entries[i].second).append("\n");
    }
    return out;
}

/// The canonical request and the signed header names it covers.
struct canonical_form {
    std::string request;
    std::string signed_headers;
};

/// The request as it stands (signing headers included, if present) in canonical form.
inline canonical_form canonicalize(const signable_request& request) {
    canonical_headers headers = make_canonical_headers(request.headers);
    canonical_form out;
    out.request.append(request.method).append("\n");
    out.request.append(request.path.empty() ? std::string_view("/") : request.path).append("\n");
    out.request.append(canonical_query_string(std::string_view(request.query))).append("\n");
    out.request.append(headers.text).append("\n");
    out.request.append(headers.signed_names).append("\n");
    out.request.append(request.payload_hash);
    out.signed_headers = std::move(headers.signed_names);
    return out;
}

inline std::string canonical_request(const signable_request& request) {
    return canonicalize(request).request;
}

/// "YYYYMMDD" and "YYYYMMDDTHHMMSSZ" in UTC.
struct amz_time {
    std::string date;
    std::string timestamp;
};

inline amz_time format_amz_time(std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    const auto secs = floor<seconds>(now);
    const auto day = floor<days>(secs);
    const year_month_day ymd{day};
    const hh_mm_ss<seconds> hms{secs - day};
    const int year = static_cast<int>(ymd.year());
    if (year < 0 || year > 9999) fail("the signing time is outside the years 0-9999");
    char text[32];
    std::snprintf(text, sizeof text, "%04d%02u%02uT%02d%02d%02dZ", year,
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    amz_time out;
    out.timestamp = text;
    out.date = out.timestamp.substr(0, 8);
    return out;
}

/// "20130524/us-east-1/s3/aws4_request".
inline std::string credential_scope(std::string_view date, const signing_scope& scope) {
    std::string out(date);
    out.append("/").append(scope.region).append("/").append(scope.service).append("/aws4_request");
    return out;
}

inline std::string string_to_sign(std::string_view timestamp, std::string_view credential_scope,
                                  std::string_view canonical_request) {
    std::string out = "AWS4-HMAC-SHA256\n";
    out.append(timestamp).append("\n").append(credential_scope).append("\n");
    out.append(sha256_hex(canonical_request));
    return out;
}

/// HMAC chain "AWS4" + secret -> date -> region -> service -> "aws4_request".
inline sha256_digest signing_key(std::string_view secret, std::string_view date,
                                 std::string_view region, std::string_view service) {
    std::string seed = "AWS4";
    seed.append(secret);
    const sha256_digest k_date = hmac_sha256(seed, date);
    // The seed holds the secret in the clear; do not leave it in freed memory.
    OPENSSL_cleanse(seed.data(), seed.size());
    return hmac_sha256(hmac_sha256(hmac_sha256(k_date, region), service), "aws4_request");
}

inline std::string signature(const sha256_digest& key, std::string_view string_to_sign) {
    return to_hex(hmac_sha256(key, string_to_sign));
}

/// Checks what would otherwise give a malformed request or a signature S3 refuses.
inline void check_signing_inputs(const credentials& creds, const signing_scope& scope) {
    auto bad = [](std::string_view text) {
        return std::any_of(text.begin(), text.end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
        });
    };
    if (bad(creds.access_key_id) || creds.access_key_id.find('/') != std::string::npos)
        fail("the access key id contains a control character or '/'");
    if (has_line_break_or_nul(creds.session_token))
        fail("the session token contains a line break or NUL");
    for (const std::string* part : {&scope.region, &scope.service})
        if (part->empty() || bad(*part) || part->find('/') != std::string::npos)
            fail("the signing region or service is empty or contains '/' or a control character");
}

inline void check_target(std::string_view method, std::string_view path, std::string_view query) {
    if (method.empty() || !is_header_name(method)) fail("the request method is malformed");
    if (!path.empty() && (path.front() != '/' || !is_wire_safe(path)))
        fail("the request path does not start with '/' or is not URI-encoded");
    if (!is_wire_safe(query) || query.find('#') != std::string_view::npos)
        fail("the query string is not URI-encoded");
}

/// The host header value for `origin` ("https://Host[:port]"): lower case, default port dropped.
/// Also gives the origin without a trailing '/'.
inline std::string host_of_origin(std::string_view& origin) {
    if (!origin.empty() && origin.back() == '/') origin.remove_suffix(1);
    const std::size_t sep = origin.find("://");
    if (sep == std::string_view::npos) fail("the origin is not scheme://host[:port]");
    const std::string scheme = ascii_lower(origin.substr(0, sep));
    if (scheme != "https" && scheme != "http") fail("the origin's scheme is not http or https");
    const std::string_view authority = origin.substr(sep + 3);
    if (authority.empty() || !is_wire_safe(authority) ||
        authority.find_first_of("/?#@") != std::string_view::npos)
        fail("the origin is not scheme://host[:port]");
    const std::size_t bracket = authority.rfind(']');
    std::size_t colon = authority.rfind(':');
    if (bracket != std::string_view::npos && colon != std::string_view::npos && colon < bracket)
        colon = std::string_view::npos; // a colon inside an IPv6 literal
    std::string host = ascii_lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
        const std::string_view port = authority.substr(colon + 1);
        const bool default_port =
            (scheme == "https" && port == "443") || (scheme == "http" && port == "80");
        if (!default_port) host.append(":").append(port);
    }
    return host;
}

/// The canonical request of a presigned URL: only "host" signed, UNSIGNED-PAYLOAD; `params`
/// already include the X-Amz-* ones (all but X-Amz-Signature).
inline std::string presigned_canonical_request(std::string_view method, std::string_view host,
                                               std::string_view path, query_params params) {
    std::string out(method);
    out.append("\n").append(path).append("\n");
    out.append(canonical_query_string(std::move(params))).append("\n");
    out.append("host:").append(host).append("\n\n");
    out.append("host\n").append(unsigned_payload);
    return out;
}

} // namespace detail

/// Signs in place: adds (or replaces) x-amz-date, x-amz-content-sha256 (= payload_hash),
/// x-amz-security-token when the credentials carry a session token, and Authorization. Signs
/// every header present except hop-by-hop ones (connection, expect, te, transfer-encoding,
/// upgrade, ...) and user-agent, as botocore does: lower-cased names, values trimmed with inner
/// runs of spaces collapsed to one, sorted. Anonymous credentials: leaves the request unsigned.
/// Throws `skyvol::error` (`errc::invalid_argument`) on a malformed request.
inline void sign(signable_request& request, const credentials& creds, const signing_scope& scope,
                 std::chrono::system_clock::time_point now) {
    if (creds.anonymous()) return;
    detail::check_signing_inputs(creds, scope);
    detail::check_target(request.method, request.path, request.query);
    if (request.payload_hash.empty() || !detail::is_wire_safe(request.payload_hash))
        detail::fail("the payload hash is empty or malformed");
    bool has_host = false;
    for (const auto& [name, value] : request.headers) {
        if (!detail::is_header_name(name)) detail::fail("a header name is malformed");
        if (detail::has_line_break_or_nul(value))
            detail::fail("header '" + name + "' has a line break or NUL in its value");
        has_host = has_host || detail::iequals(name, "host");
    }
    if (!has_host) detail::fail("the request has no host header");

    const detail::amz_time time = detail::format_amz_time(now);
    std::erase_if(request.headers, [](const auto& header) {
        for (std::string_view name :
             {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"})
            if (detail::iequals(header.first, name)) return true;
        return false;
    });
    request.headers.emplace_back("x-amz-date", time.timestamp);
    request.headers.emplace_back("x-amz-content-sha256", request.payload_hash);
    if (!creds.session_token.empty())
        request.headers.emplace_back("x-amz-security-token", creds.session_token);

    const detail::canonical_form canonical = detail::canonicalize(request);
    const std::string scope_text = detail::credential_scope(time.date, scope);
    const std::string signature = detail::signature(
        detail::signing_key(creds.secret_access_key, time.date, scope.region, scope.service),
        detail::string_to_sign(time.timestamp, scope_text, canonical.request));
    std::string authorization = "AWS4-HMAC-SHA256 Credential=";
    authorization.append(creds.access_key_id).append("/").append(scope_text);
    authorization.append(", SignedHeaders=").append(canonical.signed_headers);
    authorization.append(", Signature=").append(signature);
    request.headers.emplace_back("Authorization", std::move(authorization));
}

/// A presigned URL (query-string auth, X-Amz-Algorithm ... X-Amz-Signature, UNSIGNED-PAYLOAD,
/// only "host" signed), for GET/PUT of S3 objects. `origin` is "https://host[:port]"; the host
/// header is taken from it (lower case, default port dropped). `path` and `query` are as for
/// `signable_request`; the query's parameters come first in the URL, re-encoded canonically.
/// `expires` must be 1 s to 7 days. Anonymous credentials give the plain URL.
inline std::string presign_url(std::string_view method, std::string_view origin,
                               std::string_view path, std::string_view query,
                               const credentials& creds, const signing_scope& scope,
                               std::chrono::system_clock::time_point now,
                               std::chrono::seconds expires) {
    const std::string host = detail::host_of_origin(origin);
    detail::check_target(method, path, query);
    if (path.empty()) path = "/";
    if (expires < std::chrono::seconds(1) || expires > std::chrono::seconds(604800))
        detail::fail("a presigned URL must expire after 1 second to 7 days");
    std::string url(origin);
    url.append(path);
    if (creds.anonymous()) {
        if (!query.empty()) url.append("?").append(query);
        return url;
    }
    detail::check_signing_inputs(creds, scope);

    const detail::amz_time time = detail::format_amz_time(now);
    const std::string scope_text = detail::credential_scope(time.date, scope);
    detail::query_params params = detail::canonical_query_params(query);
    params.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
    params.emplace_back("X-Amz-Credential",
                        uri_encode(creds.access_key_id + "/" + scope_text, true));
    params.emplace_back("X-Amz-Date", time.timestamp);
    params.emplace_back("X-Amz-Expires", std::to_string(expires.count()));
    params.emplace_back("X-Amz-SignedHeaders", "host");
    if (!creds.session_token.empty())
        params.emplace_back("X-Amz-Security-Token", uri_encode(creds.session_token, true));

    const std::string canonical = detail::presigned_canonical_request(method, host, path, params);
    const std::string signature = detail::signature(
        detail::signing_key(creds.secret_access_key, time.date, scope.region, scope.service),
        detail::string_to_sign(time.timestamp, scope_text, canonical));
    url.append("?").append(detail::join_query(params));
    url.append("&X-Amz-Signature=").append(signature);
    return url;
}

} // namespace skyvol::auth

#endif
