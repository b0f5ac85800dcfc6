#include "service/jobs/tes_task.hpp"

#include <cmath>
#include <ctime>
#include <set>

#include "host/common/error.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& field, const std::string& why) {
  throw InputError(field + ": " + why);
}

std::string str(const json& v, const std::string& field, const TesLimits& lim, bool allow_empty = true) {
  if (!v.is_string()) bad(field, "must be a string");
  std::string s = v.get<std::string>();
  if (s.size() > lim.max_string) bad(field, "longer than " + std::to_string(lim.max_string) + " characters");
  if (!allow_empty && s.empty()) bad(field, "must not be empty");
  if (s.find('\0') != std::string::npos) bad(field, "must not contain a NUL byte");
  return s;
}

// An absolute path without "..": container paths are mapped into the task directory.
std::string abs_path(const json& v, const std::string& field, const TesLimits& lim) {
  std::string p = str(v, field, lim, false);
  if (p.front() != '/') bad(field, "must be an absolute path");
  std::size_t start = 0;
  while (start <= p.size()) {
    std::size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0) bad(field, "must not contain '..'");
    start = end + 1;
  }
  return p;
}

const json& obj(const json& v, const std::string& field) {
  if (!v.is_object()) bad(field, "must be an object");
  return v;
}

const json& arr(const json& v, const std::string& field, std::size_t max) {
  if (!v.is_array()) bad(field, "must be an array");
  if (v.size() > max) bad(field, "more than " + std::to_string(max) + " entries");
  return v;
}

// Copies the allowed keys of `in` (null values dropped); any other key is refused.
void only_keys(const json& in, const std::string& field, const std::set<std::string>& allowed) {
  for (const auto& [k, v] : in.items())
    if (!allowed.count(k)) bad(field.empty() ? k : field + "." + k, "unknown field");
}

json string_map(const json& v, const std::string& field, const TesLimits& lim, std::size_t max) {
  obj(v, field);
  if (v.size() > max) bad(field, "more than " + std::to_string(max) + " entries");
  json out = json::object();
  for (const auto& [k, val] : v.items()) {
    if (k.empty() || k.size() > 256) bad(field, "keys must be 1 to 256 characters");
    out[k] = str(val, field + "." + k, lim);
  }
  return out;
}

std::string file_type(const json& v, const std::string& field) {
  if (v.is_null()) return "FILE";
  if (!v.is_string() || (v != "FILE" && v != "DIRECTORY")) bad(field, "must be FILE or DIRECTORY");
  return v.get<std::string>();
}

bool has(const json& o, const char* k) { return o.contains(k) && !o[k].is_null(); }

json parse_input(const json& in, const std::string& f, const TesLimits& lim) {
  obj(in, f);
  only_keys(in, f, {"name", "description", "url", "path", "type", "content", "streamable"});
  json out = {{"path", abs_path(in.value("path", json()), f + ".path", lim)},
              {"type", file_type(in.value("type", json()), f + ".type")}};
  for (const char* k : {"name", "description"})
    if (has(in, k)) out[k] = str(in[k], f + "." + k, lim);
  if (has(in, "streamable")) {
    if (!in["streamable"].is_boolean()) bad(f + ".streamable", "must be a boolean");
    out["streamable"] = in["streamable"];
  }
  const bool url = has(in, "url"), content = has(in, "content");
  if (url == content) bad(f, "needs exactly one of 'url' and 'content'");
  if (content) {
    if (out["type"] != "FILE") bad(f + ".content", "only a FILE input can have content");
    if (!in["content"].is_string()) bad(f + ".content", "must be a string");
    const std::string& c = in["content"].get_ref<const std::string&>();
    if (c.size() > lim.max_content_bytes)
      bad(f + ".content", "larger than " + std::to_string(lim.max_content_bytes) + " bytes");
    out["content"] = c;
  } else {
    const std::string u = str(in["url"], f + ".url", lim, false);
    if (u.rfind("file://", 0) != 0 && u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0 &&
        u.rfind("sha256:", 0) != 0)
      bad(f + ".url", "'" + u + "': expected file://, http://, https:// or sha256:<digest>");
    if (u.rfind("http", 0) == 0 && out["type"] == "DIRECTORY")
      bad(f + ".url", "a DIRECTORY input must be a file:// URL");
    out["url"] = u;
  }
  return out;
}

