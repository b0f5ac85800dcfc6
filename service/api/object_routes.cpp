#include "service/api/object_routes.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>

#include "host/common/error.hpp"
#include "service/http/http_router.hpp"
#include "service/jobs/job_store.hpp"
#include "service/util/metrics.hpp"
#include "service/objects/object_store.hpp"
#include "service/runner/task_inputs.hpp"
#include "service/jobs/workflow.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using http::HttpError;
using http::Request;
using http::Response;
using http::Scope;

std::string must_digest(const Request& req) {
  const std::string raw = req.param("digest");
  auto d = normalize_digest(raw);
  if (!d) throw HttpError(400, "malformed object digest '" + raw + "' (want sha256:<64 hex>)");
  return *d;
}

Response object_answer(const ObjectRef& ref, int status) {
  return Response::json({{"digest", ref.digest}, {"size", ref.size}}, status);
}

// The index of object `digest` with extension `ext` ("bai", "tbi", "csi"): the output of that name
// next to it in one of the run's tasks (align: bam + bai; call: vcf + tbi), else the association
// a worker sharing this data directory recorded (<data>/meta/index-of/<hex>.json).
std::optional<std::string> companion_object(const ObjectStore& objects, const Run& run,
                                            const std::string& digest, const std::string& ext) {
  if (run.outputs.is_object())
    for (const auto& [task, outs] : run.outputs.items()) {
      if (!outs.is_object() || !outs.contains(ext) || !outs[ext].is_object()) continue;
      for (const auto& [name, ref] : outs.items())
        if (ref.is_object() && ref.value("digest", std::string()) == digest) {
          const std::string idx = outs[ext].value("digest", std::string());
          if (objects.has(idx)) return idx;
        }
    }
  std::ifstream meta(objects.root() / "meta" / "index-of" / (digest.substr(7) + ".json"));
  if (meta) {
    try {
      const json m = json::parse(meta);
      const std::string idx = m.at("digest").get<std::string>();
      if (m.at("ext").get<std::string>() == "." + ext && objects.has(idx)) return idx;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

struct Routes {
  ObjectStore& objects;
  JobStore& jobs;
  ObjectRoutesOptions opt;
  std::shared_ptr<Metrics> metrics;

  void count_upload(const char* result, std::uint64_t bytes) {
    if (!metrics) return;
    metrics->inc("omicsd_object_uploads_total", 1, {{"result", result}});
    if (bytes) metrics->inc("omicsd_object_upload_bytes_total", double(bytes));
  }

  Response get_object(Request& req) {
    const std::string d = must_digest(req);
    if (!objects.has(d)) throw HttpError(404, "no object " + d + " in the object store");
    Response r = Response::from_file(objects.path_of(d));
    r.set_header("ETag", "\"" + d + "\"");
    r.set_header("X-Content-Digest", d);
    return r;
  }

  std::optional<Response> before_put(Request& req) {
    const std::string d = must_digest(req);
    if (auto have = objects.get(d)) {
      count_upload("exists", 0);
      return object_answer(*have, 200);  // idempotent: the stored object is never rewritten
    }
    return std::nullopt;
  }

  Response put_object(Request& req) {
    const std::string d = must_digest(req);
    if (req.body_sha256 != d) {
      count_upload("digest_mismatch", 0);
      throw HttpError(400, "the body's digest " + req.body_sha256 + " (" + std::to_string(req.body_size) +
                               " bytes) does not match " + d + " in the URL; nothing was stored");
    }
    if (auto have = objects.get(d)) {  // stored by a concurrent upload meanwhile
      count_upload("exists", 0);
      return object_answer(*have, 200);
    }
    const ObjectRef ref = objects.adopt_temp(req.body_file, d, req.body_size);
    count_upload("created", req.body_size);
    Response r = object_answer(ref, 201);
    r.set_header("Location", "/v1/objects/" + d);
    return r;
  }

  Response task_input(Request& req, const std::string& key) {
    const std::string id = req.param("id");
    const std::string token = req.header(kLeaseTokenHeader);
    if (token.empty())
      throw HttpError(400, std::string("missing ") + kLeaseTokenHeader + " header (the task's lease_token)");
    const auto task = jobs.get_task(id);
    if (!task) throw HttpError(404, "unknown task '" + id + "'");
    // Like heartbeat and complete: a lease that is not (or no longer) the task's current one is 409.
    if (task->state != TaskState::Running || task->lease_token != token)
      throw HttpError(409, "task '" + id + "': lease " + token +
                               " is not the task's current lease (task is " + to_string(task->state) + ")");
    const auto run = jobs.get_run(task->run_id);
    if (!run) throw HttpError(404, "unknown run '" + task->run_id + "'");
    std::vector<std::pair<std::string, std::string>> keys;
    try {
      keys = task_input_keys(*run, *task);
    } catch (const InputError& e) {
      throw HttpError(404, e.what());
    }
    auto find = [&](const std::string& k) -> const std::string* {
      for (const auto& [name, uri] : keys)
        if (name == k) return &uri;
      return nullptr;
    };
    std::string base = key, ext;
    const std::string* uri = find(key);
    if (!uri) {
      const auto dot = key.rfind('.');
      if (dot != std::string::npos) {
        base = key.substr(0, dot);
        ext = key.substr(dot + 1);
        const auto& allowed = input_companions(base);
        if (std::find(allowed.begin(), allowed.end(), ext) != allowed.end()) uri = find(base);
      }
    }
    if (!uri) {
      std::string list;
      for (const auto& [name, u] : keys) {
        list += (list.empty() ? "" : ", ") + name;
        for (const auto& e : input_companions(name)) list += ", " + name + "." + e;
      }
      throw HttpError(404, "task '" + id + "' has no input '" + key + "' (it has: " + list + ")");
    }
    const std::string what = "input '" + key + "' of task '" + id + "'";
    fs::path file;
    std::string digest;
    std::shared_ptr<const void> held;  // the opened input, until it is sent
    if (uri->rfind("sha256:", 0) == 0) {
      if (!is_sha256_digest(*uri)) throw HttpError(404, what + ": malformed digest " + *uri);
      if (ext.empty()) {
        if (!objects.has(*uri)) throw HttpError(404, what + ": no object " + *uri + " in the object store");
        digest = *uri;
      } else {
        auto idx = companion_object(objects, *run, *uri, ext);
        if (!idx) throw HttpError(404, what + ": no ." + ext + " index of " + *uri + " is known");
        digest = *idx;
      }
      file = objects.path_of(digest);
    } else {
      try {
        // Only what resolves inside the --allow-root directories (symlinks and ".." resolved), and
        // opened beneath its root: a link swapped in after the check is refused by the kernel.
        ResolvedInput r = resolve_input_uri(*uri, opt.allow_roots, &objects);
        if (!ext.empty()) r = resolve_input_uri(r.path.string() + "." + ext, opt.allow_roots, nullptr);
        auto opened =
            std::make_shared<RootedFile>(open_within_roots(r.path, opt.allow_roots, r.path.string()));
        file = opened->path();
        held = std::move(opened);
      } catch (const InputError& e) {
        throw HttpError(404, what + ": " + e.what());
      }
    }
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) throw HttpError(404, what + ": the file is not available");
    const std::string etag =
        digest.empty()
            ? "\"" + std::to_string(st.st_ino) + "-" + std::to_string(st.st_size) + "-" +
                  std::to_string(int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec) + "\""
            : "\"" + digest + "\"";
    if (req.header("if-none-match") == etag) {
      Response r;
      r.status = 304;
      r.content_type = "";
      r.set_header("ETag", etag);
      return r;
    }
    Response r = Response::from_file(file);
    r.hold = std::move(held);
    r.set_header("ETag", etag);
    if (!digest.empty()) r.set_header("X-Content-Digest", digest);
    return r;
  }
};

}  // namespace

std::optional<std::string> normalize_digest(const std::string& s) {
  std::string hex = s.rfind("sha256:", 0) == 0 ? s.substr(7) : s;
  if (hex.size() != 64) return std::nullopt;
  for (char& c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    c = char(std::tolower(static_cast<unsigned char>(c)));
  }
  return "sha256:" + hex;
}

void add_object_routes(http::Router& router, ObjectStore& objects, JobStore& jobs,
                       ObjectRoutesOptions options, std::shared_ptr<Metrics> metrics) {
  if (metrics) {
    metrics->describe_counter("omicsd_object_uploads_total",
                              "PUT /v1/objects uploads by result (created, exists, digest_mismatch)");
    metrics->describe_counter("omicsd_object_upload_bytes_total", "Bytes of objects stored through PUT");
  }
  auto r = std::make_shared<Routes>(Routes{objects, jobs, std::move(options), std::move(metrics)});
  router.get(
      "/v1/objects/{digest}", [r](Request& req) { return r->get_object(req); }, Scope::worker);
  http::StreamedBody body;
  body.spool_dir = objects.tmp_dir();
  body.max_bytes = r->opt.max_object_bytes;
  body.min_free_bytes = r->opt.min_free_bytes;
  body.idle_timeout = r->opt.upload_idle_timeout;
  body.before_body = [r](Request& req) { return r->before_put(req); };
  router.add_streamed(
      "PUT", "/v1/objects/{digest}", [r](Request& req) { return r->put_object(req); }, Scope::worker,
      std::move(body));
  router.get(
      "/v1/tasks/{id}/inputs/{key}", [r](Request& req) { return r->task_input(req, req.param("key")); },
      Scope::worker);
  // "reads/0" may also come unencoded, as two segments.
  router.get(
      "/v1/tasks/{id}/inputs/{key}/{index}",
      [r](Request& req) { return r->task_input(req, req.param("key") + "/" + req.param("index")); },
      Scope::worker);
}

}  // namespace omicsd
