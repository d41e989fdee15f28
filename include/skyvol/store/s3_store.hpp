#ifndef SKYVOL_STORE_S3_STORE_HPP
#define SKYVOL_STORE_S3_STORE_HPP

/// @file
/// `skyvol::s3_store`: a bucket of S3 or any S3-compatible service (MinIO, R2, GCS's XML API,
/// ...), over skyvol's Beast HTTP client with SigV4. Models `object_store`; copies share the
/// connection pool and threads.
///
///     skyvol::s3_options o;
///     o.endpoint = "http://127.0.0.1:9000";      // else AWS_ENDPOINT_URL, else AWS for the region
///     skyvol::s3_store bucket("my-bucket", o);    // keys from the environment
///     (AWS_ACCESS_KEY_ID...)

#include <skyvol/auth/credential_chain.hpp>
#include <skyvol/auth/credentials.hpp>
#include <skyvol/auth/sigv4.hpp>
#include <skyvol/detail/hex.hpp>
#include <skyvol/detail/md5.hpp>
#include <skyvol/detail/posix_file.hpp>
#include <skyvol/detail/redact.hpp>
#include <skyvol/detail/run.hpp>
#include <skyvol/detail/throw.hpp>
#include <skyvol/error.hpp>
#include <skyvol/http/client.hpp>
#include <skyvol/http/url.hpp>
#include <skyvol/store/concepts.hpp>
#include <skyvol/store/detail/metadata.hpp>
#include <skyvol/store/detail/s3_protocol.hpp>
#include <skyvol/store/key.hpp>
#include <skyvol/store/object_info.hpp>
#include <skyvol/store/s3_options.hpp>
#include <skyvol/store/s3_uri.hpp>
#include <skyvol/uri.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace skyvol {

class s3_store {
public:
    using executor_type = boost::asio::any_io_executor;

    /// A store for `bucket`; throws `skyvol::error` (errc::invalid_config) saying what is wrong
    /// with the name, endpoint or credentials.
    explicit s3_store(std::string bucket, s3_options options = {})
        : s_(std::make_shared<state>(std::nullopt, std::move(bucket), std::move(options))) {}

    /// A store whose requests run on `executor` (a program's own io_context, say) instead of
    /// a pool of its own (`s3_options::io_threads` is then unused). The executor's context
    /// must outlive the store. The credential chain is asked at the first request, not here:
    /// this thread may be the one that runs the executor.
    s3_store(executor_type executor, std::string bucket, s3_options options = {})
        : s_(std::make_shared<state>(std::optional<executor_type>(std::move(executor)),
                                     std::move(bucket), std::move(options))) {}

    /// The store a URI names: s3://, r2://, gs://, cos:// or oci:// (store/s3_uri.hpp), with
    /// the service's endpoint and region unless `options` gives them. The URI's prefix is for
    /// the volume. Throws `skyvol::error` (errc::invalid_config) saying what is wrong.
    static s3_store from_uri(std::string_view text, s3_options options = {}) {
        return located(std::nullopt, text, std::move(options));
    }
    /// As above, with requests on `executor` (see the constructor).
    static s3_store from_uri(executor_type executor, std::string_view text,
                             s3_options options = {}) {
        return located(std::move(executor), text, std::move(options));
    }

    executor_type get_executor() const { return s_->executor; }
    std::string_view store_name() const noexcept { return "s3"; }
    std::string_view bucket_name() const noexcept { return s_->bucket; }
    const http::url& endpoint() const noexcept { return s_->endpoint; }

    // ---- objects -----------------------------------------------------------------------------

