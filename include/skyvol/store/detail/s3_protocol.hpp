#ifndef SKYVOL_STORE_DETAIL_S3_PROTOCOL_HPP
#define SKYVOL_STORE_DETAIL_S3_PROTOCOL_HPP

/// @file
/// The S3 REST protocol without I/O: XML replies parsed into the store's values, request bodies
/// built, error codes mapped, dates read, bucket names checked. Malformed input gives
/// `errc::protocol_error`, never a crash.

#include <skyvol/error.hpp>
#include <skyvol/store/detail/bucket_names.hpp>
#include <skyvol/store/object_info.hpp>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

#include <ctime>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace skyvol::detail::s3 {

using boost::property_tree::ptree;

/// Parses an XML document; empty optional if it is not well-formed.
inline std::optional<ptree> parse_xml(std::string_view text) {
    try {
        std::istringstream in{std::string(text)};
        ptree tree;
        boost::property_tree::read_xml(in, tree, boost::property_tree::xml_parser::no_comments);
        return tree;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

/// `<Error><Code>..</Code><Message>..</Message><RequestId>..</RequestId></Error>`.
struct error_reply {
    std::string code, message, request_id;
    std::string describe() const {
        std::string out = code.empty() ? std::string("no S3 error code") : code;
        if (!message.empty()) out += ": " + message;
        if (!request_id.empty()) out += " (request id " + request_id + ")";
        return out;
    }
};

inline error_reply parse_error(std::string_view body) {
    error_reply e;
    if (auto tree = parse_xml(body)) {
        if (auto error = tree->get_child_optional("Error")) {
            e.code = error->get("Code", "");
            e.message = error->get("Message", "");
            e.request_id = error->get("RequestId", "");
        }
    }
    return e;
}

/// The region an AuthorizationHeaderMalformed reply says the bucket is in, else empty.
inline std::string error_region(std::string_view body) {
    if (auto tree = parse_xml(body))
        if (auto error = tree->get_child_optional("Error")) return error->get("Region", "");
    return {};
}

/// The library's error for an S3 error reply (`code` may be empty: HEAD has no body).
inline std::error_code error_for(unsigned status, std::string_view code) {
    if (code == "NoSuchKey" || code == "NoSuchBucket") return errc::not_found;
    if (code == "NoSuchUpload") return errc::invalid_upload; // a 404, but of the upload id
    if (code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
        code == "ExpiredToken" || code == "InvalidToken" || code == "AllAccessDisabled")
        return errc::access_denied;
    if (code == "SlowDown" || code == "ServiceUnavailable" || code == "Throttling" ||
        code == "TooManyRequests" || code == "RequestLimitExceeded")
        return errc::throttled;
    if (code == "PreconditionFailed") return errc::precondition_failed;
    if (code == "InvalidPart" || code == "InvalidPartOrder") return errc::invalid_upload;
    if (code == "EntityTooSmall") return errc::entity_too_small;
    if (code == "EntityTooLarge") return errc::entity_too_large;
    if (code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists")
        return errc::already_exists;
    if (code == "BucketNotEmpty") return errc::not_empty;
    if (code == "KeyTooLongError") return errc::name_too_long;
    if (code == "InvalidBucketName" || code == "InvalidArgument" || code == "InvalidRequest")
        return errc::invalid_argument;
    if (code == "RequestTimeout" || code == "RequestTimeTooSkewed") return errc::timed_out;
    if (code == "NotImplemented" || code == "MethodNotAllowed") return errc::not_supported;
    switch (status) {
    case 404:
        return errc::not_found;
    case 401:
    case 403:
        return errc::access_denied;
    case 409:
        return errc::already_exists;
    case 412:
        return errc::precondition_failed;
    case 429:
    case 503:
        return errc::throttled;
    case 400:
        return errc::invalid_argument;
    case 405:
    case 501:
        return errc::not_supported;
    default:
        return status >= 500 ? errc::io_error : errc::protocol_error;
    }
}

/// Percent-decoding for `encoding-type=url` listings; false if malformed.
inline bool url_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%') {
            if (i + 2 >= in.size()) return false;
            auto hex = [](char c) -> int {
                if (c >= '0' && c <= '9') return c - '0';
                if (c >= 'a' && c <= 'f') return c - 'a' + 10;
                if (c >= 'A' && c <= 'F') return c - 'A' + 10;
                return -1;
            };
            const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (in[i] == '+') {
            out += ' ';
        } else {
            out += in[i];
        }
    }
    return true;
}

inline std::string unquote(std::string_view etag) {
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
        etag = etag.substr(1, etag.size() - 2);
    return std::string(etag);
}

/// `t` as a time point, or none if system_clock's nanoseconds cannot hold it (before 1678 or
/// after 2262: a server's "9999-12-31" must not overflow).
inline std::optional<std::chrono::system_clock::time_point> checked_time(std::time_t t) {
    constexpr std::time_t limit = 9'000'000'000; // about 2255
    if (t == -1 || t > limit || t < -limit) return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

/// "2024-01-02T03:04:05.678Z" (listings).
inline std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
    std::tm tm{};
    int millis = 0;
    const std::string s(text);
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return std::nullopt;
    if (const auto dot = s.find('.'); dot != std::string::npos)
        std::sscanf(s.c_str() + dot + 1, "%3d", &millis);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const auto t = checked_time(::timegm(&tm));
    if (!t || millis < 0) return std::nullopt;
    return *t + std::chrono::milliseconds(millis);
}

/// "Tue, 02 Jan 2024 03:04:05 GMT" (Last-Modified).
inline std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
    std::tm tm{};
    const std::string s(text);
    const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
    if (!end) return std::nullopt;
    return checked_time(::timegm(&tm));
}