json parse_output(const json& o, const std::string& f, const TesLimits& lim) {
  obj(o, f);
  only_keys(o, f, {"name", "description", "url", "path", "path_prefix", "type"});
  json out = {{"path", abs_path(o.value("path", json()), f + ".path", lim)},
              {"type", file_type(o.value("type", json()), f + ".type")}};
  for (const char* k : {"name", "description"})
    if (has(o, k)) out[k] = str(o[k], f + "." + k, lim);
  const std::string u = str(o.value("url", json()), f + ".url", lim, false);
  if (u.rfind("file://", 0) != 0 && !is_object_store_output_url(u))
    bad(f + ".url", "'" + u + "': expected file:///absolute/path or omicsd:objects");
  out["url"] = u;
  const std::string& path = out["path"].get_ref<const std::string&>();
  const bool wildcard = path.find_first_of("*?[") != std::string::npos;
  if (has(o, "path_prefix")) {
    const std::string prefix = abs_path(o["path_prefix"], f + ".path_prefix", lim);
    if (path.rfind(prefix, 0) != 0) bad(f + ".path_prefix", "must be a prefix of 'path'");
    out["path_prefix"] = prefix;
  } else if (wildcard) {
    bad(f + ".path_prefix", "required when 'path' has wildcards");
  }
  return out;
}

json parse_executor(const json& e, const std::string& f, const TesLimits& lim) {
  obj(e, f);
  only_keys(e, f, {"image", "command", "workdir", "stdin", "stdout", "stderr", "env", "ignore_error"});
  json out = {{"image", str(e.value("image", json()), f + ".image", lim, false)}};
  const json cmd_value = e.value("command", json());  // a copy: arr() returns its argument
  const json& cmd = arr(cmd_value, f + ".command", lim.max_command_args);
  if (cmd.empty()) bad(f + ".command", "must not be empty");
  out["command"] = json::array();
  for (std::size_t i = 0; i < cmd.size(); ++i)
    out["command"].push_back(str(cmd[i], f + ".command[" + std::to_string(i) + "]", lim, i > 0));
  for (const char* k : {"workdir", "stdin", "stdout", "stderr"})
    if (has(e, k)) out[k] = abs_path(e[k], f + "." + k, lim);
  if (has(e, "env")) {
    out["env"] = string_map(e["env"], f + ".env", lim, lim.max_env);
    for (const auto& [k, v] : out["env"].items())
      if (k.find('=') != std::string::npos) bad(f + ".env", "name '" + k + "' must not contain '='");
  }
  if (has(e, "ignore_error")) {
    if (!e["ignore_error"].is_boolean()) bad(f + ".ignore_error", "must be a boolean");
    out["ignore_error"] = e["ignore_error"];
  }
  return out;
}

double non_negative(const json& v, const std::string& f, double max) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0 || v.get<double>() > max)
    bad(f, "must be a number from 0 to " + std::to_string(int64_t(max)));
  return v.get<double>();
}

// backend_parameters: "gpu" (how many GPUs) and "gpu_memory_gb" (per GPU) are what omicsd matches.
const std::set<std::string> kKnownBackendParameters = {"gpu", "gpu_memory_gb"};

