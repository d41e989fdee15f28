// The credential chain's network sources (STS web identity, container credentials, IMDSv2)
// against loopback stand-ins, the provider's caching and refresh, and the chain's order.

#include "support/files.hpp"
#include "support/http_test_server.hpp"
#include "support/scoped_env.hpp"
#include "support/temp_dir.hpp"
#include "support/test_servers.hpp"

#include <skyvol/auth/credential_chain.hpp>
#include <skyvol/auth/credential_provider.hpp>
#include <skyvol/auth/credentials.hpp>
#include <skyvol/auth/detail/credential_replies.hpp>
#include <skyvol/auth/detail/crypto.hpp>
#include <skyvol/auth/sigv4.hpp>
#include <skyvol/error.hpp>
#include <skyvol/store/s3_store.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace skyvol::test {
namespace {

using namespace std::chrono_literals;
using auth::credential_provider;
using auth::credentials;
using auth::resolved_credentials;

/// An environment where no credential source is set: no keys, no profile files (HOME is an
/// empty folder), no web identity, no container, IMDS off. Tests turn single sources on.
struct clean_chain {
    temp_dir dir{"skyvol-chain"};
    scoped_env env;

    clean_chain() {
        for (const char* name : {"AWS_ACCESS_KEY_ID",
                                 "AWS_SECRET_ACCESS_KEY",
                                 "AWS_SESSION_TOKEN",
                                 "AWS_PROFILE",
                                 "AWS_SHARED_CREDENTIALS_FILE",
                                 "AWS_CONFIG_FILE",
                                 "AWS_WEB_IDENTITY_TOKEN_FILE",
                                 "AWS_ROLE_ARN",
                                 "AWS_ROLE_SESSION_NAME",
                                 "AWS_ENDPOINT_URL_STS",
                                 "AWS_REGION",
                                 "AWS_DEFAULT_REGION",
                                 "AWS_STS_REGIONAL_ENDPOINTS",
                                 "AWS_ENDPOINT_URL",
                                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                 "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                 "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                 "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                 "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"})
            env.set(name, nullptr);
        env.set("HOME", dir.path().string());
        env.set("AWS_EC2_METADATA_DISABLED", "true");
    }

    /// Writes `text` to `name` in the test's folder; gives the path.
    std::string file(const std::string& name, const std::string& text) const {
        const std::string path = (dir.path() / name).string();
        std::ofstream(path) << text;
        return path;
    }
};

/// A provider of the chain on its own threads, shut down before they are joined.
struct chain_provider {
    boost::asio::thread_pool pool{2};
    credential_provider provider;

    explicit chain_provider(auth::credential_provider_options o = {})
        : provider(pool.get_executor(), std::move(o)) {}
    chain_provider(const chain_provider&) = delete;
    chain_provider& operator=(const chain_provider&) = delete;
    ~chain_provider() {
        provider.shutdown();
        pool.join();
    }

    /// The next credentials, blocking; `why` and `ec` say what failed.
    resolved_credentials get(std::string& why, std::error_code& ec) {
        return provider.get(why, ec);
    }
};

std::string in_seconds(std::chrono::seconds from_now) {
    return auth::detail::format_iso8601(std::chrono::system_clock::now() + from_now);
}

/// The JSON the container endpoint (and, with `imds`, IMDS) answers.
std::string json_credentials(const std::string& id, const std::string& secret,
                             const std::string& token, std::chrono::seconds ttl,
                             bool imds = false) {
    std::string text = "{";
    if (imds)
        text += R"("Code":"Success","LastUpdated":")" + in_seconds(0s) + R"(","Type":"AWS-HMAC",)";
    return text + R"("AccessKeyId":")" + id + R"(","SecretAccessKey":")" + secret +
           R"(","Token":")" + token + R"(","Expiration":")" + in_seconds(ttl) + R"("})";
}

