// The S3 protocol without a server (XML replies, errors, dates, bucket names), and the S3 store
// against s3rver beyond the conformance suite: bucket operations, URIs, odd replies.

#include "support/temp_dir.hpp"
#include "support/test_servers.hpp"

#include <skyvol/store/detail/s3_protocol.hpp>
#include <skyvol/store/s3_store.hpp>

#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <unistd.h>

namespace skyvol::test {
namespace s3 = skyvol::detail::s3;

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
    std::string why;
    std::error_code ec;
    auto [bucket, prefix] = s3_store::parse_uri("s3://data-bucket/imagenet/train", why, ec);
    CHECK_FALSE(ec);
    CHECK(bucket == "data-bucket");
    CHECK(prefix == "imagenet/train");
    s3_store::parse_uri("s3://Bad_Bucket/x", why, ec);
    CHECK(ec == errc::invalid_config);
    CHECK(why.find("lower-case") != std::string::npos);
    CHECK_THROWS_WITH(s3_store("x"), Catch::Contains("3 to 63"));
}

/// Sets environment variables for one test and puts the old values back.
class scoped_env {
public:
    void set(const char* name, const char* value) {
        if (!saved_.count(name)) {
            const char* old = std::getenv(name);
            saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
        }
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~scoped_env() {
        for (const auto& [name, value] : saved_)
            if (value)
                ::setenv(name.c_str(), value->c_str(), 1);
            else
                ::unsetenv(name.c_str());
    }

private:
    std::map<std::string, std::optional<std::string>> saved_;
};

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

TEST_CASE("s3 store: bucket operations and odd keys against s3rver", "[s3][servers]") {
    test_server& server = shared_server(server_kind::s3rver);
    s3_options o;
    o.endpoint = server.endpoint();
    o.credentials =
        auth::credentials{test_server::s3_access_key, test_server::s3_secret_key, {}, std::nullopt};
    s3_store store("bucket-ops-" + std::to_string(::getpid()), o);
    store.async_create_bucket(boost::asio::use_future).get();
    CHECK(store.async_head_bucket(boost::asio::use_future).get() == "us-east-1");
    for (const std::string key : {"a b/c+d=e&f", "x/€uro", "percent%2Fsign", "tilde~!*'()"}) {
        INFO(key);
        const std::string data = "content of " + key;
        store.async_put(key, boost::asio::buffer(data), put_options(), boost::asio::use_future)
            .get();
        const object_info info = store.async_head(key, boost::asio::use_future).get();
        CHECK(info.size == data.size());
        std::string back(data.size(), '\0');
        CHECK(store.async_get(key, 0, boost::asio::buffer(back), boost::asio::use_future).get() ==
              data.size());
        CHECK(back == data);
    }
    list_request all;
    const list_page page = store.async_list(all, boost::asio::use_future).get();
    CHECK(page.objects.size() == 4);
    // Not empty: DeleteBucket refuses.
    CHECK_THROWS(store.async_delete_bucket(boost::asio::use_future).get());
    std::vector<std::string> keys;
    for (const auto& o2 : page.objects)
        keys.push_back(o2.key);
    CHECK(store.async_remove_batch(keys, boost::asio::use_future).get().empty());
    store.async_delete_bucket(boost::asio::use_future).get();
    CHECK_THROWS(store.async_head_bucket(boost::asio::use_future).get());
}

} // namespace skyvol::test
