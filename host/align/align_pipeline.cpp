#include "host/align/align_pipeline.hpp"

#include <htslib/sam.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>

#include "host/align/mapper.hpp"
#include "host/align/seeding.hpp"
#include "host/common/error.hpp"
#include "host/common/parallel.hpp"
#include "host/io/bam_output.hpp"
#include "host/io/hts_handles.hpp"
#include "host/io/read_source.hpp"

namespace omicsd {

AlignStats run_align(const AlignOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const int threads = resolve_threads(o.threads);
  const Reference ref = Reference::load(o.reference);
  spdlog::info("reference {}: {} contigs, {} bases", o.reference, ref.contigs().size(), ref.total_length());
  const MinimizerIndex index = MinimizerIndex::open_or_build(ref, o.index);
  const SeedCounters seeds0 = seed_counters();

  ReadInputSpec spec;
  spec.path1 = o.reads1;
  spec.path2 = o.reads2;
  spec.interleaved = o.interleaved;
  spec.reference = &ref;
  auto source = open_read_source(spec);
  {
    std::error_code ec;
    uint64_t total = 0;
    for (const std::string& path : {o.reads1, o.reads2})
      if (!path.empty() && std::filesystem::is_regular_file(path, ec))
        total += std::filesystem::file_size(path, ec);
    source->set_bytes_total(total);
  }

  std::unique_ptr<AlignBackend> backend =
      o.make_backend ? o.make_backend(threads) : make_cpu_align_backend(threads);

  // A given -R line tags every read; otherwise a BAM/CRAM input's read groups are kept, header lines
  // and each read's RG tag (an unaligned BAM carries its lanes and libraries that way).
  std::vector<std::string> read_group_lines;
  std::vector<std::string> input_read_groups;
  if (!o.read_group.empty()) {
    read_group_lines.push_back(o.read_group);
  } else {
    const std::string kept = source->read_group_lines();
    for (size_t start = 0; start < kept.size();) {
      const size_t nl = std::min(kept.find('\n', start), kept.size());
      read_group_lines.push_back(kept.substr(start, nl - start));
      start = nl + 1;
    }
    input_read_groups = source->read_group_ids();
  }
  const SamHeaderPtr header(build_bam_header(ref, read_group_lines, o.command_line, o.reference_uri));
  BamOutputOptions bo;
  bo.path = o.output;
  bo.cram = o.cram;
  bo.reference_fasta = o.reference;
  bo.sort_memory_bytes = o.sort_memory_bytes;
  bo.tmp_dir = o.tmp_dir;
  bo.threads = threads;
  std::shared_ptr<DuplicateMarker> marker;
  if (o.mark_duplicates) {
    DuplicateMarkingOptions dmo;
    dmo.optical_distance = o.optical_distance;
    marker = std::make_shared<DuplicateMarker>(dmo);
    bo.final_pass = marker;
  }
  const auto writer = std::make_unique<SortedBamWriter>(bo, header.get());

  MapperOptions mo;
  mo.scoring = o.scoring;
  mo.min_score = o.min_score;
  mo.threads = threads;
  mo.read_group_id = read_group_id(o.read_group);
  mo.read_group_ids = std::move(input_read_groups);
  mo.mate_score_tag = o.mark_duplicates;
  Mapper mapper(ref, index, *backend, mo);

  // The next batch is read while the current one is mapped; memory holds two batches.
  ReadBatch current, next;
  bool have = source->next(current, o.batch_reads);
  if (!have) throw InputError(o.reads1 + ": no reads in input");
  uint64_t reads = 0;
  while (have) {
    // Input consumed through the current batch (read before the prefetch moves the reader on).
    const uint64_t consumed = source->bytes_consumed();
    auto prefetch = std::async(std::launch::async, [&] { return source->next(next, o.batch_reads); });
    try {
      const auto& records = mapper.map_batch(current);
      for (const BamRecordPtr& r : records) writer->add(r.get());
    } catch (...) {
      prefetch.wait();
      throw;
    }
    have = prefetch.get();
    reads += current.size();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::debug("aligned {} reads ({:.0f} reads/s)", reads, reads / std::max(secs, 1e-9));
    if (o.on_progress) {
      AlignProgress pr;
      pr.reads = reads;
      pr.bytes_consumed = consumed;
      pr.bytes_total = source->bytes_total();
      pr.seconds = secs;
      o.on_progress(pr);
    }
    std::swap(current, next);
  }
  writer->finish();
  if (o.on_progress) {
    AlignProgress pr;
    pr.reads = reads;
    pr.bytes_consumed = pr.bytes_total = source->bytes_total();
    pr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    pr.done = true;
    o.on_progress(pr);
  }
  spdlog::debug("alignment tasks: {} extension, {} mate rescue, {} DP cells; {} supplementary records",
                mapper.counters().tasks, mapper.counters().rescue_tasks, mapper.counters().cells,
                mapper.counters().supplementary);

  AlignStats st;
  const auto& c = mapper.counters();
  st.reads = c.reads;
  st.mapped = c.mapped;
  st.paired = source->paired() ? c.reads : 0;
  st.proper_pairs = c.proper;
  st.insert_mean = mapper.insert_model().mean;
  st.insert_sd = mapper.insert_model().sd;
  st.backend = backend->name();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (marker) {
    st.duplicates_marked = true;
    st.duplicates = marker->stats();
    const DuplicateStats& d = marker->stats();
    spdlog::info(
        "{}: duplicates marked: {} of {} paired reads ({} optical), {} of {} single reads ({} optical)",
        o.output, d.duplicate_pair, d.paired, d.duplicate_pair_optical, d.duplicate_single, d.single,
        d.duplicate_single_optical);
  }
  {
    // Differences: the counters are process-wide (a service may run several aligns at once).
    const SeedCounters s1 = seed_counters();
    const double n = double(std::max<uint64_t>(s1.reads - seeds0.reads, 1));
    spdlog::info(
        "{}: seeding per read: {:.1f} minimizers looked up ({:.2f} over the occurrence cap), {:.1f} "
        "seed hits, {:.2f} candidate chains ({:.2f} kept)",
        o.output, double(s1.minimizers - seeds0.minimizers) / n,
        double(s1.repetitive - seeds0.repetitive) / n, double(s1.hits - seeds0.hits) / n,
        double(s1.chains - seeds0.chains) / n, double(s1.chains_kept - seeds0.chains_kept) / n);
  }
  spdlog::info(
      "{}: {} reads, {:.2f}% mapped, {:.2f}% properly paired, insert {:.0f} +- {:.0f}, {:.1f} s ({} backend)",
      o.output, st.reads, 100.0 * st.mapped / std::max<uint64_t>(st.reads, 1),
      100.0 * st.proper_pairs / std::max<uint64_t>(st.reads, 1), st.insert_mean, st.insert_sd, st.seconds,
      st.backend);
  return st;
}

}  // namespace omicsd
