// skyvol: mount object-store buckets as local file systems.
//
//   skyvol mount URI PATH --mode read-only|mount|copy|mount-cached [options]
//   skyvol mount --spec FILE
//   skyvol unmount PATH
//
// A mount runs as a daemon (unless --foreground) that serves the kernel through libfuse; the
// command returns once the mount is ready, or fails saying why.

#include "logger.hpp"
#include "requests.hpp"

#include <skyvol/fuse/control.hpp>
#include <skyvol/fuse/mount.hpp>
#include <skyvol/mode.hpp>
#include <skyvol/store/local_store.hpp>
#include <skyvol/store/s3_store.hpp>
#include <skyvol/version.hpp>
#include <skyvol/volume.hpp>

#include <boost/asio/use_future.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace skyvol;
using tool::logger;
using tool::mode_name;
using tool::mount_request;

constexpr const char* usage_text = R"(usage:
  skyvol mount URI PATH [--mode MODE] [--prefix P] [--cache-dir D] [--endpoint URL]
               [-o OPTS]... [--foreground] [--log-file F] [--log-level L]
               [--write-back-delay SECONDS] [--listing-heads N] [--cache-size SIZE]
  skyvol mount --spec FILE [--log-file F] [--log-level L]
  skyvol unmount PATH [--timeout SECONDS]
  skyvol --version

MODE: read-only, mount (write-through: upload on close), copy (prefetch to local disk),
      mount-cached (write-back: local disk cache, background upload). Default: mount.
URI:  file:///folder (a local folder as a bucket), s3://bucket[/prefix] (keys from the
      environment or ~/.aws; --endpoint or AWS_ENDPOINT_URL for S3-compatible services).
N:    HEADs a directory listing runs at once for objects whose metadata (mode, owner, mtime,
      symlink) the listing lacks; default 16. 0 trusts the listing: far faster `ls -l` and
      `find` on big prefixes, with default modes, Last-Modified as mtime, symlinks as files.
SIZE: bucket data a mount-cached mount keeps on disk (20G, 512M; default: all but 5% of
      the cache folder's filesystem); least recently read out first, written data never.
OPTS: allow_other, default_permissions, ro, uid=N, gid=N, umask=NNN, attr_timeout=S,
      entry_timeout=S, nonempty, max_threads=N, read_ahead_kb=N (default 1024), and kernel
      options (noatime, nodev, ...).
)";

/// What `e` says, without the " [category:value]" Boost appends to a plain system_error's
/// message (skyvol::error and detail::explained_error are sentences already).
std::string sentence_of(const std::exception& e) {
    const auto* plain = dynamic_cast<const boost::system::system_error*>(&e);
    if (!plain || dynamic_cast<const skyvol::detail::explained_error*>(&e)) return e.what();
    std::string text = e.what();
    const std::size_t at = text.rfind(" [");
    if (text.ends_with(']') && at != std::string::npos &&
        text.find(' ', at + 1) == std::string::npos && text.find(':', at) != std::string::npos)
        text.resize(at);
    return text;
}

int fail(const std::string& message) {
    std::fprintf(stderr, "skyvol: %s\n", message.c_str());
    return 1;
}

// ---- serving one mount (in the daemon, or in the foreground) ---------------------------------

/// Tells the command that started a daemon how the mount went, once; in the foreground (no
/// channel, fd -1) an error goes to stderr.
class ready_channel {
public:
    explicit ready_channel(int fd)
        : fd_(fd) {}
    void ok() { send("ok\n"); }
    void error(const std::string& message) {
        if (fd_ < 0 && !told_) fail(message);
        told_ = true;
        send("error: " + message + "\n");
    }

private:
    void send(const std::string& text) {
        if (fd_ < 0) return;
        [[maybe_unused]] const ssize_t n = ::write(fd_, text.data(), text.size());
        ::close(fd_);
        fd_ = -1;
        told_ = true;
    }
    int fd_;
    bool told_ = false; ///< the caller has been told (in the foreground: nothing is sent)
};

