#ifndef SKYVOL_LOG_HPP
#define SKYVOL_LOG_HPP

/// @file
/// Where long-running parts of skyvol (the FUSE adaptor, the tool) report what happened: a sink
/// the application chooses. Messages name paths and keys, never credentials.

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace skyvol {

enum class log_level { error = 0, warning = 1, info = 2, debug = 3 };

inline std::string_view to_string(log_level level) noexcept {
    switch (level) {
    case log_level::error:
        return "error";
    case log_level::warning:
        return "warning";
    case log_level::info:
        return "info";
    case log_level::debug:
        return "debug";
    }
    return "?";
}

/// Receives one message at a time; may be called from several threads at once.
using log_sink = std::function<void(log_level, std::string_view message)>;

/// The default sink: warnings and errors to stderr.
inline void log_to_stderr(log_level level, std::string_view message) {
    if (level > log_level::warning) return;
    const std::string line =
        "skyvol: " + std::string(to_string(level)) + ": " + std::string(message) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace skyvol

#endif
