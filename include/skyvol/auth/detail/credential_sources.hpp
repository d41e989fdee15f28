#ifndef SKYVOL_AUTH_DETAIL_CREDENTIAL_SOURCES_HPP
#define SKYVOL_AUTH_DETAIL_CREDENTIAL_SOURCES_HPP

/// @file
/// The sources of the AWS credential chain: which one the environment and the shared files
/// select (no I/O but reading files), and the network fetches of the web identity (STS), the
/// container endpoint and IMDSv2. Failures throw `credential_error` with a sentence naming the
/// source; secrets, session tokens and web identity tokens never reach it.

#include <skyvol/auth/credentials.hpp>
#include <skyvol/auth/detail/credential_replies.hpp>
#include <skyvol/auth/detail/credential_text.hpp>
#include <skyvol/auth/sigv4.hpp>
#include <skyvol/detail/redact.hpp>
#include <skyvol/error.hpp>
#include <skyvol/http/client.hpp>
#include <skyvol/http/url.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace skyvol::auth::detail {

/// STS AssumeRoleWithWebIdentity with a token read from a file at every fetch (tokens rotate).
struct web_identity_source {
    std::string role_arn;
    std::string token_file;
    std::string session_name;
    http::url sts;
    std::string label; ///< "web identity (AWS_ROLE_ARN=...)"
};

/// The ECS/EKS container credentials endpoint.
struct container_source {
    http::url origin;
    std::string target;     ///< path and query
    std::string token;      ///< AWS_CONTAINER_AUTHORIZATION_TOKEN
    std::string token_file; ///< AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, read at every fetch
    std::string label;      ///< "container credentials (URL)"
};

/// The EC2 instance metadata service, version 2 (session tokens).
struct imds_source {
    http::url origin;
    std::string label; ///< "IMDSv2 at URL"
};

/// The source the chain selected.
struct chain_source {
    enum class kind { keys, web_identity, container, imds, none };
    kind what = kind::none;
    resolved_credentials keys; ///< kind::keys: from the environment or a profile
    web_identity_source web;
    container_source container;
    imds_source imds;
    /// Why no local source applies ("no credentials: set ..."), the start of the final error
    /// when IMDS fails too.
    std::string unconfigured;
};

/// HTTP settings for credential endpoints: a machine without IMDS must fail within seconds.
inline http::client_options credential_http_options() {
    http::client_options o;
    o.connect_timeout = std::chrono::milliseconds(1000);
    o.first_byte_timeout = std::chrono::milliseconds(5000);
    o.idle_timeout = std::chrono::milliseconds(5000);
    o.max_connections_per_host = 2;
    o.max_attempts = 2;
    o.base_backoff = std::chrono::milliseconds(100);
    o.max_backoff = std::chrono::milliseconds(1000);
    o.max_retry_time = std::chrono::milliseconds(10000);
    return o;
}

/// The error code and sentence an exception from a source stands for.
inline std::pair<std::error_code, std::string> describe_failure(std::exception_ptr ep) {
    try {
        std::rethrow_exception(ep);
    } catch (const credential_error& e) {
        return {e.code(), e.why()};
    } catch (const boost::system::system_error& e) {
        return {e.code(), e.what()};
    } catch (const std::system_error& e) {
        return {e.code(), e.what()};
    } catch (const std::exception& e) {
        return {errc::access_denied, e.what()};
    }
}

[[noreturn]] inline void fail_source(std::error_code ec, std::string why) {
    throw credential_error(ec, std::move(why));
}

// ---- selection -------------------------------------------------------------------------------

/// STS for web identity: AWS_ENDPOINT_URL_STS, else the regional endpoint of AWS_REGION or
/// AWS_DEFAULT_REGION (unless AWS_STS_REGIONAL_ENDPOINTS=legacy), else the global one.
inline http::url sts_endpoint(std::string& why, std::error_code& ec) {
    std::string text = env("AWS_ENDPOINT_URL_STS");
    const bool given = !text.empty();
    if (!given) {
        std::string region = env("AWS_REGION");
        if (region.empty()) region = env("AWS_DEFAULT_REGION");
        if (region.empty() || lower_ascii(env("AWS_STS_REGIONAL_ENDPOINTS")) == "legacy")
            text = "https://sts.amazonaws.com";
        else
            text = "https://sts." + region +
                   (region.starts_with("cn-") ? ".amazonaws.com.cn" : ".amazonaws.com");
    }
    http::url u = http::parse_url(text, ec);
    if (ec) {
        why = given ? "web identity: AWS_ENDPOINT_URL_STS '" + text + "' is not an http(s) URL"
                    : "web identity: the region gives no valid STS endpoint (" + text + ")";
        ec = errc::invalid_config;
    }
    return u;
}

