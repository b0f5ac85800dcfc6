#include "service/stores/reference_routes.hpp"

#include <fstream>
#include <memory>
#include <sstream>

#include "host/common/error.hpp"
#include "service/http/http_paging.hpp"
#include "service/jobs/job_store.hpp"
#include "service/stores/reference_store.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;
using http::HttpError;
using http::Request;
using http::Response;
using http::Scope;

constexpr std::uint64_t kMaxJsonBody = 1 << 20;  // a registration is a few hundred bytes

// Store errors onto HTTP statuses: unknown id 404, conflicts 409, the caller's input 400.
template <typename F>
auto guard(F&& f) -> decltype(f()) {
  return http::answer_errors(std::forward<F>(f));
}

bool is_json(const Request& req) {
  std::string ct = req.header("content-type");
  for (char& c : ct) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ct.rfind("application/json", 0) == 0;
}

std::string must_str(const json& b, const char* k, bool required) {
  if (!b.contains(k) || b[k].is_null()) {
    if (required) throw HttpError(400, std::string("missing '") + k + "'");
    return "";
  }
  if (!b[k].is_string()) throw HttpError(400, std::string("'") + k + "' must be a string");
  return b[k].get<std::string>();
}

struct Routes {
  ReferenceStore& store;
  ReferenceRoutesOptions opt;

  std::string idempotency_key(const Request& req) const {
    std::string key = req.header("Idempotency-Key");
    if (key.size() > 256) throw HttpError(400, "Idempotency-Key longer than 256 characters");
    return key;
  }

  // Before any of an upload is read: a missing ?name= is a 400 now, not after 3 GB; a repeated
  // Idempotency-Key answers the existing reference (the body is then drained, not stored).
  std::optional<Response> before_body(Request& req) {
    if (is_json(req)) {
      const std::string len = req.header("content-length");
      if (!len.empty() && len.size() < 20 && len.find_first_not_of("0123456789") == std::string::npos &&
          std::stoull(len) > kMaxJsonBody)
        throw HttpError(413, "JSON registration body larger than 1 MiB");
    }
    if (!is_json(req) && req.query_param("name").value_or("").empty())
      throw HttpError(400, "a FASTA upload needs ?name=<reference name> (or send a JSON registration)");
    const std::string key = idempotency_key(req);
    if (key.empty()) return std::nullopt;
    const auto have = store.find_by_idempotency_key(key);
    if (!have) return std::nullopt;
    Response r = Response::json(reference_json(*have, false), 200);
    r.set_header("Location", "/v1/references/" + have->id);
    return r;
  }

  Response create(Request& req) {
    NewReference n;
    n.idempotency_key = idempotency_key(req);
    if (is_json(req)) {
      if (req.body_size > kMaxJsonBody) throw HttpError(413, "JSON registration body larger than 1 MiB");
      std::ifstream in(req.body_file, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      Request copy;
      copy.body = ss.str();
      const json b = http::parse_json_body(copy);
      if (!b.is_object()) throw HttpError(400, "request body must be a JSON object");
      for (const auto& [k, v] : b.items())
        if (k != "name" && k != "description" && k != "uri")
          throw HttpError(400, "unknown field '" + k + "' (a registration has name, description, uri)");
      n.name = must_str(b, "name", true);
      n.description = must_str(b, "description", false);
      n.uri = must_str(b, "uri", true);
      if (n.uri.empty()) throw HttpError(400, "'uri' is empty");
    } else {
      n.name = req.query_param("name").value_or("");
      n.description = req.query_param("description").value_or("");
      if (n.name.empty()) throw HttpError(400, "a FASTA upload needs ?name=<reference name>");
      if (req.body_file.empty() || req.body_size == 0)
        throw HttpError(400, "empty upload: no FASTA in the body");
      n.upload = req.body_file;
      n.upload_sha256 = req.body_sha256;
    }
    bool created = false;
    const ReferenceRecord rec = store.create(n, &created);
    if (created) {
      if (!opt.schedule_import) throw Error("reference routes: no schedule_import hook");
      opt.schedule_import(rec.id);
    }
    Response r = Response::json(reference_json(rec, false), created ? 202 : 200);
    r.set_header("Location", "/v1/references/" + rec.id);
    return r;
  }

  Response list(Request& req) {
    ReferenceListFilter f;
    if (auto s = req.query_param("state"); s && !s->empty()) f.state = parse_reference_state(*s);
    f.name = req.query_param("name").value_or("");
    f.md5 = req.query_param("md5").value_or("");
    const http::PageParams paging = http::page_params(req);
    if (paging.page_size) f.page_size = *paging.page_size;
    f.page_token = paging.page_token;
    const ReferencePage page = store.list(f);
    json refs = json::array();
    for (const auto& r : page.references) refs.push_back(reference_json(r, false));
    return Response::json(
        {{"references", refs}, {"next_page_token", http::next_page_token_json(page.next_page_token)}});
  }

  Response get(Request& req) {
    const auto rec = store.get(req.param("id"));
    if (!rec) throw HttpError(404, "unknown reference '" + req.param("id") + "'");
    return Response::json(reference_json(*rec, true));
  }

  Response content(Request& req) {
    const std::string id = req.param("id");
    const auto rec = store.get(id);
    if (!rec) throw HttpError(404, "unknown reference '" + id + "'");
    std::filesystem::path path;
    try {
      path = store.path_of(id);
    } catch (const InputError& e) {
      throw HttpError(409, e.what());  // exists, but not ACTIVE (yet)
    }
    Response r = Response::from_file(path, "application/gzip");
    r.set_header("ETag", "\"" + rec->sha256 + "\"");
    r.set_header("X-Content-Digest", rec->sha256);
    r.set_header("Content-Disposition", "attachment; filename=\"" + id + ".fa.gz\"");
    return r;
  }

  Response remove(Request& req) {
    store.remove(req.param("id"), opt.in_use);
    Response r;
    r.status = 204;
    r.content_type = "";
    return r;
  }
};

}  // namespace