    template <class CompletionToken>
    auto async_head(std::string key, CompletionToken&& token) {
        return run<void(detail::asio_error_code, object_info), detail::stops_on_cancel>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key)] { return head(s, key); });
    }

    template <class MutableBufferSequence, class CompletionToken>
    auto async_get(std::string key, std::uint64_t offset, const MutableBufferSequence& buffers,
                   CompletionToken&& token) {
        const std::size_t total = boost::asio::buffer_size(buffers);
        auto first = boost::asio::buffer_sequence_begin(buffers);
        const bool contiguous = total == 0 || boost::asio::buffer_size(*first) == total;
        if (contiguous) {
            const boost::asio::mutable_buffer buffer =
                total == 0 ? boost::asio::mutable_buffer() : boost::asio::mutable_buffer(*first);
            return run<void(detail::asio_error_code, std::size_t), detail::stops_on_cancel>(
                std::forward<CompletionToken>(token),
                [s = s_, key = std::move(key), offset, buffer] {
                    return get(s, key, offset, buffer, get_progress());
                });
        }
        // Scattered buffers: read into one, then spread it.
        return run<void(detail::asio_error_code, std::size_t), detail::stops_on_cancel>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), offset, buffers, total] {
                return get_scattered(s, key, offset, buffers, total);
            });
    }

    /// async_get into one buffer, telling `progress` of the body as it arrives
    /// (`reports_get_progress`).
    template <class CompletionToken>
    auto async_get(std::string key, std::uint64_t offset, boost::asio::mutable_buffer buffer,
                   get_progress progress, CompletionToken&& token) {
        return run<void(detail::asio_error_code, std::size_t), detail::stops_on_cancel>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), offset, buffer, progress = std::move(progress)] {
                return get(s, key, offset, buffer, progress);
            });
    }

    template <class CompletionToken>
    auto async_put(std::string key, boost::asio::const_buffer data, put_options options,
                   CompletionToken&& token) {
        std::string body(static_cast<const char*>(data.data()), data.size());
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), body = std::move(body),
             options = std::move(options)]() mutable {
                return put(s, std::move(key), std::move(body), std::move(options));
            });
    }

    /// Sends `body` from the file as it reads it (uploads_from_files): no copy in memory.
    template <class CompletionToken>
    auto async_put_file(std::string key, file_range body, put_options options,
                        CompletionToken&& token) {
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), body, options = std::move(options)]() mutable {
                return put(s, std::move(key), payload(body), std::move(options));
            });
    }

    template <class CompletionToken>
    auto async_list(list_request request, CompletionToken&& token) {
        return run<void(detail::asio_error_code, list_page), detail::stops_on_cancel>(
            std::forward<CompletionToken>(token),
            [s = s_, request = std::move(request)] { return list(s, request); });
    }

    template <class CompletionToken>
    auto async_remove(std::string key, CompletionToken&& token) {
        return run<void(detail::asio_error_code)>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key)] { return remove(s, key); });
    }

    template <class CompletionToken>
    auto async_remove_batch(std::vector<std::string> keys, CompletionToken&& token) {
        return run<void(detail::asio_error_code, std::vector<remove_failure>)>(
            std::forward<CompletionToken>(token),
            [s = s_, keys = std::move(keys)] { return remove_batch(s, keys); });
    }

    template <class CompletionToken>
    auto async_copy(std::string from, std::string to, std::optional<put_options> replace,
                    CompletionToken&& token) {
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [s = s_, from = std::move(from), to = std::move(to), replace = std::move(replace)] {
                return copy(s, from, to, replace);
            });
    }

    template <class CompletionToken>
    auto async_create_multipart(std::string key, put_options options, CompletionToken&& token) {
        return run<void(detail::asio_error_code, std::string)>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), options = std::move(options)] {
                return create_multipart(s, key, options);
            });
    }

    template <class CompletionToken>
    auto async_upload_part(std::string key, std::string upload_id, int part_number,
                           boost::asio::const_buffer data, CompletionToken&& token) {
        std::string body(static_cast<const char*>(data.data()), data.size());
        return run<void(detail::asio_error_code, completed_part)>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), id = std::move(upload_id), part_number,
             body = std::move(body)]() mutable {
                return upload_part(s, key, id, part_number, std::move(body));
            });
    }

    /// Sends part `part_number` from the file as it reads it (uploads_from_files).
    template <class CompletionToken>
    auto async_upload_part_file(std::string key, std::string upload_id, int part_number,
                                file_range body, CompletionToken&& token) {
        return run<void(detail::asio_error_code, completed_part)>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), id = std::move(upload_id), part_number, body] {
                return upload_part(s, key, id, part_number, payload(body));
            });
    }

    template <class CompletionToken>
    auto async_complete_multipart(std::string key, std::string upload_id,
                                  std::vector<completed_part> parts, CompletionToken&& token) {
        return run<void(detail::asio_error_code, put_result)>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), id = std::move(upload_id), parts = std::move(parts)] {
                return complete_multipart(s, key, id, parts);
            });
    }

    template <class CompletionToken>
    auto async_abort_multipart(std::string key, std::string upload_id, CompletionToken&& token) {
        return run<void(detail::asio_error_code)>(
            std::forward<CompletionToken>(token),
            [s = s_, key = std::move(key), id = std::move(upload_id)] {
                return abort_multipart(s, key, id);
            });
    }

    // ---- the bucket itself -------------------------------------------------------------------

    /// CreateBucket (in the store's region); `errc::already_exists` if it is there.
    template <class CompletionToken>
    auto async_create_bucket(CompletionToken&& token) {
        return run<void(detail::asio_error_code)>(std::forward<CompletionToken>(token),
                                                  [s = s_] { return create_bucket(s); });
    }
    /// DeleteBucket; `errc::not_empty` while objects remain.
    template <class CompletionToken>
    auto async_delete_bucket(CompletionToken&& token) {
        return run<void(detail::asio_error_code)>(std::forward<CompletionToken>(token),
                                                  [s = s_] { return delete_bucket(s); });
    }
    /// HeadBucket: completes with the bucket's region (from x-amz-bucket-region, or ours).
    template <class CompletionToken>
    auto async_head_bucket(CompletionToken&& token) {
        return run<void(detail::asio_error_code, std::string)>(std::forward<CompletionToken>(token),
                                                               [s = s_] { return head_bucket(s); });
    }
    /// HeadBucket, waiting (on a store with a pool of its own, or an executor other threads
    /// run): the bucket's region. Throws skyvol::error naming the bucket and saying why: the
    /// connection's or TLS's failure with the endpoint, or the status S3 answered and where.
    /// What a tool calls before it mounts, so that a wrong endpoint, bucket or key fails there.
    std::string head_bucket() {
        try {
            return boost::asio::co_spawn(s_->executor, head_bucket(s_), boost::asio::use_future)
                .get();
        } catch (const reply_error& e) {
            throw error(std::error_code(e.code()),
                        {"s3", s_->bucket, {}, endpoint().origin() + " " + e.what()});
        } catch (const boost::system::system_error& e) {
            throw error(std::error_code(e.code()), {"s3", s_->bucket, {}, e.what()});
        }
    }

