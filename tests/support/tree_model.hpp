#ifndef SKYVOL_TESTS_SUPPORT_TREE_MODEL_HPP
#define SKYVOL_TESTS_SUPPORT_TREE_MODEL_HPP

// An in-memory model of a POSIX-like tree, for randomised tests of volumes and mounts.

#include <skyvol/error.hpp>
#include <skyvol/fs/path.hpp>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace skyvol::test {

/// The model: path -> content for files, nullopt for directories. The root is implicit.
class tree_model {
public:
    bool exists(const std::string& p) const { return p.empty() || nodes_.count(p); }
    bool is_dir(const std::string& p) const {
        if (p.empty()) return true;
        auto it = nodes_.find(p);
        return it != nodes_.end() && !it->second;
    }
    bool is_file(const std::string& p) const {
        auto it = nodes_.find(p);
        return it != nodes_.end() && it->second.has_value();
    }
    const std::string& content(const std::string& p) const { return *nodes_.at(p); }
    std::vector<std::pair<std::string, bool>> children(const std::string& dir) const {
        std::vector<std::pair<std::string, bool>> out;
        for (const auto& [p, c] : nodes_)
            if (std::string(parent_of(p)) == dir) out.emplace_back(std::string(name_of(p)), !c);
        return out;
    }

    /// What the volume checks before creating or opening `p` for writing.
    std::error_code writable(const std::string& p, bool create) const {
        const std::string parent(parent_of(p));
        if (!exists(parent)) return errc::not_found;
        if (!is_dir(parent)) return errc::not_a_directory;
        if (is_dir(p)) return errc::is_a_directory;
        if (!create && !exists(p)) return errc::not_found;
        return {};
    }

    std::error_code write(const std::string& p, std::string data) {
        if (auto ec = writable(p, true)) return ec;
        nodes_[p] = std::move(data);
        return {};
    }
    std::error_code append(const std::string& p, const std::string& data) {
        if (auto ec = writable(p, true)) return ec;
        auto& c = nodes_[p];
        if (!c) c = std::string();
        *c += data;
        return {};
    }
    std::error_code write_at(const std::string& p, std::size_t offset, const std::string& data) {
        if (auto ec = writable(p, false)) return ec;
        std::string& c = *nodes_[p];
        if (c.size() < offset + data.size()) c.resize(offset + data.size(), '\0');
        c.replace(offset, data.size(), data);
        return {};
    }
    std::error_code resize(const std::string& p, std::size_t size) {
        if (auto ec = writable(p, false)) return ec;
        nodes_[p]->resize(size, '\0');
        return {};
    }
    std::error_code mkdir(const std::string& p) {
        if (exists(p)) return errc::already_exists;
        const std::string parent(parent_of(p));
        if (!exists(parent)) return errc::not_found;
        if (!is_dir(parent)) return errc::not_a_directory;
        nodes_[p] = std::nullopt;
        return {};
    }
    std::error_code mkdirs(const std::string& p) {
        if (p.empty()) return {};
        if (exists(p)) return is_dir(p) ? std::error_code{} : std::error_code(errc::already_exists);
        if (auto ec = mkdirs(std::string(parent_of(p)))) return ec;
        nodes_[p] = std::nullopt;
        return {};
    }
    std::error_code remove(const std::string& p) {
        if (!exists(p)) return errc::not_found;
        if (is_dir(p) && !children(p).empty()) return errc::not_empty;
        nodes_.erase(p);
        return {};
    }
    std::error_code rename(const std::string& from, const std::string& to) {
        if (from == to) return {};
        if (is_within(to, from)) return errc::invalid_argument;
        if (!exists(from)) return errc::not_found;
        const std::string parent(parent_of(to));
        if (!exists(parent)) return errc::not_found;
        if (!is_dir(parent)) return errc::not_a_directory;
        if (!is_dir(from)) {
            if (is_dir(to)) return errc::is_a_directory;
            nodes_[to] = nodes_[from];
            nodes_.erase(from);
            return {};
        }
        if (exists(to)) {
            if (!is_dir(to)) return errc::not_a_directory;
            if (!children(to).empty()) return errc::not_empty;
            nodes_.erase(to);
        }
        std::map<std::string, std::optional<std::string>> moved;
        for (auto it = nodes_.begin(); it != nodes_.end();) {
            if (is_within(it->first, from)) {
                moved[to + it->first.substr(from.size())] = it->second;
                it = nodes_.erase(it);
            } else {
                ++it;
            }
        }
        nodes_.merge(moved);
        return {};
    }

    const std::map<std::string, std::optional<std::string>>& nodes() const { return nodes_; }

private:
    std::map<std::string, std::optional<std::string>> nodes_;
};

/// Random paths over a small name space, so that operations collide (three names, three levels
/// deep), and small random contents.
class random_operations {
public:
    explicit random_operations(unsigned seed)
        : rng_(seed) {}
    int pick(int n) { return static_cast<int>(rng_() % static_cast<unsigned>(n)); }
    std::string path() {
        static const char* names[] = {"a", "b", "c"};
        std::string p = names[pick(3)];
        for (int depth = pick(3); depth > 0; --depth)
            p += std::string("/") + names[pick(3)];
        return p;
    }
    std::string data() {
        std::string d(static_cast<std::size_t>(pick(4) == 0 ? 0 : pick(300)), '\0');
        for (auto& c : d)
            c = static_cast<char>('a' + pick(26));
        return d;
    }

private:
    std::mt19937 rng_;
};

} // namespace skyvol::test

#endif