/// One ListObjectsV2 page; `errc::protocol_error` if the reply does not hold one.
inline list_page parse_list(std::string_view body, std::error_code& ec) {
    ec.clear();
    list_page page;
    auto tree = parse_xml(body);
    auto result = tree ? tree->get_child_optional("ListBucketResult") : boost::none;
    if (!result) {
        ec = errc::protocol_error;
        return page;
    }
    const bool url_encoded = result->get("EncodingType", "") == "url";
    auto decoded = [&](const std::string& raw, std::string& out) {
        if (!url_encoded) {
            out = raw;
            return true;
        }
        return url_decode(raw, out);
    };
    try {
        for (const auto& [name, node] : *result) {
            if (name == "Contents") {
                object_info info;
                if (!decoded(node.get<std::string>("Key"), info.key))
                    throw std::runtime_error("key");
                info.size = node.get<std::uint64_t>("Size", 0);
                info.etag = unquote(node.get("ETag", ""));
                if (auto t = parse_iso8601(node.get("LastModified", ""))) info.last_modified = *t;
                page.objects.push_back(std::move(info));
            } else if (name == "CommonPrefixes") {
                std::string prefix;
                if (!decoded(node.get<std::string>("Prefix"), prefix))
                    throw std::runtime_error("prefix");
                page.common_prefixes.push_back(std::move(prefix));
            }
        }
        if (result->get("IsTruncated", "false") == "true") {
            page.next_continuation_token = result->get("NextContinuationToken", "");
            if (page.next_continuation_token.empty()) throw std::runtime_error("token");
        }
    } catch (const std::exception&) {
        ec = errc::protocol_error;
        return {};
    }
    return page;
}

/// The UploadId of an InitiateMultipartUploadResult.
inline std::string parse_upload_id(std::string_view body, std::error_code& ec) {
    ec.clear();
    auto tree = parse_xml(body);
    std::string id = tree ? tree->get("InitiateMultipartUploadResult.UploadId", "") : "";
    if (id.empty()) ec = errc::protocol_error;
    return id;
}

/// The ETag of a CopyObjectResult or CompleteMultipartUploadResult. S3 may answer 200 with an
/// <Error> body to these: that comes back as the error it names. A result without its root
/// element is a protocol error; one with an empty ETag gives "" (Ceph radosgw 16 completes a
/// multipart upload with `<ETag></ETag>`), which the caller must resolve.
inline std::string parse_result_etag(std::string_view body, std::string_view root,
                                     std::error_code& ec, error_reply& error) {
    ec.clear();
    auto tree = parse_xml(body);
    if (!tree) {
        ec = errc::protocol_error;
        return {};
    }
    if (tree->get_child_optional("Error")) {
        error = parse_error(body);
        ec = error_for(500, error.code);
        return {};
    }
    if (!tree->get_child_optional(std::string(root))) {
        ec = errc::protocol_error;
        return {};
    }
    return unquote(tree->get(std::string(root) + ".ETag", ""));
}

inline std::string xml_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

inline std::string complete_multipart_body(const std::vector<completed_part>& parts) {
    std::string xml = "<CompleteMultipartUpload>";
    for (const auto& p : parts)
        xml += "<Part><PartNumber>" + std::to_string(p.part_number) + "</PartNumber><ETag>\"" +
               xml_escape(p.etag) + "\"</ETag></Part>";
    return xml + "</CompleteMultipartUpload>";
}

inline std::string delete_objects_body(const std::vector<std::string>& keys) {
    std::string xml = "<Delete><Quiet>true</Quiet>";
    for (const auto& k : keys)
        xml += "<Object><Key>" + xml_escape(k) + "</Key></Object>";
    return xml + "</Delete>";
}

/// The keys a DeleteObjects reply says it could not remove.
inline std::vector<remove_failure> parse_delete_result(std::string_view body, std::error_code& ec) {
    ec.clear();
    std::vector<remove_failure> failures;
    auto tree = parse_xml(body);
    auto result = tree ? tree->get_child_optional("DeleteResult") : boost::none;
    if (!result) {
        ec = errc::protocol_error;
        return failures;
    }
    for (const auto& [name, node] : *result)
        if (name == "Error")
            failures.push_back(
                {node.get("Key", ""), error_for(500, node.get("Code", "InternalError"))});
    return failures;
}

} // namespace skyvol::detail::s3

#endif
