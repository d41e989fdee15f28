#ifndef SKYVOL_DETAIL_BUFFER_POOL_HPP
#define SKYVOL_DETAIL_BUFFER_POOL_HPP

/// @file
/// Large transfer buffers, mapped for themselves and reused. A fresh mapping costs a page fault
/// and a zeroed page per 4 KiB on first touch, which at hundreds of MB/s is a third of a
/// reader's CPU; a pool keeps a few recently freed buffers instead.

#include <sys/mman.h>

#include <cstddef>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace skyvol::detail {

/// A buffer mapped for itself: freed pages go back to the system at once, where malloc would
/// keep multi-MiB blocks in its arenas after the first one is freed (glibc raises its mmap
/// threshold), and a reader's peak memory would outlive the read.
class mapped_buffer {
public:
    mapped_buffer() noexcept = default;
    explicit mapped_buffer(std::size_t capacity)
        : capacity_(capacity) {
        if (capacity_ == 0) return;
        void* p =
            ::mmap(nullptr, capacity_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        data_ = static_cast<char*>(p);
    }
    mapped_buffer(mapped_buffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr))
        , capacity_(std::exchange(other.capacity_, 0)) {}
    mapped_buffer& operator=(mapped_buffer&& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(capacity_, other.capacity_);
        return *this;
    }
    ~mapped_buffer() {
        if (data_) ::munmap(data_, capacity_);
    }
    char* data() const noexcept { return data_; }
    std::size_t capacity() const noexcept { return capacity_; }

private:
    char* data_ = nullptr;
    std::size_t capacity_ = 0;
};

/// Recently freed buffers, by size class (powers of two from 64 KiB), up to `keep_idle` bytes.
/// Thread-safe.
class buffer_pool {
public:
    explicit buffer_pool(std::size_t keep_idle) noexcept
        : keep_idle_(keep_idle) {}

    /// A buffer of at least `n` bytes; its content is whatever it held before.
    mapped_buffer acquire(std::size_t n) {
        const std::size_t capacity = size_class(n);
        {
            std::lock_guard lock(mutex_);
            for (auto it = idle_.begin(); it != idle_.end(); ++it)
                if (it->capacity() == capacity) {
                    mapped_buffer b = std::move(*it);
                    *it = std::move(idle_.back());
                    idle_.pop_back();
                    idle_bytes_ -= capacity;
                    return b;
                }
        }
        return mapped_buffer(capacity);
    }

    /// Keeps `b` for a later `acquire`, or unmaps it if the pool holds enough already.
    void recycle(mapped_buffer b) {
        if (!b.data()) return;
        std::lock_guard lock(mutex_);
        if (idle_bytes_ + b.capacity() > keep_idle_) return; // unmapped as `b` goes
        idle_bytes_ += b.capacity();
        idle_.push_back(std::move(b));
    }

private:
    static std::size_t size_class(std::size_t n) noexcept {
        std::size_t c = std::size_t{64} << 10;
        while (c < n)
            c *= 2;
        return c;
    }

    std::mutex mutex_;
    std::vector<mapped_buffer> idle_;
    std::size_t idle_bytes_ = 0;
    std::size_t keep_idle_;
};

} // namespace skyvol::detail

#endif