/// Fills `out` for web identity with `token_file` and `role_arn` from `where`.
inline bool web_identity_from(chain_source& out, std::string token_file, std::string role_arn,
                              std::string session_name, const std::string& label, std::string& why,
                              std::error_code& ec) {
    out.web.sts = sts_endpoint(why, ec);
    if (ec) return false;
    if (session_name.empty())
        session_name =
            "skyvol-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
    out.what = chain_source::kind::web_identity;
    out.web.token_file = std::move(token_file);
    out.web.role_arn = std::move(role_arn);
    out.web.session_name = std::move(session_name);
    out.web.label = label;
    return true;
}

/// The keys of the environment; false if it names none.
inline bool environment_source(chain_source& out, std::string& why, std::error_code& ec) {
    const std::string id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
    if (id.empty() && secret.empty()) return false;
    if (id.empty() || secret.empty()) {
        why = "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together";
        ec = errc::access_denied;
        return false;
    }
    out.what = chain_source::kind::keys;
    out.keys.keys.access_key_id = id;
    out.keys.keys.secret_access_key = secret;
    out.keys.keys.session_token = env("AWS_SESSION_TOKEN");
    out.keys.source = "environment";
    return true;
}

/// The profile (AWS_PROFILE, else "default") in the shared credentials file, then the config
/// file: static keys, or web_identity_token_file with role_arn. An AWS_PROFILE that gives
/// nothing is an error; a missing default profile is not.
inline bool profile_source(chain_source& out, std::string& why, std::error_code& ec) {
    const std::string home = env("HOME");
    std::string profile = env("AWS_PROFILE");
    const bool named = !profile.empty();
    if (!named) profile = "default";
    std::string credentials_file = env("AWS_SHARED_CREDENTIALS_FILE");
    if (credentials_file.empty()) credentials_file = home + "/.aws/credentials";
    std::string config_file = env("AWS_CONFIG_FILE");
    if (config_file.empty()) config_file = home + "/.aws/config";

    for (const auto& [file, section] :
         {std::pair(credentials_file, profile),
          std::pair(config_file, profile == "default" ? profile : "profile " + profile)}) {
        auto values = ini_section(file, section);
        if (!values) continue;
        const std::string key_id = (*values)["aws_access_key_id"];
        const std::string key = (*values)["aws_secret_access_key"];
        const std::string role_arn = (*values)["role_arn"];
        const std::string token_file = (*values)["web_identity_token_file"];
        if (key_id.empty() && key.empty()) {
            if (!token_file.empty() && !role_arn.empty())
                return web_identity_from(
                    out, token_file, role_arn, (*values)["role_session_name"],
                    "web identity (profile " + profile + ", role_arn=" + role_arn + ")", why, ec);
            if (!role_arn.empty()) {
                why = "profile '" + profile + "' in " + file +
                      " assumes a role with source_profile or credential_source, which skyvol "
                      "does not support; give keys or web_identity_token_file";
                ec = errc::invalid_config;
                return false;
            }
            continue; // e.g. a config section with only a region
        }
        if (key_id.empty() || key.empty()) {
            why = "profile '" + profile + "' in " + file +
                  " needs both aws_access_key_id and aws_secret_access_key";
            ec = errc::access_denied;
            return false;
        }
        out.what = chain_source::kind::keys;
        out.keys.keys.access_key_id = key_id;
        out.keys.keys.secret_access_key = key;
        out.keys.keys.session_token = (*values)["aws_session_token"];
        out.keys.source = "profile " + profile + " (" + file + ")";
        return true;
    }
    if (named) {
        why = "profile '" + profile + "' (AWS_PROFILE) has no keys in " + credentials_file +
              " or " + config_file;
        ec = errc::access_denied;
        return false;
    }
    out.unconfigured = "no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile "
                       "in " +
                       credentials_file +
                       ", AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or "
                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI";
    return false;
}

