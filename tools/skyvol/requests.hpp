#ifndef SKYVOL_TOOL_REQUESTS_HPP
#define SKYVOL_TOOL_REQUESTS_HPP

// What `skyvol mount` is asked to do, from its arguments or a spec file, and the checks that
// run before anything is mounted. Every problem is a sentence that names the mount.

#include <skyvol/detail/json_duplicates.hpp>
#include <skyvol/fuse/detail/session.hpp>
#include <skyvol/fuse/options.hpp>
#include <skyvol/http/url.hpp>
#include <skyvol/store/local_store.hpp>
#include <skyvol/store/s3_store.hpp>
#include <skyvol/uri.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace skyvol::tool {

enum class mode_name { read_only, write_through, copy, write_back };

inline bool parse_mode(std::string_view text, mode_name& out) {
    if (text == "read-only" || text == "readonly" || text == "ro")
        out = mode_name::read_only;
    else if (text == "mount" || text == "write-through")
        out = mode_name::write_through;
    else if (text == "copy")
        out = mode_name::copy;
    else if (text == "mount-cached" || text == "write-back")
        out = mode_name::write_back;
    else
        return false;
    return true;
}

inline std::string_view to_string(mode_name m) {
    switch (m) {
    case mode_name::read_only:
        return "read-only";
    case mode_name::write_through:
        return "mount";
    case mode_name::copy:
        return "copy";
    case mode_name::write_back:
        return "mount-cached";
    }
    return "?";
}

/// More HEADs at once than this only queue up in the server.
inline constexpr std::int64_t max_listing_heads = 256;

struct mount_request {
    std::string label; ///< "mount 2 (/data)" in a spec, empty on the command line
    std::string source;
    std::string path;
    mode_name mode = mode_name::write_through;
    std::string prefix;
    std::string cache_dir;
    std::string endpoint;
    double write_back_delay = 0; ///< seconds a closed file waits before its upload starts
    /// HEADs a listing runs at once for entries it carries no metadata for; 0 trusts listings.
    std::optional<std::size_t> listing_heads;
    /// Bytes of bucket data a mount-cached mount keeps on disk; by default the cache folder's
    /// filesystem less a 5% margin.
    std::optional<std::uint64_t> cache_size;
    std::vector<std::string> option_strings; ///< each a -o string
    fuse::mount_options mount;               ///< filled by validate()
    std::string folder;                      ///< the local store's folder, filled by validate()
    std::string bucket;                      ///< the S3 bucket, filled by validate()
};

