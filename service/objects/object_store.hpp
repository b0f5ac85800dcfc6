#pragma once
// Content-addressed local object directory (the embedded default for task outputs) and the
// input-URI policy (inputs only from configured roots or from the store itself).
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace omicsd {

// One immutable object: digest "sha256:<64 hex>", size in bytes, and its path in the store.
struct ObjectRef {
  std::string digest;
  uint64_t size = 0;
  std::string path;

  nlohmann::json to_json() const;                     // {"digest","size","path"}
  static ObjectRef from_json(const nlohmann::json&);  // throws InputError on a malformed object
  bool operator==(const ObjectRef&) const = default;
};

// True for "sha256:" followed by exactly 64 lowercase hex digits.
bool is_sha256_digest(std::string_view s);

// Objects live at <root>/objects/sha256/<first 2 hex>/<remaining 62 hex>, written read-only
// (0444) and never modified. Writes go to <root>/tmp/ first, are fsynced and then renamed into
// place (and the directory fsynced), so a reader never sees a partial object and a crash leaves at
// most a stray temp file. Identical content is stored once. Safe to use from several threads and
// processes sharing the directory (rename of identical content is idempotent).
class ObjectStore {
 public:
  // Creates <root>/objects/sha256 and <root>/tmp if missing. Throws Error when it cannot.
  explicit ObjectStore(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }

  // Stores a finished file. Copy: the source stays (hashing and copying in one pass).
  // Move: the source is renamed into the store when on the same filesystem (no copy of a large
  // BAM), else copied and then removed; if the object already exists the source is just removed.
  enum class Mode { Copy, Move };
  ObjectRef put_file(const std::filesystem::path& src, Mode mode = Mode::Copy);
  ObjectRef put_bytes(std::string_view data);
  // Installs `tmp`, a file the caller wrote inside tmp_dir() and hashed while writing it (e.g. an
  // upload received over HTTP): fsynced, made read-only and renamed into place under `digest`, or
  // just removed when that object already exists. The caller vouches that the content has this
  // digest and size. Throws InputError for a malformed digest or a file outside tmp_dir().
  ObjectRef adopt_temp(const std::filesystem::path& tmp, const std::string& digest, uint64_t size);
  // Where temp files that adopt_temp() may install are created (same file system as the objects).
  std::filesystem::path tmp_dir() const { return root_ / "tmp"; }

  // Path an object with this digest has (or would have). Throws InputError for a malformed digest.
  std::filesystem::path path_of(const std::string& digest) const;
  bool has(const std::string& digest) const;  // false for a malformed digest
  std::optional<ObjectRef> get(const std::string& digest) const;

  // "sha256:<hex>" of a file, streamed. Throws InputError when it cannot be read.
  static std::string digest_file(const std::filesystem::path& path, uint64_t* size_out = nullptr);
  static std::string digest_bytes(std::string_view data);

 private:
  std::filesystem::path temp_path() const;
  ObjectRef install(const std::filesystem::path& tmp, const std::string& digest, uint64_t size);

  std::filesystem::path root_;
};

// An input after policy checks: a canonical path and, when it was given as a digest, that digest.
struct ResolvedInput {
  std::filesystem::path path;
  std::string digest;  // set when the URI was "sha256:<hex>" (the object store's content)
};

// Accepts "file:///abs/path" (percent-escapes decoded; authority must be empty or "localhost"), a
// plain absolute path, or "sha256:<hex>" naming an object in *store. Paths are canonicalised with
// std::filesystem::weakly_canonical (symlinks and ".." resolved) and must then lie inside one of
// allowed_roots (also canonicalised) and be an existing regular file. Throws InputError for a
// relative path, another scheme, a NUL byte, a path outside every root, a missing file or an
// unknown digest.
ResolvedInput resolve_input_uri(const std::string& uri,
                                const std::vector<std::filesystem::path>& allowed_roots,
                                const ObjectStore* store = nullptr);

// True when canonical `path` equals canonical `root` or lies below it (component-wise, so
// "/data2/x" is not inside "/data").
bool path_is_within(const std::filesystem::path& path, const std::filesystem::path& root);

// A client-named file opened beneath the allowed root it lies in, at the moment it is read: the
// check of resolve_input_uri is made again by the kernel while it opens the file, so a file (or a
// directory above it) swapped for a symlink out of the root after registration is refused instead
// of read. Readers that need a path (htslib) open path(), /proc/self/fd/<fd>: the very file that was
// checked, whatever happens to its name afterwards.
class RootedFile {
 public:
  RootedFile() = default;
  explicit RootedFile(int fd) : fd_(fd) {}
  RootedFile(RootedFile&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  RootedFile& operator=(RootedFile&& o) noexcept;
  RootedFile(const RootedFile&) = delete;
  RootedFile& operator=(const RootedFile&) = delete;
  ~RootedFile();
  int fd() const { return fd_; }
  std::filesystem::path path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_ = -1;
};

// Opens `path` (absolute) read-only beneath whichever of `roots` lexically contains it, resolving it
// with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) from the root's directory: symlinks that stay
// inside the root are followed, one that leads out of it (absolute or through "..") is refused. Where
// the kernel lacks openat2, every component is opened with O_NOFOLLOW instead (no symlinks at all).
// The result must be a regular file. Throws InputError naming `shown` for a path outside every
// root, a link out of its root, a missing file or anything but a regular file.
RootedFile open_within_roots(const std::filesystem::path& path,
                             const std::vector<std::filesystem::path>& roots, const std::string& shown);

}  // namespace omicsd