/// STS's AssumeRoleWithWebIdentity reply.
std::string sts_credentials(const std::string& id, const std::string& secret,
                            const std::string& token, std::chrono::seconds ttl) {
    return R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>)" +
           token + R"(</SessionToken>
      <SecretAccessKey>)" +
           secret + R"(</SecretAccessKey>
      <Expiration>)" +
           in_seconds(ttl) + R"(</Expiration>
      <AccessKeyId>)" +
           id + R"(</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>)";
}

http_reply reply_with(unsigned status, std::string body) {
    http_reply r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

/// A loopback port nobody listens on.
std::uint16_t dead_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor(
        io, boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
    return acceptor.local_endpoint().port();
}

std::string origin_of(const http_test_server& server) {
    return server.url().origin();
}

/// Checks that `text` names `source` and holds none of `secrets`.
void check_error_text(const std::string& text, const std::string& source,
                      std::initializer_list<std::string> secrets) {
    INFO(text);
    CHECK(text.find(source) != std::string::npos);
    for (const std::string& secret : secrets)
        CHECK(text.find(secret) == std::string::npos);
}

const std::string role_arn = "arn:aws:iam::123456789012:role/skyvol-test";
const std::string web_token = "eyJWEB-IDENTITY-TOKEN.secret-part.sig";

/// An STS stand-in: the first reply expires in `first_ttl`, later ones in an hour; key ids
/// count up (ASIAWEB1, ASIAWEB2...).
http_handler sts_handler(std::atomic<int>& calls, std::chrono::seconds first_ttl) {
    return [&calls, first_ttl](const http_exchange&) {
        const int n = ++calls;
        return reply_with(200, sts_credentials("ASIAWEB" + std::to_string(n),
                                               "web-secret-" + std::to_string(n),
                                               "web-session-" + std::to_string(n),
                                               n == 1 ? first_ttl : std::chrono::seconds(3600)));
    };
}

} // namespace

TEST_CASE("credential replies: STS XML and container JSON parse or say what is wrong", "[auth]") {
    auth::detail::sts_reply sts = auth::detail::parse_sts_reply(
        sts_credentials("ASIA1", "s1", "t1", 3600s), "AssumeRoleWithWebIdentity");
    REQUIRE(sts.keys);
    CHECK(sts.keys->access_key_id == "ASIA1");
    CHECK(sts.keys->session_token == "t1");
    REQUIRE(sts.keys->expiration);
    CHECK(*sts.keys->expiration > std::chrono::system_clock::now() + 3500s);

    sts = auth::detail::parse_sts_reply(
        "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
        "<Message>Token expired</Message></Error><RequestId>r-9</RequestId></ErrorResponse>",
        "AssumeRoleWithWebIdentity");
    CHECK_FALSE(sts.keys);
    CHECK(sts.error_code == "InvalidIdentityToken");
    CHECK(sts.error_message == "Token expired");
    CHECK(sts.request_id == "r-9");
    CHECK(auth::detail::parse_sts_reply("<<<", "AssumeRoleWithWebIdentity").problem ==
          "reply is not XML");

    std::string problem;
    auto keys =
        auth::detail::parse_json_credentials(json_credentials("AK", "S", "T", 60s), problem);
    REQUIRE(keys);
    CHECK(keys->secret_access_key == "S");
    CHECK(keys->expiration);
    for (const auto& [body, expected] :
         {std::pair<std::string, std::string>(R"({"AccessKeyId":"AK","SecretAccessKey":"S)",
                                              "reply is not JSON"),
          {R"(["AK"])", "reply is not a JSON object"},
          {R"({"SecretAccessKey":"S"})", "reply lacks AccessKeyId"},
          {R"({"AccessKeyId":"AK","SecretAccessKey":7})", "reply lacks SecretAccessKey"},
          {R"({"AccessKeyId":"AK","SecretAccessKey":"S","Expiration":"soon"})",
           "reply's Expiration is not an ISO 8601 time"},
          {R"({"Code":"AssumeRoleUnauthorizedAccess","Message":"no"})",
           "reply says Code AssumeRoleUnauthorizedAccess: no"}}) {
        INFO(body);
        problem.clear();
        CHECK_FALSE(auth::detail::parse_json_credentials(body, problem));
        CHECK(problem == expected);
    }

    using namespace std::chrono;
    const auto base = sys_days{year{2024} / 5 / 1} + 12h + 34min + 56s;
    CHECK(auth::detail::parse_iso8601("2024-05-01T12:34:56Z") == base);
    CHECK(auth::detail::parse_iso8601("2024-05-01T12:34:56.789Z") == base);
    CHECK(auth::detail::parse_iso8601("2024-05-01T14:34:56+02:00") == base);
    CHECK(auth::detail::parse_iso8601("2024-05-01T10:34:56-0200") == base);
    CHECK(auth::detail::format_iso8601(base) == "2024-05-01T12:34:56Z");
    for (const char* bad : {"", "2024-05-01", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z",
                            "2024-05-01T12:34:56Zjunk", "yesterday"})
        CHECK_FALSE(auth::detail::parse_iso8601(bad));
}

