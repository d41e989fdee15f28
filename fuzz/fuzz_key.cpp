// Key validation and the local store's attribute encoding, under arbitrary bytes.
#include <skyvol/store/detail/local_files.hpp>
#include <skyvol/store/key.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void require(bool condition) {
    if (!condition) std::abort();
}

bool has_dot_dot_segment(std::string_view key) {
    for (std::size_t start = 0; start <= key.size();) {
        const std::size_t end = std::min(key.find('/', start), key.size());
        if (key.substr(start, end - start) == "..") return true;
        start = end + 1;
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);

    const bool valid = !skyvol::validate_key(input);
    if (valid) {
        require(!input.empty() && input.size() <= skyvol::max_key_length);
        require(input.front() != '/');
        require(input.find('\0') == std::string::npos);
        require(!has_dot_dot_segment(input));
        require(skyvol::is_valid_utf8(input));
    }
    // The local store only narrows the shared rules, never widens them.
    if (!skyvol::detail::validate_local_key(input)) {
        require(valid);
        require(input.find("//") == std::string::npos);
    }

    // Anything decode accepts must survive encode/decode unchanged.
    skyvol::detail::stored_attributes attrs;
    if (attrs.decode(input)) {
        skyvol::detail::stored_attributes again;
        require(again.decode(attrs.encode()));
        require(again.content_type == attrs.content_type && again.etag == attrs.etag &&
                again.metadata == attrs.metadata && again.marker == attrs.marker);
    }
    // And any text stored as metadata comes back as it went in.
    skyvol::detail::stored_attributes any;
    any.content_type = input;
    any.metadata[input] = input;
    skyvol::detail::stored_attributes back;
    require(back.decode(any.encode()));
    require(back.content_type == input && back.metadata.at(input) == input);
    return 0;
}
