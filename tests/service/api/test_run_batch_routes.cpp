// POST /v1/run-batches and `omicsd submit --batch` on a real `omicsd serve`, on each job store: per-run
// errors do not fail the batch, idempotency keys make a resubmitted batch create nothing, a batch
// larger than one buffered body (1 MiB) is accepted, and kill -9 during a batch leaves all of it or
// none of it.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "tests/support/serve_harness.hpp"

namespace omicsd::test {
namespace {

using RunBatchRoutes = ServeStoreTest;

TEST_P(RunBatchRoutes, PerRunErrorsAndIdempotencyKeys) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "d.log"))
      << log_of(d);
  ASSERT_EQ(d.post("/v1/run-groups", json{{"name", "small"}, {"max_cpu_threads", 1}}.dump()).status, 201);
  json runs = json::array();
  for (int i = 0; i < 6; ++i) {
    json r = json::parse(germline_body("S" + std::to_string(i)));
    r["idempotency_key"] = "k" + std::to_string(i);
    runs.push_back(r);
  }
  runs[1]["group"] = "nonesuch";                   // stored-side error
  runs[2]["inputs"]["reference"] = "/etc/passwd";  // outside --allow-root
  runs[3]["group"] = "small";                      // 2 threads per task > 1
  runs[4]["colour"] = "red";                       // unknown field
  runs[5]["idempotency_key"] = 5;                  // not a string
  HttpResult r = d.post("/v1/run-batches", json{{"runs", runs}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json b = r.j();
  EXPECT_EQ(b["created"], 1);
  EXPECT_EQ(b["failed"], 5);
  ASSERT_EQ(b["runs"].size(), 6u);
  EXPECT_TRUE(b["runs"][0]["id"].is_string()) << b.dump();
  for (int i = 1; i < 6; ++i) {
    EXPECT_EQ(b["runs"][i]["index"], i);
    EXPECT_EQ(b["runs"][i]["error"]["code"], 400) << b["runs"][i].dump();
  }
  EXPECT_NE(b["runs"][1]["error"]["message"].get<std::string>().find("unknown run group"), std::string::npos);
  EXPECT_NE(b["runs"][3]["error"]["message"].get<std::string>().find("CPU thread"), std::string::npos);
  EXPECT_NE(b["runs"][4]["error"]["message"].get<std::string>().find("colour"), std::string::npos);
  // The same batch again: the good run exists already.
  const json again = d.post("/v1/run-batches", json{{"runs", runs}}.dump()).j();
  EXPECT_EQ(again["created"], 0);
  EXPECT_EQ(again["existing"], 1);
  EXPECT_EQ(again["runs"][0]["id"], b["runs"][0]["id"]);
  EXPECT_EQ(again["runs"][0]["existed"], true);
  EXPECT_EQ(d.get("/v1/runs").j()["runs"].size(), 1u);
  // Malformed batches are 400s.
  EXPECT_EQ(d.post("/v1/run-batches", "{}").status, 400);
  EXPECT_EQ(d.post("/v1/run-batches", json{{"runs", json::array()}}.dump()).status, 400);
  EXPECT_EQ(d.post("/v1/run-batches", "[").status, 400);
  EXPECT_EQ(d.get("/healthz").status, 200);
}

TEST_P(RunBatchRoutes, SamplesheetThroughTheCli) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "d.log"))
      << log_of(d);
  const fs::path sheet = tmp.path / "samplesheet.csv";
  std::string csv = "sample,fastq_1,fastq_2\n";
  for (int i = 0; i < 3; ++i) csv += "P" + std::to_string(i) + "," + bam.string() + ",\n";
  csv += "BAD,/nonexistent/r1.fq,/nonexistent/r2.fq\n";
  write_file(sheet, csv);
  const std::string submit =
      omicsd_binary() + " submit --server " + d.url() + " --workflow germline --reference " +
      q(ref.string()) + " --param threads=2 --batch " + q(sheet.string()) + " --idempotency-key sheet1 2>&1";
  std::string out;
  EXPECT_EQ(run_command(submit, &out), 1) << out;  // one row failed
  EXPECT_NE(out.find("P2"), std::string::npos) << out;
  EXPECT_NE(out.find("/nonexistent/r1.fq"), std::string::npos) << out;
  const json listed = d.get("/v1/runs").j();
  ASSERT_EQ(listed["runs"].size(), 3u) << listed.dump();
  EXPECT_EQ(listed["runs"][0]["sample"], "P0");
  EXPECT_EQ(run_command(submit, &out), 1) << out;  // resubmitted: nothing new
  EXPECT_EQ(d.get("/v1/runs").j()["runs"].size(), 3u);
  write_file(sheet, "name,reads\nx,y\n");
  EXPECT_EQ(run_command(submit, &out), 2) << out;
  EXPECT_NE(out.find("column 'sample'"), std::string::npos) << out;
}

