// One whole-object transfer through skyvol's direct API (s3_store and the volume's transfer
// helpers), the way a program that does not need a mount would move a big file: a multipart
// upload with parallel parts, or parallel ranged GETs written into place. bench/compare runs it
// next to `aws s3 cp` and curl.
//
//   transfer upload   --endpoint URL --bucket B --key K --file F [--streams N] [--part-mib M]
//   transfer download --endpoint URL --bucket B --key K --file F [--streams N] [--part-mib M]
//
// Keys come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Prints one JSON
// line: {"op":..., "bytes":..., "seconds":..., "mb_per_s":...}; exits 1 with a message on error.

#include <skyvol/fs/detail/transfer.hpp>
#include <skyvol/store/s3_store.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

struct arguments {
    std::string op, endpoint, bucket, key, file;
    std::size_t streams = 8;
    std::uint64_t part_size = 16ull << 20;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "transfer: %s\nusage: transfer upload|download --endpoint URL --bucket B --key K "
                 "--file F [--streams N] [--part-mib M]\n",
                 why);
    std::exit(2);
}

arguments parse(int argc, char** argv) {
    if (argc < 2) usage("missing operation");
    arguments a;
    a.op = argv[1];
    if (a.op != "upload" && a.op != "download") usage("operation must be upload or download");
    for (int i = 2; i < argc; ++i) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) usage(("missing value after " + flag).c_str());
        const std::string value = argv[++i];
        if (flag == "--endpoint")
            a.endpoint = value;
        else if (flag == "--bucket")
            a.bucket = value;
        else if (flag == "--key")
            a.key = value;
        else if (flag == "--file")
            a.file = value;
        else if (flag == "--streams")
            a.streams = std::max<std::size_t>(1, std::strtoull(value.c_str(), nullptr, 10));
        else if (flag == "--part-mib")
            a.part_size = std::max<std::uint64_t>(5, std::strtoull(value.c_str(), nullptr, 10))
                          << 20;
        else
            usage(("unknown option " + flag).c_str());
    }
    if (a.bucket.empty() || a.key.empty() || a.file.empty()) usage("--bucket, --key, --file");
    return a;
}

void fail_errno(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

/// The volume's own transfer code, shaped by the command line: what a mount's commit and disk
/// cache use, so the figure measures the product's path.
skyvol::detail::transfer_shape shape_of(const arguments& a) {
    return {a.part_size, a.part_size, a.streams};
}

std::uint64_t upload(skyvol::s3_store& store, const arguments& a) {
    const int fd = ::open(a.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno(a.file);
    struct stat st {};
    ::fstat(fd, &st);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    boost::asio::co_spawn(store.get_executor(),
                          skyvol::detail::upload_from_file(store, a.key, fd, size,
                                                           skyvol::put_options(), shape_of(a)),
                          boost::asio::use_future)
        .get();
    ::close(fd);
    return size;
}

std::uint64_t download(skyvol::s3_store& store, const arguments& a) {
    const skyvol::object_info info = store.async_head(a.key, boost::asio::use_future).get();
    const int fd = ::open(a.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail_errno(a.file);
    const std::uint64_t got = boost::asio::co_spawn(store.get_executor(),
                                                    skyvol::detail::download_to_file(
                                                        store, a.key, fd, info.size, shape_of(a)),
                                                    boost::asio::use_future)
                                  .get();
    ::close(fd);
    return got;
}

} // namespace

int main(int argc, char** argv) {
    const arguments a = parse(argc, argv);
    try {
        skyvol::s3_options o;
        o.endpoint = a.endpoint;
        o.http.max_connections_per_host = std::max<std::size_t>(16, a.streams);
        skyvol::s3_store store(a.bucket, o);
        const auto start = std::chrono::steady_clock::now();
        const std::uint64_t bytes = a.op == "upload" ? upload(store, a) : download(store, a);
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("{\"op\":\"%s\",\"bytes\":%llu,\"seconds\":%.4f,\"mb_per_s\":%.2f,"
                    "\"streams\":%zu,\"part_bytes\":%llu}\n",
                    a.op.c_str(), static_cast<unsigned long long>(bytes), s,
                    s > 0 ? static_cast<double>(bytes) / 1e6 / s : 0.0, a.streams,
                    static_cast<unsigned long long>(a.part_size));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "transfer: %s\n", e.what());
        return 1;
    }
}
