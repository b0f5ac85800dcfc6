#include "host/align/align_pipeline.hpp"
#include "service/cli/cli.hpp"
#include "service/cli/progress_bar.hpp"

namespace omicsd {
namespace {

// Parses sizes like 768M, 2G, 100000.
size_t parse_size(const std::string& s) {
  size_t idx = 0;
  const double v = std::stod(s, &idx);
  double mult = 1;
  if (idx < s.size()) {
    switch (s[idx]) {
      case 'k':
      case 'K':
        mult = 1024.0;
        break;
      case 'm':
      case 'M':
        mult = 1024.0 * 1024;
        break;
      case 'g':
      case 'G':
        mult = 1024.0 * 1024 * 1024;
        break;
      default:
        throw CLI::ValidationError("size", "bad size " + s);
    }
  }
  return size_t(v * mult);
}

}  // namespace

CliAction add_align_command(CLI::App& app, const std::string& command_line) {
  auto* cmd = app.add_subcommand(
      "align",
      "Align reads (FASTQ single/paired/interleaved, or BAM/CRAM) to a reference -> sorted, indexed BAM");
  auto o = std::make_shared<AlignOptions>();
  o->command_line = command_line;
  auto sort_mem = std::make_shared<std::string>("768M");
  cmd->add_option("reference", o->reference, "Reference FASTA (index <fasta>.omi is built on first use)")
      ->required();
  cmd->add_option("reads", o->reads1, "Reads: FASTQ(.gz), or BAM/CRAM")->required();
  cmd->add_option("reads2", o->reads2, "Mate FASTQ for paired-end reads");
  cmd->add_option("-o,--output", o->output, "Output BAM (CRAM with --cram); index written next to it")
      ->required();
  cmd->add_flag("--interleaved", o->interleaved, "FASTQ holds interleaved pairs");
  cmd->add_flag("--cram", o->cram, "Write CRAM instead of BAM");
  cmd->add_option("-R,--read-group", o->read_group,
                  R"(Read group line for every read, e.g. '@RG\tID:s1\tSM:NA12878' (default: a BAM/CRAM )"
                  R"(input keeps its own @RG lines and each read its RG tag))");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch-size", o->batch_reads, "Reads per batch (bounds memory)")
      ->check(CLI::Range(2, 50000000));
  cmd->add_option("--sort-memory", *sort_mem, "Memory for sorting before spilling to temporary files");
  cmd->add_option("--tmp-dir", o->tmp_dir,
                  "Directory for temporary sort files (default: next to the output)");
  auto backend = std::make_shared<BackendChoice>();
  add_backend_options(cmd, *backend);
  cmd->add_option("-T,--min-score", o->min_score, "Minimum alignment score to report");
  cmd->add_flag("--mark-duplicates", o->mark_duplicates,
                "Flag duplicates (0x400) as samtools fixmate -m + markdup would (mate-aware; adds ms:i)");
  cmd->add_option("--optical-distance", o->optical_distance,
                  "With --mark-duplicates: class duplicates within this many pixels on one tile as optical "
                  "(dt:Z:SQ; samtools markdup -d; default 0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-k", o->index.k, "Index k-mer length (used when building the index)")
      ->check(CLI::Range(10, 28));
  cmd->add_option("-w", o->index.w, "Index minimizer window (used when building the index)")
      ->check(CLI::Range(1, 64));
  return {cmd, [o, sort_mem, backend] {
            o->sort_memory_bytes = parse_size(*sort_mem);
            o->make_backend = backend->align_factory();
            ProgressBar bar("align");
            if (bar.enabled()) o->on_progress = [&bar](const AlignProgress& p) { bar.update(p); };
            run_align(*o);
            return 0;
          }};
}

}  // namespace omicsd
