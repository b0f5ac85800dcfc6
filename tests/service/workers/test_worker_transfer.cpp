// `omicsd worker --transfer http` against a real `omicsd serve` over loopback, with no storage
// shared between them: a germline run on the shared NA12878 data (inputs downloaded, outputs
// uploaded, cache keys identical to the shared-storage mode), a call run from an uploaded BAM, and
// the object / task-input endpoints themselves (digest checks, idempotency, scopes, limits, leases,
// no path escapes).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "service/objects/object_store.hpp"
#include "tests/support/serve_harness.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string enc(std::string id) {  // task ids are "<run>/<name>"
  for (auto p = id.find('/'); p != std::string::npos; p = id.find('/')) id.replace(p, 1, "%2F");
  return id;
}

void write_random(const fs::path& p, std::size_t size, unsigned seed) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = char(rng());
  write_file(p, s);
}

// One curl request with a binary body from a file (PUT) or none; the status code, the body in *body.
int curl(const Daemon& d, const std::string& method, const std::string& path, const std::string& token,
         const std::string& extra = "", const fs::path& upload = {}, std::string* body = nullptr,
         const fs::path& out = {}) {
  TempDir t;
  const fs::path resp = out.empty() ? t.path / "resp" : out;
  std::string cmd = "curl -s -m 60 -o " + q(resp.string()) + " -w '%{http_code}' -X " + method + " " + extra;
  if (!token.empty()) cmd += " -H " + q("Authorization: Bearer " + token);
  if (!upload.empty()) cmd += " --data-binary @" + q(upload.string());
  cmd += " " + q(d.url() + path);
  std::string code;
  run_command(cmd, &code);
  if (body) *body = fs::exists(resp) ? read_file(resp) : std::string();
  try {
    return std::stoi(code);
  } catch (...) {
    return 0;
  }
}

std::size_t entries(const fs::path& dir) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it) ++n;
  return n;
}

struct TransferFixture : ServeFixture {
  fs::path worker_dir;
  void SetUp() override {
    ServeFixture::SetUp();
    if (IsSkipped()) return;
    worker_dir = tmp.path / "worker";  // never shared with the daemon
  }
  std::string worker_cmd(const Daemon& d, const fs::path& dir, const std::string& extra = "") const {
    return omicsd_binary() + " worker --server " + d.url() + " --data-dir " + q(dir.string()) +
           " --lease-seconds 10 --threads 2 --unreachable-timeout 30 " + extra;
  }
};

