#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <openssl/crypto.h>

#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char* argv[]) {
    // OpenSSL's exit-time cleanup would run before Asio's system threads end and orphan their
    // per-thread state, which LeakSanitizer then reports. Leave the cleanup to process exit.
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
    // Processes the tests start (the skyvol tool and its daemons, whose stderr is /dev/null)
    // write sanitizer reports under $TMPDIR/sanitizer-reports; the sanitizer.children test
    // fails if any is there once every test has run. This process reads its options at start,
    // so it keeps reporting on stderr.
    if (const char* tmp = std::getenv("TMPDIR")) {
        const std::string dir = std::string(tmp) + "/sanitizer-reports";
        for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"}) {
            const char* old = std::getenv(name);
            std::string value = old ? std::string(old) + ":" : std::string();
            std::string tag(name, std::string_view(name).find('_'));
            for (char& c : tag)
                c = static_cast<char>(c - 'A' + 'a');
            value += "log_path=" + dir + "/" + tag;
            ::setenv(name, value.c_str(), 1);
        }
    }
    return Catch::Session().run(argc, argv);
}
