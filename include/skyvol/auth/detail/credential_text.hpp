#ifndef SKYVOL_AUTH_DETAIL_CREDENTIAL_TEXT_HPP
#define SKYVOL_AUTH_DETAIL_CREDENTIAL_TEXT_HPP

/// @file
/// Small text helpers of the credential chain: environment variables, INI files (the shared
/// credentials and config files), ISO 8601 times.

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace skyvol::auth::detail {

/// The value of environment variable `name`, "" when unset.
inline std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

/// `s` without leading and trailing blanks and line ends.
inline std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

/// ASCII lower case, for settings such as "true" and "IPv6".
inline std::string lower_ascii(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

/// The key/value pairs of section `section` of an INI file; empty optional if the section is
/// not there (or the file is missing).
inline std::optional<std::map<std::string, std::string>> ini_section(const std::string& file,
                                                                     const std::string& section) {
    std::ifstream in(file);
    if (!in) return std::nullopt;
    std::optional<std::map<std::string, std::string>> found;
    bool inside = false;
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line.front() == '[' && line.back() == ']') {
            inside = trim(line.substr(1, line.size() - 2)) == section;
            if (inside && !found) found.emplace();
            continue;
        }
        const auto eq = line.find('=');
        if (inside && eq != std::string::npos)
            (*found)[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
    }
    return found;
}

/// The whole content of `file`, trimmed; empty optional if it cannot be read.
inline std::optional<std::string> read_text_file(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return trim(text.str());
}

/// Parses "2024-05-01T12:34:56Z", with optional fractional seconds and a "+hh:mm" or "-hhmm"
/// offset instead of Z (no zone means UTC); empty optional for anything else.
inline std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
    using namespace std::chrono;
    std::size_t i = 0;
    auto digits = [&](std::size_t n, int& value) {
        if (i + n > text.size()) return false;
        value = 0;
        for (std::size_t k = 0; k < n; ++k) {
            const char c = text[i + k];
            if (c < '0' || c > '9') return false;
            value = value * 10 + (c - '0');
        }
        i += n;
        return true;
    };
    auto expect = [&](char c) {
        if (i >= text.size() || text[i] != c) return false;
        ++i;
        return true;
    };
    int y = 0, mo = 0, d = 0, hh = 0, mm = 0, ss = 0;
    if (!digits(4, y) || !expect('-') || !digits(2, mo) || !expect('-') || !digits(2, d))
        return std::nullopt;
    if (i >= text.size() || (text[i] != 'T' && text[i] != 't' && text[i] != ' '))
        return std::nullopt;
    ++i;
    if (!digits(2, hh) || !expect(':') || !digits(2, mm) || !expect(':') || !digits(2, ss))
        return std::nullopt;
    if (i < text.size() && text[i] == '.') {
        ++i;
        const std::size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9')
            ++i;
        if (i == start) return std::nullopt; // fractions are dropped: expiry needs no more
    }
    int offset_minutes = 0;
    if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
        ++i;
    } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
        const int sign = text[i] == '-' ? -1 : 1;
        ++i;
        int oh = 0, om = 0;
        if (!digits(2, oh)) return std::nullopt;
        expect(':');
        if (!digits(2, om) || oh > 23 || om > 59) return std::nullopt;
        offset_minutes = sign * (oh * 60 + om);
    }
    if (i != text.size()) return std::nullopt;
    const year_month_day date{year{y}, month{static_cast<unsigned>(mo)},
                              day{static_cast<unsigned>(d)}};
    // Years system_clock's nanoseconds hold (1678 to 2262), with a margin.
    if (!date.ok() || y < 1700 || y > 2200 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
    return sys_days{date} + hours{hh} + minutes{mm} + seconds{ss} - minutes{offset_minutes};
}

/// "2024-05-01T12:34:56Z", for messages.
inline std::string format_iso8601(std::chrono::system_clock::time_point t) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

/// At most `limit` bytes of a server's text for an error message, on one line.
inline std::string excerpt(std::string_view text, std::size_t limit = 160) {
    std::string out;
    for (const char c : text.substr(0, limit))
        out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    if (text.size() > limit) out += "...";
    return trim(out);
}

} // namespace skyvol::auth::detail

#endif
