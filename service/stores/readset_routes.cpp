#include "service/stores/readset_routes.hpp"

#include <memory>

#include "service/http/http_paging.hpp"
#include "service/jobs/job_store.hpp"
#include "service/objects/object_store.hpp"
#include "service/stores/readset_store.hpp"
#include "service/util/clock.hpp"

namespace omicsd {
namespace {

using http::HttpError;
using http::Request;
using http::Response;
using http::Scope;
using nlohmann::json;

struct ReadSetRoutes {
  ReadSetStore& store;
  ReadSetRoutesOptions opt;

  template <typename F>
  static Response guard(F&& f) {
    return http::answer_errors(std::forward<F>(f));
  }

  static std::string must_id(const Request& req) {
    const std::string id = req.param("id");
    if (!is_readset_id(id)) throw HttpError(404, "unknown read set '" + id + "'");
    return id;
  }

  Response create(Request& req) {
    const json b = http::parse_json_body(req);
    if (!b.is_object()) throw HttpError(400, "request body must be a JSON object");
    for (const auto& [k, v] : b.items())
      if (k != "sample_id" && k != "subject_id" && k != "name" && k != "description" && k != "tags" &&
          k != "read_group" && k != "sources" && k != "parts")
        throw HttpError(400, "unknown field '" + k + "'");
    const ReadSetMetadata meta = ReadSetMetadata::from_json(b);
    const std::string key = req.header("Idempotency-Key");
    if (key.size() > 256) throw HttpError(400, "Idempotency-Key longer than 256 characters");
    const bool has_sources = b.contains("sources"), has_parts = b.contains("parts");
    if (has_sources == has_parts)
      throw HttpError(400, "give either 'sources' (URIs) or 'parts' (1 or 2), not both");
    bool existed = false;
    ReadSet rs;
    if (has_sources) {
      json src = b["sources"];
      if (src.is_string()) src = json::array({src});
      if (!src.is_array() || src.empty() || src.size() > 2)
        throw HttpError(400, "'sources' must be a URI or a list of one or two URIs");
      std::vector<std::string> paths;
      for (const json& u : src) {
        if (!u.is_string()) throw HttpError(400, "'sources' entries must be strings");
        std::string uri = u.get<std::string>();
        if (uri.rfind("s3://", 0) == 0) {
          if (!opt.fetch_s3)
            throw HttpError(400, uri + ": s3:// sources are not enabled on this daemon (--allow-s3)");
          uri = opt.fetch_s3(uri);  // now a stored object, validated by the import like any other
        }
        paths.push_back(resolve_input_uri(uri, opt.allow_roots, opt.objects).path.string());
      }
      rs = store.create_registered(meta, paths, key, now_ms(), &existed);
      if (!existed && opt.schedule_import) opt.schedule_import(rs.id);
    } else {
      if (!b["parts"].is_number_integer()) throw HttpError(400, "'parts' must be 1 or 2");
      rs = store.create_upload(meta, b["parts"].get<int>(), key, now_ms(), &existed);
    }
    json j = rs.to_json();
    if (rs.state == ReadSetState::Uploading) {
      json urls = json::array();
      for (int p = 1; p <= rs.parts_expected; ++p)
        urls.push_back("/v1/readsets/" + rs.id + "/parts/" + std::to_string(p));
      j["upload_urls"] = urls;
    }
    Response resp = Response::json(j, existed ? 200 : rs.state == ReadSetState::Uploading ? 201 : 202);
    resp.set_header("Location", "/v1/readsets/" + rs.id);
    return resp;
  }

  static int part_number(const Request& req) {
    const std::string p = req.param("n");
    if (p != "1" && p != "2") throw HttpError(400, "part must be 1 or 2, not '" + p + "'");
    return p[0] - '0';
  }

  // Before the body is read: unknown read set, wrong state or part number answer at once.
  std::optional<Response> before_part(Request& req) {
    const std::string id = must_id(req);
    const int part = part_number(req);
    auto rs = store.get(id);
    if (!rs) throw HttpError(404, "unknown read set '" + id + "'");
    if (rs->state != ReadSetState::Uploading)
      throw HttpError(409, "read set " + id + " is " + to_string(rs->state) +
                               ": parts can only be uploaded while it is UPLOADING");
    if (part > rs->parts_expected)
      throw HttpError(400, "read set " + id + " takes " + std::to_string(rs->parts_expected) + " part(s)");
    return std::nullopt;
  }

