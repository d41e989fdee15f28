// Must not compile with SKYVOL_EXPECT_FAIL (writable_mode); its twin without the macro must
// compile.
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

namespace sv = skyvol;

void use(sv::memory_store store) {
#ifdef SKYVOL_EXPECT_FAIL
    sv::volume<sv::memory_store, sv::mode::copy> v{store};
    v.create_directory("a");
#else
    sv::volume<sv::memory_store, sv::mode::write_back> v{store};
    v.create_directory("a");
#endif
}
