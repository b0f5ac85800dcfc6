// `omicsd worker --transfer s3` against a real `omicsd serve` and a real S3-compatible server (moto,
// scripts/s3-test-server.sh), with nothing shared between the daemon and the two workers but the
// job protocol and the bucket: a germline run whose inputs are s3:// URIs and whose outputs land in
// the fleet's S3 object store (align on one worker, call and qc on the other, which finds the BAM's
// index and the reference's minimizer index through the store's metadata documents); s3:// inputs
// outside --allow-s3 or missing are refused with a 400; a worker SIGKILLed in the middle of a
// multipart upload of its output leaves no visible object, and the retried task completes.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "service/objects/object_backend.hpp"
#include "service/util/sha256.hpp"
#include "tests/support/s3_test_server.hpp"
#include "tests/support/serve_harness.hpp"
#include "tests/support/stalling_proxy.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kInputs = "s3://omicsd-inputs/cohort/";
constexpr const char* kFleet = "s3://omicsd-fleet/runs";

struct S3WorkerTest : ServeFixture {
  std::shared_ptr<S3Client> s3;
  void SetUp() override {
    ServeFixture::SetUp();
    if (IsSkipped()) return;
    use_s3_test_server();  // the environment the daemon and workers inherit
    s3 = std::make_shared<S3Client>(S3Config::from_environment());
    for (const char* b : {"omicsd-inputs", "omicsd-fleet", "omicsd-elsewhere"}) s3->create_bucket(b);
    for (const fs::path& f : {ref, fs::path(ref.string() + ".fai"), bam, fs::path(bam.string() + ".bai")})
      s3->put_file(parse_s3_url(kInputs + f.filename().string()), f, sha256_file_hex(f));
    s3->put_file(parse_s3_url("s3://omicsd-elsewhere/cohort/q.fa"), ref, sha256_file_hex(ref));
  }
  std::string daemon_args() const {
    return "--data-dir " + q(data.string()) + " --workers 0 --lease-seconds 10 --objects " + kFleet +
           " --allow-s3 " + std::string(kInputs).substr(0, std::string(kInputs).size() - 1);
  }
  std::string worker_cmd(const Daemon& d, const fs::path& dir, const std::string& extra) const {
    return omicsd_binary() + " worker --server " + d.url() + " --data-dir " + q(dir.string()) +
           " --transfer s3 --objects " + kFleet +
           " --lease-seconds 10 --threads 2 --unreachable-timeout 30 " + extra;
  }
  static std::string body(const std::string& reference, const std::string& reads) {
    return json{{"workflow", "germline"},
                {"sample", "NA12878"},
                {"inputs", {{"reference", reference}, {"reads", json::array({reads})}}},
                {"parameters", {{"threads", 2}}}}
        .dump();
  }
};

