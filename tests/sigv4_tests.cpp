// AWS Signature Version 4: AWS's published examples, a byte-for-byte comparison with botocore's
// signer over many odd requests, and credentials that never show up in text.

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
using auth::credentials;
using auth::signable_request;
using auth::signing_scope;
using clock_type = std::chrono::system_clock;

clock_type::time_point utc(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
    using namespace std::chrono;
    return sys_days{year{y} / month{m} / day{d}} + hours{hh} + minutes{mm} + seconds{ss};
}

const std::string empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The credentials of AWS's S3 SigV4 examples.
credentials aws_example_credentials() {
    return {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", {}, {}};
}

std::string header(const signable_request& request, std::string_view name) {
    std::string found;
    int count = 0;
    for (const auto& [n, v] : request.headers)
        if (auth::detail::iequals(n, name)) {
            found = v;
            ++count;
        }
    if (count > 1) throw std::logic_error("header " + std::string(name) + " appears twice");
    return found;
}

std::string signature_of(const std::string& authorization) {
    const std::size_t at = authorization.find("Signature=");
    return at == std::string::npos ? std::string() : authorization.substr(at + 10);
}

// --- JSON, just enough to talk to the botocore helper ---------------------------------------

std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
            out += escaped;
        } else {
            out += c; // UTF-8 passes through
        }
    }
    return out + "\"";
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | cp >> 6);
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | cp >> 12);
        out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | cp >> 18);
        out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
        out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

/// Parses a JSON array of strings; throws std::runtime_error on anything else.
std::vector<std::string> parse_string_list(std::string_view text) {
    std::size_t i = 0;
    auto fail = [&](const char* what) {
        throw std::runtime_error(std::string("botocore helper output: ") + what + " at " +
                                 std::to_string(i));
    };
    auto skip_space = [&] {
        while (i < text.size() &&
               (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
            ++i;
    };
    auto hex4 = [&]() -> std::uint32_t {
        if (i + 4 > text.size()) fail("short \\u escape");
        std::uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = text[i++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= static_cast<std::uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= static_cast<std::uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= static_cast<std::uint32_t>(c - 'A' + 10);
            else
                fail("bad \\u escape");
        }
        return v;
    };
    std::vector<std::string> out;
    skip_space();
    if (i >= text.size() || text[i++] != '[') fail("expected '['");
    skip_space();
    if (i < text.size() && text[i] == ']') return out;
    for (;;) {
        skip_space();
        if (i >= text.size() || text[i++] != '"') fail("expected a string");
        std::string value;
        for (;;) {
            if (i >= text.size()) fail("unterminated string");
            const char c = text[i++];
            if (c == '"') break;
            if (c != '\\') {
                value += c;
                continue;
            }
            if (i >= text.size()) fail("unterminated escape");
            switch (const char e = text[i++]) {
            case '"':
            case '\\':
            case '/':
                value += e;
                break;
            case 'b':
                value += '\b';
                break;
            case 'f':
                value += '\f';
                break;
            case 'n':
                value += '\n';
                break;
            case 'r':
                value += '\r';
                break;
            case 't':
                value += '\t';
                break;
            case 'u': {
                std::uint32_t cp = hex4();
                if (cp >= 0xD800 && cp < 0xDC00 && text.substr(i, 2) == "\\u") {
                    i += 2;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4() - 0xDC00);
                }
                append_utf8(value, cp);
                break;
            }
            default:
                fail("unknown escape");
            }
        }
        out.push_back(std::move(value));
        skip_space();
        if (i >= text.size()) fail("unterminated array");
        if (text[i] == ']') break;
        if (text[i++] != ',') fail("expected ','");
    }
    return out;
}

// --- running the botocore helper --------------------------------------------------------------

std::filesystem::path tests_dir() {
#ifdef SKYVOL_TESTS_DIR
    return SKYVOL_TESTS_DIR;
#else
    return std::filesystem::path(__FILE__).parent_path();
#endif
}

std::string shell_quote(const std::string& text) {
    std::string out = "'";
    for (const char c : text)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

/// Feeds `items` (a JSON array's elements) to tests/support/botocore_sign.py; returns its list.
std::vector<std::string> run_botocore(const std::vector<std::string>& items) {
    const char* tmp = std::getenv("TMPDIR");
    const std::filesystem::path base =
        std::filesystem::path(tmp ? tmp : "/tmp") /
        ("skyvol-botocore-" + std::to_string(::getpid()) + "-" +
         std::to_string(clock_type::now().time_since_epoch().count()));
    const std::filesystem::path input = base.string() + ".json", errors = base.string() + ".err";
    {
        std::ofstream out(input, std::ios::binary);
        out << "[";
        for (std::size_t k = 0; k < items.size(); ++k)
            out << (k ? ",\n" : "\n") << items[k];
        out << "]\n";
    }
    const char* python = std::getenv("SKYVOL_PYTHON");
    const std::string command = shell_quote(python ? python : "python3") + " " +
                                shell_quote((tests_dir() / "support/botocore_sign.py").string()) +
                                " < " + shell_quote(input.string()) + " 2> " +
                                shell_quote(errors.string());
    std::string output;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) throw std::runtime_error("cannot run " + command);
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
        output.append(buffer, n);
    const int status = ::pclose(pipe);
    const std::string stderr_text = read_file(errors);
    std::filesystem::remove(input);
    std::filesystem::remove(errors);
    INFO("command: " << command);
    INFO("stderr: " << stderr_text);
    REQUIRE(status == 0);
    return parse_string_list(output);
}

// --- random requests --------------------------------------------------------------------------

/// Deterministic across standard libraries: only mt19937_64's raw output is used.
struct rng {
    std::mt19937_64 gen;
    explicit rng(std::uint64_t seed)
        : gen(seed) {}
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(gen() % n); }
    bool chance(std::size_t percent) { return below(100) < percent; }
    template <class T, std::size_t N>
    const T& pick(const T (&items)[N]) {
        return items[below(N)];
    }
    const char* one_of(std::initializer_list<const char*> items) {
        return items.begin()[below(items.size())];
    }
    std::string chars(std::string_view alphabet, std::size_t n) {
        std::string out;
        for (std::size_t k = 0; k < n; ++k)
            out += alphabet[below(alphabet.size())];
        return out;
    }
};

