#include "service/runner/task_runner.hpp"

#include <fcntl.h>
#include <htslib/sam.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <typeinfo>

#include "backends/align_backend_select.hpp"
#include "backends/genotype_backend_select.hpp"
#include "cuda/device_info.hpp"
#include "host/align/align_pipeline.hpp"
#include "host/call/call_options.hpp"
#include "host/call/ploidy_map.hpp"
#include "host/common/error.hpp"
#include "host/io/read_groups.hpp"
#include "host/io/reference.hpp"
#include "host/qc/qc_outputs.hpp"
#include "host/qc/qc_report.hpp"
#include "omicsd_version.hpp"
#include "service/jobs/task_kinds.hpp"
#include "service/runner/task_inputs.hpp"
#include "service/util/sha256.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace omicsd {

std::string cache_key(const std::string& kind, const std::string& engine_version, const Json& parameters,
                      const std::map<std::string, std::string>& input_digests) {
  Json inputs = Json::object();
  for (const auto& [name, digest] : input_digests) inputs[name] = digest;
  // nlohmann::json objects are std::map-backed: dump() emits keys sorted at every level.
  const Json canonical = {
      {"kind", kind}, {"version", engine_version}, {"parameters", parameters}, {"inputs", inputs}};
  return "sha256:" + sha256_hex(canonical.dump(-1, ' ', true, Json::error_handler_t::strict));
}

bool retryable(const std::exception& e) { return dynamic_cast<const InputError*>(&e) == nullptr; }

Json RunnerTaskResult::to_json() const {
  Json outs = Json::object();
  for (const auto& [name, ref] : outputs) outs[name] = ref.to_json();
  return {{"kind", kind},    {"cache_key", cache_key},   {"cache_hit", cache_hit},
          {"outputs", outs}, {"provenance", provenance}, {"seconds", seconds}};
}

namespace {

using Clock = std::chrono::system_clock;

std::string iso8601(Clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string hex_of(const std::string& digest) { return digest.substr(digest.find(':') + 1); }

// Atomic small-file write: temp name in the same directory, fsync, rename, fsync the directory.
void write_atomic(const fs::path& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) throw Error(path.parent_path().string() + ": cannot create: " + ec.message());
  thread_local std::mt19937_64 rng(std::random_device{}());
  const fs::path tmp =
      path.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rng() % 1000000000);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(tmp.string() + ": cannot create: " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(tmp.string() + ": write failed: " + std::strerror(e));
    }
    off += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error(tmp.string() + ": fsync failed: " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(path.string() + ": rename failed: " + std::strerror(e));
  }
  const int dfd = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// Typed parameter access: wrong types become InputError naming the parameter.
template <typename T>
T param(const Json& p, const char* key, T def) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return def;
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    throw InputError(std::string("parameter '") + key + "' has the wrong type (" + it->type_name() + ")");
  }
}

void check_keys(const Json& obj, const char* what, const std::set<std::string>& allowed,
                const std::string& kind) {
  if (!obj.is_object()) throw InputError(std::string(what) + " must be a JSON object");
  for (const auto& [k, v] : obj.items())
    if (!allowed.count(k)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw InputError(kind + " task: unknown " + std::string(what) + " '" + k + "' (expected: " + list +
                       ")");
    }
}

std::string uri_of(const Json& v, const std::string& name) {
  if (!v.is_string()) throw InputError("input '" + name + "' must be a string URI or digest");
  return v.get<std::string>();
}

void check_sample(const std::string& s) {
  if (s.size() > 200) throw InputError("sample name longer than 200 characters");
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      throw InputError("sample name '" + s + "': only letters, digits, '.', '_' and '-' are allowed");
  if (s == "." || s == "..") throw InputError("sample name '" + s + "' is not allowed");
}

std::string backend_param(const Json& p) {
  const std::string b = param<std::string>(p, "backend", "auto");
  if (b != "auto" && b != "cpu" && b != "cuda")
    throw InputError("parameter 'backend' must be auto, cpu or cuda");
  return b;
}

int device_param(const Json& p) {
  const int d = param<int>(p, "device", 0);
  if (d < 0) throw InputError("parameter 'device' must be a CUDA device index >= 0");
  return d;
}

std::string device_for(const std::string& backend, int device) {
  if (backend.find("cuda") == std::string::npos && backend.find("gpu") == std::string::npos) return "cpu";
  std::string why;
  for (const auto& d : list_gpu_devices(&why))
    if (d.index == device) return d.name;
  return "cpu";
}

