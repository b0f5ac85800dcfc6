// Client commands for the omicsd daemon (docs/api.md): submit, status, wait, cancel, resume, logs,
// outputs. All take --server (default $OMICSD_SERVER or http://127.0.0.1:8080), read the bearer
// token from $OMICSD_TOKEN, and print a short human table, or the raw JSON with --json. For an
// https:// server, --ca-file (or $OMICSD_CA_FILE) names the CA to trust instead of the system's.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/common/error.hpp"
#include "service/cli/cli.hpp"
#include "service/cli/client_common.hpp"
#include "service/cli/progress_bar.hpp"
#include "service/http/http_client.hpp"
#include "service/http/json_input.hpp"

namespace omicsd {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

std::string seg(const std::string& s) { return url_encode_segment(s); }

void print_run(const json& run) {
  print_table({{"RUN", "WORKFLOW", "SAMPLE", "STATE"},
               {str(run, "id"), str(run, "workflow"), str(run, "sample"), str(run, "state")}});
  if (run.contains("failure_reason") && run["failure_reason"].is_string() &&
      !run["failure_reason"].get<std::string>().empty())
    std::printf("failure: %s\n", run["failure_reason"].get<std::string>().c_str());
  if (run.contains("tasks") && run["tasks"].is_array() && !run["tasks"].empty()) {
    std::printf("\n");
    std::vector<std::vector<std::string>> rows = {
        {"TASK", "KIND", "STATE", "ATTEMPTS", "WORKER", "CACHE", "ERROR"}};
    for (const auto& t : run["tasks"]) {
      std::string attempts = str(t, "attempts", "0");
      if (t.contains("max_attempts") && !t["max_attempts"].is_null())
        attempts += "/" + t["max_attempts"].dump();
      rows.push_back({str(t, "name"), str(t, "kind"), str(t, "state"), attempts, str(t, "worker_id"),
                      t.value("cache_hit", false) ? "hit" : "-", str(t, "last_error")});
    }
    print_table(rows);
  }
  if (run.contains("outputs") && run["outputs"].is_object() && !run["outputs"].empty()) {
    std::printf("\n");
    std::vector<std::vector<std::string>> rows = {{"OUTPUT", "SIZE", "DIGEST"}};
    for (const auto& [name, o] : run["outputs"].items())
      rows.push_back(
          {name, o.contains("size") ? human_bytes(o.value("size", uint64_t(0))) : "-", str(o, "digest")});
    print_table(rows);
  }
}

// A URI as the daemon wants it: file://, sha256:, absolute paths pass; relative paths become absolute.
std::string normalize_uri(const std::string& uri) {
  if (uri.empty()) throw InputError("empty input URI");
  if (uri.rfind("sha256:", 0) == 0 || uri.find("://") != std::string::npos || uri.front() == '/') return uri;
  // Store ids (reference store "ref-<16 hex>", sequence store "rs-<16 hex>") go as they are, unless
  // a local file of that name exists.
  static const std::regex store_id("(ref|rs)-[0-9a-f]{16}");
  if (std::regex_match(uri, store_id) && !std::filesystem::exists(uri)) return uri;
  return std::filesystem::absolute(uri).lexically_normal().string();
}

// "k=v": v as JSON when it parses (2, true, 0.5, "x", [..]), else as a string.
std::pair<std::string, json> parse_param(const std::string& kv) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) throw InputError("--param " + kv + ": expected key=value");
  const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
  try {
    return {k, parse_json_input(v, "--param")};
  } catch (const InputError&) {
    return {k, json(v)};
  }
}

bool terminal_state(const std::string& s) { return s == "COMPLETE" || s == "FAILED" || s == "CANCELED"; }

std::string task_summary(const json& run) {
  std::string s;
  if (run.contains("tasks") && run["tasks"].is_array())
    for (const auto& t : run["tasks"]) {
      if (!s.empty()) s += ' ';
      s += str(t, "name", str(t, "kind")) + ":" + str(t, "state");
      if (t.value("cache_hit", false)) s += "(cached)";
    }
  return s;
}

