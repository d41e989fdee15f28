#ifndef SKYVOL_FILE_HPP
#define SKYVOL_FILE_HPP

/// @file
/// `skyvol::file`: an open file of a volume, for reads at a position and, in writable modes,
/// writes into a local staging copy that becomes the object when the file is closed or synced.
/// Close reports the upload's error; the destructor closes too but can only swallow it.

#include <skyvol/detail/async.hpp>
#include <skyvol/error.hpp>
#include <skyvol/fs/status.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace skyvol {

/// How to open a file. Combine with `|`: `open_mode::write | open_mode::exclusive`.
enum class open_mode : unsigned {
    read = 1u << 0,
    write_access = 1u << 1,
    create = 1u << 2,
    truncate = 1u << 3,
    append_bit = 1u << 4,
    exclusive = (1u << 5) | (1u << 2),
    /// Write from the start: created if missing, emptied if present (fopen "w").
    write = (1u << 1) | (1u << 2) | (1u << 3),
    /// Write at the end: created if missing, content kept (fopen "a").
    append = (1u << 1) | (1u << 2) | (1u << 4),
    /// Read and write in place; the file must exist (fopen "r+").
    read_write = (1u << 0) | (1u << 1),
};

constexpr open_mode operator|(open_mode a, open_mode b) noexcept {
    return static_cast<open_mode>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr bool has(open_mode set, open_mode flag) noexcept {
    return (static_cast<unsigned>(set) & static_cast<unsigned>(flag)) ==
           static_cast<unsigned>(flag);
}

namespace detail {
/// What a volume implements behind a `file`.
class file_impl {
public:
    virtual ~file_impl() = default;
    virtual std::size_t read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer,
                                std::error_code& ec) = 0;
    virtual std::size_t write_at(std::uint64_t offset, boost::asio::const_buffer data,
                                 std::error_code& ec) = 0;
    virtual std::uint64_t size() const = 0;
    virtual file_status status() const = 0;
    virtual void resize(std::uint64_t size, std::error_code& ec) = 0;
    virtual void sync(std::error_code& ec) = 0;
    virtual void close(std::error_code& ec) = 0;
    virtual bool appends() const = 0;
    virtual error_context where() const = 0;

    // The asynchronous forms complete the handler as detail/async.hpp does: on its associated
    // executor (the volume's if it has none), never inside the call.
    using done_handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;
    using read_handler =
        boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
    virtual void async_read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer,
                               read_handler done) = 0;
    virtual void async_sync(done_handler done) = 0;
    virtual void async_close(done_handler done) = 0;
};
} // namespace detail

class file {
public:
    file() = default;
    explicit file(std::shared_ptr<detail::file_impl> impl)
        : impl_(std::move(impl)) {}
    file(file&&) noexcept = default;
    file& operator=(file&& other) noexcept {
        if (this != &other) {
            close_quietly();
            impl_ = std::move(other.impl_);
            position_ = other.position_;
        }
        return *this;
    }
    ~file() { close_quietly(); }

    bool is_open() const noexcept { return impl_ != nullptr; }
    std::uint64_t size() const { return impl_ ? impl_->size() : 0; }
    /// What stat shows of this file now: a writer's staged size, owner and permissions; a
    /// reader's status when it was opened. Not found if the file is not open.
    file_status status() const { return impl_ ? impl_->status() : file_status{}; }
    std::uint64_t tell() const noexcept { return position_; }
    void seek(std::uint64_t position) noexcept { position_ = position; }

    /// Writes at the current position (at the end in append mode) and advances it.
    std::size_t write(boost::asio::const_buffer data, std::error_code& ec) {
        if (!check_open(ec)) return 0;
        if (impl_->appends()) position_ = impl_->size();
        const std::size_t n = impl_->write_at(position_, data, ec);
        position_ += n;
        return n;
    }
    std::size_t write(boost::asio::const_buffer data) {
        std::error_code ec;
        const std::size_t n = write(data, ec);
        detail::throw_if(ec, where());
        return n;
    }
    std::size_t write(std::string_view text) { return write(boost::asio::buffer(text)); }

    /// Reads at the current position and advances it; 0 at the end.
    std::size_t read(boost::asio::mutable_buffer buffer, std::error_code& ec) {
        if (!check_open(ec)) return 0;
        const std::size_t n = impl_->read_at(position_, buffer, ec);
        position_ += n;
        return n;
    }
    std::size_t read(boost::asio::mutable_buffer buffer) {
        std::error_code ec;
        const std::size_t n = read(buffer, ec);
        detail::throw_if(ec, where());
        return n;
    }