/// Waits for SIGINT/SIGTERM/SIGHUP (blocked in every thread) or for the mount to end.
void wait_for_end(fuse::mount_handle& handle, logger& log) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP})
        sigaddset(&set, s);
    const timespec tick{0, 200'000'000};
    while (handle.mounted()) {
        siginfo_t info;
        const int sig = ::sigtimedwait(&set, &info, &tick);
        if (sig > 0) {
            log(log_level::info, std::string("signal ") + ::strsignal(sig) + ": unmounting");
            return;
        }
    }
    log(log_level::info, "unmounted from outside");
}

/// The store a validated request names; throws skyvol::error saying what is wrong.
template <class Store>
Store open_store(const mount_request& r, logger& log) {
    if constexpr (std::is_same_v<Store, local_store>) {
        (void)log;
        return local_store(r.folder);
    } else {
        s3_options o;
        o.endpoint = r.endpoint;
        o.http.log = log.as_sink(); // S3 error codes, messages and request ids; never secrets
        s3_store store = s3_store::from_uri(r.source, o);
        // Reach the bucket before mounting, so that a wrong endpoint, bucket or key fails here,
        // saying which and why.
        (void)store.head_bucket();
        return store;
    }
}

template <class Store, class Mode>
int serve(mount_request& r, logger& log, ready_channel& ready) {
    volume_options options;
    options.prefix = r.prefix;
    options.io_threads = 4;
    if (!r.cache_dir.empty()) options.cache_dir = r.cache_dir;
    options.write_back.delay = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(r.write_back_delay));
    if (r.listing_heads) options.metadata.listing_heads = *r.listing_heads;
    if (r.cache_size) options.caches.disk_bytes = *r.cache_size;
    if constexpr (Mode::local_copy)
        options.copy.on_progress =
            [&log, last = std::chrono::steady_clock::time_point()](const copy_progress& p) mutable {
                const auto now = std::chrono::steady_clock::now();
                if (now - last < std::chrono::seconds(1) && p.files_done != p.files_total) return;
                last = now;
                log(log_level::info, "copy: " + std::to_string(p.files_done) + "/" +
                                         std::to_string(p.files_total) + " files, " +
                                         std::to_string(p.bytes_done >> 20) + "/" +
                                         std::to_string(p.bytes_total >> 20) + " MiB");
            };
    std::unique_ptr<volume<Store, Mode>> vol;
    try {
        vol = std::make_unique<volume<Store, Mode>>(open_store<Store>(r, log), options);
    } catch (const std::exception& e) {
        ready.error("cannot open the volume: " + sentence_of(e));
        return 1;
    }
    if constexpr (write_back_mode<Mode>)
        if (const std::size_t pending = vol->pending_uploads())
            log(log_level::info, std::to_string(pending) +
                                     " closed file(s) from an earlier mount are uploading from " +
                                     r.cache_dir);
    fuse::mount_options mounting = r.mount;
    mounting.log = log.as_sink();
    std::error_code ec;
    fuse::mount_handle handle = fuse::mount(*vol, r.path, mounting, ec);
    if (ec) {
        ready.error(fuse::mount_point_problem(ec, r.path));
        return 1;
    }
    log(log_level::info, "mounted " + r.source + " at " + r.path + " (" +
                             std::string(tool::to_string(r.mode)) + ")");
    ready.ok();
    wait_for_end(handle, log);
    handle.unmount(ec);
    if (ec) {
        log(log_level::error, "uploads failed at unmount (" + ec.message() +
                                  "); closed files stay in " + r.cache_dir + " for the next mount");
        return 1;
    }
    log(log_level::info, "unmounted " + r.path);
    return 0;
}

