// /v1/run-groups and runs that name a group, on a real `omicsd serve` with each job store: the routes
// (400s naming the field, 404, 409), the `omicsd run-group` and `omicsd submit --group` commands, caps
// seen through the worker lease API, and a run failed by the daemon's sweeper for running past its
// group's max_run_seconds.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/support/serve_harness.hpp"

namespace omicsd::test {
namespace {

using RunGroupRoutes = ServeStoreTest;

json with(const std::string& body, const json& extra) {
  json j = json::parse(body);
  for (const auto& [k, v] : extra.items()) j[k] = v;
  return j;
}

TEST_P(RunGroupRoutes, GroupsThroughTheApiAndTheCli) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "d.log"))
      << log_of(d);
  HttpResult list = d.get("/v1/run-groups");
  ASSERT_EQ(list.status, 200) << list.body;
  ASSERT_EQ(list.j()["run_groups"].size(), 1u);
  EXPECT_EQ(list.j()["run_groups"][0]["name"], "default");
  EXPECT_TRUE(list.j()["run_groups"][0]["max_tasks"].is_null());

  const std::pair<json, std::string> bad[] = {
      {json{{"max_tasks", 2}}, "missing 'name'"},
      {json{{"name", "a b"}}, "run group name"},
      {json{{"name", "g"}, {"max_tasks", -1}}, "'max_tasks'"},
      {json{{"name", "g"}, {"max_gpus", "two"}}, "'max_gpus'"},
      {json{{"name", "g"}, {"max_run_seconds", 0}}, "'max_run_seconds'"},
      {json{{"name", "g"}, {"default_priority", 5000}}, "'default_priority'"},
      {json{{"name", "g"}, {"colour", "red"}}, "unknown field 'colour'"},
  };
  for (const auto& [body, message] : bad) {
    HttpResult r = d.post("/v1/run-groups", body.dump());
    EXPECT_EQ(r.status, 400) << body.dump() << " -> " << r.body;
    EXPECT_NE(r.j()["error"].value("message", "").find(message), std::string::npos)
        << body.dump() << " -> " << r.body;
  }
  HttpResult created = d.post(
      "/v1/run-groups", json{{"name", "clinical"}, {"max_cpu_threads", 3}, {"default_priority", 40}}.dump());
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.j()["max_cpu_threads"], 3);
  EXPECT_EQ(d.post("/v1/run-groups", json{{"name", "clinical"}}.dump()).status, 409);
  EXPECT_EQ(d.get("/v1/run-groups/nonesuch").status, 404);
  EXPECT_EQ(d.request("DELETE", "/v1/run-groups/nonesuch").status, 404);
  EXPECT_EQ(d.request("DELETE", "/v1/run-groups/default").status, 409);
  EXPECT_EQ(d.request("PUT", "/v1/run-groups/other", json{{"name", "clinical"}}.dump()).status, 400);

  // The CLI replaces the group (PUT) and lists it.
  const std::string cli = omicsd_binary() + " run-group";
  const std::string server = " --server " + d.url();
  std::string out;
  ASSERT_EQ(run_command(cli + " set clinical --max-cpu-threads 4 --max-tasks 2 --default-priority 40" +
                            server + " 2>&1",
                        &out),
            0)
      << out;
  json g = d.get("/v1/run-groups/clinical").j();
  EXPECT_EQ(g["max_cpu_threads"], 4);
  EXPECT_EQ(g["max_tasks"], 2);
  EXPECT_TRUE(g["max_runs"].is_null());
  ASSERT_EQ(run_command(cli + " list" + server + " 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("clinical"), std::string::npos) << out;
  EXPECT_NE(out.find("default"), std::string::npos) << out;

  // Runs name their group; its default priority applies; unknown groups and tasks bigger than the
  // group's caps are 400s (germline_body asks for 2 threads per task).
  HttpResult plain = d.post("/v1/runs", germline_body());
  ASSERT_EQ(plain.status, 201) << plain.body;
  EXPECT_EQ(plain.j()["group"], "default");
  HttpResult r = d.post("/v1/runs", with(germline_body(), {{"group", "clinical"}}).dump());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.j()["group"], "clinical");
  EXPECT_EQ(r.j()["priority"], 40);
  EXPECT_TRUE(r.j()["started_at"].is_null());
  HttpResult unknown = d.post("/v1/runs", with(germline_body(), {{"group", "nonesuch"}}).dump());
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_NE(unknown.body.find("unknown run group 'nonesuch'"), std::string::npos) << unknown.body;
  HttpResult big = d.post(
      "/v1/runs", with(germline_body(), {{"group", "clinical"}, {"parameters", {{"threads", 8}}}}).dump());
  EXPECT_EQ(big.status, 400) << big.body;
  EXPECT_NE(big.body.find("CPU thread"), std::string::npos) << big.body;
  EXPECT_EQ(d.post("/v1/runs", with(germline_body(), {{"group", 7}}).dump()).status, 400);
  // omicsd submit --group --priority.
  ASSERT_EQ(run_command(omicsd_binary() + " submit --server " + d.url() +
                            " --workflow germline --reference " + q(ref.string()) + " --reads " +
                            q(bam.string()) + " --param threads=2 --group clinical --priority -3 2>&1",
                        &out),
            0)
      << out;
  const std::string cli_run = out.substr(0, out.find('\n'));
  json cj = d.get("/v1/runs/" + cli_run).j();
  EXPECT_EQ(cj["group"], "clinical");
  EXPECT_EQ(cj["priority"], -3);

  // Caps through the lease API: 'clinical' holds at most 4 threads (2 tasks of 2) at once, so after
  // the plain run's align task and two of clinical's, nothing more is leasable.
  std::vector<std::string> leased;
  for (;;) {
    HttpResult l = d.post("/v1/tasks/lease", json{{"worker_id", "w1"}, {"lease_seconds", 600}}.dump());
    if (l.status == 204) break;
    ASSERT_EQ(l.status, 200) << l.body;
    leased.push_back(l.j()["task"]["run_id"].get<std::string>());
  }
  EXPECT_EQ(leased.size(), 3u);
  EXPECT_EQ(std::count(leased.begin(), leased.end(), plain.j()["id"].get<std::string>()), 1);
  // A group with queued runs cannot be deleted.
  EXPECT_EQ(d.request("DELETE", "/v1/run-groups/clinical").status, 409);
  EXPECT_EQ(d.get("/healthz").status, 200);
}