// Reads the index association <store>/meta/<kind>/<hex of digest>.json ({"digest","ext"}) written
// when an object's index was stored; the index object's digest and extension, if it is still stored.
std::optional<std::pair<std::string, std::string>> stored_index(const ObjectStore& store, const char* kind,
                                                                const std::string& digest) {
  std::ifstream meta(store.root() / "meta" / kind / (hex_of(digest) + ".json"));
  if (!meta) return std::nullopt;
  try {
    const Json m = Json::parse(meta);
    const std::string d = m.at("digest").get<std::string>();
    if (!store.has(d)) return std::nullopt;
    return std::make_pair(d, m.at("ext").get<std::string>());
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable entry: as if there were none (the index is rebuilt)
  }
}

// The name an input is staged under in <scratch>/inputs. The engine opens these links (and looks for
// indexes by appending to them), so they are fixed names inside the scratch directory.
std::string staged_name(const std::string& key, const std::string& sample) {
  if (key == "reference") return "reference.fa";
  if (key == "bam") return sample + ".bam";
  if (key == "vcf") return sample + ".vcf.gz";
  if (key == "regions" || key == "targets") return key + ".bed";
  if (key == "ploidy_bed") return "ploidy.bed";
  return key;  // reads1, reads2: FASTQ, BAM or CRAM, told apart by content
}

}  // namespace

struct TaskRunner::Prepared {
  std::string kind;
  TaskKind kind_id = TaskKind::Align;  // `kind`, looked up once in task_kinds.hpp
  std::string name;                    // sample name used for outputs ("sample" when none)
  Json P;                              // parameters
  std::map<std::string, TaskInput> in;
  std::map<std::string, std::string> digests;  // what the cache key covers
  std::string key;
  double resolve_seconds = 0;
};

TaskRunner::TaskRunner(ObjectStore& store, TaskRunnerOptions options)
    : store_(store), options_(std::move(options)) {}

void TaskRunner::checkpoint(const char* point) const {
  if (options_.checkpoint) options_.checkpoint(point);
}

std::string TaskRunner::file_digest(const OpenedFile& f) {
  const struct stat& st = f.st;
  const int64_t mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  {
    std::lock_guard lock(memo_mutex_);
    auto it = memo_.find(f.source.string());
    if (it != memo_.end() && it->second.dev == st.st_dev && it->second.ino == st.st_ino &&
        it->second.size == uint64_t(st.st_size) && it->second.mtime_ns == mtime)
      return it->second.digest;
  }
  // Hashed through the open descriptor's /proc path: the bytes of the file that was checked.
  uint64_t size = 0;
  const std::string d = ObjectStore::digest_file(f.file.path(), &size);
  std::lock_guard lock(memo_mutex_);
  memo_[f.source.string()] = Memo{st.st_dev, st.st_ino, uint64_t(st.st_size), mtime, d};
  return d;
}

void TaskRunner::remember_digest(const fs::path& path, const std::string& digest) {
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(path, ec);  // how run() names a resolved input
  struct stat st {};
  if (ec || ::stat(canon.c_str(), &st) != 0)
    throw InputError(path.string() + ": cannot stat: " + std::strerror(errno));
  const int64_t mtime = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  std::lock_guard lock(memo_mutex_);
  memo_[canon.string()] = Memo{st.st_dev, st.st_ino, uint64_t(st.st_size), mtime, digest};
}

std::optional<RunnerTaskResult> TaskRunner::cached(const std::string& key) const {
  if (!is_sha256_digest(key)) return std::nullopt;
  const fs::path p = store_.root() / "cache" / (hex_of(key) + ".json");
  std::ifstream in(p);
  if (!in) return std::nullopt;
  try {
    const Json j = Json::parse(in);
    RunnerTaskResult r;
    r.kind = j.at("kind").get<std::string>();
    r.cache_key = key;
    r.provenance = j.at("provenance");
    for (const auto& [name, o] : j.at("outputs").items()) {
      ObjectRef ref = ObjectRef::from_json(o);
      auto have = store_.get(ref.digest);
      if (!have || have->size != ref.size) return std::nullopt;  // object gone: rerun
      r.outputs[name] = *have;
    }
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable entry: treat as a miss, the rerun rewrites it
  }
}

