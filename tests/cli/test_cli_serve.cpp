// Integration tests of `omicsd serve` over loopback with real processes: a germline run on the shared
// NA12878 data through the in-process worker, idempotency, call caching, bad inputs, auth, and a
// kill -9 of the daemon under concurrent submissions.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/serve_harness.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

TEST_P(ServeStoreTest, GermlineRunIdempotencyCacheAndBadInputs) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 1 --threads 2 --allow-root " + q(root.string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  EXPECT_EQ(d.get("/readyz").status, 200);

  // Submit twice with one Idempotency-Key: one run.
  HttpResult a = d.post("/v1/runs", germline_body(), {"Idempotency-Key: key-1"});
  ASSERT_EQ(a.status, 201) << a.body;
  const std::string id = a.j().at("id").get<std::string>();
  EXPECT_EQ(a.j().at("state"), "QUEUED");
  EXPECT_EQ(a.j().at("tasks").size(), 3u);
  HttpResult a2 = d.post("/v1/runs", germline_body(), {"Idempotency-Key: key-1"});
  ASSERT_EQ(a2.status, 200) << a2.body;
  EXPECT_EQ(a2.j().at("id"), id);

  const auto t0 = Clock::now();
  json run = d.wait_run(id);
  const double first_s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << "\n" << log_of(d);
  for (const char* o : {"bam", "bai", "vcf", "tbi", "qc"}) EXPECT_TRUE(run["outputs"].contains(o)) << o;
  for (const auto& t : run["tasks"]) {
    EXPECT_EQ(t["state"], "COMPLETE");
    EXPECT_FALSE(t["cache_hit"].get<bool>());
    EXPECT_FALSE(t["worker_id"].get<std::string>().empty());
  }
  const json& prov = run["provenance"];
  EXPECT_TRUE(prov.contains("engine")) << prov.dump(2);
  EXPECT_TRUE(prov.contains("reference")) << prov.dump(2);
  EXPECT_TRUE(prov.contains("input_digests")) << prov.dump(2);
  EXPECT_EQ(prov["tasks"].size(), 3u);

  // The VCF has every truth SNV.
  const fs::path vcf = tmp.path / "out.vcf.gz";
  ASSERT_EQ(d.request("GET", "/v1/runs/" + id + "/outputs/vcf", "", {}, vcf.string()).status, 200);
  const std::set<std::string> truth = vcf_snvs(tiny() / "truth.vcf.gz");
  EXPECT_EQ(truth.size(), 14u);
  const std::set<std::string> got = vcf_snvs(vcf);
  for (const auto& s : truth) EXPECT_TRUE(got.count(s)) << "missing truth SNV " << s;
  // Range request on an output.
  HttpResult part = d.request("GET", "/v1/runs/" + id + "/outputs/qc", "", {"Range: bytes=0-0"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "{");

  // Same inputs, new key: a new run, all cache hits.
  HttpResult b = d.post("/v1/runs", germline_body(), {"Idempotency-Key: key-2"});
  ASSERT_EQ(b.status, 201) << b.body;
  const std::string id2 = b.j().at("id").get<std::string>();
  EXPECT_NE(id2, id);
  const auto t1 = Clock::now();
  json run2 = d.wait_run(id2);
  const double second_s = std::chrono::duration<double>(Clock::now() - t1).count();
  ASSERT_EQ(run2.value("state", ""), "COMPLETE") << run2.dump(2);
  for (const auto& t : run2["tasks"]) EXPECT_TRUE(t["cache_hit"].get<bool>()) << t.dump();
  EXPECT_EQ(run2["outputs"], run["outputs"]);
  std::printf("first run %.2f s, cached run %.2f s\n", first_s, second_s);

  // Listing, logs, metrics, OpenAPI.
  HttpResult list = d.get("/v1/runs?state=COMPLETE&page_size=1");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.j()["runs"].size(), 1u);
  EXPECT_TRUE(list.j()["next_page_token"].is_string());
  EXPECT_EQ(d.get("/v1/runs/" + id + "/logs").status, 200);
  HttpResult metrics = d.get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* m :
       {"omicsd_queue_depth 0", "omicsd_runs{state=\"COMPLETE\"} 2", "omicsd_cache_hits_total 3",
        "omicsd_lease_expiries_total", "omicsd_task_duration_seconds_bucket"})
    EXPECT_NE(metrics.body.find(m), std::string::npos) << m << "\n" << metrics.body;
  HttpResult oa = d.get("/v1/openapi.json");
  ASSERT_EQ(oa.status, 200);
  EXPECT_EQ(oa.j(), json::parse(read_file(fs::path(OMICSD_SOURCE_DIR) / "docs" / "openapi.json")));
  EXPECT_EQ(oa.body, read_file(fs::path(OMICSD_SOURCE_DIR) / "docs" / "openapi.json"));

  // Bad inputs: clear 4xx JSON errors.
  auto expect_error = [&](const HttpResult& r, int status, const std::string& what) {
    EXPECT_EQ(r.status, status) << what << ": " << r.body;
    json e = r.j();
    EXPECT_TRUE(e.contains("error") && e["error"].contains("message")) << what << ": " << r.body;
  };
  expect_error(d.post("/v1/runs", "{\"workflow\": \"germline\", "), 400, "malformed JSON");
  expect_error(
      d.post("/v1/runs", json{{"workflow", "rnaseq"}, {"inputs", {{"reference", ref.string()}}}}.dump()), 400,
      "unknown workflow");
  expect_error(
      d.post("/v1/runs", json{{"workflow", "germline"}, {"inputs", {{"reference", ref.string()}}}}.dump()),
      400, "missing reads");
  for (const std::string& bad :
       {root.string() + "/../etc/passwd", std::string("/etc/passwd"), std::string("file:///etc/passwd"),
        std::string("../q.fa"), std::string("sha256:" + std::string(64, '0'))})
    expect_error(
        d.post("/v1/runs", json{{"workflow", "germline"},
                                {"inputs", {{"reference", bad}, {"reads", json::array({bam.string()})}}}}
                               .dump()),
        400, "bad URI " + bad);
  expect_error(d.get("/v1/runs/run-0000000000000000"), 404, "unknown run");
  expect_error(d.get("/v1/runs/" + id + "/outputs/nope"), 404, "unknown output");
  expect_error(d.post("/v1/runs/" + id + "/cancel", ""), 409, "cancel a finished run");
  EXPECT_EQ(d.post("/v1/tasks/lease", json{{"worker_id", "w-test"}}.dump()).status, 204);
  EXPECT_EQ(d.get("/healthz").status, 200);

  // Graceful shutdown.
  EXPECT_EQ(d.kill_now(SIGTERM), 0) << log_of(d);
}