constexpr std::string_view base64_chars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string random_key(rng& r) {
    static const char* const pieces[] = {"photos",
                                         "2024",
                                         "a b",
                                         "  lead",
                                         "trail  ",
                                         "caf\xC3\xA9",
                                         "\xE6\x97\xA5\xE6\x9C\xAC",
                                         "\xF0\x9F\x98\x80",
                                         "+",
                                         "=",
                                         "&",
                                         "%",
                                         "%20",
                                         "~",
                                         "/",
                                         "//",
                                         "./",
                                         "../",
                                         "$",
                                         "@",
                                         ":",
                                         ",",
                                         ";",
                                         "?",
                                         "#",
                                         "[x]",
                                         "(1)",
                                         "!",
                                         "*",
                                         "'",
                                         "\"",
                                         "<>",
                                         "^",
                                         "`",
                                         "{}",
                                         "|",
                                         "\\",
                                         "a.b",
                                         "-_",
                                         "x=y&z",
                                         "100%",
                                         "a+b=c",
                                         "~user",
                                         "\x7F",
                                         "tab\there"};
    std::string key;
    if (r.chance(10)) {
        // Long keys: S3 allows 1024 bytes.
        while (key.size() < 900)
            key += std::string(r.pick(pieces)) + "/";
        return key;
    }
    const std::size_t n = 1 + r.below(8);
    for (std::size_t k = 0; k < n; ++k) {
        if (k && r.chance(40)) key += '/';
        key += r.pick(pieces);
    }
    return key;
}

std::string random_time(rng& r) {
    // 2000-01-01 to 2099-12-31; a few right at a day boundary.
    std::int64_t seconds = 946684800 + static_cast<std::int64_t>(r.below(3155760000ull));
    if (r.chance(10)) seconds -= seconds % 86400 + (r.chance(50) ? 1 : 0);
    return std::to_string(seconds);
}

clock_type::time_point time_from(const std::string& seconds) {
    return clock_type::time_point(std::chrono::seconds(std::stoll(seconds)));
}

credentials random_credentials(rng& r) {
    credentials c;
    c.access_key_id =
        (r.chance(50) ? "AKIA" : "ASIA") + r.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);
    c.secret_access_key = r.chars(base64_chars, 40);
    if (r.chance(50))
        c.session_token = "IQoJb3JpZ2luX2Vj" + r.chars(base64_chars, 200 + r.below(300)) + "==";
    return c;
}

const char* const regions[] = {"us-east-1",    "us-west-2",      "eu-west-1",
                               "eu-central-1", "ap-southeast-2", "sa-east-1",
                               "cn-north-1",   "us-gov-west-1",  "auto"};

/// Where a request goes: origin, host header value, and the path prefix for the bucket.
struct endpoint {
    std::string origin, host, bucket_path;
};

