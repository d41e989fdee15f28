#ifndef SKYVOL_AUTH_CREDENTIALS_HPP
#define SKYVOL_AUTH_CREDENTIALS_HPP

/// @file
/// AWS-style credentials for object stores, and the only form of them that may reach a log.

#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace skyvol::auth {

/// An access key pair, optionally temporary (STS) with a session token and an expiry.
/// An empty access key id means anonymous access: requests go out unsigned.
struct credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;
    std::optional<std::chrono::system_clock::time_point> expiration;

    bool anonymous() const noexcept { return access_key_id.empty(); }
};

/// What may be logged about `creds`: the first 4 characters of the key id and whether a session
/// token is present; never the secret or the token.
inline std::string redacted(const credentials& creds) {
    if (creds.anonymous()) return "anonymous";
    std::string text = "access key ";
    text.append(creds.access_key_id, 0, 4);
    text.append("****");
    if (!creds.session_token.empty()) text.append(" (with session token)");
    return text;
}

/// Credentials and where they came from, for logs: "environment", "profile default (FILE)",
/// "web identity (AWS_ROLE_ARN=...)", "container credentials (URL)", "IMDSv2 at URL".
struct resolved_credentials {
    credentials keys;
    std::string source;
};

/// A credential source failed: `code()` is errc::access_denied (or errc::invalid_config for a
/// malformed setting) and `why()` a sentence naming the source, never a secret.
class credential_error : public std::system_error {
public:
    credential_error(std::error_code ec, std::string why)
        : std::system_error(ec, why)
        , why_(std::move(why)) {}

    /// The sentence alone, without the code's message.
    const std::string& why() const noexcept { return why_; }

private:
    std::string why_;
};

} // namespace skyvol::auth

#endif