// Ploidy run parameters reach the call task: ploidy 1 with a ploidy BED making the second half of the
// contig diploid gives haploid GTs before it and diploid ones in it; a bad BED fails the call task
// with its line.
TEST_F(ServeFixture, GermlineRunWithPloidyParameters) {
  if (!fs::exists(ref)) GTEST_SKIP() << "shared data not found";
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 1 --threads 2 --allow-root " + q(root.string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  const fs::path bed = root / "ploidy.bed";
  write_file(bed, "q\t6000\t12356\t2\n");
  json body = json::parse(germline_body());
  body["parameters"]["ploidy"] = 1;
  body["parameters"]["ploidy_bed"] = bed.string();
  body["parameters"]["sex"] = "female";  // no X or Y here: no effect
  HttpResult sub = d.post("/v1/runs", body.dump());
  ASSERT_EQ(sub.status, 201) << sub.body;
  json run = d.wait_run(sub.j().at("id").get<std::string>());
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << log_of(d);
  const fs::path vcf = tmp.path / "ploidy.vcf.gz";
  ASSERT_EQ(
      d.request("GET", "/v1/runs/" + run["id"].get<std::string>() + "/outputs/vcf", "", {}, vcf.string())
          .status,
      200);
  std::string records;
  ASSERT_EQ(run_command("bcftools query -f '%POS [%GT]\\n' " + vcf.string(), &records), 0) << records;
  std::istringstream in(records);
  int diploid = 0;
  for (std::string line; std::getline(in, line);) {
    const long pos = std::stol(line);
    const bool has_separator = line.find('/') != std::string::npos;
    EXPECT_EQ(has_separator, pos > 6000) << line;
    diploid += has_separator;
  }
  EXPECT_GE(diploid, 5) << records;

  write_file(bed, "q\t0\t100\thaploid\n");
  body["parameters"].erase("sex");
  HttpResult bad = d.post("/v1/runs", body.dump());
  ASSERT_EQ(bad.status, 201) << bad.body;
  json failed = d.wait_run(bad.j().at("id").get<std::string>());
  ASSERT_EQ(failed.value("state", ""), "FAILED") << failed.dump(2);
  EXPECT_NE(failed["failure_reason"].get<std::string>().find("line 1: ploidy 'haploid' is not an integer"),
            std::string::npos)
      << failed["failure_reason"];
  EXPECT_EQ(d.kill_now(SIGTERM), 0) << log_of(d);
}

