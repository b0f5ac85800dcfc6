// `omicsd run-group set|list|get|delete`: the client side of the run groups (docs/api.md, "Run
// groups"). Same conventions as the run commands (cmd_client.cpp): --server (default $OMICSD_SERVER or
// http://127.0.0.1:8080), the bearer token from $OMICSD_TOKEN, --ca-file for an https:// server, a
// short table or the server's JSON with --json.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "host/common/error.hpp"
#include "service/cli/cli.hpp"
#include "service/cli/client_common.hpp"
#include "service/http/http_client.hpp"

namespace omicsd {
namespace {

using nlohmann::json;

std::vector<std::string> group_row(const json& g) {
  auto cap = [&](const char* k) { return g.contains(k) && !g[k].is_null() ? g[k].dump() : std::string("-"); };
  return {str(g, "name"),         cap("max_runs"),        cap("max_tasks"),       cap("max_gpus"),
          cap("max_cpu_threads"), cap("max_run_seconds"), cap("default_priority")};
}
const std::vector<std::string> kHeader = {"GROUP",       "RUNS",        "TASKS",   "GPUS",
                                          "CPU_THREADS", "MAX_SECONDS", "PRIORITY"};

}  // namespace

CliAction add_run_group_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "run-group",
      "Run groups: caps on concurrent runs, tasks, GPUs and CPU threads; run duration; priority");
  cmd->require_subcommand(1);

  struct SetOpts {
    ClientOpts c;
    std::string name;
    std::optional<int64_t> max_runs, max_tasks, max_gpus, max_cpu_threads, max_run_seconds;
    int64_t default_priority = 0;
  };
  auto s = std::make_shared<SetOpts>();
  auto* set = cmd->add_subcommand("set", "Create a run group or replace its settings (unset caps: no limit)");
  add_common(set, s->c);
  set->add_option("name", s->name, "Group name")->required();
  set->add_option("--max-runs", s->max_runs, "Runs in progress at once")->check(CLI::NonNegativeNumber);
  set->add_option("--max-tasks", s->max_tasks, "Tasks leased at once")->check(CLI::NonNegativeNumber);
  set->add_option("--max-gpus", s->max_gpus, "GPUs held by leased tasks at once")
      ->check(CLI::NonNegativeNumber);
  set->add_option("--max-cpu-threads", s->max_cpu_threads, "CPU threads held by leased tasks at once")
      ->check(CLI::NonNegativeNumber);
  set->add_option("--max-run-seconds", s->max_run_seconds,
                  "A run still running this long after it started fails")
      ->check(CLI::PositiveNumber);
  set->add_option("--default-priority", s->default_priority, "Priority of the group's runs that name none")
      ->check(CLI::Range(-1000, 1000));

  auto l = std::make_shared<ClientOpts>();
  auto* list = cmd->add_subcommand("list", "List run groups");
  add_common(list, *l);

  struct NameOpts {
    ClientOpts c;
    std::string name;
  };
  auto g = std::make_shared<NameOpts>();
  auto* get = cmd->add_subcommand("get", "Show a run group");
  add_common(get, g->c);
  get->add_option("name", g->name, "Group name")->required();
  auto d = std::make_shared<NameOpts>();
  auto* del =
      cmd->add_subcommand("delete", "Delete a run group (refused while queued or running runs name it)");
  add_common(del, d->c);
  del->add_option("name", d->name, "Group name")->required();

  auto print = [](const ClientOpts& c, const json& v, const std::vector<json>& groups) {
    if (c.json) {
      std::printf("%s\n", v.dump(2).c_str());
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {kHeader};
    for (const json& one : groups) rows.push_back(group_row(one));
    print_table(rows);
    return 0;
  };

  auto run_set = [s, print]() -> int {
    json body = {{"name", s->name}, {"default_priority", s->default_priority}};
    const std::pair<const char*, const std::optional<int64_t>*> caps[] = {
        {"max_runs", &s->max_runs},
        {"max_tasks", &s->max_tasks},
        {"max_gpus", &s->max_gpus},
        {"max_cpu_threads", &s->max_cpu_threads},
        {"max_run_seconds", &s->max_run_seconds}};
    for (const auto& [k, v] : caps) body[k] = *v ? json(**v) : json(nullptr);
    HttpClient client = make_client(s->c);
    const std::string path = "/v1/run-groups/" + url_encode_segment(s->name);
    // PUT replaces the whole group: repeating it is safe.
    const HttpResponse resp = client.send("PUT", path, body.dump(), "application/json", {}, true);
    client.check(resp, "PUT", path);
    const json g = resp.json();
    return print(s->c, g, {g});
  };
  auto run_list = [l, print]() -> int {
    HttpClient client = make_client(*l);
    const json all = client.get_json("/v1/run-groups");
    std::vector<json> groups;
    for (const json& g : all.value("run_groups", json::array())) groups.push_back(g);
    return print(*l, all, groups);
  };
  auto run_get = [g, print]() -> int {
    HttpClient client = make_client(g->c);
    const json one = client.get_json("/v1/run-groups/" + url_encode_segment(g->name));
    return print(g->c, one, {one});
  };
  auto run_delete = [d]() -> int {
    HttpClient client = make_client(d->c);
    const std::string path = "/v1/run-groups/" + url_encode_segment(d->name);
    const HttpResponse resp = client.send("DELETE", path, "", "", {}, true);
    client.check(resp, "DELETE", path);
    if (d->c.json)
      std::printf("%s\n", json{{"name", d->name}, {"deleted", true}}.dump(2).c_str());
    else
      std::printf("deleted %s\n", d->name.c_str());
    return 0;
  };

  return {cmd, [=]() -> int {
            if (set->parsed()) return run_set();
            if (list->parsed()) return run_list();
            if (get->parsed()) return run_get();
            if (del->parsed()) return run_delete();
            return 1;
          }};
}

}  // namespace omicsd
