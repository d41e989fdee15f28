#ifndef SKYVOL_AUTH_DETAIL_CREDENTIAL_REPLIES_HPP
#define SKYVOL_AUTH_DETAIL_CREDENTIAL_REPLIES_HPP

/// @file
/// The replies of the network credential sources without I/O: STS's XML (PropertyTree, as the
/// S3 protocol does) and the JSON of the container endpoint and IMDS (Boost.JSON). Problems are
/// sentences that never quote a secret: a malformed reply is described, not echoed.

#include <skyvol/auth/credentials.hpp>
#include <skyvol/auth/detail/credential_text.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace skyvol::auth::detail {

/// What STS answered: credentials, or the error it names, or why the reply is unusable.
struct sts_reply {
    std::optional<credentials> keys;
    std::string error_code;    ///< "AccessDenied", "InvalidIdentityToken", ...
    std::string error_message; ///< STS's own sentence
    std::string request_id;
    std::string problem; ///< set when the reply is neither credentials nor an STS error
};

/// Parses the reply of STS action `action` ("AssumeRoleWithWebIdentity"): a
/// `<ACTIONResponse><ACTIONResult><Credentials>` document, or an `<ErrorResponse>`.
inline sts_reply parse_sts_reply(std::string_view body, const std::string& action) {
    using boost::property_tree::ptree;
    sts_reply out;
    ptree tree;
    try {
        std::istringstream in{std::string(body)};
        boost::property_tree::read_xml(in, tree, boost::property_tree::xml_parser::no_comments);
    } catch (const std::exception&) {
        out.problem = "reply is not XML";
        return out;
    }
    if (auto error = tree.get_child_optional("ErrorResponse")) {
        out.error_code = error->get("Error.Code", "");
        out.error_message = error->get("Error.Message", "");
        out.request_id = error->get("RequestId", "");
        if (out.error_code.empty()) out.problem = "error reply without a code";
        return out;
    }
    auto creds = tree.get_child_optional(action + "Response." + action + "Result.Credentials");
    if (!creds) {
        out.problem = "reply has no " + action + "Result/Credentials";
        return out;
    }
    credentials keys;
    keys.access_key_id = trim(creds->get("AccessKeyId", ""));
    keys.secret_access_key = trim(creds->get("SecretAccessKey", ""));
    keys.session_token = trim(creds->get("SessionToken", ""));
    const std::string expiration = trim(creds->get("Expiration", ""));
    if (keys.access_key_id.empty() || keys.secret_access_key.empty() ||
        keys.session_token.empty()) {
        out.problem = "reply lacks AccessKeyId, SecretAccessKey or SessionToken";
        return out;
    }
    if (expiration.empty()) {
        out.problem = "reply lacks Expiration";
        return out;
    }
    keys.expiration = parse_iso8601(expiration);
    if (!keys.expiration) {
        out.problem = "reply's Expiration is not an ISO 8601 time";
        return out;
    }
    out.keys = std::move(keys);
    return out;
}

/// Parses `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}` (the container endpoint's
/// and IMDS's reply; IMDS adds "Code": "Success"). Empty optional with `problem` set otherwise.
inline std::optional<credentials> parse_json_credentials(std::string_view body,
                                                         std::string& problem) {
    boost::system::error_code ec;
    const boost::json::value doc = boost::json::parse(body, ec);
    if (ec) {
        problem = "reply is not JSON";
        return std::nullopt;
    }
    const boost::json::object* object = doc.if_object();
    if (!object) {
        problem = "reply is not a JSON object";
        return std::nullopt;
    }
    // Only string members count; anything else reads as absent.
    auto text = [object](std::string_view name) -> std::optional<std::string> {
        const boost::json::value* v = object->if_contains(name);
        if (!v || !v->is_string()) return std::nullopt;
        return std::string(v->get_string());
    };
    if (const auto code = text("Code"); code && *code != "Success") {
        problem = "reply says Code " + excerpt(*code, 60);
        if (const auto message = text("Message")) problem += ": " + excerpt(*message);
        return std::nullopt;
    }
    credentials keys;
    for (const auto& [name, field] : {std::pair("AccessKeyId", &keys.access_key_id),
                                      std::pair("SecretAccessKey", &keys.secret_access_key)}) {
        auto value = text(name);
        if (!value || value->empty()) {
            problem = std::string("reply lacks ") + name;
            return std::nullopt;
        }
        *field = std::move(*value);
    }
    keys.session_token = text("Token").value_or("");
    if (const auto expiration = text("Expiration")) {
        keys.expiration = parse_iso8601(*expiration);
        if (!keys.expiration) {
            problem = "reply's Expiration is not an ISO 8601 time";
            return std::nullopt;
        }
    }
    return keys;
}

} // namespace skyvol::auth::detail

#endif