// A germline run on an unaligned BAM (the Ebola sample, 12 read groups) keeps its read groups in the
// BAM output and calls it haploid with `ploidy: 1`.
TEST_F(ServeFixture, GermlineRunOnAnUnalignedBamKeepsItsReadGroups) {
  const fs::path ebov = shared_data_dir() / "ebov-g5012";
  if (!fs::exists(ebov / "G5012.3.testreads.bam")) GTEST_SKIP() << "shared data not found at " << ebov;
  for (const char* f : {"ebov-makona.fasta", "G5012.3.testreads.bam"}) fs::copy_file(ebov / f, root / f);
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 1 --threads 2 --allow-root " + q(root.string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  const json body = {{"workflow", "germline"},
                     {"sample", "G5012.3"},
                     {"inputs",
                      {{"reference", (root / "ebov-makona.fasta").string()},
                       {"reads", (root / "G5012.3.testreads.bam").string()}}},
                     {"parameters", {{"threads", 2}, {"ploidy", 1}}}};
  HttpResult sub = d.post("/v1/runs", body.dump());
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string id = sub.j().at("id").get<std::string>();
  json run = d.wait_run(id);
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << log_of(d);
  const fs::path bam = tmp.path / "ebov.bam", vcf = tmp.path / "ebov.vcf.gz";
  ASSERT_EQ(d.request("GET", "/v1/runs/" + id + "/outputs/bam", "", {}, bam.string()).status, 200);
  ASSERT_EQ(d.request("GET", "/v1/runs/" + id + "/outputs/vcf", "", {}, vcf.string()).status, 200);
  std::string in_rg, out_rg, gts;
  ASSERT_EQ(
      run_command("samtools view -H " + (root / "G5012.3.testreads.bam").string() + " | grep '^@RG'", &in_rg),
      0);
  ASSERT_EQ(run_command("samtools view -H " + bam.string() + " | grep '^@RG'", &out_rg), 0);
  EXPECT_EQ(out_rg, in_rg);
  ASSERT_EQ(run_command("bcftools query -f '[%GT]\\n' " + vcf.string() + " | sort | uniq -c", &gts), 0);
  EXPECT_EQ(gts, "     15 1\n") << "15 haploid alt calls (13 SNPs, 2 indels)";
  EXPECT_EQ(d.kill_now(SIGTERM), 0) << log_of(d);
}

TEST_F(ServeFixture, TokensAndScopes) {
  write_file(tmp.path / "tokens", "# test tokens\ntok-client client\ntok-worker worker\ntok-admin admin\n");
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()) + " --token-file " +
                          q((tmp.path / "tokens").string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  EXPECT_EQ(d.get("/v1/runs").status, 401);
  d.token = "wrong";
  HttpResult r = d.post("/v1/runs", germline_body());
  EXPECT_EQ(r.status, 401) << r.body;
  d.token = "tok-worker";
  EXPECT_EQ(d.post("/v1/runs", germline_body()).status, 403);
  d.token = "tok-client";
  EXPECT_EQ(d.post("/v1/tasks/lease", json{{"worker_id", "w"}}.dump()).status, 403);
  HttpResult ok = d.post("/v1/runs", germline_body());
  ASSERT_EQ(ok.status, 201) << ok.body;
  d.token = "tok-worker";
  HttpResult lease = d.post("/v1/tasks/lease", json{{"worker_id", "w1"}, {"lease_seconds", 30}}.dump());
  ASSERT_EQ(lease.status, 200) << lease.body;
  json task = lease.j()["task"];
  EXPECT_EQ(task["kind"], "align");
  EXPECT_TRUE(task["inputs"].contains("reads"));
  // Task ids hold a '/': percent-encode it.
  std::string tid = task["id"].get<std::string>();
  tid.replace(tid.find('/'), 1, "%2F");
  EXPECT_EQ(d.post("/v1/tasks/" + tid + "/heartbeat", json{{"lease_token", "stale"}}.dump()).status, 409);
  EXPECT_EQ(
      d.post("/v1/tasks/" + tid + "/heartbeat", json{{"lease_token", task["lease_token"]}}.dump()).status,
      200);
  HttpResult fail =
      d.post("/v1/tasks/" + tid + "/fail",
             json{{"lease_token", task["lease_token"]}, {"error", "boom"}, {"retryable", false}}.dump());
  EXPECT_EQ(fail.status, 200) << fail.body;
  d.token = "tok-admin";
  json run = d.get("/v1/runs/" + ok.j()["id"].get<std::string>()).j();
  EXPECT_EQ(run["state"], "FAILED") << run.dump(2);
  d.token = "";
  EXPECT_EQ(d.get("/healthz").status, 200);
}

