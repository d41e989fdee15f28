// Randomised operation sequences on writable volumes, checked after every step against an
// in-memory model of a POSIX-like tree; at the end the bucket itself must hold the model's tree.

#include "support/scale.hpp"
#include "support/temp_dir.hpp"
#include "support/tree_model.hpp"

#include <skyvol/store/local_store.hpp>
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <sstream>

namespace skyvol::test {
namespace {

template <class Volume>
void check_tree(Volume& v, const tree_model& model, const std::string& dir = "") {
    const auto entries = v.directory(dir);
    const auto expected = model.children(dir);
    REQUIRE(entries.size() == expected.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        INFO(entries[i].path());
        REQUIRE(std::string(entries[i].filename()) == expected[i].first);
        REQUIRE(entries[i].is_directory() == expected[i].second);
        if (expected[i].second)
            check_tree(v, model, entries[i].path());
        else
            REQUIRE(v.read_file(entries[i].path()) == model.content(entries[i].path()));
    }
}

template <class Store, class Mode>
void run_model(Store store, Store reopened, const std::filesystem::path& cache, unsigned seed,
               int operations) {
    volume_options o;
    o.prefix = "model/";
    o.cache_dir = cache;
    o.metadata.ttl = std::chrono::milliseconds(200);
    tree_model model;
    random_operations random(seed);
    auto pick = [&](int n) { return random.pick(n); };
    auto random_path = [&] { return random.path(); };
    auto random_data = [&] { return random.data(); };
    {
        volume<Store, Mode> v(store, o);
        for (int step = 0; step < operations; ++step) {
            const std::string p = random_path();
            const int op = pick(12);
            std::ostringstream what;
            what << "seed " << seed << " step " << step << " op " << op << " path " << p;
            INFO(what.str());
            std::error_code ec, want;
            switch (op) {
            case 0: {
                const std::string data = random_data();
                v.write_file(p, data, ec);
                want = model.write(p, data);
                break;
            }
            case 1: {
                const std::string data = random_data() + "!";
                file f = v.open(p, open_mode::append, ec);
                if (!ec) f.write(boost::asio::buffer(data), ec);
                if (!ec) f.close(ec);
                want = model.append(p, data);
                break;
            }
            case 2: {
                const std::string data = random_data() + "#";
                const std::size_t offset = static_cast<std::size_t>(pick(320));
                file f = v.open(p, open_mode::read_write, ec);
                if (!ec) f.write_at(offset, boost::asio::buffer(data), ec);
                if (!ec) f.close(ec);
                want = model.write_at(p, offset, data);
                break;
            }
            case 3: {
                const std::size_t size = static_cast<std::size_t>(pick(400));
                v.resize_file(p, size, ec);
                want = model.resize(p, size);
                break;
            }
            case 4:
                v.create_directory(p, ec);
                want = model.mkdir(p);
                break;
            case 5:
                v.create_directories(p, ec);
                want = model.mkdirs(p);
                break;
            case 6:
                v.remove(p, ec);
                want = model.remove(p);
                break;
            case 7: {
                const std::string to = random_path();
                INFO("to " << to);
                v.rename(p, to, ec);
                want = model.rename(p, to);
                break;
            }
            case 8: {
                const std::string got = v.read_file(p, ec);
                want = !model.exists(p)  ? std::error_code(errc::not_found)
                       : model.is_dir(p) ? std::error_code(errc::is_a_directory)
                                         : std::error_code{};
                if (!want && !ec) REQUIRE(got == model.content(p));
                break;
            }
            case 9: {
                const file_status st = v.status(p, ec);
                REQUIRE_FALSE(ec);
                REQUIRE(st.exists() == model.exists(p));
                if (model.is_file(p)) REQUIRE(st.size == model.content(p).size());
                if (model.exists(p)) REQUIRE(st.is_directory() == model.is_dir(p));
                break;
            }
            case 10: {
                const auto entries = v.directory(p, ec);
                want = !model.exists(p)   ? std::error_code(errc::not_found)
                       : !model.is_dir(p) ? std::error_code(errc::not_a_directory)
                                          : std::error_code{};
                if (!want && !ec) REQUIRE(entries.size() == model.children(p).size());
                break;
            }
            default:
                if (step % 50 == 0) check_tree(v, model);
                continue;
            }
            INFO("volume said: " << ec.message() << "; model said: " << want.message());
            REQUIRE(ec == want);
        }
        check_tree(v, model);
        v.flush();
    }
    // The bucket, seen by a fresh read-only volume, holds exactly the model's tree.
    volume_options ro;
    ro.prefix = "model/";
    volume<Store, mode::read_only> fresh(reopened, ro);
    check_tree(fresh, model);
}

} // namespace

TEST_CASE("volume model: write_through on the memory store", "[volume][model]") {
    temp_dir cache;
    memory_store store;
    run_model<memory_store, mode::write_through>(store, store, cache.path(), 1,
                                                 random_operations_count(10'000));
}

TEST_CASE("volume model: write_back on the memory store", "[volume][model]") {
    temp_dir cache;
    memory_store store;
    run_model<memory_store, mode::write_back>(store, store, cache.path(), 2,
                                              random_operations_count(10'000));
}

TEST_CASE("volume model: write_through on the local store", "[volume][model]") {
    temp_dir dir;
    local_store_options scratch;
    scratch.durable = false;
    local_store store(dir.path() / "bucket", scratch);
    run_model<local_store, mode::write_through>(store, local_store(dir.path() / "bucket"),
                                                dir.path() / "cache", 3,
                                                random_operations_count(10'000));
}

TEST_CASE("volume model: write_back on the local store", "[volume][model]") {
    temp_dir dir;
    local_store_options scratch;
    scratch.durable = false;
    local_store store(dir.path() / "bucket", scratch);
    run_model<local_store, mode::write_back>(store, local_store(dir.path() / "bucket"),
                                             dir.path() / "cache", 4,
                                             random_operations_count(10'000));
}

} // namespace skyvol::test
