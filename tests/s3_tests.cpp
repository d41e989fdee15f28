// The S3 protocol without a server (XML replies, errors, dates, bucket names), and the S3 store
// against s3rver beyond the conformance suite: bucket operations, URIs, odd replies.

#include "support/http_test_server.hpp"
#include "support/scoped_env.hpp"
#include "support/stalled_bucket.hpp"
#include "support/temp_dir.hpp"
#include "support/test_servers.hpp"

#include <skyvol/auth/detail/credential_text.hpp>
#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/store/detail/s3_protocol.hpp>
#include <skyvol/store/s3_store.hpp>
#include <skyvol/volume.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>

namespace skyvol::test {
namespace s3 = skyvol::detail::s3;

TEST_CASE("s3 protocol: dates past what system_clock holds are refused, not overflowed", "[s3]") {
    // Found by fuzz_s3_replies: year 4053 overflowed the nanosecond count (UBSan).
    using skyvol::detail::s3::parse_http_date;
    using skyvol::detail::s3::parse_iso8601;
    CHECK_FALSE(parse_iso8601("4053-01-02T03:04:05.000Z"));
    CHECK_FALSE(parse_iso8601("9999-12-31T23:59:59Z"));
    CHECK_FALSE(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"));
    CHECK_FALSE(skyvol::auth::detail::parse_iso8601("9999-12-31T23:59:59Z"));
    CHECK(parse_iso8601("2026-12-01T10:00:00.250Z"));
    CHECK(parse_http_date("Tue, 01 Dec 2026 10:00:00 GMT"));
    CHECK(skyvol::auth::detail::parse_iso8601("2200-01-01T00:00:00Z"));
}

TEST_CASE("s3 protocol: list replies parse with url encoding and pagination", "[s3]") {
    const std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>a%2F</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextContinuationToken>tok+en/=</NextContinuationToken>
  <Contents><Key>a/x%20y%26z</Key><LastModified>2024-01-02T03:04:05.678Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>42</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>a/%E2%82%AC</Key><LastModified>2024-01-02T03:04:05Z</LastModified>
    <ETag>"def-2"</ETag><Size>0</Size></Contents>
  <CommonPrefixes><Prefix>a/sub%2F/</Prefix></CommonPrefixes>
</ListBucketResult>)";
    std::error_code ec;
    const list_page page = s3::parse_list(xml, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(page.objects.size() == 2);
    CHECK(page.objects[0].key == "a/x y&z");
    CHECK(page.objects[0].etag == "abc");
    CHECK(page.objects[0].size == 42);
    CHECK(page.objects[0].last_modified.time_since_epoch() ==
          std::chrono::seconds(1704164645) + std::chrono::milliseconds(678));
    CHECK(page.objects[1].key == "a/\xE2\x82\xAC");
    CHECK(page.objects[1].etag == "def-2");
    REQUIRE(page.common_prefixes.size() == 1);
    CHECK(page.common_prefixes[0] == "a/sub//");
    CHECK(page.next_continuation_token == "tok+en/=");
}

TEST_CASE("s3 protocol: malformed and truncated replies are protocol errors", "[s3]") {
    for (const std::string bad :
         {"", "<ListBucketResult>", "not xml at all", "<Other/>",
          "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
          "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%G0</Key>"
          "</Contents></ListBucketResult>",
          "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
          "<ListBucketResult><Contents><Key>a</Key><Size>-x</Size></Contents>"}) {
        INFO(bad);
        std::error_code ec;
        s3::parse_list(bad, ec);
        CHECK(ec == errc::protocol_error);
    }
    std::error_code ec;
    s3::parse_upload_id("<InitiateMultipartUploadResult></InitiateMultipartUploadResult>", ec);
    CHECK(ec == errc::protocol_error);
    s3::error_reply error;
    s3::parse_result_etag("<Error><Code>InternalError</Code><Message>m</Message></Error>",
                          "CompleteMultipartUploadResult", ec, error);
    CHECK(ec == errc::io_error);
    CHECK(error.code == "InternalError");
    s3::parse_result_etag("<Other><ETag>x</ETag></Other>", "CopyObjectResult", ec, error);
    CHECK(ec == errc::protocol_error);
    // Complete but nameless (radosgw 16): no error here, the store asks the object.
    CHECK(s3::parse_result_etag("<CompleteMultipartUploadResult><Key>k</Key><ETag></ETag>"
                                "</CompleteMultipartUploadResult>",
                                "CompleteMultipartUploadResult", ec, error)
              .empty());
    CHECK_FALSE(ec);
    s3::parse_delete_result("<DeleteResult", ec);
    CHECK(ec == errc::protocol_error);
}

TEST_CASE("s3 protocol: error replies map to the library's codes", "[s3]") {
    const auto e =
        s3::parse_error("<Error><Code>NoSuchKey</Code><Message>The key does not exist</Message>"
                        "<RequestId>R1</RequestId></Error>");
    CHECK(e.code == "NoSuchKey");
    CHECK(e.describe() == "NoSuchKey: The key does not exist (request id R1)");
    CHECK(s3::error_for(404, e.code) == errc::not_found);
    CHECK(s3::error_for(503, "SlowDown") == errc::throttled);
    CHECK(s3::error_for(403, "SignatureDoesNotMatch") == errc::access_denied);
    CHECK(s3::error_for(400, "EntityTooSmall") == errc::entity_too_small);
    CHECK(s3::error_for(412, "") == errc::precondition_failed);
    CHECK(s3::error_for(500, "") == errc::io_error);
    CHECK(s3::error_for(404, "") == errc::not_found); // HEAD has no body
    CHECK(s3::error_for(404, "NoSuchUpload") == errc::invalid_upload);
    CHECK(s3::error_for(405, "MethodNotAllowed") == errc::not_supported);
    CHECK(s3::error_for(501, "") == errc::not_supported);
}

TEST_CASE("s3 protocol: bucket names are checked with a sentence per rule", "[s3]") {
    CHECK(s3::bucket_name_problem("my-bucket.data").empty());
    CHECK(s3::bucket_name_problem("ab").find("3 to 63") != std::string::npos);
    CHECK(s3::bucket_name_problem("My_Bucket").find("lower-case") != std::string::npos);
    CHECK(s3::bucket_name_problem("-bucket").find("begin and end") != std::string::npos);
    CHECK(s3::bucket_name_problem("a..b").find("adjacent dots") != std::string::npos);
    CHECK(s3::bucket_name_problem("192.168.1.1").find("IP addresses") != std::string::npos);
    CHECK(s3::bucket_name_problem("xn--bucket").find("xn--") != std::string::npos);
    CHECK_THROWS_WITH(s3_store("x"), Catch::Contains("3 to 63"));
}

TEST_CASE("s3 uris: each provider's endpoint and region and bucket rules", "[s3]") {
    scoped_env env;
    for (const char* name : {"CLOUDFLARE_ACCOUNT_ID", "R2_ACCOUNT_ID", "OCI_NAMESPACE"})
        env.set(name, nullptr);
    std::string why;
    std::error_code ec;
    auto parse = [&](std::string_view uri) {
        why.clear();
        return parse_s3_uri(uri, why, ec);
    };
    auto options = [&](const s3_location& where) {
        why.clear();
        return options_for(where, s3_options(), why, ec);
    };

    s3_location where = parse("s3://data-bucket/imagenet/train");
    REQUIRE_FALSE(ec);
    CHECK(where.provider == s3_provider::aws);
    CHECK(where.bucket == "data-bucket");
    CHECK(where.prefix == "imagenet/train");
    CHECK(options(where).endpoint.empty()); // AWS_ENDPOINT_URL or AWS's, at construction
    parse("s3://Bad_Bucket/x");
    CHECK(ec == errc::invalid_config);
    CHECK(why.find("lower-case") != std::string::npos);
    // Found by fuzz_uris: a doubled slash made a prefix (and so every key) start with '/'.
    CHECK(parse("s3://data-bucket//imagenet").prefix == "imagenet");
    CHECK(parse("cos://us-south/data-bucket//x/").prefix == "x/");
    CHECK(parse("s3://data-bucket///").prefix.empty());

    where = parse("r2://my-bucket/checkpoints");
    REQUIRE_FALSE(ec);
    CHECK(where.provider == s3_provider::r2);
    options(where);
    CHECK(ec == errc::invalid_config);
    CHECK(why.find("CLOUDFLARE_ACCOUNT_ID") != std::string::npos);
    env.set("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef");
    s3_options o = options(where);
    REQUIRE_FALSE(ec);
    CHECK(o.endpoint == "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com");
    CHECK(o.region == "auto");
    CHECK(o.provider == s3_provider::r2);
    parse("r2://my.bucket");
    CHECK(why.find("R2 bucket names use only lower-case letters, digits and hyphens") !=
          std::string::npos);

    where = parse("gs://my_bucket.data/x");
    REQUIRE_FALSE(ec);
    o = options(where);
    CHECK(o.endpoint == "https://storage.googleapis.com");
    CHECK(o.region == "auto");
    parse("gs://my-google-data");
    CHECK(why.find("contain google") != std::string::npos);
    parse("gs://goog-data");
    CHECK(why.find("begin with goog") != std::string::npos);
    parse("gs://" + std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c'));
    CHECK_FALSE(ec); // dotted GCS names may exceed 63 characters
    parse("gs://" + std::string(64, 'a') + ".b");
    CHECK(why.find("63 characters at most") != std::string::npos);
    parse("s3://" + std::string(63, 'a') + "." + std::string(63, 'b'));
    CHECK(why.find("3 to 63") != std::string::npos); // but S3's may not

    where = parse("cos://us-south/my-bucket/logs/2026");
    REQUIRE_FALSE(ec);
    CHECK(where.provider == s3_provider::ibm_cos);
    CHECK(where.bucket == "my-bucket");
    CHECK(where.prefix == "logs/2026");
    o = options(where);
    CHECK(o.endpoint == "https://s3.us-south.cloud-object-storage.appdomain.cloud");
    CHECK(o.region == "us-south");
    parse("cos://my-bucket");
    CHECK(why.find("names no bucket") != std::string::npos);
    parse("cos://us_south/my-bucket");
    CHECK(why.find("region first") != std::string::npos);

    where = parse("oci://Training_Data@us-ashburn-1/shards");
    REQUIRE_FALSE(ec);
    CHECK(where.bucket == "Training_Data"); // OCI allows upper case: path-style only
    CHECK(where.region == "us-ashburn-1");
    options(where);
    CHECK(why.find("OCI_NAMESPACE") != std::string::npos);
    env.set("OCI_NAMESPACE", "axaxnpcrorw5");
    o = options(where);
    REQUIRE_FALSE(ec);
    CHECK(o.endpoint == "https://axaxnpcrorw5.compat.objectstorage.us-ashburn-1.oraclecloud.com");
    CHECK(o.style == s3_options::addressing::path);
    parse("oci://bucket-without-region");
    CHECK(why.find("BUCKET@REGION") != std::string::npos);

    // An explicit endpoint and region win over the provider's.
    s3_options given;
    given.endpoint = "http://127.0.0.1:9000";
    given.region = "eu-central-1";
    o = options_for(parse("gs://bucket"), given, why, ec);
    CHECK(o.endpoint == "http://127.0.0.1:9000");
    CHECK(o.region == "eu-central-1");

    parse("ftp://bucket");
    CHECK(why.find("s3://, r2://, gs://, cos:// or oci://") != std::string::npos);
    CHECK(is_s3_uri("gs://bucket"));
    CHECK_FALSE(is_s3_uri("file:///srv/bucket"));
    env.set("OCI_NAMESPACE", nullptr);
    CHECK_THROWS_WITH(s3_store::from_uri("oci://b@us-phoenix-1"), Catch::Contains("OCI_NAMESPACE"));
}

TEST_CASE("s3 store: S3 error replies become error codes and log lines with code and request id",
          "[s3]") {
    http_test_server server([](const http_exchange& in) {
        http_reply reply;
        auto error = [&](unsigned status, const std::string& code, const std::string& message) {
            reply.status = status;
            reply.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code +
                         "</Code><Message>" + message + "</Message><RequestId>REQ-" + code +
                         "</RequestId></Error>";
        };
        if (in.method == "PUT" && !in.header("if-none-match").empty())
            error(412, "PreconditionFailed", "At least one of the pre-conditions did not hold");
        else if (in.method == "PUT" && // unquoted: radosgw fails a quoted ETag
                 in.header("if-match") == "0123456789abcdef0123456789abcdef")
            error(412, "PreconditionFailed", "At least one of the pre-conditions did not hold");
        else if (in.method == "POST" && in.target.find("/order?") != std::string::npos)
            error(400, "InvalidPartOrder", "The list of parts was not in ascending order");
        else if (in.method == "POST" && in.target.find("/small?") != std::string::npos)
            error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum");
        else if (in.target.starts_with("/scripted/denied"))
            error(403, "AccessDenied", "Access Denied");
        else if (in.method == "HEAD") {
            reply.status = 404;
            reply.headers.emplace_back("x-amz-request-id", "REQ-HEAD");
        } else
            error(500, "InternalError", "unexpected request");
        return reply;
    });
    std::mutex mutex;
    std::vector<std::pair<log_level, std::string>> lines;
    s3_options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    o.credentials = auth::credentials{"AKIDSCRIPTED", "secret-never-logged", {}, std::nullopt};
    o.http.max_attempts = 1;
    o.http.log = [&](log_level level, std::string_view text) {
        std::lock_guard lock(mutex);
        lines.emplace_back(level, std::string(text));
    };
    s3_store store("scripted", o);
    auto error_of = [](auto&& future) {
        try {
            future.get();
        } catch (const boost::system::system_error& e) { // what use_future throws
            return std::error_code(e.code());
        }
        return std::error_code();
    };
    put_options create_only;
    create_only.if_none_match = true;
    CHECK(error_of(store.async_put("cond", boost::asio::buffer("x", 1), create_only,
                                   boost::asio::use_future)) == errc::already_exists);
    put_options replace;
    replace.if_match = "0123456789abcdef0123456789abcdef";
    CHECK(error_of(store.async_put("cond", boost::asio::buffer("x", 1), replace,
                                   boost::asio::use_future)) == errc::precondition_failed);
    std::vector<completed_part> parts(1, completed_part{1, "etag"});
    CHECK(error_of(store.async_complete_multipart("order", "U1", parts, boost::asio::use_future)) ==
          errc::invalid_upload);
    CHECK(error_of(store.async_complete_multipart("small", "U1", parts, boost::asio::use_future)) ==
          errc::entity_too_small);
    char byte;
    CHECK(error_of(store.async_get("denied", 0, boost::asio::buffer(&byte, 1),
                                   boost::asio::use_future)) == errc::access_denied);
    CHECK(error_of(store.async_head("missing", boost::asio::use_future)) == errc::not_found);

    std::lock_guard lock(mutex);
    auto logged = [&](std::string_view text) {
        for (const auto& [level, line] : lines)
            if (line.find(text) != std::string::npos) return std::optional<log_level>(level);
        return std::optional<log_level>();
    };
    CHECK(logged("s3 scripted/denied at " + o.endpoint +
                 ": GET answered 403 AccessDenied: Access Denied (request id REQ-AccessDenied)") ==
          log_level::warning);
    CHECK(logged("s3 scripted/order at " + o.endpoint + ": POST answered 400 InvalidPartOrder") ==
          log_level::warning);
    CHECK(logged("s3 scripted/missing at " + o.endpoint +
                 ": HEAD answered 404 no S3 error code (request id REQ-HEAD)") ==
          log_level::debug); // an answer callers expect
    CHECK(logged("PreconditionFailed") == log_level::debug);
    for (const auto& [level, line] : lines) {
        CHECK(line.find("secret-never-logged") == std::string::npos);
        CHECK(line.find("Signature=") == std::string::npos);
    }
}

TEST_CASE("s3 store: a server that echoes the request's keys and signature in its errors is "
          "redacted in the log",
          "[s3]") {
    const std::string token = "FQoGZXIvYXdzEJr//////////session+token=";
    const std::string percent_token =
        "FQoGZXIvYXdzEJr%2F%2F%2F%2F%2F%2F%2F%2F%2F%2Fsession%2Btoken%3D";
    http_test_server server([&](const http_exchange& in) {
        const std::string authorization(in.header("authorization"));
        const std::string signature = authorization.substr(authorization.find("Signature=") + 10);
        http_reply reply;
        reply.status = 403;
        // What a careless server or proxy echoes: headers, the bare signature and the token in
        // a URL, other credentials in JSON and XML (escaped, as inside an XML reply).
        reply.body =
            "<Error><Code>AccessDenied</Code><Message>denied: Authorization: " + authorization +
            " x-amz-security-token: " + std::string(in.header("x-amz-security-token")) +
            " computed " + signature + " from /b?X-Amz-Security-Token=" + percent_token +
            " {&quot;SessionToken&quot;: &quot;json-held-token&quot;} "
            "&lt;SecretAccessKey&gt;xml-held-secret&lt;/SecretAccessKey&gt; Bearer "
            "eyJhbGciOi.bearer-token sig=sas-signature%3D "
            "SignatureDoesNotMatch: The request signature we calculated does not "
            "match</Message><RequestId>REQ-ECHO</RequestId></Error>";
        return reply;
    });
    std::mutex mutex;
    std::vector<std::string> lines;
    s3_options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    o.credentials = auth::credentials{"AKIDECHOED", "secret/never+logged", token, std::nullopt};
    o.http.max_attempts = 1;
    o.http.log = [&](log_level, std::string_view text) {
        std::lock_guard lock(mutex);
        lines.emplace_back(text);
    };
    s3_store store("scripted", o);
    char byte;
    CHECK_THROWS(
        store.async_get("echo", 0, boost::asio::buffer(&byte, 1), boost::asio::use_future).get());
    const auto sent = server.received();
    REQUIRE(sent.size() == 1);
    const std::string authorization(sent[0].header("authorization"));
    const std::string signature = authorization.substr(authorization.find("Signature=") + 10);
    REQUIRE(signature.size() == 64);

    std::lock_guard lock(mutex);
    REQUIRE(lines.size() == 1);
    const std::string& line = lines[0];
    INFO(line);
    CHECK(line.starts_with("s3 scripted/echo at " + o.endpoint +
                           ": GET answered 403 AccessDenied: denied:"));
    CHECK(line.ends_with("SignatureDoesNotMatch: The request signature we calculated does not "
                         "match (request id REQ-ECHO)"));
    for (const std::string& secret :
         {token, percent_token, signature, std::string("AKIDECHOED"),
          std::string("json-held-token"), std::string("xml-held-secret"),
          std::string("bearer-token"), std::string("sas-signature")})
        CHECK(line.find(secret) == std::string::npos);
    CHECK(line.find("Authorization: AWS4-HMAC-SHA256 ****, SignedHeaders=") != std::string::npos);
}

TEST_CASE("s3 store: an upload whose answer is lost is checked before it is called failed",
          "[s3]") {
    auto md5_hex = [](std::string_view data) {
        skyvol::detail::md5 digest;
        digest.update(data.data(), data.size());
        return skyvol::detail::to_hex(digest.finish());
    };
    const std::string part1 = md5_hex("part one"), part2 = md5_hex("part two");
    const std::string done_etag = skyvol::detail::multipart_etag(std::vector{part1, part2});
    std::mutex mutex;
    std::map<std::string, int> seen; // requests per method and target
    http_test_server server([&](const http_exchange& in) {
        const std::string path = in.target.substr(0, in.target.find('?'));
        int n;
        {
            std::lock_guard lock(mutex);
            n = ++seen[in.method + " " + in.target];
        }
        http_reply reply;
        auto no_such_upload = [&] {
            reply.status = 404;
            reply.body = "<Error><Code>NoSuchUpload</Code><Message>The specified upload does not "
                         "exist</Message></Error>";
        };
        auto object = [&](const std::string& etag) {
            reply.headers.emplace_back("etag", "\"" + etag + "\"");
            reply.content_length = 7;
        };
        if (in.method == "PUT" && path == "/scripted/erred") {
            reply.status = 500; // after doing it, as a server may
            reply.body = "<Error><Code>InternalError</Code></Error>";
        } else if (in.method == "PUT") // every answer to every other PUT is lost
            reply.drop = true;
        else if (in.method == "HEAD" && (path == "/scripted/landed" || path == "/scripted/erred"))
            object(md5_hex("payload"));
        else if (in.method == "HEAD" && path == "/scripted/older")
            object(md5_hex("an older payload"));
        else if (in.method == "HEAD" && path == "/scripted/done")
            object(done_etag);
        else if (in.method == "POST" && path == "/scripted/done" && n == 1)
            reply.drop = true; // completed, but the answer is lost; the retry finds no upload
        else if (in.method == "POST" && in.target.find("uploadId=") != std::string::npos)
            no_such_upload();
        else if (in.method == "POST" && path == "/scripted/busy" && n == 1) {
            reply.status = 503;
            reply.body = "<Error><Code>SlowDown</Code><Message>Reduce your request "
                         "rate</Message></Error>";
        } else if (in.method == "POST" && path == "/scripted/busy")
            reply.body = "<InitiateMultipartUploadResult><UploadId>U3</UploadId>"
                         "</InitiateMultipartUploadResult>";
        else
            reply.status = 404;
        return reply;
    });
    s3_options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    o.credentials = auth::credentials{"AKIDSCRIPTED", "secret", {}, std::nullopt};
    o.http.max_attempts = 3;
    o.http.base_backoff = std::chrono::milliseconds(1);
    s3_store store("scripted", o);
    // "ETAG", or the error's message.
    auto result_of = [](auto&& future) -> std::string {
        try {
            return future.get().etag;
        } catch (const boost::system::system_error& e) {
            return "error: " + std::error_code(e.code()).message();
        }
    };

    // Every answer lost, and the object holds what was sent: the upload succeeded.
    CHECK(result_of(store.async_put("landed", boost::asio::buffer("payload", 7), put_options(),
                                    boost::asio::use_future)) == md5_hex("payload"));
    CHECK(result_of(store.async_put("erred", boost::asio::buffer("payload", 7), put_options(),
                                    boost::asio::use_future)) == md5_hex("payload"));
    // Every answer lost and the object is another: the failure stands.
    CHECK(result_of(store.async_put("older", boost::asio::buffer("payload", 7), put_options(),
                                    boost::asio::use_future)) ==
          "error: " + std::error_code(errc::connection_failed).message());
    // The completion's answer lost, its retry told NoSuchUpload: the object has the parts.
    const std::vector<completed_part> parts{{2, "\"" + part2 + "\""}, {1, part1}};
    CHECK(result_of(store.async_complete_multipart("done", "U1", parts, boost::asio::use_future)) ==
          done_etag);
    // NoSuchUpload and no such object: the upload id was wrong.
    CHECK(result_of(store.async_complete_multipart("gone", "U2", parts, boost::asio::use_future)) ==
          "error: " + std::error_code(errc::invalid_upload).message());
    // A creation refused with 503 SlowDown did nothing, so it is retried.
    CHECK(store.async_create_multipart("busy", put_options(), boost::asio::use_future).get() ==
          "U3");
    std::lock_guard lock(mutex);
    CHECK(seen["POST /scripted/busy?uploads="] == 2);
    CHECK(seen["POST /scripted/done?uploadId=U1"] == 2);
}

TEST_CASE("volume on s3: keys no file name can hold are hidden from listings, counted and "
          "logged once",
          "[s3]") {
    http_test_server server([](const http_exchange& in) {
        http_reply reply;
        auto object = [](const std::string& key) {
            return "<Contents><Key>" + key +
                   "</Key><LastModified>2024-05-01T12:00:00.000Z</LastModified><ETag>&quot;"
                   "0cc175b9c0f1b6a831c399e269772661&quot;</ETag><Size>1</Size></Contents>";
        };
        if (in.method == "GET" && in.target.find("list-type=2") != std::string::npos) {
            // URL-encoded, as asked: a NUL byte, a byte that is no UTF-8, a '..' and a
            // "folder" whose name is no UTF-8 either, beside two keys a file tree can hold.
            reply.body = "<ListBucketResult><Name>scripted</Name><EncodingType>url</EncodingType>"
                         "<IsTruncated>false</IsTruncated>" +
                         object("a.txt") + object("nul%00byte") + object("latin%E9.txt") +
                         object("..") + object("z.txt") +
                         "<CommonPrefixes><Prefix>bad%FFdir/</Prefix></CommonPrefixes>"
                         "</ListBucketResult>";
        } else if (in.method == "HEAD" &&
                   (in.target == "/scripted/a.txt" || in.target == "/scripted/z.txt")) {
            reply.headers.emplace_back("etag", "\"0cc175b9c0f1b6a831c399e269772661\"");
            reply.content_length = 1;
        } else {
            reply.status = 404;
        }
        return reply;
    });
    std::mutex mutex;
    std::vector<std::string> warnings;
    s3_options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    o.credentials = auth::credentials{"AKIDSCRIPTED", "secret", {}, std::nullopt};
    volume_options vo;
    vo.log = [&](log_level level, std::string_view text) {
        std::lock_guard lock(mutex);
        if (level == log_level::warning) warnings.emplace_back(text);
    };
    volume<s3_store, mode::read_only> vol(s3_store("scripted", o), vo);
    for (int round = 0; round < 2; ++round) { // each lists again; the second logs nothing new
        std::vector<std::string> names;
        for (const auto& entry : vol.directory(""))
            names.emplace_back(entry.filename());
        CHECK(names == std::vector<std::string>{"a.txt", "z.txt"});
    }
    CHECK(vol.status("a.txt").size == 1);
    CHECK(vol.hidden_keys() == 4);
    std::lock_guard lock(mutex);
    CHECK(warnings.size() == 4);
    auto warned = [&](const std::string& text) {
        return std::count_if(warnings.begin(), warnings.end(), [&](const std::string& w) {
            return w.find(text) != std::string::npos;
        });
    };
    CHECK(warned("key 'nul\\x00byte' is hidden from listings: it holds a NUL byte") == 1);
    CHECK(warned("key 'latin\\xe9.txt' is hidden from listings: it is not UTF-8") == 1);
    CHECK(warned("key 'bad\\xffdir/' is hidden from listings: it is not UTF-8") == 1);
    CHECK(warned("key '..' is hidden") == 1);
}

TEST_CASE("s3 store: a download is written as it arrives and from the start again after a "
          "retry",
          "[s3]") {
    constexpr std::size_t mib = 1u << 20;
    std::string object(3 * mib + 123, '\0');
    for (std::size_t i = 0; i < object.size(); ++i)
        object[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
    std::mutex mutex;
    std::map<std::string, int> asked; // Range -> times asked
    http_test_server server([&](const http_exchange& in) {
        http_reply reply;
        const std::string range = in.header("range");
        std::uint64_t first = 0, last = 0;
        if (in.method != "GET" || std::sscanf(range.c_str(), "bytes=%lu-%lu", &first, &last) != 2) {
            reply.status = 400;
            return reply;
        }
        last = std::min<std::uint64_t>(last, object.size() - 1);
        reply.status = 206;
        reply.body = object.substr(first, last - first + 1);
        reply.headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" +
                                                        std::to_string(last) + "/" +
                                                        std::to_string(object.size()));
        std::lock_guard lock(mutex);
        if (first == mib && asked[range]++ == 0) {
            // Cut short, and with other bytes: what the retry brings must replace all of them.
            for (char& c : reply.body)
                c = static_cast<char>(c - 'a' + 'A');
            reply.body_cut = 700'000;
        }
        return reply;
    });
    s3_options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    o.credentials = auth::credentials{"AKIDSCRIPTED", "secret", {}, std::nullopt};
    s3_store store("scripted", o);
    static_assert(reports_get_progress<s3_store>);

    SECTION("progress counts up, and starts over when a retry does") {
        std::vector<std::size_t> seen;
        std::string buffer(mib, '.');
        const std::size_t n = store
                                  .async_get(
                                      "obj", mib, boost::asio::buffer(buffer),
                                      [&seen](std::size_t received) { seen.push_back(received); },
                                      boost::asio::use_future)
                                  .get();
        CHECK(n == mib);
        CHECK((buffer == object.substr(mib, mib)));
        REQUIRE(seen.size() >= 3);
        CHECK(seen.back() == mib);
        std::size_t restarts = 0;
        for (std::size_t i = 1; i < seen.size(); ++i)
            restarts += seen[i] < seen[i - 1] ? 1 : 0;
        CHECK(restarts == 1); // the cut attempt's count, then the retry's from the start
        CHECK(seen.front() <= 700'000);
    }
    SECTION("download_to_file writes every chunk whole, the retried one too") {
        temp_dir dir;
        const std::string file = (dir.path() / "down").string();
        const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        std::vector<std::pair<std::uint64_t, std::size_t>> chunks;
        const detail::chunk_written on_chunk = [&](std::uint64_t at, std::size_t length) {
            std::lock_guard lock(mutex);
            chunks.emplace_back(at, length);
        };
        const std::uint64_t got =
            boost::asio::co_spawn(store.get_executor(),
                                  detail::download_to_file(store, "obj", fd, object.size(),
                                                           detail::transfer_shape{mib, mib, 2},
                                                           on_chunk),
                                  boost::asio::use_future)
                .get();
        ::close(fd);
        CHECK(got == object.size());
        std::ifstream in(file, std::ios::binary);
        const std::string written((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
        REQUIRE(written.size() == object.size());
        const auto differs = std::mismatch(written.begin(), written.end(), object.begin()).first;
        CHECK(differs - written.begin() == static_cast<std::ptrdiff_t>(object.size()));
        CHECK(chunks.size() == 4);
        std::lock_guard lock(mutex);
        CHECK(asked["bytes=1048576-2097151"] == 2);
    }
}

TEST_CASE("s3 store: a reply naming the bucket's region moves the store there", "[s3]") {
    http_test_server server([](const http_exchange& in) {
        http_reply reply;
        const std::string auth = in.header("authorization");
        if (auth.find("/eu-west-2/s3/aws4_request") != std::string::npos) {
            reply.headers.emplace_back("x-amz-bucket-region", "eu-west-2");
            reply.headers.emplace_back("etag", "\"0cc175b9c0f1b6a831c399e269772661\"");
            reply.headers.emplace_back("content-type", "text/plain");
            reply.body = in.method == "HEAD" ? "" : "a";
        } else if (in.method == "HEAD") {
            reply.status = 301; // HEAD: no body, the header says where
            reply.headers.emplace_back("x-amz-bucket-region", "eu-west-2");
        } else {
            reply.status = 400;
            reply.body = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region "
                         "'us-east-1' is wrong; expecting 'eu-west-2'</Message>"
                         "<Region>eu-west-2</Region></Error>";
        }
        return reply;
    });
    s3_options o;
    o.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
    o.region = "us-east-1";
    o.credentials = auth::credentials{"AKIDREGION", "secret", {}, std::nullopt};
    SECTION("found by HeadBucket") {
        s3_store store("far-bucket", o);
        CHECK(store.async_head_bucket(boost::asio::use_future).get() == "eu-west-2");
        CHECK(store.async_head("k", boost::asio::use_future).get().etag ==
              "0cc175b9c0f1b6a831c399e269772661");
        const auto seen = server.received();
        REQUIRE(seen.size() == 3); // 301, its retry, then straight to eu-west-2
        CHECK(seen[2].header("authorization").find("/eu-west-2/") != std::string::npos);
    }
    SECTION("found by a PUT's 400 AuthorizationHeaderMalformed") {
        s3_store store("far-bucket", o);
        const std::string data = "a";
        CHECK(
            store.async_put("k", boost::asio::buffer(data), put_options(), boost::asio::use_future)
                .get()
                .etag == "0cc175b9c0f1b6a831c399e269772661");
        const auto seen = server.received();
        REQUIRE(seen.size() == 2);
        CHECK(seen[1].body == "a"); // the body went again
    }
}

TEST_CASE("s3 store: gs and r2 URIs reach an explicit S3 endpoint", "[s3][servers]") {
    test_server& server = shared_server(server_kind::s3rver);
    s3_options o;
    o.endpoint = server.endpoint();
    o.credentials =
        auth::credentials{test_server::s3_access_key, test_server::s3_secret_key, {}, std::nullopt};
    for (const std::string scheme : {"gs", "r2"}) {
        INFO(scheme);
        s3_store store = s3_store::from_uri(
            scheme + "://" + scheme + "-interop-" + std::to_string(::getpid()), o);
        store.async_create_bucket(boost::asio::use_future).get();
        const std::string data = "through " + scheme;
        store.async_put("k", boost::asio::buffer(data), put_options(), boost::asio::use_future)
            .get();
        std::string back(data.size(), '\0');
        CHECK(store.async_get("k", 0, boost::asio::buffer(back), boost::asio::use_future).get() ==
              data.size());
        CHECK(back == data);
    }
}

TEST_CASE("s3 store: a program's own io_context runs the store and a volume on it on no thread "
          "of theirs",
          "[s3][servers]") {
    auto threads = [] {
        return std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                             std::filesystem::directory_iterator());
    };
    test_server& server = shared_server(server_kind::s3rver);
    s3_options o;
    o.endpoint = server.endpoint();
    o.credentials =
        auth::credentials{test_server::s3_access_key, test_server::s3_secret_key, {}, std::nullopt};
    temp_dir cache("skyvol-own-context");
    volume_options vo;
    vo.cache_dir = cache.path();
    boost::asio::io_context io;
    const auto before = threads();
    s3_store store(io.get_executor(), "own-context-" + std::to_string(::getpid()), o);
    volume<s3_store, mode::write_through> v(io.get_executor(), store, vo);
    CHECK(threads() == before); // a pool of its own would be 2 threads more
    CHECK(store.get_executor() == io.get_executor());

    const auto caller = std::this_thread::get_id();
    bool all_on_caller = true;
    auto work = [&]() -> boost::asio::awaitable<std::string> {
        co_await store.async_create_bucket(boost::asio::use_awaitable);
        all_on_caller = all_on_caller && std::this_thread::get_id() == caller;
        const std::string path = "on-context.txt", text = "on the caller's context";
        co_await v.async_write_file(path, text, boost::asio::use_awaitable);
        all_on_caller = all_on_caller && std::this_thread::get_id() == caller;
        std::string back = co_await v.async_read_file(path, boost::asio::use_awaitable);
        all_on_caller = all_on_caller && std::this_thread::get_id() == caller;
        co_return back;
    };
    auto result = boost::asio::co_spawn(io, work(), boost::asio::use_future);
    io.run(); // this thread alone runs both
    CHECK(result.get() == "on the caller's context");
    CHECK(all_on_caller);
}

TEST_CASE("volume on s3: cancelled lookups and reads end their requests but writes run to the end",
          "[s3]") {
    using namespace std::chrono_literals;
    using boost::asio::bind_cancellation_slot;
    using boost::asio::use_future;
    constexpr auto terminal = boost::asio::cancellation_type::terminal;
    http_test_server server(stalled_bucket_reply);
    temp_dir cache("skyvol-cancel");
    volume_options vo;
    vo.cache_dir = cache.path();
    volume<s3_store, mode::write_through> v(s3_store("stalled", stalled_bucket_options(server)),
                                            vo);
    // Ready well before the two-minute answer, with operation_canceled.
    auto cancelled = [](auto& future) {
        if (future.wait_for(20s) != std::future_status::ready) return false;
        try {
            future.get();
        } catch (const boost::system::system_error& e) {
            return std::error_code(e.code()) == std::errc::operation_canceled;
        }
        return false;
    };

    boost::asio::cancellation_signal stop_lookup;
    auto lookup =
        v.async_status("stalled-head", bind_cancellation_slot(stop_lookup.slot(), use_future));
    REQUIRE(received_request(server, "HEAD", "/stalled-head"));
    stop_lookup.emit(terminal);
    CHECK(cancelled(lookup));

    // A file's read waits for its read-ahead range: the cancelled wait is no end of file.
    file f = v.open("stalled.bin");
    std::string buffer(stalled_object_size, '\0');
    boost::asio::cancellation_signal stop_read;
    auto read = f.async_read_at(0, boost::asio::buffer(buffer),
                                bind_cancellation_slot(stop_read.slot(), use_future));
    REQUIRE(received_request(server, "GET", "/stalled.bin"));
    stop_read.emit(terminal);
    CHECK(cancelled(read));

    // A read without a file is a ranged GET of its own.
    boost::asio::cancellation_signal stop_direct;
    auto direct = v.async_read("stalled.bin", 0, boost::asio::buffer(buffer),
                               bind_cancellation_slot(stop_direct.slot(), use_future));
    REQUIRE(received_request(server, "GET", "/stalled.bin", 2));
    stop_direct.emit(terminal);
    CHECK(cancelled(direct));

    // The volume goes on answering, and a cancellation after the end changes nothing.
    CHECK_FALSE(v.exists("other.txt"));
    stop_lookup.emit(terminal);

    // A write is not cancelled: its caller could not tell what half of it happened.
    boost::asio::cancellation_signal stop_write;
    auto wrote = v.async_write_file("kept.txt", "kept",
                                    bind_cancellation_slot(stop_write.slot(), use_future));
    REQUIRE(received_request(server, "PUT", "/kept.txt"));
    stop_write.emit(terminal);
    REQUIRE(wrote.wait_for(30s) == std::future_status::ready);
    CHECK_NOTHROW(wrote.get());
}

TEST_CASE("credentials: environment first then profiles with errors naming the source",
          "[s3][auth]") {
    temp_dir dir("skyvol-creds");
    scoped_env env;
    for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                             "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"})
        env.set(name, nullptr);
    env.set("HOME", dir.path().c_str());
    const std::string credentials_file = (dir.path() / "credentials").string();
    const std::string config_file = (dir.path() / "config").string();
    {
        std::ofstream(credentials_file) << "[default]\naws_access_key_id = AKIDDEFAULT\n"
                                           "aws_secret_access_key = secret-default\n\n"
                                           "[half]\naws_access_key_id = AKIDHALF\n";
        std::ofstream(config_file) << "[default]\nregion = eu-west-1\n"
                                      "[profile ci]\naws_access_key_id=AKIDCI\n"
                                      "aws_secret_access_key=secret-ci\n"
                                      "aws_session_token=token-ci\n";
    }
    env.set("AWS_SHARED_CREDENTIALS_FILE", credentials_file.c_str());
    env.set("AWS_CONFIG_FILE", config_file.c_str());
    std::string why;
    std::error_code ec;

    auto got = auth::resolve_credentials(why, ec);
    REQUIRE_FALSE(ec);
    CHECK(got.keys.access_key_id == "AKIDDEFAULT");
    CHECK(got.source.find("profile default") == 0);

    env.set("AWS_PROFILE", "ci"); // only in the config file, as "[profile ci]"
    got = auth::resolve_credentials(why, ec);
    REQUIRE_FALSE(ec);
    CHECK(got.keys.access_key_id == "AKIDCI");
    CHECK(got.keys.session_token == "token-ci");

    env.set("AWS_PROFILE", "half");
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    CHECK(why.find("profile 'half'") != std::string::npos);
    CHECK(why.find("aws_secret_access_key") != std::string::npos);

    env.set("AWS_PROFILE", "missing");
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    CHECK(why.find("profile 'missing' (AWS_PROFILE)") != std::string::npos);

    env.set("AWS_ACCESS_KEY_ID", "AKIDENV"); // the environment comes before any profile
    env.set("AWS_SECRET_ACCESS_KEY", "secret-env");
    got = auth::resolve_credentials(why, ec);
    REQUIRE_FALSE(ec);
    CHECK(got.keys.access_key_id == "AKIDENV");
    CHECK(got.source == "environment");

    env.set("AWS_SECRET_ACCESS_KEY", nullptr);
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    CHECK(why.find("environment") == 0);
    for (const char* secret : {"secret-env", "secret-ci", "secret-default", "token-ci"})
        CHECK(why.find(secret) == std::string::npos);
}

/// Creates a bucket, round-trips keys that every part of SigV4's canonical request must encode
/// alike on both sides (path, query of listings and presigned URLs), and deletes it again.
void bucket_operations_and_odd_keys(server_kind kind, bool lists_in_byte_order) {
    test_server& server = shared_server(kind);
    s3_options o;
    o.endpoint = server.endpoint();
    o.credentials = auth::credentials{server.access_key(), server.secret_key(), {}, std::nullopt};
    const std::string bucket = "bucket-ops-" + std::to_string(::getpid());
    s3_store store(bucket, o);
    store.async_create_bucket(boost::asio::use_future).get();
    CHECK(store.async_head_bucket(boost::asio::use_future).get() == "us-east-1");
    const std::vector<std::string> keys = {
        "a b/c+d=e&f",  "x/€uro",           "percent%2Fsign",     "tilde~!*'()",
        "x/日本語.txt", "semi;colon,comma", "dollar$at@hash#q?v", "x/brackets[]{}^`|"};
    put_options with_metadata;
    with_metadata.content_type = "text/plain; charset=utf-8";
    with_metadata.metadata["note"] = "a=b; c, d  e";
    for (const std::string& key : keys) {
        INFO(key);
        const std::string data = "content of " + key;
        store.async_put(key, boost::asio::buffer(data), with_metadata, boost::asio::use_future)
            .get();
        const object_info info = store.async_head(key, boost::asio::use_future).get();
        CHECK(info.size == data.size());
        CHECK(info.metadata.at("note") == "a=b; c, d  e");
        std::string back(data.size(), '\0');
        CHECK(store.async_get(key, 0, boost::asio::buffer(back), boost::asio::use_future).get() ==
              data.size());
        CHECK(back == data);

        // A presigned URL for the same key, fetched by a client that is not ours.
        const std::string url = auth::presign_url(
            "GET", server.endpoint(), "/" + bucket + "/" + auth::uri_encode(key, false), "",
            *o.credentials, auth::signing_scope{"us-east-1", "s3"},
            std::chrono::system_clock::now(), std::chrono::seconds(300));
        const raw_http_reply presigned =
            raw_http_exchange(server.port(), "GET", url.substr(server.endpoint().size()));
        CHECK(presigned.status == 200);
        CHECK(presigned.body == data);
    }
    // Listings put prefix, delimiter, start-after and continuation tokens in the signed query.
    list_request under_x;
    under_x.prefix = "x/";
    under_x.max_keys = 1;
    std::vector<std::string> paged;
    do {
        const list_page page = store.async_list(under_x, boost::asio::use_future).get();
        for (const auto& object : page.objects)
            paged.push_back(object.key);
        under_x.continuation_token = page.next_continuation_token;
    } while (!under_x.continuation_token.empty());
    std::sort(paged.begin(), paged.end());
    CHECK(paged == std::vector<std::string>{"x/brackets[]{}^`|", "x/€uro", "x/日本語.txt"});
    if (lists_in_byte_order) { // start-after follows the server's order
        list_request top;
        top.delimiter = "/";
        top.start_after = "a b/c+d=e&f";
        const list_page page = store.async_list(top, boost::asio::use_future).get();
        CHECK(page.common_prefixes == std::vector<std::string>{"x/"});
        CHECK(page.objects.size() == 4); // dollar..., percent..., semi..., tilde...
    }

    list_request all;
    const list_page whole = store.async_list(all, boost::asio::use_future).get();
    CHECK(whole.objects.size() == keys.size());
    // Not empty: DeleteBucket refuses.
    CHECK_THROWS(store.async_delete_bucket(boost::asio::use_future).get());
    std::vector<std::string> listed;
    for (const auto& object : whole.objects)
        listed.push_back(object.key);
    CHECK(store.async_remove_batch(listed, boost::asio::use_future).get().empty());
    store.async_delete_bucket(boost::asio::use_future).get();
    CHECK_THROWS(store.async_head_bucket(boost::asio::use_future).get());
}

TEST_CASE("s3 store: bucket operations and odd keys against s3rver", "[s3][servers]") {
    bucket_operations_and_odd_keys(server_kind::s3rver, false);
}

TEST_CASE("s3 store: bucket operations and odd keys on radosgw", "[s3][servers]") {
    bucket_operations_and_odd_keys(server_kind::radosgw, true);
}

TEST_CASE("s3 store on radosgw: a wrong secret is refused and the log says where and why",
          "[s3][servers]") {
    test_server& server = shared_server(server_kind::radosgw);
    const std::string bucket = "wrong-secret-" + std::to_string(::getpid());
    s3_options right;
    right.endpoint = server.endpoint();
    right.credentials = auth::credentials{
        test_server::rgw_access_key, test_server::rgw_secret_key, {}, std::nullopt};
    s3_store owner(bucket, right);
    owner.async_create_bucket(boost::asio::use_future).get();
    owner.async_put("k", boost::asio::buffer("v", 1), put_options(), boost::asio::use_future).get();

    std::mutex mutex;
    std::vector<std::string> lines;
    s3_options wrong = right;
    wrong.credentials = auth::credentials{
        test_server::rgw_access_key, "not-the-secret-key-at-all", {}, std::nullopt};
    wrong.http.max_attempts = 1;
    wrong.http.log = [&](log_level, std::string_view text) {
        std::lock_guard lock(mutex);
        lines.emplace_back(text);
    };
    s3_store intruder(bucket, wrong);
    auto error_of = [](auto&& future) {
        try {
            future.get();
        } catch (const boost::system::system_error& e) {
            return std::error_code(e.code());
        }
        return std::error_code();
    };
    char byte;
    CHECK(error_of(intruder.async_get("k", 0, boost::asio::buffer(&byte, 1),
                                      boost::asio::use_future)) == errc::access_denied);
    CHECK(error_of(intruder.async_head("k", boost::asio::use_future)) == errc::access_denied);
    CHECK(error_of(intruder.async_list(list_request(), boost::asio::use_future)) ==
          errc::access_denied);
    CHECK(error_of(intruder.async_put("k", boost::asio::buffer("x", 1), put_options(),
                                      boost::asio::use_future)) == errc::access_denied);
    std::string back(1, '\0');
    owner.async_get("k", 0, boost::asio::buffer(back), boost::asio::use_future).get();
    CHECK(back == "v");

    std::lock_guard lock(mutex);
    bool named = false;
    for (const std::string& line : lines) {
        INFO(line);
        CHECK(line.find("not-the-secret-key-at-all") == std::string::npos);
        CHECK(line.find("Signature=") == std::string::npos);
        if (line.find("s3 " + bucket + "/k at " + server.endpoint() +
                      ": GET answered 403 SignatureDoesNotMatch") != std::string::npos)
            named = true;
    }
    CHECK(named);
}

} // namespace skyvol::test
