// `omicsd reference add|list|get|delete`: the client side of the reference store (docs/api.md,
// "References"). Same conventions as the run commands (cmd_client.cpp): --server (default
// $OMICSD_SERVER or http://127.0.0.1:8080), the bearer token from $OMICSD_TOKEN, --ca-file for an
// https:// server, a short table or the server's JSON with --json.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "host/common/error.hpp"
#include "service/cli/cli.hpp"
#include "service/cli/client_common.hpp"
#include "service/http/http_client.hpp"
#include "service/cli/progress_bar.hpp"

namespace omicsd {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// Uploads of a few GB: request_timeout is per chunk, and the daemon's final rename and fsync of
// the body must fit in it too.
HttpClient upload_client(const ClientOpts& o) {
  HttpClientOptions h = make_client(o).options();
  h.request_timeout = std::chrono::minutes(5);
  return HttpClient(h);
}

std::vector<std::string> summary_row(const json& r) {
  return {str(r, "id"),           str(r, "name"), str(r, "state"), str(r, "num_sequences"),
          str(r, "total_length"), str(r, "md5")};
}

void print_reference(const json& r) {
  print_table({{"REFERENCE", "NAME", "STATE", "SEQUENCES", "BASES", "MD5"}, summary_row(r)});
  if (!str(r, "description", "").empty()) std::printf("description: %s\n", str(r, "description").c_str());
  if (!str(r, "failure_reason", "").empty()) std::printf("failure: %s\n", str(r, "failure_reason").c_str());
  if (!str(r, "sha256", "").empty())
    std::printf("file: %s bytes, %s\n", str(r, "size").c_str(), str(r, "sha256").c_str());
  if (r.contains("sequences") && r["sequences"].is_array() && !r["sequences"].empty()) {
    std::printf("\n");
    std::vector<std::vector<std::string>> rows = {{"SEQUENCE", "LENGTH", "MD5"}};
    for (const auto& s : r["sequences"]) rows.push_back({str(s, "name"), str(s, "length"), str(s, "md5")});
    print_table(rows);
  }
}

std::string query_value(const std::string& s) { return url_encode_segment(s); }

}  // namespace

