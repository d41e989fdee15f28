// Must not compile with SKYVOL_EXPECT_FAIL (writable_mode); its twin without the macro must
// compile.
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

namespace sv = skyvol;

void use(sv::memory_store store) {
#ifdef SKYVOL_EXPECT_FAIL
    sv::volume<sv::memory_store, sv::mode::read_only> v{store};
    auto f = v.open("a", sv::open_mode::append);
#else
    sv::volume<sv::memory_store, sv::mode::write_back> v{store};
    auto f = v.open("a", sv::open_mode::append);
#endif
}