TEST_CASE("credential provider: fixed credentials are handed out and never refreshed", "[auth]") {
    boost::asio::thread_pool pool(1);
    {
        // Even a past expiry does not make fixed keys refresh: there is nowhere to go.
        credential_provider provider(
            pool.get_executor(),
            credentials{"AKIDFIXED", "fixed-secret", {}, std::chrono::system_clock::now() - 1h});
        for (int i = 0; i < 3; ++i) {
            const credentials got = provider.async_get(boost::asio::use_future).get();
            CHECK(got.access_key_id == "AKIDFIXED");
        }
        CHECK(provider.fetches() == 0);
        CHECK(provider.source() == "explicit credentials");
        credential_provider anonymous(pool.get_executor(), credentials(), "anonymous");
        CHECK(anonymous.async_get(boost::asio::use_future).get().anonymous());
    }
    pool.join();
}

namespace {

/// A source whose first credentials expire in a minute, inside the 5-minute window; key ids
/// count up (ASIAFETCH1, ASIAFETCH2...).
boost::asio::awaitable<resolved_credentials> counted_fetch(std::atomic<int>* calls) {
    const int n = ++*calls;
    std::this_thread::sleep_for(100ms); // give concurrent gets time to pile up
    resolved_credentials out;
    out.keys.access_key_id = "ASIAFETCH" + std::to_string(n);
    out.keys.secret_access_key = "s";
    out.keys.session_token = "t";
    out.keys.expiration =
        std::chrono::system_clock::now() + (n == 1 ? std::chrono::seconds(60) : 3600s);
    out.source = "test source";
    co_return out;
}

} // namespace

TEST_CASE("credential provider: concurrent gets share one fetch and refresh before expiry",
          "[auth]") {
    std::atomic<int> calls{0};
    boost::asio::thread_pool pool(4);
    {
        // A plain lambda calling a coroutine: coroutine lambdas must not capture.
        auth::credential_fetch fetch = [&calls](std::shared_ptr<http::client>) {
            return counted_fetch(&calls);
        };
        credential_provider provider(pool.get_executor(), fetch);
        std::vector<std::future<credentials>> gets;
        for (int i = 0; i < 8; ++i)
            gets.push_back(provider.async_get(boost::asio::use_future));
        for (auto& f : gets)
            CHECK(f.get().access_key_id == "ASIAFETCH1");
        CHECK(calls == 1);
        // Within 5 minutes of expiry: the next get fetches again, once.
        CHECK(provider.async_get(boost::asio::use_future).get().access_key_id == "ASIAFETCH2");
        CHECK(provider.async_get(boost::asio::use_future).get().access_key_id == "ASIAFETCH2");
        CHECK(calls == 2);
        CHECK(provider.fetches() == 2);
        CHECK(provider.source() == "test source");
    }
    pool.join();
}