TEST_P(ServeStoreTest, KillDashNineUnderConcurrentSubmissionsLosesNoAcknowledgedRun) {
  Daemon d;
  const std::string args = data_args() + " --workers 0 --allow-root " + q(root.string());
  ASSERT_TRUE(d.start(args, tmp.path / "serve.log")) << log_of(d);
  const fs::path body = tmp.path / "body.json";
  write_file(body, germline_body());
  const fs::path out = tmp.path / "curl";
  fs::create_directories(out);
  // 10 concurrent submissions, then kill -9 while they are in flight.
  std::string script =
      "for i in $(seq 1 30); do curl -s -m 10 -o " + q(out.string()) + "/body$i -w '%{http_code}' -X POST " +
      "-H 'Content-Type: application/json' -H \"Idempotency-Key: crash-$i\" --data-binary @" +
      q(body.string()) + " " + d.url() + "/v1/runs > " + q(out.string()) + "/code$i & done; " +
      "sleep 0.15; kill -9 " + std::to_string(d.pid) + "; wait";
  std::string log;
  run_command("bash -c " + q(script), &log);
  d.kill_now(SIGKILL);
  std::vector<std::pair<int, std::string>> acked;  // (i, run id)
  int failed = 0;
  for (int i = 1; i <= 30; ++i) {
    const std::string code = read_file(out / ("code" + std::to_string(i)));
    if (code == "201" || code == "200") {
      json j = json::parse(read_file(out / ("body" + std::to_string(i))), nullptr, false);
      ASSERT_TRUE(j.contains("id")) << j.dump();
      acked.emplace_back(i, j["id"].get<std::string>());
    } else {
      ++failed;
    }
  }
  std::printf("%zu submissions acknowledged before kill -9, %d not\n", acked.size(), failed);

  Daemon d2;
  ASSERT_TRUE(d2.start(args, tmp.path / "serve2.log")) << read_file(tmp.path / "serve2.log");
  for (const auto& [i, id] : acked) {
    HttpResult r = d2.get("/v1/runs/" + id);
    EXPECT_EQ(r.status, 200) << "acknowledged run " << id << " lost: " << r.body;
    // The same key again answers with the same run.
    HttpResult again = d2.post("/v1/runs", germline_body(), {"Idempotency-Key: crash-" + std::to_string(i)});
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.j().value("id", ""), id);
  }
  EXPECT_EQ(d2.get("/healthz").status, 200);
}

