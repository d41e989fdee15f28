#ifndef SKYVOL_TOOL_LOGGER_HPP
#define SKYVOL_TOOL_LOGGER_HPP

// The tool's log: levels, and one sink at a time (stderr, a file, or syslog for daemons).

#include <skyvol/log.hpp>

#include <syslog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>

namespace skyvol::tool {

class logger {
public:
    enum class sink { stderr_stream, file, syslog };

    bool set_level(std::string_view name) {
        for (log_level l :
             {log_level::error, log_level::warning, log_level::info, log_level::debug})
            if (to_string(l) == name) {
                level_ = l;
                return true;
            }
        return false;
    }
    log_level level() const { return level_; }

    /// Appends to `path`; false (and errno) if it cannot be opened.
    bool to_file(const std::string& path) {
        std::FILE* f = std::fopen(path.c_str(), "a");
        if (!f) return false;
        std::lock_guard lock(mutex_);
        if (file_) std::fclose(file_);
        file_ = f;
        sink_ = sink::file;
        return true;
    }
    void to_syslog() {
        std::lock_guard lock(mutex_);
        ::openlog("skyvol", LOG_PID, LOG_DAEMON);
        sink_ = sink::syslog;
    }
    sink current() const { return sink_; }

    void operator()(log_level level, std::string_view message) {
        if (level > level_) return;
        std::lock_guard lock(mutex_);
        if (sink_ == sink::syslog) {
            const int priority = level == log_level::error     ? LOG_ERR
                                 : level == log_level::warning ? LOG_WARNING
                                 : level == log_level::info    ? LOG_INFO
                                                               : LOG_DEBUG;
            ::syslog(priority, "%.*s", static_cast<int>(message.size()), message.data());
            return;
        }
        std::FILE* out = sink_ == sink::file ? file_ : stderr;
        char stamp[32] = "";
        if (sink_ == sink::file) {
            const std::time_t now = std::time(nullptr);
            std::tm tm{};
            ::gmtime_r(&now, &tm);
            std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
        }
        std::fprintf(out, "%sskyvol: %s: %.*s\n", stamp, std::string(to_string(level)).c_str(),
                     static_cast<int>(message.size()), message.data());
        std::fflush(out);
    }

    log_sink as_sink() {
        return [this](log_level level, std::string_view message) { (*this)(level, message); };
    }

private:
    std::mutex mutex_;
    log_level level_ = log_level::info;
    sink sink_ = sink::stderr_stream;
    std::FILE* file_ = nullptr;
};

} // namespace skyvol::tool

#endif
