#include "service/jobs/workflow.hpp"

#include <cmath>
#include <limits>
#include <set>

#include "host/call/ploidy_genotypes.hpp"
#include "host/common/error.hpp"
#include "service/jobs/task_graph.hpp"
#include "service/jobs/task_kinds.hpp"
#include "service/objects/object_backend.hpp"
#include "service/objects/object_store.hpp"
#include "service/util/rfc3339.hpp"

namespace omicsd {
namespace {
using json = nlohmann::json;

void check_sample_name(const std::string& s) {
  if (s.empty()) return;
  if (s.size() > 200) throw InputError("sample name longer than 200 characters");
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      throw InputError("sample name '" + s + "': only letters, digits, '.', '_' and '-' are allowed");
  if (s == "." || s == "..") throw InputError("sample name '" + s + "' is not allowed");
}

std::string uri_string(const json& v, const std::string& name) {
  if (!v.is_string() || v.get<std::string>().empty())
    throw InputError("input '" + name + "' must be a non-empty string URI");
  return v.get<std::string>();
}

// name -> URI of every input and BED parameter of a request.
std::vector<std::pair<std::string, std::string>> request_uris(const WorkflowRequest& req) {
  std::vector<std::pair<std::string, std::string>> out;
  const json& in = req.inputs;
  out.emplace_back("reference", uri_string(in.at("reference"), "reference"));
  if (req.workflow == "call") {
    out.emplace_back("bam", uri_string(in.at("bam"), "bam"));
  } else {
    const json& r = in.at("reads");
    if (r.is_string()) {
      out.emplace_back("reads", uri_string(r, "reads"));
    } else {
      for (size_t i = 0; i < r.size(); ++i)
        out.emplace_back("reads[" + std::to_string(i) + "]", uri_string(r[i], "reads"));
    }
  }
  for (const char* k : {"regions", "targets", "ploidy_bed"})
    if (req.parameters.contains(k) && !req.parameters[k].is_null())
      out.emplace_back(k, uri_string(req.parameters[k], k));
  return out;
}

// The schema of every run parameter (docs/openapi.json RunRequest.parameters): a value of another type
// or out of range is refused at submission, not discovered by a worker later.
void check_parameter(const std::string& k, const json& v) {
  auto integer = [&](int64_t lo, int64_t hi) {
    if (!v.is_number_integer())
      throw InputError("parameter '" + k + "' must be an integer (got " + v.type_name() + ")");
    const bool in_range = v.is_number_unsigned() ? (lo <= 0 || v.get<uint64_t>() >= uint64_t(lo)) &&
                                                       v.get<uint64_t>() <= uint64_t(hi)
                                                 : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!in_range)
      throw InputError("parameter '" + k + "' must be between " + std::to_string(lo) + " and " +
                       std::to_string(hi));
  };
  auto boolean = [&] {
    if (!v.is_boolean())
      throw InputError("parameter '" + k + "' must be true or false (got " + v.type_name() + ")");
  };
  if (k == "threads") {
    integer(0, kMaxRunThreads);
  } else if (k == "backend") {
    if (!v.is_string() || (v != "auto" && v != "cpu" && v != "cuda"))
      throw InputError("parameter 'backend' must be \"auto\", \"cpu\" or \"cuda\"");
  } else if (k == "device") {
    integer(0, 1023);
  } else if (k == "read_group") {
    if (!v.is_string())
      throw InputError("parameter 'read_group' must be a string (got " + std::string(v.type_name()) + ")");
    const std::string& s = v.get_ref<const std::string&>();
    if (s.size() > 4096) throw InputError("parameter 'read_group' is longer than 4096 characters");
    if (s.find_first_of("\n\r", 0) != std::string::npos || s.find('\0') != std::string::npos)
      throw InputError("parameter 'read_group' must be one @RG line (no newline)");
  } else if (k == "interleaved" || k == "gvcf" || k == "allow_multiple_samples" || k == "mark_duplicates") {
    boolean();
  } else if (k == "optical_distance") {
    integer(0, 1'000'000);
  } else if (k == "min_score") {
    integer(0, 1'000'000);
  } else if (k == "min_mapq") {
    integer(0, 255);
  } else if (k == "min_baseq") {
    integer(0, 255);
  } else if (k == "min_qual") {
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0 || v.get<double>() > 1e6)
      throw InputError("parameter 'min_qual' must be a number between 0 and 1000000");
  } else if (k == "ploidy") {
    integer(1, kMaxPloidy);
  } else if (k == "sex") {
    if (!v.is_string() || (v != "male" && v != "female"))
      throw InputError("parameter 'sex' must be \"male\" or \"female\"");
  } else if (k == "regions" || k == "targets" || k == "ploidy_bed") {
    if (!v.is_null() && !v.is_string())
      throw InputError("parameter '" + k + "' must be a URI string (got " + std::string(v.type_name()) + ")");
  }
}

}  // namespace