TEST_F(S3WorkerTest, GermlineRunWithInputsAndOutputsOnS3AndTwoWorkers) {
  Daemon d;
  ASSERT_TRUE(d.start(daemon_args(), tmp.path / "serve.log")) << log_of(d);
  HttpResult sub =
      d.post("/v1/runs", body(std::string(kInputs) + "q.fa", std::string(kInputs) + bam.filename().string()));
  ASSERT_EQ(sub.status, 201) << sub.body << "\n" << log_of(d);
  const std::string id = sub.j()["id"];

  // Worker 1 takes one task (align) and exits; worker 2, in another empty directory, does the rest.
  const fs::path dir1 = tmp.path / "worker1", dir2 = tmp.path / "worker2";
  Process w1;
  w1.start(worker_cmd(d, dir1, "--worker-id s3-w1 --once"), tmp.path / "worker1.log");
  EXPECT_EQ(w1.signal_and_wait(0, 300), 0) << read_file(w1.log);  // waits for its exit
  Process w2;
  w2.start(worker_cmd(d, dir2, "--worker-id s3-w2"), tmp.path / "worker2.log");
  json run = d.wait_run(id, 300);
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << "\n"
                                                << log_of(d) << "\n"
                                                << read_file(w1.log) << "\n"
                                                << read_file(w2.log);
  for (const auto& t : run["tasks"])
    EXPECT_EQ(t["worker_id"], t["name"] == "align" ? "s3-w1" : "s3-w2") << t.dump();

  // Every output is in the S3 object store, at its size; none went through the daemon's directory
  // (it holds only the VCF, fetched back for the variant store's ingest).
  S3ObjectBackend fleet(s3, parse_s3_url(kFleet));
  ObjectStore daemon_store(data);
  for (const char* o : {"bam", "bai", "vcf", "tbi", "qc"}) {
    ASSERT_TRUE(run["outputs"].contains(o)) << o;
    const std::string digest = run["outputs"][o]["digest"];
    EXPECT_EQ(fleet.size_of(digest), run["outputs"][o]["size"].get<uint64_t>()) << o;
    if (std::string(o) != "vcf") {
      EXPECT_FALSE(daemon_store.has(digest)) << o;
    }
  }
  for (const char* dir : {"cache", "scratch", "inputs"}) EXPECT_FALSE(fs::exists(data / dir)) << dir;
  // Worker 2 never ran align, so it read the BAM, its index and the reference's minimizer index
  // from the store (metadata documents written by worker 1).
  const std::string bam_digest = run["outputs"]["bam"]["digest"];
  EXPECT_TRUE(fleet.get_meta("meta/index-of/" + bam_digest.substr(7) + ".json"));
  EXPECT_TRUE(ObjectStore(dir2).has(bam_digest));
  EXPECT_TRUE(fs::exists(dir2 / "meta" / "index-of" / (bam_digest.substr(7) + ".json")));

  // The BAM, which the daemon never held, is read from S3 by a presigned URL the daemon redirects to.
  const HttpResult redirect = d.get("/v1/runs/" + id + "/outputs/bam");
  ASSERT_EQ(redirect.status, 307) << redirect.body;
  const std::string url = json::parse(redirect.body).at("url");
  const fs::path got_bam = tmp.path / "out.bam";
  std::string out;
  ASSERT_EQ(run_command("curl -sf -o " + q(got_bam.string()) + " " + q(url), &out), 0) << out;
  EXPECT_EQ("sha256:" + sha256_file_hex(got_bam), run["outputs"]["bam"]["digest"].get<std::string>());
  // The VCF (which the daemon fetched back for its variant store, so it serves it itself) has every
  // truth SNV.
  const fs::path vcf = tmp.path / "out.vcf.gz";
  ASSERT_EQ(d.request("GET", "/v1/runs/" + id + "/outputs/vcf", "", {}, vcf.string()).status, 200);
  EXPECT_EQ("sha256:" + sha256_file_hex(vcf), run["outputs"]["vcf"]["digest"].get<std::string>());
  const std::set<std::string> truth = vcf_snvs(tiny() / "truth.vcf.gz");
  EXPECT_EQ(truth.size(), 14u);
  const std::set<std::string> got = vcf_snvs(vcf);
  for (const auto& s : truth) EXPECT_TRUE(got.count(s)) << "missing truth SNV " << s;

  // Provenance names the s3:// URIs, not the workers' local copies.
  EXPECT_EQ(run["provenance"]["tasks"]["align"]["inputs"]["reference"]["uri"], std::string(kInputs) + "q.fa");
  EXPECT_EQ(w2.signal_and_wait(SIGTERM), 0) << read_file(w2.log);
}

TEST_F(S3WorkerTest, S3InputsOutsideTheAllowListOrMissingAreRefused) {
  Daemon d;
  ASSERT_TRUE(d.start(daemon_args(), tmp.path / "serve.log")) << log_of(d);
  const std::string reads = std::string(kInputs) + bam.filename().string();
  for (const std::string& reference :
       {std::string("s3://omicsd-elsewhere/cohort/q.fa"),    // another bucket
        std::string("s3://omicsd-inputs/cohort2/q.fa"),      // a prefix that only starts the same
        std::string("s3://omicsd-inputs/cohort/../x/q.fa"),  // a path segment that would climb out
        std::string(kInputs) + "missing.fa"}) {              // allowed but not there
    const HttpResult r = d.post("/v1/runs", body(reference, reads));
    EXPECT_EQ(r.status, 400) << reference << ": " << r.body;
    EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
  }
  EXPECT_EQ(d.get("/v1/runs").j()["runs"].size(), 0u);
  // The daemon keeps serving.
  EXPECT_EQ(d.get("/readyz").status, 200);
}

