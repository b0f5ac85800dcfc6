// Issue 12, item 2 (the task-input part): runs submitted through the daemon's own path
// (parse_workflow_request, check_workflow_inputs, make_new_run) on SQLite and PostgreSQL, executed by
// an in-process worker whose TaskRunner opens inputs beneath the allowed roots. Files are swapped at
// the runner's checkpoints ("inputs_checked": after the policy check, before the open;
// "inputs_staged": after the open, before the engine), so each time-of-check/time-of-use race is
// deterministic: an input, a directory above it or an index next to it that becomes a link out of
// the roots fails the task with a clear error and is never read; what was opened is what the engine
// reads, whatever happens to the names afterwards; links that stay inside the roots still work.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "service/util/clock.hpp"
#include "service/workers/inproc_worker.hpp"
#include "service/jobs/job_store.hpp"
#include "service/objects/object_store.hpp"
#include "service/workers/runner_executor.hpp"
#include "service/jobs/workflow.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path tiny() { return test::shared_data_dir() / "na12878-chr22-tiny"; }

size_t files_under(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  if (fs::exists(dir, ec))
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) ++n;
  return n;
}

struct TaskRunnerRootedInputs : ::testing::TestWithParam<test::StoreBackend> {
  test::TempDir tmp;
  fs::path in, out, data;
  std::unique_ptr<test::PostgresDatabase> pg;
  std::unique_ptr<JobStore> jobs;
  std::unique_ptr<ObjectStore> objects;

  void SetUp() override {
    if (!fs::exists(tiny() / "q.fa")) GTEST_SKIP() << "shared data not found at " << tiny();
    const std::string url = test::store_database_url(GetParam(), tmp.path / "jobs.db", pg);
    if (url.empty()) GTEST_SKIP() << test::kPostgresSkipMessage;
    jobs = open_job_store(url);
    in = tmp.path / "in";    // the only allowed root
    out = tmp.path / "out";  // outside it: the secrets
    data = tmp.path / "data";
    objects = std::make_unique<ObjectStore>(data);
    for (const char* d : {"ref", "bam", "reads"}) fs::create_directories(in / d);
    for (const char* d : {"bam", "ref"}) fs::create_directories(out / d);
    fs::copy_file(tiny() / "q.fa", in / "ref" / "q.fa");
    fs::copy_file(tiny() / "NA12878.chr22.tiny.bam", in / "bam" / "x.bam");
    fs::copy_file(tiny() / "NA12878.chr22.tiny.bam.bai", in / "bam" / "x.bam.bai");
    std::string o;
    ASSERT_EQ(test::run_command("{ samtools fastq " + (in / "bam" / "x.bam").string() + " > " +
                                    (in / "reads" / "r.fq").string() + "; }",
                                &o),
              0)
        << o;
    // The secrets: reads, an alignment file with its index, a reference and an "index" of it.
    test::write_file(out / "secret.fq",
                     "@SECRET_READ_1\nACGTACGTACGTACGTACGTACGT\n+\nIIIIIIIIIIIIIIIIIIIIIIII\n");
    fs::copy_file(tiny() / "NA12878.chr22.tiny.bam", out / "bam" / "x.bam");
    fs::copy_file(tiny() / "NA12878.chr22.tiny.bam.bai", out / "bam" / "x.bam.bai");
    test::write_file(out / "ref" / "q.fa", ">q\nACGTACGTACGTACGTACGTACGTACGTACGT\n");
    test::write_file(out / "secret.omi", "SECRET INDEX BYTES");
  }

