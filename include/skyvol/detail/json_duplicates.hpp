#ifndef SKYVOL_DETAIL_JSON_DUPLICATES_HPP
#define SKYVOL_DETAIL_JSON_DUPLICATES_HPP

/// @file
/// Finds a key named twice in one JSON object. Boost.JSON keeps the last of them, so a file that
/// says `"mode": "read-only"` and later `"mode": "mount"` would be read as the second without a
/// word; a reader of files people write (spec files) refuses it instead, by the key's path.

#include <boost/json/basic_parser_impl.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace skyvol::detail {

/// What `scan_json_keys` saw: the first repeated key's path (`mounts[1].mode`, `[0].path`),
/// and how many members all objects have together (a count the parsed value must match).
struct json_key_scan {
    std::optional<std::string> duplicate;
    std::size_t members = 0;
};

namespace json_keys_detail {

class handler {
public:
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    json_key_scan scan;

    bool on_document_begin(boost::system::error_code&) { return true; }
    bool on_document_end(boost::system::error_code&) { return true; }
    bool on_object_begin(boost::system::error_code&) { return open(true); }
    bool on_object_end(std::size_t, boost::system::error_code&) { return close(); }
    bool on_array_begin(boost::system::error_code&) { return open(false); }
    bool on_array_end(std::size_t, boost::system::error_code&) { return close(); }
    bool on_key_part(std::string_view s, std::size_t, boost::system::error_code&) {
        key_.append(s);
        return true;
    }
    bool on_key(std::string_view s, std::size_t, boost::system::error_code&) {
        key_.append(s);
        frame& f = frames_.back();
        ++scan.members;
        if (!f.keys.insert(key_).second && !scan.duplicate) scan.duplicate = path() + key_;
        f.key = std::move(key_);
        key_.clear();
        return true;
    }
    bool on_string_part(std::string_view, std::size_t, boost::system::error_code&) { return true; }
    bool on_string(std::string_view, std::size_t, boost::system::error_code&) { return value(); }
    bool on_number_part(std::string_view, boost::system::error_code&) { return true; }
    bool on_int64(std::int64_t, std::string_view, boost::system::error_code&) { return value(); }
    bool on_uint64(std::uint64_t, std::string_view, boost::system::error_code&) { return value(); }
    bool on_double(double, std::string_view, boost::system::error_code&) { return value(); }
    bool on_bool(bool, boost::system::error_code&) { return value(); }
    bool on_null(boost::system::error_code&) { return value(); }
    bool on_comment_part(std::string_view, boost::system::error_code&) { return true; }
    bool on_comment(std::string_view, boost::system::error_code&) { return true; }

private:
    struct frame {
        bool object;
        std::set<std::string> keys; ///< an object's keys so far
        std::string key;            ///< an object's current key
        std::size_t next = 0;       ///< an array's next index
    };

    /// A value starts: in an array it takes the next index.
    bool value() {
        if (!frames_.empty() && !frames_.back().object) ++frames_.back().next;
        return true;
    }
    bool open(bool object) {
        value();
        frames_.push_back(frame{object, {}, {}, 0});
        return true;
    }
    bool close() {
        frames_.pop_back();
        return true;
    }
    /// Where the object being read is, ending with the separator its key goes after.
    std::string path() const {
        std::string out;
        for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
            const frame& f = frames_[i];
            if (f.object)
                out += (out.empty() ? "" : ".") + f.key;
            else
                out += "[" + std::to_string(f.next - 1) + "]";
        }
        return out.empty() ? out : out + ".";
    }

    std::vector<frame> frames_;
    std::string key_;
};

} // namespace json_keys_detail

/// Scans `text` as JSON (the same grammar `boost::json::parse` takes by default). Text that is
/// not JSON gives what was seen before the error; the real parse then says what is wrong.
inline json_key_scan scan_json_keys(std::string_view text) {
    boost::json::basic_parser<json_keys_detail::handler> parser{boost::json::parse_options{}};
    boost::system::error_code ec;
    parser.write_some(false, text.data(), text.size(), ec);
    return std::move(parser.handler().scan);
}

} // namespace skyvol::detail

#endif