// 10,000 runs in one request; a daemon killed with SIGKILL while it handles the batch leaves all or
// none of it (one transaction). The first batch runs to its answer and is timed; each later round
// posts a batch of new keys and kills the daemon at a random point within that time (seeded, printed),
// restarts it and counts the runs: every round adds 0 or 10,000. The last batch, resent, creates
// exactly the runs it lacks.
TEST_P(RunBatchRoutes, TenThousandRunsAllOrNoneUnderKill9) {
  constexpr int kRuns = 10000, kKillRounds = 3;
  auto batch_file = [&](int round) {
    json runs = json::array();
    for (int i = 0; i < kRuns; ++i) {
      json r = json::parse(germline_body("S" + std::to_string(i)));
      r["idempotency_key"] = "big-" + std::to_string(round) + "-" + std::to_string(i);
      runs.push_back(r);
    }
    const fs::path body = tmp.path / ("batch-" + std::to_string(round) + ".json");
    write_file(body, json{{"runs", runs}}.dump());
    return body;
  };
  const std::string args = data_args() + " --workers 0 --allow-root " + q(root.string());
  auto count_runs = [](Daemon& d) {
    int64_t count = 0;
    for (std::string token;;) {
      const json page = d.get("/v1/runs?page_size=1000" + (token.empty() ? "" : "&page_token=" + token)).j();
      count += int64_t(page["runs"].size());
      if (!page["next_page_token"].is_string()) break;
      token = page["next_page_token"].get<std::string>();
    }
    return count;
  };
  // Round 0: the whole batch, timed from the request to its answer.
  double full_ms = 0;
  {
    Daemon d;
    ASSERT_TRUE(d.start(args, tmp.path / "d0.log")) << log_of(d);
    const std::string body = read_file(batch_file(0));
    const auto t0 = Clock::now();
    HttpResult r = d.request("POST", "/v1/run-batches", body);
    full_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 500);
    EXPECT_EQ(r.j()["created"], kRuns);
    EXPECT_EQ(count_runs(d), kRuns);
  }
  std::mt19937 rng(std::random_device{}());
  const uint32_t seed = rng();
  rng.seed(seed);
  std::printf("10,000-run batch: %.0f ms uninterrupted; kill seed %u\n", full_ms, seed);
  int64_t expected = kRuns, mid_request = 0;
  fs::path last;
  for (int round = 1; round <= kKillRounds; ++round) {
    last = batch_file(round);
    // A point from just after the request starts to just before the answer would arrive.
    const int kill_ms = int(std::uniform_real_distribution<double>(0.05, 0.95)(rng) * full_ms);
    int curl_rc = -1;
    {
      Daemon d;
      ASSERT_TRUE(d.start(args, tmp.path / ("d" + std::to_string(round) + ".log"))) << log_of(d);
      Process curl;
      curl.start("curl -s -f -m 120 -o /dev/null -H 'Content-Type: application/json' --data-binary @" +
                     q(last.string()) + " " + d.url() + "/v1/run-batches",
                 tmp.path / "curl.log");
      std::this_thread::sleep_for(std::chrono::milliseconds(kill_ms));
      d.kill_now(SIGKILL);
      curl_rc = curl.signal_and_wait(0, 30);  // its exit status: 0 only if the answer came first
    }
    Daemon d;
    ASSERT_TRUE(d.start(args, tmp.path / ("r" + std::to_string(round) + ".log"))) << log_of(d);
    const int64_t count = count_runs(d);
    const int64_t added = count - expected;
    EXPECT_TRUE(added == 0 || added == kRuns)
        << added << " runs of the batch after kill -9 at " << kill_ms << " ms (seed " << seed << ")";
    if (curl_rc != 0) ++mid_request;
    std::printf("round %d: kill -9 at %d ms, %s, %lld runs of the batch stored\n", round, kill_ms,
                curl_rc == 0 ? "after the answer" : "before the answer", static_cast<long long>(added));
    expected = count;
  }
  std::printf("%lld of %d kills landed before the answer\n", static_cast<long long>(mid_request),
              kKillRounds);
  Daemon d;
  ASSERT_TRUE(d.start(args, tmp.path / "last.log")) << log_of(d);
  const int64_t before = count_runs(d);
  HttpResult r = d.request("POST", "/v1/run-batches", read_file(last));
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 500);
  const json b = r.j();
  EXPECT_EQ(b["failed"], 0);
  EXPECT_EQ(b["created"].get<int64_t>() + b["existing"].get<int64_t>(), kRuns);
  EXPECT_EQ(count_runs(d), before + b["created"].get<int64_t>());
  EXPECT_TRUE(b["existing"] == 0 || b["existing"] == kRuns) << b["existing"];
}

INSTANTIATE_TEST_SUITE_P(Stores, RunBatchRoutes, ::testing::Values("sqlite", "postgres"), store_param_name);

}  // namespace
}  // namespace omicsd::test
