#pragma once
// Where a TES executor runs (chosen by the operator: `--task-runtime host|docker|podman`) and the
// command line that starts it. Every absolute path a task names (inputs, outputs, volumes, workdir,
// stdin/stdout/stderr) lives under the task's root directory on the worker: a container runtime
// bind-mounts the task's mount points from there (`-v <root><dir>:<dir>`). The host runtime runs the
// command on the worker itself (trusted single-tenant setups and tests only, refused unless enabled):
// a mount point that exists on the host (e.g. /tmp) is bind-mounted from the task root in a private
// user + mount namespace where the kernel allows one, so scripts see the task's own /tmp; every other
// task path is rewritten to <root><path> in the command's arguments and environment.
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
  // Host runtime: (host directory, task directory) bind mounts made in a private user + mount
  // namespace before the command starts (empty: no namespace).
  std::vector<std::pair<std::string, std::string>> binds;
};

// The launch of executor `index` of `task` under `root`. Container runtimes: `<rt> run --rm -i
// --name <name> [--cpus N] [--memory Mm] [--gpus all | --device nvidia.com/gpu=all] -w <workdir> -v
// <root><m>:<m> ... -e K=V ... <image> <command...>` (the GPU flag when backend_parameters ask for a GPU),
// the streams mapped by the worker; host: the command itself with task paths rewritten, cwd <root><workdir>.
// Host runtime: `bound` are the mount points bind-mounted in a namespace (host_bind_points); the
// others are rewritten.
ExecutorLaunch tes_executor_launch(TesRuntime rt, const nlohmann::json& task, std::size_t index,
                                   const std::filesystem::path& root, const std::string& container_name,
                                   const std::vector<std::string>& bound = {});

// The mount points the host runtime binds: those that are directories on this host, are not "/", and
// do not contain the task root (which must stay visible for the rewritten paths). Empty when
// `namespaces` is false.
std::vector<std::string> host_bind_points(const std::vector<std::string>& mounts,
                                          const std::filesystem::path& root, bool namespaces);

// Whether this process may create a user + mount namespace (unprivileged user namespaces enabled):
// probed once by a child process.
bool user_namespaces_available();

// Host runtime: `s` with every task path (mount point) that starts a path in it (at the start of
// `s` or after a character that cannot be part of a path) replaced by <root><path>.
std::string rewrite_task_paths(const std::string& s, const std::vector<std::string>& mounts,
                               const std::filesystem::path& root);

}  // namespace omicsd