template <class Store>
int serve_store(mount_request& r, logger& log, ready_channel& ready) {
    switch (r.mode) {
    case mode_name::read_only:
        return serve<Store, mode::read_only>(r, log, ready);
    case mode_name::write_through:
        return serve<Store, mode::write_through>(r, log, ready);
    case mode_name::copy:
        return serve<Store, mode::copy>(r, log, ready);
    case mode_name::write_back:
        return serve<Store, mode::write_back>(r, log, ready);
    }
    return 1;
}

int serve(mount_request& r, logger& log, ready_channel& ready) {
    return r.bucket.empty() ? serve_store<local_store>(r, log, ready)
                            : serve_store<s3_store>(r, log, ready);
}

void block_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP})
        sigaddset(&set, s);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
}

/// Starts a daemon serving `r`; returns once it is mounted, or with its error message.
std::string start_daemon(mount_request& r, logger& log, bool log_to_file) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
    const pid_t pid = ::fork();
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    if (pid == 0) {
        ::close(fds[0]);
        ::setsid();
        // Detach from the caller's terminal and pipes: whoever waits for our output must not
        // wait for the daemon.
        const int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) ::close(null);
        if (!log_to_file) log.to_syslog();
        block_signals();
        ready_channel ready(fds[1]);
        std::_Exit(serve(r, log, ready));
    }
    ::close(fds[1]);
    std::string reply;
    char buffer[512];
    ssize_t n;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) reply.append(buffer, static_cast<std::size_t>(n));
    ::close(fds[0]);
    if (reply == "ok\n") return {};
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (reply.starts_with("error: ")) return reply.substr(7, reply.size() - 8);
    return "the mount process ended before the mount was ready";
}

// ---- unmount ---------------------------------------------------------------------------------

std::string read_attribute(const std::string& path, const char* name) {
    char value[4096];
    const ssize_t n = ::getxattr(path.c_str(), name, value, sizeof value);
    return n < 0 ? std::string() : std::string(value, static_cast<std::size_t>(n));
}

/// Closed files a write-back cache folder holds for upload: one `N.entry` each in its journal
/// (the layout of fs/detail/write_back_journal.hpp), for when no daemon is left to ask.
std::size_t journal_entries(const std::string& cache_dir) {
    std::error_code ec;
    std::size_t n = 0;
    for (const auto& e :
         std::filesystem::directory_iterator(std::filesystem::path(cache_dir) / "journal", ec))
        if (e.path().extension() == ".entry") ++n;
    return n;
}

/// Unmounts without flushing; empty if done.
std::string detach(const std::string& path, bool stale) {
    std::string said;
    const std::error_code ec = fuse::unmount_mount_point(path, stale, &said);
    if (!ec) return {};
    if (ec == std::errc::device_or_resource_busy)
        return "'" + path + "' is busy: a file or directory in it is open (see `fuser -vm " + path +
               "`); it stays mounted and nothing was lost";
    return "cannot unmount '" + path + "': " + (said.empty() ? ec.message() : said);
}