json reference_json(const ReferenceRecord& ref, bool with_sequences) {
  json j = {{"id", ref.id},
            {"name", ref.name},
            {"description", ref.description},
            {"state", to_string(ref.state)},
            {"failure_reason", ref.failure_reason.empty() ? json(nullptr) : json(ref.failure_reason)},
            {"source",
             {{"kind", ref.source_kind},
              {"uri", ref.source_uri.empty() ? json(nullptr) : json(ref.source_uri)},
              {"sha256", ref.source_sha256.empty() ? json(nullptr) : json(ref.source_sha256)},
              {"size", ref.source_size}}},
            {"created_at", ref.created_at},
            {"updated_at", ref.updated_at}};
  if (ref.state == ReferenceState::Active) {
    j["md5"] = ref.digest;  // MD5 over the per-sequence MD5s, in FASTA order
    j["sha256"] = ref.sha256;
    j["size"] = ref.size_bytes;
    j["total_length"] = ref.total_length;
    j["num_sequences"] = ref.num_sequences;
    j["content_url"] = "/v1/references/" + ref.id + "/content";
  }
  if (with_sequences) {
    json seqs = json::array();
    for (const auto& s : ref.sequences)
      seqs.push_back({{"name", s.name}, {"length", s.length}, {"md5", s.md5}, {"sha512t24u", s.sha512t24u}});
    j["sequences"] = seqs;
  }
  return j;
}

void add_reference_routes(http::Router& router, ReferenceStore& store, ReferenceRoutesOptions options) {
  auto r = std::make_shared<Routes>(Routes{store, std::move(options)});
  http::StreamedBody body;
  body.spool_dir = store.tmp_dir();  // same file system as the references: create() renames
  body.max_bytes = r->opt.max_upload_bytes;
  body.min_free_bytes = r->opt.min_free_bytes;
  body.idle_timeout = r->opt.upload_idle_timeout;
  body.before_body = [r](Request& req) { return guard([&] { return r->before_body(req); }); };
  router.add_streamed(
      "POST", "/v1/references", [r](Request& req) { return guard([&] { return r->create(req); }); },
      Scope::client, std::move(body));
  router.get(
      "/v1/references", [r](Request& req) { return guard([&] { return r->list(req); }); }, Scope::client);
  router.get(
      "/v1/references/{id}", [r](Request& req) { return guard([&] { return r->get(req); }); }, Scope::client);
  router.get(
      "/v1/references/{id}/content", [r](Request& req) { return guard([&] { return r->content(req); }); },
      Scope::client);
  router.del(  // deleting shared data is the operator's (admin), not any client's
      "/v1/references/{id}", [r](Request& req) { return guard([&] { return r->remove(req); }); },
      Scope::admin);
}

}  // namespace omicsd