const std::vector<std::string>& task_parameter_keys(const std::string& kind) {
  static const std::vector<std::string> none;
  const TaskKindInfo* k = find_task_kind(kind);
  return k ? k->parameters : none;
}

// A run's deadline: an RFC 3339 date-time or unix milliseconds (a non-negative integer).
static int64_t parse_deadline(const json& v) {
  if (v.is_string()) {
    try {
      return parse_rfc3339_ms(v.get<std::string>());
    } catch (const InputError& e) {
      throw InputError(std::string("'deadline': ") + e.what());
    }
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()))
    return v.get<int64_t>();
  throw InputError(
      "'deadline' must be an RFC 3339 date-time (e.g. 2026-12-05T14:30:00Z) or unix milliseconds");
}

WorkflowRequest parse_workflow_request(const json& body) {
  if (!body.is_object()) throw InputError("request body must be a JSON object");
  WorkflowRequest r;
  for (const auto& [k, v] : body.items()) {
    static const std::set<std::string> known = {"workflow",     "sample", "inputs",   "parameters", "cache",
                                                "callback_url", "tags",   "priority", "deadline",   "group"};
    if (!known.count(k)) throw InputError("unknown field '" + k + "'");
  }
  if (!body.contains("workflow") || !body["workflow"].is_string()) throw InputError("missing 'workflow'");
  r.workflow = body["workflow"].get<std::string>();
  if (r.workflow != "germline" && r.workflow != "align" && r.workflow != "call")
    throw InputError("unknown workflow '" + r.workflow + "' (expected germline, align or call)");
  if (body.contains("sample")) {
    if (!body["sample"].is_string()) throw InputError("'sample' must be a string");
    r.sample = body["sample"].get<std::string>();
    check_sample_name(r.sample);
  }
  if (!body.contains("inputs") || !body["inputs"].is_object()) throw InputError("missing 'inputs' object");
  r.inputs = body["inputs"];
  if (body.contains("parameters") && !body["parameters"].is_null()) {
    if (!body["parameters"].is_object()) throw InputError("'parameters' must be an object");
    r.parameters = body["parameters"];
  }
  if (body.contains("cache") && !body["cache"].is_null()) {
    if (!body["cache"].is_boolean()) throw InputError("'cache' must be true or false");
    r.cache = body["cache"].get<bool>();
  }
  if (body.contains("callback_url") && !body["callback_url"].is_null()) {
    if (!body["callback_url"].is_string()) throw InputError("'callback_url' must be a string");
    r.callback_url = body["callback_url"].get<std::string>();
    if (r.callback_url.rfind("http://", 0) != 0 && r.callback_url.rfind("https://", 0) != 0)
      throw InputError("'callback_url' must be an http:// or https:// URL");
    if (r.callback_url.size() > 2048) throw InputError("'callback_url' is longer than 2048 characters");
  }
  if (body.contains("priority") && !body["priority"].is_null()) {
    const json& p = body["priority"];
    if (!p.is_number_integer() || p.get<int64_t>() < kMinRunPriority || p.get<int64_t>() > kMaxRunPriority)
      throw InputError("'priority' must be an integer from " + std::to_string(kMinRunPriority) + " to " +
                       std::to_string(kMaxRunPriority));
    r.priority = p.get<int64_t>();
  }
  if (body.contains("deadline") && !body["deadline"].is_null()) r.deadline = parse_deadline(body["deadline"]);
  if (body.contains("group") && !body["group"].is_null()) {
    if (!body["group"].is_string()) throw InputError("'group' must be a string (a run group's name)");
    r.group = body["group"].get<std::string>();
    try {
      check_run_group_name(r.group);
    } catch (const InputError& e) {
      throw InputError(std::string("'group': ") + e.what());
    }
  }
  // Inputs of the workflow.
  const std::set<std::string> allowed_inputs = r.workflow == "call"
                                                   ? std::set<std::string>{"reference", "bam"}
                                                   : std::set<std::string>{"reference", "reads"};
  for (const auto& [k, v] : r.inputs.items())
    if (!allowed_inputs.count(k)) throw InputError(r.workflow + " workflow: unknown input '" + k + "'");
  for (const auto& k : allowed_inputs)
    if (!r.inputs.contains(k)) throw InputError(r.workflow + " workflow: missing input '" + k + "'");
  if (r.workflow != "call") {
    const json& reads = r.inputs["reads"];
    if (!(reads.is_string() || (reads.is_array() && (reads.size() == 1 || reads.size() == 2))))
      throw InputError("input 'reads' must be a URI or an array of 1 or 2 URIs");
  }
  // Parameters: each must be accepted by some task of the workflow.
  for (const auto& [k, v] : r.parameters.items()) {
    bool ok = false;
    for (const TaskSpec& task : default_tasks(r.workflow))
      for (const auto& a : task_parameter_keys(task.kind)) ok = ok || a == k;
    if (!ok) throw InputError(r.workflow + " workflow: unknown parameter '" + k + "'");
    check_parameter(k, v);
  }
  request_uris(r);  // string checks
  return r;
}

