#include "service/runner/tes_executor.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "host/common/error.hpp"
#include "service/http/http_client.hpp"
#include "service/http/http_router.hpp"
#include "service/jobs/tes_task.hpp"
#include "service/util/clock.hpp"
#include "service/util/ids.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path under(const fs::path& root, const std::string& task_path) {
  return fs::path(root.string() + task_path);
}

// file:///abs/path (or file://localhost/abs/path), percent-decoded; throws InputError otherwise.
fs::path file_url_path(const std::string& url, const std::string& what) {
  std::string rest = url.substr(std::strlen("file://"));
  if (rest.rfind("localhost/", 0) == 0) rest = rest.substr(std::strlen("localhost"));
  if (rest.empty() || rest.front() != '/')
    throw InputError(what + ": '" + url + "' is not a file:///absolute/path");
  const std::string p = http::percent_decode(rest);
  if (p.find('\0') != std::string::npos) throw InputError(what + ": NUL byte in '" + url + "'");
  return fs::path(p).lexically_normal();
}

// Copies everything from fd into `dst` (created, parents too), counting against `budget`.
void copy_fd_to(int fd, const fs::path& dst, uint64_t& budget, const std::string& what) {
  fs::create_directories(dst.parent_path());
  std::ofstream out(dst, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(what + ": cannot write " + dst.string());
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(what + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) break;
    if (uint64_t(n) > budget) throw InputError(what + ": inputs larger than the worker's limit");
    budget -= uint64_t(n);
    out.write(buf, n);
  }
  if (!out.flush()) throw Error(what + ": write failed: " + dst.string());
}

void copy_file_to(const fs::path& src, const fs::path& dst, uint64_t& budget, const std::string& what) {
  const int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(what + ": cannot open " + src.string() + ": " + std::strerror(errno));
  try {
    copy_fd_to(fd, dst, budget, what);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

// The last `n` bytes of a file ("" when it does not exist).
std::string tail_of(const fs::path& p, std::size_t n) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = size > std::streamoff(n) ? size - std::streamoff(n) : 0;
  in.seekg(from);
  std::string s(std::size_t(size - from), '\0');
  in.read(s.data(), std::streamsize(s.size()));
  return s;
}

struct Stream {
  int fd = -1;
  ~Stream() {
    if (fd >= 0) ::close(fd);
  }
};

int open_for_child(const fs::path& p, bool write) {
  if (write) fs::create_directories(p.parent_path());
  const int fd = write ? ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                       : ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError("cannot open " + p.string() + ": " + std::strerror(errno));
  return fd;
}

// Starts `l` in its own process group; returns the pid. The child dies with the worker thread that
// started it (PR_SET_PDEATHSIG), so a killed worker leaves no executor behind.
pid_t start(const ExecutorLaunch& l, const fs::path& out, const fs::path& err) {
  // The namespace's id maps: this user and group, nothing else (files keep the worker's owner).
  const std::string uid_map = std::to_string(::getuid()) + " " + std::to_string(::getuid()) + " 1";
  const std::string gid_map = std::to_string(::getgid()) + " " + std::to_string(::getgid()) + " 1";
  Stream in{open_for_child(l.stdin_path.empty() ? fs::path("/dev/null") : l.stdin_path, false)};
  Stream o{open_for_child(out, true)};
  Stream e{open_for_child(err, true)};
  std::vector<std::string> env_kv;
  for (const auto& [k, v] : l.env) env_kv.push_back(k + "=" + v);
  std::vector<char*> argv;
  for (const std::string& a : l.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {  // child: only async-signal-safe calls until exec
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(in.fd, 0);
    ::dup2(o.fd, 1);
    ::dup2(e.fd, 2);
    if (!l.binds.empty()) {
      auto fail = [](const char* msg, std::size_t n) {
        (void)!::write(2, msg, n);
        ::_exit(125);
      };
      auto write_file = [](const char* path, const std::string& text) {
        const int fd = ::open(path, O_WRONLY);
        const bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == ssize_t(text.size());
        if (fd >= 0) ::close(fd);
        return ok;
      };
      static const char ns_msg[] = "omicsd tes: cannot create the executor's user/mount namespace\n";
      static const char bind_msg[] = "omicsd tes: cannot bind the task's directories\n";
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0 || !write_file("/proc/self/setgroups", "deny") ||
          !write_file("/proc/self/uid_map", uid_map) || !write_file("/proc/self/gid_map", gid_map) ||
          ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        fail(ns_msg, sizeof ns_msg - 1);
      for (const auto& [src, dst] : l.binds)
        if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
          fail(bind_msg, sizeof bind_msg - 1);
    }
    if (::chdir(l.cwd.c_str()) != 0) {
      const char msg[] = "omicsd tes: cannot enter the executor's workdir\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(126);
    }
    for (std::string& kv : env_kv) ::putenv(kv.data());
    ::execvp(argv[0], argv.data());
    const char msg[] = "omicsd tes: cannot execute the executor's command\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, so a kill right after fork reaches the group
  return pid;
}

// Runs `<runtime> <verb> <name>` and waits for it, output discarded; best effort.
void container_command(TesRuntime rt, const char* verb, const char* flag, const std::string& name) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execlp(to_string(rt), to_string(rt), verb, flag, name.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (pid > 0) ::waitpid(pid, nullptr, 0);
}

// Stops and removes a container by name. The container outlives the runtime client the worker
// started (`run --rm`'s removal is the client's or, with podman, conmon's job, and the client is
// killed too), so kill (SIGKILL in docker and podman) and then `rm -f` whatever is left.
void kill_container(TesRuntime rt, const std::string& name) {
  container_command(rt, "kill", "--", name);
  container_command(rt, "rm", "-f", name);
}

// Waits for the executor; on cancel kills its process group (TERM, then KILL after 2 s).
int wait_executor(pid_t pid, const ExecutorLaunch& l, TesRuntime rt, const std::atomic<bool>& cancel,
                  bool& canceled) {
  using namespace std::chrono;
  std::optional<steady_clock::time_point> term_sent;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      ::kill(-pid, SIGKILL);  // whatever the executor left running in its group
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0 && errno != EINTR) throw Error(std::string("waitpid failed: ") + std::strerror(errno));
    if (cancel.load() && !term_sent) {
      canceled = true;
      if (!l.container_name.empty()) kill_container(rt, l.container_name);
      ::kill(-pid, SIGTERM);
      term_sent = steady_clock::now();
    }
    if (term_sent && steady_clock::now() - *term_sent > seconds(2)) ::kill(-pid, SIGKILL);
    std::this_thread::sleep_for(milliseconds(50));
  }
}

// Every regular file below `dir` (links inside followed only if they are files), relative paths.
std::vector<fs::path> files_below(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file() || it->is_symlink()) out.push_back(fs::relative(it->path(), dir));
  std::sort(out.begin(), out.end());
  return out;
}

