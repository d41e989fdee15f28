#include "test_servers.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <spawn.h>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace skyvol::test {
namespace {

using namespace std::chrono_literals;

std::string servers_dir() {
    if (const char* env = std::getenv("SKYVOL_TEST_SERVERS_DIR")) return env;
    return SKYVOL_TEST_SERVERS_DIR;
}

/// A port nobody listens on right now. Another process may take it before the server binds;
/// start_once() then sees the server exit and tries another.
std::uint16_t free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("test_server: cannot find a free loopback port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// True once something on `port` answers a plain HTTP request with an HTTP status line.
bool answers_http(std::uint16_t port) {
    try {
        raw_http_reply reply = raw_http_exchange(port, "GET", "/");
        return reply.status >= 100;
    } catch (const std::exception&) {
        return false;
    }
}

} // namespace

test_server::test_server(server_kind kind)
    : kind_(kind)
    , data_("skyvol-server") {
    if (kind_ == server_kind::radosgw) {
        start_radosgw();
        return;
    }
    for (int attempt = 0;; ++attempt) {
        try {
            start_once();
            return;
        } catch (const std::exception&) {
            stop();
            if (attempt == 2) throw;
        }
    }
}

test_server::~test_server() {
    stop();
}

std::string test_server::endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
}

void test_server::start_once() {
    port_ = free_loopback_port();
    const std::string bin = servers_dir() + "/node_modules/.bin/";
    const std::string data = data_.path().string();
    const std::string port = std::to_string(port_);
    std::vector<std::string> args;
    if (kind_ == server_kind::s3rver)
        args = {bin + "s3rver", "--directory", data, "--address",
                "127.0.0.1",    "--port",      port, "--silent"};
    else
        args = {bin + "azurite-blob",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                port,
                "--location",
                data,
                "--silent",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose"};
    if (::access(args[0].c_str(), X_OK) != 0)
        throw std::runtime_error("test_server: " + args[0] +
                                 " is missing; run scripts/install-deps first");

    const std::string log = data + "/server.log";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETPGROUP); // own group: stop() reaches node's children
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    // s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node's OpenSSL 3 only
    // has in its legacy provider: without it every truncated listing is an InternalError.
    std::vector<std::string> env_text;
    for (char** e = environ; *e; ++e)
        if (std::string_view(*e).substr(0, 13) != "NODE_OPTIONS=") env_text.emplace_back(*e);
    if (kind_ == server_kind::s3rver)
        env_text.emplace_back("NODE_OPTIONS=--openssl-legacy-provider");
    std::vector<char*> envp;
    for (auto& e : env_text)
        envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        pid_ = -1;
        throw std::runtime_error("test_server: cannot start " + args[0] + ": " + std::strerror(rc));
    }

    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!running())
            throw std::runtime_error("test_server: " + args[0] + " exited early:\n" + log_tail());
        if (answers_http(port_)) return;
        std::this_thread::sleep_for(100ms);
    }
    throw std::runtime_error("test_server: " + args[0] + " did not answer within 60 s:\n" +
                             log_tail());
}

/// The CTest run's cluster (tests/CMakeLists.txt, fixture `radosgw`) where it serves; else one of
/// this process's own, in its data folder.
void test_server::start_radosgw() {
    const std::filesystem::path shared =
        std::filesystem::path(SKYVOL_TEST_RADOSGW_DIR) / "endpoint";
    // The CTest run's, if it answers (a killed run may have left its file behind).
    if (std::filesystem::exists(shared) && attach_radosgw(shared)) return;
    const std::string command = "'" + radosgw_script() + "' start '" +
                                (data_.path() / "rgw").string() + "' >'" +
                                (data_.path() / "server.log").string() + "' 2>&1";
    own_cluster_ = true;
    if (std::system(command.c_str()) != 0)
        throw std::runtime_error("test_server: " + radosgw_script() +
                                 " could not start radosgw:\n" + log_tail());
    if (!attach_radosgw(data_.path() / "rgw/endpoint")) {
        stop();
        throw std::runtime_error("test_server: the radosgw this process started does not answer");
    }
}

