// One whole-object transfer through skyvol's direct API (s3_store), the way a program that does
// not need a mount would move a big file: a multipart upload with parallel parts, or parallel
// ranged GETs written into place. bench/compare runs it next to `aws s3 cp` and curl.
//
//   transfer upload   --endpoint URL --bucket B --key K --file F [--streams N] [--part-mib M]
//   transfer download --endpoint URL --bucket B --key K --file F [--streams N] [--part-mib M]
//
// Keys come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Prints one JSON
// line: {"op":..., "bytes":..., "seconds":..., "mb_per_s":...}; exits 1 with a message on error.

#include <skyvol/store/s3_store.hpp>

#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

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

/// Runs `work(worker)` on `n` threads; rethrows the first exception.
template <class Work>
void in_parallel(std::size_t n, Work work) {
    std::vector<std::thread> threads;
    std::exception_ptr first;
    std::mutex m;
    for (std::size_t w = 0; w < n; ++w)
        threads.emplace_back([&, w] {
            try {
                work(w);
            } catch (...) {
                std::lock_guard lock(m);
                if (!first) first = std::current_exception();
            }
        });
    for (auto& t : threads)
        t.join();
    if (first) std::rethrow_exception(first);
}

void fail_errno(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::uint64_t upload(skyvol::s3_store& store, const arguments& a) {
    const int fd = ::open(a.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno(a.file);
    struct stat st {};
    ::fstat(fd, &st);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size <= a.part_size) {
        std::string data(size, '\0');
        if (::pread(fd, data.data(), size, 0) != static_cast<ssize_t>(size)) fail_errno("read");
        store.async_put(a.key, boost::asio::buffer(data), {}, boost::asio::use_future).get();
        ::close(fd);
        return size;
    }
    const std::string id = store.async_create_multipart(a.key, {}, boost::asio::use_future).get();
    const std::size_t count = static_cast<std::size_t>((size + a.part_size - 1) / a.part_size);
    std::vector<skyvol::completed_part> parts(count);
    std::atomic<std::size_t> next{0};
    try {
        in_parallel(std::min(a.streams, count), [&](std::size_t) {
            std::string buffer;
            for (std::size_t i; (i = next++) < count;) {
                const std::uint64_t at = i * a.part_size;
                buffer.resize(static_cast<std::size_t>(std::min(a.part_size, size - at)));
                if (::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(at)) !=
                    static_cast<ssize_t>(buffer.size()))
                    fail_errno("read");
                parts[i] =
                    store
                        .async_upload_part(a.key, id, static_cast<int>(i + 1),
                                           boost::asio::buffer(buffer), boost::asio::use_future)
                        .get();
            }
        });
        store.async_complete_multipart(a.key, id, parts, boost::asio::use_future).get();
    } catch (...) {
        try {
            store.async_abort_multipart(a.key, id, boost::asio::use_future).get();
        } catch (...) {
        }
        throw;
    }
    ::close(fd);
    return size;
}

std::uint64_t download(skyvol::s3_store& store, const arguments& a) {
    const skyvol::object_info info = store.async_head(a.key, boost::asio::use_future).get();
    const int fd = ::open(a.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail_errno(a.file);
    if (::ftruncate(fd, static_cast<off_t>(info.size)) != 0) fail_errno("truncate");
    const std::size_t count = static_cast<std::size_t>((info.size + a.part_size - 1) / a.part_size);
    std::atomic<std::size_t> next{0};
    std::atomic<std::uint64_t> total{0};
    in_parallel(std::min(a.streams, std::max<std::size_t>(count, 1)), [&](std::size_t) {
        std::string buffer(static_cast<std::size_t>(std::min(a.part_size, info.size)), '\0');
        for (std::size_t i; (i = next++) < count;) {
            const std::uint64_t at = i * a.part_size;
            const auto want = static_cast<std::size_t>(std::min(a.part_size, info.size - at));
            const std::size_t n =
                store
                    .async_get(a.key, at, boost::asio::buffer(buffer.data(), want),
                               boost::asio::use_future)
                    .get();
            if (::pwrite(fd, buffer.data(), n, static_cast<off_t>(at)) != static_cast<ssize_t>(n))
                fail_errno("write");
            total += n;
        }
    });
    ::close(fd);
    return total;
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