TEST_CASE("web identity: STS gets the role and token and its keys come back", "[auth]") {
    clean_chain chain;
    std::atomic<int> calls{0};
    http_test_server sts(sts_handler(calls, 3600s));
    chain.env.set("AWS_WEB_IDENTITY_TOKEN_FILE", chain.file("token", web_token + "\n"));
    chain.env.set("AWS_ROLE_ARN", role_arn);
    chain.env.set("AWS_ROLE_SESSION_NAME", "skyvol-test-session");
    chain.env.set("AWS_ENDPOINT_URL_STS", origin_of(sts));

    chain_provider p;
    std::string why;
    std::error_code ec;
    const resolved_credentials got = p.get(why, ec);
    REQUIRE_FALSE(ec);
    CHECK(got.keys.access_key_id == "ASIAWEB1");
    CHECK(got.keys.secret_access_key == "web-secret-1");
    CHECK(got.keys.session_token == "web-session-1");
    REQUIRE(got.keys.expiration);
    CHECK(got.source == "web identity (AWS_ROLE_ARN=" + role_arn + ")");

    const auto received = sts.received();
    REQUIRE(received.size() == 1);
    const http_exchange& in = received[0];
    CHECK(in.method == "POST");
    CHECK(in.header("content-type").find("application/x-www-form-urlencoded") == 0);
    CHECK(in.header("authorization").empty()); // AssumeRoleWithWebIdentity is unsigned
    for (const std::string& part :
         {std::string("Action=AssumeRoleWithWebIdentity"), std::string("Version=2011-06-15"),
          "RoleArn=" + auth::uri_encode(role_arn, true),
          std::string("RoleSessionName=skyvol-test-session"),
          "WebIdentityToken=" + auth::uri_encode(web_token, true)}) {
        INFO(part);
        CHECK(in.body.find(part) != std::string::npos);
    }
    // A far expiry: later gets use the cache.
    CHECK(p.provider.async_get(boost::asio::use_future).get().access_key_id == "ASIAWEB1");
    CHECK(sts.requests() == 1);
}

TEST_CASE("web identity: credentials near expiry are fetched again", "[auth]") {
    clean_chain chain;
    std::atomic<int> calls{0};
    http_test_server sts(sts_handler(calls, 60s));
    chain.env.set("AWS_WEB_IDENTITY_TOKEN_FILE", chain.file("token", web_token));
    chain.env.set("AWS_ROLE_ARN", role_arn);
    chain.env.set("AWS_ENDPOINT_URL_STS", origin_of(sts));

    chain_provider p;
    CHECK(p.provider.async_get(boost::asio::use_future).get().access_key_id == "ASIAWEB1");
    std::vector<std::future<credentials>> gets;
    for (int i = 0; i < 6; ++i)
        gets.push_back(p.provider.async_get(boost::asio::use_future));
    for (auto& f : gets)
        CHECK(f.get().access_key_id == "ASIAWEB2");
    CHECK(p.provider.async_get(boost::asio::use_future).get().access_key_id == "ASIAWEB2");
    CHECK(sts.requests() == 2);
    // The default session name, and the token read again from its file at the refresh.
    const auto received = sts.received();
    CHECK(received[1].body.find("RoleSessionName=skyvol-") != std::string::npos);
    CHECK(received[1].body.find(auth::uri_encode(web_token, true)) != std::string::npos);
}