TEST_P(RunGroupRoutes, TheSweeperFailsARunPastItsGroupsMaximumDuration) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "d.log"))
      << log_of(d);
  ASSERT_EQ(d.post("/v1/run-groups", json{{"name", "quick"}, {"max_run_seconds", 1}}.dump()).status, 201);
  HttpResult r = d.post("/v1/runs", with(germline_body(), {{"group", "quick"}}).dump());
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = r.j()["id"].get<std::string>();
  // A worker leases the first task and never finishes it (its lease is long).
  HttpResult l = d.post("/v1/tasks/lease", json{{"worker_id", "w1"}, {"lease_seconds", 600}}.dump());
  ASSERT_EQ(l.status, 200) << l.body;
  const json run = d.wait_run(id, 30);
  EXPECT_EQ(run["state"], "FAILED") << run.dump();
  EXPECT_NE(run["failure_reason"].get<std::string>().find("maximum run duration of its group 'quick' (1 s"),
            std::string::npos)
      << run.dump();
  EXPECT_TRUE(run["started_at"].is_number());
  // The worker's late completion is refused: the run's tasks were canceled.
  std::string task_id = l.j()["task"]["id"].get<std::string>();
  task_id.replace(task_id.find('/'), 1, "%2F");
  HttpResult late = d.post("/v1/tasks/" + task_id + "/fail",
                           json{{"lease_token", l.j()["task"]["lease_token"]}, {"error", "late"}}.dump());
  EXPECT_EQ(late.status, 409) << late.body;
  HttpResult m = d.get("/metrics");
  EXPECT_NE(m.body.find("omicsd_runs_overdue_total 1"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Stores, RunGroupRoutes, ::testing::Values("sqlite", "postgres"), store_param_name);

}  // namespace
}  // namespace omicsd::test