// Output file names for --download: <sample>.bam, .bam.bai, .vcf.gz, .vcf.gz.tbi, .qc.json, .report.html,
// .flagstat.txt, .samtools_stats.txt, .bcftools_stats.txt (the names `omicsd run` gives them).
std::string output_file_name(const std::string& sample, const std::string& name) {
  const std::string base = sample.empty() || sample == "-" ? "output" : sample;
  if (name == "bam") return base + ".bam";
  if (name == "bai") return base + ".bam.bai";
  if (name == "vcf") return base + ".vcf.gz";
  if (name == "tbi") return base + ".vcf.gz.tbi";
  if (name == "csi") return base + ".vcf.gz.csi";
  if (name == "qc") return base + ".qc.json";
  if (name == "report") return base + ".report.html";
  if (name == "flagstat") return base + ".flagstat.txt";
  if (name == "samtools_stats") return base + ".samtools_stats.txt";
  if (name == "bcftools_stats") return base + ".bcftools_stats.txt";
  std::string safe;
  for (char c : name) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_') ? c : '_';
  return base + "." + safe;
}

// One row of an nf-core style samplesheet.
struct SampleRow {
  int line = 0;
  std::string sample, fastq_1, fastq_2;
};

// The samplesheet: a header naming sample, fastq_1 and (optionally) fastq_2 in any order (other
// columns are ignored), then one row per run; blank lines are skipped. Quoted fields are refused
// rather than misread.
std::vector<SampleRow> read_samplesheet(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot read the samplesheet");
  auto split = [&](const std::string& line, int n) {
    if (line.find('"') != std::string::npos)
      throw InputError(path + ": line " + std::to_string(n) + ": quoted fields are not supported");
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) {
      const auto b = cell.find_first_not_of(" \t\r");
      const auto e = cell.find_last_not_of(" \t\r");
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    return cells;
  };
  std::string line;
  int n = 0;
  std::vector<std::string> header;
  while (header.empty() && std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") != std::string::npos) header = split(line, n);
  }
  auto column = [&](const char* name, bool required) {
    const auto at = std::find(header.begin(), header.end(), name);
    if (at == header.end() && required)
      throw InputError(path + ": the header needs a column '" + name +
                       "' (nf-core style: sample,fastq_1,fastq_2)");
    return at == header.end() ? -1 : int(at - header.begin());
  };
  const int c_sample = column("sample", true), c_r1 = column("fastq_1", true),
            c_r2 = column("fastq_2", false);
  std::vector<SampleRow> rows;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::vector<std::string> cells = split(line, n);
    if (cells.size() != header.size())
      throw InputError(path + ": line " + std::to_string(n) + ": " + std::to_string(cells.size()) +
                       " fields, the header has " + std::to_string(header.size()));
    SampleRow r{n, cells[c_sample], cells[c_r1], c_r2 >= 0 ? cells[c_r2] : ""};
    if (r.sample.empty() || r.fastq_1.empty())
      throw InputError(path + ": line " + std::to_string(n) + ": 'sample' and 'fastq_1' must not be empty");
    rows.push_back(r);
  }
  if (rows.empty()) throw InputError(path + ": no samples");
  return rows;
}

// submit --batch: `run` is the request every row shares (workflow, reference, parameters, group...);
// each row adds its sample and reads. One POST /v1/run-batches, then waits while the daemon creates
// the runs; prints "sample run-id" per created run and the errors of the others; exit 1 when any row
// failed.
int submit_batch(const ClientOpts& c, const json& run, const std::string& samplesheet,
                 const std::string& key) {
  const std::vector<SampleRow> rows = read_samplesheet(samplesheet);
  json runs = json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    json one = run;
    one["sample"] = rows[i].sample;
    json reads = json::array({normalize_uri(rows[i].fastq_1)});
    if (!rows[i].fastq_2.empty()) reads.push_back(normalize_uri(rows[i].fastq_2));
    one["inputs"]["reads"] = reads;
    // With a key, each row gets its own derived from it: resubmitting the sheet creates nothing twice
    // (which also makes the request safe to retry).
    if (!key.empty()) one["idempotency_key"] = key + "/" + std::to_string(i) + "/" + rows[i].sample;
    runs.push_back(one);
  }
  HttpClient client = make_client(c);
  json batch = client.post_json("/v1/run-batches", {{"runs", runs}}, !key.empty());
  const std::string path = "/v1/run-batches/" + str(batch, "id");
  for (int waited_ms = 0; str(batch, "state") != "SUBMITTED"; waited_ms += 200) {
    if (waited_ms >= 600'000)
      throw Error("batch " + str(batch, "id") + " is still being submitted after 10 minutes");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    batch = client.get_json(path + "?page_size=1");
  }
  json results = json::array();  // every request's result, a page at a time
  for (std::string token;;) {
    const json page = client.get_json(path + (token.empty() ? "" : "?page_token=" + token));
    for (const json& r : page.value("runs", json::array())) results.push_back(r);
    if (!page["next_page_token"].is_string()) break;
    token = page["next_page_token"].get<std::string>();
  }
  batch["runs"] = results;
  if (c.json) {
    std::printf("%s\n", batch.dump(2).c_str());
  } else {
    std::vector<std::vector<std::string>> table = {{"SAMPLE", "RUN", "STATE", "ERROR"}};
    for (const json& r : results) {
      const size_t i = r.value("index", size_t(0));
      const std::string sample = i < rows.size() ? rows[i].sample : "?";
      const std::string error = r.contains("error") ? str(r["error"], "message") : "";
      table.push_back({sample, str(r, "id", "-"), str(r, "state", "-"), error});
    }
    print_table(table);
  }
  return batch.value("failed", int64_t(0)) > 0 ? 1 : 0;
}

}  // namespace

