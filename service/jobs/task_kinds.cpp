#include "service/jobs/task_kinds.hpp"

#include "host/common/error.hpp"

namespace omicsd {

const std::vector<TaskKindInfo>& task_kinds() {
  static const std::vector<TaskKindInfo> kinds = {
      {TaskKind::Align,
       "align",
       {"reference", "reads", "reads1", "reads2"},
       {"threads", "backend", "device", "read_group", "interleaved", "min_score", "mark_duplicates",
        "optical_distance"}},
      {TaskKind::Call,
       "call",
       {"reference", "bam", "bai", "regions", "targets", "ploidy_bed"},
       {"threads", "backend", "device", "gvcf", "min_mapq", "min_baseq", "min_qual", "regions", "targets",
        "ploidy", "ploidy_bed", "sex", "allow_multiple_samples"}},
      {TaskKind::Qc, "qc", {"reference", "bam", "vcf"}, {"threads"}},
      {TaskKind::Tes, "tes", {"tes"}, {}},
  };
  return kinds;
}

const TaskKindInfo* find_task_kind(std::string_view name) {
  for (const TaskKindInfo& k : task_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

const TaskKindInfo& task_kind(std::string_view name) {
  if (const TaskKindInfo* k = find_task_kind(name)) return *k;
  throw InputError("unknown task kind '" + std::string(name) + "' (expected " + task_kind_names() + ")");
}

const std::string& task_kind_names() {
  static const std::string names = [] {
    std::string s;
    const auto& kinds = task_kinds();
    for (std::size_t i = 0; i < kinds.size(); ++i)
      s += (i == 0 ? "" : i + 1 == kinds.size() ? " or " : ", ") + kinds[i].name;
    return s;
  }();
  return names;
}

}  // namespace omicsd
