// Smoke tests of the real servers the store tests run against: each starts through the
// fixture, answers the protocol, keeps what it is given, and stops when asked.

#include "support/test_servers.hpp"

#include <catch2/catch.hpp>

#include <ctime>

namespace skyvol::test {
namespace {

std::string http_date() {
    char buf[64];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

} // namespace

TEST_CASE("servers: s3rver starts, stores an object and stops", "[servers][s3]") {
    test_server server(server_kind::s3rver);
    REQUIRE(server.running());
    const auto port = server.port();

    auto created = raw_http_exchange(port, "PUT", "/skyvol-smoke");
    INFO(created.body << server.log_tail());
    REQUIRE(created.status == 200);
    auto put = raw_http_exchange(port, "PUT", "/skyvol-smoke/dir/hello%20world.txt",
                                 {{"content-type", "text/plain"}}, "hello from skyvol");
    REQUIRE(put.status == 200);
    CHECK(put.headers["etag"] ==
          "\"42e9d3ccc43254729d22e88207dc0504\""); // the quoted MD5 of the body
    auto get = raw_http_exchange(port, "GET", "/skyvol-smoke/dir/hello%20world.txt");
    CHECK(get.status == 200);
    CHECK(get.body == "hello from skyvol");
    auto list = raw_http_exchange(port, "GET", "/skyvol-smoke?list-type=2&prefix=dir%2F");
    CHECK(list.status == 200);
    CHECK(list.body.find("<Key>dir/hello world.txt</Key>") != std::string::npos);
    auto missing = raw_http_exchange(port, "GET", "/skyvol-smoke/nope");
    CHECK(missing.status == 404);
    CHECK(missing.body.find("NoSuchKey") != std::string::npos);

    server.stop();
    CHECK_FALSE(server.running());
    CHECK_THROWS(raw_http_exchange(port, "GET", "/"));
}

TEST_CASE("servers: azurite starts, checks Shared Key, stores a blob and stops",
          "[servers][azure]") {
    test_server server(server_kind::azurite_blob);
    REQUIRE(server.running());
    const auto port = server.port();
    const std::string account = test_server::azure_account;

    auto signed_request = [&](const std::string& method, const std::string& path,
                              std::map<std::string, std::string> headers,
                              const std::string& body = {}) {
        headers["x-ms-date"] = http_date();
        headers["x-ms-version"] = "2021-12-02";
        headers["content-length"] = std::to_string(body.size());
        // Path-style emulator URLs carry the account twice in the signed resource.
        headers["authorization"] = azure_shared_key(account, test_server::azure_key, method,
                                                    "/" + account + path, headers);
        return raw_http_exchange(port, method, "/" + account + path, headers, body);
    };

    // Unsigned requests are refused: azurite really checks signatures.
    auto anonymous = raw_http_exchange(port, "PUT", "/" + account + "/smoke?restype=container",
                                       {{"x-ms-version", "2021-12-02"}});
    CHECK((anonymous.status == 403 || anonymous.status == 401 || anonymous.status == 404));

    auto created = signed_request("PUT", "/smoke?restype=container", {});
    INFO(created.body << server.log_tail());
    REQUIRE(created.status == 201);
    auto put = signed_request("PUT", "/smoke/dir/blob.txt",
                              {{"x-ms-blob-type", "BlockBlob"}, {"content-type", "text/plain"}},
                              "hello azure");
    REQUIRE(put.status == 201);
    auto get = signed_request("GET", "/smoke/dir/blob.txt", {});
    CHECK(get.status == 200);
    CHECK(get.body == "hello azure");
    auto wrong_key =
        raw_http_exchange(port, "GET", "/" + account + "/smoke/dir/blob.txt",
                          {{"x-ms-date", http_date()},
                           {"x-ms-version", "2021-12-02"},
                           {"authorization", "SharedKey " + account +
                                                 ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}});
    CHECK(wrong_key.status == 403);

    server.stop();
    CHECK_FALSE(server.running());
}

TEST_CASE("servers: the shared fixture gives one live server per kind", "[servers]") {
    test_server& first = shared_server(server_kind::s3rver);
    test_server& again = shared_server(server_kind::s3rver);
    CHECK(&first == &again);
    CHECK(first.running());
    CHECK(raw_http_exchange(first.port(), "GET", "/").status == 200);
}

} // namespace skyvol::test
