#ifndef SKYVOL_FS_DETAIL_CACHE_FOLDER_HPP
#define SKYVOL_FS_DETAIL_CACHE_FOLDER_HPP

/// @file
/// The local folder a volume keeps its state in (staging copies, the write-back journal, the
/// disk cache, copy mode's mirror): the one the options name, which outlives the volume, or a
/// private temporary one that goes with it.

#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/throw.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace skyvol::detail {

class cache_folder {
public:
    /// `dir`, or if it is empty a new folder `<temp>/<tag>-XXXXXX` that this removes at the end.
    cache_folder(std::filesystem::path dir, std::string_view tag)
        : path_(std::move(dir)) {
        if (!path_.empty()) return;
        std::string pattern =
            (std::filesystem::temp_directory_path() / (std::string(tag) + "-XXXXXX")).string();
        if (!::mkdtemp(pattern.data())) fail(last_error());
        path_ = pattern;
        owned_ = true;
    }
    cache_folder(const cache_folder&) = delete;
    cache_folder& operator=(const cache_folder&) = delete;
    ~cache_folder() {
        if (!owned_) return;
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
    bool owned_ = false;
};

} // namespace skyvol::detail

#endif