bool test_server::attach_radosgw(const std::filesystem::path& endpoint_file) {
    std::ifstream in(endpoint_file);
    std::string endpoint;
    std::getline(in, endpoint);
    const std::string_view loopback = "http://127.0.0.1:";
    if (!endpoint.starts_with(loopback)) return false;
    port_ = static_cast<std::uint16_t>(std::atoi(endpoint.c_str() + loopback.size()));
    return port_ != 0 && answers_http(port_);
}

std::string test_server::radosgw_script() {
    return std::string(SKYVOL_TESTS_DIR) + "/servers/radosgw";
}

bool test_server::running() {
    if (kind_ == server_kind::radosgw) return answers_http(port_);
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

void test_server::stop() {
    if (kind_ == server_kind::radosgw) {
        if (!own_cluster_) return; // the CTest run's: its fixture stops it
        own_cluster_ = false;
        const std::string command = "'" + radosgw_script() + "' stop '" +
                                    (data_.path() / "rgw").string() + "' >/dev/null 2>&1";
        [[maybe_unused]] const int rc = std::system(command.c_str());
        return;
    }
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGTERM);
    for (int i = 0; i < 50 && running(); ++i)
        std::this_thread::sleep_for(100ms);
    if (pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
}

std::string test_server::log_tail(std::size_t max_bytes) const {
    std::ifstream in(data_.path() / "server.log", std::ios::binary);
    std::ostringstream all;
    all << in.rdbuf();
    std::string text = all.str();
    return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

test_server& shared_server(server_kind kind) {
    static std::unique_ptr<test_server> servers[3];
    auto& slot = servers[static_cast<int>(kind)];
    if (!slot) slot = std::make_unique<test_server>(kind);
    return *slot;
}

raw_http_reply raw_http_exchange(std::uint16_t port, const std::string& method,
                                 const std::string& target,
                                 const std::map<std::string, std::string>& headers,
                                 const std::string& body) {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.expires_after(10s);
    stream.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [name, value] : headers)
        request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    http::write(stream, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    raw_http_reply reply;
    reply.status = response.result_int();
    for (const auto& field : response) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        reply.headers[name] = std::string(field.value());
    }
    reply.body = std::move(response.body());
    boost::system::error_code ignored;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    return reply;
}

std::string azure_shared_key(const std::string& account, const std::string& base64_key,
                             const std::string& method, const std::string& path_and_query,
                             const std::map<std::string, std::string>& headers) {
    auto header = [&](const char* name) {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    };
    std::string length = header("content-length");
    if (length == "0") length.clear();
    std::string to_sign = method + "\n" + header("content-encoding") + "\n" +
                          header("content-language") + "\n" + length + "\n" +
                          header("content-md5") + "\n" + header("content-type") + "\n" +
                          header("date") + "\n" + header("if-modified-since") + "\n" +
                          header("if-match") + "\n" + header("if-none-match") + "\n" +
                          header("if-unmodified-since") + "\n" + header("range") + "\n";
    for (const auto& [name, value] : headers) // std::map: already sorted; names are lower-case
        if (name.rfind("x-ms-", 0) == 0) to_sign += name + ":" + value + "\n";
    const auto q = path_and_query.find('?');
    to_sign += "/" + account + path_and_query.substr(0, q);
    if (q != std::string::npos) {
        std::map<std::string, std::string> params;
        std::istringstream query(path_and_query.substr(q + 1));
        for (std::string pair; std::getline(query, pair, '&');) {
            const auto eq = pair.find('=');
            params[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
        }
        for (const auto& [name, value] : params)
            to_sign += "\n" + name + ":" + value;
    }

    std::vector<unsigned char> key(base64_key.size());
    const int key_len =
        EVP_DecodeBlock(key.data(), reinterpret_cast<const unsigned char*>(base64_key.data()),
                        static_cast<int>(base64_key.size()));
    const std::size_t padding = static_cast<std::size_t>(std::count(
        base64_key.end() - std::min<std::size_t>(2, base64_key.size()), base64_key.end(), '='));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key.data(), key_len - static_cast<int>(padding),
         reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size(), mac, &mac_len);
    std::string signature(4 * ((mac_len + 2) / 3) + 1, '\0');
    const int sig_len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(signature.data()), mac,
                                        static_cast<int>(mac_len));
    signature.resize(static_cast<std::size_t>(sig_len));
    return "SharedKey " + account + ":" + signature;
}

} // namespace skyvol::test
