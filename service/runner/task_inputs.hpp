#pragma once
// Inputs of a pipeline task, opened once beneath their allowed roots and held open for the task's
// life. The engine is handed links in the task's scratch directory to /proc/self/fd/<fd>, never a
// client-named path: a file (or a directory above it, or an index next to it) swapped for a symlink
// out of the roots after the check is refused when opened, and one swapped after the open is never
// read, because nothing opens the name again. The indexes the engine looks for next to an input
// (sidecar_extensions) are opened the same way and staged next to the input's link.
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "service/objects/object_store.hpp"

namespace omicsd {

// One file as opened: where it was found and the descriptor that is read.
struct OpenedFile {
  std::filesystem::path source;  // canonical path inside a root, or the object's path in the store
  RootedFile file;
  struct stat st {};  // of the open file: size, mtime, device and inode
};

struct TaskInput {
  std::string uri;     // as the client named it (error messages, provenance)
  std::string digest;  // "sha256:<hex>": the URI for a store object; else filled in by the runner
  bool from_store = false;
  OpenedFile main;
  std::map<std::string, OpenedFile> sidecars;  // ".bai" -> the index found next to the source
};

// The files the engine opens next to an input of this key, as suffixes of its name: for the
// reference, its FASTA index and BGZF block index (CRAM decoding) and the aligner's minimizer index;
// for an alignment file, its BAM, CSI or CRAM index. Empty for the other keys.
const std::vector<std::string>& sidecar_extensions(const std::string& key);

// Opens an input `checked` by resolve_input_uri: a file beneath the root it lies in, a store object
// beneath <store>/objects. For a file from a root, also every sidecar that exists next to its
// canonical path, each checked and opened like the input itself. Throws InputError naming the input
// (or the sidecar) when it has become a link out of the roots, vanished or is not a regular file.
TaskInput open_task_input(const std::string& key, const std::string& uri, const ResolvedInput& checked,
                          const std::vector<std::filesystem::path>& roots, const ObjectStore& store);

// Makes `link` a symlink to `target` (replacing what was there); the engine opens `link`.
void stage_link(const std::filesystem::path& link, const std::filesystem::path& target);

// `text` with every occurrence of each key of `names` replaced by its value, longest keys first: an
// engine message about a staged link names the client's file instead.
std::string with_client_names(std::string text, const std::map<std::string, std::string>& names);

}  // namespace omicsd
