// Uses the S3 store and the FUSE adaptor from the package alone: proof that the s3 and fuse
// components bring what their headers need, and link.
#include <skyvol/mount.hpp>
#include <skyvol/store/local_store.hpp>
#include <skyvol/store/s3_store.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main() {
    // A bucket name S3 refuses fails before any request: the store's checks are linked in.
    try {
        skyvol::s3_store::from_uri("s3://Not_A_Bucket");
        return EXIT_FAILURE;
    } catch (const std::exception& e) {
        std::printf("s3: %s\n", e.what());
    }
    // Not a mount point: the adaptor's checks answer without mounting.
    std::string absolute;
    const std::error_code ec =
        skyvol::fuse::check_mount_point("/nonexistent/skyvol-consumer", false, absolute);
    std::printf("fuse: %s\n", skyvol::fuse::mount_point_problem(ec, "/nonexistent").c_str());
    return ec ? EXIT_SUCCESS : EXIT_FAILURE;
}
