#ifndef SKYVOL_AUTH_CREDENTIAL_CHAIN_HPP
#define SKYVOL_AUTH_CREDENTIAL_CHAIN_HPP

/// @file
/// Where S3 keys come from when none are given, in the AWS SDKs' order: the environment
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then the profile
/// (AWS_PROFILE, else "default") in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
/// else ~/.aws/credentials) and the config file (AWS_CONFIG_FILE, else ~/.aws/config).
/// Errors name the source that is wrong, never a secret.

#include <skyvol/auth/credentials.hpp>
#include <skyvol/error.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>

namespace skyvol::auth {

/// Which source gave the credentials, for logs: "environment", "profile default (~/.aws/...)".
struct resolved_credentials {
    credentials keys;
    std::string source;
};

namespace detail {

inline std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

inline std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

/// The key/value pairs of section `section` of an INI file; empty optional if the section is
/// not there (or the file is missing).
inline std::optional<std::map<std::string, std::string>> ini_section(const std::string& file,
                                                                     const std::string& section) {
    std::ifstream in(file);
    if (!in) return std::nullopt;
    std::optional<std::map<std::string, std::string>> found;
    bool inside = false;
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line.front() == '[' && line.back() == ']') {
            inside = trim(line.substr(1, line.size() - 2)) == section;
            if (inside && !found) found.emplace();
            continue;
        }
        const auto eq = line.find('=');
        if (inside && eq != std::string::npos)
            (*found)[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
    }
    return found;
}

} // namespace detail

/// The first credentials the chain finds; `errc::access_denied` with `why` naming the source if
/// a source is set but unusable, or if none gives credentials.
inline resolved_credentials resolve_credentials(std::string& why, std::error_code& ec) {
    ec.clear();
    resolved_credentials out;
    const std::string id = detail::env("AWS_ACCESS_KEY_ID"),
                      secret = detail::env("AWS_SECRET_ACCESS_KEY");
    if (!id.empty() || !secret.empty()) {
        if (id.empty() || secret.empty()) {
            why = "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together";
            ec = errc::access_denied;
            return out;
        }
        out.keys.access_key_id = id;
        out.keys.secret_access_key = secret;
        out.keys.session_token = detail::env("AWS_SESSION_TOKEN");
        out.source = "environment";
        return out;
    }
    const std::string home = detail::env("HOME");
    std::string profile = detail::env("AWS_PROFILE");
    const bool named = !profile.empty();
    if (!named) profile = "default";
    std::string credentials_file = detail::env("AWS_SHARED_CREDENTIALS_FILE");
    if (credentials_file.empty()) credentials_file = home + "/.aws/credentials";
    std::string config_file = detail::env("AWS_CONFIG_FILE");
    if (config_file.empty()) config_file = home + "/.aws/config";

    for (const auto& [file, section] :
         {std::pair(credentials_file, profile),
          std::pair(config_file, profile == "default" ? profile : "profile " + profile)}) {
        auto values = detail::ini_section(file, section);
        if (!values) continue;
        const std::string key_id = (*values)["aws_access_key_id"];
        const std::string key = (*values)["aws_secret_access_key"];
        if (key_id.empty() && key.empty()) continue; // e.g. a config section with only a region
        if (key_id.empty() || key.empty()) {
            why = "profile '" + profile + "' in " + file +
                  " needs both aws_access_key_id and aws_secret_access_key";
            ec = errc::access_denied;
            return out;
        }
        out.keys.access_key_id = key_id;
        out.keys.secret_access_key = key;
        out.keys.session_token = (*values)["aws_session_token"];
        out.source = "profile " + profile + " (" + file + ")";
        return out;
    }
    why = named ? "profile '" + profile + "' (AWS_PROFILE) has no keys in " + credentials_file +
                      " or " + config_file
                : "no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a profile in " +
                      credentials_file;
    ec = errc::access_denied;
    return out;
}

} // namespace skyvol::auth

#endif
