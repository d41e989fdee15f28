#ifndef SKYVOL_AUTH_CREDENTIAL_CHAIN_HPP
#define SKYVOL_AUTH_CREDENTIAL_CHAIN_HPP

/// @file
/// Where S3 keys come from when none are given, in the AWS SDKs' order: the environment
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then the profile
/// (AWS_PROFILE, else "default") in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
/// else ~/.aws/credentials) and the config file (AWS_CONFIG_FILE, else ~/.aws/config), then
/// web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, through STS), the container
/// endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), and the EC2 instance role
/// (IMDSv2). Errors name the source that is wrong, never a secret. docs/credentials.md has the
/// details; `credential_provider` (credential_provider.hpp) caches and refreshes.

#include <skyvol/auth/credential_provider.hpp>
#include <skyvol/auth/credentials.hpp>
#include <skyvol/auth/detail/credential_sources.hpp>
#include <skyvol/error.hpp>

#include <boost/asio/thread_pool.hpp>

#include <string>
#include <system_error>

namespace skyvol::auth {

/// The first credentials the chain finds, once, without caching; blocks while a network source
/// answers (on a thread of its own). `errc::access_denied` (`errc::invalid_config` for a
/// malformed setting) with `why` naming the source if a source is set but unusable, or if none
/// gives credentials.
inline resolved_credentials resolve_credentials(std::string& why, std::error_code& ec) {
    ec.clear();
    why.clear();
    // The environment and profiles need no thread; only network sources get one.
    detail::chain_source source = detail::select_source(why, ec);
    if (ec || source.what == detail::chain_source::kind::keys) return source.keys;
    boost::asio::thread_pool pool(1);
    resolved_credentials out;
    {
        credential_provider provider(pool.get_executor());
        out = provider.get(why, ec);
        provider.shutdown();
    }
    pool.join();
    return out;
}

} // namespace skyvol::auth

#endif
