// local_store against its peer, plain POSIX file I/O doing the same durable work (write a temp
// file, fsync, rename; read back), side by side in one run on the same disk. Prints MB/s and
// the skyvol/peer ratio; absolute figures mean little on a shared machine, the ratio does.
//
//   store_throughput [--quick]

#include <skyvol/store/local_store.hpp>

#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

struct figures {
    double write_s = 0, read_s = 0;
};

figures run_skyvol(const std::filesystem::path& root, int files, const std::string& payload) {
    skyvol::local_store store(root);
    figures f;
    auto start = clock_type::now();
    for (int i = 0; i < files; ++i)
        store
            .async_put("bench/" + std::to_string(i), boost::asio::buffer(payload),
                       skyvol::put_options(), boost::asio::use_future)
            .get();
    f.write_s = seconds_since(start);
    std::string back(payload.size(), '\0');
    start = clock_type::now();
    for (int i = 0; i < files; ++i)
        store
            .async_get("bench/" + std::to_string(i), 0, boost::asio::buffer(back),
                       boost::asio::use_future)
            .get();
    f.read_s = seconds_since(start);
    return f;
}

figures run_posix(const std::filesystem::path& root, int files, const std::string& payload) {
    std::filesystem::create_directories(root / "bench");
    figures f;
    auto start = clock_type::now();
    for (int i = 0; i < files; ++i) {
        const auto final_path = root / "bench" / std::to_string(i);
        const auto tmp = root / ("tmp." + std::to_string(i));
        const int fd = ::open(tmp.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ::write(fd, payload.data(), payload.size()) < 0 || ::fsync(fd) != 0) {
            std::perror("posix peer");
            std::exit(1);
        }
        ::close(fd);
        std::filesystem::rename(tmp, final_path);
        const int dir = ::open((root / "bench").c_str(), O_RDONLY | O_DIRECTORY);
        ::fsync(dir);
        ::close(dir);
    }
    f.write_s = seconds_since(start);
    std::string back(payload.size(), '\0');
    start = clock_type::now();
    for (int i = 0; i < files; ++i) {
        const int fd = ::open((root / "bench" / std::to_string(i)).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::pread(fd, back.data(), back.size(), 0) < 0) std::exit(1);
        ::close(fd);
    }
    f.read_s = seconds_since(start);
    return f;
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const auto base = std::filesystem::temp_directory_path() / "skyvol-bench";
    std::printf("%-10s %8s %12s %12s %8s %12s %12s %8s\n", "size", "files", "skyvol w MB/s",
                "posix w MB/s", "ratio", "skyvol r MB/s", "posix r MB/s", "ratio");
    for (const std::size_t size :
         {std::size_t{4} << 10, std::size_t{1} << 20, std::size_t{16} << 20}) {
        const int files = static_cast<int>(std::max<std::size_t>(
            4, (quick ? (32u << 20) : (512u << 20)) / size / (size < (1u << 20) ? 8 : 1)));
        const std::string payload(size, 'x');
        std::filesystem::remove_all(base);
        const figures sky = run_skyvol(base / "skyvol", files, payload);
        const figures peer = run_posix(base / "posix", files, payload);
        const double mb = static_cast<double>(size) * files / 1e6;
        std::printf("%-10zu %8d %12.1f %12.1f %8.2f %12.1f %12.1f %8.2f\n", size, files,
                    mb / sky.write_s, mb / peer.write_s, peer.write_s / sky.write_s,
                    mb / sky.read_s, mb / peer.read_s, peer.read_s / sky.read_s);
    }
    std::filesystem::remove_all(base);
    return 0;
}