int unmount(const std::string& requested, std::chrono::seconds timeout) {
    char resolved[PATH_MAX];
    if (!::realpath(requested.c_str(), resolved)) {
        if (errno != ENOTCONN) return fail("'" + requested + "': " + std::strerror(errno));
        // The daemon died (crash, kill -9): nothing left to flush; the cache keeps its journal.
        std::string problem = detach(requested, true);
        if (!problem.empty()) return fail(problem);
        std::fprintf(stderr, "skyvol: removed the stale mount at %s\n", requested.c_str());
        return 0;
    }
    const std::string path = resolved;
    const std::string type = fuse::mounted_type(path);
    if (type.empty()) return fail("'" + path + "' is not mounted");
    if (type != "fuse.skyvol")
        return fail("'" + path + "' is a " + type + " mount, not one of skyvol's");

    int result = 0;
    const std::string pid_text = read_attribute(path, fuse::control::pid);
    const std::string cache = read_attribute(path, fuse::control::cache_dir);
    std::size_t pending =
        std::strtoull(read_attribute(path, fuse::control::pending).c_str(), nullptr, 10);
    if (pending > 0) {
        std::fprintf(stderr, "skyvol: waiting for %zu upload(s) to finish...\n", pending);
        std::atomic<bool> done{false};
        std::atomic<int> flush_errno{0};
        std::thread flusher([&] {
            if (::setxattr(path.c_str(), fuse::control::flush, "1", 1, 0) != 0 && errno != EROFS)
                flush_errno = errno;
            done = true;
        });
        std::size_t shown = pending;
        while (!done) {
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
            const std::size_t now =
                std::strtoull(read_attribute(path, fuse::control::pending).c_str(), nullptr, 10);
            if (now != shown && !done) {
                std::fprintf(stderr, "skyvol: %zu upload(s) left\n", now);
                shown = now;
            }
        }
        flusher.join();
        if (flush_errno) {
            const std::string left = read_attribute(path, fuse::control::pending);
            if (left.empty()) {
                // The daemon is gone (killed): what it could not upload is in its journal.
                std::fprintf(stderr,
                             "skyvol: the mount's daemon (pid %s) ended during the flush (%s); "
                             "%zu closed file(s) not yet uploaded stay in %s and upload at the "
                             "next mount of that cache folder\n",
                             pid_text.c_str(), std::strerror(flush_errno), journal_entries(cache),
                             cache.c_str());
                if (std::string problem = detach(path, true); !problem.empty())
                    return fail(problem);
                return 1;
            }
            const std::string why = read_attribute(path, fuse::control::upload_error);
            std::fprintf(stderr,
                         "skyvol: %s closed file(s) could not be uploaded (%s); they stay in "
                         "%s and upload at the next mount of that cache folder\n",
                         left.c_str(), why.empty() ? std::strerror(flush_errno) : why.c_str(),
                         cache.c_str());
            result = 1;
        }
    }
    if (std::string problem = detach(path, false); !problem.empty()) return fail(problem);

    // The daemon ends once the kernel lets go; wait so that the caller can rely on it.
    const pid_t pid = static_cast<pid_t>(std::strtol(pid_text.c_str(), nullptr, 10));
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // A daemon this process started (a spec's rollback) stays a zombie until reaped.
    while (pid > 1 && pid != ::getpid() && ::waitpid(pid, nullptr, WNOHANG) != pid &&
           ::kill(pid, 0) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (result == 0) std::fprintf(stderr, "skyvol: unmounted %s\n", path.c_str());
    return result;
}

// ---- command line ----------------------------------------------------------------------------

int mount_command(std::vector<std::string> args) {
    mount_request r;
    std::vector<std::string> positional;
    std::string spec, log_file, log_level = "info", mode_text = "mount";
    bool foreground = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](std::string& into) {
            if (i + 1 >= args.size()) return false;
            into = args[++i];
            return true;
        };
        bool ok = true;
        if (a == "--mode")
            ok = value(mode_text);
        else if (a == "--prefix")
            ok = value(r.prefix);
        else if (a == "--cache-dir")
            ok = value(r.cache_dir);
        else if (a == "--endpoint")
            ok = value(r.endpoint);
        else if (a == "-o")
            ok = value(r.option_strings.emplace_back());
        else if (a.starts_with("-o") && a.size() > 2)
            r.option_strings.push_back(a.substr(2));
        else if (a == "--write-back-delay") {
            std::string seconds;
            char* end = nullptr;
            ok = value(seconds);
            r.write_back_delay = ok ? std::strtod(seconds.c_str(), &end) : 0;
            if (ok && (*end != '\0' || !(r.write_back_delay >= 0) || r.write_back_delay > 86400))
                return fail("--write-back-delay takes seconds (0 to 86400), not '" + seconds + "'");
        } else if (a == "--listing-heads") {
            std::string count;
            char* end = nullptr;
            ok = value(count);
            const long long n = ok ? std::strtoll(count.c_str(), &end, 10) : 0;
            if (ok && (count.empty() || *end != '\0' || n < 0 || n > tool::max_listing_heads))
                return fail("--listing-heads takes a number from 0 to " +
                            std::to_string(tool::max_listing_heads) + ", not '" + count + "'");
            r.listing_heads = static_cast<std::size_t>(n);
        } else if (a == "--cache-size") {
            std::string size;
            std::uint64_t bytes = 0;
            ok = value(size);
            if (ok && !tool::parse_byte_size(size, bytes))
                return fail("--cache-size takes a size such as 20G or 512M, not '" + size + "'");
            r.cache_size = bytes;
        } else if (a == "--spec")
            ok = value(spec);
        else if (a == "--log-file")
            ok = value(log_file);
        else if (a == "--log-level")
            ok = value(log_level);
        else if (a == "--foreground" || a == "-f")
            foreground = true;
        else if (a.starts_with("-"))
            return fail("unknown option '" + a + "'\n" + usage_text);
        else
            positional.push_back(a);
        if (!ok) return fail("option '" + a + "' needs a value");
    }
    static logger log;
    if (!log.set_level(log_level))
        return fail("unknown log level '" + log_level + "' (error, warning, info, debug)");
    if (!log_file.empty() && !log.to_file(log_file))
        return fail("cannot open log file '" + log_file + "': " + std::strerror(errno));

    std::vector<mount_request> requests;
    if (!spec.empty()) {
        if (!positional.empty() || foreground)
            return fail("--spec takes no URI, path or --foreground");
        std::string error;
        requests = tool::read_spec(spec, error);
        if (!error.empty()) return fail(error);
    } else {
        if (positional.size() != 2)
            return fail(std::string("expected URI and PATH\n") + usage_text);
        r.source = positional[0];
        r.path = positional[1];
        if (!tool::parse_mode(mode_text, r.mode))
            return fail("unknown mode '" + mode_text +
                        "' (read-only, mount, copy or mount-cached)");
        if (std::string problem = tool::validate(r); !problem.empty()) return fail(problem);
        requests.push_back(std::move(r));
    }

    if (foreground) {
        block_signals();
        ready_channel ready(-1);
        const int code = serve(requests.front(), log, ready);
        return code;
    }
    std::vector<std::string> mounted;
    for (mount_request& each : requests) {
        const std::string problem = start_daemon(each, log, !log_file.empty());
        if (!problem.empty()) {
            for (const std::string& done : mounted)
                unmount(done, std::chrono::seconds(60));
            return fail((each.label.empty() ? "" : each.label + ": ") + problem);
        }
        mounted.push_back(each.path);
        std::fprintf(stderr, "skyvol: mounted %s at %s (%s)\n", each.source.c_str(),
                     each.path.c_str(), std::string(tool::to_string(each.mode)).c_str());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(usage_text, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
        std::printf("skyvol %s\n", SKYVOL_VERSION_STRING);
        return 0;
    }
    const std::string command = args[0];
    args.erase(args.begin());
    if (command == "mount") return mount_command(std::move(args));
    if (command == "unmount" || command == "umount") {
        std::chrono::seconds timeout(300);
        std::vector<std::string> paths;
        for (std::size_t i = 0; i < args.size(); ++i) {
            if (args[i] == "--timeout" && i + 1 < args.size())
                timeout = std::chrono::seconds(std::strtol(args[++i].c_str(), nullptr, 10));
            else if (args[i].starts_with("-"))
                return fail("unknown option '" + args[i] + "'");
            else
                paths.push_back(args[i]);
        }
        if (paths.size() != 1) return fail("usage: skyvol unmount PATH");
        return unmount(paths[0], timeout);
    }
    return fail("unknown command '" + command + "'\n" + usage_text);
}