CliAction add_reference_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("reference", "Reference store: add, list, get, delete reference genomes");
  cmd->require_subcommand(1);

  struct AddOpts {
    ClientOpts c;
    std::string fasta, uri, name, description, idempotency_key;
    bool wait = false;
    double timeout = 0;
  };
  auto a = std::make_shared<AddOpts>();
  auto* add =
      cmd->add_subcommand("add", "Upload a FASTA (plain or gzip) or register one by --uri; prints the id");
  add_common(add, a->c);
  add->add_option("fasta", a->fasta, "FASTA file to upload")->check(CLI::ExistingFile);
  add->add_option(
      "--uri", a->uri,
      "Register a FASTA the daemon can read (file:///abs or /abs under its --allow-root) instead");
  add->add_option("--name", a->name, "Reference name")->required();
  add->add_option("--description", a->description, "Free text");
  add->add_option("--idempotency-key", a->idempotency_key, "A repeated add returns the same reference");
  add->add_flag("--wait", a->wait, "Wait for the import: exit 0 when ACTIVE, 1 when FAILED");
  add->add_option("--timeout", a->timeout, "With --wait: give up after this many seconds (exit 124)")
      ->check(CLI::NonNegativeNumber);

  struct ListOpts {
    ClientOpts c;
    std::string state, name, md5;
    int page_size = 100;
  };
  auto l = std::make_shared<ListOpts>();
  auto* list = cmd->add_subcommand("list", "List references (newest first, every page)");
  add_common(list, l->c);
  list->add_option("--state", l->state, "IMPORTING, ACTIVE or FAILED")
      ->check(CLI::IsMember({"IMPORTING", "ACTIVE", "FAILED"}));
  list->add_option("--name", l->name, "Exact name");
  list->add_option("--md5", l->md5, "Whole-reference digest or one sequence's MD5 (refget)");
  list->add_option("--page-size", l->page_size, "References per request")->check(CLI::Range(1, 1000));

  struct IdOpts {
    ClientOpts c;
    std::string id;
  };
  auto g = std::make_shared<IdOpts>();
  auto* get = cmd->add_subcommand("get", "Show a reference: state, digests, sequences with MD5s");
  add_common(get, g->c);
  get->add_option("reference_id", g->id, "Reference id")->required();

  auto d = std::make_shared<IdOpts>();
  auto* del = cmd->add_subcommand("delete", "Delete a reference (refused while a run uses it)");
  add_common(del, d->c);
  del->add_option("reference_id", d->id, "Reference id")->required();

  auto run_add = [a]() -> int {
    if (a->fasta.empty() == a->uri.empty())
      throw InputError("reference add: give a FASTA file or --uri, not both");
    HttpClient client = upload_client(a->c);
    HttpClient::Headers headers;
    if (!a->idempotency_key.empty()) headers.emplace_back("Idempotency-Key", a->idempotency_key);
    const bool idempotent = !a->idempotency_key.empty();
    json ref;
    int status = 0;
    if (!a->fasta.empty()) {
      std::string path = "/v1/references?name=" + query_value(a->name);
      if (!a->description.empty()) path += "&description=" + query_value(a->description);
      const HttpResponse resp =
          client.upload("POST", path, a->fasta, "application/octet-stream", headers, idempotent);
      client.check(resp, "POST", path);
      ref = resp.json();
      status = resp.status;
    } else {
      std::string uri = a->uri;
      if (uri.find("://") == std::string::npos && uri.front() != '/')
        uri = std::filesystem::absolute(uri).lexically_normal().string();
      json body = {{"name", a->name}, {"uri", uri}};
      if (!a->description.empty()) body["description"] = a->description;
      ref = client.post_json("/v1/references", body, idempotent, headers, &status);
    }
    const std::string id = str(ref, "id");
    if (status == 200)
      std::fprintf(stderr, "omicsd: existing reference %s (same key or same content and name)\n", id.c_str());
    if (!a->wait) {
      std::printf("%s\n", a->c.json ? ref.dump(2).c_str() : id.c_str());
      return 0;
    }
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    const auto start = SteadyClock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(SteadyClock::now() - start).count(); };
    auto delay = std::chrono::milliseconds(200);
    std::string state = str(ref, "state", "?");
    while (state == "IMPORTING") {
      if (a->timeout > 0 && elapsed() >= a->timeout) {
        if (tty) std::fprintf(stderr, "\n");
        std::fprintf(stderr, "omicsd: timed out after %s waiting for reference %s (IMPORTING)\n",
                     human_duration(a->timeout).c_str(), id.c_str());
        return 124;
      }
      std::this_thread::sleep_for(delay);
      delay = std::min(std::chrono::milliseconds(2000), delay * 3 / 2);
      try {
        ref = client.get_json("/v1/references/" + url_encode_segment(id));
        state = str(ref, "state", "?");
      } catch (const HttpClientError& e) {
        if (!e.connection_error() && e.status() < 500) throw;  // the daemon may be restarting: poll on
      }
      if (tty) {
        std::fprintf(stderr, "\r\033[K%s  %s  %s", id.c_str(), state.c_str(),
                     human_duration(elapsed()).c_str());
        std::fflush(stderr);
      }
    }
    if (tty) std::fprintf(stderr, "\n");
    if (a->c.json)
      std::printf("%s\n", ref.dump(2).c_str());
    else
      std::printf("%s %s\n", id.c_str(), state.c_str());
    if (state == "ACTIVE") return 0;
    std::fprintf(stderr, "omicsd: reference %s %s: %s\n", id.c_str(), state.c_str(),
                 str(ref, "failure_reason", "(no reason given)").c_str());
    return 1;
  };

  auto run_list = [l]() -> int {
    HttpClient client = make_client(l->c);
    std::string base = "/v1/references?page_size=" + std::to_string(l->page_size);
    if (!l->state.empty()) base += "&state=" + query_value(l->state);
    if (!l->name.empty()) base += "&name=" + query_value(l->name);
    if (!l->md5.empty()) base += "&md5=" + query_value(l->md5);
    json all = json::array();
    std::string token;
    do {
      const json page = client.get_json(base + (token.empty() ? "" : "&page_token=" + query_value(token)));
      for (const auto& r : page.value("references", json::array())) all.push_back(r);
      token = page.contains("next_page_token") && page["next_page_token"].is_string()
                  ? page["next_page_token"].get<std::string>()
                  : "";
    } while (!token.empty());
    if (l->c.json) {
      std::printf("%s\n", json{{"references", all}}.dump(2).c_str());
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {
        {"REFERENCE", "NAME", "STATE", "SEQUENCES", "BASES", "MD5"}};
    for (const auto& r : all) rows.push_back(summary_row(r));
    print_table(rows);
    return 0;
  };

  auto run_get = [g]() -> int {
    HttpClient client = make_client(g->c);
    const json r = client.get_json("/v1/references/" + url_encode_segment(g->id));
    if (g->c.json)
      std::printf("%s\n", r.dump(2).c_str());
    else
      print_reference(r);
    return 0;
  };

  auto run_delete = [d]() -> int {
    HttpClient client = make_client(d->c);
    const std::string path = "/v1/references/" + url_encode_segment(d->id);
    const HttpResponse resp = client.send("DELETE", path, "", "", {}, true);
    client.check(resp, "DELETE", path);
    if (d->c.json)
      std::printf("%s\n", json{{"id", d->id}, {"deleted", true}}.dump(2).c_str());
    else
      std::printf("deleted %s\n", d->id.c_str());
    return 0;
  };

  return {cmd, [=]() -> int {
            if (add->parsed()) return run_add();
            if (list->parsed()) return run_list();
            if (get->parsed()) return run_get();
            if (del->parsed()) return run_delete();
            return 1;
          }};
}

}  // namespace omicsd