json parse_resources(const json& r, const TesLimits& lim) {
  const std::string f = "resources";
  obj(r, f);
  only_keys(r, f,
            {"cpu_cores", "preemptible", "ram_gb", "disk_gb", "zones", "backend_parameters",
             "backend_parameters_strict"});
  json out = json::object();
  if (has(r, "cpu_cores")) {
    if (!r["cpu_cores"].is_number_integer() || r["cpu_cores"].get<int64_t>() < 0 ||
        r["cpu_cores"].get<int64_t>() > 4096)
      bad(f + ".cpu_cores", "must be an integer from 0 to 4096");
    out["cpu_cores"] = r["cpu_cores"];
  }
  if (has(r, "ram_gb")) out["ram_gb"] = non_negative(r["ram_gb"], f + ".ram_gb", 1 << 20);
  if (has(r, "disk_gb")) out["disk_gb"] = non_negative(r["disk_gb"], f + ".disk_gb", 1 << 30);
  for (const char* k : {"preemptible", "backend_parameters_strict"})
    if (has(r, k)) {
      if (!r[k].is_boolean()) bad(f + "." + k, "must be a boolean");
      out[k] = r[k];
    }
  if (has(r, "zones")) {
    out["zones"] = json::array();
    for (const json& z : arr(r["zones"], f + ".zones", 64))
      out["zones"].push_back(str(z, f + ".zones[]", lim));
  }
  if (has(r, "backend_parameters")) {
    json bp = string_map(r["backend_parameters"], f + ".backend_parameters", lim, 64);
    const bool strict = r.value("backend_parameters_strict", false) == true;
    for (const auto& [k, v] : bp.items()) {
      if (!kKnownBackendParameters.count(k)) {
        if (strict) bad(f + ".backend_parameters." + k, "not supported (omicsd knows gpu, gpu_memory_gb)");
        continue;
      }
      const std::string& s = v.get_ref<const std::string&>();
      char* end = nullptr;
      const double n = s.empty() ? -1 : std::strtod(s.c_str(), &end);
      if (end == nullptr || *end != '\0' || !std::isfinite(n) || n < 0 || n > 1024)
        bad(f + ".backend_parameters." + k, "must be a number from 0 to 1024 (as a string), not '" + s + "'");
    }
    out["backend_parameters"] = bp;
  }
  return out;
}

const json& log_of(const json& log) {
  static const json empty = json::object();
  return log.is_object() ? log : empty;
}

}  // namespace

bool is_tes_state(std::string_view s) {
  for (const char* k : kTesStates)
    if (s == k) return true;
  return false;
}

bool is_object_store_output_url(std::string_view url) { return url == "omicsd:objects"; }

json parse_tes_task(const json& body, const TesLimits& lim) {
  obj(body, "task");
  only_keys(body, "",
            {"id", "state", "name", "description", "inputs", "outputs", "resources", "executors", "volumes",
             "tags", "logs", "creation_time"});
  json t = json::object();
  for (const char* k : {"name", "description"})
    if (has(body, k)) t[k] = str(body[k], k, lim);
  t["inputs"] = json::array();
  if (has(body, "inputs")) {
    const json& ins = arr(body["inputs"], "inputs", lim.max_inputs);
    for (std::size_t i = 0; i < ins.size(); ++i)
      t["inputs"].push_back(parse_input(ins[i], "inputs[" + std::to_string(i) + "]", lim));
  }
  t["outputs"] = json::array();
  if (has(body, "outputs")) {
    const json& outs = arr(body["outputs"], "outputs", lim.max_outputs);
    for (std::size_t i = 0; i < outs.size(); ++i)
      t["outputs"].push_back(parse_output(outs[i], "outputs[" + std::to_string(i) + "]", lim));
  }
  const json ex_value = body.value("executors", json());  // a copy: arr() returns its argument
  const json& ex = arr(ex_value, "executors", lim.max_executors);
  if (ex.empty()) bad("executors", "at least one executor is required");
  t["executors"] = json::array();
  for (std::size_t i = 0; i < ex.size(); ++i)
    t["executors"].push_back(parse_executor(ex[i], "executors[" + std::to_string(i) + "]", lim));
  t["volumes"] = json::array();
  if (has(body, "volumes"))
    for (const json& v : arr(body["volumes"], "volumes", lim.max_volumes))
      t["volumes"].push_back(abs_path(v, "volumes[]", lim));
  t["resources"] = has(body, "resources") ? parse_resources(body["resources"], lim) : json::object();
  t["tags"] = has(body, "tags") ? string_map(body["tags"], "tags", lim, lim.max_tags) : json::object();
  return t;
}