TEST_CASE("web identity: STS errors and bad settings name the source without the token", "[auth]") {
    clean_chain chain;
    const std::string label = "web identity (AWS_ROLE_ARN=" + role_arn + ")";
    std::atomic<int> mode{0};
    http_test_server sts([&mode](const http_exchange&) {
        switch (mode.load()) {
        case 0:
            return reply_with(403, "<ErrorResponse><Error><Type>Sender</Type>"
                                   "<Code>AccessDenied</Code><Message>Not authorized for " +
                                       web_token +
                                       "</Message></Error><RequestId>req-403</RequestId>"
                                       "</ErrorResponse>");
        case 1:
            return reply_with(200, "<AssumeRoleWithWebIdentityResponse><Credentials>");
        default:
            return reply_with(200, sts_credentials("ASIAOLD", "old-secret", "old-token", -60s));
        }
    });
    chain.env.set("AWS_WEB_IDENTITY_TOKEN_FILE", chain.file("token", web_token));
    chain.env.set("AWS_ROLE_ARN", role_arn);
    chain.env.set("AWS_ENDPOINT_URL_STS", origin_of(sts));
    std::string why;
    std::error_code ec;

    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, label + ": STS answered 403 AccessDenied: Not authorized", {web_token});
    CHECK(why.find("req-403") != std::string::npos);

    mode = 1;
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, label + ": STS answered 200: reply is not XML", {web_token});

    mode = 2;
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, label + ": gave credentials that expired at",
                     {web_token, "old-secret", "old-token"});

    chain.env.set("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:" + std::to_string(dead_port()));
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, label + ": ", {web_token});

    chain.env.set("AWS_ENDPOINT_URL_STS", origin_of(sts));
    chain.env.set("AWS_WEB_IDENTITY_TOKEN_FILE", (chain.dir.path() / "missing").string());
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, label + ": cannot read the token file", {web_token});

    chain.env.set("AWS_ROLE_ARN", nullptr);
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::invalid_config);
    check_error_text(why, "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must be set together",
                     {web_token});

    chain.env.set("AWS_ROLE_ARN", role_arn);
    chain.env.set("AWS_ENDPOINT_URL_STS", "sts.example.com");
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::invalid_config);
    check_error_text(why, "AWS_ENDPOINT_URL_STS", {web_token});
}

TEST_CASE("container credentials: the token goes in Authorization and keys come back", "[auth]") {
    clean_chain chain;
    std::atomic<int> calls{0};
    http_test_server endpoint([&calls](const http_exchange& in) {
        if (in.target != "/v2/credentials/abc") return reply_with(404, "no such path");
        const int n = ++calls;
        return reply_with(200, json_credentials("ASIACONT" + std::to_string(n), "cont-secret",
                                                "cont-token", n == 1 ? 60s : 3600s));
    });
    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI",
                  origin_of(endpoint) + "/v2/credentials/abc");
    chain.env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "auth-token-from-env");

    chain_provider p;
    std::string why;
    std::error_code ec;
    resolved_credentials got = p.get(why, ec);
    REQUIRE_FALSE(ec);
    CHECK(got.keys.access_key_id == "ASIACONT1");
    CHECK(got.keys.session_token == "cont-token");
    CHECK(got.source == "container credentials (" + origin_of(endpoint) + "/v2/credentials/abc)");
    REQUIRE(endpoint.requests() == 1);
    CHECK(endpoint.received()[0].method == "GET");
    CHECK(endpoint.received()[0].header("authorization") == "auth-token-from-env");

    // Expiring in a minute: the next get fetches again; then the hour-long ones stay.
    got = p.get(why, ec);
    REQUIRE_FALSE(ec);
    CHECK(got.keys.access_key_id == "ASIACONT2");
    CHECK(p.get(why, ec).keys.access_key_id == "ASIACONT2");
    CHECK(endpoint.requests() == 2);

    // The token file wins over the variable, and is read at every fetch.
    chain.env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                  chain.file("auth-token", "auth-token-from-file\n"));
    chain_provider q;
    REQUIRE_FALSE(q.get(why, ec).keys.access_key_id.empty());
    CHECK(endpoint.received().back().header("authorization") == "auth-token-from-file");
}

TEST_CASE("container credentials: bad replies and settings name the endpoint without secrets",
          "[auth]") {
    clean_chain chain;
    std::atomic<int> mode{0};
    const std::string auth_token = "container-auth-token-secret";
    http_test_server endpoint([&mode, auth_token](const http_exchange&) {
        switch (mode.load()) {
        case 0:
            return reply_with(500, "internal trouble with token " + auth_token);
        case 1:
            return reply_with(200, R"({"AccessKeyId":"AKID","SecretAccessKey":"half-secret)");
        case 2:
            return reply_with(200, R"({"AccessKeyId":"AKID","Token":"tok"})");
        default:
            return reply_with(200, json_credentials("ASIAOLD", "old-secret", "old-token", -5s));
        }
    });
    const std::string url = origin_of(endpoint) + "/creds";
    const std::string label = "container credentials (" + url + ")";
    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    chain.env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", auth_token);
    std::string why;
    std::error_code ec;

    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, label + ": answered 500: internal trouble", {auth_token});
    CHECK(endpoint.requests() == 2); // 500 is retried once

    mode = 1;
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, label + ": reply is not JSON", {auth_token, "half-secret"});

    mode = 2;
    auth::resolve_credentials(why, ec);
    check_error_text(why, label + ": reply lacks SecretAccessKey", {auth_token, "tok"});

    mode = 3;
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, label + ": gave credentials that expired at",
                     {auth_token, "old-secret", "old-token"});

    const std::string dead = "http://127.0.0.1:" + std::to_string(dead_port()) + "/creds";
    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", dead);
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, "container credentials (" + dead + "): ", {auth_token});

    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.169.254/creds");
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::invalid_config);
    check_error_text(why, "must be https or point at a loopback address", {auth_token});

    chain.env.set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "creds");
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::invalid_config);
    check_error_text(why, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'",
                     {auth_token});
}

