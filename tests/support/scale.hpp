#ifndef SKYVOL_TESTS_SUPPORT_SCALE_HPP
#define SKYVOL_TESTS_SUPPORT_SCALE_HPP

// How many operations a randomised test runs. Under a sanitizer each operation costs several
// times as much, and what the sanitizer looks for (memory and thread errors on each path) a
// quarter of the operations reach as well; the plain build runs them all.

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SKYVOL_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SKYVOL_TEST_SANITIZED 1
#endif
#endif

namespace skyvol::test {

#ifdef SKYVOL_TEST_SANITIZED
inline constexpr int sanitizer_share = 4;
#else
inline constexpr int sanitizer_share = 1;
#endif

/// `n` operations in the plain build, a quarter of them under a sanitizer.
constexpr int random_operations_count(int n) {
    return n / sanitizer_share;
}

} // namespace skyvol::test

#endif
