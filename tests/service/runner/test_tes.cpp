// GA4GH TES (docs/api.md, "GA4GH TES"): the task model's validation and limits, the requirements a
// worker must meet, the state mapping and views (service/jobs/tes_task.hpp); the runtimes' command
// lines and the host runtime's path rewriting (service/runner/tes_runtime.hpp); the executor run end
// to end on the host runtime (service/runner/tes_executor.hpp): staging, executors in order, outputs,
// the log object, a cancel that kills the executor; and the job store accepting the 'tes' kind.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "host/common/error.hpp"
#include "service/jobs/job_store.hpp"
#include "service/jobs/task_graph.hpp"
#include "service/jobs/tes_task.hpp"
#include "service/objects/object_store.hpp"
#include "service/runner/tes_executor.hpp"
#include "service/runner/tes_runtime.hpp"
#include "tests/support/test_support.hpp"

using nlohmann::json;
using namespace omicsd;

namespace {

json minimal_task() { return {{"executors", {{{"image", "alpine"}, {"command", {"true"}}}}}}; }

// The InputError message of parse_tes_task(body), or "" when it is accepted.
std::string refusal(const json& body) {
  try {
    parse_tes_task(body);
    return "";
  } catch (const InputError& e) {
    return e.what();
  }
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(TesTask, KeepsTheSpecFieldsAndDefaults) {
  json body = minimal_task();
  body["name"] = "n";
  body["id"] = "ignored";  // read-only fields are ignored
  body["state"] = "COMPLETE";
  body["inputs"] = {{{"url", "file:///data/x"}, {"path", "/in/x"}}, {{"content", "abc"}, {"path", "/in/c"}}};
  body["outputs"] = {{{"url", "omicsd:objects"}, {"path", "/out/*.txt"}, {"path_prefix", "/out"}}};
  body["tags"] = {{"k", "v"}};
  body["resources"] = {{"cpu_cores", 2}, {"ram_gb", 1.5}, {"backend_parameters", {{"gpu", "1"}}}};
  const json t = parse_tes_task(body);
  EXPECT_FALSE(t.contains("id"));
  EXPECT_FALSE(t.contains("state"));
  EXPECT_EQ(t["inputs"][0]["type"], "FILE");
  EXPECT_EQ(t["inputs"][1]["content"], "abc");
  EXPECT_EQ(t["outputs"][0]["path_prefix"], "/out");
  EXPECT_EQ(t["tags"]["k"], "v");
  EXPECT_EQ(tes_requirements(t),
            (json{{"tes_runtime", true}, {"cpu_cores", 2}, {"ram_gb", 1.5}, {"gpu_count", 1.0}}));
  EXPECT_EQ(tes_requirements(parse_tes_task(minimal_task())), (json{{"tes_runtime", true}}));
}

TEST(TesTask, RefusesBadFieldsNamingThem) {
  auto with = [](const char* key, json v) {
    json b = minimal_task();
    b[key] = std::move(v);
    return b;
  };
  EXPECT_EQ(refusal(json::array()), "task: must be an object");
  EXPECT_EQ(refusal(json::object()), "executors: must be an array");
  EXPECT_EQ(refusal(json{{"executors", json::array()}}), "executors: at least one executor is required");
  EXPECT_EQ(refusal(json{{"executors", {{{"image", "a"}, {"command", json::array()}}}}}),
            "executors[0].command: must not be empty");
  EXPECT_EQ(refusal(json{{"executors", {{{"image", "a"}, {"command", {"x", 3}}}}}}),
            "executors[0].command[1]: must be a string");
  EXPECT_EQ(refusal(json{{"executors", {{{"image", "a"}, {"command", {"x"}}, {"workdir", "rel"}}}}}),
            "executors[0].workdir: must be an absolute path");
  EXPECT_EQ(refusal(json{{"executors", {{{"image", "a"}, {"command", {"x"}}, {"stdout", "/a/../b"}}}}}),
            "executors[0].stdout: must not contain '..'");
  EXPECT_EQ(refusal(json{{"executors", {{{"image", "a"}, {"command", {"x"}}, {"env", {{"A=B", "c"}}}}}}}),
            "executors[0].env: name 'A=B' must not contain '='");
  EXPECT_EQ(refusal(with("inputs", {{{"path", "/x"}}})),
            "inputs[0]: needs exactly one of 'url' and 'content'");
  EXPECT_EQ(refusal(with("inputs", {{{"path", "/x"}, {"url", "ftp://h/x"}}})),
            "inputs[0].url: 'ftp://h/x': expected file://, http://, https:// or sha256:<digest>");
  EXPECT_EQ(refusal(with("inputs", {{{"path", "/x"}, {"content", std::string(200 << 10, 'a')}}})),
            "inputs[0].content: larger than 131072 bytes");
  EXPECT_EQ(refusal(with("outputs", {{{"path", "/o/*"}, {"url", "omicsd:objects"}}})),
            "outputs[0].path_prefix: required when 'path' has wildcards");
  EXPECT_EQ(refusal(with("outputs", {{{"path", "/o"}, {"url", "s3://b/k"}}})),
            "outputs[0].url: 's3://b/k': expected file:///absolute/path or omicsd:objects");
  EXPECT_EQ(refusal(with("resources", {{"cpu_cores", 1.5}})),
            "resources.cpu_cores: must be an integer from 0 to 4096");
  EXPECT_EQ(refusal(with("resources", {{"ram_gb", "8"}})),
            "resources.ram_gb: must be a number from 0 to 1048576");
  EXPECT_EQ(refusal(with("resources", {{"backend_parameters", {{"gpu", "two"}}}})),
            "resources.backend_parameters.gpu: must be a number from 0 to 1024 (as a string), not 'two'");
  EXPECT_EQ(
      refusal(with("resources", {{"backend_parameters", {{"q", "x"}}}, {"backend_parameters_strict", true}})),
      "resources.backend_parameters.q: not supported (omicsd knows gpu, gpu_memory_gb)");
  EXPECT_EQ(refusal(with("resources", {{"backend_parameters", {{"q", "x"}}}})), "");  // not strict: ignored
  EXPECT_EQ(refusal(with("tags", {{"k", 1}})), "tags.k: must be a string");
  EXPECT_EQ(refusal(with("surprise", 1)), "surprise: unknown field");
  EXPECT_EQ(refusal(with("volumes", {"/ok", "rel"})), "volumes[]: must be an absolute path");
  json many = minimal_task();
  for (int i = 0; i < 65; ++i) many["executors"].push_back(many["executors"][0]);
  EXPECT_EQ(refusal(many), "executors: more than 64 entries");
}

TEST(TesTask, StatesAndViews) {
  omicsd::Run run;
  run.id = "run-1";
  run.inputs = {{"tes", parse_tes_task({{"name", "n"},
                                        {"inputs", {{{"content", "secret"}, {"path", "/c"}}}},
                                        {"executors", {{{"image", "a"}, {"command", {"x"}}}}}})}};
  Task task;
  task.state = TaskState::Queued;
  const json log = {{"state", "EXECUTOR_ERROR"},
                    {"logs", {{{"exit_code", 3}, {"stdout", "o"}, {"stderr", "e"}}}},
                    {"system_logs", {"executor 0 exited with code 3"}}};
  EXPECT_EQ(tes_state(run, &task, nullptr), "QUEUED");
  run.state = RunState::Running;
  EXPECT_EQ(tes_state(run, &task, nullptr), "QUEUED");  // waiting for a retry
  task.state = TaskState::Running;
  EXPECT_EQ(tes_state(run, &task, nullptr), "RUNNING");
  run.state = RunState::Complete;
  EXPECT_EQ(tes_state(run, &task, json{{"state", "COMPLETE"}}), "COMPLETE");
  EXPECT_EQ(tes_state(run, &task, log), "EXECUTOR_ERROR");
  run.state = RunState::Failed;
  EXPECT_EQ(tes_state(run, &task, nullptr), "SYSTEM_ERROR");
  run.state = RunState::Canceled;
  EXPECT_EQ(tes_state(run, &task, nullptr), "CANCELED");

  run.state = RunState::Complete;
  EXPECT_EQ(tes_task_view(run, &task, log, TesView::Minimal),
            (json{{"id", "run-1"}, {"state", "EXECUTOR_ERROR"}}));
  const json basic = tes_task_view(run, &task, log, TesView::Basic);
  EXPECT_FALSE(basic["inputs"][0].contains("content"));
  EXPECT_FALSE(basic["logs"][0]["logs"][0].contains("stdout"));
  EXPECT_EQ(basic["logs"][0]["logs"][0]["exit_code"], 3);
  EXPECT_FALSE(basic["logs"][0].contains("system_logs"));
  const json full = tes_task_view(run, &task, log, TesView::Full);
  EXPECT_EQ(full["inputs"][0]["content"], "secret");
  EXPECT_EQ(full["logs"][0]["logs"][0]["stderr"], "e");
  EXPECT_EQ(full["logs"][0]["system_logs"][0], "executor 0 exited with code 3");
  EXPECT_EQ(full["name"], "n");
  EXPECT_THROW(parse_tes_view("ALL"), InputError);
  EXPECT_EQ(rfc3339_ms(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
}

TEST(TesRuntime, HostRuntimeNeedsToBeEnabled) {
  EXPECT_THROW(parse_tes_runtime("host", false), InputError);
  EXPECT_EQ(parse_tes_runtime("host", true), TesRuntime::host);
  EXPECT_EQ(parse_tes_runtime("podman", false), TesRuntime::podman);
  EXPECT_EQ(parse_tes_runtime("", false), TesRuntime::none);
  EXPECT_THROW(parse_tes_runtime("lxc", true), InputError);
}

TEST(TesRuntime, MountPointsAreTheOutermostDirectories) {
  const json t = parse_tes_task(
      {{"inputs",
        {{{"url", "file:///r/a"}, {"path", "/data/in/a.txt"}},
         {{"url", "file:///r/d"}, {"path", "/ref"}, {"type", "DIRECTORY"}}}},
       {"outputs", {{{"url", "omicsd:objects"}, {"path", "/data/out/*.vcf"}, {"path_prefix", "/data/out"}}}},
       {"volumes", {"/data", "/scratch"}},
       {"executors",
        {{{"image", "a"}, {"command", {"x"}}, {"workdir", "/work/dir"}, {"stdout", "/logs/o.txt"}}}}});
  EXPECT_EQ(tes_mount_points(t),
            (std::vector<std::string>{"/data", "/logs", "/ref", "/scratch", "/work/dir"}));
}

TEST(TesRuntime, ContainerCommandLines) {
  const json t = parse_tes_task({{"inputs", {{{"content", "x"}, {"path", "/data/in.txt"}}}},
                                 {"volumes", {"/scratch"}},
                                 {"executors",
                                  {{{"image", "quay.io/biocontainers/samtools:1.19"},
                                    {"command", {"samtools", "view", "/data/in.txt"}},
                                    {"workdir", "/data"},
                                    {"env", {{"A", "1"}, {"B", "two words"}}},
                                    {"stdout", "/data/out.sam"}}}}});
  for (TesRuntime rt : {TesRuntime::docker, TesRuntime::podman}) {
    const ExecutorLaunch l = tes_executor_launch(rt, t, 0, "/w/task/root", "omicsd-tes-x-0");
    const std::string tool = rt == TesRuntime::docker ? "docker" : "podman";
    EXPECT_EQ(l.argv, (std::vector<std::string>{tool,
                                                "run",
                                                "--rm",
                                                "-i",
                                                "--name",
                                                "omicsd-tes-x-0",
                                                "-w",
                                                "/data",
                                                "-v",
                                                "/w/task/root/data:/data",
                                                "-v",
                                                "/w/task/root/scratch:/scratch",
                                                "-e",
                                                "A=1",
                                                "-e",
                                                "B=two words",
                                                "quay.io/biocontainers/samtools:1.19",
                                                "samtools",
                                                "view",
                                                "/data/in.txt"}));
    EXPECT_EQ(l.stdout_path, "/w/task/root/data/out.sam");  // the worker maps the container's streams
    EXPECT_TRUE(l.env.empty());
    EXPECT_EQ(l.container_name, "omicsd-tes-x-0");
  }
  EXPECT_THROW(tes_executor_launch(TesRuntime::none, t, 0, "/w", "n"), InputError);
  // A task that asks for a GPU gets the worker's GPUs in the container.
  const json gpu = parse_tes_task(
      {{"resources", {{"backend_parameters", {{"gpu", "1"}}}, {"cpu_cores", 2}, {"ram_gb", 1.5}}},
       {"executors", {{{"image", "omicsd:0.1.0"}, {"command", {"omicsd", "run"}}}}}});
  const auto d = tes_executor_launch(TesRuntime::docker, gpu, 0, "/w", "n").argv;
  EXPECT_EQ(std::vector<std::string>(d.begin() + 6, d.begin() + 12),
            (std::vector<std::string>{"--cpus", "2", "--memory", "1536m", "--gpus", "all"}));
  const auto p = tes_executor_launch(TesRuntime::podman, gpu, 0, "/w", "n").argv;
  EXPECT_EQ(std::vector<std::string>(p.begin() + 10, p.begin() + 12),
            (std::vector<std::string>{"--device", "nvidia.com/gpu=all"}));
}

TEST(TesRuntime, HostRuntimeRewritesTaskPaths) {
  const std::vector<std::string> mounts = {"/data", "/ref"};
  EXPECT_EQ(rewrite_task_paths("cat /data/a > /data/b", mounts, "/R"), "cat /R/data/a > /R/data/b");
  EXPECT_EQ(rewrite_task_paths("--in=/ref/x.fa", mounts, "/R"), "--in=/R/ref/x.fa");
  EXPECT_EQ(rewrite_task_paths("/data", mounts, "/R"), "/R/data");
  EXPECT_EQ(rewrite_task_paths("'/data/q'", mounts, "/R"), "'/R/data/q'");
  // Not a task path: another directory with the same prefix, or a path inside a word.
  EXPECT_EQ(rewrite_task_paths("/database /usr/data/x a/data", mounts, "/R"), "/database /usr/data/x a/data");
  const json t = parse_tes_task({{"inputs", {{{"content", "x"}, {"path", "/data/in.txt"}}}},
                                 {"executors",
                                  {{{"image", "a"},
                                    {"command", {"sh", "-c", "cat /data/in.txt"}},
                                    {"workdir", "/data"},
                                    {"env", {{"IN", "/data/in.txt"}}}}}}});
  const ExecutorLaunch l = tes_executor_launch(TesRuntime::host, t, 0, "/R", "");
  EXPECT_EQ(l.argv, (std::vector<std::string>{"sh", "-c", "cat /R/data/in.txt"}));
  EXPECT_EQ(l.env.at("IN"), "/R/data/in.txt");
  EXPECT_EQ(l.cwd, "/R/data");
}

struct ExecutorEnv {
  test::TempDir dir;
  std::filesystem::path roots = dir.path / "roots";
  ObjectStore store{dir.path / "objects"};
  TesExecutor executor{store, [&] {
                         std::filesystem::create_directories(roots);
                         TesExecutorOptions o;
                         o.runtime = TesRuntime::host;
                         o.allow_roots = {roots};
                         o.work_dir = dir.path / "tes";
                         o.max_input_bytes = 1 << 20;
                         return o;
                       }()};
  std::atomic<bool> cancel{false};
};

TEST(TesExecutor, RunsExecutorsInOrderAndDeliversOutputs) {
  ExecutorEnv env;
  { std::ofstream(env.roots / "in.txt") << "b\na\n"; }
  const json t = parse_tes_task(
      {{"inputs",
        {{{"url", "file://" + (env.roots / "in.txt").string()}, {"path", "/data/in.txt"}},
         {{"content", "c\n"}, {"path", "/data/more.txt"}}}},
       {"outputs",
        {{{"url", "file://" + (env.roots / "out" / "sorted.txt").string()}, {"path", "/data/sorted.txt"}},
         {{"url", "omicsd:objects"}, {"path", "/data/n.txt"}}}},
       {"executors",
        {{{"image", "a"},
          {"command", {"sh", "-c", "cat /data/in.txt /data/more.txt | sort"}},
          {"stdout", "/data/sorted.txt"}},
         {{"image", "a"},
          {"command", {"sh", "-c", "wc -l < sorted.txt > n.txt; echo $X >&2"}},
          {"workdir", "/data"},
          {"env", {{"X", "from-env"}}}}}}});
  const TesRunResult r = env.executor.run(t, "run-a/tes", env.cancel);
  EXPECT_EQ(r.log["state"], "COMPLETE");
  EXPECT_EQ(read_file(env.roots / "out" / "sorted.txt"), "a\nb\nc\n");
  ASSERT_EQ(r.log["logs"].size(), 2u);
  EXPECT_EQ(r.log["logs"][0]["stdout"], "a\nb\nc\n");  // the stdout file's tail
  EXPECT_EQ(r.log["logs"][1]["stderr"], "from-env\n");
  EXPECT_EQ(r.log["outputs"][0]["size_bytes"], "6");
  const std::string digest = r.log["outputs"][1]["url"];
  EXPECT_EQ(read_file(env.store.path_of(digest)), "3\n");
  // The log is itself an object of the store, as the daemon reads it.
  EXPECT_EQ(json::parse(read_file(env.store.path_of(r.objects.at("tes_log").digest))), r.log);
  // Nothing is left behind in the work directory.
  EXPECT_TRUE(std::filesystem::is_empty(env.dir.path / "tes"));
}

TEST(TesExecutor, AFailingExecutorStopsTheTask) {
  ExecutorEnv env;
  const json t =
      parse_tes_task({{"outputs", {{{"url", "omicsd:objects"}, {"path", "/o/x"}}}},
                      {"executors",
                       {{{"image", "a"}, {"command", {"sh", "-c", "exit 7"}}, {"ignore_error", true}},
                        {{"image", "a"}, {"command", {"sh", "-c", "echo no >&2; exit 5"}}},
                        {{"image", "a"}, {"command", {"touch", "/o/x"}}}}}});
  const TesRunResult r = env.executor.run(t, "t", env.cancel);
  EXPECT_EQ(r.log["state"], "EXECUTOR_ERROR");
  ASSERT_EQ(r.log["logs"].size(), 2u);
  EXPECT_EQ(r.log["logs"][0]["exit_code"], 7);
  EXPECT_EQ(r.log["logs"][1]["exit_code"], 5);
  EXPECT_EQ(r.log["logs"][1]["stderr"], "no\n");
  EXPECT_TRUE(r.log["outputs"].empty());
  // A command that does not exist is an executor error too (exit 127), not a worker failure.
  const json missing = parse_tes_task({{"executors", {{{"image", "a"}, {"command", {"/no/such/tool"}}}}}});
  EXPECT_EQ(env.executor.run(missing, "t", env.cancel).log["logs"][0]["exit_code"], 127);
}

TEST(TesExecutor, RefusesInputsAndOutputsOutsideTheRoots) {
  ExecutorEnv env;
  { std::ofstream(env.dir.path / "secret.txt") << "s"; }
  std::filesystem::create_symlink(env.dir.path / "secret.txt", env.roots / "link.txt");
  const json in =
      parse_tes_task({{"inputs", {{{"url", "file://" + (env.roots / "link.txt").string()}, {"path", "/x"}}}},
                      {"executors", {{{"image", "a"}, {"command", {"true"}}}}}});
  EXPECT_THROW(env.executor.run(in, "t", env.cancel), InputError);  // a link out of the root
  const json out = parse_tes_task(
      {{"outputs", {{{"url", "file://" + (env.dir.path / "o.txt").string()}, {"path", "/o/x"}}}},
       {"executors", {{{"image", "a"}, {"command", {"touch", "/o/x"}}}}}});
  EXPECT_THROW(env.executor.run(out, "t", env.cancel), InputError);
  EXPECT_FALSE(std::filesystem::exists(env.dir.path / "o.txt"));
  const json missing = parse_tes_task({{"outputs", {{{"url", "omicsd:objects"}, {"path", "/o/never"}}}},
                                       {"executors", {{{"image", "a"}, {"command", {"true"}}}}}});
  EXPECT_THROW(env.executor.run(missing, "t", env.cancel), InputError);
  const json big = parse_tes_task({{"inputs",
                                    {{{"content", std::string(100 << 10, 'x')}, {"path", "/a"}},
                                     {{"url", "file://" + (env.roots / "big").string()}, {"path", "/b"}}}},
                                   {"executors", {{{"image", "a"}, {"command", {"true"}}}}}});
  { std::ofstream(env.roots / "big") << std::string(1 << 20, 'y'); }
  EXPECT_THROW(env.executor.run(big, "t", env.cancel), InputError);  // over max_input_bytes together
}

// http(s):// inputs are fetched only from public addresses unless the operator allows a network
// (--tes-http-allow): a TES client must not reach the worker's loopback, private network or the
// cloud metadata service through it. The refusal is the client's error (InputError), made before
// any connection.
TEST(TesExecutor, HttpInputsFromLoopbackPrivateOrMetadataAddressesAreRefused) {
  ExecutorEnv env;
  for (const std::string host : {"127.0.0.1:9", "10.1.2.3:9", "169.254.169.254", "[::1]:9", "localhost:9"}) {
    const json t = parse_tes_task({{"inputs", {{{"url", "http://" + host + "/x"}, {"path", "/data/x"}}}},
                                   {"executors", {{{"image", "a"}, {"command", {"true"}}}}}});
    try {
      env.executor.run(t, "t", env.cancel);
      ADD_FAILURE() << host << " was fetched";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(": refused: "), std::string::npos) << e.what();
    }
  }
  // Allowed by the operator: the worker connects (nothing listens on port 9, so the fetch fails as a
  // system error, not as a refused input).
  ObjectStore store{env.dir.path / "objects2"};
  TesExecutorOptions o = env.executor.options();
  o.http_input_allow = {parse_cidr("127.0.0.0/8")};
  TesExecutor allowed(store, o);
  const json t = parse_tes_task({{"inputs", {{{"url", "http://127.0.0.1:9/x"}, {"path", "/data/x"}}}},
                                 {"executors", {{{"image", "a"}, {"command", {"true"}}}}}});
  try {
    allowed.run(t, "t", env.cancel);
    ADD_FAILURE() << "nothing listens on port 9";
  } catch (const InputError& e) {
    ADD_FAILURE() << "refused although allowed: " << e.what();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find(": refused: "), std::string::npos) << e.what();
  }
}

TEST(TesExecutor, CancelKillsTheExecutorsProcessGroup) {
  ExecutorEnv env;
  const std::filesystem::path pidfile = env.roots / "child.pid";
  // The shell starts a background sleep (same process group) and waits: both must die.
  const json t = parse_tes_task(
      {{"executors",
        {{{"image", "a"},
          {"command", {"sh", "-c", "sleep 60 & echo $! > " + pidfile.string() + "; wait"}}}}}});
  std::thread canceler([&] {
    while (!std::filesystem::exists(pidfile) || std::filesystem::file_size(pidfile) == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    env.cancel = true;
  });
  EXPECT_THROW(env.executor.run(t, "t", env.cancel), TesCanceled);
  canceler.join();
  const pid_t child = std::stoi(read_file(pidfile));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = ::kill(child, 0) != 0 ||
           read_file("/proc/" + std::to_string(child) + "/stat").find(") Z") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "the executor's background child survived the cancel";
}

TEST(TesJobStore, ATesRunHasOneTesTask) {
  test::TempDir dir;
  auto store = open_sqlite_job_store((dir.path / "jobs.db").string());
  NewRun n;
  n.workflow = kTesWorkflow;
  n.inputs = {{"tes", parse_tes_task(minimal_task())}};
  TaskSpec spec;
  spec.name = "tes";
  spec.kind = "tes";
  spec.requirements = {{"tes_runtime", true}, {"cpu_cores", 4}};
  n.tasks = {spec};
  const omicsd::Run run = store->create_run(n, 1000).run;
  // Leased only by a worker that offers a TES runtime and enough cores.
  EXPECT_FALSE(store->lease_task("w", {{"cpu", true}, {"cpu_cores", 64}}, 60, 2000));
  EXPECT_FALSE(store->lease_task("w", {{"tes_runtime", true}, {"cpu_cores", 2}}, 60, 2000));
  auto leased = store->lease_task("w", {{"tes_runtime", true}, {"cpu_cores", 8}}, 60, 2000);
  ASSERT_TRUE(leased);
  EXPECT_EQ(leased->task.kind, "tes");
  EXPECT_EQ(leased->run.id, run.id);
  EXPECT_EQ(default_tasks(kTesWorkflow).front().kind, "tes");
}

TEST(TesRuntime, HostBindPoints) {
  // Existing host directories are bound, unless they hold the task root; "/" and missing ones never.
  EXPECT_EQ(host_bind_points({"/", "/tmp", "/no/such/dir", "/var"}, "/var/lib/omicsd/tes/t/root", true),
            (std::vector<std::string>{"/tmp"}));
  EXPECT_TRUE(host_bind_points({"/tmp"}, "/srv/root", false).empty());
}

TEST(TesExecutor, HostRuntimeGivesTheTaskItsOwnTmp) {
  if (!user_namespaces_available()) GTEST_SKIP() << "no unprivileged user namespaces on this kernel";
  test::TempDir dir;
  ObjectStore store(dir.path / "objects");
  // Task roots outside /tmp: a root below a bound directory would be hidden by the bind.
  const std::filesystem::path work =
      std::filesystem::current_path() / ("tes-ns-" + std::to_string(::getpid()));
  TesExecutorOptions o;
  o.runtime = TesRuntime::host;
  o.work_dir = work;
  TesExecutor executor(store, o);
  std::atomic<bool> cancel{false};
  const std::string name = "omicsd-tes-ns-" + std::to_string(::getpid()) + ".txt";
  const json t = parse_tes_task(
      {{"inputs", {{{"content", "in tmp\n"}, {"path", "/tmp/" + name}}}},
       {"outputs", {{{"url", "omicsd:objects"}, {"path", "/tmp/copy.txt"}}}},
       {"executors",
        {{{"image", "a"},
          {"command", {"sh", "-c", "mkdir /tmp/conda && cd /tmp && cp " + name + " copy.txt"}}},
         {{"image", "a"}, {"command", {"sh", "-c", "test -d /tmp/conda && ls /tmp"}}}}}});
  for (int round = 0; round < 2; ++round) {  // a second task gets a fresh /tmp (mkdir succeeds again)
    const TesRunResult r = executor.run(t, "t", cancel);
    ASSERT_EQ(r.log["state"], "COMPLETE") << r.log.dump();
    EXPECT_EQ(read_file(store.path_of(r.log["outputs"][0]["url"])), "in tmp\n");
    EXPECT_EQ(r.log["logs"][1]["stdout"], "conda\ncopy.txt\n" + name + "\n");
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/" + name));  // the host's /tmp never saw it
  std::filesystem::remove_all(work);
}
