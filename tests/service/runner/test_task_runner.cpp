// Worker-side task execution: content-addressed object store, input URI policy, cache keys and the
// align -> call -> qc chain on the shared tiny NA12878 data, with cache hits and bad input.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "host/common/error.hpp"
#include "service/objects/object_store.hpp"
#include "service/util/sha256.hpp"
#include "service/runner/task_runner.hpp"
#include "tests/support/test_support.hpp"

namespace fs = std::filesystem;
using namespace omicsd;
using namespace omicsd::test;
using nlohmann::json;

namespace {

fs::path tiny() { return shared_data_dir() / "na12878-chr22-tiny"; }

size_t count_files(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) ++n;
  return n;
}

TEST(Sha256, KnownStrings) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;  // incremental == one shot
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.final_hex(), sha256_hex("abc"));
  TempDir tmp;
  write_file(tmp.path / "f", "abc");
  uint64_t size = 0;
  EXPECT_EQ(ObjectStore::digest_file(tmp.path / "f", &size),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(size, 3u);
  EXPECT_THROW(ObjectStore::digest_file(tmp.path / "missing"), InputError);
}

TEST(ObjectStore, PutDedupesAndLaysOutByDigest) {
  TempDir tmp;
  ObjectStore store(tmp.path / "data");
  const ObjectRef a = store.put_bytes("abc");
  EXPECT_EQ(a.digest, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(a.size, 3u);
  EXPECT_EQ(fs::path(a.path), fs::canonical(tmp.path / "data") / "objects" / "sha256" / "ba" /
                                  "7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(read_file(a.path), "abc");
  EXPECT_TRUE(store.has(a.digest));
  EXPECT_EQ(store.path_of(a.digest), fs::path(a.path));
  // Objects are read-only.
  struct stat st {};
  ASSERT_EQ(::stat(a.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u);

  // Same content from a file (copy and move): one object.
  write_file(tmp.path / "f1", "abc");
  write_file(tmp.path / "f2", "abc");
  EXPECT_EQ(store.put_file(tmp.path / "f1"), a);
  EXPECT_TRUE(fs::exists(tmp.path / "f1"));  // copy keeps the source
  EXPECT_EQ(store.put_file(tmp.path / "f2", ObjectStore::Mode::Move), a);
  EXPECT_FALSE(fs::exists(tmp.path / "f2"));  // move consumes it
  EXPECT_EQ(count_files(tmp.path / "data" / "objects"), 1u);

  // A new file moved in is renamed, not copied, and keeps its bytes.
  std::string big(3 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4097) big[i] = char('a' + i % 26);
  write_file(tmp.path / "big", big);
  const ObjectRef b = store.put_file(tmp.path / "big", ObjectStore::Mode::Move);
  EXPECT_EQ(b.digest, "sha256:" + sha256_hex(big));
  EXPECT_EQ(b.size, big.size());
  EXPECT_EQ(read_file(b.path), big);
  EXPECT_EQ(count_files(tmp.path / "data" / "objects"), 2u);
  EXPECT_EQ(count_files(tmp.path / "data" / "tmp"), 0u);  // no temp files left behind

  EXPECT_FALSE(store.has("sha256:" + std::string(64, '0')));
  EXPECT_FALSE(store.has("sha256:../../etc/passwd"));
  EXPECT_THROW(store.path_of("sha256:../../etc/passwd"), InputError);
  EXPECT_THROW(store.path_of("md5:" + std::string(32, '0')), InputError);
  EXPECT_THROW(store.put_file(tmp.path / "missing"), InputError);
}

TEST(ObjectStore, ConcurrentPutsOfTheSameContentAreAtomic) {
  TempDir tmp;
  ObjectStore store(tmp.path / "data");
  const std::string content(1 << 20, 'g');
  std::vector<std::thread> threads;
  std::vector<ObjectRef> refs(8);
  for (int i = 0; i < 8; ++i) {
    write_file(tmp.path / ("src" + std::to_string(i)), content);
    threads.emplace_back([&, i] {
      refs[i] = i % 2 ? store.put_bytes(content)
                      : store.put_file(tmp.path / ("src" + std::to_string(i)), ObjectStore::Mode::Move);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : refs) EXPECT_EQ(r, refs[0]);
  EXPECT_EQ(read_file(refs[0].path), content);
  EXPECT_EQ(count_files(tmp.path / "data" / "objects"), 1u);
  EXPECT_EQ(count_files(tmp.path / "data" / "tmp"), 0u);
}

TEST(ResolveInputUri, OnlyInsideConfiguredRoots) {
  TempDir tmp;
  const fs::path root = tmp.path / "root", other = tmp.path / "other", root2 = tmp.path / "root2";
  fs::create_directories(root / "sub");
  fs::create_directories(other);
  fs::create_directories(root2);
  write_file(root / "sub" / "a.fa", ">a\nACGT\n");
  write_file(other / "secret", "x");
  write_file(root2 / "b", "x");
  fs::create_symlink(other / "secret", root / "escape");  // symlink pointing outside
  fs::create_symlink(root / "sub" / "a.fa", root / "inside-link");
  const std::vector<fs::path> roots{root};
  const fs::path canon = fs::canonical(root / "sub" / "a.fa");

  EXPECT_EQ(resolve_input_uri((root / "sub" / "a.fa").string(), roots).path, canon);
  EXPECT_EQ(resolve_input_uri("file://" + (root / "sub" / "a.fa").string(), roots).path, canon);
  EXPECT_EQ(resolve_input_uri("file://localhost" + (root / "sub" / "a.fa").string(), roots).path, canon);
  EXPECT_EQ(resolve_input_uri((root / "sub" / ".." / "sub" / "a.fa").string(), roots).path, canon);
  EXPECT_EQ(resolve_input_uri((root / "inside-link").string(), roots).path, canon);

  for (const std::string bad : {
           (root / ".." / "other" / "secret").string(),  // .. escape
           "file://" + (root / "sub" / ".." / ".." / "other" / "secret").string(),
           "file://" + (root / "%2e%2e" / "other" / "secret").string(),  // escaped ..
           (root / "escape").string(),                                   // symlink escape
           (root2 / "b").string(),                                       // another root, not configured
           (other / "secret").string(), std::string("/etc/passwd"), std::string("sub/a.fa"),
           std::string("./root/sub/a.fa"),  // relative paths
           std::string("file://sub/a.fa"), std::string("file://otherhost/etc/passwd"),
           std::string("http://example.com/a.fa"), std::string(""),
           (root / "sub" / "missing.fa").string(),  // inside but missing
           (root / "sub").string(),                 // a directory
           "sha256:" + std::string(64, 'a'),        // unknown object
       })
    EXPECT_THROW(resolve_input_uri(bad, roots), InputError) << bad;
  // "/tmp/x/root2" must not count as inside "/tmp/x/root".
  EXPECT_FALSE(path_is_within(root2 / "b", root));
  EXPECT_TRUE(path_is_within(root / "sub" / "a.fa", root));
  // A second configured root works.
  EXPECT_NO_THROW(resolve_input_uri((root2 / "b").string(), {root, root2}));

  // Digests of stored objects are accepted.
  ObjectStore store(tmp.path / "data");
  const ObjectRef r = store.put_bytes("hello");
  const ResolvedInput ri = resolve_input_uri(r.digest, roots, &store);
  EXPECT_EQ(ri.path, fs::path(r.path));
  EXPECT_EQ(ri.digest, r.digest);
  EXPECT_THROW(resolve_input_uri(r.digest, roots, nullptr), InputError);
}

TEST(CacheKey, StableUnderKeyOrderAndSensitiveToEveryPart) {
  const json p1 = json::parse(R"({"backend":"auto","read_group":"@RG\\tID:x","nested":{"a":1,"b":[1,2]}})");
  const json p2 = json::parse(R"({"nested":{"b":[1,2],"a":1},"read_group":"@RG\\tID:x","backend":"auto"})");
  const std::map<std::string, std::string> in{{"reference", "sha256:" + std::string(64, '1')},
                                              {"reads1", "sha256:" + std::string(64, '2')}};
  const std::string k = cache_key("align", "1.0", p1, in);
  EXPECT_EQ(k, cache_key("align", "1.0", p2, in));
  EXPECT_TRUE(is_sha256_digest(k));
  json p3 = p1;
  p3["backend"] = "cpu";
  EXPECT_NE(k, cache_key("align", "1.0", p3, in));
  EXPECT_NE(k, cache_key("call", "1.0", p1, in));
  EXPECT_NE(k, cache_key("align", "1.1", p1, in));
  auto in2 = in;
  in2["reads1"] = "sha256:" + std::string(64, '3');
  EXPECT_NE(k, cache_key("align", "1.0", p1, in2));
}

TEST(Retryable, InputErrorsArePermanent) {
  EXPECT_FALSE(retryable(InputError("bad")));
  EXPECT_TRUE(retryable(Error("disk full")));
  EXPECT_TRUE(retryable(std::runtime_error("x")));
}

struct TaskRunnerFixture : ::testing::Test {
  TempDir tmp;
  fs::path root, data;
  std::unique_ptr<ObjectStore> store;
  std::unique_ptr<TaskRunner> runner;
  void SetUp() override {
    if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
    root = tmp.path / "inputs";
    data = tmp.path / "data";
    fs::create_directories(root);
    fs::copy_file(tiny() / "q.fa", root / "q.fa");
    store = std::make_unique<ObjectStore>(data);
    runner =
        std::make_unique<TaskRunner>(*store, TaskRunnerOptions{{root, tiny()}, "test-worker", false, {}});
  }
};

TEST_F(TaskRunnerFixture, AlignCallQcThenCacheHit) {
  RunnerTaskSpec align;
  align.kind = "align";
  align.sample = "NA12878";
  align.inputs = {{"reference", "file://" + (root / "q.fa").string()},
                  {"reads", json::array({(tiny() / "NA12878.chr22.tiny.bam").string()})}};
  align.parameters = {{"threads", 2}, {"backend", "cpu"}};
  align.scratch_dir = tmp.path / "scratch-align";
  const RunnerTaskResult a = runner->run(align);
  EXPECT_FALSE(a.cache_hit);
  ASSERT_TRUE(a.outputs.count("bam"));
  ASSERT_TRUE(a.outputs.count("bai"));
  for (const auto& [name, ref] : a.outputs) {
    EXPECT_TRUE(store->has(ref.digest)) << name;
    EXPECT_EQ(ObjectStore::digest_file(ref.path), ref.digest) << name;
  }
  std::string o;
  ASSERT_EQ(run_command("samtools quickcheck " + a.outputs.at("bam").path, &o), 0) << o;
  // Provenance.
  const json& p = a.provenance;
  for (const char* k : {"inputs", "reference", "engine", "backend", "device", "parameters", "started_at",
                        "finished_at", "steps", "host", "cache_key", "worker_id"})
    EXPECT_TRUE(p.contains(k)) << k << "\n" << p.dump(2);
  EXPECT_EQ(p["inputs"]["reference"]["digest"], ObjectStore::digest_file(root / "q.fa"));
  EXPECT_TRUE(is_sha256_digest(p["inputs"]["reads1"]["digest"].get<std::string>()));
  ASSERT_FALSE(p["reference"]["contigs"].empty());
  EXPECT_EQ(p["reference"]["contigs"][0]["md5"].get<std::string>().size(), 32u);
  EXPECT_EQ(p["device"], "cpu");
  EXPECT_FALSE(p["engine"]["version"].get<std::string>().empty());
  EXPECT_TRUE(p["engine"].contains("git_hash"));
  EXPECT_EQ(p["steps"][1]["step"], "align");
  EXPECT_FALSE(fs::exists(align.scratch_dir / "NA12878.bam"));  // moved into the store

  // call on the align output's digest (staged with its index from the store).
  RunnerTaskSpec call;
  call.kind = "call";
  call.sample = "NA12878";
  call.inputs = {{"reference", (root / "q.fa").string()}, {"bam", a.outputs.at("bam").digest}};
  call.parameters = {{"threads", 2}};
  call.scratch_dir = tmp.path / "scratch-call";
  const RunnerTaskResult c = runner->run(call);
  ASSERT_TRUE(c.outputs.count("vcf"));
  ASSERT_TRUE(c.outputs.count("tbi") || c.outputs.count("csi"));
  // bcftools wants the extension: link the object under a .vcf.gz name.
  const fs::path vcf = tmp.path / "calls.vcf.gz";
  fs::create_symlink(c.outputs.at("vcf").path, vcf);
  const auto truth = vcf_snvs(tiny() / "truth.vcf.gz");
  EXPECT_EQ(truth.size(), 14u);
  EXPECT_EQ(vcf_snvs(vcf), truth);
  EXPECT_EQ(c.provenance["inputs"]["bam"]["digest"], a.outputs.at("bam").digest);

  // qc on both digests.
  RunnerTaskSpec qc;
  qc.kind = "qc";
  qc.sample = "NA12878";
  qc.inputs = {{"reference", (root / "q.fa").string()},
               {"bam", a.outputs.at("bam").digest},
               {"vcf", c.outputs.at("vcf").digest}};
  const RunnerTaskResult q = runner->run(qc);
  ASSERT_TRUE(q.outputs.count("qc"));
  const json report = json::parse(read_file(q.outputs.at("qc").path));
  EXPECT_NE(report.dump().find("\"snvs\":14"), std::string::npos) << report.dump(2);
  EXPECT_TRUE(fs::exists(data / "cache"));

  // Same align task again: a cache hit that runs nothing and writes no scratch output.
  RunnerTaskSpec again = align;
  again.scratch_dir = tmp.path / "scratch-again";
  again.parameters = {{"backend", "cpu"}, {"threads", 1}};  // key order and thread count do not matter
  const size_t objects_before = count_files(data / "objects");
  const RunnerTaskResult h = runner->run(again);
  EXPECT_TRUE(h.cache_hit);
  EXPECT_EQ(h.cache_key, a.cache_key);
  EXPECT_EQ(h.outputs, a.outputs);
  EXPECT_EQ(h.provenance["started_at"], a.provenance["started_at"]);  // provenance of the producing run
  EXPECT_FALSE(fs::exists(again.scratch_dir));
  EXPECT_EQ(count_files(data / "objects"), objects_before);

  // A changed parameter misses the cache; disabling the cache reruns.
  RunnerTaskSpec nocache = align;
  nocache.use_cache = false;
  nocache.scratch_dir = tmp.path / "scratch-nocache";
  const RunnerTaskResult n = runner->run(nocache);
  EXPECT_FALSE(n.cache_hit);
  EXPECT_EQ(n.outputs.at("bam").digest, a.outputs.at("bam").digest);  // deterministic output, deduped
}

TEST_F(TaskRunnerFixture, BadInputIsAPermanentInputError) {
  write_file(root / "bad.fq", "@r1\nACGTACGTACGT\n+\nIIIIIIIIIIII\n@r2\nACGTACG");  // truncated record
  RunnerTaskSpec align;
  align.kind = "align";
  align.sample = "bad";
  align.inputs = {{"reference", (root / "q.fa").string()}, {"reads", (root / "bad.fq").string()}};
  align.parameters = {{"threads", 1}};
  align.scratch_dir = tmp.path / "scratch-bad";
  try {
    runner->run(align);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_FALSE(retryable(e));
    // The engine read a staged link in scratch; the message names the client's file instead.
    const std::string msg = e.what();
    EXPECT_NE(msg.find((root / "bad.fq").string()), std::string::npos) << msg;
    EXPECT_EQ(msg.find("scratch-bad"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(data / "cache") && count_files(data / "cache") > 0);

  // Spec errors are InputErrors too.
  RunnerTaskSpec s = align;
  s.inputs["reads"] = "file://" + (root / ".." / ".." / "etc" / "passwd").string();
  EXPECT_THROW(runner->run(s), InputError);
  s = align;
  s.parameters = {{"thread", 2}};
  EXPECT_THROW(runner->run(s), InputError);
  s = align;
  s.parameters = {{"threads", "two"}};
  EXPECT_THROW(runner->run(s), InputError);
  s = align;
  s.kind = "dance";
  EXPECT_THROW(runner->run(s), InputError);
  s = align;
  s.sample = "../evil";
  EXPECT_THROW(runner->run(s), InputError);
}

// Indexes next to a call task's BAM: a dangling link counts as no index (the runner builds one in
// scratch, as before), a link to a file out of the roots fails the task; nothing is written next to
// the inputs.
TEST_F(TaskRunnerFixture, DanglingIndexLinksInsideTheRootAreNoIndexAndOutsideAreRefused) {
  fs::copy_file(tiny() / "NA12878.chr22.tiny.bam", root / "x.bam");
  fs::create_symlink(root / "gone.bai", root / "x.bam.bai");
  RunnerTaskSpec call;
  call.kind = "call";
  call.sample = "S";
  call.inputs = {{"reference", (root / "q.fa").string()}, {"bam", (root / "x.bam").string()}};
  call.parameters = {{"threads", 1}};
  const RunnerTaskResult c = runner->run(call);
  EXPECT_TRUE(c.outputs.count("vcf"));
  EXPECT_EQ(c.provenance["stats"]["snps"], 14) << c.provenance.dump();
  for (const char* written : {"x.bam.csi", "q.fa.omi", "q.fa.fai"})
    EXPECT_FALSE(fs::exists(root / written)) << written;

  fs::remove(root / "x.bam.bai");
  fs::create_symlink(tmp.path / "elsewhere.bai", root / "x.bam.bai");  // out of the roots
  write_file(tmp.path / "elsewhere.bai", "SECRET");
  call.use_cache = false;
  try {
    runner->run(call);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("outside the allowed input roots"), std::string::npos) << e.what();
  }
}

}  // namespace
