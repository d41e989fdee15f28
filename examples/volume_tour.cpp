// A tour of volumes over a local bucket folder: a write-back volume writes checkpoints and logs
// (journaled, uploaded in the background, flushed), a read-only volume lists and reads them the
// way `ls -l` and `cat` would, and a copy-mode volume fetches the prefix with progress.
//
//   volume_tour BUCKET_DIR CACHE_DIR

#include <skyvol/skyvol.hpp>

#include <cstdio>
#include <string>

namespace sv = skyvol;

namespace {

std::string mode_string(const sv::file_status& st) {
    std::string s = st.is_directory() ? "d" : st.is_symlink() ? "l" : "-";
    for (int shift = 6; shift >= 0; shift -= 3) {
        const unsigned bits = (st.permissions >> shift) & 7u;
        s += bits & 4u ? 'r' : '-';
        s += bits & 2u ? 'w' : '-';
        s += bits & 1u ? 'x' : '-';
    }
    return s;
}

template <class Volume>
void list(Volume& v, const std::string& dir, int depth = 0) {
    for (const sv::directory_entry& e : v.directory(dir)) {
        const sv::file_status st = v.status(e.path()); // stored mode, owner and mtime
        std::printf("  %s %8llu  %*s%s%s\n", mode_string(st).c_str(),
                    static_cast<unsigned long long>(st.size), depth * 2, "",
                    std::string(e.filename()).c_str(), st.is_directory() ? "/" : "");
        if (st.is_directory()) list(v, e.path(), depth + 1);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s BUCKET_DIR CACHE_DIR\n", argv[0]);
        return 2;
    }
    try {
        sv::local_store bucket{argv[1]};
        {
            sv::volume<sv::local_store, sv::mode::write_back> run{
                bucket, {.prefix = "run-042/", .cache_dir = argv[2]}};
            run.create_directories("logs");
            run.write_file("node-0.pt", std::string(3u << 20, '\x01'));
            run.rename("node-0.pt", "final.pt");
            run.create_symlink("final.pt", "latest.pt");
            sv::file log = run.open("logs/train.log", sv::open_mode::append);
            for (int epoch = 1; epoch <= 3; ++epoch)
                log.write("epoch " + std::to_string(epoch) + " loss " +
                          std::to_string(1.0 / epoch) + "\n");
            log.close();
            std::printf("write-back volume: %zu upload(s) pending, flushing\n",
                        run.pending_uploads());
            run.flush();
            std::printf("write-back volume: every closed file is in the bucket\n");
        }

        sv::volume<sv::local_store, sv::mode::read_only, sv::cache::memory> data{
            bucket, {.prefix = "run-042/"}};
        std::printf("read-only volume, ls -lR:\n");
        list(data, "");
        std::printf("read-only volume, cat logs/train.log:\n%s",
                    data.read_file("logs/train.log").c_str());
        std::printf("read-only volume, readlink latest.pt: %s\n",
                    data.read_symlink("latest.pt").c_str());

        sv::volume_options copy_settings;
        copy_settings.prefix = "run-042/";
        copy_settings.copy.on_progress = [](const sv::copy_progress& p) {
            std::printf("copy volume: fetched %zu/%zu files, %llu/%llu bytes\n", p.files_done,
                        p.files_total, static_cast<unsigned long long>(p.bytes_done),
                        static_cast<unsigned long long>(p.bytes_total));
        };
        sv::volume<sv::local_store, sv::mode::copy> copy{bucket, copy_settings};
        std::printf("copy volume: final.pt is %llu bytes, served locally\n",
                    static_cast<unsigned long long>(copy.status("final.pt").size));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "volume_tour: %s\n", e.what());
        return 1;
    }
    return 0;
}
