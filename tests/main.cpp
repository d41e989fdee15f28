#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <openssl/crypto.h>

int main(int argc, char* argv[]) {
    // OpenSSL's exit-time cleanup would run before Asio's system threads end and orphan their
    // per-thread state, which LeakSanitizer then reports. Leave the cleanup to process exit.
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
    return Catch::Session().run(argc, argv);
}
