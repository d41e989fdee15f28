// Writes, lists and reads back objects through the local store, using only the installed
// headers: proof that a consumer needs nothing but find_package(skyvol).
#include <skyvol/skyvol.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
    const std::filesystem::path root =
        argc > 1 ? argv[1] : std::filesystem::temp_directory_path() / "skyvol-consumer";
    skyvol::local_store bucket{root};
    const std::string text = "consumer says hello";
    bucket.async_put("greeting.txt", boost::asio::buffer(text), {}, boost::asio::use_future).get();
    skyvol::list_request everything;
    const skyvol::list_page page = bucket.async_list(everything, boost::asio::use_future).get();
    std::string back(text.size(), '\0');
    const std::size_t n =
        bucket.async_get("greeting.txt", 0, boost::asio::buffer(back), boost::asio::use_future)
            .get();
    back.resize(n);
    std::printf("%zu object(s); greeting.txt = \"%s\"\n", page.objects.size(), back.c_str());
    return back == text && page.objects.size() == 1 ? EXIT_SUCCESS : EXIT_FAILURE;
}
