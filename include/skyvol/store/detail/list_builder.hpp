#ifndef SKYVOL_STORE_DETAIL_LIST_BUILDER_HPP
#define SKYVOL_STORE_DETAIL_LIST_BUILDER_HPP

/// @file
/// ListObjects paging shared by the embedded stores: they feed keys in ascending byte order and
/// this folds them into objects and common prefixes, cuts the page and writes the continuation
/// token, exactly as S3 does.

#include <skyvol/error.hpp>
#include <skyvol/store/object_info.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace skyvol::detail {

class list_builder {
public:
    enum class verdict {
        skip,    ///< before the resume point, outside the prefix, or folded into the last prefix
        taken,   ///< added to the page
        full,    ///< the page is full: stop feeding
        descend, ///< (subtrees only) the walker must look inside
    };

    /// `ec` is set to invalid_argument if the continuation token is not one of ours.
    list_builder(const list_request& request, std::error_code& ec)
        : request_(request) {
        if (request_.max_keys == 0 || request_.max_keys > 1000) request_.max_keys = 1000;
        const std::string& token = request_.continuation_token;
        if (!token.empty()) {
            if (token.size() < 2 || (token[0] != 'o' && token[0] != 'p')) {
                ec = errc::invalid_argument;
                return;
            }
            resume_ = token.substr(1);
            resume_is_prefix_ = token[0] == 'p';
        } else {
            resume_ = request_.start_after;
        }
    }

    const std::string& prefix() const noexcept { return request_.prefix; }

    /// Offers one key; `make_info()` is called only if the key becomes an object of the page.
    template <class MakeInfo>
    verdict offer(std::string_view key, MakeInfo&& make_info) {
        if (!key.starts_with(request_.prefix) || before_resume(key)) return verdict::skip;
        if (auto cp = rollup(key); !cp.empty()) return add_prefix(cp);
        if (page_.objects.size() + page_.common_prefixes.size() >= request_.max_keys) return stop();
        page_.objects.push_back(make_info());
        last_ = 'o' + std::string(key);
        return verdict::taken;
    }

    /// Offers a whole subtree: every key starting with `dir` (which ends with '/'), known to hold
    /// at least one key. Saves walking it when it folds into one common prefix.
    verdict offer_subtree(std::string_view dir) {
        const std::string& prefix = request_.prefix;
        if (!dir.starts_with(prefix))
            return prefix.starts_with(dir) ? verdict::descend : verdict::skip;
        if (!resume_.empty()) {
            if (resume_is_prefix_ && dir.starts_with(resume_)) return verdict::skip;
            if (std::string_view(resume_).starts_with(dir)) return verdict::descend;
            if (dir < std::string_view(resume_)) return verdict::skip;
        }
        const auto cp = rollup(dir);
        return cp.empty() ? verdict::descend : add_prefix(cp);
    }

    /// The finished page; call once.
    list_page finish() && { return std::move(page_); }

private:
    bool before_resume(std::string_view key) const {
        if (resume_.empty()) return false;
        if (resume_is_prefix_ && key.starts_with(resume_)) return true;
        return key <= std::string_view(resume_);
    }

    std::string_view rollup(std::string_view key) const {
        const std::string& d = request_.delimiter;
        if (d.empty()) return {};
        const auto pos = key.find(d, request_.prefix.size());
        return pos == std::string_view::npos ? std::string_view{} : key.substr(0, pos + d.size());
    }

    verdict add_prefix(std::string_view cp) {
        if (!page_.common_prefixes.empty() && page_.common_prefixes.back() == cp)
            return verdict::skip;
        if (page_.objects.size() + page_.common_prefixes.size() >= request_.max_keys) return stop();
        page_.common_prefixes.emplace_back(cp);
        last_ = 'p' + std::string(cp);
        return verdict::taken;
    }

    verdict stop() {
        page_.next_continuation_token = last_;
        return verdict::full;
    }

    list_request request_;
    std::string resume_;
    bool resume_is_prefix_ = false;
    std::string last_;
    list_page page_;
};

} // namespace skyvol::detail

#endif