CliAction add_submit_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("submit", "Submit a run to the daemon; prints the run id");
  struct Opts {
    ClientOpts c;
    std::string workflow, reference, bam, sample, idempotency_key, callback_url, group, deadline, batch;
    std::optional<int64_t> priority;
    std::vector<std::string> reads, params;
    bool no_cache = false;
  };
  auto o = std::make_shared<Opts>();
  add_common(cmd, o->c);
  cmd->add_option("--workflow", o->workflow, "germline (align + call + qc), align or call")
      ->required()
      ->check(CLI::IsMember({"germline", "align", "call"}));
  cmd->add_option("--reference", o->reference, "Reference FASTA URI (file:///abs, /abs or sha256:<hex>)")
      ->required();
  cmd->add_option("--reads", o->reads, "Reads URI (FASTQ or BAM); twice for paired FASTQ")
      ->expected(1)
      ->take_all();
  cmd->add_option("--bam", o->bam, "Aligned BAM URI (workflow call)");
  cmd->add_option("--sample", o->sample, "Sample name");
  cmd->add_option("--param", o->params, "Workflow parameter key=value (repeatable), e.g. threads=8 gvcf=true")
      ->expected(1)
      ->take_all();
  cmd->add_option("--idempotency-key", o->idempotency_key,
                  "Idempotency-Key: a repeated submit returns the same run");
  cmd->add_flag("--no-cache", o->no_cache, "Do not reuse cached task outputs");
  cmd->add_option("--callback-url", o->callback_url, "POST a signed event here when the run finishes");
  cmd->add_option("--group", o->group, "Run group (caps, default priority); default: the group 'default'");
  cmd->add_option("--priority", o->priority, "Priority -1000..1000 (default: the group's)")
      ->check(CLI::Range(-1000, 1000));
  cmd->add_option("--deadline", o->deadline, "Finish by this RFC 3339 time, e.g. 2026-12-05T18:00:00Z");
  cmd->add_option("--batch", o->batch,
                  "nf-core style samplesheet CSV (header sample,fastq_1,fastq_2): one run per row, all "
                  "submitted in one request (POST /v1/run-batches)")
      ->check(CLI::ExistingFile);
  return {cmd, [o] {
            if (!o->batch.empty()) {
              if (!o->reads.empty() || !o->bam.empty() || !o->sample.empty())
                throw InputError(
                    "--batch takes the samples and reads from the samplesheet, not --reads/--bam/--sample");
              if (o->workflow == "call")
                throw InputError("--batch submits workflows that read FASTQs (germline, align)");
            }
            json inputs = {{"reference", normalize_uri(o->reference)}};
            if (o->workflow == "call") {
              if (o->bam.empty()) throw InputError("workflow call needs --bam");
              if (!o->reads.empty()) throw InputError("workflow call takes --bam, not --reads");
              inputs["bam"] = normalize_uri(o->bam);
            } else if (o->batch.empty()) {
              if (o->reads.empty() || o->reads.size() > 2)
                throw InputError("workflow " + o->workflow + " needs one or two --reads");
              if (!o->bam.empty()) throw InputError("workflow " + o->workflow + " takes --reads, not --bam");
              json reads = json::array();
              for (const auto& r : o->reads) reads.push_back(normalize_uri(r));
              inputs["reads"] = reads;
            }
            json parameters = json::object();
            for (const auto& kv : o->params) {
              auto [k, v] = parse_param(kv);
              parameters[k] = v;
            }
            json body = {{"workflow", o->workflow},
                         {"inputs", inputs},
                         {"parameters", parameters},
                         {"cache", !o->no_cache}};
            if (!o->sample.empty()) body["sample"] = o->sample;
            if (!o->callback_url.empty()) body["callback_url"] = o->callback_url;
            if (!o->group.empty()) body["group"] = o->group;
            if (o->priority) body["priority"] = *o->priority;
            if (!o->deadline.empty()) body["deadline"] = o->deadline;
            if (!o->batch.empty()) return submit_batch(o->c, body, o->batch, o->idempotency_key);
            HttpClient::Headers headers;
            if (!o->idempotency_key.empty()) headers.emplace_back("Idempotency-Key", o->idempotency_key);
            HttpClient client = make_client(o->c);
            int status = 0;
            // With an Idempotency-Key a retried POST cannot create a second run.
            const json run =
                client.post_json("/v1/runs", body, !o->idempotency_key.empty(), headers, &status);
            if (o->c.json) {
              std::printf("%s\n", run.dump(2).c_str());
            } else {
              std::printf("%s\n", str(run, "id").c_str());
              if (status == 200) std::fprintf(stderr, "omicsd: existing run for this idempotency key\n");
            }
            return 0;
          }};
}