TEST_F(S3WorkerTest, ReadSetImportFromAnS3Uri) {
  Daemon d;
  ASSERT_TRUE(d.start(daemon_args(), tmp.path / "serve.log")) << log_of(d);
  const std::string source = std::string(kInputs) + bam.filename().string();
  const HttpResult created =
      d.post("/v1/readsets", json{{"sample_id", "NA12878"}, {"sources", json::array({source})}}.dump());
  ASSERT_EQ(created.status, 202) << created.body << "\n" << log_of(d);
  const std::string id = created.j()["id"];
  json rs;
  for (int i = 0; i < 600; ++i) {
    rs = d.get("/v1/readsets/" + id).j();
    if (rs.value("state", "") != "IMPORTING") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(rs.value("state", ""), "ACTIVE") << rs.dump(2) << "\n" << log_of(d);
  // The same reads as the file: samtools counts its primary records (a read set holds each read once).
  std::string count;
  ASSERT_EQ(run_command("samtools view -c -F 0x900 " + q(bam.string()), &count), 0) << count;
  EXPECT_EQ(rs.value("read_count", uint64_t(0)), std::stoull(count)) << rs.dump(2);
  // Outside the allow-list, or missing: 400, and nothing is registered.
  for (const std::string& bad :
       {std::string("s3://omicsd-elsewhere/cohort/q.fa"), std::string(kInputs) + "none.bam"}) {
    const HttpResult r = d.post("/v1/readsets", json{{"sample_id", "X"}, {"sources", bad}}.dump());
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
  }
}

// The keys under `prefix` of the objects in `bucket` (uploads: of its pending multipart uploads),
// listed with curl's SigV4, a client independent of ours (any key works against the test server).
std::vector<std::string> s3_list(const std::string& bucket, const std::string& prefix, bool uploads) {
  const std::string url =
      s3_test_endpoint() + "/" + bucket + (uploads ? "?uploads&prefix=" : "?list-type=2&prefix=") + prefix;
  std::string out;
  EXPECT_EQ(
      run_command("curl -sf --aws-sigv4 aws:amz:us-east-1:s3 -u omicsd-test-key:omicsd-test-secret " + q(url),
                  &out),
      0)
      << out;
  std::vector<std::string> keys;
  const std::regex key("<Key>([^<]*)</Key>");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), key); it != std::sregex_iterator(); ++it)
    keys.push_back((*it)[1]);
  return keys;
}