endpoint random_endpoint(rng& r, const std::string& region) {
    const std::string bucket = r.one_of({"examplebucket", "my.dotted.bucket", "b-1", "logs2024"});
    switch (r.below(5)) {
    case 0:
        return {"https://" + bucket + ".s3." + region + ".amazonaws.com",
                bucket + ".s3." + region + ".amazonaws.com", ""};
    case 1:
        return {"https://s3." + region + ".amazonaws.com", "s3." + region + ".amazonaws.com",
                "/" + bucket};
    case 2:
        return {"http://localhost:9000", "localhost:9000", "/" + bucket};
    case 3:
        return {"http://127.0.0.1:9000", "127.0.0.1:9000", "/" + bucket};
    default:
        return {"https://minio.example.internal:9443", "minio.example.internal:9443", "/" + bucket};
    }
}

std::string enc(std::string_view text) {
    return auth::uri_encode(text, true);
}

/// One of the query strings the S3 store sends, already encoded; `bucket_level` says whether
/// it addresses the bucket rather than an object.
std::string random_query(rng& r, bool& bucket_level, std::string& method) {
    std::vector<std::string> params;
    bucket_level = false;
    switch (r.below(12)) {
    case 0:
    case 1: {
        bucket_level = true;
        method = "GET";
        params = {"list-type=2", "prefix=" + enc(random_key(r)), "delimiter=%2F"};
        if (r.chance(50))
            params.push_back("continuation-token=" + enc(r.chars(base64_chars, 60) + "="));
        if (r.chance(40)) params.push_back("max-keys=" + std::to_string(1 + r.below(1000)));
        if (r.chance(30)) params.push_back("start-after=" + enc(random_key(r)));
        if (r.chance(30)) params.push_back("encoding-type=url");
        if (r.chance(20)) params.push_back("fetch-owner");
        break;
    }
    case 2:
        method = "PUT";
        params = {"partNumber=" + std::to_string(1 + r.below(10000)),
                  "uploadId=" + enc(r.chars(base64_chars, 40) + "--~.")};
        break;
    case 3:
        method = "POST";
        params = {"uploads"};
        break;
    case 4:
        bucket_level = true;
        method = "GET";
        params = {"uploads", "prefix=" + enc(random_key(r))};
        if (r.chance(50)) params.push_back("key-marker=" + enc(random_key(r)));
        break;
    case 5:
        bucket_level = true;
        method = "POST";
        params = {"delete"};
        break;
    case 6:
        method = r.one_of({"POST", "DELETE", "GET"});
        params = {"uploadId=" + enc(r.chars(base64_chars, 30))};
        if (method == "GET") params.push_back("max-parts=1000&part-number-marker=3");
        break;
    case 7:
        method = r.one_of({"GET", "HEAD", "DELETE"});
        params = {"versionId=" + enc(r.chars(base64_chars, 32))};
        break;
    case 8:
        bucket_level = r.chance(50);
        method = "GET";
        params = {r.one_of({"tagging", "acl", "location", "versioning", "lifecycle="})};
        break;
    case 9:
        method = "GET";
        params = {"response-content-disposition=" + enc("attachment; filename=\"a b.txt\""),
                  "response-content-type=" + enc("text/plain; charset=utf-8"), "x-id=GetObject"};
        break;
    default:
        method = r.one_of({"GET", "PUT", "HEAD", "DELETE"});
        break;
    }
    // The store's order is not the canonical one.
    for (std::size_t k = params.size(); k > 1; --k)
        std::swap(params[k - 1], params[r.below(k)]);
    std::string query;
    for (const auto& p : params)
        query += (query.empty() ? "" : "&") + p;
    return query;
}

