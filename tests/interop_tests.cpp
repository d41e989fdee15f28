// Interoperability with real peers on one s3rver bucket, both ways: what a skyvol mount writes
// (write-through and write-back) read by awscli (`aws s3 ls/cp`, `aws s3api head-object`) and by
// an s3fs mount; and what `aws s3 cp` and an s3fs mount write read through a skyvol mount. Each
// test makes its own bucket on the test process's s3rver. Mounts are RAII guards, so a failed
// REQUIRE still unmounts and waits for the daemons to end.
//
// Peers' own behaviour these tests rely on, measured with awscli 2.9 and s3fs 1.90:
// - awscli writes no "dir/" markers and no metadata, and `aws s3 cp --recursive` from a bucket
//   skips marker objects (an empty directory is not recreated) and downloads a symlink object
//   as a file holding the target. It uploads in parts above 8 MiB.
// - s3fs, like skyvol, writes a "dir/" marker for every directory and the metadata `mode`
//   (decimal st_mode), `mtime` (seconds), `uid`, `gid` (plus `atime` and `ctime`); a symlink
//   is an object holding the target with S_IFLNK in its mode. The marker s3fs's mkdir writes
//   carries the permissions without the S_IFDIR bits ("493"); after a chmod it has them.
// - s3rver leaves a folder that holds only folders and no marker out of its parent's listing,
//   and gives a multipart object the MD5 of its content as ETag (no "-N" suffix).

#include "support/mounts.hpp"
#include "support/temp_dir.hpp"
#include "support/test_servers.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace skyvol::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* time_2020 = "2020-01-02 03:04:05 UTC"; // 1577934245
constexpr const char* stamp_time = "2020-06-15 12:00:00 UTC";
constexpr std::size_t one_mib = 1u << 20;

void write_random(const fs::path& p, std::size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::string data(size, '\0');
    for (auto& c : data)
        c = static_cast<char>(rng());
    spit(p, data);
}

void sh(const std::string& command) {
    const command_result r = run(command);
    INFO(command << "\n" << r.output);
    REQUIRE(r.status == 0);
}

// ---- awscli --------------------------------------------------------------------------------

/// Debian's awscli when installed (what scripts/install-deps installs), else the one on PATH.
std::string aws_program() {
    return ::access("/usr/bin/aws", X_OK) == 0 ? "/usr/bin/aws" : "aws";
}

/// awscli against the test process's s3rver with S3RVER's keys, never reading ~/.aws and
/// without AWS_CA_BUNDLE.
command_result aws(const std::string& args) {
    const test_server& server = shared_server(server_kind::s3rver);
    return run("env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN "
               "-u AWS_SECURITY_TOKEN -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_S3 "
               "AWS_ACCESS_KEY_ID=" +
               std::string(test_server::s3_access_key) +
               " AWS_SECRET_ACCESS_KEY=" + test_server::s3_secret_key +
               " AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null "
               "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true AWS_PAGER= " +
               aws_program() + " --endpoint-url " + server.endpoint() + " " + args);
}

/// A fresh bucket (a plain PUT: s3rver takes anonymous requests, and each awscli run costs a
/// second or more of Python start-up).
std::string make_bucket() {
    static int counter = 0;
    const std::string name =
        "interop-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    const raw_http_reply made =
        raw_http_exchange(shared_server(server_kind::s3rver).port(), "PUT", "/" + name);
    INFO(made.body);
    REQUIRE(made.status == 200);
    return name;
}

/// The bucket as a skyvol mount source; the tool finds S3RVER's keys in the environment.
mount_source skyvol_source(const std::string& bucket) {
    ::setenv("AWS_ACCESS_KEY_ID", test_server::s3_access_key, 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", test_server::s3_secret_key, 1);
    return {"s3://" + bucket, "--endpoint " + shared_server(server_kind::s3rver).endpoint(),
            std::nullopt};
}

using key_sizes = std::map<std::string, std::uint64_t>;

/// One "key size" line per key, for comparisons that print well.
std::string text_of(const key_sizes& keys) {
    std::string out;
    for (const auto& [key, size] : keys)
        out += key + " " + std::to_string(size) + "\n";
    return out;
}

/// Every key and its size, from `aws s3 ls --recursive`.
std::string bucket_keys(const std::string& bucket) {
    const command_result listed = aws("s3 ls --recursive s3://" + bucket);
    INFO(listed.output);
    REQUIRE(listed.status == 0);
    key_sizes keys;
    std::istringstream lines(listed.output);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream fields(line); // "2026-01-02 03:04:05     1234 key"
        std::string date, time, key;
        std::uint64_t size = 0;
        if (!(fields >> date >> time >> size)) continue;
        std::getline(fields >> std::ws, key);
        keys[key] = size;
    }
    return text_of(keys);
}