TEST_F(S3WorkerTest, WorkerKilledMidUploadLeavesNoVisibleObjectAndTheRetriedTaskCompletes) {
  // An align run whose BAM (~6 MB: 25,000 simulated pairs on E. coli) is above the killed worker's
  // --s3-part-size of 5 MiB, S3's smallest, so it goes up as a multipart upload.
  const fs::path sim = tmp.path / "sim";
  fs::create_directories(sim);
  std::string out;
  ASSERT_EQ(run_command("cd " + q(sim.string()) +
                            " && zcat /usr/share/doc/bowtie/examples/genomes/NC_008253.fna.gz > ecoli.fa"
                            " && samtools faidx ecoli.fa && dwgsim -z 22 -N 25000 -1 150 -2 150 -d 400 -s 50"
                            " -e 0.002 -E 0.002 -y 0 ecoli.fa r",
                        &out),
            0)
      << out;
  for (const char* f : {"ecoli.fa", "ecoli.fa.fai", "r.bwa.read1.fastq.gz", "r.bwa.read2.fastq.gz"})
    s3->put_file(parse_s3_url(std::string(kInputs) + "ecoli/" + f), sim / f, sha256_file_hex(sim / f));
  Daemon d;
  ASSERT_TRUE(d.start(daemon_args(), tmp.path / "serve.log")) << log_of(d);
  const std::string in = std::string(kInputs) + "ecoli/";
  const HttpResult sub = d.post(
      "/v1/runs", json{{"workflow", "align"},
                       {"sample", "ecoli"},
                       {"inputs",
                        {{"reference", in + "ecoli.fa"},
                         {"reads", json::array({in + "r.bwa.read1.fastq.gz", in + "r.bwa.read2.fastq.gz"})}}},
                       {"parameters", {{"threads", 2}}}}
                      .dump());
  ASSERT_EQ(sub.status, 201) << sub.body << "\n" << log_of(d);
  const std::string id = sub.j()["id"];

  // Worker 1 reaches S3 through a proxy that holds the first multipart part it sends: killed then,
  // it has begun an upload and cannot have completed it, whatever the speed of this machine.
  const std::string endpoint = s3_test_endpoint();
  StallingProxy proxy(uint16_t(std::stoi(endpoint.substr(endpoint.rfind(':') + 1))), "?partNumber=");
  const fs::path dir = tmp.path / "worker";
  Process w1;
  w1.start("env OMICSD_S3_ENDPOINT=" + proxy.url() + " " +
               worker_cmd(d, dir, "--worker-id s3-killed --once --s3-part-size 5242880"),
           tmp.path / "worker1.log");
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  while (!proxy.stalled() && w1.running() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(proxy.stalled()) << "the worker never sent a multipart part\n" << read_file(w1.log);
  const std::vector<std::string> pending = s3_list("omicsd-fleet", "runs/", true);
  ASSERT_EQ(pending.size(), 1u) << "no multipart upload in progress: nothing would be tested";
  EXPECT_EQ(w1.signal_and_wait(SIGKILL), 128 + SIGKILL);
  const std::string key = pending[0];  // runs/objects/sha256/<2 hex>/<62 hex>: the BAM's final key
  ASSERT_EQ(key.rfind("runs/objects/sha256/", 0), 0u) << key;

  // Nothing is visible under that key, and every object under the run's prefix is whole (its bytes
  // hash to its key): no partial object anywhere.
  EXPECT_FALSE(s3->head(S3Url{"omicsd-fleet", key})) << "a partial object is visible";
  const std::vector<std::string> visible = s3_list("omicsd-fleet", "runs/", false);
  for (const std::string& k : visible) {
    EXPECT_NE(k, key);
    if (k.rfind("runs/meta/", 0) == 0) continue;
    ASSERT_EQ(k.rfind("runs/objects/sha256/", 0), 0u) << k;
    const std::string hex = k.substr(20, 2) + k.substr(23);
    EXPECT_EQ(s3->get_to_file(S3Url{"omicsd-fleet", k}, tmp.path / "check").sha256, "sha256:" + hex) << k;
  }
  EXPECT_EQ(d.get("/v1/runs/" + id).j().value("state", ""), "RUNNING");

  // A fresh worker (the killed one's directory wiped, mounted at the same path, as in a new AWS
  // Batch container) gets the task once the lease expires, straight to S3 with the default part
  // size. The same path gives the same BAM bytes (its @SQ UR names the local reference), so the
  // same key: the retried upload completes it and aborts the dead worker's pending upload.
  fs::remove_all(dir);
  Process w2;
  w2.start(worker_cmd(d, dir, "--worker-id s3-retry"), tmp.path / "worker2.log");
  const json run = d.wait_run(id, 300);
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << "\n"
                                                << read_file(w1.log) << "\n"
                                                << read_file(w2.log);
  EXPECT_EQ(run["tasks"][0]["worker_id"], "s3-retry") << run.dump(2);
  EXPECT_EQ(run["tasks"][0]["attempts"], 2) << run.dump(2);
  const std::string digest = run["outputs"]["bam"]["digest"];
  EXPECT_EQ("runs/objects/sha256/" + digest.substr(7, 2) + "/" + digest.substr(9), key);
  EXPECT_TRUE(s3_list("omicsd-fleet", "runs/", true).empty()) << "a stale multipart upload is left";

  // The BAM in S3 is whole and right: its digest, every simulated read, all of them aligned.
  const fs::path got = tmp.path / "retried.bam";
  EXPECT_EQ(s3->get_to_file(S3Url{"omicsd-fleet", key}, got).sha256, digest);
  EXPECT_EQ(run_command("samtools quickcheck " + q(got.string())), 0);
  std::string total, mapped;
  ASSERT_EQ(run_command("samtools view -c -F 0x900 " + q(got.string()), &total), 0) << total;
  ASSERT_EQ(run_command("samtools view -c -F 0x904 " + q(got.string()), &mapped), 0) << mapped;
  EXPECT_EQ(std::stoull(total), 50000u);
  EXPECT_GE(std::stod(mapped), 0.99 * 50000);
  EXPECT_EQ(w2.signal_and_wait(SIGTERM), 0) << read_file(w2.log);
}

TEST(S3WorkerOptions, PartSizesS3WouldRefuseAreRefusedAtStart) {
  TempDir tmp;
  for (const char* size : {"5242879", "5368709121"}) {  // 5 MiB - 1, 5 GiB + 1
    std::string out;
    const int rc = run_command(omicsd_binary() + " worker --server http://127.0.0.1:9 --data-dir " +
                                   q(tmp.path.string()) +
                                   " --transfer s3 --objects s3://omicsd-fleet/x --s3-part-size " + size,
                               &out);
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find("--s3-part-size"), std::string::npos) << out;
  }
}

TEST(S3DaemonOptions, InProcessWorkersCannotServeS3) {
  TempDir tmp;
  std::string out;
  const int rc = run_command(omicsd_binary() + " serve --listen 127.0.0.1:" + std::to_string(free_port()) +
                                 " --data-dir " + q(tmp.path.string()) + " --allow-s3 s3://omicsd-inputs/x",
                             &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--workers 0"), std::string::npos) << out;
}

}  // namespace
}  // namespace omicsd::test
