#ifndef SKYVOL_TESTS_SUPPORT_TEMP_DIR_HPP
#define SKYVOL_TESTS_SUPPORT_TEMP_DIR_HPP

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace skyvol::test {

/// A fresh folder under $TMPDIR (or /tmp), removed with everything in it at the end.
class temp_dir {
public:
    explicit temp_dir(const std::string& tag = "skyvol-test") {
        const char* base = std::getenv("TMPDIR");
        std::string pattern =
            (std::filesystem::path(base ? base : "/tmp") / (tag + "-XXXXXX")).string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
        path_ = pattern;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

} // namespace skyvol::test

#endif
