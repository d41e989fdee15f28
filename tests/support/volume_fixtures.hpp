#ifndef SKYVOL_TESTS_SUPPORT_VOLUME_FIXTURES_HPP
#define SKYVOL_TESTS_SUPPORT_VOLUME_FIXTURES_HPP

// Buckets and volumes for the file layer's tests, and helpers to look at a bucket directly.

#include "temp_dir.hpp"

#include <skyvol/store/local_store.hpp>
#include <skyvol/store/memory_store.hpp>
#include <skyvol/volume.hpp>

#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace skyvol::test {
// Private to each test file: store_conformance.hpp has a `pattern` of its own.
namespace {

/// Holds the next `op` ("get", "put", ...) of `key` on a memory store, once armed, until
/// released; the store thread that runs it waits. A minute at most: a failed check unwinds the
/// volume (which waits for its store threads) before this object, which releases it too.
class held_operation {
public:
    held_operation(std::string op, std::string key, bool armed = true)
        : op_(std::move(op))
        , key_(std::move(key))
        , armed_(armed)
        , released_(release_.get_future().share()) {}
    held_operation(const held_operation&) = delete;
    held_operation& operator=(const held_operation&) = delete;
    ~held_operation() { release(); }

    /// Options whose fault hook holds the operation; they refer to this object.
    memory_store_options options() {
        memory_store_options o;
        o.fault = [this](std::string_view op, std::string_view key) -> std::error_code {
            if (op == op_ && key == key_ && armed_.exchange(false)) {
                started_.set_value();
                released_.wait_for(std::chrono::minutes(1));
            }
            return {};
        };
        return o;
    }
    void arm() { armed_ = true; }
    /// Whether the held operation started within `limit`.
    bool started(std::chrono::seconds limit = std::chrono::seconds(20)) {
        return started_future_.wait_for(limit) == std::future_status::ready;
    }
    void release() {
        if (!released_once_.exchange(true)) release_.set_value();
    }

private:
    std::string op_, key_;
    std::atomic<bool> armed_;
    std::promise<void> started_, release_;
    std::future<void> started_future_ = started_.get_future();
    std::shared_future<void> released_;
    std::atomic<bool> released_once_{false};
};

/// Store fixtures: a fresh, empty bucket; `reopen()` gives a handle on the same bucket.
struct memory_bucket {
    using store_type = memory_store;
    memory_store store;
    memory_store reopen() { return store; }
};

struct local_bucket {
    using store_type = local_store;
    temp_dir dir{"skyvol-vol"};
    local_store store{dir.path() / "bucket", scratch()};
    local_store reopen() { return local_store(dir.path() / "bucket", scratch()); }
    static local_store_options scratch() {
        local_store_options o;
        o.durable = false; // these tests do not pull the plug; the crash test does, with fsync
        return o;
    }
};

template <class Bucket, class Mode>
struct setup {
    using bucket_type = Bucket;
    using mode_type = Mode;
    using volume_type = volume<typename Bucket::store_type, Mode>;
    Bucket bucket;
    temp_dir cache{"skyvol-cache"};
    std::unique_ptr<volume_type> vol;
    explicit setup(std::string prefix = "vol/") {
        volume_options o;
        o.prefix = std::move(prefix);
        o.cache_dir = cache.path();
        vol = std::make_unique<volume_type>(bucket.store, o);
    }
};

using writable_setups =
    std::tuple<setup<memory_bucket, mode::write_through>, setup<local_bucket, mode::write_through>,
               setup<memory_bucket, mode::write_back>, setup<local_bucket, mode::write_back>>;

inline std::string pattern(std::size_t size, unsigned seed) {
    std::string out(size, '\0');
    unsigned x = seed * 2654435761u + 1;
    for (auto& c : out) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        c = static_cast<char>(x);
    }
    return out;
}

template <class Store>
void put_object(Store& store, const std::string& key, const std::string& body) {
    store.async_put(key, boost::asio::buffer(body), put_options(), boost::asio::use_future).get();
}

template <class Store>
std::string object_text(Store& store, const std::string& key) {
    auto info = store.async_head(key, boost::asio::use_future).get();
    std::string out(info.size, '\0');
    store.async_get(key, 0, boost::asio::buffer(out), boost::asio::use_future).get();
    return out;
}

inline std::vector<std::string> names(const std::vector<directory_entry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries)
        out.emplace_back(e.filename());
    return out;
}

} // namespace
} // namespace skyvol::test

#endif
