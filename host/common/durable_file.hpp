#pragma once
#include <string>

namespace omicsd {

// Helpers for outputs that must never be seen half-written: write under a temporary name, fsync,
// rename, fsync the directory. Failures throw Error("cannot <what> <file>: <reason>").

// "<strerror(err)>", or "htslib error" when htslib failed without setting errno.
std::string errno_text(int err);
[[noreturn]] void fail_io(const std::string& what, const std::string& file, int err);
// fsync a file, or a directory (so a rename inside it is durable).
void fsync_path(const std::string& path, bool directory);
// Writes `content` to `path` atomically: <path>.tmp.<pid>, fsync, rename, fsync the directory.
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace omicsd
