// Integration tests of failure recovery in `omicsd serve` with real processes over loopback:
// a Batch worker killed with SIGKILL mid-task (its lease expires, another worker finishes the run,
// nothing lost or duplicated), resume after a failed task (only that task and its dependants run
// again), and webhooks (signed, retried with backoff, durable across a daemon kill -9).
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <vector>

#include "service/http/http_server.hpp"
#include "service/util/sha256.hpp"
#include "tests/support/serve_harness.hpp"
#include "tests/support/test_support.hpp"
#include "tests/support/webhook_receiver.hpp"

namespace omicsd::test {
namespace {

std::string encode_task_id(std::string id) {
  const auto slash = id.find('/');
  if (slash != std::string::npos) id.replace(slash, 1, "%2F");
  return id;
}

// The first task of the run that is RUNNING, or an empty object.
json running_task(const json& run) {
  if (run.contains("tasks"))
    for (const auto& t : run["tasks"])
      if (t.value("state", "") == "RUNNING") return t;
  return json::object();
}

json task_named(const json& run, const std::string& name) {
  for (const auto& t : run.at("tasks"))
    if (t.value("name", "") == name) return t;
  return json::object();
}

// kCopies x the shared tiny BAM's 3,333 reads as single-end FASTQ records with distinct names, so
// that an align task runs for seconds (long enough to kill its worker in the middle).
constexpr int kCopies = 12;
fs::path make_large_fastq(const fs::path& bam, const fs::path& dir) {
  const fs::path one = dir / "one.fq", many = dir / "many.fq";
  std::string out;
  // All reads (both mates) as single-end records, /1 /2 appended to the names.
  // (In braces: run_command sends stderr to its capture, and samtools' notes must not reach the file.)
  EXPECT_EQ(run_command("{ samtools fastq " + q(bam.string()) + " > " + q(one.string()) + "; }", &out), 0)
      << out;
  std::ifstream in(one);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::ofstream o(many);
  for (int copy = 0; copy < kCopies; ++copy)
    for (size_t i = 0; i + 3 < lines.size(); i += 4)
      o << lines[i] << "_c" << copy << "\n" << lines[i + 1] << "\n+\n" << lines[i + 3] << "\n";
  return many;
}

TEST_P(ServeStoreTest, WorkerKilledMidTaskLeaseExpiresAndAnotherWorkerFinishes) {
  const fs::path reads = make_large_fastq(bam, root);
  Daemon d;
  // Short leases so the dead worker's lease expires quickly; no in-process workers.
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --lease-seconds 3 --allow-root " + q(root.string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  const std::string worker_cmd = omicsd_binary() + " worker --server " + d.url() + " --data-dir " +
                                 q(data.string()) + " --lease-seconds 3";

  Process a;
  a.start(worker_cmd + " --worker-id worker-a --threads 1", tmp.path / "worker-a.log");
  const json body = {{"workflow", "align"},
                     {"sample", "NA12878"},
                     {"inputs", {{"reference", ref.string()}, {"reads", json::array({reads.string()})}}}};
  HttpResult sub = d.post("/v1/runs", body.dump(), {"Idempotency-Key: kill-a-worker"});
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string id = sub.j().at("id").get<std::string>();

  // Wait for worker A to hold the align lease, then kill it without warning.
  json held;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline && held.empty()) {
    json t = running_task(d.get("/v1/runs/" + id).j());
    if (!t.empty() && t.value("worker_id", "") == "worker-a") held = t;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(held.empty()) << "worker A never leased a task\n" << read_file(a.log);
  ASSERT_EQ(held["name"], "align") << held.dump();
  EXPECT_EQ(a.signal_and_wait(SIGKILL), 128 + SIGKILL);
  // The task is still RUNNING under the dead worker's lease (the kill came mid-task).
  json after_kill = task_named(d.get("/v1/runs/" + id).j(), "align");
  ASSERT_EQ(after_kill["state"], "RUNNING") << "align finished before the kill: make the input larger\n"
                                            << after_kill.dump(2);
  EXPECT_EQ(after_kill["attempts"], 1);

  Process b;
  b.start(worker_cmd + " --worker-id worker-b --threads 2", tmp.path / "worker-b.log");
  json run = d.wait_run(id, 300);
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << "\n"
                                                << log_of(d) << "\n"
                                                << read_file(b.log);
  const json align = task_named(run, "align");
  EXPECT_EQ(align["attempts"], 2) << align.dump(2);
  EXPECT_EQ(align["worker_id"], "worker-b");
  EXPECT_NE(align["last_error"].get<std::string>().find("expired"), std::string::npos) << align.dump(2);
  EXPECT_EQ(run["provenance"]["tasks"]["align"]["worker_id"], "worker-b") << run["provenance"].dump(2);

  // Nothing lost or duplicated: one run, one lease expiry, and a valid BAM with every read once.
  json all = d.get("/v1/runs?page_size=100").j();
  EXPECT_EQ(all["runs"].size(), 1u) << all.dump(2);
  const std::string metrics = d.get("/metrics").body;
  EXPECT_NE(metrics.find("omicsd_lease_expiries_total 1"), std::string::npos) << metrics;
  const fs::path out_bam = tmp.path / "out.bam";
  ASSERT_EQ(d.request("GET", "/v1/runs/" + id + "/outputs/bam", "", {}, out_bam.string()).status, 200);
  std::string n;
  ASSERT_EQ(run_command("samtools quickcheck " + q(out_bam.string()) + " && samtools view -c -F 0x900 " +
                            q(out_bam.string()),
                        &n),
            0)
      << n;
  std::string n_in;
  ASSERT_EQ(run_command("samtools view -c -F 0x900 " + q(bam.string()), &n_in), 0);  // primary records
  EXPECT_EQ(std::stol(n), kCopies * std::stol(n_in)) << "reads in the BAM";

  // A report under a lease that is not the task's current one is refused; the run stays as it is.
  std::string tid = encode_task_id(held["id"].get<std::string>());
  EXPECT_EQ(d.post("/v1/tasks/" + tid + "/complete", json{{"lease_token", "worker-a-stale"}}.dump()).status,
            409);
  EXPECT_EQ(b.signal_and_wait(SIGTERM), 0) << read_file(b.log);
}

TEST_P(ServeStoreTest, ResumeRerunsOnlyTheFailedTask) {
  std::string fai = read_file(root / "q.fa.fai");
  const std::string contig = fai.substr(0, fai.find('\t'));
  const std::string length =
      fai.substr(fai.find('\t') + 1, fai.find('\t', fai.find('\t') + 1) - fai.find('\t') - 1);
  const fs::path bed = root / "regions.bed";
  write_file(bed, "chrNoSuchContig\t0\t100\n");  // the call task fails on it (not retryable)
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 1 --threads 2 --allow-root " + q(root.string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  json body = json::parse(germline_body());
  body["parameters"]["regions"] = bed.string();
  HttpResult sub = d.post("/v1/runs", body.dump());
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string id = sub.j().at("id").get<std::string>();
  json failed = d.wait_run(id);
  ASSERT_EQ(failed.value("state", ""), "FAILED") << failed.dump(2);
  EXPECT_NE(failed["failure_reason"].get<std::string>().find("chrNoSuchContig"), std::string::npos)
      << failed["failure_reason"];
  const json align1 = task_named(failed, "align");
  ASSERT_EQ(align1["state"], "COMPLETE");
  EXPECT_EQ(task_named(failed, "call")["state"], "FAILED");
  EXPECT_EQ(task_named(failed, "qc")["state"], "CANCELED");
  EXPECT_EQ(task_named(failed, "call")["attempts"], 1) << "an input error is not retried";
  const json align_prov1 = failed["provenance"]["tasks"]["align"];

  // Fix the input and resume: align is kept as it was, call and qc run.
  write_file(bed, contig + "\t0\t" + length + "\n");
  HttpResult res = d.post("/v1/runs/" + id + "/resume", "");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.j()["state"], "QUEUED");
  json run = d.wait_run(id);
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << log_of(d);
  const json align2 = task_named(run, "align");
  EXPECT_EQ(align2["attempts"], 1);
  EXPECT_EQ(align2["finished_at"], align1["finished_at"]) << "align ran again";
  EXPECT_EQ(align2["started_at"], align1["started_at"]) << "align ran again";
  EXPECT_EQ(run["provenance"]["tasks"]["align"], align_prov1) << "align ran again";
  EXPECT_EQ(task_named(run, "call")["state"], "COMPLETE");
  EXPECT_EQ(task_named(run, "call")["attempts"], 1);
  EXPECT_EQ(task_named(run, "qc")["state"], "COMPLETE");
  EXPECT_EQ(run["outputs"]["bam"], failed["outputs"]["bam"]);
  const fs::path vcf = tmp.path / "resumed.vcf.gz";
  ASSERT_EQ(d.request("GET", "/v1/runs/" + id + "/outputs/vcf", "", {}, vcf.string()).status, 200);
  const std::set<std::string> got = vcf_snvs(vcf);
  for (const auto& snv : vcf_snvs(tiny() / "truth.vcf.gz")) EXPECT_TRUE(got.count(snv)) << "missing " << snv;
  // A COMPLETE run does not resume.
  EXPECT_EQ(d.post("/v1/runs/" + id + "/resume", "").status, 409);
}

using Receiver = WebhookReceiver;  // tests/support/webhook_receiver.hpp

TEST_P(ServeStoreTest, WebhooksAreSignedRetriedAndSurviveADaemonKill) {
  const std::string secret = "s3cret-for-tests";
  write_file(tmp.path / "webhook.key", secret + "\n");
  Receiver rx;
  rx.fail_first = 2;
  rx.start();
  const std::string args = data_args() + " --workers 1 --threads 2 --allow-root " + q(root.string()) +
                           " --webhook-secret-file " + q((tmp.path / "webhook.key").string()) +
                           " --webhook-backoff-ms 200 --webhook-max-attempts 5 --callback-allow 127.0.0.1/32";
  Daemon d;
  ASSERT_TRUE(d.start(args, tmp.path / "serve.log")) << log_of(d);
  json body = json::parse(germline_body());
  body["callback_url"] = rx.url();
  HttpResult sub = d.post("/v1/runs", body.dump());
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string id = sub.j().at("id").get<std::string>();
  ASSERT_EQ(d.wait_run(id).value("state", ""), "COMPLETE");

  // Two failures, then delivered: three POSTs of the same event, each signed.
  ASSERT_TRUE(rx.wait_for(3)) << rx.count() << " deliveries\n" << log_of(d);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // no fourth one comes
  ASSERT_EQ(rx.count(), 3u);
  std::vector<Receiver::Hit> hits;
  {
    std::lock_guard lk(rx.mu);
    hits = rx.hits;
  }
  std::set<std::string> delivery_ids;
  for (size_t i = 0; i < hits.size(); ++i) {
    const auto& h = hits[i];
    delivery_ids.insert(h.headers.at("x-omicsd-delivery"));
    EXPECT_EQ(h.headers.at("x-omicsd-event"), "run.completed");
    EXPECT_EQ(h.headers.at("x-omicsd-attempt"), std::to_string(i + 1));
    const std::string ts = h.headers.at("x-omicsd-timestamp");
    EXPECT_EQ(h.headers.at("x-omicsd-signature"), "sha256=" + hmac_sha256_hex(secret, ts + "." + h.body));
    EXPECT_NE(h.headers.at("x-omicsd-signature"), "sha256=" + hmac_sha256_hex("other", ts + "." + h.body));
    const json ev = json::parse(h.body);
    EXPECT_EQ(ev["type"], "run.completed");
    EXPECT_EQ(ev["run_id"], id);
    EXPECT_EQ(ev["run"]["state"], "COMPLETE");
    EXPECT_TRUE(ev["run"]["outputs"].contains("vcf")) << ev.dump(2);
  }
  EXPECT_EQ(delivery_ids.size(), 1u);
  json run = d.get("/v1/runs/" + id).j();
  ASSERT_EQ(run["callbacks"].size(), 1u) << run.dump(2);
  EXPECT_EQ(run["callbacks"][0]["status"], "DELIVERED");
  EXPECT_EQ(run["callbacks"][0]["attempts"], 3);
  EXPECT_NE(d.get("/metrics").body.find("omicsd_webhook_deliveries_total{outcome=\"retry\"} 2"),
            std::string::npos);

  // A canceled run's event is written, the receiver is down when the daemon is killed -9, and the
  // event is delivered after the restart.
  rx.fail_first = 1000;
  body["sample"] = "NA12878-b";  // another sample: not a cache hit, so it is still queued
  HttpResult sub2 = d.post("/v1/runs", body.dump());
  ASSERT_EQ(sub2.status, 201) << sub2.body;
  const std::string id2 = sub2.j().at("id").get<std::string>();
  ASSERT_EQ(d.post("/v1/runs/" + id2 + "/cancel", "").status, 200);
  ASSERT_TRUE(rx.wait_for(4)) << log_of(d);
  // Kill once the failed attempt is recorded (an attempt cut off in flight would wait out its claim).
  for (auto until = Clock::now() + std::chrono::seconds(30); Clock::now() < until;) {
    json r = d.get("/v1/runs/" + id2).j();
    if (r["callbacks"].size() == 1 && r["callbacks"][0]["attempts"].get<int>() >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  d.kill_now(SIGKILL);
  const size_t before = rx.count();
  rx.fail_first = 0;
  Daemon d2;
  ASSERT_TRUE(d2.start(args, tmp.path / "serve2.log")) << read_file(tmp.path / "serve2.log");
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  json run2;
  while (Clock::now() < deadline) {
    run2 = d2.get("/v1/runs/" + id2).j();
    if (run2["callbacks"].size() == 1 && run2["callbacks"][0]["status"] == "DELIVERED") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(run2["callbacks"][0]["status"], "DELIVERED") << run2.dump(2);
  EXPECT_GT(rx.count(), before);
  {
    std::lock_guard lk(rx.mu);
    const json ev = json::parse(rx.hits.back().body);
    EXPECT_EQ(ev["type"], "run.canceled");
    EXPECT_EQ(ev["run_id"], id2);
  }
  // The first run's event is not sent again.
  EXPECT_EQ(d2.get("/v1/runs/" + id).j()["callbacks"][0]["attempts"], 3);

  // Bad callback URLs are refused at submission.
  body["callback_url"] = "ftp://example.org/x";
  EXPECT_EQ(d2.post("/v1/runs", body.dump()).status, 400);
}

TEST_F(ServeFixture, WebhookGivesUpAfterMaxAttempts) {
  Daemon d;
  const uint16_t dead_port = free_port();  // nothing listens there
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()) +
                          " --webhook-backoff-ms 100 --webhook-max-attempts 2 --callback-allow 127.0.0.0/8",
                      tmp.path / "serve.log"))
      << log_of(d);
  json body = json::parse(germline_body());
  body["callback_url"] = "http://127.0.0.1:" + std::to_string(dead_port) + "/hook";
  HttpResult sub = d.post("/v1/runs", body.dump());
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string id = sub.j().at("id").get<std::string>();
  ASSERT_EQ(d.post("/v1/runs/" + id + "/cancel", "").status, 200);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  json run;
  while (Clock::now() < deadline) {
    run = d.get("/v1/runs/" + id).j();
    if (run["callbacks"].size() == 1 && run["callbacks"][0]["status"] == "FAILED") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(run["callbacks"][0]["status"], "FAILED") << run.dump(2);
  EXPECT_EQ(run["callbacks"][0]["attempts"], 2);
  EXPECT_FALSE(run["callbacks"][0]["last_error"].get<std::string>().empty());
  EXPECT_NE(log_of(d).find("unsigned"), std::string::npos)
      << "no secret: the daemon says events are unsigned";
  EXPECT_EQ(d.get("/healthz").status, 200);
}

TEST_F(ServeFixture, HeartbeatTelemetryBecomesGpuGauges) {
  Daemon d;
  ASSERT_TRUE(d.start(data_args() + " --workers 0 --allow-root " + q(root.string()), tmp.path / "serve.log"))
      << log_of(d);
  ASSERT_EQ(d.post("/v1/runs", germline_body()).status, 201);
  HttpResult lease = d.post("/v1/tasks/lease", json{{"worker_id", "gpu-worker-1"}}.dump());
  ASSERT_EQ(lease.status, 200) << lease.body;
  const json task = lease.j()["task"];
  const json telemetry = {{"gpus", json::array({{{"index", 0},
                                                 {"name", "NVIDIA H100"},
                                                 {"utilization", 0.87},
                                                 {"memory_used_bytes", 1.5e10},
                                                 {"memory_total_bytes", 8.0e10}}})}};
  HttpResult hb = d.post("/v1/tasks/" + encode_task_id(task["id"]) + "/heartbeat",
                         json{{"lease_token", task["lease_token"]}, {"telemetry", telemetry}}.dump());
  ASSERT_EQ(hb.status, 200) << hb.body;
  const std::string m = d.get("/metrics").body;
  EXPECT_NE(
      m.find(
          "omicsd_worker_gpu_utilization_ratio{gpu=\"0\",name=\"NVIDIA H100\",worker=\"gpu-worker-1\"} 0.87"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("omicsd_worker_gpu_memory_total_bytes{gpu=\"0\""), std::string::npos) << m;
  EXPECT_NE(m.find("omicsd_worker_last_heartbeat_seconds{worker=\"gpu-worker-1\"}"), std::string::npos) << m;
  // Malformed telemetry is ignored, the heartbeat still counts.
  EXPECT_EQ(d.post("/v1/tasks/" + encode_task_id(task["id"]) + "/heartbeat",
                   json{{"lease_token", task["lease_token"]}, {"telemetry", "junk"}}.dump())
                .status,
            200);
}

INSTANTIATE_TEST_SUITE_P(Stores, ServeStoreTest, ::testing::Values("sqlite", "postgres"), store_param_name);

}  // namespace
}  // namespace omicsd::test
