// POST /v1/run-batches, GET /v1/run-batches[/{id}] and `omicsd submit --batch` on a real `omicsd serve`,
// on each job store: a batch is accepted (202) and its runs created in the background; per-run errors
// do not fail the batch, idempotency keys make a resubmitted batch create nothing, a batch larger than
// one buffered body (1 MiB) is accepted, and kill -9 during a batch leaves all of it or none of it.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/serve_harness.hpp"

namespace omicsd::test {
namespace {

using RunBatchRoutes = ServeStoreTest;

// The batch once the daemon has submitted all of its requests, with every result ("runs", all pages).
json finished_batch(const Daemon& d, const std::string& id) {
  const std::string path = "/v1/run-batches/" + id;
  json b;
  for (int i = 0; i < 600; ++i) {
    b = d.get(path + "?page_size=1").j();
    if (b["state"] == "SUBMITTED") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(b["state"], "SUBMITTED") << b.dump();
  json runs = json::array();
  for (std::string token;;) {
    const json page = d.get(path + (token.empty() ? "" : "?page_token=" + token)).j();
    for (const json& r : page["runs"]) runs.push_back(r);
    if (!page["next_page_token"].is_string()) break;
    token = page["next_page_token"].get<std::string>();
  }
  b["runs"] = runs;
  return b;
}

// The runs stored, from the daemon's omicsd_runs gauges (listing 50,000 runs would take longer).
int64_t stored_runs(const Daemon& d) {
  const HttpResult m = d.get("/metrics");
  EXPECT_EQ(m.status, 200);
  int64_t count = 0;
  std::istringstream lines(m.body);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("omicsd_runs{", 0) == 0) count += std::stoll(line.substr(line.rfind(' ') + 1));
  return count;
}

// Waits until no batch is SUBMITTING (the daemon resumes the batches a kill interrupted).
void wait_batches_submitted(const Daemon& d) {
  for (int i = 0; i < 600; ++i) {
    if (d.get("/v1/run-batches?state=SUBMITTING").j()["batches"].empty()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "batches still SUBMITTING after 60 s";
}

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
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.j()["state"], "SUBMITTING");
  EXPECT_EQ(r.j()["total"], 6);
  const json b = finished_batch(d, r.j()["id"]);
  EXPECT_EQ(b["created"], 1);
  EXPECT_EQ(b["submitted"], 6);
  EXPECT_TRUE(b["finished_at"].is_number_integer()) << b.dump();
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
  const HttpResult second = d.post("/v1/run-batches", json{{"runs", runs}}.dump());
  ASSERT_EQ(second.status, 202) << second.body;
  const json again = finished_batch(d, second.j()["id"]);
  EXPECT_NE(again["id"], b["id"]);
  EXPECT_EQ(again["created"], 0);
  EXPECT_EQ(again["existing"], 1);
  EXPECT_EQ(again["runs"][0]["id"], b["runs"][0]["id"]);
  EXPECT_EQ(again["runs"][0]["existed"], true);
  EXPECT_EQ(d.get("/v1/runs").j()["runs"].size(), 1u);
  // A batch's own Idempotency-Key: the second request answers the first batch (200) and stores nothing.
  const HttpResult keyed =
      d.post("/v1/run-batches", json{{"runs", {runs[0]}}}.dump(), {"Idempotency-Key: batch-a"});
  ASSERT_EQ(keyed.status, 202) << keyed.body;
  const HttpResult keyed_again =
      d.post("/v1/run-batches", json{{"runs", {runs[0], runs[1]}}}.dump(), {"Idempotency-Key: batch-a"});
  ASSERT_EQ(keyed_again.status, 200) << keyed_again.body;
  EXPECT_EQ(keyed_again.j()["id"], keyed.j()["id"]);
  EXPECT_EQ(keyed_again.j()["total"], 1);
  // The batches, oldest first, a page at a time; unknown ids and bad page tokens.
  finished_batch(d, keyed.j()["id"]);
  const json listed = d.get("/v1/run-batches?page_size=2").j();
  ASSERT_EQ(listed["batches"].size(), 2u) << listed.dump();
  EXPECT_EQ(listed["batches"][0]["id"], b["id"]);
  ASSERT_TRUE(listed["next_page_token"].is_string()) << listed.dump();
  const json rest =
      d.get("/v1/run-batches?page_size=2&page_token=" + listed["next_page_token"].get<std::string>()).j();
  ASSERT_EQ(rest["batches"].size(), 1u) << rest.dump();
  EXPECT_EQ(rest["batches"][0]["id"], keyed.j()["id"]);
  EXPECT_EQ(d.get("/v1/run-batches?state=SUBMITTING").j()["batches"].size(), 0u);
  EXPECT_EQ(d.get("/v1/run-batches?state=DONE").status, 400);
  EXPECT_EQ(d.get("/v1/run-batches/batch-nonesuch").status, 404);
  EXPECT_EQ(d.get("/v1/run-batches/" + b["id"].get<std::string>() + "?page_token=x").status, 400);
  const json tail = d.get("/v1/run-batches/" + b["id"].get<std::string>() + "?page_size=2&page_token=4").j();
  ASSERT_EQ(tail["runs"].size(), 2u) << tail.dump();
  EXPECT_EQ(tail["runs"][0]["index"], 4);
  EXPECT_TRUE(tail["next_page_token"].is_null());
  // Malformed batches are 400s.
  EXPECT_EQ(d.post("/v1/run-batches", "{}").status, 400);
  EXPECT_EQ(d.post("/v1/run-batches", json{{"runs", json::array()}}.dump()).status, 400);
  EXPECT_EQ(d.post("/v1/run-batches", "[").status, 400);
  EXPECT_EQ(d.post("/v1/run-batches", json{{"runs", {runs[0]}}, {"name", "x"}}.dump()).status, 400);
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

// Two daemons share one store: a batch whose daemon is killed right after accepting it is taken over by
// the other once it has made no progress for a while (kBatchStallMs), and every request ends with one
// result and every run is created once.
TEST_P(RunBatchRoutes, AnotherDaemonTakesOverABatchItsDaemonLeft) {
  constexpr int kRuns = 3000;
  const std::string db =
      GetParam() == "postgres" ? db_args : " --db " + q("sqlite:" + (data / "omicsd.db").string());
  const std::string common = " --workers 0 --allow-root " + q(root.string());
  Daemon a, b;
  ASSERT_TRUE(a.start("--data-dir " + q(data.string()) + db + common, tmp.path / "a.log")) << log_of(a);
  ASSERT_TRUE(b.start("--data-dir " + q((tmp.path / "data-b").string()) + db + common, tmp.path / "b.log"))
      << log_of(b);
  json runs = json::array();
  for (int i = 0; i < kRuns; ++i) {
    json r = json::parse(germline_body("T" + std::to_string(i)));
    r["idempotency_key"] = "takeover-" + std::to_string(i);
    runs.push_back(r);
  }
  const HttpResult r = a.post("/v1/run-batches", json{{"runs", runs}}.dump());
  a.kill_now(SIGKILL);
  ASSERT_EQ(r.status, 202) << r.body.substr(0, 500);
  const json done = finished_batch(b, r.j()["id"]);
  EXPECT_EQ(done["created"], kRuns) << done.dump().substr(0, 500);
  EXPECT_EQ(done["failed"], 0);
  ASSERT_EQ(done["runs"].size(), size_t(kRuns));
  std::set<std::string> ids;
  for (const json& item : done["runs"]) ids.insert(item["id"].get<std::string>());
  EXPECT_EQ(ids.size(), size_t(kRuns));
  EXPECT_EQ(stored_runs(b), kRuns);
}

// 10,000 runs in one request; a daemon killed with SIGKILL while it accepts the batch or creates its
// runs leaves all of it or none once restarted (the batch is one transaction; a restarted daemon
// resumes the runs of an accepted batch where the kill stopped them, and each chunk of runs commits
// with its results). The first batch runs to its last run and is timed; each later round posts a
// batch of new keys and kills the daemon at a random point within that time (seeded, printed),
// restarts it, waits for the batches to be submitted and counts the runs: every round adds 0 or
// 10,000. The last batch, resent, creates exactly the runs it lacks.
TEST_P(RunBatchRoutes, TenThousandRunsAllOrNoneUnderKill9) {
  constexpr int kRuns = 10000, kKillRounds = 4;
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
  // Round 0: the whole batch, timed from the request to its answer and to its last run.
  double accept_ms = 0, full_ms = 0;
  {
    Daemon d;
    ASSERT_TRUE(d.start(args, tmp.path / "d0.log")) << log_of(d);
    const std::string body = read_file(batch_file(0));
    const auto t0 = Clock::now();
    HttpResult r = d.request("POST", "/v1/run-batches", body);
    accept_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    ASSERT_EQ(r.status, 202) << r.body.substr(0, 500);
    const json b = finished_batch(d, r.j()["id"]);
    full_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    EXPECT_EQ(b["created"], kRuns);
    EXPECT_EQ(b["runs"].size(), size_t(kRuns));
    EXPECT_EQ(stored_runs(d), kRuns);
  }
  std::mt19937 rng(std::random_device{}());
  const uint32_t seed = rng();
  rng.seed(seed);
  std::printf("10,000-run batch: accepted in %.0f ms, all runs created in %.0f ms; kill seed %u\n", accept_ms,
              full_ms, seed);
  int64_t expected = kRuns, mid_request = 0;
  fs::path last;
  for (int round = 1; round <= kKillRounds; ++round) {
    last = batch_file(round);
    // A point from just after the request starts to just before its last run would be created; the
    // first round aims at the request itself.
    const double span = round == 1 ? accept_ms : full_ms;
    const int kill_ms = int(std::uniform_real_distribution<double>(0.05, 0.95)(rng) * span);
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
    // Where the restarted daemon found the batch (it resumes it at once, so this is a glimpse).
    const json pending = d.get("/v1/run-batches?state=SUBMITTING").j()["batches"];
    const std::string found = pending.empty()
                                  ? "no batch submitting"
                                  : "its batch at " + std::to_string(pending[0]["submitted"].get<int64_t>()) +
                                        " of " + std::to_string(kRuns);
    wait_batches_submitted(d);
    const int64_t count = stored_runs(d);
    const int64_t added = count - expected;
    EXPECT_TRUE(added == 0 || added == kRuns)
        << added << " runs of the batch after kill -9 at " << kill_ms << " ms (seed " << seed << ")";
    if (curl_rc != 0) ++mid_request;
    std::printf("round %d: kill -9 at %d ms, %s; at restart %s; %lld runs of the batch once resumed\n", round,
                kill_ms, curl_rc == 0 ? "after the answer" : "before the answer", found.c_str(),
                static_cast<long long>(added));
    expected = count;
  }
  std::printf("%lld of %d kills landed before the answer\n", static_cast<long long>(mid_request),
              kKillRounds);
  Daemon d;
  ASSERT_TRUE(d.start(args, tmp.path / "last.log")) << log_of(d);
  const int64_t before = stored_runs(d);
  HttpResult r = d.request("POST", "/v1/run-batches", read_file(last));
  ASSERT_EQ(r.status, 202) << r.body.substr(0, 500);
  const json b = finished_batch(d, r.j()["id"]);
  EXPECT_EQ(b["failed"], 0);
  EXPECT_EQ(b["created"].get<int64_t>() + b["existing"].get<int64_t>(), kRuns);
  EXPECT_EQ(stored_runs(d), before + b["created"].get<int64_t>());
  EXPECT_TRUE(b["existing"] == 0 || b["existing"] == kRuns) << b["existing"];
}

INSTANTIATE_TEST_SUITE_P(Stores, RunBatchRoutes, ::testing::Values("sqlite", "postgres"), store_param_name);

}  // namespace
}  // namespace omicsd::test