TEST_CASE("container credentials: a failed refresh keeps still-valid keys and retries later",
          "[auth]") {
    clean_chain chain;
    std::atomic<int> calls{0};
    http_test_server endpoint([&calls](const http_exchange&) {
        if (++calls == 1) return reply_with(200, json_credentials("ASIAFIRST", "s", "t", 60s));
        return reply_with(404, "gone");
    });
    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", origin_of(endpoint) + "/creds");
    std::vector<std::string> logged;
    std::mutex log_mutex;
    auth::credential_provider_options o;
    o.log = [&](log_level, std::string_view message) {
        std::lock_guard lock(log_mutex);
        logged.emplace_back(message);
    };
    chain_provider p(o);
    CHECK(p.provider.async_get(boost::asio::use_future).get().access_key_id == "ASIAFIRST");
    // The refresh fails, but the keys have a minute left: they are used, and the failure told.
    CHECK(p.provider.async_get(boost::asio::use_future).get().access_key_id == "ASIAFIRST");
    CHECK(p.provider.last_error().find("answered 404") != std::string::npos);
    // Within retry_interval no new fetch is tried.
    CHECK(p.provider.async_get(boost::asio::use_future).get().access_key_id == "ASIAFIRST");
    CHECK(endpoint.requests() == 2);
    std::lock_guard lock(log_mutex);
    REQUIRE(logged.size() == 2);
    CHECK(logged[0].find("credentials from container credentials") == 0);
    CHECK(logged[1].find("the current ones stay in use") != std::string::npos);
    for (const std::string& line : logged)
        CHECK(line.find("\"s\"") == std::string::npos);
}

namespace {

/// An IMDSv2 stand-in: a session token from PUT, the role's name, its credentials (the first
/// expiring in `first_ttl`). With `role` empty the instance has no role.
http_handler imds_handler(std::atomic<int>& calls, std::string role,
                          std::chrono::seconds first_ttl) {
    return [&calls, role, first_ttl](const http_exchange& in) {
        const std::string base = "/latest/meta-data/iam/security-credentials/";
        if (in.method == "PUT" && in.target == "/latest/api/token")
            return in.header("x-aws-ec2-metadata-token-ttl-seconds").empty()
                       ? reply_with(400, "")
                       : reply_with(200, "imds-session-token-secret");
        if (in.header("x-aws-ec2-metadata-token") != "imds-session-token-secret")
            return reply_with(401, "");
        if (in.target == base) return role.empty() ? reply_with(404, "") : reply_with(200, role);
        if (!role.empty() && in.target == base + role) {
            const int n = ++calls;
            return reply_with(200,
                              json_credentials("ASIAIMDS" + std::to_string(n), "imds-secret",
                                               "imds-token", n == 1 ? first_ttl : 3600s, true));
        }
        return reply_with(404, "");
    };
}

} // namespace