json tes_requirements(const json& task) {
  json req = {{"tes_runtime", true}};
  const json& r = task.contains("resources") ? task["resources"] : json::object();
  for (const char* k : {"cpu_cores", "ram_gb", "disk_gb"})
    if (r.contains(k) && r[k].is_number() && r[k].get<double>() > 0) req[k] = r[k];
  if (r.contains("backend_parameters")) {
    const json& bp = r["backend_parameters"];
    if (bp.contains("gpu")) {
      const double n = std::strtod(bp["gpu"].get<std::string>().c_str(), nullptr);
      if (n > 0) req["gpu_count"] = n;
    }
    if (bp.contains("gpu_memory_gb")) {
      const double g = std::strtod(bp["gpu_memory_gb"].get<std::string>().c_str(), nullptr);
      if (g > 0) req["gpu_memory_gb"] = g;
    }
  }
  return req;
}

std::string tes_state(const Run& run, const Task* task, const json& log) {
  switch (run.state) {
    case RunState::Queued:
      return "QUEUED";
    case RunState::Running:
      // A task waiting for its retry (or for a worker) is queued again; a leased one runs.
      return task && task->state == TaskState::Running ? "RUNNING" : "QUEUED";
    case RunState::Complete: {
      const std::string s = log_of(log).value("state", std::string("COMPLETE"));
      return s == "EXECUTOR_ERROR" ? s : "COMPLETE";
    }
    case RunState::Failed:
      return "SYSTEM_ERROR";
    case RunState::Canceled:
      return "CANCELED";
  }
  return "UNKNOWN";
}

TesView parse_tes_view(std::string_view s) {
  if (s == "MINIMAL") return TesView::Minimal;
  if (s == "BASIC") return TesView::Basic;
  if (s == "FULL") return TesView::Full;
  throw InputError("view: expected MINIMAL, BASIC or FULL, not '" + std::string(s) + "'");
}

json tes_task_view(const Run& run, const Task* task, const json& log, TesView view) {
  json out = {{"id", run.id}, {"state", tes_state(run, task, log)}};
  if (view == TesView::Minimal) return out;
  const json doc = run.inputs.is_object() && run.inputs.contains("tes") ? run.inputs["tes"] : json::object();
  for (const auto& [k, v] : doc.items()) out[k] = v;
  out["creation_time"] = rfc3339_ms(run.created_at);
  if (view == TesView::Basic)
    for (json& in : out["inputs"]) in.erase("content");

  // One task log: the executors of the attempt that finished (or none yet), the attempts' errors.
  const json& l = log_of(log);
  json tlog = {{"logs", json::array()}, {"outputs", l.value("outputs", json::array())}};
  if (task && task->started_at) tlog["start_time"] = rfc3339_ms(*task->started_at);
  if (l.contains("start_time")) tlog["start_time"] = l["start_time"];
  if (l.contains("end_time"))
    tlog["end_time"] = l["end_time"];
  else if (task && task->finished_at)
    tlog["end_time"] = rfc3339_ms(*task->finished_at);
  for (const json& e : l.value("logs", json::array())) {
    json el = e;
    if (view == TesView::Basic) {
      el.erase("stdout");
      el.erase("stderr");
    }
    tlog["logs"].push_back(el);
  }
  json meta = {{"omicsd_run", "/v1/runs/" + run.id}};
  if (task) {
    meta["attempts"] = std::to_string(task->attempts);
    if (!task->worker_id.empty()) meta["worker_id"] = task->worker_id;
  }
  tlog["metadata"] = meta;
  if (view == TesView::Full) {
    json sys = l.value("system_logs", json::array());
    if (task && !task->last_error.empty()) sys.push_back(task->last_error);
    if (!run.failure_reason.empty() && (!task || run.failure_reason != task->last_error))
      sys.push_back(run.failure_reason);
    tlog["system_logs"] = sys;
  }
  out["logs"] = json::array({tlog});
  return out;
}

}  // namespace omicsd