void check_workflow_inputs(const WorkflowRequest& req, const std::vector<std::filesystem::path>& roots,
                           const ObjectStore& store, const S3InputPolicy* s3, ObjectBackend* remote) {
  for (const auto& [name, uri] : request_uris(req)) {
    try {
      if (is_s3_url(uri)) {
        if (!s3) throw InputError(uri + ": s3:// inputs are not enabled on this daemon (--allow-s3)");
        s3->check(uri);
        continue;
      }
      if (remote && is_sha256_digest(uri) && !store.has(uri)) {
        if (!remote->size_of(uri)) throw InputError("no object " + uri + " in " + remote->url());
        continue;
      }
      resolve_input_uri(uri, roots, &store);
    } catch (const InputError& e) {
      throw InputError("input '" + name + "': " + e.what());
    } catch (const std::exception& e) {
      throw InputError("input '" + name + "': " + e.what());
    }
  }
}

NewRun make_new_run(const WorkflowRequest& req, int default_threads, int max_attempts) {
  NewRun n;
  n.workflow = req.workflow;
  n.inputs = req.inputs;
  n.parameters = req.parameters;
  n.parameters["sample"] = req.sample;
  n.parameters["cache"] = req.cache;
  n.callback_url = req.callback_url;
  n.idempotency_key = req.idempotency_key;
  n.priority = req.priority;
  n.deadline = req.deadline;
  n.group = req.group;
  n.tasks = default_tasks(req.workflow);
  for (auto& t : n.tasks) {
    t.max_attempts = max_attempts;
    json p = json::object();
    for (const auto& k : task_parameter_keys(t.kind))
      if (req.parameters.contains(k)) p[k] = req.parameters[k];
    if (!p.contains("threads") && default_threads > 0) p["threads"] = default_threads;
    t.parameters = p;
  }
  return n;
}

std::string run_sample(const Run& run) {
  if (run.parameters.is_object() && run.parameters.contains("sample") && run.parameters["sample"].is_string())
    return run.parameters["sample"].get<std::string>();
  return "";
}

bool run_cache_enabled(const Run& run) {
  if (run.parameters.is_object() && run.parameters.contains("cache") && run.parameters["cache"].is_boolean())
    return run.parameters["cache"].get<bool>();
  return true;
}

json run_user_parameters(const Run& run) {
  json p = run.parameters.is_object() ? run.parameters : json::object();
  p.erase("sample");
  p.erase("cache");
  return p;
}

json task_inputs(const Run& run, const Task& task) {
  auto dep_output = [&](const std::string& dep, const std::string& name) -> std::string {
    if (run.outputs.is_object() && run.outputs.contains(dep) && run.outputs[dep].is_object() &&
        run.outputs[dep].contains(name) && run.outputs[dep][name].contains("digest"))
      return run.outputs[dep][name]["digest"].get<std::string>();
    throw InputError("task " + task.name + ": output '" + name + "' of task '" + dep + "' is not available");
  };
  const json& in = run.inputs;
  json out = json::object();
  out["reference"] = in.value("reference", json());
  const TaskKindInfo* kind = find_task_kind(task.kind);  // validated when the run was created
  if (!kind) return out;
  if (kind->id == TaskKind::Tes) return {{"tes", in.value("tes", json())}};  // the TES task document
  if (kind->id == TaskKind::Align) {
    out["reads"] = in.value("reads", json());
  } else if (kind->id == TaskKind::Call) {
    if (run.workflow == "call") {
      out["bam"] = in.value("bam", json());
    } else {
      out["bam"] = dep_output("align", "bam");  // its index is found through the object store
    }
  } else {  // qc
    out["bam"] = dep_output("align", "bam");
    out["vcf"] = dep_output("call", "vcf");
  }
  return out;
}

}  // namespace omicsd