TEST_CASE("imds: a session token then the role then its keys", "[auth]") {
    clean_chain chain;
    std::atomic<int> calls{0};
    http_test_server imds(imds_handler(calls, "skyvol-role", 60s));
    chain.env.set("AWS_EC2_METADATA_DISABLED", nullptr);
    chain.env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", origin_of(imds));

    chain_provider p;
    std::string why;
    std::error_code ec;
    resolved_credentials got = p.get(why, ec);
    REQUIRE_FALSE(ec);
    CHECK(got.keys.access_key_id == "ASIAIMDS1");
    CHECK(got.keys.secret_access_key == "imds-secret");
    CHECK(got.source == "IMDSv2 at " + origin_of(imds));
    const auto received = imds.received();
    REQUIRE(received.size() == 3);
    CHECK(received[0].method == "PUT");
    CHECK(received[0].target == "/latest/api/token");
    CHECK(received[0].header("x-aws-ec2-metadata-token-ttl-seconds") == "21600");
    CHECK(received[1].method == "GET");
    CHECK(received[1].target == "/latest/meta-data/iam/security-credentials/");
    CHECK(received[1].header("x-aws-ec2-metadata-token") == "imds-session-token-secret");
    CHECK(received[2].target == "/latest/meta-data/iam/security-credentials/skyvol-role");
    CHECK(received[2].header("x-aws-ec2-metadata-token") == "imds-session-token-secret");

    // A minute left: refreshed (three more requests); an hour left: cached.
    CHECK(p.get(why, ec).keys.access_key_id == "ASIAIMDS2");
    CHECK(p.get(why, ec).keys.access_key_id == "ASIAIMDS2");
    CHECK(imds.requests() == 6);
}

TEST_CASE("imds: no role and no service fail fast naming IMDSv2", "[auth]") {
    clean_chain chain;
    std::atomic<int> calls{0};
    http_test_server imds(imds_handler(calls, "", 3600s));
    chain.env.set("AWS_EC2_METADATA_DISABLED", nullptr);
    chain.env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", origin_of(imds));
    std::string why;
    std::error_code ec;

    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, "IMDSv2 at " + origin_of(imds) + ": no instance role",
                     {"imds-session-token-secret"});
    CHECK(why.find("no credentials: set AWS_ACCESS_KEY_ID") == 0);

    const std::string dead = "http://127.0.0.1:" + std::to_string(dead_port());
    chain.env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", dead);
    const auto start = std::chrono::steady_clock::now();
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    check_error_text(why, "IMDSv2 at " + dead + ": ", {});
    CHECK(std::chrono::steady_clock::now() - start < 5s);

    chain.env.set("AWS_EC2_METADATA_DISABLED", "TRUE");
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    CHECK(why.find("AWS_EC2_METADATA_DISABLED") != std::string::npos);
    CHECK(why.find("IMDSv2 at") == std::string::npos);
}

