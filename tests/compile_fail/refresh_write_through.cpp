// Must not compile with SKYVOL_EXPECT_FAIL (local_copy_mode); its twin without the macro must
// compile.
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

namespace sv = skyvol;

void use(sv::memory_store store) {
#ifdef SKYVOL_EXPECT_FAIL
    sv::volume<sv::memory_store, sv::mode::write_through> v{store};
    v.refresh();
#else
    sv::volume<sv::memory_store, sv::mode::copy> v{store};
    v.refresh();
#endif
}