/// Web identity from AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN.
inline bool web_identity_source_from_env(chain_source& out, std::string& why, std::error_code& ec) {
    const std::string token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
    const std::string role_arn = env("AWS_ROLE_ARN");
    if (token_file.empty() && role_arn.empty()) return false;
    if (token_file.empty() || role_arn.empty()) {
        why = "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must be set together";
        ec = errc::invalid_config;
        return false;
    }
    return web_identity_from(out, token_file, role_arn, env("AWS_ROLE_SESSION_NAME"),
                             "web identity (AWS_ROLE_ARN=" + role_arn + ")", why, ec);
}

/// Whether plain http to `host` is allowed for container credentials: loopback, and the
/// ECS and EKS Pod Identity agents' link-local addresses, as the AWS SDKs allow.
inline bool container_host_allowed(const std::string& host) {
    return host == "localhost" || host.starts_with("127.") || host == "::1" ||
           host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23";
}

/// Container credentials from AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (at 169.254.170.2) or
/// AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to an allowed host).
inline bool container_source_from_env(chain_source& out, std::string& why, std::error_code& ec) {
    const std::string relative = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const std::string full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (relative.empty() && full.empty()) return false;
    std::string text;
    if (!relative.empty()) {
        if (!relative.starts_with('/')) {
            why = "container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start "
                  "with '/'";
            ec = errc::invalid_config;
            return false;
        }
        text = "http://169.254.170.2" + relative;
    } else {
        text = full;
    }
    http::url u = http::parse_url(text, ec);
    if (ec) {
        why = "container credentials: '" + text + "' is not an http(s) URL";
        ec = errc::invalid_config;
        return false;
    }
    if (relative.empty() && !u.tls() && !container_host_allowed(u.host)) {
        why = "container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or point "
              "at a loopback address, not " +
              u.origin();
        ec = errc::invalid_config;
        return false;
    }
    out.what = chain_source::kind::container;
    out.container.target = u.path + (u.query.empty() ? "" : "?" + u.query);
    out.container.label = "container credentials (" + u.origin() + u.path + ")";
    out.container.origin = std::move(u);
    out.container.token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    out.container.token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    return true;
}

/// IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254 (or fd00:ec2::254 with
/// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6); false if AWS_EC2_METADATA_DISABLED=true.
inline bool imds_source_from_env(chain_source& out, std::string& why, std::error_code& ec) {
    if (lower_ascii(trim(env("AWS_EC2_METADATA_DISABLED"))) == "true") return false;
    std::string text = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    const bool given = !text.empty();
    if (!given)
        text = lower_ascii(env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")) == "ipv6"
                   ? "http://[fd00:ec2::254]"
                   : "http://169.254.169.254";
    http::url u = http::parse_url(text, ec);
    if (ec) {
        why = "IMDSv2: AWS_EC2_METADATA_SERVICE_ENDPOINT '" + text + "' is not an http(s) URL";
        ec = errc::invalid_config;
        return false;
    }
    out.what = chain_source::kind::imds;
    out.imds.label = "IMDSv2 at " + u.origin();
    out.imds.origin = std::move(u);
    return true;
}

/// The first source the chain's order selects: environment, profile, web identity, container,
/// IMDS. Sets `ec` (and `why`) when a source is set but malformed, or when none is left.
inline chain_source select_source(std::string& why, std::error_code& ec) {
    ec.clear();
    chain_source out;
    if (environment_source(out, why, ec) || ec) return out;
    if (profile_source(out, why, ec) || ec) return out;
    if (web_identity_source_from_env(out, why, ec) || ec) return out;
    if (container_source_from_env(out, why, ec) || ec) return out;
    if (imds_source_from_env(out, why, ec) || ec) return out;
    why = out.unconfigured + " (IMDS is off: AWS_EC2_METADATA_DISABLED)";
    ec = errc::access_denied;
    return out;
}

// ---- fetching --------------------------------------------------------------------------------

/// Sends `r`; a failure to get any reply becomes a credential_error that starts with `label`.
inline boost::asio::awaitable<http::response>
send_for(std::shared_ptr<http::client> c, http::url origin, http::request r, std::string label) {
    auto executor = co_await boost::asio::this_coro::executor;
    auto [ep, reply] = co_await boost::asio::co_spawn(
        executor, c->send(origin, std::move(r)), boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ep) {
        const auto [code, what] = describe_failure(ep);
        fail_source(code == errc::cancelled ? code : std::error_code(errc::access_denied),
                    label + ": " + what);
    }
    http::response out = std::move(reply);
    co_return out;
}

/// Checks what a source gave: both keys, and not expired already.
inline resolved_credentials checked(credentials keys, const std::string& label) {
    if (keys.access_key_id.empty() || keys.secret_access_key.empty())
        fail_source(errc::access_denied, label + ": reply lacks AccessKeyId or SecretAccessKey");
    if (has_line_break_or_nul(keys.access_key_id) || has_line_break_or_nul(keys.session_token))
        fail_source(errc::access_denied, label + ": reply holds a key with a line break");
    if (keys.expiration && *keys.expiration <= std::chrono::system_clock::now())
        fail_source(errc::access_denied, label + ": gave credentials that expired at " +
                                             format_iso8601(*keys.expiration));
    return {std::move(keys), label};
}

/// AssumeRoleWithWebIdentity: an unsigned form POST to STS, an XML reply.
inline boost::asio::awaitable<resolved_credentials>
fetch_web_identity(std::shared_ptr<http::client> c, web_identity_source src) {
    const std::optional<std::string> token = read_text_file(src.token_file);
    if (!token)
        fail_source(errc::access_denied,
                    src.label + ": cannot read the token file " + src.token_file);
    if (token->empty())
        fail_source(errc::access_denied,
                    src.label + ": the token file " + src.token_file + " is empty");
    http::request r;
    r.method = boost::beast::http::verb::post;
    r.target = src.sts.path;
    r.headers.emplace_back("content-type", "application/x-www-form-urlencoded; charset=utf-8");
    r.headers.emplace_back("accept", "text/xml");
    r.body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" +
             uri_encode(src.role_arn, true) +
             "&RoleSessionName=" + uri_encode(src.session_name, true) +
             "&WebIdentityToken=" + uri_encode(*token, true);
    r.idempotent = true; // assuming a role twice is harmless
    const http::response reply = co_await send_for(c, src.sts, std::move(r), src.label);
    sts_reply parsed = parse_sts_reply(reply.body, "AssumeRoleWithWebIdentity");
    if (reply.status >= 300 || !parsed.keys) {
        std::string why = src.label + ": STS answered " + std::to_string(reply.status);
        if (!parsed.error_code.empty()) why += " " + excerpt(parsed.error_code, 60);
        if (!parsed.error_message.empty())
            why += ": " + excerpt(parsed.error_message);
        else if (!parsed.problem.empty())
            why += ": " + parsed.problem;
        if (!parsed.request_id.empty())
            why += " (request id " + excerpt(parsed.request_id, 60) + ")";
        fail_source(errc::access_denied, skyvol::detail::redact_secrets(why, {*token}));
    }
    co_return checked(std::move(*parsed.keys), src.label);
}

/// The container endpoint: a GET with the Authorization token, a JSON reply.
inline boost::asio::awaitable<resolved_credentials> fetch_container(std::shared_ptr<http::client> c,
                                                                    container_source src) {
    std::string token = src.token;
    if (!src.token_file.empty()) {
        const std::optional<std::string> from_file = read_text_file(src.token_file);
        if (!from_file)
            fail_source(errc::access_denied,
                        src.label + ": cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " +
                            src.token_file);
        token = *from_file;
    }
    if (has_line_break_or_nul(token))
        fail_source(errc::invalid_config,
                    src.label + ": the authorization token holds a line break or NUL");
    http::request r;
    r.target = src.target;
    r.headers.emplace_back("accept", "application/json");
    if (!token.empty()) r.headers.emplace_back("authorization", token);
    const http::response reply = co_await send_for(c, src.origin, std::move(r), src.label);
    if (reply.status >= 300) {
        std::string why = src.label + ": answered " + std::to_string(reply.status);
        if (!reply.body.empty()) why += ": " + excerpt(reply.body);
        fail_source(errc::access_denied, skyvol::detail::redact_secrets(why, {token}));
    }
    std::string problem;
    std::optional<credentials> keys = parse_json_credentials(reply.body, problem);
    if (!keys) fail_source(errc::access_denied, src.label + ": " + problem);
    co_return checked(std::move(*keys), src.label);
}

/// IMDSv2: PUT a session token, GET the instance role's name, GET its credentials.
inline boost::asio::awaitable<resolved_credentials> fetch_imds(std::shared_ptr<http::client> c,
                                                               imds_source src) {
    http::request t;
    t.method = boost::beast::http::verb::put;
    t.target = "/latest/api/token";
    t.headers.emplace_back("x-aws-ec2-metadata-token-ttl-seconds", "21600");
    t.idempotent = true;
    const http::response token_reply = co_await send_for(c, src.origin, std::move(t), src.label);
    if (token_reply.status != 200)
        fail_source(errc::access_denied, src.label + ": PUT /latest/api/token answered " +
                                             std::to_string(token_reply.status) +
                                             " (IMDSv2 tokens refused)");
    const std::string token = trim(token_reply.body);
    if (token.empty() || has_line_break_or_nul(token))
        fail_source(errc::access_denied,
                    src.label + ": PUT /latest/api/token gave no usable token");

    const std::string roles_path = "/latest/meta-data/iam/security-credentials/";
    http::request list;
    list.target = roles_path;
    list.headers.emplace_back("x-aws-ec2-metadata-token", token);
    const http::response roles = co_await send_for(c, src.origin, std::move(list), src.label);
    if (roles.status == 404)
        fail_source(errc::access_denied,
                    src.label + ": no instance role (" + roles_path + " answered 404)");
    if (roles.status >= 300)
        fail_source(errc::access_denied,
                    src.label + ": " + roles_path + " answered " + std::to_string(roles.status));
    std::string role = roles.body.substr(0, roles.body.find('\n'));
    role = trim(role);
    if (role.empty()) fail_source(errc::access_denied, src.label + ": no instance role");

    http::request get;
    get.target = roles_path + uri_encode(role, true);
    get.headers.emplace_back("x-aws-ec2-metadata-token", token);
    const http::response reply = co_await send_for(c, src.origin, std::move(get), src.label);
    const std::string where = src.label + ": role " + excerpt(role, 64);
    if (reply.status >= 300)
        fail_source(errc::access_denied, where + " answered " + std::to_string(reply.status));
    std::string problem;
    std::optional<credentials> keys = parse_json_credentials(reply.body, problem);
    if (!keys)
        fail_source(errc::access_denied,
                    skyvol::detail::redact_secrets(where + ": " + problem, {token}));
    co_return checked(std::move(*keys), src.label);
}

/// Fetches from the selected source once.
inline boost::asio::awaitable<resolved_credentials> fetch_from(std::shared_ptr<http::client> c,
                                                               chain_source src) {
    switch (src.what) {
    case chain_source::kind::keys:
        co_return src.keys;
    case chain_source::kind::web_identity: {
        resolved_credentials got = co_await fetch_web_identity(c, src.web);
        co_return got;
    }
    case chain_source::kind::container: {
        resolved_credentials got = co_await fetch_container(c, src.container);
        co_return got;
    }
    case chain_source::kind::imds: {
        resolved_credentials got = co_await fetch_imds(c, src.imds);
        co_return got;
    }
    case chain_source::kind::none:
        break;
    }
    fail_source(errc::access_denied, src.unconfigured);
}

/// The source the chain settled on once it gave credentials; refreshes ask it again.
struct chain_memo {
    std::optional<chain_source> chosen;
};

/// One fetch of the chain: selects the source the first time (and after failures), then asks
/// it. IMDS is the last resort, so its failure also says what else could have been set. Only
/// one fetch runs at a time (the provider sees to it), so `memo` needs no lock.
inline boost::asio::awaitable<resolved_credentials> fetch_chain(std::shared_ptr<chain_memo> memo,
                                                                std::shared_ptr<http::client> c) {
    const bool first = !memo->chosen;
    chain_source src;
    if (first) {
        std::string why;
        std::error_code ec;
        src = select_source(why, ec);
        if (ec) fail_source(ec, why);
    } else {
        src = *memo->chosen;
    }
    auto executor = co_await boost::asio::this_coro::executor;
    auto [ep, got] = co_await boost::asio::co_spawn(
        executor, fetch_from(c, src), boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ep) {
        auto [code, why] = describe_failure(ep);
        if (first && src.what == chain_source::kind::imds) why = src.unconfigured + "; " + why;
        fail_source(code, why);
    }
    memo->chosen = src;
    resolved_credentials out = std::move(got);
    co_return out;
}

} // namespace skyvol::auth::detail

#endif
