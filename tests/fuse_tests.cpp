// Real kernel mounts of volumes on the local store, through the `skyvol` tool and through the
// library's RAII mount: file trees copied in and read back, POSIX operations, read-only modes,
// two mounts of one bucket, a killed daemon, busy and bad mount points, and a randomised
// exerciser checked against a model after every step.

#include "support/mounts.hpp"
#include "support/scale.hpp"
#include "support/stalled_bucket.hpp"
#include "support/temp_dir.hpp"
#include "support/test_servers.hpp"
#include "support/tree_model.hpp"
#include "support/volume_fixtures.hpp"

#include <skyvol/fuse/mount.hpp>
#include <skyvol/mount.hpp>
#include <skyvol/store/local_store.hpp>
#include <skyvol/store/memory_store.hpp>
#include <skyvol/store/s3_store.hpp>
#include <skyvol/volume.hpp>

#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

namespace skyvol::test {
namespace {

namespace fs = std::filesystem;

/// 1,000 files of 0 bytes to 64 MiB in nested folders; the big ones are few.
void make_tree(const fs::path& root, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::size_t> sizes(1000);
    for (auto& s : sizes)
        s = rng() % 5 == 0 ? 0 : rng() % (64 * 1024);
    sizes[1] = 64u << 20;
    sizes[2] = 16u << 20;
    sizes[3] = (8u << 20) + 17;
    for (int i = 4; i < 12; ++i)
        sizes[static_cast<std::size_t>(i)] = (1u << 20) + rng() % (2u << 20);
    std::string block(64u << 20, '\0');
    for (auto& c : block)
        c = static_cast<char>(rng());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        const fs::path dir = root / ("d" + std::to_string(i % 7)) / ("e" + std::to_string(i % 3));
        fs::create_directories(dir);
        std::ofstream out(dir / ("f" + std::to_string(i) + ".bin"), std::ios::binary);
        out.write(block.data() + (i * 4099) % 1024,
                  static_cast<std::streamsize>(std::min(sizes[i], block.size() - 1024)));
    }
}

int errno_of(int result) {
    return result < 0 ? errno : 0;
}

/// Every mutation a program can try; each must fail with EROFS on a read-only mount.
void require_every_mutation_refused(const fs::path& m, const std::string& existing) {
    const std::string file = (m / existing).string(), fresh = (m / "new.txt").string();
    CHECK(errno_of(::open(fresh.c_str(), O_CREAT | O_WRONLY, 0644)) == EROFS);
    CHECK(errno_of(::open(file.c_str(), O_WRONLY)) == EROFS);
    CHECK(errno_of(::open(file.c_str(), O_RDWR | O_APPEND)) == EROFS);
    CHECK(errno_of(::truncate(file.c_str(), 0)) == EROFS);
    CHECK(errno_of(::unlink(file.c_str())) == EROFS);
    CHECK(errno_of(::mkdir((m / "dir").c_str(), 0755)) == EROFS);
    CHECK(errno_of(::rmdir((m / "sub").c_str())) == EROFS);
    CHECK(errno_of(::rename(file.c_str(), fresh.c_str())) == EROFS);
    CHECK(errno_of(::symlink("x", fresh.c_str())) == EROFS);
    CHECK(errno_of(::chmod(file.c_str(), 0600)) == EROFS);
    CHECK(errno_of(::utimensat(AT_FDCWD, file.c_str(), nullptr, 0)) == EROFS);
    CHECK(errno_of(::mknod(fresh.c_str(), S_IFREG | 0644, 0)) == EROFS);
}

/// Files written through a mount: modes, times, symlinks, renames, truncation, appends, fsync.
void exercise_posix(const fs::path& m) {
    // rename of a file and of a directory with content
    spit(m / "one.txt", "first");
    REQUIRE(errno_of(::rename((m / "one.txt").c_str(), (m / "two.txt").c_str())) == 0);
    CHECK_FALSE(fs::exists(m / "one.txt"));
    CHECK(slurp(m / "two.txt") == "first");
    fs::create_directories(m / "dir/inner");
    spit(m / "dir/inner/x", "x");
    spit(m / "dir/y", "y");
    REQUIRE(::rename((m / "dir").c_str(), (m / "moved").c_str()) == 0);
    CHECK(slurp(m / "moved/inner/x") == "x");
    CHECK(slurp(m / "moved/y") == "y");
    CHECK_FALSE(fs::exists(m / "dir"));
    // RENAME_NOREPLACE refuses an existing target
    spit(m / "three.txt", "3");
    CHECK(errno_of(::renameat2(AT_FDCWD, (m / "two.txt").c_str(), AT_FDCWD,
                               (m / "three.txt").c_str(), RENAME_NOREPLACE)) == EEXIST);
    CHECK(slurp(m / "three.txt") == "3");
    // mkdir / rmdir / unlink
    REQUIRE(::mkdir((m / "empty").c_str(), 0750) == 0);
    CHECK(errno_of(::mkdir((m / "empty").c_str(), 0750)) == EEXIST);
    CHECK(errno_of(::rmdir((m / "moved").c_str())) == ENOTEMPTY);
    CHECK(errno_of(::unlink((m / "moved").c_str())) == EISDIR);
    REQUIRE(::rmdir((m / "empty").c_str()) == 0);
    REQUIRE(::unlink((m / "three.txt").c_str()) == 0);
    CHECK_FALSE(fs::exists(m / "three.txt"));
    CHECK(errno_of(::unlink((m / "three.txt").c_str())) == ENOENT);
    // truncate shorter and longer, append, fsync
    spit(m / "t.txt", "0123456789");
    REQUIRE(::truncate((m / "t.txt").c_str(), 4) == 0);
    CHECK(slurp(m / "t.txt") == "0123");
    REQUIRE(::truncate((m / "t.txt").c_str(), 6) == 0);
    CHECK(slurp(m / "t.txt") == std::string("0123\0\0", 6));
    {
        std::ofstream out(m / "t.txt", std::ios::app | std::ios::binary);
        out << "end";
    }
    CHECK(slurp(m / "t.txt") == std::string("0123\0\0end", 9));
    const int fd = ::open((m / "synced").c_str(), O_CREAT | O_WRONLY | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "durable", 7) == 7);
    REQUIRE(::fsync(fd) == 0);
    REQUIRE(::write(fd, "!", 1) == 1);
    REQUIRE(::close(fd) == 0);
    CHECK(slurp(m / "synced") == "durable!");
    CHECK(errno_of(::open((m / "synced").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600)) == EEXIST);
    // symlinks
    REQUIRE(::symlink("two.txt", (m / "link").c_str()) == 0);
    char target[64] = {};
    REQUIRE(::readlink((m / "link").c_str(), target, sizeof target) == 7);
    CHECK(std::string(target) == "two.txt");
    CHECK(slurp(m / "link") == "first");
    // stored mode and time
    spit(m / "stamped", "s");
    REQUIRE(::chmod((m / "stamped").c_str(), 0640) == 0);
    timespec times[2] = {{1577934245, 0}, {1577934245, 0}}; // 2020-01-02 03:04:05 UTC
    REQUIRE(::utimensat(AT_FDCWD, (m / "stamped").c_str(), times, 0) == 0);
}