void TaskRunner::write_cache_entry(const RunnerTaskResult& r) const {
  Json outs = Json::object();
  for (const auto& [name, ref] : r.outputs) outs[name] = {{"digest", ref.digest}, {"size", ref.size}};
  const Json j = {{"key", r.cache_key}, {"kind", r.kind}, {"outputs", outs}, {"provenance", r.provenance}};
  write_atomic(store_.root() / "cache" / (hex_of(r.cache_key) + ".json"), j.dump(2));
}

TaskRunner::Prepared TaskRunner::prepare(const RunnerTaskSpec& spec, bool for_run) {
  Prepared t;
  t.kind = spec.kind;
  const std::string& kind = t.kind;
  const TaskKindInfo& kind_info = task_kind(kind);  // InputError for an unknown kind
  t.kind_id = kind_info.id;
  if (t.kind_id == TaskKind::Tes)  // never leased by a worker without a TES runtime (its requirements)
    throw InputError("task kind 'tes' runs in a TES executor (worker --task-runtime), not the TaskRunner");
  check_sample(spec.sample);
  t.name = spec.sample.empty() ? "sample" : spec.sample;
  t.P = spec.parameters.is_null() ? Json::object() : spec.parameters;
  const Json& P = t.P;
  Json inputs_json = spec.inputs;  // a copy: operator[] below on a const json would not check keys

  // --- Validate the spec and collect input URIs.
  std::map<std::string, std::string> uris;  // input name -> URI
  check_keys(inputs_json, "input", {kind_info.inputs.begin(), kind_info.inputs.end()}, kind);
  check_keys(P, "parameter", {kind_info.parameters.begin(), kind_info.parameters.end()}, kind);
  if (t.kind_id == TaskKind::Align) {
    if (!inputs_json.contains("reference")) throw InputError("align task: missing input 'reference'");
    uris["reference"] = uri_of(inputs_json["reference"], "reference");
    if (inputs_json.contains("reads")) {
      const Json& r = inputs_json["reads"];
      if (r.is_string()) {
        uris["reads1"] = r.get<std::string>();
      } else if (r.is_array() && (r.size() == 1 || r.size() == 2)) {
        uris["reads1"] = uri_of(r[0], "reads[0]");
        if (r.size() == 2) uris["reads2"] = uri_of(r[1], "reads[1]");
      } else {
        throw InputError("align task: input 'reads' must be a URI or an array of 1 or 2 URIs");
      }
    } else if (inputs_json.contains("reads1")) {
      uris["reads1"] = uri_of(inputs_json["reads1"], "reads1");
      if (inputs_json.contains("reads2")) uris["reads2"] = uri_of(inputs_json["reads2"], "reads2");
    } else {
      throw InputError("align task: missing input 'reads'");
    }
  } else if (t.kind_id == TaskKind::Call) {
    for (const char* k : {"reference", "bam"})
      if (!inputs_json.contains(k)) throw InputError(std::string("call task: missing input '") + k + "'");
    for (const char* k : {"reference", "bam", "bai", "regions", "targets", "ploidy_bed"})
      if (inputs_json.contains(k)) uris[k] = uri_of(inputs_json[k], k);
    for (const char* k :
         {"regions", "targets", "ploidy_bed"})  // BED files named in parameters are inputs too
      if (P.contains(k) && !P[k].is_null()) {
        if (uris.count(k)) throw InputError(std::string("call task: '") + k + "' given twice");
        uris[k] = uri_of(P[k], k);
      }
  } else {  // qc
    for (const char* k : {"reference", "bam", "vcf"}) {
      if (!inputs_json.contains(k)) throw InputError(std::string("qc task: missing input '") + k + "'");
      uris[k] = uri_of(inputs_json[k], k);
    }
  }

  // --- Check every input against the policy, then open each beneath its root and digest what was
  // opened. From here on the engine reads only these descriptors (and the indexes opened with them).
  const auto t_resolve = std::chrono::steady_clock::now();
  std::map<std::string, ResolvedInput> checked;
  for (const auto& [k, uri] : uris) {
    try {
      checked[k] = resolve_input_uri(uri, options_.allowed_roots, &store_);
    } catch (const InputError& e) {
      throw InputError("input '" + k + "': " + e.what());
    }
  }
  if (for_run) checkpoint("inputs_checked");
  for (const auto& [k, uri] : uris) {
    TaskInput x = open_task_input(k, uri, checked[k], options_.allowed_roots, store_);
    if (x.digest.empty()) x.digest = file_digest(x.main);
    if (k != "bai") t.digests[k] = x.digest;  // the index is derived from the BAM: not part of the key
    t.in.emplace(k, std::move(x));
  }
  t.resolve_seconds = seconds_since(t_resolve);

  Json key_params = P;
  key_params.erase("threads");  // output never depends on the thread count
  key_params.erase("regions");  // digested as inputs
  key_params.erase("targets");
  key_params.erase("ploidy_bed");
  key_params["sample"] = spec.sample;
  const std::string engine_version = std::string(kVersion) + "+" + kGitHash;
  t.key = cache_key(kind, engine_version, key_params, t.digests);
  return t;
}

