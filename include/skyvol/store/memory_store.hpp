#ifndef SKYVOL_STORE_MEMORY_STORE_HPP
#define SKYVOL_STORE_MEMORY_STORE_HPP

/// @file
/// `memory_store`: an object store held in memory, with S3's semantics (ETags, multipart limits,
/// listing order and paging). For tests of the file layer and for programs that want a scratch
/// bucket. Copies share one bucket; the bucket lives until the last copy goes. Operations run
/// on the completing handler's executor: they only copy memory.

#include <skyvol/detail/async.hpp>
#include <skyvol/detail/md5.hpp>
#include <skyvol/error.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/detail/list_builder.hpp>
#include <skyvol/store/detail/metadata.hpp>
#include <skyvol/store/key.hpp>
#include <skyvol/store/object_info.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_executor.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

namespace skyvol {

/// Settings of a `memory_store`.
struct memory_store_options {
    std::string name = "memory"; ///< the bucket name errors show
    /// Smallest non-final multipart part; lower it to test multipart logic with small data.
    std::uint64_t min_part_size = multipart_limits::min_part_size;
    /// How long each request takes, as a network round trip would: lets tests overlap requests.
    std::chrono::microseconds latency{0};
    /// Called as each request starts, with its operation ("put", "upload_part", ...) and key:
    /// a returned error fails the request as a server's would, and a throw leaves the initiating
    /// call, as a client's own fault would. For tests of what the layers above do with failures.
    std::function<std::error_code(std::string_view operation, std::string_view key)> fault{};
};

/// Requests a `memory_store` has served, by kind.
struct memory_store_requests {
    std::size_t head = 0, get = 0, list = 0;
    std::size_t put = 0;      ///< single PUTs (directory markers and symlinks among them)
    std::size_t complete = 0; ///< completed multipart uploads
    std::size_t copy = 0, remove = 0;
    /// Objects written whole: PUTs plus completed multipart uploads.
    std::size_t writes() const noexcept { return put + complete; }
};

class memory_store {
public:
    using executor_type = boost::asio::any_io_executor;

    using options = memory_store_options;

    /// Completes operations on `executor` unless the handler has its own.
    explicit memory_store(options opts = {},
                          executor_type executor = boost::asio::system_executor{})
        : state_(std::make_shared<state>(std::move(opts)))
        , executor_(std::move(executor)) {}

    executor_type get_executor() const { return executor_; }
    std::string_view store_name() const noexcept { return "memory"; }
    std::string_view bucket_name() const noexcept { return state_->opts.name; }

    /// Number of objects stored (test helper; no I/O).
    std::size_t size() const {
        std::lock_guard lock(state_->mutex);
        return state_->objects.size();
    }
    /// Number of multipart uploads started and neither completed nor aborted.
    std::size_t pending_uploads() const {
        std::lock_guard lock(state_->mutex);
        return state_->uploads.size();
    }

    /// Read requests served so far, by all copies (test helper).
    memory_store_requests requests() const {
        memory_store_requests r;
        r.head = state_->heads.load();
        r.get = state_->gets.load();
        r.list = state_->lists.load();
        r.put = state_->puts.load();
        r.complete = state_->completes.load();
        r.copy = state_->copies.load();
        r.remove = state_->removes.load();
        return r;
    }

    template <class CompletionToken>
    auto async_head(std::string key, CompletionToken&& token) {
        ++state_->heads;
        const std::error_code injected = inject("head", key);
        return run<void(detail::asio_error_code, object_info)>(
            injected, std::forward<CompletionToken>(token), [key = std::move(key)](state& s) {
                object_info info;
                std::lock_guard lock(s.mutex);
                auto ec = validate_key(key);
                if (!ec) {
                    auto it = s.objects.find(key);
                    if (it == s.objects.end())
                        ec = errc::not_found;
                    else
                        info = it->second.info;
                }
                return std::tuple(detail::asio_error_code(ec), std::move(info));
            });
    }

    template <class MutableBufferSequence, class CompletionToken>
    auto async_get(std::string key, std::uint64_t offset, const MutableBufferSequence& buffers,
                   CompletionToken&& token) {
        ++state_->gets;
        const std::error_code injected = inject("get", key);
        return run<void(detail::asio_error_code, std::size_t)>(
            injected, std::forward<CompletionToken>(token),
            [key = std::move(key), offset, buffers](state& s) {
                std::shared_ptr<const std::string> data;
                std::error_code ec = validate_key(key);
                if (!ec) {
                    std::lock_guard lock(s.mutex);
                    auto it = s.objects.find(key);
                    if (it == s.objects.end())
                        ec = errc::not_found;
                    else
                        data = it->second.data;
                }
                std::size_t copied = 0;
                if (data && offset < data->size())
                    copied = boost::asio::buffer_copy(
                        buffers, boost::asio::buffer(*data) + static_cast<std::size_t>(offset));
                return std::tuple(detail::asio_error_code(ec), copied);
            });
    }