private:
    using headers = std::vector<std::pair<std::string, std::string>>;

    struct state {
        /// On `on` if there is one, else on a pool of `options.io_threads` of its own.
        state(std::optional<executor_type> on, std::string name, s3_options o)
            : bucket(std::move(name))
            , options(std::move(o))
            , own_pool(on ? nullptr
                          : std::make_unique<boost::asio::thread_pool>(
                                std::max<std::size_t>(1, options.io_threads)))
            , executor(on ? std::move(*on) : executor_type(own_pool->get_executor()))
            , client(executor, client_options_of(options)) {
            if (const std::string problem =
                    detail::s3::bucket_name_problem(bucket, options.provider);
                !problem.empty())
                detail::throw_if(errc::invalid_config, {"s3", bucket, {}, problem});
            region = !options.region.empty() ? options.region : env("AWS_REGION");
            if (region.empty()) region = env("AWS_DEFAULT_REGION");
            if (region.empty()) region = "us-east-1";
            std::string text =
                !options.endpoint.empty() ? options.endpoint : env("AWS_ENDPOINT_URL");
            const bool custom = !text.empty();
            endpoint_follows_region = !custom;
            if (!custom) text = "https://s3." + region + ".amazonaws.com";
            std::error_code ec;
            endpoint = http::parse_url(text, ec);
            if (ec)
                detail::throw_if(
                    errc::invalid_config,
                    {"s3", bucket, {}, "endpoint '" + text + "' is not an http(s) URL"});
            using style = s3_options::addressing;
            path_style =
                options.style == style::path || (options.style == style::automatic &&
                                                 (custom || bucket.find('.') != std::string::npos));
            if (options.credentials) {
                const auth::credentials& given = *options.credentials;
                if (given.access_key_id.empty() || given.secret_access_key.empty())
                    detail::throw_if(errc::invalid_config,
                                     {"s3", bucket, {}, "explicit credentials need both keys"});
                creds.emplace(executor, given);
            } else if (options.anonymous) {
                creds.emplace(executor, auth::credentials(), "anonymous");
            } else {
                // The chain, refreshed before expiry. With a pool of our own the first
                // credentials are fetched now (on the pool, from this thread, which is not the
                // pool's) to fail fast; a caller's executor may need this thread to run.
                auth::credential_provider_options po;
                po.log = options.http.log;
                po.http.log = options.http.log;
                creds.emplace(executor, std::move(po));
                if (own_pool) {
                    std::string why;
                    std::error_code cec;
                    creds->get(why, cec);
                    detail::throw_if(cec, {"s3", bucket, {}, why});
                }
            }
            // A CA file that cannot be loaded fails here, naming the file and who named it.
            if (endpoint.tls()) try {
                    client.load_tls();
                } catch (const boost::system::system_error& e) {
                    detail::throw_if(std::error_code(e.code()), {"s3", bucket, {}, e.what()});
                }
        }
        ~state() {
            client.shutdown();
            if (creds) creds->shutdown();
            if (own_pool) own_pool->join();
        }

        static std::string env(const char* name) {
            const char* v = std::getenv(name);
            return v ? std::string(v) : std::string();
        }
        static http::client_options client_options_of(const s3_options& o) {
            http::client_options c = o.http;
            if (!c.retryable_response)
                c.retryable_response = [](const http::response& r) {
                    if (r.status < 400) return false;
                    const std::string code = detail::s3::parse_error(r.body).code;
                    return code == "RequestTimeout" || code == "InternalError" ||
                           code == "SlowDown" || code == "ServiceUnavailable";
                };
            return c;
        }

        std::string bucket;
        s3_options options;
        /// Where requests go; a reply naming the bucket's region moves both (region discovery).
        std::string region;
        bool endpoint_follows_region = false;
        mutable std::mutex where_mutex;
        http::url endpoint;
        bool path_style = true;
        std::unique_ptr<boost::asio::thread_pool> own_pool; ///< none on a caller's executor
        executor_type executor;                             ///< where requests run
        http::client client;
        /// Explicit, anonymous or the chain's; after the executor, so it goes first.
        std::optional<auth::credential_provider> creds;
    };
    using state_ptr = std::shared_ptr<state>;

    explicit s3_store(state_ptr s)
        : s_(std::move(s)) {}

    static s3_store located(std::optional<executor_type> on, std::string_view text,
                            s3_options options) {
        std::string why;
        std::error_code ec;
        const s3_location where = parse_s3_uri(text, why, ec);
        if (!ec) options = options_for(where, std::move(options), why, ec);
        detail::throw_if(ec, {"s3", where.bucket, {}, why});
        return s3_store(std::make_shared<state>(std::move(on), where.bucket, std::move(options)));
    }

    /// Requests that change the bucket run to their end (`detail::runs_to_end`); reads, HEADs
    /// and listings stop on a cancellation, closing their connection.
    template <class Signature, class Cancellation = detail::runs_to_end, class CompletionToken,
              class Make>
    auto run(CompletionToken&& token, Make make) {
        return detail::async_run<Signature, Cancellation>(
            s_->executor, std::forward<CompletionToken>(token), std::move(make), s_);
    }

    static std::string base64(const unsigned char* data, std::size_t size) {
        std::string out(4 * ((size + 2) / 3) + 1, '\0');
        const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                                      static_cast<int>(size));
        out.resize(static_cast<std::size_t>(n));
        return out;
    }
    static detail::md5_digest md5_of(std::string_view body) {
        detail::md5 digest;
        digest.update(body.data(), body.size());
        return digest.finish();
    }
    static std::string content_md5(std::string_view body) {
        const detail::md5_digest d = md5_of(body);
        return base64(d.data(), d.size());
    }

    /// A request body: bytes in memory, or a range of a local file sent as it is read. A file
    /// body's digests (Content-MD5, and the SHA-256 that SigV4 signs) are taken in one pass by
    /// `hash_file`, which put and upload_part call once their checks passed.
    struct payload {
        payload(std::string b = {}) // implicit: most bodies are small strings
            : bytes(std::move(b)) {}
        explicit payload(file_range range)
            : file(range) {}

        void hash_file() {
            if (!file || !file_sha256.empty()) return;
            detail::md5 digest;
            auth::payload_hasher sha256;
            if (const std::error_code ec = detail::for_each_piece(
                    file->fd, file->offset, file->length, [&](const char* data, std::size_t n) {
                        digest.update(data, n);
                        sha256.update(data, n);
                        return std::error_code{};
                    }))
                fail(ec);
            file_md5 = digest.finish();
            file_sha256 = sha256.finish_hex();
        }

        std::uint64_t size() const { return file ? file->length : bytes.size(); }
        /// Its MD5: Content-MD5 in base64, and in hex the ETag S3 gives it as one object.
        detail::md5_digest md5() const { return file ? file_md5 : md5_of(bytes); }
        std::string content_md5() const {
            const detail::md5_digest d = md5();
            return base64(d.data(), d.size());
        }
        std::string sha256_hex() const { return file ? file_sha256 : auth::sha256_hex(bytes); }

        std::string bytes;
        std::optional<file_range> file;
        detail::md5_digest file_md5{};
        std::string file_sha256;
    };

    /// Metadata S3 would refuse (over 2 KiB, names that are no HTTP token) fails here, before
    /// any request, with the codes every store uses.
    static void check_metadata(put_options& o) {
        if (auto ec = detail::normalize_metadata(o.metadata)) fail(ec);
    }

    static void add_put_headers(headers& h, const put_options& o) {
        h.emplace_back("content-type",
                       o.content_type.empty() ? "application/octet-stream" : o.content_type);
        for (const auto& [name, value] : o.metadata)
            h.emplace_back("x-amz-meta-" + name, value);
    }

    /// The region and endpoint requests use now.
    static std::pair<std::string, http::url> where_now(const state& s) {
        std::lock_guard lock(s.where_mutex);
        return {s.region, s.endpoint};
    }

    /// The bucket's region if `r` says requests went to the wrong one (301 PermanentRedirect,
    /// 400 AuthorizationHeaderMalformed), else empty.
    static std::string region_hint(const http::response& r, const std::string& used) {
        if (r.status != 301 && r.status != 307 && r.status != 400) return {};
        std::string hint(r.header("x-amz-bucket-region"));
        if (hint.empty() && r.status == 400) hint = detail::s3::error_region(r.body);
        if (hint == used || !detail::s3::is_host_label(hint)) return {};
        return hint;
    }

    /// Moves the store to the bucket's region, as AWS SDKs do on a redirect.
    static void follow_region(state& s, const std::string& region) {
        std::lock_guard lock(s.where_mutex);
        if (s.region == region) return;
        s.region = region;
        if (s.endpoint_follows_region) s.endpoint.host = "s3." + region + ".amazonaws.com";
        if (s.options.http.log)
            s.options.http.log(log_level::info,
                               "s3 " + s.bucket + ": the bucket is in " + region + "; using it");
    }

    /// Signs and sends one request, once more in the bucket's region if the reply names another.
    static boost::asio::awaitable<http::response>
    call(state_ptr s, boost::beast::http::verb method, std::string key, std::string query,
         headers extra, payload body, bool idempotent, boost::asio::mutable_buffer into,
         bool stream_into, http::body_progress on_body) {
        // Bodies up to 1 MiB, and file bodies, are kept for the retry; a larger one only moves
        // later requests (the tool's HeadBucket at mount time finds the region before any upload).
        const bool can_retry = body.file || body.size() <= (1u << 20);
        std::optional<payload> kept;
        if (can_retry) kept = body;
        const std::string used_region = where_now(*s).first;
        http::response first = co_await call_once(s, method, key, query, extra, std::move(body),
                                                  idempotent, into, stream_into, on_body);
        const std::string hint = region_hint(first, used_region);
        if (hint.empty()) co_return first;
        follow_region(*s, hint);
        if (!kept) co_return first;
        http::response second =
            co_await call_once(s, method, std::move(key), std::move(query), std::move(extra),
                               std::move(*kept), idempotent, into, stream_into, std::move(on_body));
        co_return second;
    }

    static boost::asio::awaitable<http::response>
    call_once(state_ptr s, boost::beast::http::verb method, std::string key, std::string query,
              headers extra, payload body, bool idempotent, boost::asio::mutable_buffer into,
              bool stream_into, http::body_progress on_body) {
        auto [region, origin] = where_now(*s);
        std::string path;
        if (s->path_style) {
            path = origin.path == "/" ? std::string() : origin.path;
            if (path.ends_with('/')) path.pop_back();
            path += "/" + s->bucket;
            if (!key.empty()) path += "/" + auth::uri_encode(key, false);
        } else {
            origin.host = s->bucket + "." + origin.host;
            path = "/" + auth::uri_encode(key, false);
        }
        auth::signable_request sr;
        sr.method = std::string(boost::beast::http::to_string(method));
        sr.path = path;
        sr.query = query;
        sr.headers = std::move(extra);
        sr.headers.emplace_back("host", origin.host_header());
        sr.payload_hash = body.sha256_hex();
        // Refreshed before expiry by the provider, once for all concurrent calls.
        const auth::credentials keys = co_await s->creds->async_get(boost::asio::use_awaitable);
        auth::sign(sr, keys, auth::signing_scope{region, "s3"}, std::chrono::system_clock::now());
        const std::string signature = signature_of(sr.headers); // for log_failure to redact
        http::request r;
        r.method = method;
        r.target = path + (query.empty() ? "" : "?" + query);
        r.headers = std::move(sr.headers);
        r.body = std::move(body.bytes);
        if (body.file) {
            r.body_fd = body.file->fd;
            r.body_offset = body.file->offset;
            r.body_length = body.file->length;
        }
        r.idempotent = idempotent;
        r.refusals_retryable = true; // S3 acts on nothing it answers 503 SlowDown or 429
        r.on_body = std::move(on_body);
        // Two statements, not one ?: with a co_await on each side: g++ 12 miscompiles that.
        try {
            if (stream_into) {
                http::response streamed = co_await s->client.send_into(origin, std::move(r), into);
                log_failure(*s, origin.origin(), method, key, streamed, keys, signature);
                co_return streamed;
            }
            http::response reply = co_await s->client.send(origin, std::move(r));
            log_failure(*s, origin.origin(), method, key, reply, keys, signature);
            co_return reply;
        } catch (const skyvol::detail::explained_error& e) {
            // The error code the caller gets cannot say why; the log does, once, here.
            if (s->options.http.log && e.code() != errc::cancelled)
                s->options.http.log(log_level::warning, "s3 " + s->bucket +
                                                            (key.empty() ? "" : "/") + key + ": " +
                                                            e.what());
            throw;
        }
    }

    /// The hex signature in a signed request's Authorization header ("" if unsigned).
    static std::string signature_of(const headers& h) {
        for (const auto& [name, value] : h) {
            if (!boost::beast::iequals(name, "authorization")) continue;
            const std::size_t at = value.find("Signature=");
            if (at != std::string::npos) return value.substr(at + 10);
        }
        return {};
    }

    /// Logs an error reply with what S3 said (code, message, request id) and which endpoint
    /// said it, so that the error code the caller gets has its explanation in the log. Expected
    /// answers go to debug. The server's text may echo the request: what it carried of the keys
    /// and its signature, and anything shaped like a credential, are redacted.
    static void log_failure(const state& s, const std::string& endpoint,
                            boost::beast::http::verb method, std::string_view key,
                            const http::response& r, const auth::credentials& keys,
                            std::string_view signature) {
        if (r.status < 300 || !s.options.http.log) return;
        detail::s3::error_reply e = detail::s3::parse_error(r.body);
        if (e.request_id.empty()) e.request_id = std::string(r.header("x-amz-request-id"));
        const bool expected = r.status == 404 || r.status == 412 || r.status == 416;
        std::string text = "s3 " + s.bucket + (key.empty() ? "" : "/") + std::string(key) + " at " +
                           endpoint + ": " + std::string(boost::beast::http::to_string(method)) +
                           " answered " + std::to_string(r.status) + " " +
                           skyvol::detail::redact_secrets(
                               e.describe(), {keys.secret_access_key, keys.session_token,
                                              keys.access_key_id, signature});
        s.options.http.log(expected ? log_level::debug : log_level::warning, text);
    }

    static boost::asio::awaitable<http::response> call(state_ptr s, boost::beast::http::verb method,
                                                       std::string key, std::string query,
                                                       headers extra, payload body,
                                                       bool idempotent) {
        http::response reply =
            co_await call(std::move(s), method, std::move(key), std::move(query), std::move(extra),
                          std::move(body), idempotent, boost::asio::mutable_buffer(), false,
                          http::body_progress());
        co_return reply;
    }

    /// Throws `ec`; `detail::async_run` turns it back into the operation's error code.
    [[noreturn]] static void fail(std::error_code ec) { throw std::system_error(ec); }

    /// An error reply: what() says "answered 404 NoSuchBucket" (a code only if it looks like
    /// one: the server's text can echo anything, and is logged redacted by log_failure).
    struct reply_error : skyvol::detail::explained_error {
        using explained_error::explained_error;
    };
    [[noreturn]] static void fail_with(const http::response& r) {
        const detail::s3::error_reply e = detail::s3::parse_error(r.body);
        std::string reason = "answered " + std::to_string(r.status);
        const bool code_like = !e.code.empty() && e.code.size() <= 64 &&
                               std::all_of(e.code.begin(), e.code.end(), [](char c) {
                                   return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                          (c >= '0' && c <= '9') || c == '.';
                               });
        if (code_like) reason += " " + e.code;
        throw reply_error(detail::s3::error_for(r.status, e.code), std::move(reason));
    }
    static void check(const http::response& r) {
        if (r.status >= 300) fail_with(r);
    }
    static void check_key(const std::string& key) {
        if (auto ec = validate_key(key)) fail(ec);
    }

    static boost::asio::awaitable<object_info> head(state_ptr s, std::string key) {
        check_key(key);
        const http::response r = co_await call(s, boost::beast::http::verb::head, key,
                                               std::string(), headers(), std::string(), true);
        check(r);
        object_info info;
        info.key = key;
        info.size = std::strtoull(std::string(r.header("content-length")).c_str(), nullptr, 10);
        info.etag = detail::s3::unquote(r.header("etag"));
        info.content_type = std::string(r.header("content-type"));
        if (auto t = detail::s3::parse_http_date(r.header("last-modified")))
            info.last_modified = *t;
        for (const auto& [name, value] : r.headers)
            if (name.starts_with("x-amz-meta-")) info.metadata[name.substr(11)] = value;
        co_return info;
    }

    static boost::asio::awaitable<std::size_t> get(state_ptr s, std::string key,
                                                   std::uint64_t offset,
                                                   boost::asio::mutable_buffer buffer,
                                                   get_progress progress) {
        check_key(key);
        if (buffer.size() == 0) {
            co_await head(s, key); // a missing key is still not_found
            co_return 0;
        }
        headers h;
        h.emplace_back("range", "bytes=" + std::to_string(offset) + "-" +
                                    std::to_string(offset + buffer.size() - 1));
        const http::response r =
            co_await call(s, boost::beast::http::verb::get, key, std::string(), std::move(h),
                          std::string(), true, buffer, true, std::move(progress));
        if (r.status == 416) co_return 0; // the offset is at or past the end
        check(r);
        co_return r.body_bytes;
    }

    template <class MutableBufferSequence>
    static boost::asio::awaitable<std::size_t>
    get_scattered(state_ptr s, std::string key, std::uint64_t offset, MutableBufferSequence buffers,
                  std::size_t total) {
        std::string staging(total, '\0');
        const std::size_t n =
            co_await get(s, key, offset, boost::asio::buffer(staging), get_progress());
        co_return boost::asio::buffer_copy(buffers, boost::asio::buffer(staging.data(), n));
    }

    static boost::asio::awaitable<put_result> put(state_ptr s, std::string key, payload body,
                                                  put_options options) {
        check_key(key);
        if (body.size() > multipart_limits::max_part_size) fail(errc::entity_too_large);
        check_metadata(options);
        body.hash_file();
        headers h;
        add_put_headers(h, options);
        const detail::md5_digest digest = body.md5(); // once: the header and the expected ETag
        h.emplace_back("content-md5", base64(digest.data(), digest.size()));
        if (options.if_none_match) h.emplace_back("if-none-match", "*");
        // Unquoted: S3 takes either form, Ceph radosgw (and DigitalOcean Spaces, built on it)
        // compares the header with its bare ETag and fails a quoted one.
        if (options.if_match) h.emplace_back("if-match", *options.if_match);
        const std::string etag = detail::to_hex(digest);
        std::error_code lost;
        http::response r;
        try {
            r = co_await call(s, boost::beast::http::verb::put, key, std::string(), std::move(h),
                              std::move(body), true);
        } catch (const boost::system::system_error& e) { // what the HTTP client throws
            lost = std::error_code(e.code());
            if (!outcome_unknown(lost)) throw;
        }
        if (lost || server_error(r.status)) {
            if (co_await holds(s, key, etag)) co_return put_result{etag};
            if (lost) fail(lost);
        }
        if (r.status == 412 && options.if_none_match) fail(errc::already_exists);
        check(r);
        put_result result;
        result.etag = detail::s3::unquote(r.header("etag"));
        co_return result;
    }

    static std::string query_param(std::string_view name, std::string_view value) {
        return std::string(name) + "=" + auth::uri_encode(value, true);
    }

    static boost::asio::awaitable<list_page> list(state_ptr s, list_request request) {
        if (auto ec = validate_prefix(request.prefix)) fail(ec);
        if (request.max_keys == 0 || request.max_keys > 1000) fail(errc::invalid_argument);
        std::string q =
            "list-type=2&encoding-type=url&max-keys=" + std::to_string(request.max_keys);
        if (!request.prefix.empty()) q += "&" + query_param("prefix", request.prefix);
        if (!request.delimiter.empty()) q += "&" + query_param("delimiter", request.delimiter);
        if (!request.continuation_token.empty())
            q += "&" + query_param("continuation-token", request.continuation_token);
        else if (!request.start_after.empty())
            q += "&" + query_param("start-after", request.start_after);
        const http::response r = co_await call(s, boost::beast::http::verb::get, std::string(),
                                               std::move(q), headers(), std::string(), true);
        check(r);
        std::error_code ec;
        list_page page = detail::s3::parse_list(r.body, ec);
        if (ec) fail(ec);
        co_return page;
    }

    static boost::asio::awaitable<void> remove(state_ptr s, std::string key) {
        check_key(key);
        const http::response r = co_await call(s, boost::beast::http::verb::delete_, key,
                                               std::string(), headers(), std::string(), true);
        if (r.status == 404) co_return; // already gone: S3 itself answers 204
        check(r);
    }

    static boost::asio::awaitable<std::vector<remove_failure>>
    remove_batch(state_ptr s, std::vector<std::string> keys) {
        if (keys.size() > max_batch_remove) fail(errc::invalid_argument);
        std::vector<remove_failure> failures;
        std::vector<std::string> valid;
        for (auto& k : keys) {
            if (auto ec = validate_key(k))
                failures.push_back({k, ec});
            else
                valid.push_back(k);
        }
        if (valid.empty()) co_return failures;
        std::string body = detail::s3::delete_objects_body(valid);
        headers h;
        h.emplace_back("content-md5", content_md5(body));
        h.emplace_back("content-type", "application/xml");
        const http::response r = co_await call(s, boost::beast::http::verb::post, std::string(),
                                               "delete=", std::move(h), std::move(body), true);
        check(r);
        std::error_code ec;
        auto more = detail::s3::parse_delete_result(r.body, ec);
        if (ec) fail(ec);
        for (auto& f : more)
            if (f.error != errc::not_found) failures.push_back(std::move(f));
        co_return failures;
    }

    static boost::asio::awaitable<put_result> copy(state_ptr s, std::string from, std::string to,
                                                   std::optional<put_options> replace) {
        check_key(from);
        check_key(to);
        headers h;
        h.emplace_back("x-amz-copy-source", "/" + s->bucket + "/" + auth::uri_encode(from, false));
        if (replace) {
            check_metadata(*replace);
            h.emplace_back("x-amz-metadata-directive", "REPLACE");
            add_put_headers(h, *replace);
        }
        const http::response r = co_await call(s, boost::beast::http::verb::put, to, std::string(),
                                               std::move(h), std::string(), true);
        check(r);
        std::error_code ec;
        detail::s3::error_reply error;
        put_result result;
        result.etag = detail::s3::parse_result_etag(r.body, "CopyObjectResult", ec, error);
        if (ec || result.etag.empty()) fail(ec ? ec : errc::protocol_error);
        co_return result;
    }

    static boost::asio::awaitable<std::string> create_multipart(state_ptr s, std::string key,
                                                                put_options options) {
        check_key(key);
        check_metadata(options);
        headers h;
        add_put_headers(h, options);
        const http::response r = co_await call(s, boost::beast::http::verb::post, key,
                                               "uploads=", std::move(h), std::string(), false);
        check(r);
        std::error_code ec;
        std::string id = detail::s3::parse_upload_id(r.body, ec);
        if (ec) fail(ec);
        co_return id;
    }

    static boost::asio::awaitable<completed_part>
    upload_part(state_ptr s, std::string key, std::string id, int number, payload body) {
        check_key(key);
        if (number < 1 || number > multipart_limits::max_parts) fail(errc::invalid_argument);
        if (body.size() > multipart_limits::max_part_size) fail(errc::entity_too_large);
        body.hash_file();
        headers h;
        h.emplace_back("content-md5", body.content_md5());
        const http::response r = co_await call(s, boost::beast::http::verb::put, key,
                                               "partNumber=" + std::to_string(number) + "&" +
                                                   query_param("uploadId", id),
                                               std::move(h), std::move(body), true);
        check(r);
        completed_part part;
        part.part_number = number;
        part.etag = detail::s3::unquote(r.header("etag"));
        if (part.etag.empty()) fail(errc::protocol_error);
        co_return part;
    }

    static boost::asio::awaitable<put_result>
    complete_multipart(state_ptr s, std::string key, std::string id,
                       std::vector<completed_part> parts) {
        check_key(key);
        if (parts.empty()) fail(errc::invalid_upload);
        std::string body = detail::s3::complete_multipart_body(parts);
        headers h;
        h.emplace_back("content-type", "application/xml");
        // Completing twice is harmless on S3 (same ETag), so a lost reply may be retried; other
        // servers answer the retry NoSuchUpload. Either way, or when every reply was lost, the
        // object may be complete: a failure is reported only if it does not hold these parts.
        std::error_code lost;
        http::response r;
        try {
            r = co_await call(s, boost::beast::http::verb::post, key, query_param("uploadId", id),
                              std::move(h), std::move(body), true);
        } catch (const boost::system::system_error& e) { // what the HTTP client throws
            lost = std::error_code(e.code());
            if (!outcome_unknown(lost)) throw;
        }
        const std::string expected = parts_etag(parts);
        if (lost || server_error(r.status) ||
            (r.status == 404 && detail::s3::parse_error(r.body).code == "NoSuchUpload")) {
            if (co_await holds(s, key, expected)) co_return put_result{expected};
            if (lost) fail(lost);
        }
        check(r);
        std::error_code ec;
        detail::s3::error_reply error;
        put_result result;
        result.etag =
            detail::s3::parse_result_etag(r.body, "CompleteMultipartUploadResult", ec, error);
        if (ec) fail(ec);
        // The upload is complete but the reply names no ETag (radosgw 16). S3's rule gives it
        // from the parts' MD5s; only parts with other ETags need the object asked (a HEAD).
        if (result.etag.empty()) result.etag = expected;
        if (result.etag.empty()) result.etag = (co_await head(s, key)).etag;
        co_return result;
    }

    /// The ETag S3 gives the object these parts make ("" if a part's ETag is no MD5).
    static std::string parts_etag(std::vector<completed_part> parts) {
        std::sort(parts.begin(), parts.end(),
                  [](const auto& a, const auto& b) { return a.part_number < b.part_number; });
        std::vector<std::string> part_etags;
        for (const auto& part : parts)
            part_etags.push_back(detail::s3::unquote(part.etag));
        return detail::multipart_etag(part_etags);
    }

    /// Failures after which the request may have been carried out: the connection failed or
    /// timed out once it was sent, or the answer was a server error or unreadable.
    static bool outcome_unknown(const std::error_code& ec) {
        return ec == errc::connection_failed || ec == errc::timed_out || ec == errc::io_error ||
               ec == errc::protocol_error;
    }

    /// A last answer that leaves open whether the request was carried out (503 says it was not).
    static bool server_error(unsigned status) {
        return status == 500 || status == 502 || status == 504;
    }

    /// Whether `key` is now the object with `etag`: what tells a request whose answer was lost
    /// (or a retry refused because the first attempt did it) from one that failed.
    static boost::asio::awaitable<bool> holds(state_ptr s, std::string key, std::string etag) {
        if (etag.empty()) co_return false;
        bool held = false;
        try {
            held = (co_await head(s, key)).etag == etag;
        } catch (const std::exception&) { // the lost answer's error is the one to report
        }
        if (held && s->options.http.log)
            s->options.http.log(log_level::info,
                                "s3 " + s->bucket + "/" + key +
                                    ": the answer to an upload was lost, but the object holds "
                                    "what was sent (ETag " +
                                    etag + ")");
        co_return held;
    }

    static boost::asio::awaitable<void> abort_multipart(state_ptr s, std::string key,
                                                        std::string id) {
        check_key(key);
        const http::response r =
            co_await call(s, boost::beast::http::verb::delete_, key, query_param("uploadId", id),
                          headers(), std::string(), true);
        check(r);
    }

    static boost::asio::awaitable<void> create_bucket(state_ptr s) {
        std::string body;
        const std::string region = where_now(*s).first;
        if (region != "us-east-1")
            body = "<CreateBucketConfiguration><LocationConstraint>" + region +
                   "</LocationConstraint></CreateBucketConfiguration>";
        const http::response r = co_await call(s, boost::beast::http::verb::put, std::string(),
                                               std::string(), headers(), std::move(body), true);
        check(r);
    }

    static boost::asio::awaitable<void> delete_bucket(state_ptr s) {
        const http::response r = co_await call(s, boost::beast::http::verb::delete_, std::string(),
                                               std::string(), headers(), std::string(), true);
        check(r);
    }

    static boost::asio::awaitable<std::string> head_bucket(state_ptr s) {
        const http::response r = co_await call(s, boost::beast::http::verb::head, std::string(),
                                               std::string(), headers(), std::string(), true);
        check(r);
        const std::string_view region = r.header("x-amz-bucket-region");
        if (!region.empty()) co_return std::string(region);
        co_return where_now(*s).first;
    }

    state_ptr s_;
};

} // namespace skyvol

#endif
