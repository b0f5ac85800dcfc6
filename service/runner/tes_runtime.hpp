#pragma once
// Where a TES executor runs (chosen by the operator: `--task-runtime host|docker|podman`) and the
// command line that starts it. Every absolute path a task names (inputs, outputs, volumes, workdir,
// stdin/stdout/stderr) lives under the task's root directory on the worker: a container runtime
// bind-mounts the task's mount points from there (`-v <root><dir>:<dir>`); the host runtime runs the
// command on the worker itself with those paths rewritten to <root><path> in its arguments and
// environment (trusted single-tenant setups and tests only, refused unless enabled).
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace omicsd {

enum class TesRuntime { none, host, docker, podman };
// "host" | "docker" | "podman" (| "" or "none": no TES tasks); throws InputError otherwise, and for
// "host" unless allow_host (--allow-host-runtime): it runs client commands on the worker host.
TesRuntime parse_tes_runtime(const std::string& s, bool allow_host);
const char* to_string(TesRuntime r);

// The directories a task's paths need: volumes, DIRECTORY inputs/outputs, the parent directory of
// every FILE input/output and of each executor's workdir/stdin/stdout/stderr; none nested inside
// another (the outermost kept), sorted.
std::vector<std::string> tes_mount_points(const nlohmann::json& task);

// One executor, ready to start: argv, its environment additions, working directory and standard
// streams as worker paths (empty: none / captured).
struct ExecutorLaunch {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // added to the worker's environment (host runtime only)
  std::filesystem::path cwd;
  std::filesystem::path stdin_path, stdout_path, stderr_path;
  std::string container_name;  // docker/podman: the --name, so a cancel can `kill` it
};

// The launch of executor `index` of `task` under `root`. Container runtimes: `<rt> run --rm -i
// --name <name> -w <workdir> -v <root><m>:<m> ... -e K=V ... <image> <command...>`, the streams
// mapped by the worker; host: the command itself with task paths rewritten, cwd <root><workdir>.
ExecutorLaunch tes_executor_launch(TesRuntime rt, const nlohmann::json& task, std::size_t index,
                                   const std::filesystem::path& root, const std::string& container_name);

// Host runtime: `s` with every task path (mount point) that starts a path in it (at the start of
// `s` or after a character that cannot be part of a path) replaced by <root><path>.
std::string rewrite_task_paths(const std::string& s, const std::vector<std::string>& mounts,
                               const std::filesystem::path& root);

}  // namespace omicsd