std::string TaskRunner::key_of(const RunnerTaskSpec& spec) { return prepare(spec, false).key; }

RunnerTaskResult TaskRunner::run(const RunnerTaskSpec& spec) {
  const auto t_start = std::chrono::steady_clock::now();
  const auto wall_start = Clock::now();
  Prepared t = prepare(spec, true);
  const std::string& kind = t.kind;
  const std::string& name = t.name;
  const std::string& key = t.key;
  const Json& P = t.P;
  std::map<std::string, TaskInput>& in = t.in;

  if (spec.use_cache)
    if (auto hit = cached(key)) {
      hit->cache_hit = true;
      hit->seconds = seconds_since(t_start);
      return *hit;
    }

  // --- Scratch directory; every input is staged there as a link to its open descriptor.
  const bool own_scratch = spec.scratch_dir.empty();
  fs::path scratch = spec.scratch_dir;
  if (own_scratch) {
    thread_local std::mt19937_64 rng(std::random_device{}());
    scratch =
        store_.root() / "scratch" / (hex_of(key).substr(0, 16) + "-" + std::to_string(rng() % 1000000000));
  }
  const fs::path staging = scratch / "inputs";
  std::error_code ec;
  fs::remove_all(staging, ec);  // a given scratch directory may hold the links of an earlier attempt
  fs::create_directories(staging, ec);
  if (ec) throw Error(scratch.string() + ": cannot create the scratch directory: " + ec.message());

  std::map<std::string, fs::path> staged;           // input name -> the link the engine opens
  std::map<std::string, std::string> client_names;  // staged path -> what the client named
  for (const auto& [k, x] : in) {
    if (k == "bai") continue;  // digested for provenance; the engine uses the index next to the BAM
    const fs::path link = staging / staged_name(k, name);
    stage_link(link, x.main.file.path());
    staged[k] = link;
    client_names[link.string()] = x.uri;
    for (const auto& [ext, side] : x.sidecars) {
      stage_link(link.string() + ext, side.file.path());
      client_names[link.string() + ext] = side.source.string();
    }
  }
  // An index the store recorded for an object (or for any reference: its minimizer index) is staged
  // from the store when none was found next to the input; the engine builds what is still missing,
  // inside the scratch directory.
  auto stage_stored_index = [&](const std::string& k, const char* meta_kind) {
    if (!in.count(k)) return false;
    const auto idx = stored_index(store_, meta_kind, in.at(k).digest);
    if (!idx) return false;
    stage_link(staged[k].string() + idx->second, store_.path_of(idx->first));
    return true;
  };
  if (in.count("reference") && !in.at("reference").sidecars.count(".omi"))
    stage_stored_index("reference", "omi-of");
  if (t.kind_id == TaskKind::Call) {
    const bool has_index = !in.at("bam").sidecars.empty() || stage_stored_index("bam", "index-of");
    if (!has_index && sam_index_build(staged["bam"].c_str(), 0) < 0)
      throw InputError(in.at("bam").uri + ": cannot index the BAM (is it coordinate-sorted?)");
  }
  checkpoint("inputs_staged");

  Json steps = Json::array();
  steps.push_back({{"step", "resolve_inputs"}, {"seconds", t.resolve_seconds}});
  Json stats;
  std::string backend_used = "cpu";
  std::vector<std::pair<std::string, fs::path>> produced;  // output name -> file in scratch
  std::map<std::string, std::string> index_of;             // output name -> its index's output name
  const std::string command_line = "omicsd task " + kind;
  Json reference_prov;
  auto load_reference_prov = [&](const Reference& ref) {
    Json contigs = Json::array();
    for (const auto& c : ref.contigs())
      contigs.push_back({{"name", c.name}, {"length", c.length}, {"md5", c.md5}});
    reference_prov = {{"uri", in.at("reference").uri},
                      {"digest", in.at("reference").digest},
                      {"md5", ref.digest()},
                      {"contigs", contigs}};
  };

  Json inputs_prov = Json::object();
  for (const auto& [k, x] : in)
    inputs_prov[k] = {{"uri", x.uri}, {"digest", x.digest}, {"size", uint64_t(x.main.st.st_size)}};

  const auto t_engine = std::chrono::steady_clock::now();
  try {
    if (t.kind_id == TaskKind::Align) {
      AlignOptions a;
      a.reference = staged["reference"].string();
      a.reference_uri = in.at("reference").main.source.string();  // @SQ UR: the file, not the link
      a.reads1 = staged["reads1"].string();
      if (staged.count("reads2")) a.reads2 = staged["reads2"].string();
      a.interleaved = param<bool>(P, "interleaved", false);
      a.threads = param<int>(P, "threads", 0);
      if (a.threads < 0) throw InputError("parameter 'threads' must be >= 0");
      a.make_backend = align_backend_factory(backend_param(P), device_param(P));
      a.min_score = param<int>(P, "min_score", a.min_score);
      a.read_group = param<std::string>(P, "read_group", "");
      // As `omicsd run`: duplicates flagged unless the run asks otherwise (calling then skips them).
      a.mark_duplicates = param<bool>(P, "mark_duplicates", true);
      a.optical_distance = param<int64_t>(P, "optical_distance", 0);
      // An unaligned BAM keeps its own read groups (lanes, libraries, SM); other input gets one.
      if (a.read_group.empty() && read_group_lines_of_file(a.reads1).empty())
        a.read_group = "@RG\\tID:" + name + "\\tSM:" + name;
      a.command_line = command_line;
      a.output = (scratch / (name + ".bam")).string();
      a.tmp_dir = scratch.string();
      const AlignStats s = run_align(a);
      steps.push_back({{"step", "align"}, {"seconds", seconds_since(t_engine)}});
      backend_used = s.backend;
      stats = {{"reads", s.reads},           {"mapped", s.mapped},
               {"paired", s.paired},         {"proper_pairs", s.proper_pairs},
               {"mapq_ge_30", s.mapq_ge_30}, {"insert_mean", s.insert_mean},
               {"insert_sd", s.insert_sd}};
      produced = {{"bam", a.output}, {"bai", a.output + ".bai"}};
      index_of["bam"] = "bai";
      load_reference_prov(Reference::load(a.reference));
    } else if (t.kind_id == TaskKind::Call) {
      CallOptions c;
      c.reference = staged["reference"].string();
      c.bam = staged["bam"].string();
      if (staged.count("regions")) c.regions_bed = staged["regions"].string();
      if (staged.count("targets")) c.targets_bed = staged["targets"].string();
      if (staged.count("ploidy_bed")) c.ploidy_bed = staged["ploidy_bed"].string();
      c.ploidy = param<int>(P, "ploidy", c.ploidy);
      c.sex = param<std::string>(P, "sex", "");
      parse_sex(c.sex);  // a task row edited by hand is refused as bad input too
      c.allow_multiple_samples = param<bool>(P, "allow_multiple_samples", false);
      c.gvcf = param<bool>(P, "gvcf", false);
      c.threads = param<int>(P, "threads", 0);
      if (c.threads < 0) throw InputError("parameter 'threads' must be >= 0");
      c.make_backend = genotype_backend_factory(backend_param(P), device_param(P));
      c.params.min_mapq = param<int>(P, "min_mapq", c.params.min_mapq);
      c.params.min_baseq = param<int>(P, "min_baseq", c.params.min_baseq);
      c.params.min_qual = param<double>(P, "min_qual", c.params.min_qual);
      c.sample = spec.sample;
      c.command_line = command_line;
      c.output = (scratch / (name + (c.gvcf ? ".g.vcf.gz" : ".vcf.gz"))).string();
      const CallStats s = run_call(c);
      steps.push_back({{"step", "call"}, {"seconds", seconds_since(t_engine)}});
      backend_used = s.backend;
      stats = {{"candidates", s.candidates}, {"records", s.records}, {"snps", s.snps}, {"indels", s.indels}};
      produced = {{"vcf", c.output}};
      for (const char* ext : {"tbi", "csi"})
        if (fs::exists(c.output + "." + ext, ec)) {
          produced.emplace_back(ext, c.output + "." + ext);
          index_of["vcf"] = ext;
        }
      load_reference_prov(Reference::load(c.reference));
    } else {  // qc
      const Reference ref = Reference::load(staged["reference"].string());
      const QcReport qc = compute_qc(staged["bam"].string(), ref, staged["vcf"].string());
      // The report shows what the QC was computed from; the run's own provenance is in the API.
      const Json report_prov = {
          {"sample", spec.sample},
          {"task", kind},
          {"inputs", inputs_prov},
          {"engine", {{"name", "omicsd"}, {"version", kVersion}, {"git_hash", kGitHash}}},
          {"host", host_name()},
          {"worker_id", options_.worker_id}};
      const QcOutputPaths qc_files =
          write_qc_outputs(qc, scratch.string(), name, spec.sample.empty() ? name : spec.sample,
                           name + ".vcf.gz", report_prov);
      steps.push_back({{"step", "qc"}, {"seconds", seconds_since(t_engine)}});
      stats = {{"reads", qc.reads},
               {"mapped", qc.mapped},
               {"mean_depth", qc.mean_depth},
               {"snvs", qc.snvs},
               {"indels", qc.indels}};
      produced = {{"qc", qc_files.json},
                  {"report", qc_files.report},
                  {"flagstat", qc_files.flagstat},
                  {"samtools_stats", qc_files.samtools_stats}};
      if (!qc_files.bcftools_stats.empty()) produced.emplace_back("bcftools_stats", qc_files.bcftools_stats);
      load_reference_prov(ref);
    }
  } catch (const InputError& e) {
    throw InputError(with_client_names(e.what(), client_names));
  } catch (const Error& e) {
    if (typeid(e) != typeid(Error)) throw;  // GPU faults and the like keep their type
    throw Error(with_client_names(e.what(), client_names));
  }

  // --- Store outputs, then the cache entry (outputs first: an entry always names stored objects).
  const auto t_store = std::chrono::steady_clock::now();
  RunnerTaskResult result;
  result.kind = kind;
  result.cache_key = key;
  for (const auto& [out_name, path] : produced) {
    if (!fs::is_regular_file(path, ec)) throw Error(kind + " task: engine did not write " + path.string());
    result.outputs[out_name] = store_.put_file(path, ObjectStore::Mode::Move);
  }
  for (const auto& [obj, idx] : index_of) {
    write_atomic(store_.root() / "meta" / "index-of" / (hex_of(result.outputs[obj].digest) + ".json"),
                 Json{{"digest", result.outputs[idx].digest}, {"ext", "." + idx}}.dump());
  }
  // A minimizer index the aligner built (a file, where a staged index would be a link): kept in the
  // store for the next task on this reference, instead of being rebuilt each time.
  const fs::path built_omi =
      staged.count("reference") ? fs::path(staged["reference"].string() + ".omi") : fs::path();
  if (t.kind_id == TaskKind::Align && fs::is_regular_file(fs::symlink_status(built_omi, ec))) {
    const ObjectRef omi = store_.put_file(built_omi, ObjectStore::Mode::Move);
    write_atomic(store_.root() / "meta" / "omi-of" / (hex_of(in.at("reference").digest) + ".json"),
                 Json{{"digest", omi.digest}, {"ext", ".omi"}}.dump());
  }
  steps.push_back({{"step", "store_outputs"}, {"seconds", seconds_since(t_store)}});

  Json outputs_prov = Json::object();
  for (const auto& [k, r] : result.outputs) outputs_prov[k] = {{"digest", r.digest}, {"size", r.size}};
  const auto wall_end = Clock::now();
  result.provenance = {
      {"task", kind},
      {"sample", spec.sample},
      {"cache_key", key},
      {"inputs", inputs_prov},
      {"outputs", outputs_prov},
      {"reference", reference_prov},
      {"engine", {{"name", "omicsd"}, {"version", kVersion}, {"git_hash", kGitHash}}},
      {"backend", backend_used},
      {"device", device_for(backend_used, device_param(P))},
      {"parameters", P},
      {"stats", stats},
      {"started_at", iso8601(wall_start)},
      {"finished_at", iso8601(wall_end)},
      {"seconds", std::chrono::duration<double>(wall_end - wall_start).count()},
      {"steps", steps},
      {"host", host_name()},
      {"worker_id", options_.worker_id},
  };
  write_cache_entry(result);

  if (!options_.keep_scratch) {
    if (own_scratch)
      fs::remove_all(scratch, ec);
    else
      fs::remove_all(staging, ec);
  }
  result.seconds = seconds_since(t_start);
  return result;
}

}  // namespace omicsd