  // Submits like POST /v1/runs (the registration check included), then runs the queue with one
  // in-process worker whose runner calls `hook` at its checkpoints. Returns the run once terminal.
  omicsd::Run submit_and_run(const json& body, const std::function<void(const std::string&)>& hook = {},
                             const std::function<void()>& before_worker = {}) {
    const WorkflowRequest req = parse_workflow_request(body);
    check_workflow_inputs(req, {in}, *objects);
    const omicsd::Run created = jobs->create_run(make_new_run(req, 1, 1), now_ms()).run;
    if (before_worker) before_worker();
    InprocWorkerOptions wo;
    wo.worker_id = "rooted-test";
    wo.poll_ms = 20;
    InprocWorker worker(*jobs,
                        make_runner_executor(*objects, TaskRunnerOptions{{in}, "rooted-test", false, hook}),
                        wo, nullptr);
    worker.start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    std::optional<omicsd::Run> run;
    while (std::chrono::steady_clock::now() < deadline) {
      run = jobs->get_run(created.id);
      if (run && is_terminal(run->state)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    worker.stop();
    EXPECT_TRUE(run && is_terminal(run->state)) << "run did not finish";
    return *jobs->get_run(created.id);
  }

  std::string task_error(const omicsd::Run& run) {
    std::string all;
    for (const Task& t : jobs->list_tasks(run.id)) all += t.last_error;
    return all;
  }

  json align_body(const fs::path& reads) const {
    return {{"workflow", "align"},
            {"sample", "S1"},
            {"cache", false},
            {"inputs", {{"reference", (in / "ref" / "q.fa").string()}, {"reads", reads.string()}}},
            {"parameters", {{"threads", 1}, {"backend", "cpu"}}}};
  }
  json call_body(const fs::path& bam) const {
    return {{"workflow", "call"},
            {"sample", "S1"},
            {"cache", false},
            {"inputs", {{"reference", (in / "ref" / "q.fa").string()}, {"bam", bam.string()}}},
            {"parameters", {{"threads", 1}, {"backend", "cpu"}}}};
  }
  // Swaps `path` for a symlink to `target` at checkpoint `point` (once).
  static std::function<void(const std::string&)> swap_at(const std::string& point, fs::path path,
                                                         fs::path target) {
    auto done = std::make_shared<bool>(false);
    return [=](const std::string& p) {
      if (p != point || *done) return;
      *done = true;
      fs::remove_all(path);
      fs::create_symlink(target, path);
    };
  }
};

TEST_P(TaskRunnerRootedInputs, InputSwappedForALinkOutOfTheRootsFailsTheTaskAndIsNeverRead) {
  // The reads file becomes a link out of the root between the check and the open.
  omicsd::Run run = submit_and_run(align_body(in / "reads" / "r.fq"),
                                   swap_at("inputs_checked", in / "reads" / "r.fq", out / "secret.fq"));
  EXPECT_EQ(run.state, RunState::Failed);
  std::string err = task_error(run);
  EXPECT_NE(err.find("input 'reads1'"), std::string::npos) << err;
  EXPECT_NE(err.find("leads out of the allowed input root"), std::string::npos) << err;
  EXPECT_TRUE(run.outputs.empty() || run.outputs.value("align", json::object()).empty())
      << run.outputs.dump();
  EXPECT_EQ(files_under(data / "objects"), 0u) << "the engine ran and stored something";

  // A directory above the BAM becomes a link to a directory out of the root (same names inside).
  run = submit_and_run(call_body(in / "bam" / "x.bam"), swap_at("inputs_checked", in / "bam", out / "bam"));
  EXPECT_EQ(run.state, RunState::Failed);
  err = task_error(run);
  EXPECT_NE(err.find("input 'bam'"), std::string::npos) << err;
  EXPECT_NE(err.find("leads out of the allowed input root"), std::string::npos) << err;
  EXPECT_EQ(files_under(data / "objects"), 0u);

  // The reference swapped after submission, before any worker leased the task: refused at the
  // task's own check.
  fs::remove_all(in / "bam");
  fs::create_directories(in / "bam");
  fs::copy_file(tiny() / "NA12878.chr22.tiny.bam", in / "bam" / "x.bam");
  run = submit_and_run(call_body(in / "bam" / "x.bam"), {}, [&] {
    fs::remove(in / "ref" / "q.fa");
    fs::create_symlink(out / "ref" / "q.fa", in / "ref" / "q.fa");
  });
  EXPECT_EQ(run.state, RunState::Failed);
  err = task_error(run);
  EXPECT_NE(err.find("input 'reference'"), std::string::npos) << err;
  EXPECT_NE(err.find("outside the allowed input roots"), std::string::npos) << err;
  EXPECT_EQ(files_under(data / "objects"), 0u);
}

TEST_P(TaskRunnerRootedInputs, LinksThatStayInsideTheRootsStillWork) {
  // Reads through an absolute file link and the reference through a relative directory link, both
  // resolving inside the root; the call cache on (the worker's cache key opens the inputs too).
  fs::create_symlink(in / "reads" / "r.fq", in / "reads-link.fq");
  fs::create_directory_symlink("ref", in / "ref-alias");
  json body = align_body(in / "reads-link.fq");
  body["inputs"]["reference"] = (in / "ref-alias" / "q.fa").string();
  body["cache"] = true;
  omicsd::Run run = submit_and_run(body);
  ASSERT_EQ(run.state, RunState::Complete) << task_error(run);
  EXPECT_GT(run.provenance["tasks"]["align"]["stats"].value("reads", 0), 3000) << run.provenance.dump();
  // The BAM through a link inside the root: its index is found next to the file the link names.
  fs::create_symlink(in / "bam" / "x.bam", in / "x-link.bam");
  run = submit_and_run(call_body(in / "x-link.bam"));
  ASSERT_EQ(run.state, RunState::Complete) << task_error(run);
  EXPECT_EQ(run.provenance["tasks"]["call"]["stats"]["snps"], 14) << run.provenance.dump();
}

TEST_P(TaskRunnerRootedInputs, IndexesNextToInputsAreOpenedBeneathTheRootsAndNeverReadByName) {
  // The BAM's index becomes a link out of the root between the check and the open: refused.
  omicsd::Run run =
      submit_and_run(call_body(in / "bam" / "x.bam"),
                     swap_at("inputs_checked", in / "bam" / "x.bam.bai", out / "bam" / "x.bam.bai"));
  EXPECT_EQ(run.state, RunState::Failed);
  std::string err = task_error(run);
  EXPECT_NE(err.find("x.bam.bai"), std::string::npos) << err;
  EXPECT_NE(err.find("outside the allowed input roots"), std::string::npos) << err;

  // Once opened, the names no longer matter: the reference, the BAM and its index all replaced by
  // garbage after staging, and the engine still reads the files that were checked (14 SNPs).
  fs::remove(in / "bam" / "x.bam.bai");
  fs::copy_file(tiny() / "NA12878.chr22.tiny.bam.bai", in / "bam" / "x.bam.bai");
  auto garbage = [&](const std::string& point) {
    if (point != "inputs_staged") return;
    for (const fs::path& p : {in / "ref" / "q.fa", in / "bam" / "x.bam", in / "bam" / "x.bam.bai"}) {
      fs::remove(p);
      test::write_file(p, "not what was checked");
    }
  };
  run = submit_and_run(call_body(in / "bam" / "x.bam"), garbage);
  ASSERT_EQ(run.state, RunState::Complete) << task_error(run);
  EXPECT_EQ(run.provenance["tasks"]["call"]["stats"]["snps"], 14) << run.provenance.dump();

  // The reference's minimizer index as a link out of the root: refused, naming the index; without
  // one, the aligner builds it in scratch and keeps it in the store, writing nothing into the root.
  fs::remove(in / "ref" / "q.fa");
  fs::copy_file(tiny() / "q.fa", in / "ref" / "q.fa");
  fs::create_symlink(out / "secret.omi", in / "ref" / "q.fa.omi");
  run = submit_and_run(align_body(in / "reads" / "r.fq"));
  EXPECT_EQ(run.state, RunState::Failed);
  err = task_error(run);
  EXPECT_NE(err.find("q.fa.omi"), std::string::npos) << err;
  EXPECT_NE(err.find("outside the allowed input roots"), std::string::npos) << err;
  fs::remove(in / "ref" / "q.fa.omi");
  run = submit_and_run(align_body(in / "reads" / "r.fq"));
  ASSERT_EQ(run.state, RunState::Complete) << task_error(run);
  EXPECT_FALSE(fs::exists(fs::symlink_status(in / "ref" / "q.fa.omi"))) << "the engine wrote into the root";
  EXPECT_EQ(files_under(data / "meta" / "omi-of"), 1u) << "the built index was not kept";
}

INSTANTIATE_TEST_SUITE_P(Backends, TaskRunnerRootedInputs, test::store_backends(), test::StoreBackendName{});

}  // namespace
}  // namespace omicsd
