// ListObjects paging: keys, prefix, delimiter and page size from the input; the pages joined
// must equal a listing computed directly from the definition.
//
// Input: first byte = page size (1..32); then newline-separated fields: prefix, delimiter,
// then one key per line.
#include "require.hpp"

#include <skyvol/store/detail/list_builder.hpp>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

using skyvol::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t page_size = data[0] % 32 + 1;
    std::vector<std::string> fields;
    std::string current;
    for (std::size_t i = 1; i < size; ++i) {
        if (data[i] == '\n')
            fields.push_back(std::move(current)), current.clear();
        else
            current += static_cast<char>(data[i]);
    }
    fields.push_back(current);
    if (fields.size() < 2) return 0;
    const std::string prefix = fields[0], delimiter = fields[1];
    std::set<std::string> keys(fields.begin() + 2, fields.end());
    keys.erase(""); // no store has an empty key

    if (keys.size() > 400) return 0;

    // The definition: every key under the prefix, folded at the first delimiter after it.
    std::vector<std::string> expected_objects;
    std::set<std::string> expected_prefixes;
    for (const auto& key : keys) {
        if (key.compare(0, prefix.size(), prefix) != 0) continue;
        const auto pos = delimiter.empty() ? std::string::npos : key.find(delimiter, prefix.size());
        if (pos == std::string::npos)
            expected_objects.push_back(key);
        else
            expected_prefixes.insert(key.substr(0, pos + delimiter.size()));
    }

    std::vector<std::string> objects, prefixes;
    skyvol::list_request request;
    request.prefix = prefix;
    request.delimiter = delimiter;
    request.max_keys = page_size;
    for (int pages = 0;; ++pages) {
        require(pages <= 1000);
        std::error_code ec;
        skyvol::detail::list_builder builder(request, ec);
        require(!ec);
        for (const auto& key : keys) // std::set: ascending byte order, as the stores feed it
            if (builder.offer(key, [&] { return skyvol::object_info{key, 0, {}, {}, {}, {}}; }) ==
                skyvol::detail::list_builder::verdict::full)
                break;
        skyvol::list_page page = std::move(builder).finish();
        require(page.objects.size() + page.common_prefixes.size() <= page_size);
        for (auto& o : page.objects)
            objects.push_back(o.key);
        for (auto& p : page.common_prefixes)
            prefixes.push_back(p);
        if (!page.truncated()) break;
        require(!page.objects.empty() || !page.common_prefixes.empty());
        request.continuation_token = page.next_continuation_token;
    }
    require(objects == expected_objects);
    require(prefixes ==
            std::vector<std::string>(expected_prefixes.begin(), expected_prefixes.end()));
    return 0;
}