/// What `head-object` says of a key: the four metadata names s3fs and skyvol share, and the size.
struct head_result {
    std::string mode, mtime, uid, gid, size;
    bool operator==(const head_result&) const = default;
};

std::ostream& operator<<(std::ostream& out, const head_result& h) {
    return out << "{mode " << h.mode << ", mtime " << h.mtime << ", uid " << h.uid << ", gid "
               << h.gid << ", size " << h.size << "}";
}

head_result head_object(const std::string& bucket, const std::string& key) {
    const command_result r = aws("s3api head-object --bucket " + bucket + " --key '" + key +
                                 "' --query '[Metadata.mode,Metadata.mtime,Metadata.uid,"
                                 "Metadata.gid,ContentLength]' --output text");
    INFO(key << ": " << r.output);
    REQUIRE(r.status == 0);
    head_result h;
    std::istringstream fields(r.output);
    fields >> h.mode >> h.mtime >> h.uid >> h.gid >> h.size;
    return h;
}

/// What head-object must say of the object behind `src / relative` (the tree it was copied
/// from); directories are "relative/" markers, and their times are not compared.
head_result expected_head(const fs::path& src, const std::string& relative) {
    struct stat st;
    REQUIRE(::lstat((src / relative).c_str(), &st) == 0);
    head_result h;
    h.mode = std::to_string(st.st_mode);
    h.mtime = S_ISDIR(st.st_mode) ? "" : std::to_string(st.st_mtim.tv_sec);
    h.uid = std::to_string(st.st_uid);
    h.gid = std::to_string(st.st_gid);
    h.size = S_ISDIR(st.st_mode) ? "0" : std::to_string(st.st_size);
    return h;
}

// ---- s3fs ----------------------------------------------------------------------------------

/// Whether `pid` is running (a zombie is not).
bool alive(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(in, text)) return false;
    const auto paren = text.rfind(')');
    return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

/// The process running `program` with `argument` among its arguments, or -1.
pid_t find_process(const std::string& program, const std::string& argument) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(e.path() / "cmdline", std::ios::binary);
        std::vector<std::string> args;
        for (std::string a; std::getline(in, a, '\0');)
            args.push_back(a);
        if (args.empty() || fs::path(args[0]).filename() != program) continue;
        for (std::size_t i = 1; i < args.size(); ++i)
            if (args[i] == argument) return static_cast<pid_t>(std::stoi(name));
    }
    return -1;
}

/// A bucket mounted by s3fs (it daemonizes); unmounted, and its daemon ended, at the end.
class s3fs_mount {
public:
    s3fs_mount(const std::string& bucket, const fs::path& at, const fs::path& work)
        : path_(at)
        , log_(work / ("s3fs-" + at.filename().string() + ".log")) {
        fs::create_directories(at);
        const fs::path passwd = work / "s3fs.passwd";
        spit(passwd,
             std::string(test_server::s3_access_key) + ":" + test_server::s3_secret_key + "\n");
        fs::permissions(passwd, fs::perms::owner_read | fs::perms::owner_write);
        result_ = run("s3fs " + bucket + " " + quoted(at) +
                      " -o url=" + shared_server(server_kind::s3rver).endpoint() +
                      " -o use_path_request_style -o passwd_file=" + quoted(passwd) +
                      " -o dbglevel=warn -o logfile=" + quoted(log_));
        for (int i = 0; i < 500 && result_.status == 0 && !is_mounted(at); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        pid_ = find_process("s3fs", at.string());
    }
    s3fs_mount(const s3fs_mount&) = delete;
    s3fs_mount& operator=(const s3fs_mount&) = delete;
    ~s3fs_mount() { unmount(); }

    bool ok() const { return result_.status == 0 && is_mounted(path_) && pid_ > 0; }
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& relative) const { return path_ / relative; }
    /// What s3fs printed, and its log.
    std::string messages() const { return result_.output + slurp(log_); }

