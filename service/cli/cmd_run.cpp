// `omicsd run`: the whole germline pipeline on one machine, no server: reads + reference ->
// <sample>.bam (+.bai), <sample>.vcf.gz (+.tbi), <sample>.qc.json, the HTML report and the MultiQC-parsed
// QC texts (host/qc/qc_outputs.hpp) in one output directory.
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstring>
#include <filesystem>

#include "host/align/align_pipeline.hpp"
#include "host/call/call_options.hpp"
#include "host/common/error.hpp"
#include "host/io/read_groups.hpp"
#include "host/io/reference.hpp"
#include "host/qc/qc_outputs.hpp"
#include "host/qc/qc_report.hpp"
#include "service/cli/cli.hpp"
#include "service/cli/progress_bar.hpp"

namespace omicsd {
namespace {

// Sample name from a read file: "NA12878_R1.fastq.gz" -> "NA12878".
std::string sample_from_path(const std::string& path) {
  std::string s = std::filesystem::path(path).filename().string();
  for (const char* ext : {".gz", ".bgz", ".fastq", ".fq", ".bam", ".cram", ".sam"})
    if (s.size() > std::strlen(ext) && s.compare(s.size() - std::strlen(ext), std::string::npos, ext) == 0)
      s.resize(s.size() - std::strlen(ext));
  for (const char* suffix : {"_R1", "_R2", "_1", "_2", ".R1", ".R2", ".1", ".2"})
    if (s.size() > std::strlen(suffix) &&
        s.compare(s.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
      s.resize(s.size() - std::strlen(suffix));
  return s.empty() ? "sample" : s;
}

}  // namespace

CliAction add_run_command(CLI::App& app, const std::string& command_line) {
  auto* cmd = app.add_subcommand(
      "run", "Whole pipeline: reads + reference -> sorted BAM, VCF and QC JSON in one output directory");
  struct Opts {
    AlignOptions align;
    CallOptions call;
    BackendChoice backend;
    std::string outdir, sample;
  };
  auto o = std::make_shared<Opts>();
  o->align.command_line = o->call.command_line = command_line;
  cmd->add_option("reference", o->align.reference, "Reference FASTA")->required();
  cmd->add_option("reads", o->align.reads1, "Reads: FASTQ(.gz), or BAM/CRAM")->required();
  cmd->add_option("reads2", o->align.reads2, "Mate FASTQ for paired-end reads");
  cmd->add_option("-o,--outdir", o->outdir, "Output directory (created if missing)")->required();
  cmd->add_option("--sample", o->sample,
                  "Sample name: output file names and VCF column (default: SM of a BAM/CRAM input's "
                  "@RG lines, else from the reads' file name)");
  cmd->add_flag("--interleaved", o->align.interleaved, "FASTQ holds interleaved pairs");
  cmd->add_option("-R,--read-group", o->align.read_group,
                  "Read group line (default: a BAM/CRAM input's own @RG lines, else ID and SM = sample)");
  cmd->add_option("-t,--threads", o->align.threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  add_backend_options(cmd, o->backend);
  o->align.mark_duplicates = true;
  cmd->add_flag("!--no-mark-duplicates", o->align.mark_duplicates,
                "Do not flag duplicates (by default they are flagged 0x400 as samtools markdup does, and "
                "calling skips them)");
  cmd->add_option("--optical-distance", o->align.optical_distance,
                  "Class duplicates within this many pixels on one tile as optical (samtools markdup -d; "
                  "default 0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--gvcf", o->call.gvcf, "Write a gVCF (<sample>.g.vcf.gz)");
  cmd->add_option("--regions", o->call.regions_bed, "BED: call only inside these intervals");
  cmd->add_option("--targets", o->call.targets_bed, "BED: report only records inside these intervals");
  add_ploidy_options(cmd, o->call);
  return {
      cmd, [o] {
        // An unaligned BAM names its sample in its @RG lines, which alignment keeps (unless -R).
        const std::string input_read_groups =
            o->align.read_group.empty() ? read_group_lines_of_file(o->align.reads1) : std::string();
        const std::vector<std::string> input_samples = read_group_samples(input_read_groups);
        if (input_samples.size() > 1 && !o->call.allow_multiple_samples)
          throw InputError(o->align.reads1 + ": reads of " + std::to_string(input_samples.size()) +
                           " samples (@RG SM " + input_samples[0] + ", " + input_samples[1] +
                           (input_samples.size() > 2 ? ", ..." : "") +
                           "): run one sample at a time, or pass --allow-multiple-samples to call them "
                           "as one sample named by --sample");
        const std::string sample = !o->sample.empty()       ? o->sample
                                   : !input_samples.empty() ? input_samples[0]
                                                            : sample_from_path(o->align.reads1);
        // File names from the sample: an SM from a BAM header may hold '/' or spaces.
        std::string stem = sample;
        for (char& ch : stem)
          if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-'))
            ch = '_';
        if (stem.empty() || stem == "." || stem == "..") stem = "sample";
        std::error_code ec;
        std::filesystem::create_directories(o->outdir, ec);
        if (ec) throw InputError(o->outdir + ": cannot create the output directory: " + ec.message());
        const std::filesystem::path dir(o->outdir);
        AlignOptions& a = o->align;
        a.output = (dir / (stem + ".bam")).string();
        if (a.read_group.empty() && input_read_groups.empty())
          a.read_group = "@RG\\tID:" + sample + "\\tSM:" + sample;
        ProgressBar bar("align");
        if (bar.enabled()) a.on_progress = [&bar](const AlignProgress& p) { bar.update(p); };
        a.make_backend = o->backend.align_factory();
        const AlignStats as = run_align(a);

        CallOptions& c = o->call;
        c.reference = a.reference;
        c.bam = a.output;
        c.output = (dir / (stem + (c.gvcf ? ".g.vcf.gz" : ".vcf.gz"))).string();
        c.threads = a.threads;
        c.make_backend = o->backend.genotype_factory();
        c.sample = sample;
        const CallStats cs = run_call(c);

        const Reference ref = Reference::load(a.reference);
        const QcReport qc = compute_qc(a.output, ref, c.output);
        const nlohmann::json provenance = {
            {"command_line", o->align.command_line},
            {"sample", sample},
            {"reference", a.reference},
            {"reads", o->align.reads2.empty() ? nlohmann::json::array({o->align.reads1})
                                              : nlohmann::json::array({o->align.reads1, o->align.reads2})},
            {"align", {{"backend", as.backend}, {"seconds", as.seconds}}},
            {"call", {{"backend", cs.backend}, {"seconds", cs.seconds}}}};
        const QcOutputPaths qc_files = write_qc_outputs(
            qc, o->outdir, stem, sample, std::filesystem::path(c.output).filename().string(), provenance);
        spdlog::info(
            "{}: {} reads, {:.2f}% mapped, mean depth {:.1f}x, {} variants (Ti/Tv {:.2f}); align {:.1f} s, "
            "call {:.1f} s",
            sample, qc.reads, 100.0 * double(qc.mapped) / double(std::max<uint64_t>(qc.reads, 1)),
            qc.mean_depth, cs.records, qc.ti_tv(), as.seconds, cs.seconds);
        spdlog::info("outputs: {}, {}, {}, {}, {}, {}, {}", a.output, c.output, qc_files.json,
                     qc_files.report, qc_files.flagstat, qc_files.samtools_stats, qc_files.bcftools_stats);
        return 0;
      }};
}

}  // namespace omicsd
