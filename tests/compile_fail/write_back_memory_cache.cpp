// Must not compile with SKYVOL_EXPECT_FAIL (mode_accepts_cache); its twin without the macro must
// compile.
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

namespace sv = skyvol;

void use(sv::memory_store store) {
#ifdef SKYVOL_EXPECT_FAIL
    sv::volume<sv::memory_store, sv::mode::write_back, sv::cache::memory> v{store};
#else
    sv::volume<sv::memory_store, sv::mode::write_back, sv::cache::disk> v{store};
#endif
}
