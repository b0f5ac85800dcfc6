#pragma once
// The HTTP transfer mode of `omicsd worker` (`--transfer http`): the worker shares no storage with
// the daemon. Before a task runs its inputs are fetched over HTTP into the worker's own data
// directory and handed to the TaskRunner as local files; afterwards each output object is uploaded
// with PUT /v1/objects/{digest} (docs/api.md, "Objects"). Digests, and so cache keys, are the same
// as with shared storage.
//
// Layout under the worker's --data-dir (its ObjectStore root):
//   objects/...                 downloaded inputs and produced outputs (content-addressed)
//   inputs/<hex>/<name>         hard link of input object <hex> under the name the engine opens, with
//                               the companion indexes next to it (<name>.fai, .omi, .bai, ...)
//   inputs/sources/<hex>.json   a daemon file input (URI, ETag) -> the object it last gave
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "service/objects/object_backend.hpp"
#include "service/objects/object_store.hpp"

namespace omicsd {

class HttpClient;

// The S3 transfer mode (`--transfer s3`) uses the same stager with an object backend: sha256: inputs
// come from the fleet's object store (S3) instead of the daemon, s3:// inputs straight from their
// bucket, and outputs go to the object store, each with the metadata documents that name its index
// (meta/index-of/<hex>.json) and a reference's minimizer index (meta/omi-of/<hex>.json), so the next
// worker, which shares nothing with this one, finds them. File inputs still come from the daemon.
class TransferStager {
 public:
  // `objects` / `s3` (both or neither): the S3 transfer mode.
  TransferStager(HttpClient& client, ObjectStore& store, ObjectBackend* objects = nullptr,
                 S3Client* s3 = nullptr);

  struct Staged {
    nlohmann::json inputs;                       // the task's inputs, every URI now a local path
    nlohmann::json parameters;                   // regions / targets likewise
    std::map<std::string, std::string> digests;  // local path -> its digest
    std::map<std::string, std::string> origin;   // local path -> the URI it stands for
  };

  // Fetches every input of a leased task (file inputs from GET /v1/tasks/{id}/inputs/{key}, sent
  // again only when the daemon's ETag changed; sha256: inputs from GET /v1/objects/{digest} unless
  // the local store has them; companion indexes when the daemon has them), verifying digests.
  // Throws InputError when the daemon cannot serve an input (404/400: the task cannot run
  // anywhere), Error / HttpClientError for transient trouble (retry the task).
  Staged stage(const std::string& task_id, const std::string& lease_token, const nlohmann::json& inputs,
               const nlohmann::json& parameters);

  // Uploads each object the daemon (S3 mode: the object store) does not have yet (HEAD, then a
  // streamed PUT). S3 mode: then the metadata documents of the outputs and of `staged`'s inputs.
  void upload(const std::map<std::string, ObjectRef>& outputs, const Staged* staged = nullptr);

  // <data-dir>/inputs: where staged inputs live (the TaskRunner's only allowed root).
  std::filesystem::path inputs_root() const { return store_.root() / "inputs"; }

  // Replaces, anywhere in `j`, a string that is a key of `origin` by its value (provenance names
  // the daemon's URIs, not the worker's local copies).
  static void restore_uris(nlohmann::json& j, const std::map<std::string, std::string>& origin);

 private:
  std::string stage_one(const std::string& task_path, const std::string& token, const std::string& key,
                        const std::string& uri, Staged& out);
  void fetch_object(const std::string& digest, const std::string& what);
  std::string fetch_file_input(const std::string& task_path, const std::string& token, const std::string& key,
                               const std::string& uri);
  // True when the index is there (already, or fetched now); false when the daemon has none.
  bool fetch_companion(const std::string& task_path, const std::string& token, const std::string& key,
                       const std::string& ext, const std::filesystem::path& local);
  std::filesystem::path link(const std::string& digest, const std::string& name);
  std::filesystem::path temp_path(const std::filesystem::path& dir, const std::string& stem) const;
  // S3 mode: an s3:// input (again only when its ETag changed) and its companion indexes.
  std::string fetch_s3_input(const std::string& key, const std::string& uri);
  bool fetch_s3_companion(const std::string& uri, const std::string& ext, const std::filesystem::path& local);
  // S3 mode: meta/<kind>/<hex of digest>.json and the object it names, from or to the object store.
  void pull_meta(const char* kind, const std::string& digest);
  void push_meta(const char* kind, const std::string& digest);

  HttpClient& client_;
  ObjectStore& store_;
  ObjectBackend* objects_ = nullptr;
  S3Client* s3_ = nullptr;
};

}  // namespace omicsd