    template <class ConstBufferSequence, class CompletionToken>
    auto async_put(std::string key, const ConstBufferSequence& data, put_options opts,
                   CompletionToken&& token) {
        ++state_->puts;
        auto bytes = std::make_shared<std::string>(boost::asio::buffer_size(data), '\0');
        boost::asio::buffer_copy(boost::asio::buffer(*bytes), data);
        const std::error_code injected = inject("put", key);
        return run<void(detail::asio_error_code, put_result)>(
            injected, std::forward<CompletionToken>(token),
            [key = std::move(key), bytes = std::move(bytes),
             opts = std::move(opts)](state& s) mutable {
                detail::md5 digest;
                digest.update(bytes->data(), bytes->size());
                std::string etag = detail::to_hex(digest.finish());
                if (bytes->size() > multipart_limits::max_part_size)
                    return std::tuple(detail::asio_error_code(errc::entity_too_large),
                                      put_result{});
                auto ec = s.store(key, std::move(bytes), std::move(opts), etag);
                return std::tuple(detail::asio_error_code(ec), put_result{ec ? "" : etag});
            });
    }

    template <class CompletionToken>
    auto async_list(list_request request, CompletionToken&& token) {
        ++state_->lists;
        const std::error_code injected = inject("list", request.prefix);
        return run<void(detail::asio_error_code, list_page)>(
            injected, std::forward<CompletionToken>(token),
            [request = std::move(request)](state& s) {
                std::error_code ec = validate_prefix(request.prefix);
                detail::list_builder builder(request, ec);
                if (ec) return std::tuple(detail::asio_error_code(ec), list_page{});
                std::lock_guard lock(s.mutex);
                for (auto it = s.objects.lower_bound(builder.prefix()); it != s.objects.end();
                     ++it) {
                    if (!it->first.starts_with(builder.prefix())) break;
                    auto v = builder.offer(it->first, [&] {
                        object_info info = it->second.info;
                        info.metadata.clear();
                        return info;
                    });
                    if (v == detail::list_builder::verdict::full) break;
                }
                return std::tuple(detail::asio_error_code{}, std::move(builder).finish());
            });
    }

    template <class CompletionToken>
    auto async_remove(std::string key, CompletionToken&& token) {
        ++state_->removes;
        const std::error_code injected = inject("remove", key);
        return run<void(detail::asio_error_code)>(
            injected, std::forward<CompletionToken>(token), [key = std::move(key)](state& s) {
                return std::tuple(detail::asio_error_code(s.remove(key)));
            });
    }

    template <class CompletionToken>
    auto async_remove_batch(std::vector<std::string> keys, CompletionToken&& token) {
        ++state_->removes;
        const std::error_code injected = inject(
            "remove_batch", keys.empty() ? std::string_view() : std::string_view(keys.front()));
        return run<void(detail::asio_error_code, std::vector<remove_failure>)>(
            injected, std::forward<CompletionToken>(token), [keys = std::move(keys)](state& s) {
                std::vector<remove_failure> failures;
                if (keys.size() > max_batch_remove)
                    return std::tuple(detail::asio_error_code(errc::invalid_argument),
                                      std::move(failures));
                for (const auto& key : keys)
                    if (auto ec = s.remove(key)) failures.push_back({key, ec});
                return std::tuple(detail::asio_error_code{}, std::move(failures));
            });
    }

    /// Server-side copy; `replace` set means "use these metadata instead of the source's".
    template <class CompletionToken>
    auto async_copy(std::string from, std::string to, std::optional<put_options> replace,
                    CompletionToken&& token) {
        ++state_->copies;
        const std::error_code injected = inject("copy", to);
        return run<void(detail::asio_error_code, put_result)>(
            injected, std::forward<CompletionToken>(token),
            [from = std::move(from), to = std::move(to), replace = std::move(replace)](state& s) {
                std::error_code ec = validate_key(from);
                std::shared_ptr<const std::string> data;
                put_options opts;
                std::string etag;
                if (!ec) {
                    std::lock_guard lock(s.mutex);
                    auto it = s.objects.find(from);
                    if (it == s.objects.end())
                        ec = errc::not_found;
                    else {
                        data = it->second.data;
                        etag = it->second.info.etag;
                        opts.content_type = it->second.info.content_type;
                        opts.metadata = it->second.info.metadata;
                    }
                }
                if (!ec && replace) opts = std::move(*replace);
                if (!ec) ec = s.store(to, std::move(data), std::move(opts), etag);
                return std::tuple(detail::asio_error_code(ec), put_result{ec ? "" : etag});
            });
    }