    /// Unmounts (s3fs uploads at close, so nothing is pending) and waits for the daemon to end;
    /// true if it is gone without being killed.
    bool unmount() {
        if (is_mounted(path_)) {
            run("fusermount3 -u " + quoted(path_));
            if (is_mounted(path_)) ::umount2(path_.c_str(), MNT_DETACH);
        }
        if (pid_ <= 0) return !is_mounted(path_);
        for (int i = 0; i < 1000 && alive(pid_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        const bool ended = !alive(pid_);
        if (!ended) {
            ::kill(pid_, SIGKILL);
            for (int i = 0; i < 500 && alive(pid_); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        pid_ = -1;
        return ended && !is_mounted(path_);
    }

private:
    fs::path path_;
    fs::path log_;
    command_result result_;
    pid_t pid_ = -1;
};

// ---- trees ---------------------------------------------------------------------------------

constexpr const char* link_target = "nest/one/two/deep.txt";

/// The local reference tree: files of 0 B to 20 MiB (above skyvol's 16 MiB multipart threshold,
/// and s3fs's and awscli's), nested folders ("nest/one" holds only a folder), an empty folder
/// with its own mode, a symlink, chmod'ed files and one dated 2020 by `touch -d`.
void make_sample_tree(const fs::path& src) {
    fs::create_directories(src / "nest/one/two");
    fs::create_directories(src / "modes");
    fs::create_directories(src / "empty");
    spit(src / "zero.bin", "");
    spit(src / "small.txt", "written for interop\n");
    write_random(src / "mid.bin", 3 * one_mib + 1, 1);
    write_random(src / "big.bin", 20 * one_mib + 7, 2);
    spit(src / "nest/top.txt", "top\n");
    spit(src / "nest/one/two/deep.txt", "deep\n");
    fs::create_symlink(link_target, src / "link");
    spit(src / "modes/private.txt", "private\n");
    spit(src / "modes/run.sh", "#!/bin/sh\necho run\n");
    spit(src / "modes/old.txt", "old\n");
    sh("cd " + quoted(src) +
       " && chmod 750 empty && chmod 600 modes/private.txt && chmod 755 modes/run.sh && "
       "chmod 640 modes/old.txt && touch -d '" +
       time_2020 + "' modes/old.txt");
}

/// A local file with its own mode and a 2020 time, for `cp -p`.
void make_stamp(const fs::path& stamp) {
    spit(stamp, "stamped\n");
    sh("chmod 604 " + quoted(stamp) + " && touch -d '" + stamp_time + "' " + quoted(stamp));
}

/// Changes made in place, the same on the reference tree and in a mount: a file dated by
/// `touch -d` and chmod'ed, a new folder with a mode, a symlink going up, and a `cp -p` copy.
void apply_edits(const fs::path& root, const fs::path& stamp) {
    sh("cd " + quoted(root) + " && printf 'touched\\n' > touched.txt && touch -d '" + time_2020 +
       "' touched.txt && chmod 620 touched.txt && mkdir made && chmod 700 made && "
       "ln -s ../small.txt made/up-link && cp -p " +
       quoted(stamp) + " made/copied.txt");
}

/// Every path below `root`, sorted (symlinks not followed).
std::vector<std::string> relative_paths(const fs::path& root) {
    std::vector<std::string> paths;
    for (const auto& e : fs::recursive_directory_iterator(root))
        paths.push_back(e.path().lexically_relative(root).string()); // symlinks stay
    std::sort(paths.begin(), paths.end());
    return paths;
}

/// The objects the tree must become, as `aws s3 ls` shows them: a "dir/" marker per directory,
/// an object per file, and per symlink an object holding the target.
std::string expected_keys(const fs::path& src) {
    key_sizes keys;
    for (const std::string& p : relative_paths(src)) {
        const fs::path at = src / p;
        if (fs::is_symlink(at))
            keys[p] = fs::read_symlink(at).string().size();
        else if (fs::is_directory(at))
            keys[p + "/"] = 0;
        else
            keys[p] = fs::file_size(at);
    }
    return text_of(keys);
}

/// Type, permissions and owner of each path by lstat (no directory is listed first); for files
/// the size and mtime, for symlinks the target.
std::string describe(const fs::path& root, const std::vector<std::string>& paths) {
    std::ostringstream out;
    for (const std::string& p : paths) {
        struct stat st;
        out << p << ": ";
        if (::lstat((root / p).c_str(), &st) != 0) {
            out << std::strerror(errno) << "\n";
            continue;
        }
        const char type = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'f';
        out << type << " " << std::oct << (st.st_mode & 07777) << std::dec << " " << st.st_uid
            << ":" << st.st_gid;
        if (type == 'f') out << " size " << st.st_size << " mtime " << st.st_mtim.tv_sec;
        if (type == 'l') {
            char target[256] = {};
            const ssize_t n = ::readlink((root / p).c_str(), target, sizeof target - 1);
            out << " -> " << (n >= 0 ? std::string(target, static_cast<std::size_t>(n)) : "?");
        }
        out << "\n";
    }
    return out.str();
}

/// What a directory listing shows: every name below `root`, from readdir, sorted.
std::string names(const fs::path& root, const std::string& find_args = "") {
    return run("cd " + quoted(root) + " && find . -mindepth 1 " + find_args + " | LC_ALL=C sort")
        .output;
}

/// The regular files of the reference tree `src`.
std::vector<std::string> regular_files(const fs::path& src) {
    std::vector<std::string> files;
    for (const std::string& p : relative_paths(src))
        if (fs::is_regular_file(fs::symlink_status(src / p))) files.push_back(p);
    return files;
}

/// `sha256sum` of the given files below `root`, by path (not from a listing, whose d_type the
/// listing bug below gets wrong for symlinks).
std::string sums(const fs::path& root, const std::vector<std::string>& files) {
    std::string command = "cd " + quoted(root) + " && sha256sum --";
    for (const std::string& f : files)
        command += " " + test::quoted(fs::path(f));
    return run(command).output;
}

/// Checks that a mount shows the reference tree `src`: every path's type, mode, owner, size,
/// mtime and symlink target (looked up one by one before any listing: see the known bug at the
/// end), the listing's names, content checksums and the empty folder.
void check_tree(const fs::path& mounted, const fs::path& src) {
    const std::vector<std::string> paths = relative_paths(src);
    CHECK(describe(mounted, paths) == describe(src, paths));
    CHECK(names(mounted) == names(src));
    const std::vector<std::string> files = regular_files(src);
    CHECK(sums(mounted, files) == sums(src, files));
    CHECK(fs::is_directory(mounted / "empty"));
    CHECK(fs::is_empty(mounted / "empty"));
    CHECK(slurp(mounted / "link") == "deep\n"); // followed by the reading side
    CHECK(slurp(mounted / "made/up-link") == "written for interop\n");
}

// ---- skyvol writes, peers read ---------------------------------------------------------------

void written_by_skyvol(const std::string& mode) {
    temp_dir dir("skyvol-interop");
    const std::string bucket = make_bucket();
    const fs::path src = dir.path() / "src", stamp = dir.path() / "stamp.txt";
    make_sample_tree(src);
    make_stamp(stamp);
    {
        tool_mount m(skyvol_source(bucket), dir.path() / "skyvol", mode,
                     "--cache-dir " + quoted(dir.path() / "cache"));
        INFO(m.result().output);
        REQUIRE(m.ok());
        // Top-level entries one by one: `cp -a src/.` would also chmod the mount root.
        sh("cp -a " + quoted(src) + "/* " + quoted(m.path()));
        apply_edits(m.path(), stamp);
        const command_result gone = m.unmount(); // write-back: waits for every upload
        INFO(gone.output);
        REQUIRE(gone.status == 0);
        REQUIRE_FALSE(is_mounted(m.path()));
    }
    apply_edits(src, stamp);

    // awscli: the keys (a marker per directory, the symlinks as objects), the metadata, and the
    // content of a recursive download.
    CHECK(bucket_keys(bucket) == expected_keys(src));
    // A few objects (each awscli run is slow); the s3fs mount below checks every path.
    for (const std::string file : {"big.bin", "modes/old.txt", "touched.txt", "link"}) {
        INFO(file);
        CHECK(head_object(bucket, file) == expected_head(src, file));
    }
    head_result folder = head_object(bucket, "empty/");
    CHECK_FALSE(folder.mtime.empty());
    folder.mtime.clear(); // a directory's time is not compared
    CHECK(folder == expected_head(src, "empty"));
    const fs::path download = dir.path() / "download";
    const command_result copied =
        aws("s3 cp --recursive --only-show-errors s3://" + bucket + " " + quoted(download));
    INFO(copied.output);
    REQUIRE(copied.status == 0);
    // awscli downloads symlink objects as files holding the target.
    const std::vector<std::string> files = regular_files(src);
    CHECK(sums(download, files) == sums(src, files));
    CHECK(slurp(download / "link") == link_target);
    CHECK(slurp(download / "made/up-link") == "../small.txt");

    // s3fs: the same tree, with modes, times, owners and symlinks.
    s3fs_mount s(bucket, dir.path() / "s3fs", dir.path());
    INFO(s.messages());
    REQUIRE(s.ok());
    check_tree(s.path(), src);
    CHECK(s.unmount());
}

TEST_CASE("interop: a skyvol write-through mount's files read right with awscli and s3fs",
          "[interop][fuse][servers]") {
    written_by_skyvol("mount");
}

TEST_CASE("interop: a skyvol write-back mount's files read right with awscli and s3fs",
          "[interop][fuse][servers]") {
    written_by_skyvol("mount-cached");
}

// ---- peers write, skyvol reads ---------------------------------------------------------------

TEST_CASE("interop: files uploaded by aws s3 cp read right in a skyvol mount",
          "[interop][fuse][servers]") {
    temp_dir dir("skyvol-interop");
    const std::string bucket = make_bucket();
    const fs::path up = dir.path() / "up";
    fs::create_directories(up / "tree/a/c");
    fs::create_directories(up / "tree/only/sub");
    spit(up / "single.txt", "one object\n");
    write_random(up / "big.bin", 20 * one_mib + 7, 3);
    spit(up / "tree/zero.bin", "");
    spit(up / "tree/small.txt", "small\n");
    spit(up / "tree/a/b.txt", "b\n");
    write_random(up / "tree/a/c/d.bin", one_mib + 5, 4);
    spit(up / "tree/only/sub/f.txt", "f\n");
    const auto before = std::chrono::system_clock::now() - std::chrono::seconds(2);

    // A single upload in parts (awscli uses them above 8 MiB): its debug log shows the calls.
    const command_result big =
        aws("s3 cp --no-progress --debug " + quoted(up / "big.bin") + " s3://" + bucket + "/");
    REQUIRE(big.status == 0);
    auto count = [&](const std::string& what) {
        std::size_t n = 0;
        for (auto at = big.output.find(what); at != std::string::npos;
             at = big.output.find(what, at + 1))
            ++n;
        return n;
    };
    CHECK(count("OperationModel(name=CreateMultipartUpload)") == 1);
    CHECK(count("OperationModel(name=UploadPart)") >= 2);
    CHECK(count("OperationModel(name=CompleteMultipartUpload)") == 1);
    const command_result single =
        aws("s3 cp --only-show-errors " + quoted(up / "single.txt") + " s3://" + bucket + "/");
    INFO(single.output);
    REQUIRE(single.status == 0);
    const command_result tree = aws("s3 cp --recursive --only-show-errors " + quoted(up / "tree") +
                                    " s3://" + bucket + "/tree");
    INFO(tree.output);
    REQUIRE(tree.status == 0);

    // awscli writes objects only: no "dir/" markers.
    key_sizes want_keys;
    for (const std::string& p : relative_paths(up))
        if (fs::is_regular_file(up / p)) want_keys[p] = fs::file_size(up / p);
    CHECK(bucket_keys(bucket) == text_of(want_keys));

    tool_mount m(skyvol_source(bucket), dir.path() / "skyvol", "mount");
    INFO(m.result().output);
    REQUIRE(m.ok());
    const auto after = std::chrono::system_clock::now() + std::chrono::seconds(2);
    // Objects without metadata: the default modes, root's owner (the tool's defaults), the
    // upload time; folders are implicit, from the keys below them.
    for (const std::string& p : relative_paths(up)) {
        INFO(p);
        struct stat st;
        REQUIRE(::lstat((m / p).c_str(), &st) == 0);
        const bool folder = fs::is_directory(up / p);
        CHECK(S_ISDIR(st.st_mode) == folder);
        CHECK(S_ISREG(st.st_mode) == !folder);
        CHECK((st.st_mode & 07777) == (folder ? 0755u : 0644u));
        if (folder) continue;
        CHECK(static_cast<std::uintmax_t>(st.st_size) == fs::file_size(up / p));
        const auto mtime = std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
        CHECK(mtime >= std::chrono::time_point_cast<std::chrono::seconds>(before));
        CHECK(mtime <= after);
    }
    CHECK(slurp(m / "single.txt") == "one object\n");
    const std::vector<std::string> files = regular_files(up);
    CHECK(sums(m.path(), files) == sums(up, files));
    // s3rver leaves "tree/only" (a folder holding only a folder, and no marker since awscli
    // writes none) out of the listing of "tree"; it is still reached by its path, above.
    CHECK(names(m.path()) == names(up, "-path ./tree/only -prune -o -print"));
    CHECK(slurp(m / "tree/only/sub/f.txt") == "f\n");
    CHECK(names(m / "tree/only") == "./sub\n./sub/f.txt\n");
}

TEST_CASE("interop: files written through an s3fs mount read right in a skyvol mount",
          "[interop][fuse][servers]") {
    temp_dir dir("skyvol-interop");
    const std::string bucket = make_bucket();
    const fs::path src = dir.path() / "src", stamp = dir.path() / "stamp.txt";
    make_sample_tree(src);
    make_stamp(stamp);
    {
        s3fs_mount s(bucket, dir.path() / "s3fs", dir.path());
        INFO(s.messages());
        REQUIRE(s.ok());
        sh("cp -a " + quoted(src) + "/* " + quoted(s.path()));
        apply_edits(s.path(), stamp);
        REQUIRE(s.unmount());
    }
    apply_edits(src, stamp);
    // s3fs writes a marker per directory and a symlink as an object, as skyvol does.
    CHECK(bucket_keys(bucket) == expected_keys(src));

    tool_mount m(skyvol_source(bucket), dir.path() / "skyvol", "mount-cached",
                 "--cache-dir " + quoted(dir.path() / "cache"));
    INFO(m.result().output);
    REQUIRE(m.ok());
    check_tree(m.path(), src);
}

// ListObjects carries no user metadata, so a listing alone would show default modes, upload
// times and symlinks as files; the volume HEADs what it does not know (listing_heads). This
// checks `ls -l` and `find` in a fresh mount, before any lookup by path.
TEST_CASE("interop: ls -l in a fresh skyvol mount shows s3fs modes times and symlinks",
          "[interop][fuse][servers]") {
    temp_dir dir("skyvol-interop");
    const std::string bucket = make_bucket();
    {
        s3fs_mount s(bucket, dir.path() / "s3fs", dir.path());
        INFO(s.messages());
        REQUIRE(s.ok());
        sh("cd " + quoted(s.path()) +
           " && printf 'x\\n' > file.txt && chmod 640 file.txt && touch -d '" + time_2020 +
           "' file.txt && ln -s file.txt link");
        REQUIRE(s.unmount());
    }
    tool_mount m(skyvol_source(bucket), dir.path() / "skyvol", "mount");
    INFO(m.result().output);
    REQUIRE(m.ok());
    // What `ls -l` does: list the directory, then lstat each entry at once.
    std::map<std::string, unsigned char> types;
    DIR* d = ::opendir(m.path().c_str());
    REQUIRE(d != nullptr);
    while (const dirent* e = ::readdir(d))
        types[e->d_name] = e->d_type;
    ::closedir(d);
    struct stat file, link;
    REQUIRE(::lstat((m / "file.txt").c_str(), &file) == 0);
    REQUIRE(::lstat((m / "link").c_str(), &link) == 0);
    CHECK((file.st_mode & 07777) == 0640);
    CHECK(file.st_mtim.tv_sec == 1577934245);
    CHECK(S_ISLNK(link.st_mode));
    CHECK((types["link"] == DT_LNK || types["link"] == DT_UNKNOWN));

    // --listing-heads 0 trusts the listing: what `ls -l` shows there, in a fresh mount.
    tool_mount fast(skyvol_source(bucket), dir.path() / "fast", "read-only", "--listing-heads 0");
    INFO(fast.result().output);
    REQUIRE(fast.ok());
    d = ::opendir(fast.path().c_str());
    REQUIRE(d != nullptr);
    while (::readdir(d) != nullptr) {
    }
    ::closedir(d);
    REQUIRE(::lstat((fast / "file.txt").c_str(), &file) == 0);
    REQUIRE(::lstat((fast / "link").c_str(), &link) == 0);
    CHECK((file.st_mode & 07777) == 0644); // the default, not s3fs's 0640
    CHECK(S_ISREG(link.st_mode));          // a symlink object shows as a file
}

} // namespace
} // namespace skyvol::test
