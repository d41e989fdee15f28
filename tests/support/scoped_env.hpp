#ifndef SKYVOL_TESTS_SUPPORT_SCOPED_ENV_HPP
#define SKYVOL_TESTS_SUPPORT_SCOPED_ENV_HPP

// Environment variables set for one test, with the old values put back when it ends.

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

namespace skyvol::test {

class scoped_env {
public:
    scoped_env() = default;
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    ~scoped_env() {
        for (const auto& [name, value] : saved_)
            if (value)
                ::setenv(name.c_str(), value->c_str(), 1);
            else
                ::unsetenv(name.c_str());
    }

    /// Sets `name` to `value`; a null `value` unsets it.
    void set(const std::string& name, const char* value) {
        if (!saved_.count(name)) {
            const char* old = std::getenv(name.c_str());
            saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
        }
        if (value)
            ::setenv(name.c_str(), value, 1);
        else
            ::unsetenv(name.c_str());
    }
    void set(const std::string& name, const std::string& value) { set(name, value.c_str()); }

private:
    std::map<std::string, std::optional<std::string>> saved_;
};

} // namespace skyvol::test

#endif