    template <class CompletionToken>
    auto async_create_multipart(std::string key, put_options opts, CompletionToken&& token) {
        const std::error_code injected = inject("create_multipart", key);
        return run<void(detail::asio_error_code, std::string)>(
            injected, std::forward<CompletionToken>(token),
            [key = std::move(key), opts = std::move(opts)](state& s) mutable {
                std::error_code ec = validate_key(key);
                if (!ec) ec = detail::normalize_metadata(opts.metadata);
                std::string id;
                if (!ec) {
                    std::lock_guard lock(s.mutex);
                    id = "mem-" + std::to_string(++s.next_upload);
                    s.uploads[id] = upload{key, std::move(opts), {}};
                }
                return std::tuple(detail::asio_error_code(ec), std::move(id));
            });
    }

    template <class ConstBufferSequence, class CompletionToken>
    auto async_upload_part(std::string key, std::string upload_id, int part_number,
                           const ConstBufferSequence& data, CompletionToken&& token) {
        auto bytes = std::make_shared<std::string>(boost::asio::buffer_size(data), '\0');
        boost::asio::buffer_copy(boost::asio::buffer(*bytes), data);
        const std::error_code injected = inject("upload_part", key);
        return run<void(detail::asio_error_code, completed_part)>(
            injected, std::forward<CompletionToken>(token),
            [key = std::move(key), id = std::move(upload_id), part_number,
             bytes = std::move(bytes)](state& s) {
                completed_part part{part_number, {}};
                std::error_code ec;
                if (part_number < 1 || part_number > multipart_limits::max_parts)
                    ec = errc::invalid_argument;
                else if (bytes->size() > multipart_limits::max_part_size)
                    ec = errc::entity_too_large;
                if (!ec) {
                    detail::md5 digest;
                    digest.update(bytes->data(), bytes->size());
                    part.etag = detail::to_hex(digest.finish());
                    std::lock_guard lock(s.mutex);
                    auto it = s.uploads.find(id);
                    if (it == s.uploads.end() || it->second.key != key)
                        ec = errc::invalid_upload;
                    else
                        it->second.parts[part_number] = {bytes, part.etag};
                }
                return std::tuple(detail::asio_error_code(ec), std::move(part));
            });
    }

    template <class CompletionToken>
    auto async_complete_multipart(std::string key, std::string upload_id,
                                  std::vector<completed_part> parts, CompletionToken&& token) {
        ++state_->completes;
        const std::error_code injected = inject("complete_multipart", key);
        return run<void(detail::asio_error_code, put_result)>(
            injected, std::forward<CompletionToken>(token),
            [key = std::move(key), id = std::move(upload_id), parts = std::move(parts)](state& s) {
                auto [ec, etag] = s.complete(key, id, parts);
                return std::tuple(detail::asio_error_code(ec), put_result{std::move(etag)});
            });
    }

    template <class CompletionToken>
    auto async_abort_multipart(std::string key, std::string upload_id, CompletionToken&& token) {
        const std::error_code injected = inject("abort_multipart", key);
        return run<void(detail::asio_error_code)>(
            injected, std::forward<CompletionToken>(token),
            [key = std::move(key), id = std::move(upload_id)](state& s) {
                std::lock_guard lock(s.mutex);
                auto it = s.uploads.find(id);
                if (it == s.uploads.end() || it->second.key != key)
                    return std::tuple(detail::asio_error_code(errc::invalid_upload));
                s.uploads.erase(it);
                return std::tuple(detail::asio_error_code{});
            });
    }

private:
    struct stored_object {
        std::shared_ptr<const std::string> data;
        object_info info;
    };
    struct stored_part {
        std::shared_ptr<const std::string> data;
        std::string etag;
    };
    struct upload {
        std::string key;
        put_options opts;
        std::map<int, stored_part> parts;
    };

    struct state {
        explicit state(options o)
            : opts(std::move(o)) {}