TEST_F(TransferFixture, GermlineRunWithoutSharedStorage) {
  Daemon d;
  ASSERT_TRUE(d.start(
      "--data-dir " + q(data.string()) + " --workers 0 --lease-seconds 10 --allow-root " + q(root.string()),
      tmp.path / "serve.log"))
      << log_of(d);
  Process w;
  w.start(worker_cmd(d, worker_dir, "--transfer http --worker-id xfer-1"), tmp.path / "worker.log");

  HttpResult sub = d.post("/v1/runs", germline_body(), {"Idempotency-Key: xfer-1"});
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string id = sub.j()["id"];
  json run = d.wait_run(id, 300);
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << "\n"
                                                << log_of(d) << "\n"
                                                << read_file(w.log);
  for (const auto& t : run["tasks"]) EXPECT_EQ(t["worker_id"], "xfer-1") << t.dump();

  // The VCF, served by the daemon from what the worker uploaded, has every truth SNV.
  const fs::path vcf = tmp.path / "out.vcf.gz";
  ASSERT_EQ(d.request("GET", "/v1/runs/" + id + "/outputs/vcf", "", {}, vcf.string()).status, 200);
  const std::set<std::string> truth = vcf_snvs(tiny() / "truth.vcf.gz");
  EXPECT_EQ(truth.size(), 14u);
  const std::set<std::string> got = vcf_snvs(vcf);
  for (const auto& s : truth) EXPECT_TRUE(got.count(s)) << "missing truth SNV " << s;

  // Every output is in the daemon's object store, byte-exact in size.
  ObjectStore daemon_store(data);
  for (const char* o : {"bam", "bai", "vcf", "tbi", "qc"}) {
    ASSERT_TRUE(run["outputs"].contains(o)) << o;
    const std::string digest = run["outputs"][o]["digest"];
    ASSERT_TRUE(daemon_store.has(digest)) << o << " " << digest;
    EXPECT_EQ(fs::file_size(daemon_store.path_of(digest)), run["outputs"][o]["size"].get<uint64_t>()) << o;
  }
  // Nothing ran in the daemon's directory: no engine scratch, no worker cache, no staged inputs.
  for (const char* dir : {"cache", "scratch", "inputs", "meta"}) EXPECT_FALSE(fs::exists(data / dir)) << dir;
  // The worker's own directory holds the downloaded inputs (as objects, staged under inputs/ with
  // the reference's .fai fetched alongside) and the outputs it produced.
  ObjectStore local(worker_dir);
  const std::string ref_digest = ObjectStore::digest_file(ref), bam_digest = ObjectStore::digest_file(bam);
  EXPECT_TRUE(local.has(ref_digest));
  EXPECT_TRUE(local.has(bam_digest));
  EXPECT_EQ(read_file(worker_dir / "inputs" / ref_digest.substr(7) / "q.fa"), read_file(ref));
  EXPECT_EQ(read_file(worker_dir / "inputs" / ref_digest.substr(7) / "q.fa.fai"),
            read_file(root / "q.fa.fai"));
  EXPECT_TRUE(fs::exists(worker_dir / "inputs" / bam_digest.substr(7) / "NA12878.chr22.tiny.bam"));
  EXPECT_TRUE(local.has(run["outputs"]["vcf"]["digest"]));
  // Provenance names the daemon's URIs, not the worker's local copies.
  const json& align = run["provenance"]["tasks"]["align"];
  EXPECT_EQ(align["inputs"]["reference"]["uri"], ref.string()) << align.dump(2);
  EXPECT_EQ(align["inputs"]["reference"]["digest"], ref_digest);
  EXPECT_EQ(align["inputs"]["reads1"]["uri"], "file://" + bam.string()) << align.dump(2);

  // The same sample again: all cache hits in the worker's cache, inputs not downloaded again (the
  // daemon answers 304 to the worker's If-None-Match).
  HttpResult sub2 = d.post("/v1/runs", germline_body(), {"Idempotency-Key: xfer-2"});
  ASSERT_EQ(sub2.status, 201) << sub2.body;
  json run2 = d.wait_run(sub2.j()["id"], 300);
  ASSERT_EQ(run2.value("state", ""), "COMPLETE") << run2.dump(2) << "\n" << read_file(w.log);
  for (const auto& t : run2["tasks"]) EXPECT_TRUE(t["cache_hit"].get<bool>()) << t.dump();
  EXPECT_EQ(run2["outputs"], run["outputs"]);
  const std::string wlog = read_file(w.log);
  EXPECT_NE(wlog.find("unchanged, using the local copy"), std::string::npos) << wlog;
  std::size_t fetches = 0;
  for (auto p = wlog.find("fetched input 'reference'"); p != std::string::npos;
       p = wlog.find("fetched input 'reference'", p + 1))
    ++fetches;
  EXPECT_EQ(fetches, 1u) << "the reference was downloaded more than once (6 tasks)\n" << wlog;
  EXPECT_EQ(w.signal_and_wait(SIGTERM), 0) << read_file(w.log);

  // A shared-storage worker on the daemon's directory computes the same cache keys from the same
  // input digests: the align task of the same sample, and a call task on the BAM the HTTP worker
  // uploaded. (The germline call/qc tasks of a shared-storage run get other keys only because
  // their inputs differ: the BAM header records the reference's path, @SQ UR.)
  Process shared;
  shared.start(worker_cmd(d, data, "--worker-id shared-1 --allow-root " + q(root.string())),
               tmp.path / "shared.log");
  HttpResult sub3 = d.post("/v1/runs", germline_body(), {"Idempotency-Key: xfer-3"});
  ASSERT_EQ(sub3.status, 201) << sub3.body;
  json run3 = d.wait_run(sub3.j()["id"], 300);
  ASSERT_EQ(run3.value("state", ""), "COMPLETE") << run3.dump(2) << "\n" << read_file(shared.log);
  const json& a1 = run["provenance"]["tasks"]["align"];
  const json& a3 = run3["provenance"]["tasks"]["align"];
  EXPECT_EQ(a3.value("worker_id", ""), "shared-1");
  EXPECT_FALSE(a3.value("cache_hit", true));
  ASSERT_FALSE(a1.value("cache_key", "").empty());
  EXPECT_EQ(a1.value("cache_key", ""), a3.value("cache_key", ""));
  const json call_req = {{"workflow", "call"},
                         {"sample", "NA12878"},
                         {"inputs", {{"reference", ref.string()}, {"bam", run["outputs"]["bam"]["digest"]}}},
                         {"parameters", {{"threads", 2}}}};
  HttpResult sub4 = d.post("/v1/runs", call_req.dump());
  ASSERT_EQ(sub4.status, 201) << sub4.body;
  json run4 = d.wait_run(sub4.j()["id"], 300);
  ASSERT_EQ(run4.value("state", ""), "COMPLETE") << run4.dump(2) << "\n" << read_file(shared.log);
  const json& c1 = run["provenance"]["tasks"]["call"];
  const json& c4 = run4["provenance"]["tasks"]["call"];
  EXPECT_EQ(c4.value("worker_id", ""), "shared-1");
  EXPECT_FALSE(c4.value("cache_hit", true));
  ASSERT_FALSE(c1.value("cache_key", "").empty());
  EXPECT_EQ(c1.value("cache_key", ""), c4.value("cache_key", ""));
  EXPECT_EQ(shared.signal_and_wait(SIGTERM), 0) << read_file(shared.log);
}