  Response put_part(Request& req) {
    return guard([&] {
      const std::string id = must_id(req);
      ReadSet rs =
          store.put_part(id, part_number(req), req.body_file, req.body_size, req.body_sha256, now_ms());
      return Response::json(rs.to_json());
    });
  }

  Response complete(Request& req) {
    return guard([&] {
      const std::string id = must_id(req);
      bool started = false;
      ReadSet rs = store.complete_upload(id, now_ms(), &started);
      if (started && opt.schedule_import) opt.schedule_import(id);
      return Response::json(rs.to_json(), 202);
    });
  }

  Response list(Request& req) {
    return guard([&] {
      ReadSetFilter f;
      if (auto s = req.query_param("state"); s && !s->empty()) {
        const std::string v = *s;
        if (v == "UPLOADING")
          f.state = ReadSetState::Uploading;
        else if (v == "IMPORTING")
          f.state = ReadSetState::Importing;
        else if (v == "ACTIVE")
          f.state = ReadSetState::Active;
        else if (v == "FAILED")
          f.state = ReadSetState::Failed;
        else
          throw HttpError(400, "state must be UPLOADING, IMPORTING, ACTIVE or FAILED");
      }
      if (auto s = req.query_param("sample_id")) f.sample_id = *s;
      if (auto s = req.query_param("subject_id")) f.subject_id = *s;
      const http::PageParams paging = http::page_params(req);
      if (paging.page_size) f.page_size = *paging.page_size;
      f.page_token = paging.page_token;
      ReadSetPage page = store.list(f);
      json items = json::array();
      for (const ReadSet& rs : page.readsets) items.push_back(rs.to_json());
      return Response::json(
          {{"readsets", items}, {"next_page_token", http::next_page_token_json(page.next_page_token)}});
    });
  }

  Response content(Request& req) {
    return guard([&] {
      const std::string id = must_id(req);
      const std::string format = req.query_param("format").value_or("cram");
      int mate = 0;
      if (auto m = req.query_param("mate"); m && !m->empty()) {
        if (*m != "1" && *m != "2") throw HttpError(400, "mate must be 1 or 2");
        mate = (*m)[0] - '0';
      }
      const auto path = store.export_file(id, format, mate);
      const std::string type =
          format == "fastq" ? "text/plain; charset=us-ascii" : "application/octet-stream";
      Response resp = Response::from_file(path, type);
      std::string name = id;
      if (mate) name.append(1, '_').append(std::to_string(mate));
      name.append(1, '.').append(format);
      resp.set_header("Content-Disposition", "attachment; filename=\"" + name + "\"");
      return resp;
    });
  }
};

}  // namespace

void add_readset_routes(http::Router& router, ReadSetStore& store, ReadSetRoutesOptions options) {
  auto r = std::make_shared<ReadSetRoutes>(ReadSetRoutes{store, std::move(options)});
  router.post(
      "/v1/readsets", [r](Request& req) { return r->guard([&] { return r->create(req); }); }, Scope::client);
  router.get(
      "/v1/readsets", [r](Request& req) { return r->list(req); }, Scope::client);
  router.get(
      "/v1/readsets/{id}",
      [r](Request& req) {
        return r->guard([&] {
          auto rs = r->store.get(ReadSetRoutes::must_id(req));
          if (!rs) throw HttpError(404, "unknown read set '" + req.param("id") + "'");
          return Response::json(rs->to_json());
        });
      },
      Scope::client);
  router.get(
      "/v1/readsets/{id}/content", [r](Request& req) { return r->content(req); }, Scope::client);
  router.post(
      "/v1/readsets/{id}/complete", [r](Request& req) { return r->complete(req); }, Scope::client);
  router.del(
      "/v1/readsets/{id}",
      [r](Request& req) {
        return r->guard([&] {
          const std::string id = ReadSetRoutes::must_id(req);
          if (!r->store.remove(id, r->opt.in_use)) throw HttpError(404, "unknown read set '" + id + "'");
          Response resp;
          resp.status = 204;
          return resp;
        });
      },
      Scope::admin);  // deleting shared data is the operator's, not any client's
  http::StreamedBody body;
  body.spool_dir = store.root() / "spool";
  std::filesystem::create_directories(body.spool_dir);
  body.max_bytes = r->opt.max_part_bytes;
  body.min_free_bytes = r->opt.min_free_bytes;
  body.before_body = [r](Request& req) { return r->before_part(req); };
  router.add_streamed(
      "PUT", "/v1/readsets/{id}/parts/{n}", [r](Request& req) { return r->put_part(req); }, Scope::client,
      std::move(body));
}

}  // namespace omicsd
