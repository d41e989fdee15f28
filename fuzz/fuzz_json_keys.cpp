// Duplicate JSON keys: scan_json_keys must report one exactly when Boost.JSON's parse of the same
// text drops a member (it keeps the last of equal keys), and count the members the text has.
#include <skyvol/detail/json_duplicates.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

std::size_t members(const boost::json::value& v) {
    std::size_t n = 0;
    if (const auto* o = v.if_object())
        for (const auto& kv : *o)
            n += 1 + members(kv.value());
    else if (const auto* a = v.if_array())
        for (const auto& each : *a)
            n += members(each);
    return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const skyvol::detail::json_key_scan scan = skyvol::detail::scan_json_keys(text);
    boost::system::error_code ec;
    const boost::json::value doc = boost::json::parse(text, ec);
    if (ec) return 0;
    const std::size_t kept = members(doc);
    require(kept <= scan.members);
    require((kept == scan.members) == !scan.duplicate.has_value());
    return 0;
}
