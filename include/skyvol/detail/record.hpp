#ifndef SKYVOL_DETAIL_RECORD_HPP
#define SKYVOL_DETAIL_RECORD_HPP

/// @file
/// The one text format skyvol keeps small records in on local disk (the local store's object
/// attributes, the write-back journal's entries): a "v=1" line, then one `name=value` line per
/// field, with '%', '=', CR and LF percent-escaped in names and values.

#include <string>
#include <string_view>

namespace skyvol::detail {

class record_writer {
public:
    void field(std::string_view name, std::string_view value) {
        escape(name);
        text_ += '=';
        escape(value);
        text_ += '\n';
    }
    const std::string& text() const noexcept { return text_; }

private:
    void escape(std::string_view text) {
        static constexpr char hex[] = "0123456789ABCDEF";
        for (char c : text) {
            if (c == '%' || c == '=' || c == '\n' || c == '\r') {
                text_ += '%';
                text_ += hex[static_cast<unsigned char>(c) >> 4];
                text_ += hex[static_cast<unsigned char>(c) & 0xF];
            } else {
                text_ += c;
            }
        }
    }

    std::string text_ = "v=1\n";
};

/// Reverses the writer's escaping; false on a malformed escape.
inline bool unescape_record(std::string_view text, std::string& out) {
    auto nibble = [](char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 2 >= text.size()) return false;
        const int hi = nibble(text[i + 1]), lo = nibble(text[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out += static_cast<char>(hi << 4 | lo);
        i += 2;
    }
    return true;
}

/// Calls `on_field(name, value)` for each field of `text`; false if `text` is not such a record
/// (another version, a line without '=', a malformed escape, a last line without its newline).
template <class OnField>
bool read_record(std::string_view text, OnField&& on_field) {
    if (!text.starts_with("v=1\n")) return false;
    text.remove_prefix(4);
    while (!text.empty()) {
        const auto eol = text.find('\n');
        if (eol == std::string_view::npos) return false;
        const std::string_view line = text.substr(0, eol);
        text.remove_prefix(eol + 1);
        const auto eq = line.find('=');
        std::string name, value;
        if (eq == std::string_view::npos || !unescape_record(line.substr(0, eq), name) ||
            !unescape_record(line.substr(eq + 1), value))
            return false;
        on_field(name, value);
    }
    return true;
}

} // namespace skyvol::detail

#endif