CliAction add_status_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("status", "Show a run: state, tasks, outputs");
  struct Opts {
    ClientOpts c;
    std::string id;
  };
  auto o = std::make_shared<Opts>();
  add_common(cmd, o->c);
  cmd->add_option("run_id", o->id, "Run id")->required();
  return {cmd, [o] {
            HttpClient client = make_client(o->c);
            const json run = client.get_json("/v1/runs/" + seg(o->id));
            if (o->c.json)
              std::printf("%s\n", run.dump(2).c_str());
            else
              print_run(run);
            return 0;
          }};
}

CliAction add_wait_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "wait", "Wait for a run to finish: exit 0 if COMPLETE, 1 if FAILED or CANCELED, 124 on timeout");
  struct Opts {
    ClientOpts c;
    std::string id;
    double timeout = 0;
  };
  auto o = std::make_shared<Opts>();
  add_common(cmd, o->c);
  cmd->add_option("run_id", o->id, "Run id")->required();
  cmd->add_option("--timeout", o->timeout, "Give up after this many seconds (0: never)")
      ->check(CLI::NonNegativeNumber);
  return {cmd, [o] {
            HttpClient client = make_client(o->c);
            const bool tty = ::isatty(STDERR_FILENO) == 1;
            const auto start = SteadyClock::now();
            const auto elapsed = [&] {
              return std::chrono::duration<double>(SteadyClock::now() - start).count();
            };
            auto delay = std::chrono::milliseconds(100);
            std::optional<SteadyClock::time_point> unreachable_since;
            json run;
            std::string state = "?";
            for (;;) {
              try {
                run = client.get_json("/v1/runs/" + seg(o->id));
                unreachable_since.reset();
                state = str(run, "state", "?");
              } catch (const HttpClientError& e) {
                // The daemon may be restarting: keep polling until the timeout (or a minute without one).
                if (!e.connection_error() && e.status() < 500) throw;
                if (!unreachable_since) unreachable_since = SteadyClock::now();
                if (o->timeout <= 0 && SteadyClock::now() - *unreachable_since > std::chrono::seconds(60))
                  throw;
              }
              if (tty) {
                std::fprintf(stderr, "\r\033[K%s  %s  %s  %s", o->id.c_str(), state.c_str(),
                             task_summary(run).c_str(), human_duration(elapsed()).c_str());
                std::fflush(stderr);
              }
              if (terminal_state(state)) break;
              if (o->timeout > 0 && elapsed() >= o->timeout) {
                if (tty) std::fprintf(stderr, "\n");
                std::fprintf(stderr, "omicsd: timed out after %s waiting for run %s (state %s)\n",
                             human_duration(o->timeout).c_str(), o->id.c_str(), state.c_str());
                if (o->c.json && !run.is_null()) std::printf("%s\n", run.dump(2).c_str());
                return 124;
              }
              auto sleep = delay;
              if (o->timeout > 0) {
                const auto left = std::chrono::milliseconds(int64_t((o->timeout - elapsed()) * 1000) + 1);
                sleep = std::min(sleep, std::max(left, std::chrono::milliseconds(1)));
              }
              std::this_thread::sleep_for(sleep);
              delay = std::min(std::chrono::milliseconds(2000), delay * 3 / 2);
            }
            if (tty) std::fprintf(stderr, "\n");
            if (o->c.json)
              std::printf("%s\n", run.dump(2).c_str());
            else
              std::printf("%s %s\n", o->id.c_str(), state.c_str());
            if (state == "COMPLETE") return 0;
            std::string reason = str(run, "failure_reason", "");
            if (reason.empty() && run.contains("tasks") && run["tasks"].is_array())
              for (const auto& t : run["tasks"])
                if (!str(t, "last_error", "").empty()) reason = str(t, "name") + ": " + str(t, "last_error");
            std::fprintf(stderr, "omicsd: run %s %s%s%s\n", o->id.c_str(), state.c_str(),
                         reason.empty() ? "" : ": ", reason.c_str());
            return 1;
          }};
}

