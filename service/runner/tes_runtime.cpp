#include "service/runner/tes_runtime.hpp"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;

std::string parent_of(const std::string& p) {
  const std::size_t slash = p.find_last_of('/');
  return slash == 0 || slash == std::string::npos ? "/" : p.substr(0, slash);
}

// The part of a path before its first wildcard component (outputs with globs).
std::string before_wildcards(const std::string& p) {
  const std::size_t w = p.find_first_of("*?[");
  if (w == std::string::npos) return p;
  return parent_of(p.substr(0, w + 1));
}

bool inside(const std::string& p, const std::string& dir) {
  if (dir == "/") return true;
  return p == dir || (p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/');
}

// Characters that can be part of a path: a task path preceded by one of them is part of another word.
bool path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/';
}

}  // namespace

TesRuntime parse_tes_runtime(const std::string& s, bool allow_host) {
  if (s.empty() || s == "none") return TesRuntime::none;
  if (s == "docker") return TesRuntime::docker;
  if (s == "podman") return TesRuntime::podman;
  if (s == "host") {
    if (!allow_host)
      throw InputError(
          "--task-runtime host runs client commands directly on this host; pass --allow-host-runtime "
          "to enable it (trusted single-tenant setups and tests only)");
    return TesRuntime::host;
  }
  throw InputError("--task-runtime must be host, docker or podman, not '" + s + "'");
}

const char* to_string(TesRuntime r) {
  switch (r) {
    case TesRuntime::host:
      return "host";
    case TesRuntime::docker:
      return "docker";
    case TesRuntime::podman:
      return "podman";
    case TesRuntime::none:
      break;
  }
  return "none";
}

std::vector<std::string> tes_mount_points(const json& task) {
  std::vector<std::string> dirs;
  auto add_file_parent = [&](const json& f) {
    const std::string p = f.value("path", std::string("/"));
    const std::string base = before_wildcards(p);
    dirs.push_back(f.value("type", std::string("FILE")) == "DIRECTORY" || base != p ? base : parent_of(p));
  };
  for (const char* k : {"inputs", "outputs"})
    if (task.contains(k))
      for (const json& f : task[k]) add_file_parent(f);
  if (task.contains("volumes"))
    for (const json& v : task["volumes"]) dirs.push_back(v.get<std::string>());
  if (task.contains("executors"))
    for (const json& e : task["executors"]) {
      if (e.contains("workdir")) dirs.push_back(e["workdir"].get<std::string>());
      for (const char* k : {"stdin", "stdout", "stderr"})
        if (e.contains(k)) dirs.push_back(parent_of(e[k].get<std::string>()));
    }
  for (std::string& d : dirs)
    while (d.size() > 1 && d.back() == '/') d.pop_back();
  std::sort(dirs.begin(), dirs.end());
  dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
  std::vector<std::string> out;
  for (const std::string& d : dirs)  // sorted: a directory comes before everything inside it
    if (out.empty() || !inside(d, out.back())) out.push_back(d);
  return out;
}

