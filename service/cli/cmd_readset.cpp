// `omicsd readset import|list|get|export|delete`: the sequence store from the command line
// (docs/api.md "Read sets"). import uploads one or two files as parts, or registers files the
// daemon can read (--uri), and with --wait polls until the import has ended.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "host/common/error.hpp"
#include "service/cli/cli.hpp"
#include "service/cli/client_common.hpp"

namespace omicsd {
namespace {

using nlohmann::json;

void print_readsets(const json& items) {
  std::vector<std::vector<std::string>> rows = {
      {"READSET", "SAMPLE", "SUBJECT", "STATE", "READS", "CRAM", "RATIO"}};
  for (const json& r : items) {
    char ratio[32] = "-";
    if (r.contains("compression_ratio") && r["compression_ratio"].is_number())
      std::snprintf(ratio, sizeof ratio, "%.2f", r["compression_ratio"].get<double>());
    rows.push_back({str(r, "id"), str(r, "sample_id"), str(r, "subject_id"), str(r, "state"),
                    str(r, "read_count"), human_bytes(r.value("cram_bytes", uint64_t(0))), ratio});
  }
  print_table(rows);
  for (const json& r : items)
    if (!r.value("failure_reason", std::string()).empty())
      std::printf("%s: %s\n", r.value("id", "").c_str(), r["failure_reason"].get<std::string>().c_str());
}

json wait_import(HttpClient& client, const std::string& id) {
  for (;;) {
    json r = client.get_json("/v1/readsets/" + url_encode_segment(id));
    const std::string s = r.value("state", "");
    if (s != "IMPORTING" && s != "UPLOADING") return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

CliAction add_readset_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("readset", "Sequence store: import, list, export and delete read sets");
  cmd->require_subcommand(1);
  struct Opts {
    ClientOpts c;
    std::string sample, subject, name, description, id, format = "fastq", output, state;
    std::vector<std::string> tags, read_group, files, uris;
    int mate = 0;
    bool wait = false;
  };
  auto o = std::make_shared<Opts>();

  auto* imp = cmd->add_subcommand("import", "Upload FASTQ (1 or 2 files) / BAM / CRAM, or register --uri");
  add_common(imp, o->c);
  imp->add_option("--sample", o->sample, "Sample id (the runs' and variant store's key)")->required();
  imp->add_option("--subject", o->subject, "Subject (participant) id");
  imp->add_option("--name", o->name, "Name (default: the sample id)");
  imp->add_option("--description", o->description, "Free text");
  imp->add_option("--tag", o->tags, "KEY=VALUE cohort label (repeatable)");
  imp->add_option("--read-group", o->read_group, "TAG=VALUE @RG field, e.g. PL=ILLUMINA (repeatable)");
  imp->add_option("--uri", o->uris, "A file the daemon can read (under its --allow-root); repeat for read 2");
  imp->add_option("files", o->files, "Files to upload: one FASTQ/BAM/CRAM, or read 1 and read 2 FASTQ");
  imp->add_flag("--wait", o->wait, "Wait until the import has ended; exit 1 when it FAILED");

  auto* list = cmd->add_subcommand("list", "List read sets");
  add_common(list, o->c);
  list->add_option("--sample", o->sample, "Only this sample id");
  list->add_option("--subject", o->subject, "Only this subject id");
  list->add_option("--state", o->state, "UPLOADING, IMPORTING, ACTIVE or FAILED");

  auto* get = cmd->add_subcommand("get", "Show one read set");
  add_common(get, o->c);
  get->add_option("id", o->id, "Read set id")->required();

  auto* exp = cmd->add_subcommand("export", "Download the reads as FASTQ, BAM or CRAM");
  add_common(exp, o->c);
  exp->add_option("id", o->id, "Read set id")->required();
  exp->add_option("--format", o->format, "fastq, bam or cram")
      ->check(CLI::IsMember({"fastq", "bam", "cram"}));
  exp->add_option("--mate", o->mate, "FASTQ of a pair: 1 or 2 (default: interleaved)")
      ->check(CLI::Range(0, 2));
  exp->add_option("-o,--output", o->output, "Output file")->required();

  auto* del = cmd->add_subcommand("delete", "Delete a read set (refused while a run uses it)");
  add_common(del, o->c);
  del->add_option("id", o->id, "Read set id")->required();

  return {cmd, [o, imp, list, get, exp, del] {
            HttpClient client = make_client(o->c);
            if (imp->parsed()) {
              if (o->files.empty() == o->uris.empty())
                throw InputError("readset import: give files to upload or --uri, not both");
              json body = {{"sample_id", o->sample}};
              if (!o->subject.empty()) body["subject_id"] = o->subject;
              if (!o->name.empty()) body["name"] = o->name;
              if (!o->description.empty()) body["description"] = o->description;
              auto pairs = [](const std::vector<std::string>& kv, const char* flag) {
                json m = json::object();
                for (const auto& s : kv) {
                  const auto eq = s.find('=');
                  if (eq == std::string::npos || eq == 0)
                    throw InputError(std::string(flag) + " " + s + ": expected KEY=VALUE");
                  m[s.substr(0, eq)] = s.substr(eq + 1);
                }
                return m;
              };
              body["tags"] = pairs(o->tags, "--tag");
              body["read_group"] = pairs(o->read_group, "--read-group");
              json rs;
              if (!o->uris.empty()) {
                body["sources"] = o->uris;
                rs = client.post_json("/v1/readsets", body, false);
              } else {
                if (o->files.size() > 2)
                  throw InputError("readset import: at most two files (read 1, read 2)");
                for (const auto& f : o->files)
                  if (!std::filesystem::is_regular_file(f)) throw InputError(f + ": not a readable file");
                body["parts"] = o->files.size();
                rs = client.post_json("/v1/readsets", body, false);
                const std::string id = rs.value("id", "");
                for (size_t i = 0; i < o->files.size(); ++i) {
                  const std::string path =
                      "/v1/readsets/" + url_encode_segment(id) + "/parts/" + std::to_string(i + 1);
                  client.check(client.upload("PUT", path, o->files[i]), "PUT", path);
                }
                rs = client.post_json("/v1/readsets/" + url_encode_segment(id) + "/complete", json::object(),
                                      true);
              }
              if (o->wait) rs = wait_import(client, rs.value("id", ""));
              if (o->c.json)
                std::printf("%s\n", rs.dump(2).c_str());
              else
                print_readsets(json::array({rs}));
              return rs.value("state", "") == "FAILED" ? 1 : 0;
            }
            if (list->parsed()) {
              std::string q = "/v1/readsets?page_size=1000";
              if (!o->sample.empty()) q += "&sample_id=" + url_encode_segment(o->sample);
              if (!o->subject.empty()) q += "&subject_id=" + url_encode_segment(o->subject);
              if (!o->state.empty()) q += "&state=" + url_encode_segment(o->state);
              json all = json::array();
              std::string token;
              do {
                json page =
                    client.get_json(q + (token.empty() ? "" : "&page_token=" + url_encode_segment(token)));
                for (const json& r : page["readsets"]) all.push_back(r);
                token = page.contains("next_page_token") && page["next_page_token"].is_string()
                            ? page["next_page_token"].get<std::string>()
                            : "";
              } while (!token.empty());
              if (o->c.json)
                std::printf("%s\n", all.dump(2).c_str());
              else
                print_readsets(all);
              return 0;
            }
            const std::string path = "/v1/readsets/" + url_encode_segment(o->id);
            if (get->parsed()) {
              json rs = client.get_json(path);
              if (o->c.json)
                std::printf("%s\n", rs.dump(2).c_str());
              else
                print_readsets(json::array({rs}));
              return 0;
            }
            if (exp->parsed()) {
              std::string q = path + "/content?format=" + o->format;
              if (o->mate) q += "&mate=" + std::to_string(o->mate);
              const uint64_t n = client.download(q, o->output);
              std::fprintf(stderr, "%s: %s\n", o->output.c_str(), human_bytes(n).c_str());
              return 0;
            }
            if (del->parsed()) {
              HttpResponse r = client.send("DELETE", path, "");
              client.check(r, "DELETE", path);
              return 0;
            }
            return 1;
          }};
}

}  // namespace omicsd