std::vector<std::pair<std::string, std::string>> random_headers(rng& r, const std::string& method,
                                                                const std::string& host,
                                                                const std::string& bucket_path) {
    static const char* const meta_names[] = {"author", "Odd-Name",  "x",
                                             "a.b",    "camelCase", "with_underscore"};
    static const char* const meta_values[] = {"  leading",
                                              "trailing  ",
                                              "a    b     c",
                                              "\ttab\tseparated\t",
                                              "caf\xC3\xA9 cr\xC3\xA8me",
                                              "",
                                              "   ",
                                              "comma,separated,values",
                                              "quote\"inside",
                                              "semi;colon",
                                              "=+&%",
                                              " \xE6\x97\xA5\xE6\x9C\xAC  \xE8\xAA\x9E ",
                                              "plain"};
    std::vector<std::pair<std::string, std::string>> headers;
    headers.emplace_back(r.one_of({"Host", "host", "HOST"}), host);
    if (method == "GET" && r.chance(40))
        headers.emplace_back(r.one_of({"Range", "range"}),
                             "bytes=" + std::to_string(r.below(1000)) + "-" +
                                 std::to_string(1000 + r.below(100000)));
    if ((method == "PUT" || method == "POST") && r.chance(60))
        headers.emplace_back(r.one_of({"Content-Type", "content-type"}),
                             r.one_of({"text/plain; charset=utf-8", "application/octet-stream",
                                       "application/x-www-form-urlencoded; charset=utf-8",
                                       "multipart/mixed;  boundary=\"x  y\""}));
    if (method == "PUT" || method == "POST") {
        if (r.chance(50)) headers.emplace_back("Content-Length", std::to_string(r.below(1 << 30)));
        if (r.chance(30)) headers.emplace_back("Content-MD5", r.chars(base64_chars, 22) + "==");
        if (r.chance(30)) headers.emplace_back("x-amz-storage-class", "REDUCED_REDUNDANCY");
        if (r.chance(30)) headers.emplace_back("X-Amz-Server-Side-Encryption", "AES256");
        if (r.chance(20))
            headers.emplace_back("x-amz-copy-source",
                                 bucket_path + "/" + auth::uri_encode(random_key(r), false));
        if (r.chance(20)) headers.emplace_back("x-amz-metadata-directive", "REPLACE");
        if (r.chance(20)) headers.emplace_back("Expect", "100-continue");
        const std::size_t meta = r.below(4);
        for (std::size_t k = 0; k < meta; ++k)
            headers.emplace_back(std::string(r.one_of({"x-amz-meta-", "X-Amz-Meta-"})) +
                                     r.pick(meta_names),
                                 r.pick(meta_values));
    }
    if (r.chance(20))
        headers.emplace_back("If-Match", "\"" + r.chars("0123456789abcdef", 32) + "\"");
    if (r.chance(15)) headers.emplace_back("If-None-Match", "*");
    if (r.chance(20)) headers.emplace_back("Cache-Control", "max-age=3600,   public");
    if (r.chance(30)) headers.emplace_back("User-Agent", "skyvol/0.1  (linux)");
    if (r.chance(15)) {
        // Repeated names: values are joined with ',' in their order.
        headers.emplace_back("x-amz-meta-dup", r.pick(meta_values));
        headers.emplace_back("X-Amz-Meta-Dup", r.pick(meta_values));
    }
    if (r.chance(10)) headers.emplace_back("x-amz-acl", "bucket-owner-full-control");
    for (std::size_t k = headers.size(); k > 1; --k)
        std::swap(headers[k - 1], headers[r.below(k)]);
    return headers;
}

std::string amz_timestamp(const std::string& seconds) {
    return auth::detail::format_amz_time(time_from(seconds)).timestamp;
}

std::string credentials_json(const credentials& c) {
    return "\"access_key\": " + json_string(c.access_key_id) +
           ", \"secret_key\": " + json_string(c.secret_access_key) +
           ", \"token\": " + json_string(c.session_token);
}

template <class F>
std::string error_text(F&& f) {
    try {
        f();
    } catch (const skyvol::error& e) {
        CHECK(e.code() == errc::invalid_argument);
        return e.what();
    }
    FAIL("no skyvol::error thrown");
    return {};
}

} // namespace

