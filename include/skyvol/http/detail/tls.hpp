#ifndef SKYVOL_HTTP_DETAIL_TLS_HPP
#define SKYVOL_HTTP_DETAIL_TLS_HPP

/// @file
/// The client's TLS settings: one OpenSSL context per client, and per connection SNI plus a
/// host-name check whose failure OpenSSL reports like any other verification error.

#include <skyvol/detail/throw.hpp>
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

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>

namespace skyvol::http::detail {

/// What the client throws: a skyvol code and the sentence that says what failed and why.
[[noreturn]] inline void throw_http_error(errc code, std::string what) {
    skyvol::detail::fail(code, std::move(what));
}

inline std::string env_or_empty(const char* name) {
    const char* value = std::getenv(name);
    return value ? std::string(value) : std::string();
}

/// The CA file to trust and what named it, or no file for the system's default paths. The
/// order: `client_options::ca_file`, then $AWS_CA_BUNDLE (as the AWS CLI and SDKs read it),
/// then $SSL_CERT_FILE (as OpenSSL reads it).
struct ca_choice {
    std::string file;
    std::string named_by; ///< "the ca_file option", "AWS_CA_BUNDLE" or "SSL_CERT_FILE"
};

inline ca_choice configured_ca(const client_options& o) {
    if (!o.ca_file.empty()) return {o.ca_file, "the ca_file option"};
    for (const char* variable : {"AWS_CA_BUNDLE", "SSL_CERT_FILE"})
        if (std::string file = env_or_empty(variable); !file.empty()) return {file, variable};
    return {};
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
    const ca_choice ca = configured_ca(o);
    boost::system::error_code ec;
    if (!ca.file.empty()) {
        // OpenSSL says "system lib" for a file it cannot open; errno says why.
        if (std::FILE* f = std::fopen(ca.file.c_str(), "r"))
            std::fclose(f);
        else
            throw_http_error(errc::invalid_config,
                             ca.named_by + " names the CA file '" + ca.file +
                                 "', which cannot be read: " + std::strerror(errno));
        ctx->load_verify_file(ca.file, ec);
        if (ec)
            throw_http_error(errc::invalid_config, ca.named_by + " names the CA file '" + ca.file +
                                                       "', which holds no PEM "
                                                       "certificates OpenSSL can load: " +
                                                       ec.message());
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
