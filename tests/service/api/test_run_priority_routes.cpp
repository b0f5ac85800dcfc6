// POST /v1/runs with 'priority' and 'deadline' on a real `omicsd serve`, on each job store: bad values
// are 400s that name the field, good ones are stored and shown by GET /v1/runs/{id}, and the worker
// lease API hands out the most urgent run's task first (deadline, then priority), whatever the
// order of submission.
#include <gtest/gtest.h>

#include "tests/support/serve_harness.hpp"

namespace omicsd::test {
namespace {

using RunPriorityRoutes = ServeStoreTest;

json with(const std::string& body, const json& extra) {
  json j = json::parse(body);
  for (const auto& [k, v] : extra.items()) j[k] = v;
  return j;
}

TEST_P(RunPriorityRoutes, BadPrioritiesAndDeadlinesAre400sThatNameTheField) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "d.log"))
      << log_of(d);
  const std::pair<json, std::string> bad[] = {
      {{{"priority", "high"}}, "'priority'"},
      {{{"priority", 1.5}}, "'priority'"},
      {{{"priority", 1001}}, "'priority'"},
      {{{"priority", -1001}}, "'priority'"},
      {{{"deadline", "tomorrow"}}, "'deadline'"},
      {{{"deadline", "2026-02-30T10:00:00Z"}}, "no such date"},
      {{{"deadline", "2026-12-05T10:00:00"}}, "'Z' or a +hh:mm"},
      {{{"deadline", "2026-12-05T25:00:00Z"}}, "'deadline'"},
      {{{"deadline", -5}}, "'deadline'"},
      {{{"deadline", true}}, "'deadline'"},
      {{{"deadline", json::object()}}, "'deadline'"},
  };
  for (const auto& [extra, message] : bad) {
    HttpResult r = d.post("/v1/runs", with(germline_body(), extra).dump());
    EXPECT_EQ(r.status, 400) << extra.dump() << " -> " << r.body;
    EXPECT_NE(r.j()["error"].value("message", "").find(message), std::string::npos)
        << extra.dump() << " -> " << r.body;
  }
  EXPECT_EQ(d.get("/v1/runs").j()["runs"].size(), 0u);

  // Defaults: priority 0, no deadline. RFC 3339 with an offset and unix ms name the same instant.
  HttpResult plain = d.post("/v1/runs", germline_body());
  ASSERT_EQ(plain.status, 201) << plain.body;
  EXPECT_EQ(plain.j()["priority"], 0);
  EXPECT_TRUE(plain.j()["deadline"].is_null());
  HttpResult rfc =
      d.post("/v1/runs",
             with(germline_body(), {{"priority", -7}, {"deadline", "2026-12-05T15:30:00.250+01:00"}}).dump());
  ASSERT_EQ(rfc.status, 201) << rfc.body;
  const std::string id = rfc.j()["id"].get<std::string>();
  json got = d.get("/v1/runs/" + id).j();
  EXPECT_EQ(got["priority"], -7);
  EXPECT_EQ(got["deadline"], 1796481000250LL);  // 2026-12-05T14:30:00.250Z
  HttpResult ms = d.post("/v1/runs", with(germline_body(), {{"deadline", 1796481000250LL}}).dump());
  ASSERT_EQ(ms.status, 201) << ms.body;
  EXPECT_EQ(ms.j()["deadline"], 1796481000250LL);
  EXPECT_EQ(d.get("/healthz").status, 200);
}

TEST_P(RunPriorityRoutes, WorkersLeaseTheMostUrgentRunFirst) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "d.log"))
      << log_of(d);
  // Submitted least urgent first.
  std::vector<std::string> ids;
  for (const json& extra :
       {json{{"priority", -5}}, json::object(), json{{"priority", 10}},
        json{{"deadline", "2099-01-01T00:00:00Z"}}, json{{"deadline", "2098-01-01T00:00:00Z"}}}) {
    HttpResult r = d.post("/v1/runs", with(germline_body(), extra).dump());
    ASSERT_EQ(r.status, 201) << r.body;
    ids.push_back(r.j()["id"].get<std::string>());
  }
  // Each germline run's first task (align) is leasable; lease them all, most urgent first.
  for (size_t i = ids.size(); i-- > 0;) {
    HttpResult lease = d.post("/v1/tasks/lease", json{{"worker_id", "w1"}, {"lease_seconds", 60}}.dump());
    ASSERT_EQ(lease.status, 200) << lease.body;
    EXPECT_EQ(lease.j()["task"]["run_id"], ids[i]) << "lease " << ids.size() - i << ": " << lease.body;
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, RunPriorityRoutes, ::testing::Values("sqlite", "postgres"),
                         store_param_name);

}  // namespace
}  // namespace omicsd::test
