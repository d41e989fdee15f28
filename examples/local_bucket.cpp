// A folder as a bucket: writes objects (one through a multipart upload) into a local_store,
// lists them the way S3 would, reads them back, and prints what it did. The objects are plain
// files under the folder afterwards, ready for `ls` and `cat`.
//
//   local_bucket BUCKET_DIR

#include <skyvol/skyvol.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

namespace {

awaitable<void> demo(skyvol::local_store bucket) {
    // Small objects, with the metadata s3fs uses for file attributes.
    skyvol::put_options text;
    text.content_type = "text/plain";
    text.metadata = {{"mode", "33188"}, {"uid", "0"}, {"gid", "0"}};
    const std::vector<std::pair<std::string, std::string>> files = {
        {"README.txt", "This bucket was written by skyvol's local_bucket example.\n"},
        {"datasets/mnist/train.csv", "label,pixels\n7,0 0 0 255\n2,0 128 255 0\n"},
        {"datasets/mnist/test.csv", "label,pixels\n1,0 0 255 255\n"},
        {"logs/", ""}, // a folder marker: an empty directory that survives on its own
    };
    for (const auto& [key, body] : files) {
        auto result = co_await bucket.async_put(key, asio::buffer(body), text, use_awaitable);
        std::printf("put   %-28s %6zu bytes  etag %s\n", key.c_str(), body.size(),
                    result.etag.c_str());
    }

    // A 12 MiB checkpoint through a multipart upload: 5 MiB parts, the last one smaller.
    const std::string checkpoint(12u << 20, '\x42');
    // Named, not `{}`: g++ 12 miscompiles brace-initialised temporaries inside co_await.
    const skyvol::put_options binary;
    const std::string id =
        co_await bucket.async_create_multipart("checkpoints/step-100.pt", binary, use_awaitable);
    std::vector<skyvol::completed_part> parts;
    constexpr std::size_t part_size = skyvol::multipart_limits::min_part_size;
    for (std::size_t at = 0, n = 1; at < checkpoint.size(); at += part_size, ++n)
        parts.push_back(co_await bucket.async_upload_part(
            "checkpoints/step-100.pt", id, static_cast<int>(n),
            asio::buffer(checkpoint.data() + at, std::min(part_size, checkpoint.size() - at)),
            use_awaitable));
    auto done = co_await bucket.async_complete_multipart("checkpoints/step-100.pt", id, parts,
                                                         use_awaitable);
    std::printf("put   %-28s %6zu MiB   etag %s (%zu parts)\n", "checkpoints/step-100.pt",
                checkpoint.size() >> 20, done.etag.c_str(), parts.size());

    // List the top level the way `aws s3 ls` does: objects and "folders".
    skyvol::list_request top;
    top.delimiter = "/";
    const skyvol::list_page page = co_await bucket.async_list(top, use_awaitable);
    for (const auto& prefix : page.common_prefixes)
        std::printf("list  %-28s (folder)\n", prefix.c_str());
    for (const auto& object : page.objects)
        std::printf("list  %-28s %6llu bytes\n", object.key.c_str(),
                    static_cast<unsigned long long>(object.size));

    // Read back one object whole, and a range of the checkpoint.
    const auto info = co_await bucket.async_head("datasets/mnist/train.csv", use_awaitable);
    std::string body(info.size, '\0');
    co_await bucket.async_get(info.key, 0, asio::buffer(body), use_awaitable);
    std::printf("get   %s (%s, mode %s):\n%s", info.key.c_str(), info.content_type.c_str(),
                info.metadata.at("mode").c_str(), body.c_str());
    char window[4];
    const std::size_t n = co_await bucket.async_get("checkpoints/step-100.pt", 7u << 20,
                                                    asio::buffer(window), use_awaitable);
    std::printf("get   checkpoints/step-100.pt bytes [7 MiB, +%zu): %s\n", n,
                std::string(window, n) == "BBBB" ? "match" : "MISMATCH");
    if (std::string(window, n) != "BBBB") throw std::runtime_error("checkpoint read back wrong");
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s BUCKET_DIR\n", argv[0]);
        return 2;
    }
    try {
        skyvol::local_store bucket{argv[1]};
        asio::io_context io;
        auto finished = asio::co_spawn(io, demo(bucket), asio::use_future);
        io.run();
        finished.get();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "local_bucket: %s\n", e.what());
        return 1;
    }
    return 0;
}