TEST_CASE("credential chain: environment then profile then web identity then container then "
          "imds",
          "[auth]") {
    clean_chain chain;
    std::atomic<int> sts_calls{0}, imds_calls{0};
    http_test_server sts(sts_handler(sts_calls, 3600s));
    http_test_server container([](const http_exchange&) {
        return reply_with(200, json_credentials("ASIACONT", "cont-secret", "cont-token", 3600s));
    });
    http_test_server imds(imds_handler(imds_calls, "role", 3600s));
    const std::string credentials_file =
        chain.file("credentials", "[default]\naws_access_key_id = AKIDPROFILE\n"
                                  "aws_secret_access_key = profile-secret\n");
    chain.file("config",
               "[profile wi]\nweb_identity_token_file = " + chain.file("profile-token", web_token) +
                   "\nrole_arn = " + role_arn + "\n[profile chained]\nrole_arn = " + role_arn +
                   "\nsource_profile = default\n");
    chain.env.set("AWS_CONFIG_FILE", (chain.dir.path() / "config").string());
    chain.env.set("AWS_SHARED_CREDENTIALS_FILE", credentials_file);
    chain.env.set("AWS_ACCESS_KEY_ID", "AKIDENV");
    chain.env.set("AWS_SECRET_ACCESS_KEY", "env-secret");
    chain.env.set("AWS_WEB_IDENTITY_TOKEN_FILE", chain.file("token", web_token));
    chain.env.set("AWS_ROLE_ARN", role_arn);
    chain.env.set("AWS_ENDPOINT_URL_STS", origin_of(sts));
    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", origin_of(container) + "/creds");
    chain.env.set("AWS_EC2_METADATA_DISABLED", nullptr);
    chain.env.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", origin_of(imds));

    auto resolve = [] {
        std::string why;
        std::error_code ec;
        resolved_credentials got = auth::resolve_credentials(why, ec);
        INFO(why);
        CHECK_FALSE(ec);
        return got;
    };
    CHECK(resolve().keys.access_key_id == "AKIDENV");
    chain.env.set("AWS_ACCESS_KEY_ID", nullptr);
    chain.env.set("AWS_SECRET_ACCESS_KEY", nullptr);
    CHECK(resolve().keys.access_key_id == "AKIDPROFILE");

    // A profile with web_identity_token_file and role_arn in the config file.
    chain.env.set("AWS_PROFILE", "wi");
    resolved_credentials got = resolve();
    CHECK(got.keys.access_key_id == "ASIAWEB1");
    CHECK(got.source == "web identity (profile wi, role_arn=" + role_arn + ")");
    chain.env.set("AWS_PROFILE", "chained");
    std::string why;
    std::error_code ec;
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::invalid_config);
    CHECK(why.find("source_profile") != std::string::npos);
    chain.env.set("AWS_PROFILE", nullptr);

    chain.env.set("AWS_SHARED_CREDENTIALS_FILE", (chain.dir.path() / "none").string());
    got = resolve();
    CHECK(got.keys.access_key_id == "ASIAWEB2");
    CHECK(got.source == "web identity (AWS_ROLE_ARN=" + role_arn + ")");
    chain.env.set("AWS_WEB_IDENTITY_TOKEN_FILE", nullptr);
    chain.env.set("AWS_ROLE_ARN", nullptr);
    CHECK(resolve().keys.access_key_id == "ASIACONT");
    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", nullptr);
    CHECK(resolve().keys.access_key_id == "ASIAIMDS1");
    chain.env.set("AWS_EC2_METADATA_DISABLED", "true");
    auth::resolve_credentials(why, ec);
    CHECK(ec == errc::access_denied);
    CHECK(why.find("no credentials") == 0);
    CHECK(sts.requests() == 2);
    CHECK(container.requests() == 1);
    CHECK(imds.requests() == 3);
}

TEST_CASE("s3 store: keys from a container credentials stand-in sign puts and heads on s3rver",
          "[auth][s3][servers]") {
    clean_chain chain;
    std::atomic<int> calls{0};
    // The first keys expire within the refresh window, so the store's first request refreshes.
    http_test_server endpoint([&calls](const http_exchange&) {
        const int n = ++calls;
        return reply_with(200,
                          json_credentials(test_server::s3_access_key, test_server::s3_secret_key,
                                           "session-" + std::to_string(n), n == 1 ? 60s : 3600s));
    });
    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", origin_of(endpoint) + "/creds");
    test_server& server = shared_server(server_kind::s3rver);
    s3_options o;
    o.endpoint = server.endpoint();
    s3_store store("creds-e2e-" + std::to_string(::getpid()), o);
    CHECK(endpoint.requests() == 1);
    store.async_create_bucket(boost::asio::use_future).get();
    const std::string data = "signed with container credentials";
    store.async_put("k", boost::asio::buffer(data), put_options(), boost::asio::use_future).get();
    CHECK(store.async_head("k", boost::asio::use_future).get().size == data.size());
    CHECK(endpoint.requests() == 2);
    store.async_remove("k", boost::asio::use_future).get();
    store.async_delete_bucket(boost::asio::use_future).get();

    // No source answers: the store is not made, and the error names the source.
    chain.env.set("AWS_CONTAINER_CREDENTIALS_FULL_URI",
                  "http://127.0.0.1:" + std::to_string(dead_port()) + "/creds");
    CHECK_THROWS_WITH(s3_store("creds-e2e-none", o),
                      Catch::Contains("container credentials (http://127.0.0.1:"));
}

} // namespace skyvol::test