        std::error_code store(const std::string& key, std::shared_ptr<const std::string> data,
                              put_options opts_in, const std::string& etag) {
            if (auto ec = validate_key(key)) return ec;
            if (auto ec = detail::normalize_metadata(opts_in.metadata)) return ec;
            std::lock_guard lock(mutex);
            auto it = objects.find(key);
            if (opts_in.if_none_match && it != objects.end()) return errc::already_exists;
            if (opts_in.if_match &&
                (it == objects.end() || it->second.info.etag != *opts_in.if_match))
                return errc::precondition_failed;
            object_info info;
            info.key = key;
            info.size = data->size();
            info.etag = etag;
            info.last_modified = std::chrono::system_clock::now();
            info.content_type =
                opts_in.content_type.empty() ? detail::default_content_type : opts_in.content_type;
            info.metadata = std::move(opts_in.metadata);
            objects.insert_or_assign(key, stored_object{std::move(data), std::move(info)});
            return {};
        }

        std::error_code remove(const std::string& key) {
            if (auto ec = validate_key(key)) return ec;
            std::lock_guard lock(mutex);
            objects.erase(key);
            return {};
        }

        std::pair<std::error_code, std::string> complete(const std::string& key,
                                                         const std::string& id,
                                                         const std::vector<completed_part>& parts) {
            std::unique_lock lock(mutex);
            auto it = uploads.find(id);
            if (it == uploads.end() || it->second.key != key) return {errc::invalid_upload, {}};
            if (parts.empty()) return {errc::invalid_upload, {}};
            auto bytes = std::make_shared<std::string>();
            std::vector<std::string> etags;
            int previous = 0;
            for (std::size_t i = 0; i < parts.size(); ++i) {
                const auto& want = parts[i];
                auto p = it->second.parts.find(want.part_number);
                if (want.part_number <= previous || p == it->second.parts.end() ||
                    p->second.etag != want.etag)
                    return {errc::invalid_upload, {}};
                if (i + 1 < parts.size() && p->second.data->size() < opts.min_part_size)
                    return {errc::entity_too_small, {}};
                previous = want.part_number;
                bytes->append(*p->second.data);
                etags.push_back(p->second.etag);
            }
            put_options o = std::move(it->second.opts);
            uploads.erase(it);
            lock.unlock();
            std::string etag = detail::multipart_etag(etags);
            if (auto ec = store(key, std::move(bytes), std::move(o), etag)) return {ec, {}};
            return {{}, etag};
        }

        const options opts;
        mutable std::mutex mutex;
        std::map<std::string, stored_object, std::less<>> objects;
        std::map<std::string, upload> uploads;
        std::uint64_t next_upload = 0;
        std::atomic<std::size_t> heads{0}, gets{0}, lists{0};
        std::atomic<std::size_t> puts{0}, completes{0}, copies{0}, removes{0};
    };

    /// What the fault hook says of a request about to start.
    std::error_code inject(std::string_view operation, std::string_view key) const {
        return state_->opts.fault ? state_->opts.fault(operation, key) : std::error_code();
    }

    /// Starts `served` as the completion of a request, or fails it with `injected`.
    template <class Signature, class CompletionToken, class Work>
    auto run(std::error_code injected, CompletionToken&& token, Work served) {
        auto work = [served = std::move(served), injected](state& s) mutable {
            if (!injected) return served(s);
            std::invoke_result_t<Work&, state&> failed{};
            std::get<0>(failed) = detail::asio_error_code(injected);
            return failed;
        };
        if (state_->opts.latency.count() == 0)
            return detail::async_offload<Signature>(
                detail::on_handler_executor, executor_, std::forward<CompletionToken>(token),
                [state = state_, work = std::move(work)]() mutable { return work(*state); });
        // Served when a timer on the handler's executor expires, so the wait blocks no thread.
        return boost::asio::async_initiate<CompletionToken, Signature>(
            [state = state_, executor = executor_](auto handler, auto w) {
                auto on = boost::asio::get_associated_executor(handler, executor);
                auto timer = std::make_shared<boost::asio::steady_timer>(on, state->opts.latency);
                timer->async_wait([timer, state, handler = std::move(handler),
                                   w = std::move(w)](boost::system::error_code) mutable {
                    std::apply(std::move(handler), w(*state));
                });
            },
            token, std::move(work));
    }

    std::shared_ptr<state> state_;
    executor_type executor_;
};

static_assert(object_store<memory_store>);

} // namespace skyvol

#endif