std::string rewrite_task_paths(const std::string& s, const std::vector<std::string>& mounts,
                               const std::filesystem::path& root) {
  const std::string r = root.string();
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    bool replaced = false;
    if (s[i] == '/' && (i == 0 || !path_char(s[i - 1]))) {
      for (const std::string& m : mounts) {
        const std::size_t n = m == "/" ? 1 : m.size();
        if (s.compare(i, n, m == "/" ? "/" : m) == 0 &&
            (m == "/" || i + n == s.size() || !path_char(s[i + n]) || s[i + n] == '/')) {
          out += r;
          out += s.substr(i, n);
          i += n;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += s[i++];
  }
  return out;
}

std::vector<std::string> host_bind_points(const std::vector<std::string>& mounts,
                                          const std::filesystem::path& root, bool namespaces) {
  std::vector<std::string> out;
  if (!namespaces) return out;
  for (const std::string& m : mounts) {
    std::error_code ec;
    if (m != "/" && std::filesystem::is_directory(m, ec) && !inside(root.string(), m)) out.push_back(m);
  }
  return out;
}

bool user_namespaces_available() {
  static const bool available = [] {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(::unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0 ? 0 : 1);
    int status = 0;
    return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }();
  return available;
}

ExecutorLaunch tes_executor_launch(TesRuntime rt, const json& task, std::size_t index,
                                   const std::filesystem::path& root, const std::string& container_name,
                                   const std::vector<std::string>& bound) {
  const json& e = task.at("executors").at(index);
  std::vector<std::string> mounts = tes_mount_points(task);
  ExecutorLaunch l;
  auto host_path = [&](const std::string& p) { return std::filesystem::path(root.string() + p); };
  for (const char* k : {"stdin", "stdout", "stderr"}) {
    if (!e.contains(k)) continue;
    std::filesystem::path& dst = k[3] == 'i' ? l.stdin_path : k[3] == 'o' ? l.stdout_path : l.stderr_path;
    dst = host_path(e[k].get<std::string>());
  }
  const std::string workdir = e.value("workdir", std::string());
  if (rt == TesRuntime::host) {
    // Bound mount points keep their names (the namespace shows the task's directory there).
    std::erase_if(mounts,
                  [&](const std::string& m) { return std::count(bound.begin(), bound.end(), m) > 0; });
    for (const std::string& b : bound) l.binds.emplace_back(host_path(b).string(), b);
    for (const json& a : e["command"])
      l.argv.push_back(rewrite_task_paths(a.get<std::string>(), mounts, root));
    if (e.contains("env"))
      for (const auto& [k, v] : e["env"].items())
        l.env[k] = rewrite_task_paths(v.get<std::string>(), mounts, root);
    bool workdir_bound = false;
    for (const std::string& b : bound)
      workdir_bound = workdir_bound || (!workdir.empty() && inside(workdir, b));
    l.cwd = workdir.empty() ? root : workdir_bound ? std::filesystem::path(workdir) : host_path(workdir);
    return l;
  }
  if (rt != TesRuntime::docker && rt != TesRuntime::podman)
    throw InputError("this worker has no TES task runtime (--task-runtime)");
  l.container_name = container_name;
  l.argv = {to_string(rt), "run", "--rm", "-i", "--name", container_name};
  // A task that asked for GPUs (backend_parameters "gpu") gets the worker's GPUs: NVIDIA's container
  // toolkit for docker, its CDI devices for podman.
  const json bp = task.contains("resources") ? task["resources"].value("backend_parameters", json::object())
                                             : json::object();
  // The task's cores and memory are limits of its containers too (the host runtime only matches them).
  const json res = task.value("resources", json::object());
  if (res.contains("cpu_cores") && res["cpu_cores"].get<int64_t>() > 0)
    l.argv.insert(l.argv.end(), {"--cpus", std::to_string(res["cpu_cores"].get<int64_t>())});
  if (res.contains("ram_gb") && res["ram_gb"].get<double>() > 0)
    l.argv.insert(l.argv.end(),
                  {"--memory", std::to_string(int64_t(res["ram_gb"].get<double>() * 1024 + 0.5)) + "m"});
  if (bp.contains("gpu") && std::strtod(bp["gpu"].get<std::string>().c_str(), nullptr) > 0) {
    if (rt == TesRuntime::docker)
      l.argv.insert(l.argv.end(), {"--gpus", "all"});
    else
      l.argv.insert(l.argv.end(), {"--device", "nvidia.com/gpu=all"});
  }
  if (!workdir.empty()) l.argv.insert(l.argv.end(), {"-w", workdir});
  for (const std::string& m : mounts) l.argv.insert(l.argv.end(), {"-v", root.string() + m + ":" + m});
  if (e.contains("env"))
    for (const auto& [k, v] : e["env"].items())
      l.argv.insert(l.argv.end(), {"-e", k + "=" + v.get<std::string>()});
  l.argv.push_back(e["image"].get<std::string>());
  for (const json& a : e["command"]) l.argv.push_back(a.get<std::string>());
  l.cwd = root;
  return l;
}

}  // namespace omicsd