// Two daemons on different ports sharing one PostgreSQL database (as behind a load balancer, each
// with its own data dir): a run submitted to either is visible from both, an Idempotency-Key holds
// across them, and concurrent leases through both never hand out one task twice.
TEST_F(ServeFixture, TwoDaemonsShareOnePostgresDatabase) {
  PostgresDatabase pg;
  if (pg.url.empty()) GTEST_SKIP() << kPostgresSkipMessage;
  auto args = [&](const std::string& name) {
    return "--db " + q(pg.url) + " --data-dir " + q((tmp.path / ("data-" + name)).string()) +
           " --workers 0 --allow-root " + q(root.string());
  };
  Daemon a, b;
  ASSERT_TRUE(a.start(args("a"), tmp.path / "a.log")) << read_file(tmp.path / "a.log");
  ASSERT_TRUE(b.start(args("b"), tmp.path / "b.log")) << read_file(tmp.path / "b.log");
  const Daemon* both[2] = {&a, &b};

  // 8 runs, half through each daemon; every one is visible from both.
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    HttpResult r = both[i % 2]->post("/v1/runs", germline_body("S" + std::to_string(i)));
    ASSERT_EQ(r.status, 201) << r.body;
    ids.push_back(r.j().at("id").get<std::string>());
  }
  for (const std::string& id : ids)
    for (const Daemon* d : both) {
      HttpResult r = d->get("/v1/runs/" + id);
      ASSERT_EQ(r.status, 200) << id << " from " << d->url() << ": " << r.body;
      EXPECT_EQ(r.j().value("state", ""), "QUEUED");
    }
  for (const Daemon* d : both) {
    json list = d->get("/v1/runs?page_size=100").j();
    std::vector<std::string> listed;
    for (const auto& r : list["runs"]) listed.push_back(r.value("id", ""));
    EXPECT_EQ(listed, ids) << d->url();  // creation order, whichever daemon created it
  }
  // The same Idempotency-Key through the other daemon answers with the same run.
  HttpResult k1 = a.post("/v1/runs", germline_body("K"), {"Idempotency-Key: two-daemons-1"});
  ASSERT_EQ(k1.status, 201) << k1.body;
  HttpResult k2 = b.post("/v1/runs", germline_body("K"), {"Idempotency-Key: two-daemons-1"});
  EXPECT_EQ(k2.status, 200) << k2.body;
  EXPECT_EQ(k2.j().value("id", ""), k1.j().value("id", ""));
  ids.push_back(k1.j().at("id").get<std::string>());

  // 24 lease requests at once, 12 to each daemon, for the 9 leasable align tasks.
  const fs::path out = tmp.path / "leases";
  fs::create_directories(out);
  std::string script;
  for (int i = 0; i < 12; ++i)
    for (int d = 0; d < 2; ++d) {
      const std::string tag = std::to_string(d) + "-" + std::to_string(i);
      script += "curl -s -m 20 -o " + q((out / ("body" + tag)).string()) + " -w '%{http_code}' -X POST " +
                "-H 'Content-Type: application/json' --data-binary " +
                q(json{{"worker_id", "w" + tag}, {"lease_seconds", 600}}.dump()) + " " + both[d]->url() +
                "/v1/tasks/lease > " + q((out / ("code" + tag)).string()) + " & ";
    }
  script += "wait";
  run_command("bash -c " + q(script));
  std::vector<json> leased;
  for (int i = 0; i < 12; ++i)
    for (int d = 0; d < 2; ++d) {
      const std::string tag = std::to_string(d) + "-" + std::to_string(i);
      const std::string code = read_file(out / ("code" + tag));
      if (code == "200") {
        leased.push_back(json::parse(read_file(out / ("body" + tag)), nullptr, false)["task"]);
      } else {
        EXPECT_EQ(code, "204") << read_file(out / ("body" + tag));
      }
    }
  // A lease request that found every remaining task locked by a concurrent one may have answered
  // 204: lease the rest one at a time, alternating daemons, until both have nothing.
  for (int i = 0, empty = 0; empty < 4 && i < 40; ++i) {
    HttpResult r =
        both[i % 2]->post("/v1/tasks/lease", json{{"worker_id", "seq"}, {"lease_seconds", 600}}.dump());
    if (r.status == 204) {
      ++empty;
      continue;
    }
    ASSERT_EQ(r.status, 200) << r.body;
    empty = 0;
    leased.push_back(r.j()["task"]);
  }
  std::set<std::string> tasks, runs;
  for (const json& t : leased) {
    tasks.insert(t.value("id", ""));
    runs.insert(t.value("run_id", ""));
    EXPECT_EQ(t.value("kind", ""), "align") << t.dump();
  }
  EXPECT_EQ(tasks.size(), leased.size()) << "a task was leased twice";
  EXPECT_EQ(leased.size(), ids.size());
  EXPECT_EQ(runs, std::set<std::string>(ids.begin(), ids.end()));

  // A lease taken through one daemon is the current lease for the other: heartbeat and fail it there.
  ASSERT_FALSE(leased.empty());
  const json& t = leased[0];
  std::string tid = t.value("id", "");
  tid.replace(tid.find('/'), 1, "%2F");
  EXPECT_EQ(b.post("/v1/tasks/" + tid + "/heartbeat", json{{"lease_token", "stale"}}.dump()).status, 409);
  EXPECT_EQ(a.post("/v1/tasks/" + tid + "/heartbeat", json{{"lease_token", t["lease_token"]}}.dump()).status,
            200);
  EXPECT_EQ(b.post("/v1/tasks/" + tid + "/heartbeat", json{{"lease_token", t["lease_token"]}}.dump()).status,
            200);
  HttpResult f =
      b.post("/v1/tasks/" + tid + "/fail",
             json{{"lease_token", t["lease_token"]}, {"error", "boom"}, {"retryable", false}}.dump());
  EXPECT_EQ(f.status, 200) << f.body;
  const std::string failed_run = t.value("run_id", "");
  for (const Daemon* d : both) EXPECT_EQ(d->get("/v1/runs/" + failed_run).j().value("state", ""), "FAILED");
  EXPECT_EQ(a.get("/healthz").status, 200);
  EXPECT_EQ(b.get("/healthz").status, 200);
}

INSTANTIATE_TEST_SUITE_P(Stores, ServeStoreTest, ::testing::Values("sqlite", "postgres"), store_param_name);

}  // namespace
}  // namespace omicsd::test