    std::size_t write_at(std::uint64_t offset, boost::asio::const_buffer data,
                         std::error_code& ec) {
        return check_open(ec) ? impl_->write_at(offset, data, ec) : 0;
    }
    std::size_t read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer,
                        std::error_code& ec) {
        return check_open(ec) ? impl_->read_at(offset, buffer, ec) : 0;
    }
    std::size_t read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer) {
        std::error_code ec;
        const std::size_t n = read_at(offset, buffer, ec);
        detail::throw_if(ec, where());
        return n;
    }

    /// Truncates or extends (with zeros) the staged content.
    void resize(std::uint64_t size, std::error_code& ec) {
        if (check_open(ec)) impl_->resize(size, ec);
    }
    void resize(std::uint64_t size) {
        std::error_code ec;
        resize(size, ec);
        detail::throw_if(ec, where());
    }

    /// fsync: what was written so far goes to the bucket (write_through) or the durable
    /// journal (write_back) now; the file stays open.
    void sync(std::error_code& ec) {
        if (check_open(ec)) impl_->sync(ec);
    }
    void sync() {
        std::error_code ec;
        sync(ec);
        detail::throw_if(ec, where());
    }

    /// Commits what was written and releases the file; the upload's error comes back here.
    void close(std::error_code& ec) {
        if (!check_open(ec)) return;
        auto impl = std::move(impl_);
        impl->close(ec);
    }
    void close() {
        const auto context = impl_ ? impl_->where() : error_context{};
        std::error_code ec;
        close(ec);
        detail::throw_if(ec, context);
    }

    // ---- asynchronous forms: any completion token, for callers that must not block -----------

    /// Reads at `offset` without waiting (reads of a writer's staging copy complete at once).
    template <class CompletionToken>
    auto async_read_at(std::uint64_t offset, boost::asio::mutable_buffer buffer,
                       CompletionToken&& token) {
        return start<void(boost::system::error_code, std::size_t)>(
            std::forward<CompletionToken>(token), [offset, buffer](auto& impl, auto done) {
                impl.async_read_at(offset, buffer, std::move(done));
            });
    }
    /// `sync()` without waiting.
    template <class CompletionToken>
    auto async_sync(CompletionToken&& token) {
        return start<void(boost::system::error_code)>(
            std::forward<CompletionToken>(token),
            [](auto& impl, auto done) { impl.async_sync(std::move(done)); });
    }
    /// `close()` without waiting: the file is released at once, the upload's error comes to
    /// the handler.
    template <class CompletionToken>
    auto async_close(CompletionToken&& token) {
        auto closing = std::move(impl_);
        return start<void(boost::system::error_code)>(
            std::forward<CompletionToken>(token),
            [](auto& impl, auto done) { impl.async_close(std::move(done)); }, std::move(closing));
    }

    /// Where the file lives, for messages: store, bucket and key.
    error_context where() const { return impl_ ? impl_->where() : error_context{}; }

private:
    /// Starts `begin(impl, handler)` on `target` (this file's implementation unless given);
    /// a closed file completes with `bad_file_descriptor`.
    template <class Signature, class CompletionToken, class Begin>
    auto start(CompletionToken&& token, Begin begin,
               std::shared_ptr<detail::file_impl> target = {}) {
        if (!target) target = impl_;
        return boost::asio::async_initiate<CompletionToken, Signature>(
            [](auto handler, Begin begin_op, std::shared_ptr<detail::file_impl> impl) {
                if (impl) return begin_op(*impl, std::move(handler));
                const detail::asio_error_code closed(
                    std::make_error_code(std::errc::bad_file_descriptor));
                if constexpr (std::is_same_v<Signature, void(detail::asio_error_code)>)
                    detail::async_complete<Signature>(boost::asio::system_executor(),
                                                      std::move(handler), closed);
                else
                    detail::async_complete<Signature>(boost::asio::system_executor(),
                                                      std::move(handler), closed, std::size_t{0});
            },
            token, std::move(begin), std::move(target));
    }
    bool check_open(std::error_code& ec) const {
        ec.clear();
        if (!impl_) ec = std::make_error_code(std::errc::bad_file_descriptor);
        return impl_ != nullptr;
    }
    void close_quietly() noexcept {
        if (!impl_) return;
        std::error_code ignored;
        close(ignored);
    }

    std::shared_ptr<detail::file_impl> impl_;
    std::uint64_t position_ = 0;
};

} // namespace skyvol

#endif