TEST_CASE("sigv4: sha256 and hmac match published test vectors", "[auth]") {
    namespace d = auth::detail;
    CHECK(auth::sha256_hex("") == empty_sha256);
    CHECK(auth::sha256_hex("abc") ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    d::sha256_hasher hasher;
    const std::string chunk(1000, 'a');
    for (int k = 0; k < 1000; ++k)
        hasher.update(chunk);
    CHECK(hasher.finish_hex() ==
          "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // finish() starts afresh; splitting the input anywhere gives the same digest.
    const std::string text = "Welcome to Amazon S3.";
    for (std::size_t split = 0; split <= text.size(); ++split) {
        hasher.update(std::string_view(text).substr(0, split));
        hasher.update(std::string_view(text).substr(split));
        CHECK(hasher.finish_hex() ==
              "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    }
    // RFC 4231 test case 2.
    CHECK(d::to_hex(d::hmac_sha256("Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(d::to_hex(d::hmac_sha256("", "")) ==
          "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("sigv4: uri encoding and canonical query strings", "[auth]") {
    namespace d = auth::detail;
    CHECK(auth::uri_encode("a b/c~d+e%f=g&h", false) == "a%20b/c~d%2Be%25f%3Dg%26h");
    CHECK(auth::uri_encode("a b/c~d+e%f=g&h", true) == "a%20b%2Fc~d%2Be%25f%3Dg%26h");
    CHECK(auth::uri_encode("AZaz09-_.~", true) == "AZaz09-_.~");
    CHECK(auth::uri_encode("caf\xC3\xA9 \xF0\x9F\x98\x80", false) == "caf%C3%A9%20%F0%9F%98%80");
    CHECK(auth::uri_encode(std::string_view("\0\x7F", 2), false) == "%00%7F");
    CHECK(auth::uri_encode("", true).empty());

    CHECK(d::canonical_query_string(std::string_view("")).empty());
    CHECK(d::canonical_query_string(std::string_view("uploads")) == "uploads=");
    CHECK(d::canonical_query_string(std::string_view("lifecycle=")) == "lifecycle=");
    CHECK(d::canonical_query_string(std::string_view("prefix=a/b&list-type=2&delimiter=/")) ==
          "delimiter=%2F&list-type=2&prefix=a%2Fb");
    CHECK(d::canonical_query_string(std::string_view("b=2&a=3&a=1&&")) == "a=1&a=3&b=2");
    CHECK(d::canonical_query_string(std::string_view("%7e=%7E&x=%2f%2F")) == "x=%2F%2F&~=~");
    CHECK(d::canonical_query_string(std::string_view("k=%zz%4&p=a+b")) == "k=%25zz%254&p=a%2Bb");
    CHECK(d::canonical_query_string(std::string_view("a=b=c")) == "a=b%3Dc");
    // Upper-case letters sort before lower-case ones: byte order, not case-insensitive.
    CHECK(d::canonical_query_string(std::string_view("b=1&X-Amz-Date=2&a=3")) ==
          "X-Amz-Date=2&a=3&b=1");
}

TEST_CASE("sigv4: header values are trimmed and repeated names joined", "[auth]") {
    namespace d = auth::detail;
    CHECK(d::trim_header_value("  a   b \t c  ") == "a b c");
    CHECK(d::trim_header_value("   ").empty());
    CHECK(d::trim_header_value("\"a  b\"") == "\"a b\"");
    const auto h = d::make_canonical_headers({{"Host", "h"},
                                              {"X-Amz-Meta-A", " 2 "},
                                              {"user-agent", "not signed"},
                                              {"x-amz-meta-a", "1"},
                                              {"Connection", "close"},
                                              {"Content-Type", "text/plain"}});
    CHECK(h.text == "content-type:text/plain\nhost:h\nx-amz-meta-a:2,1\n");
    CHECK(h.signed_names == "content-type;host;x-amz-meta-a");
}

TEST_CASE("sigv4: the signing key example from the AWS docs", "[auth]") {
    const auto key = auth::detail::signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                               "20120215", "us-east-1", "iam");
    CHECK(auth::detail::to_hex(key) ==
          "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST_CASE("sigv4: S3 GET object example from the AWS docs", "[auth]") {
    signable_request request{"GET",
                             "/test.txt",
                             "",
                             {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}},
                             empty_sha256};
    auth::sign(request, aws_example_credentials(), {"us-east-1", "s3"}, utc(2013, 5, 24));
    CHECK(header(request, "x-amz-date") == "20130524T000000Z");
    CHECK(header(request, "x-amz-content-sha256") == empty_sha256);
    CHECK(header(request, "x-amz-security-token").empty());
    const std::string canonical = auth::detail::canonical_request(request);
    CHECK(canonical == "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                       "x-amz-content-sha256:" +
                           empty_sha256 +
                           "\nx-amz-date:20130524T000000Z\n\n"
                           "host;range;x-amz-content-sha256;x-amz-date\n" +
                           empty_sha256);
    CHECK(auth::detail::string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request",
                                       canonical) ==
          "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
          "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    CHECK(header(request, "authorization") ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
          "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST_CASE("sigv4: S3 PUT object example from the AWS docs", "[auth]") {
    const std::string body = "Welcome to Amazon S3.";
    signable_request request{"PUT",
                             auth::uri_encode("/test$file.text", false),
                             "",
                             {{"Host", "examplebucket.s3.amazonaws.com"},
                              {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                              {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                             auth::sha256_hex(body)};
    CHECK(request.path == "/test%24file.text");
    CHECK(request.payload_hash ==
          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    auth::sign(request, aws_example_credentials(), {}, utc(2013, 5, 24));
    CHECK(auth::detail::canonical_request(request) ==
          "PUT\n/test%24file.text\n\n"
          "date:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
          "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
          "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
          "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
          "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    CHECK(header(request, "authorization") ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
          "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
          "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_CASE("sigv4: S3 GET bucket lifecycle example from the AWS docs", "[auth]") {
    signable_request request{
        "GET", "/", "lifecycle", {{"Host", "examplebucket.s3.amazonaws.com"}}, empty_sha256};
    auth::sign(request, aws_example_credentials(), {}, utc(2013, 5, 24));
    CHECK(auth::detail::canonical_request(request) ==
          "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:" +
              empty_sha256 +
              "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" +
              empty_sha256);
    CHECK(signature_of(header(request, "authorization")) ==
          "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST_CASE("sigv4: S3 GET bucket list objects example from the AWS docs", "[auth]") {
    signable_request request{"GET",
                             "/",
                             "max-keys=2&prefix=J",
                             {{"Host", "examplebucket.s3.amazonaws.com"}},
                             empty_sha256};
    auth::sign(request, aws_example_credentials(), {}, utc(2013, 5, 24));
    CHECK(auth::detail::canonical_request(request).starts_with("GET\n/\nmax-keys=2&prefix=J\n"));
    CHECK(header(request, "authorization") ==
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
          "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
          "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST_CASE("sigv4: S3 presigned URL example from the AWS docs", "[auth]") {
    const std::string url = auth::presign_url("GET", "https://examplebucket.s3.amazonaws.com",
                                              "/test.txt", "", aws_example_credentials(), {},
                                              utc(2013, 5, 24), std::chrono::seconds(86400));
    CHECK(url == "https://examplebucket.s3.amazonaws.com/test.txt"
                 "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                 "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                 "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                 "&X-Amz-Signature="
                 "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    CHECK(auth::detail::presigned_canonical_request(
              "GET", "examplebucket.s3.amazonaws.com", "/test.txt",
              {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
               {"X-Amz-Credential",
                "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"},
               {"X-Amz-Date", "20130524T000000Z"},
               {"X-Amz-Expires", "86400"},
               {"X-Amz-SignedHeaders", "host"}}) ==
          "GET\n/test.txt\n"
          "X-Amz-Algorithm=AWS4-HMAC-SHA256"
          "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
          "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
          "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD");
    // The default port is not part of the host header, so the signature does not change.
    const std::string with_port = auth::presign_url(
        "GET", "https://ExampleBucket.s3.amazonaws.com:443/", "/test.txt", "",
        aws_example_credentials(), {}, utc(2013, 5, 24), std::chrono::seconds(86400));
    CHECK(signature_of(with_port) == signature_of(url));
}

TEST_CASE("sigv4: signing again replaces the signing headers", "[auth]") {
    credentials creds = aws_example_credentials();
    creds.session_token = "token-1";
    signable_request request{
        "GET", "/b/k", "", {{"host", "h"}}, std::string(auth::unsigned_payload)};
    auth::sign(request, creds, {"eu-west-1", "s3"}, utc(2020, 1, 1));
    creds.session_token = "token-2";
    auth::sign(request, creds, {"eu-west-1", "s3"}, utc(2021, 2, 3, 4, 5, 6));
    signable_request fresh{"GET", "/b/k", "", {{"host", "h"}}, std::string(auth::unsigned_payload)};
    auth::sign(fresh, creds, {"eu-west-1", "s3"}, utc(2021, 2, 3, 4, 5, 6));
    CHECK(request.headers == fresh.headers);
    CHECK(header(request, "x-amz-date") == "20210203T040506Z");
    CHECK(header(request, "x-amz-security-token") == "token-2");
    CHECK(header(request, "x-amz-content-sha256") == "UNSIGNED-PAYLOAD");
    CHECK(header(request, "authorization")
              .find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,") !=
          std::string::npos);
}

TEST_CASE("sigv4: anonymous credentials leave requests unsigned", "[auth]") {
    signable_request request{"GET", "/b/k", "x=1", {{"Host", "h"}}, empty_sha256};
    const auto before = request.headers;
    auth::sign(request, credentials{}, {}, utc(2020, 1, 1));
    CHECK(request.headers == before);
    CHECK(auth::presign_url("GET", "http://localhost:9000", "/b/k", "x=1", credentials{}, {},
                            utc(2020, 1, 1), 60s) == "http://localhost:9000/b/k?x=1");
}

TEST_CASE("sigv4: signatures match botocore for random S3 requests", "[auth]") {
    rng r(20240517);
    struct sample {
        signable_request request;
        credentials creds;
        std::string region, seconds, url;
    };
    std::vector<sample> samples;
    std::vector<std::string> items;
    for (int n = 0; n < 150; ++n) {
        sample s;
        s.region = r.pick(regions);
        s.creds = random_credentials(r);
        s.seconds = random_time(r);
        const endpoint ep = random_endpoint(r, s.region);
        bool bucket_level = false;
        s.request.query = random_query(r, bucket_level, s.request.method);
        s.request.path = bucket_level
                             ? (ep.bucket_path.empty() ? "/" : ep.bucket_path)
                             : ep.bucket_path + "/" + auth::uri_encode(random_key(r), false);
        s.request.headers = random_headers(r, s.request.method, ep.host, ep.bucket_path);
        switch (r.below(3)) {
        case 0:
            s.request.payload_hash = auth::unsigned_payload;
            break;
        case 1:
            s.request.payload_hash = empty_sha256;
            break;
        default:
            s.request.payload_hash = auth::sha256_hex(r.chars(base64_chars, r.below(5000)));
        }
        s.url = ep.origin + s.request.path + (s.request.query.empty() ? "" : "?" + s.request.query);

        std::string headers_json;
        for (const auto& [name, value] : s.request.headers)
            headers_json += (headers_json.empty() ? "[" : ", [") + json_string(name) + ", " +
                            json_string(value) + "]";
        items.push_back("{\"kind\": \"header\", \"method\": " + json_string(s.request.method) +
                        ", \"url\": " + json_string(s.url) + ", \"headers\": [" + headers_json +
                        "], \"payload_hash\": " + json_string(s.request.payload_hash) +
                        ", \"time\": " + json_string(amz_timestamp(s.seconds)) + ", " +
                        credentials_json(s.creds) + ", \"region\": " + json_string(s.region) + "}");
        samples.push_back(std::move(s));
    }
    const std::vector<std::string> expected = run_botocore(items);
    REQUIRE(expected.size() == samples.size());
    std::size_t with_token = 0, unsigned_payloads = 0, with_query = 0;
    for (std::size_t k = 0; k < samples.size(); ++k) {
        sample& s = samples[k];
        auth::sign(s.request, s.creds, {s.region, "s3"}, time_from(s.seconds));
        INFO("request " << k << ": " << s.request.method << " " << s.url);
        INFO("canonical request:\n" << auth::detail::canonical_request(s.request));
        CHECK(header(s.request, "authorization") == expected[k]);
        with_token += !s.creds.session_token.empty();
        unsigned_payloads += s.request.payload_hash == auth::unsigned_payload;
        with_query += !s.request.query.empty();
    }
    // The mix the generator is meant to give.
    CHECK(with_token >= 30);
    CHECK(unsigned_payloads >= 30);
    CHECK(with_query >= 60);
}

TEST_CASE("sigv4: presigned URLs match botocore", "[auth]") {
    rng r(77);
    struct sample {
        std::string method, origin, path, query, region, seconds;
        credentials creds;
        long expires;
    };
    const char* const origins[] = {"https://examplebucket.s3.amazonaws.com",
                                   "https://examplebucket.s3.amazonaws.com:443",
                                   "https://s3.eu-west-1.amazonaws.com",
                                   "http://localhost:9000",
                                   "http://127.0.0.1:9000",
                                   "http://MinIO.Example.Internal:80",
                                   "https://minio.example.internal:9443",
                                   "http://[::1]:9000"};
    const long expiries[] = {1, 60, 900, 3600, 86400, 604800};
    std::vector<sample> samples;
    std::vector<std::string> items;
    for (int n = 0; n < 30; ++n) {
        sample s;
        s.method = r.one_of({"GET", "PUT"});
        s.origin = r.pick(origins);
        s.path =
            (s.origin.find("//s3.") != std::string::npos || s.origin.find(":9") != std::string::npos
                 ? std::string("/examplebucket/")
                 : std::string("/")) +
            auth::uri_encode(random_key(r), false);
        switch (r.below(5)) {
        case 0:
            s.query = "versionId=" + enc(r.chars(base64_chars, 32));
            break;
        case 1:
            s.query = "partNumber=" + std::to_string(1 + r.below(10000)) +
                      "&uploadId=" + enc(r.chars(base64_chars, 40));
            break;
        case 2:
            s.query = "response-content-disposition=" + enc("attachment; filename=\"a b.txt\"") +
                      "&response-content-type=" + enc("text/plain");
            break;
        case 3:
            s.query = "x-id=GetObject";
            break;
        default:
            break;
        }
        s.region = r.pick(regions);
        s.seconds = random_time(r);
        s.creds = random_credentials(r);
        s.expires = r.pick(expiries);
        items.push_back("{\"kind\": \"presign\", \"method\": " + json_string(s.method) +
                        ", \"url\": " +
                        json_string(s.origin + s.path + (s.query.empty() ? "" : "?" + s.query)) +
                        ", \"expires\": " + std::to_string(s.expires) +
                        ", \"time\": " + json_string(amz_timestamp(s.seconds)) + ", " +
                        credentials_json(s.creds) + ", \"region\": " + json_string(s.region) + "}");
        samples.push_back(std::move(s));
    }
    const std::vector<std::string> expected = run_botocore(items);
    REQUIRE(expected.size() == samples.size());
    for (std::size_t k = 0; k < samples.size(); ++k) {
        const sample& s = samples[k];
        INFO("presigned URL " << k);
        CHECK(auth::presign_url(s.method, s.origin, s.path, s.query, s.creds, {s.region, "s3"},
                                time_from(s.seconds),
                                std::chrono::seconds(s.expires)) == expected[k]);
    }
}

TEST_CASE("sigv4: credentials never appear in logs or errors", "[auth]") {
    const std::string secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const std::string token = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENvalue+/=";
    const credentials creds{"AKIAIOSFODNN7EXAMPLE", secret, token, utc(2030, 1, 1)};

    const std::string shown = auth::redacted(creds);
    CHECK(shown.find("AKIA") != std::string::npos);
    CHECK(shown.find("AKIAI") == std::string::npos);
    CHECK(shown.find(secret) == std::string::npos);
    CHECK(shown.find(token) == std::string::npos);
    CHECK(shown.find("session token") != std::string::npos);
    CHECK(auth::redacted(credentials{}) == "anonymous");
    CHECK(auth::redacted(credentials{"AK", secret, {}, {}}).find(secret) == std::string::npos);

    // The signed request carries the token (it must) but never the secret.
    signable_request signed_request{"GET", "/b/k", "", {{"Host", "h"}}, empty_sha256};
    auth::sign(signed_request, creds, {}, utc(2024, 1, 1));
    for (const auto& [name, value] : signed_request.headers)
        CHECK(value.find(secret) == std::string::npos);
    CHECK(auth::presign_url("GET", "https://h", "/b/k", "", creds, {}, utc(2024, 1, 1), 60s)
              .find(secret) == std::string::npos);

    auto check_clean = [&](const std::string& text, const std::string& bad_token) {
        INFO(text);
        CHECK(!text.empty());
        CHECK(text.find(secret) == std::string::npos);
        CHECK(text.find(bad_token) == std::string::npos);
    };
    auto sign_with = [&](signable_request request, credentials c, signing_scope scope = {}) {
        auth::sign(request, c, scope, utc(2024, 1, 1));
    };
    const signable_request good{"GET", "/b/k", "", {{"Host", "h"}}, empty_sha256};

    signable_request no_host = good;
    no_host.headers.clear();
    check_clean(error_text([&] { sign_with(no_host, creds); }), token);
    const std::string bad_token = token + "\r\nX-Injected: 1";
    check_clean(error_text([&] {
                    sign_with(good, {creds.access_key_id, secret, bad_token, {}});
                }),
                bad_token.substr(0, token.size()));
    check_clean(error_text([&] { sign_with(good, creds, {"eu/west", "s3"}); }), token);
    check_clean(error_text([&] { sign_with(good, {"AKIA\nX", secret, token, {}}); }), token);
    signable_request bad_value = good;
    bad_value.headers.emplace_back("x-amz-meta-a", "line\nbreak");
    check_clean(error_text([&] { sign_with(bad_value, creds); }), token);
    signable_request raw_path = good;
    raw_path.path = "/b/a b";
    check_clean(error_text([&] { sign_with(raw_path, creds); }), token);
    signable_request no_hash = good;
    no_hash.payload_hash.clear();
    check_clean(error_text([&] { sign_with(no_hash, creds); }), token);
    check_clean(error_text([&] {
                    (void)auth::presign_url("GET", "https://h", "/k", "", creds, {},
                                            utc(2024, 1, 1), 0s);
                }),
                token);
    check_clean(error_text([&] {
                    (void)auth::presign_url("GET", "https://h", "/k", "", creds, {},
                                            utc(2024, 1, 1), 604801s);
                }),
                token);
    check_clean(error_text([&] {
                    (void)auth::presign_url("GET", "ftp://h", "/k", "", creds, {}, utc(2024, 1, 1),
                                            60s);
                }),
                token);
    check_clean(error_text([&] {
                    (void)auth::presign_url("GET", "https://user@h", "/k", "", creds, {},
                                            utc(2024, 1, 1), 60s);
                }),
                token);
}

} // namespace skyvol::test
