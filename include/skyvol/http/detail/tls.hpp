#ifndef SKYVOL_HTTP_DETAIL_TLS_HPP
#define SKYVOL_HTTP_DETAIL_TLS_HPP

/// @file
/// The client's TLS settings: one OpenSSL context per client, and per connection SNI plus a
/// host-name check whose failure OpenSSL reports like any other verification error.

#include <skyvol/error.hpp>
#include <skyvol/http/options.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/asio/ssl/verify_mode.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <system_error>

namespace skyvol::http::detail {

/// A boost::system::system_error carrying a skyvol code, as the client throws them.
[[noreturn]] inline void throw_http_error(errc code, const std::string& what) {
    throw boost::system::system_error(boost::system::error_code(std::error_code(code)), what);
}

inline std::string env_or_empty(const char* name) {
    const char* value = std::getenv(name);
    return value ? std::string(value) : std::string();
}

/// The CA file the options or the environment name, or "" for the system's default paths.
inline std::string configured_ca_file(const client_options& o) {
    std::string ca = o.ca_file;
    if (ca.empty()) ca = env_or_empty("AWS_CA_BUNDLE");
    if (ca.empty()) ca = env_or_empty("SSL_CERT_FILE");
    return ca;
}

/// The context every TLS connection of a client shares. Loading the system's CA bundle takes
/// tens of milliseconds, so clients make it when they first need it.
inline std::shared_ptr<boost::asio::ssl::context> make_tls_context(const client_options& o) {
    namespace ssl = boost::asio::ssl;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    if (!o.verify_peer) {
        ctx->set_verify_mode(ssl::verify_none);
        return ctx;
    }
    ctx->set_verify_mode(ssl::verify_peer);
    const std::string ca = configured_ca_file(o);
    boost::system::error_code ec;
    if (!ca.empty()) {
        ctx->load_verify_file(ca, ec);
        if (ec)
            throw_http_error(errc::invalid_config,
                             "cannot load CA certificates from '" + ca + "': " + ec.message());
    } else {
        ctx->set_default_verify_paths(ec);
        if (ec)
            throw_http_error(errc::invalid_config,
                             "cannot load the system's CA certificates: " + ec.message());
    }
    return ctx;
}

/// Whether `host` is an IP literal, which gets no SNI (RFC 6066).
inline bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address(host, ec);
    return !ec;
}

/// Sets SNI and the host-name check on a connection's SSL object.
template <class SslStream>
void prepare_tls(SslStream& stream, const std::string& host, bool verify_peer) {
    if (!is_ip_literal(host))
        SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str()));
    if (!verify_peer) return;
    // host_name_verification rejects a mismatch without saying why; record the reason so the
    // handshake error names it.
    stream.set_verify_callback(
        [check = boost::asio::ssl::host_name_verification(host)](
            bool preverified, boost::asio::ssl::verify_context& ctx) mutable {
            const bool ok = check(preverified, ctx);
            if (preverified && !ok)
                X509_STORE_CTX_set_error(ctx.native_handle(), X509_V_ERR_HOSTNAME_MISMATCH);
            return ok;
        });
}

/// Why the peer's certificate was refused, or "" if verification was not the problem.
template <class SslStream>
std::string verification_failure(SslStream& stream) {
    const long result = SSL_get_verify_result(stream.native_handle());
    if (result == X509_V_OK) return {};
    return X509_verify_cert_error_string(result);
}

} // namespace skyvol::http::detail

#endif
