#include "service/objects/object_store.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "host/common/error.hpp"
#include "service/util/sha256.hpp"

namespace fs = std::filesystem;

namespace omicsd {
namespace {

constexpr std::string_view kPrefix = "sha256:";

[[noreturn]] void sys_fail(const std::string& what, const fs::path& p, int err) {
  throw Error(p.string() + ": " + what + ": " + std::strerror(err));
}

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) sys_fail("cannot open for fsync", p, errno);
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    // Some filesystems do not support fsync on directories; data safety then rests on the file fsync.
    if (!(directory && (e == EINVAL || e == EROFS))) sys_fail("fsync failed", p, e);
    return;
  }
  ::close(fd);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

nlohmann::json ObjectRef::to_json() const { return {{"digest", digest}, {"size", size}, {"path", path}}; }

ObjectRef ObjectRef::from_json(const nlohmann::json& j) {
  try {
    ObjectRef r;
    r.digest = j.at("digest").get<std::string>();
    r.size = j.at("size").get<uint64_t>();
    r.path = j.value("path", std::string());
    if (!is_sha256_digest(r.digest))
      throw InputError("object reference: malformed digest '" + r.digest + "'");
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string("object reference: ") + e.what());
  }
}

bool is_sha256_digest(std::string_view s) {
  if (s.size() != kPrefix.size() + 64 || s.substr(0, kPrefix.size()) != kPrefix) return false;
  for (char c : s.substr(kPrefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

ObjectStore::ObjectStore(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(root_ / "objects" / "sha256", ec);
  if (!ec) fs::create_directories(root_ / "tmp", ec);
  if (ec) throw Error(root_.string() + ": cannot create the object store: " + ec.message());
  root_ = fs::canonical(root_);
  // Upload spools and temp objects a crash left behind: one untouched for a day is no upload in
  // progress (a live one is written continuously; the idle timeout is minutes), even by another
  // daemon or worker sharing the directory.
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24);
  for (const auto& e : fs::directory_iterator(root_ / "tmp", ec)) {
    std::error_code e2;
    if (e.is_regular_file(e2) && e.last_write_time(e2) < cutoff) fs::remove(e.path(), e2);
  }
}

std::string ObjectStore::digest_file(const fs::path& path, uint64_t* size_out) {
  return std::string(kPrefix) + sha256_file_hex(path, size_out);
}

std::string ObjectStore::digest_bytes(std::string_view data) {
  return std::string(kPrefix) + sha256_hex(data);
}

fs::path ObjectStore::path_of(const std::string& digest) const {
  if (!is_sha256_digest(digest))
    throw InputError("malformed object digest '" + digest + "' (want sha256:<64 hex>)");
  const std::string hex = digest.substr(kPrefix.size());
  return root_ / "objects" / "sha256" / hex.substr(0, 2) / hex.substr(2);
}

bool ObjectStore::has(const std::string& digest) const {
  if (!is_sha256_digest(digest)) return false;
  std::error_code ec;
  return fs::is_regular_file(path_of(digest), ec);
}

std::optional<ObjectRef> ObjectStore::get(const std::string& digest) const {
  if (!is_sha256_digest(digest)) return std::nullopt;
  const fs::path p = path_of(digest);
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec) return std::nullopt;
  return ObjectRef{digest, uint64_t(size), p.string()};
}

fs::path ObjectStore::temp_path() const {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
  return root_ / "tmp" /
         ("put." + std::to_string(::getpid()) + "." + std::to_string(counter++) + "." +
          std::to_string(rng() % 1000000000));
}

ObjectRef ObjectStore::install(const fs::path& tmp, const std::string& digest, uint64_t size) {
  const fs::path dst = path_of(digest);
  std::error_code ec;
  if (fs::is_regular_file(dst, ec)) {  // identical content already stored: keep the existing object
    fs::remove(tmp, ec);
    return ObjectRef{digest, size, dst.string()};
  }
  fs::create_directories(dst.parent_path(), ec);
  if (ec) throw Error(dst.parent_path().string() + ": cannot create: " + ec.message());
  ::chmod(tmp.c_str(), 0444);
  fsync_path(tmp, false);
  // rename() is atomic: a concurrent writer of the same content replaces it with identical bytes.
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    const int e = errno;
    fs::remove(tmp, ec);
    sys_fail("cannot rename into the object store", dst, e);
  }
  fsync_path(dst.parent_path(), true);
  return ObjectRef{digest, size, dst.string()};
}