namespace {
CliAction add_post_run_command(CLI::App& app, const char* name, const char* help) {
  auto* cmd = app.add_subcommand(name, help);
  struct Opts {
    ClientOpts c;
    std::string id;
  };
  auto o = std::make_shared<Opts>();
  add_common(cmd, o->c);
  cmd->add_option("run_id", o->id, "Run id")->required();
  const std::string verb = name;
  return {cmd, [o, verb] {
            HttpClient client = make_client(o->c);
            // cancel and resume are idempotent: retrying them is safe.
            const json run = client.post_json("/v1/runs/" + seg(o->id) + "/" + verb, json::object(), true);
            if (o->c.json)
              std::printf("%s\n", run.dump(2).c_str());
            else
              std::printf("%s %s\n", str(run, "id", o->id).c_str(), str(run, "state").c_str());
            return 0;
          }};
}
}  // namespace

CliAction add_cancel_command(CLI::App& app) {
  return add_post_run_command(app, "cancel", "Cancel a run (queued and running tasks stop)");
}
CliAction add_resume_command(CLI::App& app) {
  return add_post_run_command(app, "resume",
                              "Resume a failed or canceled run (reruns only what did not finish)");
}

CliAction add_logs_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("logs", "Per-task states, attempts, workers and errors of a run");
  struct Opts {
    ClientOpts c;
    std::string id;
  };
  auto o = std::make_shared<Opts>();
  add_common(cmd, o->c);
  cmd->add_option("run_id", o->id, "Run id")->required();
  return {
      cmd, [o] {
        HttpClient client = make_client(o->c);
        const json logs = client.get_json("/v1/runs/" + seg(o->id) + "/logs");
        if (o->c.json) {
          std::printf("%s\n", logs.dump(2).c_str());
          return 0;
        }
        std::vector<std::vector<std::string>> rows = {{"TASK", "STATE", "ATTEMPTS", "WORKER", "LAST_ERROR"}};
        if (logs.contains("tasks") && logs["tasks"].is_array())
          for (const auto& t : logs["tasks"])
            rows.push_back({str(t, "name"), str(t, "state"), str(t, "attempts", "0"), str(t, "worker_id"),
                            str(t, "last_error")});
        print_table(rows);
        return 0;
      }};
}

CliAction add_outputs_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("outputs", "List a run's outputs; --download DIR fetches them");
  struct Opts {
    ClientOpts c;
    std::string id, dir;
  };
  auto o = std::make_shared<Opts>();
  add_common(cmd, o->c);
  cmd->add_option("run_id", o->id, "Run id")->required();
  cmd->add_option("--download", o->dir, "Download every output into this directory (created if missing)");
  return {cmd, [o] {
            HttpClient client = make_client(o->c);
            const json run = client.get_json("/v1/runs/" + seg(o->id));
            json outputs =
                run.contains("outputs") && run["outputs"].is_object() ? run["outputs"] : json::object();
            const std::string sample = str(run, "sample", "");
            if (!o->dir.empty()) {
              std::error_code ec;
              std::filesystem::create_directories(o->dir, ec);
              if (ec) throw InputError(o->dir + ": cannot create the directory: " + ec.message());
              for (auto& [name, out] : outputs.items()) {
                const auto dest = std::filesystem::path(o->dir) / output_file_name(sample, name);
                const uint64_t n = client.download("/v1/runs/" + seg(o->id) + "/outputs/" + seg(name), dest);
                if (out.is_object() && out.contains("size") && out["size"].is_number_unsigned() &&
                    out["size"].get<uint64_t>() != n)
                  throw Error(dest.string() + ": downloaded " + std::to_string(n) + " bytes, expected " +
                              out["size"].dump());
                out["path"] = dest.string();
              }
            }
            if (o->c.json) {
              std::printf("%s\n", outputs.dump(2).c_str());
              return 0;
            }
            std::vector<std::vector<std::string>> rows = {{"OUTPUT", "SIZE", "DIGEST"}};
            if (!o->dir.empty()) rows.front().push_back("FILE");
            for (const auto& [name, out] : outputs.items()) {
              rows.push_back({name, out.contains("size") ? human_bytes(out.value("size", uint64_t(0))) : "-",
                              str(out, "digest")});
              if (!o->dir.empty()) rows.back().push_back(str(out, "path"));
            }
            print_table(rows);
            return 0;
          }};
}

}  // namespace omicsd
