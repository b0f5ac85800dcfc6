#include "service/workers/runner_executor.hpp"

#include <chrono>
#include <memory>

#include "service/runner/tes_executor.hpp"

namespace omicsd {
namespace {

using json = nlohmann::json;

RunnerTaskSpec spec_of(const ExecRequest& r) {
  RunnerTaskSpec spec;
  spec.kind = r.kind;
  spec.sample = r.sample;
  spec.inputs = r.inputs;
  spec.parameters = r.parameters;
  spec.use_cache = r.use_cache;
  return spec;
}

// Whether every object named in outputs ({name: {"digest","size"}}) is still in the store.
bool have_outputs(const ObjectStore& store, const json& outputs) {
  if (!outputs.is_object()) return false;
  for (const auto& [name, ref] : outputs.items()) {
    if (!ref.is_object() || !ref.contains("digest") || !ref["digest"].is_string()) return false;
    auto o = store.get(ref["digest"].get<std::string>());
    if (!o || (ref.contains("size") && ref["size"].is_number() && o->size != ref["size"].get<uint64_t>()))
      return false;
  }
  return true;
}

}  // namespace

TaskExecutor make_runner_executor(ObjectStore& store, TaskRunnerOptions options, TesRuntime tes_runtime,
                                  std::vector<Cidr> tes_http_allow) {
  std::shared_ptr<TesExecutor> tes;
  if (tes_runtime != TesRuntime::none) {
    TesExecutorOptions to;
    to.runtime = tes_runtime;
    to.allow_roots = options.allowed_roots;
    to.work_dir = store.root() / "tes";
    to.http_input_allow = std::move(tes_http_allow);
    tes = std::make_shared<TesExecutor>(store, to);
  }
  auto runner = std::make_shared<TaskRunner>(store, std::move(options));
  TaskExecutor t;
  t.cache_key = [runner](const ExecRequest& r) {
    return r.kind == "tes" ? std::string() : runner->key_of(spec_of(r));
  };
  t.run = [runner, tes](const ExecRequest& r) {
    if (r.kind == "tes") {
      if (!tes) throw InputError("this daemon's workers have no TES runtime (serve --task-runtime)");
      static const std::atomic<bool> never{false};
      const auto t0 = std::chrono::steady_clock::now();
      TesRunResult tr =
          tes->run(r.inputs.value("tes", json::object()), r.task_id, r.cancel ? *r.cancel : never);
      ExecResult out;
      for (const auto& [name, ref] : tr.objects)
        out.outputs[name] = {{"digest", ref.digest}, {"size", ref.size}};
      out.provenance = {{"tes", {{"state", tr.log.value("state", std::string())}}}};
      out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return out;
    }
    const RunnerTaskResult tr = runner->run(spec_of(r));
    ExecResult out;
    out.cache_key = tr.cache_key;
    out.cache_hit = tr.cache_hit;
    for (const auto& [name, ref] : tr.outputs)
      out.outputs[name] = {{"digest", ref.digest}, {"size", ref.size}};
    out.provenance = tr.provenance;
    out.seconds = tr.seconds;
    return out;
  };
  t.retryable = [](const std::exception& e) { return retryable(e); };
  t.have_outputs = [&store](const json& outs) { return have_outputs(store, outs); };
  return t;
}

}  // namespace omicsd
