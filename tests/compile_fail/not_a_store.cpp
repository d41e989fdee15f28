// Must not compile with SKYVOL_EXPECT_FAIL (object_store); its twin without the macro must compile.
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

namespace sv = skyvol;

void use(sv::memory_store store) {
#ifdef SKYVOL_EXPECT_FAIL
    struct not_a_store {
        int x;
    };
    sv::volume<not_a_store, sv::mode::read_only>* v = nullptr;
    (void)v;
    (void)store;
#else
    sv::volume<sv::memory_store, sv::mode::read_only>* v = nullptr;
    (void)v;
    (void)store;
#endif
}
