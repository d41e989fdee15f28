// Must not compile with SKYVOL_EXPECT_FAIL (writable_mode); its twin without the macro must
// compile.
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

#include <boost/asio/detached.hpp>

namespace sv = skyvol;

void use(sv::memory_store store) {
#ifdef SKYVOL_EXPECT_FAIL
    sv::volume<sv::memory_store, sv::mode::read_only> v{store};
#else
    sv::volume<sv::memory_store, sv::mode::write_through> v{store};
#endif
    v.async_open("f", sv::open_mode::write, boost::asio::detached);
}