bool has_wildcard(const std::string& p) { return p.find_first_of("*?[") != std::string::npos; }

}  // namespace

TesExecutor::TesExecutor(ObjectStore& store, TesExecutorOptions options)
    : store_(store), options_(std::move(options)) {
  if (options_.work_dir.empty()) options_.work_dir = store_.root() / "tes";
}

TesRunResult TesExecutor::run(const json& task, const std::string& task_id, const std::atomic<bool>& cancel) {
  std::string safe_id;
  for (char c : task_id) safe_id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  const fs::path dir = options_.work_dir / (safe_id.substr(0, 64) + "-" + random_hex(8));
  const fs::path root = dir / "root";
  fs::create_directories(root);
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } cleanup{dir, options_.keep_task_dirs};

  json log = {{"start_time", rfc3339_ms(now_ms())},
              {"logs", json::array()},
              {"outputs", json::array()},
              {"system_logs", json::array()}};
  TesRunResult result;

  // --- Inputs.
  uint64_t budget = options_.max_input_bytes;
  const json inputs = task.value("inputs", json::array());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const json& in = inputs[i];
    const std::string what =
        "inputs[" + std::to_string(i) + "] (" + in.value("url", std::string("content")) + ")";
    const fs::path dst = under(root, in["path"].get<std::string>());
    if (cancel.load()) throw TesCanceled();
    if (in.contains("content")) {
      const std::string& c = in["content"].get_ref<const std::string&>();
      if (c.size() > budget) throw InputError(what + ": inputs larger than the worker's limit");
      budget -= c.size();
      fs::create_directories(dst.parent_path());
      std::ofstream(dst, std::ios::binary) << c;
      continue;
    }
    const std::string url = in["url"].get<std::string>();
    if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {
      const std::size_t path_at = url.find('/', url.find("://") + 3);
      HttpClientOptions ho;
      ho.base_url = url.substr(0, path_at);
      ho.max_attempts = 3;
      ho.connect_policy = [policy = AddressPolicy(options_.http_input_allow)](const std::string& ip) {
        return policy.refusal(ip);
      };
      HttpClient client(ho);
      fs::create_directories(dst.parent_path());
      uint64_t n = 0;
      try {
        n = client.download(path_at == std::string::npos ? "/" : url.substr(path_at), dst);
      } catch (const HttpClientError& e) {
        // A 4xx, or an address the worker may not connect to: the client's input is wrong.
        if ((e.status() >= 400 && e.status() < 500) ||
            (e.status() == 0 && std::string(e.what()).find(": refused: ") != std::string::npos))
          throw InputError(what + ": " + e.what());
        throw Error(what + ": " + e.what());
      }
      if (n > budget) throw InputError(what + ": inputs larger than the worker's limit");
      budget -= n;
    } else if (url.rfind("sha256:", 0) == 0) {
      if (!store_.has(url)) throw InputError(what + ": no such object in this worker's object store");
      copy_file_to(store_.path_of(url), dst, budget, what);
    } else if (in.value("type", std::string("FILE")) == "DIRECTORY") {
      const fs::path src = file_url_path(url, what);
      std::error_code ec;
      const fs::path canon = fs::weakly_canonical(src, ec);
      bool ok = !ec && fs::is_directory(canon);
      bool within = false;
      for (const fs::path& r : options_.allow_roots) within = within || path_is_within(canon, r);
      if (!ok || !within) throw InputError(what + ": not a directory under the allowed roots");
      fs::create_directories(dst);
      for (const fs::path& rel : files_below(src)) {
        // Each file is opened beneath the roots: a link out of them is refused, never read.
        RootedFile f = open_within_roots(src / rel, options_.allow_roots, what + " " + rel.string());
        copy_fd_to(f.fd(), dst / rel, budget, what);
      }
    } else {
      const fs::path src = file_url_path(url, what);
      RootedFile f = open_within_roots(src, options_.allow_roots, what);
      copy_fd_to(f.fd(), dst, budget, what);
    }
  }
  for (const std::string& m : tes_mount_points(task)) fs::create_directories(under(root, m));

  // Host runtime: mount points that exist on this host are bound in a private namespace.
  const std::vector<std::string> bound =
      options_.runtime == TesRuntime::host
          ? host_bind_points(tes_mount_points(task), root,
                             options_.host_namespaces && user_namespaces_available())
          : std::vector<std::string>{};

  // --- Executors, in order; the first failing one (without ignore_error) ends the task.
  std::string state = "COMPLETE";
  const json& executors = task["executors"];
  for (std::size_t i = 0; i < executors.size(); ++i) {
    if (cancel.load()) throw TesCanceled();
    const json& e = executors[i];
    const ExecutorLaunch l = tes_executor_launch(
        options_.runtime, task, i, root,
        "omicsd-tes-" + safe_id.substr(0, 40) + "-" + std::to_string(i) + "-" + random_hex(6), bound);
    const fs::path out =
        l.stdout_path.empty() ? dir / ("executor-" + std::to_string(i) + ".stdout") : l.stdout_path;
    const fs::path err =
        l.stderr_path.empty() ? dir / ("executor-" + std::to_string(i) + ".stderr") : l.stderr_path;
    json el = {{"start_time", rfc3339_ms(now_ms())}};
    int code = 0;
    bool canceled = false;
    try {
      const pid_t pid = start(l, out, err);
      code = wait_executor(pid, l, options_.runtime, cancel, canceled);
    } catch (const InputError& ex) {  // a stdin that does not exist: the executor fails, not the system
      code = 126;
      std::ofstream(err, std::ios::app) << "omicsd tes: " << ex.what() << "\n";
    }
    if (canceled) throw TesCanceled();
    el["end_time"] = rfc3339_ms(now_ms());
    el["exit_code"] = code;
    el["stdout"] = tail_of(out, options_.log_tail_bytes);
    el["stderr"] = tail_of(err, options_.log_tail_bytes);
    log["logs"].push_back(el);
    if (code != 0 && !e.value("ignore_error", false)) {
      state = "EXECUTOR_ERROR";
      log["system_logs"].push_back("executor " + std::to_string(i) + " exited with code " +
                                   std::to_string(code));
      break;
    }
  }

  // --- Outputs (only when every executor succeeded: a failed task delivers nothing).
  if (state == "COMPLETE") {
    uint64_t out_budget = options_.max_output_bytes;
    const json outputs = task.value("outputs", json::array());
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const json& o = outputs[i];
      const std::string path = o["path"].get<std::string>();
      const std::string url = o["url"].get<std::string>();
      const std::string what = "outputs[" + std::to_string(i) + "] (" + path + ")";
      // (task path, file on this host) of every file this output names.
      std::vector<std::pair<std::string, fs::path>> files;
      const std::string prefix = o.value("path_prefix", std::string());
      if (has_wildcard(path)) {
        std::string base = path.substr(0, path.find_first_of("*?["));
        base = base.substr(0, base.find_last_of('/'));
        for (const fs::path& rel : files_below(under(root, base.empty() ? "/" : base))) {
          const std::string p = (base.empty() ? "" : base) + "/" + rel.string();
          if (::fnmatch(path.c_str(), p.c_str(), FNM_PATHNAME) == 0) files.emplace_back(p, under(root, p));
        }
      } else if (o.value("type", std::string("FILE")) == "DIRECTORY") {
        const fs::path d = under(root, path);
        if (!fs::is_directory(d)) throw InputError(what + ": the executors did not create this directory");
        for (const fs::path& rel : files_below(d)) files.emplace_back(path + "/" + rel.string(), d / rel);
      } else {
        const fs::path f = under(root, path);
        if (!fs::is_regular_file(f)) throw InputError(what + ": the executors did not create this file");
        files.emplace_back(path, f);
      }
      for (const auto& [task_path, host] : files) {
        std::error_code ec;
        const uint64_t size = fs::file_size(host, ec);
        if (ec) throw InputError(what + ": cannot read " + task_path);
        if (size > out_budget) throw InputError(what + ": outputs larger than the worker's limit");
        out_budget -= size;
        // Where this file goes: the URL itself for a single file, else the URL as a directory plus
        // the file's path below the output (or below path_prefix for globs).
        std::string rel;
        if (has_wildcard(path))
          rel = task_path.substr(prefix.size());
        else if (o.value("type", std::string("FILE")) == "DIRECTORY")
          rel = task_path.substr(path.size());
        while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
        std::string dest_url;
        if (is_object_store_output_url(url)) {
          const ObjectRef ref = store_.put_file(host, ObjectStore::Mode::Copy);
          result.objects["output-" + std::to_string(result.objects.size())] = ref;
          dest_url = ref.digest;
        } else {
          fs::path dest = file_url_path(url, what);
          if (!rel.empty()) dest /= rel;
          dest = dest.lexically_normal();
          bool within = false;
          for (const fs::path& r : options_.allow_roots) within = within || path_is_within(dest, r);
          if (!within) throw InputError(what + ": " + dest.string() + " is outside the allowed roots");
          fs::create_directories(dest.parent_path());
          // The directory, resolved now, must still be inside the roots (no link out of them).
          const fs::path parent = fs::canonical(dest.parent_path());
          within = false;
          for (const fs::path& r : options_.allow_roots) within = within || path_is_within(parent, r);
          if (!within) throw InputError(what + ": " + dest.string() + " leads outside the allowed roots");
          const fs::path tmp = parent / (".omicsd-tes-" + random_hex(12) + ".tmp");
          uint64_t unlimited = UINT64_MAX;
          copy_file_to(host, tmp, unlimited, what);
          fs::rename(tmp, parent / dest.filename());
          dest_url = "file://" + (parent / dest.filename()).string();
        }
        log["outputs"].push_back(
            {{"url", dest_url}, {"path", task_path}, {"size_bytes", std::to_string(size)}});
      }
    }
  }
  log["state"] = state;
  log["end_time"] = rfc3339_ms(now_ms());
  result.objects["tes_log"] = store_.put_bytes(log.dump());
  result.log = std::move(log);
  return result;
}

}  // namespace omicsd
