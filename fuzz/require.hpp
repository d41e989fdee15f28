#ifndef SKYVOL_FUZZ_REQUIRE_HPP
#define SKYVOL_FUZZ_REQUIRE_HPP

// What a fuzz target checks with: a broken property aborts, which libFuzzer reports as a crash
// with its input (and the standalone replay main as a failed test).

#include <cstdlib>

namespace skyvol::fuzz {

inline void require(bool condition) {
    if (!condition) std::abort();
}

} // namespace skyvol::fuzz

#endif