ObjectRef ObjectStore::put_bytes(std::string_view data) {
  const std::string digest = digest_bytes(data);
  if (auto existing = get(digest)) return *existing;
  const fs::path tmp = temp_path();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) sys_fail("cannot create", tmp, errno);
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      sys_fail("write failed", tmp, e);
    }
    off += size_t(n);
  }
  ::close(fd);
  return install(tmp, digest, data.size());
}

ObjectRef ObjectStore::adopt_temp(const fs::path& tmp, const std::string& digest, uint64_t size) {
  if (!is_sha256_digest(digest))
    throw InputError("malformed object digest '" + digest + "' (want sha256:<64 hex>)");
  if (tmp.parent_path() != tmp_dir())
    throw InputError(tmp.string() + ": not a temp file of the object store " + root_.string());
  std::error_code ec;
  if (!fs::is_regular_file(tmp, ec)) throw InputError(tmp.string() + ": not a regular file");
  return install(tmp, digest, size);
}

ObjectRef ObjectStore::put_file(const fs::path& src, Mode mode) {
  std::error_code ec;
  if (!fs::is_regular_file(src, ec)) throw InputError(src.string() + ": not a regular file");
  if (mode == Mode::Move) {
    uint64_t size = 0;
    const std::string digest = digest_file(src, &size);
    if (auto existing = get(digest)) {
      fs::remove(src, ec);
      return *existing;
    }
    const fs::path tmp = temp_path();
    if (::rename(src.c_str(), tmp.c_str()) == 0) return install(tmp, digest, size);
    if (errno != EXDEV) sys_fail("cannot move into the object store", src, errno);
    ObjectRef r = put_file(src, Mode::Copy);  // other filesystem: copy, then drop the source
    fs::remove(src, ec);
    return r;
  }
  // Copy: hash while copying, so the object's digest is the digest of exactly the bytes written.
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw InputError(src.string() + ": cannot open: " + std::strerror(errno));
  const fs::path tmp = temp_path();
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const int e = errno;
    ::close(in);
    sys_fail("cannot create", tmp, e);
  }
  auto fail = [&](const std::string& what, const fs::path& p, int e) {
    ::close(in);
    ::close(out);
    ::unlink(tmp.c_str());
    sys_fail(what, p, e);
  };
  Sha256 h;
  std::vector<char> buf(size_t(1) << 20);
  uint64_t size = 0;
  for (;;) {
    const ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("read failed", src, errno);
    }
    if (n == 0) break;
    h.update(buf.data(), size_t(n));
    size += uint64_t(n);
    ssize_t off = 0;
    while (off < n) {
      const ssize_t w = ::write(out, buf.data() + off, size_t(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("write failed", tmp, errno);
      }
      off += w;
    }
  }
  ::close(in);
  ::close(out);
  return install(tmp, std::string(kPrefix) + h.final_hex(), size);
}

bool path_is_within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty() && std::next(r) == root.end()) break;  // trailing slash on root
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

ResolvedInput resolve_input_uri(const std::string& uri, const std::vector<fs::path>& allowed_roots,
                                const ObjectStore* store) {
  if (uri.empty()) throw InputError("empty input URI");
  if (uri.find('\0') != std::string::npos) throw InputError("input URI contains a NUL byte");
  if (uri.rfind("sha256:", 0) == 0) {
    if (!is_sha256_digest(uri))
      throw InputError("'" + uri + "': malformed digest (want sha256:<64 lowercase hex>)");
    if (!store || !store->has(uri)) throw InputError("'" + uri + "': no such object in the object store");
    return {store->path_of(uri), uri};
  }
  std::string raw;
  if (uri.rfind("file://", 0) == 0) {
    std::string rest = uri.substr(7);
    const size_t slash = rest.find('/');
    const std::string authority = slash == std::string::npos ? rest : rest.substr(0, slash);
    if (!authority.empty() && authority != "localhost")
      throw InputError("'" + uri + "': file URIs must name a local absolute path (file:///path)");
    rest = slash == std::string::npos ? std::string() : rest.substr(slash);
    if (rest.find_first_of("?#") != std::string::npos)
      throw InputError("'" + uri + "': query and fragment are not allowed in file URIs");
    for (size_t i = 0; i < rest.size(); ++i) {  // percent-decoding
      if (rest[i] == '%') {
        const int hi = i + 2 < rest.size() ? hex_value(rest[i + 1]) : -1;
        const int lo = i + 2 < rest.size() ? hex_value(rest[i + 2]) : -1;
        if (hi < 0 || lo < 0) throw InputError("'" + uri + "': bad percent-escape");
        const char c = char(hi * 16 + lo);
        if (c == '\0') throw InputError("'" + uri + "': escaped NUL byte");
        raw.push_back(c);
        i += 2;
      } else {
        raw.push_back(rest[i]);
      }
    }
  } else if (uri.find("://") != std::string::npos) {
    throw InputError("'" + uri + "': unsupported URI scheme (use file:///absolute/path or sha256:<hex>)");
  } else {
    raw = uri;
  }
  const fs::path p(raw);
  if (raw.empty() || !p.is_absolute()) throw InputError("'" + uri + "': input paths must be absolute");
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(p, ec);
  if (ec) throw InputError("'" + uri + "': cannot resolve: " + ec.message());
  bool inside = false;
  for (const auto& root : allowed_roots) {
    const fs::path croot = fs::weakly_canonical(root, ec);
    if (ec) continue;
    if (path_is_within(canon, croot)) {
      inside = true;
      break;
    }
  }
  if (!inside) throw InputError("'" + uri + "': outside the allowed input roots");
  if (!fs::exists(canon, ec)) throw InputError("'" + uri + "': no such file");
  if (!fs::is_regular_file(canon, ec)) throw InputError("'" + uri + "': not a regular file");
  return {canon, ""};
}