// A call run on a BAM given as sha256: of an uploaded object: the worker fetches it from
// /v1/objects (no index is known for it, so the engine indexes it locally).
TEST_F(TransferFixture, CallRunFromAnUploadedBam) {
  Daemon d;
  ASSERT_TRUE(d.start("--data-dir " + q(data.string()) + " --workers 0 --allow-root " + q(root.string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  const std::string digest = ObjectStore::digest_file(bam);
  std::string body;
  ASSERT_EQ(curl(d, "PUT", "/v1/objects/" + digest, "", "", bam, &body), 201) << body;
  const json req = {{"workflow", "call"},
                    {"sample", "NA12878"},
                    {"inputs", {{"reference", ref.string()}, {"bam", digest}}},
                    {"parameters", {{"threads", 2}}}};
  HttpResult sub = d.post("/v1/runs", req.dump());
  ASSERT_EQ(sub.status, 201) << sub.body;
  Process w;
  w.start(worker_cmd(d, worker_dir, "--transfer http --once"), tmp.path / "worker.log");
  json run = d.wait_run(sub.j()["id"], 300);
  ASSERT_EQ(run.value("state", ""), "COMPLETE") << run.dump(2) << "\n" << read_file(w.log);
  const fs::path vcf = tmp.path / "call.vcf.gz";
  ASSERT_EQ(
      d.request("GET", "/v1/runs/" + run["id"].get<std::string>() + "/outputs/vcf", "", {}, vcf.string())
          .status,
      200);
  const std::set<std::string> truth = vcf_snvs(tiny() / "truth.vcf.gz");
  const std::set<std::string> got = vcf_snvs(vcf);
  for (const auto& s : truth) EXPECT_TRUE(got.count(s)) << "missing truth SNV " << s;
  ObjectStore local(worker_dir);
  EXPECT_TRUE(local.has(digest));
  EXPECT_EQ(read_file(worker_dir / "inputs" / digest.substr(7) / "input.bam"), read_file(bam));
  EXPECT_EQ(run["provenance"]["tasks"]["call"]["inputs"]["bam"]["uri"], digest);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (w.running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(w.running()) << "--once worker did not exit\n" << read_file(w.log);
}

TEST_F(TransferFixture, ObjectEndpointsDigestsIdempotencyScopesAndLimits) {
  write_file(tmp.path / "tokens", "tok-client client\ntok-worker worker\n");
  Daemon d;
  ASSERT_TRUE(d.start("--data-dir " + q(data.string()) + " --workers 0 --allow-root " + q(root.string()) +
                          " --token-file " + q((tmp.path / "tokens").string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  ObjectStore store(data);
  const fs::path blob = tmp.path / "blob.bin", other = tmp.path / "other.bin";
  write_random(blob, 8u << 20, 1);  // 8 MB: far above the 1 MB JSON body limit
  write_random(other, 1000, 2);
  const std::string digest = ObjectStore::digest_file(blob), wrong = ObjectStore::digest_file(other);
  std::string body;

  // Wrong digest: 400 naming both, nothing stored, no temp file left.
  EXPECT_EQ(curl(d, "PUT", "/v1/objects/" + wrong, "tok-worker", "", blob, &body), 400) << body;
  EXPECT_NE(body.find(digest), std::string::npos) << body;
  EXPECT_NE(body.find(wrong), std::string::npos) << body;
  EXPECT_FALSE(store.has(digest));
  EXPECT_FALSE(store.has(wrong));
  EXPECT_EQ(entries(data / "tmp"), 0u);
  // Scopes.
  EXPECT_EQ(curl(d, "PUT", "/v1/objects/" + digest, "", "", blob, &body), 401) << body;
  EXPECT_EQ(curl(d, "PUT", "/v1/objects/" + digest, "tok-client", "", blob, &body), 403) << body;
  EXPECT_EQ(curl(d, "GET", "/v1/objects/" + digest, "tok-client", "", {}, &body), 403) << body;
  EXPECT_FALSE(store.has(digest));
  // Created, then idempotent (with and without Expect: 100-continue), never rewritten.
  EXPECT_EQ(curl(d, "PUT", "/v1/objects/" + digest, "tok-worker", "", blob, &body), 201) << body;
  EXPECT_EQ(json::parse(body)["size"], 8u << 20);
  ASSERT_TRUE(store.has(digest));
  const auto mtime = fs::last_write_time(store.path_of(digest));
  EXPECT_EQ(curl(d, "PUT", "/v1/objects/" + digest, "tok-worker", "", blob, &body), 200) << body;
  EXPECT_EQ(curl(d, "PUT", "/v1/objects/" + digest, "tok-worker", "-H 'Expect:'", blob, &body), 200) << body;
  EXPECT_EQ(fs::last_write_time(store.path_of(digest)), mtime);
  EXPECT_EQ(read_file(store.path_of(digest)), read_file(blob));
  // A chunked upload, and a bare-hex digest in the URL.
  const fs::path blob2 = tmp.path / "blob2.bin";
  write_random(blob2, (2u << 20) + 17, 3);
  const std::string digest2 = ObjectStore::digest_file(blob2);
  EXPECT_EQ(curl(d, "PUT", "/v1/objects/" + digest2.substr(7), "tok-worker",
                 "-H 'Transfer-Encoding: chunked'", blob2, &body),
            201)
      << body;
  EXPECT_EQ(read_file(store.path_of(digest2)), read_file(blob2));
  EXPECT_EQ(entries(data / "tmp"), 0u);
  // GET (and HEAD, Range), 404 for an unknown object, 400 for a malformed digest.
  const fs::path back = tmp.path / "back.bin";
  EXPECT_EQ(curl(d, "GET", "/v1/objects/" + digest, "tok-worker", "", {}, nullptr, back), 200);
  EXPECT_EQ(read_file(back), read_file(blob));
  EXPECT_EQ(curl(d, "HEAD", "/v1/objects/" + digest, "tok-worker", "-I", {}, &body), 200);
  EXPECT_EQ(curl(d, "GET", "/v1/objects/" + digest, "tok-worker", "-H 'Range: bytes=0-9'", {}, &body), 206);
  EXPECT_EQ(body, read_file(blob).substr(0, 10));
  EXPECT_EQ(curl(d, "GET", "/v1/objects/sha256:" + std::string(64, 'a'), "tok-worker", "", {}, &body), 404)
      << body;
  EXPECT_EQ(curl(d, "GET", "/v1/objects/sha256:xyz", "tok-worker", "", {}, &body), 400) << body;
  EXPECT_EQ(curl(d, "PUT", "/v1/objects/not-a-digest", "tok-worker", "", other, &body), 400) << body;
  // The JSON routes keep their 1 MB limit.
  const fs::path big_json = tmp.path / "big.json";
  write_file(big_json, "{\"workflow\": \"germline\", \"sample\": \"" + std::string(2u << 20, 'x') + "\"}");
  EXPECT_EQ(curl(d, "POST", "/v1/runs", "tok-client", "-H 'Content-Type: application/json'", big_json, &body),
            413)
      << body;
  EXPECT_EQ(d.get("/healthz").status, 200);
}

TEST_F(TransferFixture, TaskInputsOnlyForTheLeaseHolderAndOnlyInsideTheRoots) {
  write_file(tmp.path / "tokens", "tok-client client\ntok-worker worker\n");
  Daemon d;
  ASSERT_TRUE(d.start("--data-dir " + q(data.string()) + " --workers 0 --allow-root " + q(root.string()) +
                          " --token-file " + q((tmp.path / "tokens").string()),
                      tmp.path / "serve.log"))
      << log_of(d);
  d.token = "tok-client";
  HttpResult a = d.post("/v1/runs", germline_body("A"));
  HttpResult b = d.post("/v1/runs", germline_body("B"));
  ASSERT_EQ(a.status, 201) << a.body;
  ASSERT_EQ(b.status, 201) << b.body;
  d.token = "tok-worker";
  HttpResult lease = d.post("/v1/tasks/lease", json{{"worker_id", "w1"}, {"lease_seconds", 120}}.dump());
  ASSERT_EQ(lease.status, 200) << lease.body;
  const json task = lease.j()["task"];
  const std::string tid = enc(task["id"]), token = task["lease_token"];
  const std::string lease_h = "-H " + q("X-Omicsd-Lease-Token: " + token);
  const std::string other_run =
      task["run_id"] == a.j()["id"] ? b.j()["id"].get<std::string>() : a.j()["id"].get<std::string>();
  const std::string base = "/v1/tasks/" + tid + "/inputs/";
  std::string body;

  // The task's inputs, by the keys of its lease answer, and the reference's index.
  EXPECT_EQ(curl(d, "GET", base + "reference", "tok-worker", lease_h, {}, &body), 200) << body;
  EXPECT_EQ(body, read_file(ref));
  EXPECT_EQ(curl(d, "GET", base + "reads%2F0", "tok-worker", lease_h, {}, &body), 200);
  EXPECT_EQ(body, read_file(bam));
  EXPECT_EQ(curl(d, "GET", base + "reads/0", "tok-worker", lease_h, {}, &body), 200);
  EXPECT_EQ(body, read_file(bam));
  EXPECT_EQ(curl(d, "GET", base + "reference.fai", "tok-worker", lease_h, {}, &body), 200);
  EXPECT_EQ(body, read_file(root / "q.fa.fai"));
  // Conditional: the ETag comes back as 304.
  const fs::path headers = tmp.path / "headers";
  EXPECT_EQ(curl(d, "GET", base + "reference", "tok-worker", lease_h + " -D " + q(headers.string())), 200);
  std::string etag;
  {
    std::ifstream in(headers);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("ETag: ", 0) == 0 || line.rfind("etag: ", 0) == 0) etag = line.substr(6);
    while (!etag.empty() && (etag.back() == '\r' || etag.back() == '\n')) etag.pop_back();
  }
  ASSERT_FALSE(etag.empty()) << read_file(headers);
  EXPECT_EQ(curl(d, "GET", base + "reference", "tok-worker", lease_h + " -H " + q("If-None-Match: " + etag)),
            304);

  // Keys are not paths: unknown keys, traversal attempts and companions of other keys are 404.
  for (const std::string& key :
       {std::string("nope"), std::string("..%2F..%2F..%2Fetc%2Fpasswd"), std::string("%2Fetc%2Fpasswd"),
        std::string("reads%2F2"), std::string("reads%2F0.bai"), std::string("reference.exe"),
        std::string("bam"), std::string("reference.omi")}) {
    EXPECT_EQ(curl(d, "GET", base + key, "tok-worker", lease_h, {}, &body), 404) << key << ": " << body;
  }
  EXPECT_EQ(curl(d, "GET", base + "..%2F..%2F..%2Fetc/passwd", "tok-worker", lease_h, {}, &body), 404)
      << body;
  // A companion that is a symlink out of the roots is refused like any other path outside them.
  fs::create_symlink("/etc/passwd", root / "q.fa.omi");
  EXPECT_EQ(curl(d, "GET", base + "reference.omi", "tok-worker", lease_h, {}, &body), 404) << body;
  EXPECT_NE(body.find("outside the allowed input roots"), std::string::npos) << body;

  // Only the holder of the current lease: no token 400, a stale one 409 (as for heartbeats), our
  // token on another run's task 409, an unknown task 404, a client token 403.
  EXPECT_EQ(curl(d, "GET", base + "reference", "tok-worker", "", {}, &body), 400) << body;
  EXPECT_EQ(curl(d, "GET", base + "reference", "tok-worker", "-H 'X-Omicsd-Lease-Token: stale'", {}, &body),
            409)
      << body;
  EXPECT_EQ(curl(d, "GET", "/v1/tasks/" + enc(other_run + "/align") + "/inputs/reference", "tok-worker",
                 lease_h, {}, &body),
            409)
      << body;
  EXPECT_EQ(curl(d, "GET", "/v1/tasks/run-nope%2Falign/inputs/reference", "tok-worker", lease_h, {}, &body),
            404)
      << body;
  EXPECT_EQ(curl(d, "GET", base + "reference", "tok-client", lease_h, {}, &body), 403) << body;
  // Once the task is finished the lease is gone, and so are its inputs.
  HttpResult f = d.post("/v1/tasks/" + tid + "/fail",
                        json{{"lease_token", token}, {"error", "test"}, {"retryable", false}}.dump());
  ASSERT_EQ(f.status, 200) << f.body;
  EXPECT_EQ(curl(d, "GET", base + "reference", "tok-worker", lease_h, {}, &body), 409) << body;
}

}  // namespace
}  // namespace omicsd::test
