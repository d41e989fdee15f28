// SigV4's canonicalisation of what a caller hands the signer: URI encoding round-trips, a
// canonical query string is a fixed point, and signing a request with any method, path, query
// and headers either signs (one Authorization header, its signed names sorted and lower case)
// or refuses with invalid_argument, never quoting the secret.
//
// Input: NUL-separated fields: method, path, query, then header name/value pairs.
#include "require.hpp"

#include <skyvol/auth/sigv4.hpp>
#include <skyvol/error.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using skyvol::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    namespace auth = skyvol::auth;

    for (const bool slash : {false, true}) {
        const std::string encoded = auth::uri_encode(text, slash);
        require(auth::detail::percent_decode(encoded) == text);
        require(auth::detail::is_wire_safe(encoded));
    }
    const std::string canonical = auth::detail::canonical_query_string(text);
    require(auth::detail::canonical_query_string(canonical) == canonical);

    std::vector<std::string> fields;
    std::size_t from = 0;
    for (std::size_t at; (at = text.find('\0', from)) != std::string_view::npos; from = at + 1)
        fields.emplace_back(text.substr(from, at - from));
    fields.emplace_back(text.substr(from));
    if (fields.size() < 3 || fields.size() > 40) return 0;

    auth::signable_request r;
    r.method = fields[0];
    r.path = fields[1];
    r.query = fields[2];
    for (std::size_t i = 3; i + 1 < fields.size(); i += 2)
        r.headers.emplace_back(fields[i], fields[i + 1]);
    r.payload_hash = auth::sha256_hex("");
    auth::credentials keys;
    keys.access_key_id = "AKIDEXAMPLE";
    keys.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1796000000));
    try {
        auth::sign(r, keys, auth::signing_scope{"us-east-1", "s3"}, now);
    } catch (const std::system_error& e) {
        require(e.code() == skyvol::errc::invalid_argument);
        require(std::string_view(e.what()).find(keys.secret_access_key) == std::string::npos);
        return 0;
    }
    std::size_t authorizations = 0;
    for (const auto& [name, value] : r.headers)
        if (auth::detail::iequals(name, "authorization")) {
            ++authorizations;
            require(value.find(keys.secret_access_key) == std::string::npos);
            require(value.find("SignedHeaders=") != std::string::npos);
        }
    require(authorizations == 1);
    return 0;
}