RootedFile& RootedFile::operator=(RootedFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

RootedFile::~RootedFile() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// openat2 without a libc wrapper; -1 with errno ENOSYS where the kernel (or a seccomp filter) lacks it.
int openat2_beneath(int dirfd, const std::string& rel, int flags) {
#ifdef SYS_openat2
  open_how how{};
  how.flags = uint64_t(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd;
  do {
    fd = int(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
  } while (fd < 0 && errno == EAGAIN);  // a concurrent rename: the kernel asks for a retry
  return fd;
#else
  (void)dirfd, (void)rel, (void)flags;
  errno = ENOSYS;
  return -1;
#endif
}

// The fallback: each component opened with O_NOFOLLOW from the root down (any symlink refused).
int open_nofollow_walk(int rootfd, const fs::path& rel, int flags) {
  int dir = ::dup(rootfd);
  if (dir < 0) return -1;
  std::vector<std::string> parts;
  for (const auto& c : rel) parts.push_back(c.string());
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    if (parts[i] == ".." || parts[i].empty()) {
      ::close(dir);
      errno = EXDEV;
      return -1;
    }
    const int next = ::openat(dir, parts[i].c_str(),
                              last ? flags | O_NOFOLLOW : O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int e = errno;
    ::close(dir);
    if (next < 0) {
      errno = e == ELOOP ? EXDEV : e;
      return -1;
    }
    dir = next;
  }
  return dir;
}

}  // namespace

RootedFile open_within_roots(const fs::path& path, const std::vector<fs::path>& roots,
                             const std::string& shown) {
  const fs::path p = path.lexically_normal();
  if (!p.is_absolute()) throw InputError(shown + ": input paths must be absolute");
  std::vector<fs::path> candidates;  // each root as configured and canonical (the operator's links)
  for (const auto& root : roots) {
    std::error_code ec;
    fs::path r = root.lexically_normal();
    if (!r.has_filename() && r.has_relative_path()) r = r.parent_path();  // "/data/" -> "/data"
    candidates.push_back(r);
    const fs::path c = fs::weakly_canonical(root, ec);
    if (!ec && c != candidates.back()) candidates.push_back(c);
  }
  for (const auto& croot : candidates) {
    if (!path_is_within(p, croot)) continue;
    const fs::path rel = p.lexically_relative(croot);
    if (rel.empty() || rel == "." || *rel.begin() == "..") continue;
    const int rootfd = ::open(croot.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) continue;
    // O_NONBLOCK: a FIFO planted under the root must not hang the importer in open().
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = openat2_beneath(rootfd, rel.string(), flags);
    if (fd < 0 && (errno == ENOSYS || errno == EPERM)) fd = open_nofollow_walk(rootfd, rel, flags);
    const int err = errno;
    ::close(rootfd);
    if (fd < 0) {
      if (err == EXDEV || err == ELOOP)
        throw InputError(shown + ": a symbolic link leads out of the allowed input root " + croot.string());
      throw InputError(shown + ": cannot open: " + std::strerror(err));
    }
    RootedFile f(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw InputError(shown + ": not a regular file");
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return f;
  }
  throw InputError(shown + ": outside the allowed input roots");
}

}  // namespace omicsd
