#ifndef SKYVOL_TESTS_SUPPORT_FILES_HPP
#define SKYVOL_TESTS_SUPPORT_FILES_HPP

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace skyvol::test {

/// The whole content of a local file ("" when it cannot be read).
inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Writes a local file, creating its parent folders.
inline void write_file(const std::filesystem::path& path, std::string_view data) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << data;
}

} // namespace skyvol::test

#endif