/// Reads a size: bytes, or a number with K, M, G or T (powers of 1024; "GiB", "G" and "GB"
/// alike). False for anything else, 0 and sizes over 2^60.
inline bool parse_byte_size(std::string_view text, std::uint64_t& bytes) {
    std::size_t digits = 0;
    while (digits < text.size() && digits < 19 && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    if (digits == 0) return false;
    const std::uint64_t number = std::stoull(std::string(text.substr(0, digits)));
    std::string unit(text.substr(digits));
    for (char& c : unit)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    static const std::map<std::string, int> shifts = {
        {"", 0},     {"B", 0},  {"K", 10},  {"KB", 10},  {"KIB", 10}, {"M", 20},  {"MB", 20},
        {"MIB", 20}, {"G", 30}, {"GB", 30}, {"GIB", 30}, {"T", 40},   {"TB", 40}, {"TIB", 40}};
    const auto shift = shifts.find(unit);
    if (shift == shifts.end() || number == 0 || number > (std::uint64_t(1) << (60 - shift->second)))
        return false;
    bytes = number << shift->second;
    return true;
}

/// The cache folder a write-back mount uses when none is given: one per source and prefix, so
/// that the next mount of the same data finds what a crash left behind.
inline std::string default_cache_dir(const mount_request& r) {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    std::filesystem::path base = xdg && *xdg     ? std::filesystem::path(xdg)
                                 : home && *home ? std::filesystem::path(home) / ".cache"
                                                 : std::filesystem::path("/var/cache");
    const std::size_t h = std::hash<std::string>{}(r.source + '\n' + r.prefix);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016zx", h);
    return (base / "skyvol" / hex).string();
}

/// Checks one request without changing anything; fills `mount` and `folder`. Empty if fine.
inline std::string validate(mount_request& r) {
    const std::string who = r.label.empty() ? std::string() : r.label + ": ";
    if (r.source.empty()) return who + "no source URI given";
    if (r.path.empty()) return who + "no mount point given";
    std::string why;
    std::error_code ec;
    const store_uri uri = parse_store_uri(r.source, why, ec);
    if (ec) return who + why;
    if (uri.scheme == "file") {
        r.folder = local_store::folder_of(r.source, why, ec);
        if (ec) return who + why;
        std::error_code fec;
        if (!std::filesystem::is_directory(r.folder, fec))
            return who + "bucket folder '" + r.folder + "' does not exist or is not a folder";
        if (!r.endpoint.empty())
            return who + "--endpoint applies to object-store URIs, not file://";
    } else if (is_s3_uri(r.source)) {
        const s3_location where = parse_s3_uri(r.source, why, ec);
        if (ec) return who + why;
        if (!where.prefix.empty() && !r.prefix.empty())
            return who + "give the prefix in the URI or with --prefix, not both";
        r.bucket = where.bucket;
        if (!where.prefix.empty()) r.prefix = where.prefix;
        if (!r.endpoint.empty()) {
            std::error_code uec;
            http::parse_url(r.endpoint, uec);
            if (uec) return who + "endpoint '" + r.endpoint + "' is not an http(s) URL";
        }
        s3_options o;
        o.endpoint = r.endpoint;
        options_for(where, o, why, ec); // R2's account, OCI's namespace
        if (ec) return who + why;
    } else {
        return who + "unsupported URI scheme '" + uri.scheme +
               "://' (file:///folder, s3://bucket/prefix, r2://bucket, gs://bucket, "
               "cos://region/bucket and oci://bucket@region are supported)";
    }
    if (!r.prefix.empty() && validate_key(r.prefix + (r.prefix.ends_with('/') ? "" : "/")))
        return who + "prefix '" + r.prefix + "' is not a valid object key prefix";
    for (const std::string& o : r.option_strings) {
        std::string bad;
        fuse::parse_mount_options(o, r.mount, bad, ec);
        if (ec) return who + "unknown or malformed mount option '" + bad + "'";
    }
    if (r.mount.read_only &&
        (r.mode == mode_name::write_through || r.mode == mode_name::write_back))
        return who + "option 'ro' contradicts mode '" + std::string(to_string(r.mode)) +
               "'; use --mode read-only";
    r.mount.source = r.source;
    if (r.cache_size && r.mode != mode_name::write_back)
        return who + "a cache size applies to mode mount-cached, not '" +
               std::string(to_string(r.mode)) + "'";
    if (r.mode == mode_name::write_back && r.cache_dir.empty()) r.cache_dir = default_cache_dir(r);
    std::string absolute;
    ec = fuse::check_mount_point(r.path, r.mount.nonempty, absolute);
    if (ec) return who + fuse::mount_point_problem(ec, r.path);
    r.path = absolute;
    return {};
}

/// Reads a spec file: `{"mounts": [{"path", "source", "mode", "read_only", "prefix",
/// "cache_dir", "endpoint", "listing_heads", "options"}...]}` or the bare array. Empty `error`
/// if fine.
inline std::vector<mount_request> read_spec(const std::string& file, std::string& error) {
    std::vector<mount_request> out;
    std::ifstream in(file);
    if (!in) {
        error = "cannot read spec file '" + file + "'";
        return out;
    }
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code jec;
    const boost::json::value doc = boost::json::parse(text.str(), jec);
    if (jec) {
        error = "spec file '" + file + "' is not valid JSON: " + jec.message();
        return out;
    }
    if (const auto twice = detail::scan_json_keys(text.str()).duplicate) {
        error = "spec file '" + file + "' gives '" + *twice +
                "' twice; a key may appear once in an object";
        return out;
    }
    const boost::json::array* mounts = doc.if_array();
    if (!mounts && doc.is_object())
        if (auto* m = doc.as_object().if_contains("mounts")) mounts = m->if_array();
    if (!mounts) {
        error = "spec file '" + file + "' must hold an array of mounts, or {\"mounts\": [...]}";
        return out;
    }
    std::set<std::string> paths;
    std::size_t index = 0;
    for (const boost::json::value& item : *mounts) {
        ++index;
        mount_request r;
        r.label = "mount " + std::to_string(index);
        const boost::json::object* o = item.if_object();
        if (!o) {
            error = r.label + ": must be an object";
            return {};
        }
        if (auto* p = o->if_contains("path"); p && p->is_string())
            r.label += " (" + std::string(p->as_string()) + ")";
        auto text_of = [&](const char* key, std::string& into) {
            const boost::json::value* v = o->if_contains(key);
            if (!v) return true;
            if (!v->is_string()) {
                error = r.label + ": '" + key + "' must be a string";
                return false;
            }
            into = std::string(v->as_string());
            return true;
        };
        for (const auto& kv : *o) {
            static const std::set<std::string> known = {
                "path",      "source",   "mode",          "read_only", "prefix",
                "cache_dir", "endpoint", "listing_heads", "options",   "cache_size"};
            if (!known.count(std::string(kv.key()))) {
                error = r.label + ": unknown key '" + std::string(kv.key()) + "'";
                return {};
            }
        }
        std::string mode_text;
        if (!text_of("path", r.path) || !text_of("source", r.source) ||
            !text_of("mode", mode_text) || !text_of("prefix", r.prefix) ||
            !text_of("cache_dir", r.cache_dir) || !text_of("endpoint", r.endpoint))
            return {};
        if (auto* v = o->if_contains("listing_heads")) {
            if (!v->is_int64() || v->as_int64() < 0 || v->as_int64() > max_listing_heads) {
                error = r.label + ": 'listing_heads' must be a number from 0 to " +
                        std::to_string(max_listing_heads);
                return {};
            }
            r.listing_heads = static_cast<std::size_t>(v->as_int64());
        }
        if (auto* v = o->if_contains("cache_size")) {
            std::uint64_t bytes = 0;
            if (!(v->is_string() && parse_byte_size(v->as_string(), bytes)) &&
                !(v->is_int64() && v->as_int64() > 0 &&
                  parse_byte_size(std::to_string(v->as_int64()), bytes))) {
                error = r.label + ": 'cache_size' must be a size such as \"20G\" or \"512M\"";
                return {};
            }
            r.cache_size = bytes;
        }
        bool read_only = false;
        if (auto* v = o->if_contains("read_only")) {
            if (!v->is_bool()) {
                error = r.label + ": 'read_only' must be true or false";
                return {};
            }
            read_only = v->as_bool();
        }
        if (mode_text.empty())
            r.mode = read_only ? mode_name::read_only : mode_name::write_through;
        else if (!parse_mode(mode_text, r.mode)) {
            error = r.label + ": unknown mode '" + mode_text +
                    "' (read-only, mount, copy or mount-cached)";
            return {};
        }
        if (read_only && (r.mode == mode_name::write_through || r.mode == mode_name::write_back)) {
            error = r.label + ": read_only is true but mode '" + std::string(to_string(r.mode)) +
                    "' writes to the bucket";
            return {};
        }
        if (auto* v = o->if_contains("options")) {
            if (v->is_string()) {
                r.option_strings.emplace_back(v->as_string());
            } else if (v->is_array()) {
                for (const auto& each : v->as_array()) {
                    if (!each.is_string()) {
                        error = r.label + ": 'options' must hold strings";
                        return {};
                    }
                    r.option_strings.emplace_back(each.as_string());
                }
            } else {
                error = r.label + ": 'options' must be a string or an array of strings";
                return {};
            }
        }
        if (std::string problem = validate(r); !problem.empty()) {
            error = problem;
            return {};
        }
        if (!paths.insert(r.path).second) {
            error = r.label + ": mount point '" + r.path + "' appears twice";
            return {};
        }
        out.push_back(std::move(r));
    }
    if (out.empty()) error = "spec file '" + file + "' lists no mounts";
    return out;
}

} // namespace skyvol::tool

#endif