/// What exercise_posix left, as seen after a remount: the bucket kept it all.
void check_posix_results(const fs::path& m) {
    CHECK(slurp(m / "two.txt") == "first");
    CHECK(slurp(m / "moved/inner/x") == "x");
    CHECK(slurp(m / "t.txt") == std::string("0123\0\0end", 9));
    CHECK(slurp(m / "synced") == "durable!");
    CHECK(fs::read_symlink(m / "link") == "two.txt");
    struct stat st;
    REQUIRE(::stat((m / "stamped").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);
    CHECK(st.st_mtim.tv_sec == 1577934245);
    REQUIRE(::stat((m / "synced").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    REQUIRE(::lstat((m / "link").c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    const std::string listing = run("ls -l " + quoted(m / "stamped")).output;
    CHECK(listing.find("-rw-r-----") == 0);
    CHECK(listing.find("2020") != std::string::npos);
    CHECK_FALSE(fs::exists(m / "three.txt"));
    CHECK_FALSE(fs::exists(m / "empty"));
}

/// Where a test's bucket lives: a fresh folder ("local"), or a fresh bucket on the test
/// process's s3rver ("s3") or the CTest run's radosgw ("radosgw"); the tool then finds the
/// server's keys in the environment.
mount_source make_source(const std::string& backend, const fs::path& folder) {
    if (backend == "local") {
        fs::create_directories(folder);
        return local_source(folder);
    }
    test_server& server =
        shared_server(backend == "radosgw" ? server_kind::radosgw : server_kind::s3rver);
    ::setenv("AWS_ACCESS_KEY_ID", server.access_key(), 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", server.secret_key(), 1);
    static int counter = 0;
    const std::string name = "fuse-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    s3_options o;
    o.endpoint = server.endpoint();
    s3_store(name, o).async_create_bucket(boost::asio::use_future).get();
    return {"s3://" + name, "--endpoint " + server.endpoint(), std::nullopt};
}

void tree_round_trip(const std::string& mode, const std::string& backend) {
    temp_dir dir("skyvol-fuse");
    const fs::path source = dir.path() / "source";
    const mount_source bucket = make_source(backend, dir.path() / "bucket");
    make_tree(source, 7);
    const std::string cache = "--cache-dir " + quoted(dir.path() / "cache");
    const std::string want = checksums(source);
    {
        tool_mount m(bucket, dir.path() / "mnt", mode, cache);
        REQUIRE(m.ok());
        INFO(m.result().output);
        const auto copy = run("cp -r " + quoted(source) + " " + quoted(m / "tree"));
        INFO(copy.output);
        REQUIRE(copy.status == 0);
        CHECK(checksums(m / "tree") == want);
        exercise_posix(m.path());
        check_posix_results(m.path());
        const auto gone = m.unmount();
        INFO(gone.output);
        REQUIRE(gone.status == 0);
        CHECK_FALSE(is_mounted(m.path()));
    }
    // In the bucket itself, and through fresh read-only and copy mounts.
    if (bucket.folder) CHECK(checksums(*bucket.folder / "tree") == want);
    for (const std::string reader : {"read-only", "copy"}) {
        INFO(reader);
        tool_mount again(bucket, dir.path() / "mnt", reader,
                         "--cache-dir " + quoted(dir.path() / "copy"));
        REQUIRE(again.ok());
        CHECK(checksums(again / "tree") == want);
        check_posix_results(again.path());
    }
}

/// POSIX resolves a path's parents before anything else: a missing one is ENOENT, a file on
/// the way is ENOTDIR.
std::error_code parents_of(const tree_model& model, const std::string& p) {
    for (std::size_t slash = p.find('/'); slash != std::string::npos;
         slash = p.find('/', slash + 1)) {
        const std::string prefix = p.substr(0, slash);
        if (!model.exists(prefix)) return errc::not_found;
        if (!model.is_dir(prefix)) return errc::not_a_directory;
    }
    return {};
}

int errno_of(const std::error_code& ec) {
    return to_errno(ec);
}

/// Reads a whole file through the kernel; errno on failure.
int read_all(const fs::path& p, std::string& out) {
    out.clear();
    const int fd = ::open(p.c_str(), O_RDONLY);
    if (fd < 0) return errno;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0)
        out.append(buffer, static_cast<std::size_t>(n));
    const int err = n < 0 ? errno : 0;
    ::close(fd);
    return err;
}

int write_fd(int fd, const std::string& data, off_t offset, bool positioned) {
    const ssize_t n = positioned ? ::pwrite(fd, data.data(), data.size(), offset)
                                 : ::write(fd, data.data(), data.size());
    return n == static_cast<ssize_t>(data.size()) ? 0 : errno;
}

/// open, write and close; the first errno on the way.
int write_file(const fs::path& p, int flags, const std::string& data, off_t offset,
               bool positioned) {
    const int fd = ::open(p.c_str(), flags, 0644);
    if (fd < 0) return errno;
    int err = write_fd(fd, data, offset, positioned);
    if (::close(fd) != 0 && err == 0) err = errno;
    return err;
}

/// mkdir -p with the model's rule: a file on the way or at the end is EEXIST.
int make_directories(const fs::path& root, const std::string& p) {
    for (std::size_t end = 0; end != std::string::npos;) {
        end = p.find('/', end + 1);
        const fs::path at = root / p.substr(0, end);
        if (::mkdir(at.c_str(), 0755) == 0) continue;
        if (errno != EEXIST) return errno;
        struct stat st;
        if (::stat(at.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return EEXIST;
    }
    return 0;
}

void check_mounted_tree(const fs::path& root, const tree_model& model, const std::string& dir) {
    std::vector<std::pair<std::string, bool>> seen;
    for (const auto& e : fs::directory_iterator(root / dir))
        seen.emplace_back(e.path().filename().string(), e.is_directory());
    std::sort(seen.begin(), seen.end());
    REQUIRE(seen == model.children(dir));
    for (const auto& [name, is_dir] : seen) {
        const std::string p = join_path(dir, name);
        INFO(p);
        if (is_dir) {
            check_mounted_tree(root, model, p);
        } else {
            std::string got;
            REQUIRE(read_all(root / p, got) == 0);
            REQUIRE(got == model.content(p));
        }
    }
}

/// Random reads, writes, truncations, appends, renames and removals through a real mount,
/// each checked against the model; then the bucket must hold the model's tree.
void exercise_mount(const std::string& mode, unsigned seed, int operations,
                    const std::string& backend) {
    temp_dir dir("skyvol-fuse");
    const mount_source bucket = make_source(backend, dir.path() / "bucket");
    tree_model model;
    random_operations random(seed);
    auto pick = [&](int n) { return random.pick(n); };
    auto random_path = [&] { return random.path(); };
    auto random_data = [&] { return random.data(); };
    {
        tool_mount m(bucket, dir.path() / "mnt", mode,
                     "--cache-dir " + quoted(dir.path() / "cache"));
        INFO(m.result().output);
        REQUIRE(m.ok());
        const fs::path root = m.path();
        std::deque<std::string> recent; // shown on failure: what led there
        for (int step = 0; step < operations; ++step) {
            const std::string p = random_path();
            const fs::path at = root / p;
            const int op = pick(12);
            std::ostringstream what;
            what << mode << " seed " << seed << " step " << step << " op " << op << " path " << p;
            INFO(what.str());
            int got = 0;
            std::error_code want = parents_of(model, p);
            switch (op) {
            case 0: {
                const std::string data = random_data();
                got = write_file(at, O_CREAT | O_WRONLY | O_TRUNC, data, 0, false);
                if (!want) want = model.write(p, data);
                break;
            }
            case 1: {
                const std::string data = random_data() + "!";
                got = write_file(at, O_CREAT | O_WRONLY | O_APPEND, data, 0, false);
                if (!want) want = model.append(p, data);
                break;
            }
            case 2: {
                const std::string data = random_data() + "#";
                const auto offset = static_cast<std::size_t>(pick(320));
                got = write_file(at, O_RDWR, data, static_cast<off_t>(offset), true);
                if (!want) want = model.write_at(p, offset, data);
                break;
            }
            case 3: {
                const auto size = static_cast<std::size_t>(pick(400));
                got = errno_of(::truncate(at.c_str(), static_cast<off_t>(size)));
                if (!want) want = model.resize(p, size);
                break;
            }
            case 4:
                got = errno_of(::mkdir(at.c_str(), 0755));
                if (!want) want = model.mkdir(p);
                break;
            case 5:
                got = make_directories(root, p);
                want = model.mkdirs(p); // mkdir -p reports a file on the way as EEXIST
                break;
            case 6:
                got = errno_of(::remove(at.c_str()));
                if (!want) want = model.remove(p);
                break;
            case 7: {
                const std::string to = random_path();
                what << " to " << to;
                got = errno_of(::rename(at.c_str(), (root / to).c_str()));
                if (!want) want = parents_of(model, to);
                if (!want && !model.exists(p)) want = errc::not_found;
                // Linux refuses to rename onto an ancestor of the source with ENOTEMPTY,
                // before looking at types.
                if (!want && p != to && is_within(p, to) && !is_within(to, p))
                    want = errc::not_empty;
                if (!want) want = model.rename(p, to);
                break;
            }
            case 8: {
                std::string content;
                got = read_all(at, content);
                if (!want)
                    want = !model.exists(p)  ? std::error_code(errc::not_found)
                           : model.is_dir(p) ? std::error_code(errc::is_a_directory)
                                             : std::error_code{};
                if (!want && got == 0) REQUIRE(content == model.content(p));
                break;
            }
            case 9: {
                struct stat st;
                got = errno_of(::lstat(at.c_str(), &st));
                if (!want && !model.exists(p)) want = errc::not_found;
                if (!want && got == 0) {
                    REQUIRE(S_ISDIR(st.st_mode) == model.is_dir(p));
                    if (model.is_file(p))
                        REQUIRE(static_cast<std::size_t>(st.st_size) == model.content(p).size());
                }
                break;
            }
            case 10: {
                std::size_t count = 0;
                DIR* d = ::opendir(at.c_str());
                got = d ? 0 : errno;
                if (d) {
                    while (dirent* e = ::readdir(d))
                        count += std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..");
                    ::closedir(d);
                }
                if (!want)
                    want = !model.exists(p)   ? std::error_code(errc::not_found)
                           : !model.is_dir(p) ? std::error_code(errc::not_a_directory)
                                              : std::error_code{};
                if (!want && got == 0) REQUIRE(count == model.children(p).size());
                break;
            }
            default:
                if (step % 500 == 0) check_mounted_tree(root, model, "");
                continue;
            }
            INFO("mount said: " << std::strerror(got) << "; model said: " << want.message());
            std::string history;
            for (const auto& line : recent)
                history += line + "\n";
            INFO("before:\n" << history);
            if (got != errno_of(want)) {
                std::string nodes;
                for (const auto& [path, content] : model.nodes())
                    nodes += path + (content ? " (file)\n" : " (dir)\n");
                UNSCOPED_INFO("model:\n"
                              << nodes << "mount:\n"
                              << run("cd " + quoted(root) + " && find . -ls").output);
            }
            REQUIRE(got == errno_of(want));
            recent.push_back(what.str() + " -> " + std::strerror(got));
            if (recent.size() > 80) recent.pop_front();
        }
        check_mounted_tree(root, model, "");
        const auto done = m.unmount();
        INFO(done.output);
        REQUIRE(done.status == 0);
    }
    // The bucket itself, read by a volume that never saw the mount.
    tool_mount fresh(bucket, dir.path() / "mnt", "read-only");
    REQUIRE(fresh.ok());
    check_mounted_tree(fresh.path(), model, "");
}

} // namespace

TEST_CASE("fuse: random operations through a write-through mount match the model",
          "[fuse][model]") {
    exercise_mount("mount", 21, random_operations_count(10'000), "local");
}

TEST_CASE("fuse: random operations through a write-back mount match the model", "[fuse][model]") {
    exercise_mount("mount-cached", 22, random_operations_count(10'000), "local");
}

TEST_CASE("fuse: a 1000-file tree and POSIX operations through a write-through mount", "[fuse]") {
    tree_round_trip("mount", "local");
}

TEST_CASE("fuse: a 1000-file tree and POSIX operations through a write-back mount", "[fuse]") {
    tree_round_trip("mount-cached", "local");
}

TEST_CASE("fuse on s3: a 1000-file tree and POSIX operations through a write-through mount",
          "[fuse][s3]") {
    tree_round_trip("mount", "s3");
}

TEST_CASE("fuse on s3: a 1000-file tree and POSIX operations through a write-back mount",
          "[fuse][s3]") {
    tree_round_trip("mount-cached", "s3");
}

TEST_CASE("fuse on s3: random operations through a write-back mount match the model",
          "[fuse][model][s3]") {
    exercise_mount("mount-cached", 32, random_operations_count(10'000), "s3");
}

TEST_CASE("fuse on radosgw: a 1000-file tree and POSIX operations through a write-through mount",
          "[fuse][s3]") {
    tree_round_trip("mount", "radosgw");
}

TEST_CASE("fuse on radosgw: a 1000-file tree and POSIX operations through a write-back mount",
          "[fuse][s3]") {
    tree_round_trip("mount-cached", "radosgw");
}

TEST_CASE("fuse on radosgw: random operations through a write-back mount match the model",
          "[fuse][model][s3]") {
    exercise_mount("mount-cached", 33, random_operations_count(10'000), "radosgw");
}

TEST_CASE("fuse: read-only and copy mounts refuse every change with EROFS", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket";
    fs::create_directories(bucket / "sub");
    spit(bucket / "data.bin", std::string(3u << 20, 'd'));
    spit(bucket / "sub/small.txt", "small");
    // The store keeps its own housekeeping folder; no object may change.
    const std::string list =
        "find " + quoted(bucket) + " -path '*/.skyvol.sys' -prune -o -print | sort";
    const std::string before = checksums(bucket) + run(list).output;
    for (const std::string mode : {"read-only", "copy"}) {
        INFO(mode);
        tool_mount m(bucket, dir.path() / ("mnt-" + mode), mode,
                     "--cache-dir " + quoted(dir.path() / ("cache-" + mode)));
        INFO(m.result().output);
        REQUIRE(m.ok());
        CHECK(run("grep -F " + quoted(m.path()) + " /proc/self/mounts").output.find(" ro,") !=
              std::string::npos);
        CHECK(slurp(m / "data.bin") == std::string(3u << 20, 'd'));
        CHECK(slurp(m / "sub/small.txt") == "small");
        require_every_mutation_refused(m.path(), "data.bin");
        REQUIRE(m.unmount().status == 0);
    }
    CHECK(checksums(bucket) + run(list).output == before);
}

void two_mounts(const std::string& backend) {
    temp_dir dir("skyvol-fuse");
    const mount_source bucket = make_source(backend, dir.path() / "bucket");
    const std::string timeouts = "-o attr_timeout=0.5,entry_timeout=0.5";
    tool_mount a(bucket, dir.path() / "a", "mount", timeouts);
    tool_mount b(bucket, dir.path() / "b", "mount", timeouts);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK_FALSE(fs::exists(b / "shared.bin")); // b has looked and cached "not there"
    std::string data(5u << 20, '\0');
    std::mt19937 rng(3);
    for (auto& c : data)
        c = static_cast<char>(rng());
    spit(a / "shared.bin", data);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500)); // both caches expire
    CHECK(slurp(b / "shared.bin") == data);
    // and a rewrite on b reaches a
    spit(b / "shared.bin", "rewritten");
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    CHECK(slurp(a / "shared.bin") == "rewritten");
}

TEST_CASE("fuse: a file closed on one write-through mount appears on another", "[fuse]") {
    two_mounts("local");
}

TEST_CASE("fuse on s3: a file closed on one write-through mount appears on another", "[fuse][s3]") {
    two_mounts("s3");
}

TEST_CASE("fuse on radosgw: a file closed on one write-through mount appears on another",
          "[fuse][s3]") {
    two_mounts("radosgw");
}

/// The kernel's read-ahead of the mount at `at`, in KiB (its backing device's sysfs entry).
std::string kernel_read_ahead_kb(const fs::path& at) {
    struct stat st;
    REQUIRE(::stat(at.c_str(), &st) == 0);
    const std::string bdi =
        std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    std::string kb = slurp("/sys/class/bdi/" + bdi + "/read_ahead_kb");
    while (!kb.empty() && kb.back() == '\n')
        kb.pop_back();
    return kb;
}

TEST_CASE("fuse on s3: a large file goes up in parts while written and reads back through the "
          "kernel's read-ahead",
          "[fuse][s3]") {
    temp_dir dir("skyvol-fuse");
    const mount_source bucket = make_source("s3", dir.path() / "bucket");
    tool_mount w(bucket, dir.path() / "w", "mount");
    tool_mount r(bucket, dir.path() / "r", "read-only", "-o read_ahead_kb=2048");
    tool_mount cached(bucket, dir.path() / "c", "mount-cached",
                      "--cache-dir " + quoted(dir.path() / "cache"));
    REQUIRE(w.ok());
    REQUIRE(r.ok());
    REQUIRE(cached.ok());
    CHECK(kernel_read_ahead_kb(w.path()) == "1024"); // the default, in every mode
    CHECK(kernel_read_ahead_kb(r.path()) == "2048");
    CHECK(kernel_read_ahead_kb(cached.path()) == "1024");

    // 40 MiB in 1 MiB writes (parts stream behind the writer), then a rewrite of bytes in the
    // second part and a last write that extends the file: the object must hold all of it.
    std::string data(40u << 20, '\0');
    std::mt19937 rng(17);
    for (auto& c : data)
        c = static_cast<char>(rng());
    {
        const int fd = ::open((w / "big.bin").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
        REQUIRE(fd >= 0);
        for (std::size_t at = 0; at < data.size(); at += 1u << 20)
            REQUIRE(::pwrite(fd, data.data() + at, 1u << 20, static_cast<off_t>(at)) == 1 << 20);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const std::string patch(4096, 'p');
        data.replace(9u << 20, patch.size(), patch);
        REQUIRE(::pwrite(fd, patch.data(), patch.size(), 9 << 20) == 4096);
        data += "tail";
        REQUIRE(::pwrite(fd, "tail", 4, static_cast<off_t>(data.size() - 4)) == 4);
        REQUIRE(::close(fd) == 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500)); // r's negative entry expires
    CHECK(slurp(r / "big.bin") == data);
    CHECK(slurp(w / "big.bin") == data);
}

TEST_CASE("fuse: a killed write-back daemon loses no closed file", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket", cache = dir.path() / "cache";
    fs::create_directories(bucket);
    std::vector<std::string> contents;
    {
        tool_mount m(bucket, dir.path() / "mnt", "mount-cached",
                     "--cache-dir " + quoted(cache) + " --write-back-delay 3600");
        REQUIRE(m.ok());
        std::mt19937 rng(11);
        for (int i = 0; i < 12; ++i) {
            std::string data(static_cast<std::size_t>(i == 0 ? 0 : (rng() % (3u << 20))), '\0');
            for (auto& c : data)
                c = static_cast<char>(rng());
            spit(m / ("f" + std::to_string(i)), data);
            contents.push_back(data);
        }
        const int open_fd = ::open((m / "never-closed").c_str(), O_CREAT | O_WRONLY, 0644);
        REQUIRE(open_fd >= 0);
        REQUIRE(::write(open_fd, "partial", 7) == 7);
        CHECK(m.pending() == 12);
        const int pid = m.pid();
        REQUIRE(pid > 1);
        REQUIRE(::kill(pid, SIGKILL) == 0);
        while (::kill(pid, 0) == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ::close(open_fd);
        CHECK_FALSE(fs::exists(bucket / "f1")); // nothing was uploaded before the kill
        const auto cleared = m.unmount();       // a stale mount: removed, nothing to flush
        INFO(cleared.output);
        CHECK(cleared.status == 0);
        CHECK_FALSE(is_mounted(m.path()));
    }
    {
        tool_mount m(bucket, dir.path() / "mnt", "mount-cached", "--cache-dir " + quoted(cache));
        INFO(m.result().output);
        REQUIRE(m.ok());
        const auto done = m.unmount(); // waits for the recovered uploads
        INFO(done.output);
        REQUIRE(done.status == 0);
    }
    for (int i = 0; i < 12; ++i)
        CHECK(slurp(bucket / ("f" + std::to_string(i))) == contents[static_cast<std::size_t>(i)]);
    CHECK_FALSE(fs::exists(bucket / "never-closed"));
}

TEST_CASE("fuse: SIGTERM makes a write-back daemon upload, unmount and exit", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket";
    fs::create_directories(bucket);
    tool_mount m(bucket, dir.path() / "mnt", "mount-cached",
                 "--cache-dir " + quoted(dir.path() / "cache") + " --write-back-delay 3600");
    REQUIRE(m.ok());
    spit(m / "epoch-3.pt", "weights");
    REQUIRE(m.pending() == 1);
    const int pid = m.pid();
    REQUIRE(::kill(pid, SIGTERM) == 0);
    for (int i = 0; i < 3000 && ::kill(pid, 0) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(::kill(pid, 0) != 0);
    CHECK_FALSE(is_mounted(m.path()));
    CHECK(slurp(bucket / "epoch-3.pt") == "weights");
}

TEST_CASE("fuse: unmount reports uploads that fail and keeps them for the next mount", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket", cache = dir.path() / "cache";
    fs::create_directories(bucket);
    const std::string args = "--cache-dir " + quoted(cache);
    {
        tool_mount m(bucket, dir.path() / "mnt", "mount-cached", args + " --write-back-delay 3600");
        REQUIRE(m.ok());
        spit(m / "result.csv", "epoch,loss\n1,0.5\n");
        REQUIRE(m.pending() == 1);
        // The bucket refuses new objects (even root cannot create files in an immutable folder).
        const fs::path staging = bucket / ".skyvol.sys/tmp";
        REQUIRE(run("chattr +i " + quoted(staging)).status == 0);
        const auto failed = m.unmount();
        run("chattr -i " + quoted(staging));
        CHECK(failed.status != 0);
        CHECK(failed.output.find("waiting for 1 upload") != std::string::npos);
        CHECK(failed.output.find("could not be uploaded") != std::string::npos);
        CHECK(failed.output.find(cache.string()) != std::string::npos);
        CHECK_FALSE(fs::exists(bucket / "result.csv"));
    }
    tool_mount again(bucket, dir.path() / "mnt", "mount-cached", args);
    INFO(again.result().output);
    REQUIRE(again.ok());
    const auto done = again.unmount();
    INFO(done.output);
    REQUIRE(done.status == 0);
    CHECK(slurp(bucket / "result.csv") == "epoch,loss\n1,0.5\n");
}

TEST_CASE("fuse: a full write-back cache refuses writes with ENOSPC and recovers as uploads end "
          "and reads it cannot hold stream",
          "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket", source = dir.path() / "source.bin";
    fs::create_directories(bucket);
    small_disk disk(dir.path() / "disk", 64u << 20);
    const fs::path cache = disk / "cache";
    const std::string dataset = pattern(100u << 20, 1);
    spit(bucket / "dataset.bin", dataset);
    spit(source, dataset);
    std::vector<std::string> shards;
    for (unsigned i = 0; i < 3; ++i) {
        shards.push_back(pattern(20u << 20, 10 + i));
        spit(bucket / ("shard" + std::to_string(i)), shards.back());
    }
    const std::string args = "--cache-dir " + quoted(cache) + " --write-back-delay 3600";

    // A cache size the tool cannot read, or for a mode without a disk cache, is refused.
    tool_mount unreadable(bucket, dir.path() / "mnt", "mount-cached", args + " --cache-size lots");
    CHECK(unreadable.result().output.find("--cache-size takes a size such as 20G or 512M, not "
                                          "'lots'") != std::string::npos);
    tool_mount through(bucket, dir.path() / "mnt", "mount", "--cache-size 1G");
    CHECK(through.result().output.find("a cache size applies to mode mount-cached, not 'mount'") !=
          std::string::npos);
    CHECK_FALSE(is_mounted(dir.path() / "mnt"));

    tool_mount m(bucket, dir.path() / "mnt", "mount-cached", args + " --cache-size 48M");
    INFO(m.result().output);
    REQUIRE(m.ok());
    // A download moves into the cache (from a .tmp file) just after its last read returns.
    const auto cached_objects = [&](std::size_t expected) {
        const auto published = [&] {
            std::size_t n = 0;
            for (const auto& e : fs::directory_iterator(cache / "objects"))
                n += e.path().extension() != ".tmp";
            return n;
        };
        for (int i = 0;
             i < 5000 && (published() != expected || files_in(cache / "objects") != expected); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return published();
    };
    // Larger than the disk: streamed from the bucket, nothing kept.
    CHECK(slurp(m / "dataset.bin") == dataset);
    CHECK(files_in(cache / "objects") == 0);
    // Under the 48 MiB cap, the last two shards stay.
    for (unsigned i = 0; i < 3; ++i)
        CHECK(slurp(m / ("shard" + std::to_string(i))) == shards[i]);
    CHECK(cached_objects(2) == 2);

    // A copy larger than the disk: ENOSPC, and no staging copy or journal entry of it stays.
    const auto copy = run("cp " + quoted(source) + " " + quoted(m / "copy.bin"));
    CHECK(copy.status != 0);
    CHECK(copy.output.find("No space left on device") != std::string::npos);
    CHECK(files_in(cache / "journal") == 0);
    CHECK(files_in(cache / "staging") == 0);
    CHECK(m.pending() == 0);

    // 40 MiB fits once the cached shards give way; what is pending then is never evicted.
    for (unsigned i = 1; i < 3; ++i)
        CHECK(slurp(m / ("shard" + std::to_string(i))) == shards[i]);
    CHECK(cached_objects(2) == 2);
    // (In braces: the 2>&1 `run` appends must not send head's complaint into the file.)
    const auto checkpoint =
        run("{ head -c 40M " + quoted(source) + " > " + quoted(m / "ckpt.pt") + "; }");
    CHECK(checkpoint.status == 0);
    CHECK(checkpoint.output.empty());
    CHECK(m.pending() == 1);
    CHECK(files_in(cache / "objects") < 2);
    const auto more =
        run("{ head -c 30M " + quoted(source) + " > " + quoted(m / "more.pt") + "; }");
    CHECK(more.status != 0);
    CHECK(more.output.find("No space left on device") != std::string::npos);
    CHECK(m.pending() == 1);
    CHECK(slurp(m / "shard0") == shards[0]); // reads go on

    // Space returns as the upload ends.
    const auto done = m.unmount();
    INFO(done.output);
    REQUIRE(done.status == 0);
    CHECK(slurp(bucket / "ckpt.pt") == dataset.substr(0, 40u << 20));
    CHECK_FALSE(fs::exists(bucket / "copy.bin"));
    CHECK(files_in(cache / "journal") == 0);
    CHECK(disk.used() <= (40u << 20) + (1u << 20));
}

TEST_CASE("fuse: a failed upload makes close() fail with EIO, logged with the key", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket", log = dir.path() / "mount.log";
    fs::create_directories(bucket);
    tool_mount m(bucket, dir.path() / "mnt", "mount", "--log-file " + quoted(log));
    REQUIRE(m.ok());
    const fs::path staging = bucket / ".skyvol.sys/tmp";
    REQUIRE(run("chattr +i " + quoted(staging)).status == 0);
    const int fd = ::open((m / "lost.txt").c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "data", 4) == 4);
    const int closed = errno_of(::close(fd));
    run("chattr -i " + quoted(staging));
    CHECK(closed == EIO);
    CHECK_FALSE(fs::exists(bucket / "lost.txt"));
    CHECK(slurp(log).find("key 'lost.txt'") != std::string::npos);
    spit(m / "kept.txt", "fine"); // the mount goes on working
    CHECK(slurp(bucket / "kept.txt") == "fine");
}

/// Counts the objects a local bucket's folder gains by name: the local store writes each object
/// to a temp file and renames it into place, so one rename is one upload. (The temp folder is
/// watched too: inotify merges identical events in a row, and its MOVED_FROM keeps two renames
/// onto one name apart.)
class object_renames {
public:
    explicit object_renames(const fs::path& bucket)
        : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
        REQUIRE(fd_ >= 0);
        REQUIRE(::inotify_add_watch(fd_, bucket.c_str(), IN_MOVED_TO) >= 0);
        REQUIRE(::inotify_add_watch(fd_, (bucket / ".skyvol.sys/tmp").c_str(), IN_MOVED_FROM) >= 0);
    }
    object_renames(const object_renames&) = delete;
    object_renames& operator=(const object_renames&) = delete;
    ~object_renames() { ::close(fd_); }

    /// Renames onto `name` since the last call for any name.
    std::size_t take(const std::string& name) {
        alignas(inotify_event) char buffer[4096];
        ssize_t n;
        while ((n = ::read(fd_, buffer, sizeof buffer)) > 0) {
            for (char* p = buffer; p < buffer + n;) {
                const auto* e = reinterpret_cast<const inotify_event*>(p);
                if (e->len && (e->mask & IN_MOVED_TO)) ++seen_[e->name];
                p += sizeof(inotify_event) + e->len;
            }
        }
        return std::exchange(seen_[name], 0);
    }

private:
    int fd_;
    std::map<std::string, std::size_t> seen_;
};

TEST_CASE("fuse: an overwrite by a writer that truncates on open uploads once and keeps the old "
          "object until then",
          "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket";
    fs::create_directories(bucket);
    spit(bucket / "log", "old log");
    spit(bucket / "ckpt", "old checkpoint");
    tool_mount m(bucket, dir.path() / "mnt", "mount");
    REQUIRE(m.ok());
    object_renames uploads(bucket);

    // The shell's redirection and dd open with O_TRUNC, duplicate the descriptor and close the
    // original before they write: that first close must not upload an empty object.
    REQUIRE(run("echo new > " + quoted(m / "log")).status == 0);
    CHECK(slurp(bucket / "log") == "new\n");
    CHECK(uploads.take("log") == 1);
    REQUIRE(
        run("dd if=/dev/zero of=" + quoted(m / "zeros") + " bs=1k count=3 status=none").status ==
        0);
    CHECK(fs::file_size(bucket / "zeros") == 3072);
    CHECK(uploads.take("zeros") == 1);
    // Many in a row, and as many empty files, which release commits while the loop goes on
    // (under the sanitizers this is where a release freeing its handle on another thread showed).
    REQUIRE(run("for i in $(seq 200); do echo $i > " + quoted(m / "many") + "$i; : > " +
                quoted(m / "empty") + "$i; done")
                .status == 0);
    const auto released = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    auto empties = [&] {
        int n = 0;
        for (int i = 1; i <= 200; ++i)
            n += fs::exists(bucket / ("empty" + std::to_string(i)));
        return n;
    };
    while (empties() < 200 && std::chrono::steady_clock::now() < released)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::size_t whole = 0, empty = 0, once = 0;
    for (int i = 1; i <= 200; ++i) {
        const std::string name = "many" + std::to_string(i), nothing = "empty" + std::to_string(i);
        whole += fs::exists(bucket / name) && slurp(bucket / name) == std::to_string(i) + "\n";
        empty += fs::exists(bucket / nothing) && fs::file_size(bucket / nothing) == 0;
        once += uploads.take(name) == 1 && uploads.take(nothing) == 1;
    }
    CHECK(whole == 200);
    CHECK(empty == 200);
    CHECK(once == 200);

    // A truncation that is the whole change is committed when the kernel releases the file.
    REQUIRE(run(": > " + quoted(m / "log")).status == 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (fs::file_size(bucket / "log") != 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(fs::file_size(bucket / "log") == 0);
    CHECK(uploads.take("log") == 1);

    // Written after the deferring flush, then opened elsewhere: the writer's close commits it,
    // once, and reports it (another open must not take the file from under the writer).
    {
        const int first = ::open((m / "log").c_str(), O_WRONLY | O_TRUNC);
        REQUIRE(first >= 0);
        const int second = ::dup(first);
        REQUIRE(errno_of(::close(first)) == 0);
        CHECK(::write(second, "abc", 3) == 3);
        slurp(m / "log"); // another open of the path
        CHECK(::pwrite(second, "def", 3, 3) == 3);
        CHECK(errno_of(::close(second)) == 0);
        CHECK(slurp(bucket / "log") == "abcdef");
        CHECK(uploads.take("log") == 1);
    }

    // The new content's upload fails: the writer hears EIO and the old object is still whole.
    const int fd = ::open((m / "ckpt").c_str(), O_WRONLY | O_TRUNC);
    REQUIRE(fd >= 0);
    const int copy = ::dup(fd);
    REQUIRE(errno_of(::close(fd)) == 0);
    CHECK(slurp(bucket / "ckpt") == "old checkpoint");
    const fs::path staging = bucket / ".skyvol.sys/tmp";
    REQUIRE(run("chattr +i " + quoted(staging)).status == 0);
    CHECK(::write(copy, "new checkpoint", 14) == 14);
    const int closed = errno_of(::close(copy));
    run("chattr -i " + quoted(staging));
    CHECK(closed == EIO);
    CHECK(slurp(bucket / "ckpt") == "old checkpoint");
    CHECK(uploads.take("ckpt") == 0);
    CHECK(slurp(m / "ckpt") == "old checkpoint");
}

TEST_CASE("fuse: a mount that cannot reach its bucket says which bucket, which endpoint and why",
          "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path at = dir.path() / "mnt";
    fs::create_directories(at);
    const tls_files self_signed =
        make_self_signed(dir.path(), "self", "localhost", "DNS:localhost,IP:127.0.0.1");
    const tls_files elsewhere =
        make_self_signed(dir.path(), "elsewhere", "elsewhere.example", "DNS:elsewhere.example");
    const auto answers = [](const http_exchange&) { return http_reply(); };
    // `timeout`: a mount that wrongly succeeds in the foreground must not hang the suite.
    const auto mount = [&](const std::string& endpoint, const std::string& env,
                           const std::string& extra = "") {
        return run("timeout 60 env AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=example "
                   "AWS_CA_BUNDLE= SSL_CERT_FILE= " +
                   env + " " + skyvol_tool() + " mount s3://data-bucket " + quoted(at) +
                   " --mode read-only --endpoint " + endpoint + " " + extra);
    };
    const auto says = [&](const command_result& r, std::initializer_list<std::string> parts) {
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK_FALSE(is_mounted(at));
        for (const std::string& part : parts)
            CHECK(r.output.find(part) != std::string::npos);
        CHECK(r.output.find("[std:") == std::string::npos); // no error-category noise
    };
    const std::string opening = "skyvol: cannot open the volume: s3: bucket 'data-bucket': ";
    SECTION("a self-signed certificate, in the background and in the foreground") {
        http_test_server server(answers, &self_signed);
        const std::string endpoint = "https://127.0.0.1:" + std::to_string(server.port());
        for (const char* extra : {"", "--foreground"}) {
            INFO(extra);
            says(mount(endpoint, "", extra),
                 {opening + "connection failed (HEAD " + endpoint + "/data-bucket: ",
                  "TLS certificate verification failed for " + endpoint + ": self-signed"});
        }
        CHECK(server.requests() == 0);
    }
    SECTION("a certificate for another host, from a CA that AWS_CA_BUNDLE trusts") {
        http_test_server server(answers, &elsewhere);
        const std::string endpoint = "https://127.0.0.1:" + std::to_string(server.port());
        says(mount(endpoint, "AWS_CA_BUNDLE=" + elsewhere.cert),
             {opening + "connection failed", "verification failed for " + endpoint, "mismatch"});
    }
    SECTION("a closed port") {
        says(mount("http://127.0.0.1:1", ""),
             {opening + "connection failed",
              "cannot connect to http://127.0.0.1:1: Connection refused"});
    }
    SECTION("an AWS_CA_BUNDLE that names no file") {
        const std::string missing = (dir.path() / "no-such-bundle.pem").string();
        says(mount("https://127.0.0.1:1", "AWS_CA_BUNDLE=" + missing),
             {opening + "invalid configuration (AWS_CA_BUNDLE names the CA file '" + missing +
              "', which cannot be read: No such file or directory)"});
    }
    SECTION("a bucket the server does not have") {
        test_server& server = shared_server(server_kind::s3rver);
        says(mount(server.endpoint(), std::string("AWS_ACCESS_KEY_ID=") + server.access_key() +
                                          " AWS_SECRET_ACCESS_KEY=" + server.secret_key()),
             {opening + "not found (" + server.endpoint() + " answered 404"});
    }
}

/// An S3 stand-in for a write-back mount whose uploads go wrong: the bucket is there and
/// empty, and a PUT is refused with 503 SlowDown (`throttled`) or takes a second.
http_reply troubled_bucket_reply(const http_exchange& in, bool throttled) {
    http_reply reply;
    const std::string path = in.target.substr(0, in.target.find('?'));
    if (in.method == "HEAD" && path == "/troubled") return reply;
    if (in.method == "GET" && in.target.find("list-type=2") != std::string::npos) {
        reply.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>troubled"
                     "</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false"
                     "</IsTruncated></ListBucketResult>";
    } else if (in.method == "PUT" && throttled) {
        reply.status = 503;
        reply.body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                     "</Message></Error>";
    } else if (in.method == "PUT") {
        reply.delay = std::chrono::seconds(1);
        reply.headers.emplace_back("ETag", "\"put\"");
    } else {
        reply.status = 404;
    }
    return reply;
}

TEST_CASE("fuse: unmount says why uploads failed and counts what a killed daemon left", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path cache = dir.path() / "cache";
    const bool throttled = GENERATE(true, false);
    http_test_server server(
        [throttled](const http_exchange& in) { return troubled_bucket_reply(in, throttled); });
    const mount_source source{"s3://troubled",
                              "--endpoint http://127.0.0.1:" + std::to_string(server.port()),
                              std::nullopt};
    ::setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "example", 1);
    tool_mount m(source, dir.path() / "mnt", "mount-cached",
                 "--cache-dir " + quoted(cache) + " --write-back-delay 3600");
    INFO(m.result().output);
    REQUIRE(m.ok());
    for (int i = 0; i < 4; ++i)
        spit(m / ("part-" + std::to_string(i) + ".csv"), "epoch,loss\n" + std::to_string(i));
    REQUIRE(m.pending() == 4);
    const std::size_t journal_before = files_in(cache / "journal", ".entry");
    REQUIRE(journal_before == 4);
    if (throttled) {
        // Was "4 closed file(s) could not be uploaded (Operation not supported)".
        const auto failed = m.unmount();
        INFO(failed.output);
        CHECK(failed.status == 1);
        CHECK(failed.output.find("4 closed file(s) could not be uploaded (s3: bucket 'troubled', "
                                 "key 'part-0.csv': throttled by the service); they stay in " +
                                 cache.string()) != std::string::npos);
        CHECK_FALSE(is_mounted(m.path()));
        CHECK(files_in(cache / "journal", ".entry") == 4);
    } else {
        // Was "0 closed file(s) could not be uploaded" whatever the daemon left.
        const int pid = m.pid();
        auto unmounting = std::async(std::launch::async, [&] { return m.unmount(); });
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        REQUIRE(::kill(pid, SIGKILL) == 0);
        const auto cut = unmounting.get();
        INFO(cut.output);
        const std::size_t left = files_in(cache / "journal", ".entry");
        CHECK(left >= 1);
        CHECK(left <= 3);
        CHECK(cut.status == 1);
        CHECK(cut.output.find("ended during the flush") != std::string::npos);
        CHECK(cut.output.find(std::to_string(left) + " closed file(s) not yet uploaded stay in " +
                              cache.string()) != std::string::npos);
        CHECK_FALSE(is_mounted(m.path()));
    }
}

TEST_CASE("fuse: busy, mounted, non-empty and missing mount points give clear errors", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket";
    fs::create_directories(bucket);
    tool_mount m(bucket, dir.path() / "mnt", "mount-cached",
                 "--cache-dir " + quoted(dir.path() / "cache"));
    REQUIRE(m.ok());

    SECTION("unmount while a file is open keeps the mount and the data") {
        const int fd = ::open((m / "open.txt").c_str(), O_CREAT | O_WRONLY, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, "still here", 10) == 10);
        const auto busy = m.unmount();
        CHECK(busy.status != 0);
        CHECK(busy.output.find("busy") != std::string::npos);
        CHECK(is_mounted(m.path()));
        REQUIRE(::close(fd) == 0);
        const auto done = m.unmount();
        INFO(done.output);
        REQUIRE(done.status == 0);
        CHECK(slurp(bucket / "open.txt") == "still here");
    }
    SECTION("another user's unmount is refused with fusermount3's reason, whatever the path") {
        // Not root, the tool asks fusermount3, which must get the path as it is: no shell.
        tool_mount odd(bucket, dir.path() / "it's here", "mount");
        REQUIRE(odd.ok());
        fs::permissions(dir.path(), fs::perms::others_read | fs::perms::others_exec,
                        fs::perm_options::add);
        const auto refused =
            run("runuser -u nobody -- " + skyvol_tool() + " unmount " + quoted(odd.path()));
        INFO(refused.output);
        CHECK(refused.status != 0);
        CHECK(refused.output.find("cannot unmount '" + odd.path().string() + "': fusermount3: ") !=
              std::string::npos);
        CHECK(is_mounted(odd.path()));
    }
    SECTION("mounting over a mount") {
        const auto again = run(skyvol_tool() + " mount file://" + bucket.string() + " " +
                               quoted(m.path()) + " --mode mount");
        CHECK(again.status != 0);
        CHECK(again.output.find("already a mount point") != std::string::npos);
    }
    SECTION("a mount point that is not empty, or missing, or a file") {
        fs::create_directories(dir.path() / "full");
        spit(dir.path() / "full/keep", "k");
        auto r = run(skyvol_tool() + " mount file://" + bucket.string() + " " +
                     quoted(dir.path() / "full"));
        CHECK(r.status != 0);
        CHECK(r.output.find("not empty") != std::string::npos);
        CHECK(slurp(dir.path() / "full/keep") == "k");
        r = run(skyvol_tool() + " mount file://" + bucket.string() + " " +
                quoted(dir.path() / "nowhere"));
        CHECK(r.output.find("does not exist") != std::string::npos);
        r = run(skyvol_tool() + " mount file://" + bucket.string() + " " +
                quoted(dir.path() / "full/keep"));
        CHECK(r.output.find("not a directory") != std::string::npos);
    }
    SECTION("bad URIs, modes and options name the problem") {
        fs::create_directories(dir.path() / "free");
        const std::string at = " " + quoted(dir.path() / "free");
        auto r = run(skyvol_tool() + " mount file://relative/x" + at);
        CHECK(r.output.find("three slashes") != std::string::npos);
        r = run(skyvol_tool() + " mount gopher://bucket" + at);
        CHECK(r.output.find("unsupported URI scheme") != std::string::npos);
        r = run(skyvol_tool() + " mount file://" + bucket.string() + at + " --mode fast");
        CHECK(r.output.find("unknown mode 'fast'") != std::string::npos);
        r = run(skyvol_tool() + " mount file://" + bucket.string() + at + " -o uid=me");
        CHECK(r.output.find("'uid=me'") != std::string::npos);
        r = run(skyvol_tool() + " mount file://" + bucket.string() + at + " -o ro --mode mount");
        CHECK(r.output.find("contradicts") != std::string::npos);
        r = run(skyvol_tool() + " mount file://" + (dir.path() / "no-bucket").string() + at);
        CHECK(r.output.find("does not exist") != std::string::npos);
        CHECK(r.status != 0);
        CHECK_FALSE(is_mounted(dir.path() / "free"));
        r = run(skyvol_tool() + " unmount " + quoted(dir.path() / "free"));
        CHECK(r.output.find("is not mounted") != std::string::npos);
    }
}

TEST_CASE("fuse: a spec file mounts several volumes, or nothing if an entry is wrong", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    fs::create_directories(dir.path() / "data");
    fs::create_directories(dir.path() / "out");
    spit(dir.path() / "data/train.csv", "1,2,3\n");
    fs::create_directories(dir.path() / "m1");
    fs::create_directories(dir.path() / "m2");
    const std::string d = dir.path().string();
    spit(dir.path() / "bad.json", R"({"mounts": [
        {"path": ")" + d + R"(/m1", "source": "file://)" +
                                      d + R"(/data", "read_only": true},
        {"path": ")" + d + R"(/m2", "source": "file://)" +
                                      d + R"(/out", "mode": "mount", "read_only": true}]})");
    auto r = run(skyvol_tool() + " mount --spec " + quoted(dir.path() / "bad.json"));
    CHECK(r.status != 0);
    CHECK(r.output.find("mount 2 (" + d + "/m2)") != std::string::npos);
    CHECK_FALSE(is_mounted(dir.path() / "m1"));

    // An entry that fails only when its daemon opens the volume (a cache folder that cannot be
    // made): the mounts before it are taken down again, without waiting out a timeout for the
    // daemon that already ended (it took 60 s).
    spit(dir.path() / "a-file", "");
    spit(dir.path() / "late.json", R"({"mounts": [
        {"path": ")" + d + R"(/m1", "source": "file://)" +
                                       d + R"(/data", "read_only": true},
        {"path": ")" + d + R"(/m2", "source": "file://)" +
                                       d + R"(/out", "mode": "mount-cached",
         "cache_dir": ")" + d + R"(/a-file/cache"}]})");
    const auto started = std::chrono::steady_clock::now();
    r = run(skyvol_tool() + " mount --spec " + quoted(dir.path() / "late.json"));
    const auto took = std::chrono::steady_clock::now() - started;
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK(r.output.find("mount 2 (" + d + "/m2): cannot open the volume") != std::string::npos);
    CHECK_FALSE(is_mounted(dir.path() / "m1"));
    CHECK(took < std::chrono::seconds(20)); // a bound on a hang, not a speed target

    // A key given twice would silently mean its last value.
    spit(dir.path() / "twice.json", R"({"mounts": [
        {"path": ")" + d + R"(/m1", "source": "file://)" +
                                        d + R"(/data", "mode": "read-only", "mode": "mount"}]})");
    r = run(skyvol_tool() + " mount --spec " + quoted(dir.path() / "twice.json"));
    CHECK(r.status != 0);
    CHECK(r.output.find("gives 'mounts[0].mode' twice") != std::string::npos);
    CHECK_FALSE(is_mounted(dir.path() / "m1"));

    spit(dir.path() / "typo.json", R"([{"path": ")" + d + R"(/m1", "sorce": "file:///x"}])");
    r = run(skyvol_tool() + " mount --spec " + quoted(dir.path() / "typo.json"));
    CHECK(r.output.find("unknown key 'sorce'") != std::string::npos);
    spit(dir.path() / "heads.json", R"([{"path": ")" + d + R"(/m1", "source": "file://)" + d +
                                        R"(/data", "listing_heads": -1}])");
    r = run(skyvol_tool() + " mount --spec " + quoted(dir.path() / "heads.json"));
    CHECK(r.output.find("'listing_heads' must be a number from 0 to 256") != std::string::npos);
    r = run(skyvol_tool() + " mount file://" + d + "/data " + d + "/m1 --listing-heads many");
    CHECK(r.output.find("--listing-heads takes a number from 0 to 256, not 'many'") !=
          std::string::npos);
    CHECK_FALSE(is_mounted(dir.path() / "m1"));

    spit(dir.path() / "good.json", R"({"mounts": [
        {"path": ")" + d + R"(/m1", "source": "file://)" +
                                       d + R"(/data", "read_only": true},
        {"path": ")" + d + R"(/m2", "source": "file://)" +
                                       d + R"(/out", "mode": "mount-cached",
         "cache_dir": ")" + d + R"(/cache", "options": ["attr_timeout=2"]}]})");
    r = run(skyvol_tool() + " mount --spec " + quoted(dir.path() / "good.json"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(slurp(dir.path() / "m1/train.csv") == "1,2,3\n");
    spit(dir.path() / "m2/result.txt", "ok");
    CHECK(errno_of(::mkdir((dir.path() / "m1/x").c_str(), 0755)) == EROFS);
    CHECK(run(skyvol_tool() + " unmount " + quoted(dir.path() / "m1")).status == 0);
    CHECK(run(skyvol_tool() + " unmount " + quoted(dir.path() / "m2")).status == 0);
    CHECK(slurp(dir.path() / "out/result.txt") == "ok");
}

TEST_CASE("fuse: a mount whose kernel connection is aborted waits for the bucket's answers",
          "[fuse]") {
    // `umount -f` aborts the connection: the request loop ends at once, while the volume still
    // works on a read. Its completion replies through the session and recycles its buffer into
    // the file system, so the unmount must wait for it (it used to free both first).
    temp_dir dir("skyvol-fuse");
    const fs::path at = dir.path() / "mnt";
    fs::create_directories(at);
    held_operation answer("get", "slow.bin");
    memory_store store(answer.options());
    put_object(store, "slow.bin", std::string(300000, 's'));
    volume<memory_store, mode::read_only> vol{store};
    auto m = fuse::mount(vol, at.string());

    auto reader = std::async(std::launch::async, [&] {
        std::ifstream in(at / "slow.bin", std::ios::binary);
        char c = 0;
        in.read(&c, 1);
        return in.good();
    });
    REQUIRE(answer.started());
    ::umount2(at.c_str(), MNT_FORCE); // EBUSY while the reader holds the file; aborted anyway
    CHECK_FALSE(reader.get());        // the kernel answered the reader itself (ECONNABORTED)

    auto unmounting = std::async(std::launch::async, [&] { m.unmount(); });
    CHECK(unmounting.wait_for(std::chrono::milliseconds(500)) == std::future_status::timeout);
    answer.release();
    REQUIRE(unmounting.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    unmounting.get();
    CHECK_FALSE(m.mounted());
    CHECK_FALSE(is_mounted(at)); // libfuse alone would leave the aborted mount in place
    if (is_mounted(at)) ::umount2(at.c_str(), MNT_DETACH);
}

TEST_CASE("fuse: a signal to a process waiting for the bucket interrupts its request", "[fuse]") {
    // The kernel waits out a request already sent to the file system even for a fatal signal,
    // so without interrupts a `stat` on a stalled endpoint hangs until its answer. (Reads through
    // the page cache are the kernel's own background requests: it sends no interrupt for them,
    // and a fatal signal ends the reader's wait without one.)
    http_test_server server(stalled_bucket_reply);
    volume<s3_store, mode::read_only> vol{s3_store("stalled", stalled_bucket_options(server))};
    temp_dir dir("skyvol-fuse");
    const fs::path at = dir.path() / "mnt";
    fs::create_directories(at);
    auto m = fuse::mount(vol, at.string());

    // Runs `program path` in a child and sends it SIGINT once the server has `method` for
    // `fragment`; true if the child then died of the signal within 20 s.
    auto interrupted = [&](const char* program, const fs::path& path, const char* method,
                           const char* fragment) {
        const std::string target = path.string();
        const pid_t child = ::fork();
        if (child == 0) {
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, 1);
            ::dup2(null, 2);
            ::execlp(program, program, target.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        REQUIRE(child > 0);
        const bool sent = received_request(server, method, fragment);
        ::kill(child, SIGINT);
        int status = 0;
        bool ended = false;
        for (int i = 0; i < 2000 && !ended; ++i) {
            ended = ::waitpid(child, &status, WNOHANG) == child;
            if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (!ended) ::waitpid(child, &status, 0); // until the stalled answer comes
        return sent && ended && WIFSIGNALED(status) && WTERMSIG(status) == SIGINT;
    };
    CHECK(interrupted("stat", at / "stalled-head", "HEAD", "/stalled-head"));
    m.unmount();
}

TEST_CASE("fuse: an EIO the bucket causes is logged with the path and the key", "[fuse]") {
    // broken.bin has a status, but every GET of it fails: a read gets EIO, and the kernel passes
    // on only the number.
    http_test_server server([](const http_exchange& in) {
        if (in.target.find("/broken.bin") == std::string::npos) return stalled_bucket_reply(in);
        http_reply reply;
        if (in.method == "HEAD") {
            reply.content_length = 4096;
            reply.headers.emplace_back("ETag", "\"broken\"");
            reply.headers.emplace_back("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT");
        } else {
            reply.status = 500;
        }
        return reply;
    });
    s3_options so = stalled_bucket_options(server);
    so.http.max_attempts = 2;
    so.http.base_backoff = std::chrono::milliseconds(1);
    std::mutex mutex;
    std::vector<std::string> lines;
    fuse::mount_options mo;
    mo.log = [&](log_level level, std::string_view line) {
        std::lock_guard lock(mutex);
        if (level == log_level::error) lines.emplace_back(line);
    };
    volume_options vo;
    vo.prefix = "run-7/";
    volume<s3_store, mode::read_only> vol{s3_store("logged", so), vo};
    temp_dir dir("skyvol-fuse");
    const fs::path at = dir.path() / "mnt";
    fs::create_directories(at);
    auto m = fuse::mount(vol, at.string(), mo);
    const int fd = ::open((at / "broken.bin").c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    char byte;
    CHECK(errno_of(static_cast<int>(::read(fd, &byte, 1))) == EIO);
    ::close(fd);
    m.unmount();
    std::lock_guard lock(mutex);
    INFO(lines.size() << " error lines");
    REQUIRE_FALSE(lines.empty());
    CHECK(lines[0].find("read of '/broken.bin' failed with EIO; s3: bucket 'logged', key "
                        "'run-7/broken.bin'") != std::string::npos);
}

TEST_CASE("fuse: the library's RAII mount flushes and unmounts when it goes", "[fuse]") {
    temp_dir dir("skyvol-fuse");
    const fs::path bucket = dir.path() / "bucket", at = dir.path() / "mnt";
    fs::create_directories(bucket);
    fs::create_directories(at);
    volume_options options;
    options.cache_dir = dir.path() / "cache";
    options.write_back.delay = std::chrono::seconds(3600); // only the unmount's flush uploads
    {
        auto m = skyvol::mount<local_store, mode::write_back>("file://" + bucket.string(),
                                                              at.string(), options);
        CHECK(is_mounted(at));
        spit(at / "checkpoint.pt", "weights");
        CHECK(m.get_volume().pending_uploads() == 1);
        CHECK_FALSE(fs::exists(bucket / "checkpoint.pt"));
    }
    CHECK_FALSE(is_mounted(at));
    CHECK(slurp(bucket / "checkpoint.pt") == "weights");

    // The error form: a mount point that is not empty.
    volume<local_store, mode::read_only> vol{local_store(bucket)};
    std::error_code ec;
    auto refused = fuse::mount(vol, bucket.string(), {}, ec);
    CHECK(ec == errc::not_empty);
    CHECK_FALSE(refused.mounted());
    CHECK_THROWS_WITH(fuse::mount(vol, (dir.path() / "none").string()),
                      Catch::Contains("does not exist"));
}

} // namespace skyvol::test
