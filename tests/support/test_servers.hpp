#ifndef SKYVOL_TESTS_SUPPORT_TEST_SERVERS_HPP
#define SKYVOL_TESTS_SUPPORT_TEST_SERVERS_HPP

// Real object-store servers for tests: s3rver (S3) and azurite (Azure Blob), installed from npm
// into tests/servers/node_modules by scripts/install-deps, and Ceph's radosgw (S3, a one-node
// cluster from Debian's packages, tests/servers/radosgw). A `test_server` starts s3rver or
// azurite on a free loopback port in its own process group, waits until it answers HTTP, and
// stops it (SIGTERM, then SIGKILL) when destroyed; radosgw's script starts and stops its daemons.
// `shared_server(kind)` gives one per test process, except that radosgw (about 12 s to start) is
// one per CTest run: the `radosgw` fixture starts it and every test process uses that one; a
// test binary run by hand starts its own.

#include "temp_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <sys/types.h>

namespace skyvol::test {

enum class server_kind { s3rver, azurite_blob, radosgw };

class test_server {
public:
    explicit test_server(server_kind kind);
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;
    ~test_server();

    server_kind kind() const noexcept { return kind_; }
    std::uint16_t port() const noexcept { return port_; }
    std::string host() const { return "127.0.0.1"; }
    /// "http://127.0.0.1:PORT"
    std::string endpoint() const;
    /// True while the server process is alive.
    bool running();
    /// The last lines the server printed, for failure messages.
    std::string log_tail(std::size_t max_bytes = 4000) const;
    /// Stops the server now; it is not restarted.
    void stop();

    // Azurite's well-known development account.
    static constexpr const char* azure_account = "devstoreaccount1";
    static constexpr const char* azure_key =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
        "K1SZFPTOtr/KBHBeksoGMGw==";
    // s3rver's default credentials (it checks the key id, not the signature).
    static constexpr const char* s3_access_key = "S3RVER";
    static constexpr const char* s3_secret_key = "S3RVER";
    // The user tests/servers/radosgw creates (radosgw verifies every signature).
    static constexpr const char* rgw_access_key = "SKYVOLRGW";
    static constexpr const char* rgw_secret_key = "skyvol-rgw-secret-key-for-tests-only";

    /// The S3 keys this server takes: s3rver's defaults, or the radosgw user's.
    const char* access_key() const noexcept {
        return kind_ == server_kind::radosgw ? rgw_access_key : s3_access_key;
    }
    const char* secret_key() const noexcept {
        return kind_ == server_kind::radosgw ? rgw_secret_key : s3_secret_key;
    }

private:
    void start_once();
    void start_radosgw();
    /// Uses the radosgw whose endpoint `file` names; false if it names none or it does not answer.
    bool attach_radosgw(const std::filesystem::path& file);
    static std::string radosgw_script();

    server_kind kind_;
    temp_dir data_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
    bool own_cluster_ = false; ///< radosgw: started by this process, stopped by it
};

/// The parts of the S3 API a test server does not implement, for suites that run against several
/// stores: such a suite skips exactly these checks for that server, and says so.
struct server_gaps {
    bool conditional_puts = false;     ///< ignores If-None-Match and If-Match on PUT
    bool multipart_validation = false; ///< accepts small or reordered parts and wrong part ETags
    bool multipart_etags = false;      ///< a completed upload's ETag lacks the "-N" part count
    bool byte_order_listing = false;   ///< lists keys in its own order, not by UTF-8 bytes
    bool prefix_paging = false;        ///< max-keys does not bound common prefixes
    bool multipart_abort = false;      ///< AbortMultipartUpload answers 405 MethodNotAllowed
    bool part_order = false;           ///< completes an upload whose parts are listed out of order
    bool any_continuation_token = false; ///< takes any text as a token (a key to list after)
    bool aborted_completion = false; ///< completing an aborted upload answers 500, not NoSuchUpload
};

/// One server of each kind per test process, started on first use.
test_server& shared_server(server_kind kind);

/// A minimal blocking HTTP/1.1 exchange over loopback, for smoke tests that must not depend on
/// the stores under test.
struct raw_http_reply {
    unsigned status = 0;
    std::map<std::string, std::string> headers; ///< names lower-cased
    std::string body;
};
raw_http_reply raw_http_exchange(std::uint16_t port, const std::string& method,
                                 const std::string& target,
                                 const std::map<std::string, std::string>& headers = {},
                                 const std::string& body = {});

/// Shared Key authorization for Azure Blob (used by the azurite smoke test).
std::string azure_shared_key(const std::string& account, const std::string& base64_key,
                             const std::string& method, const std::string& path_and_query,
                             const std::map<std::string, std::string>& headers);

} // namespace skyvol::test

#endif
