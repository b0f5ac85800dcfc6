#include "host/call/call_options.hpp"
#include "service/cli/cli.hpp"

namespace omicsd {

CliAction add_call_command(CLI::App& app, const std::string& command_line) {
  auto* cmd = app.add_subcommand(
      "call", "Call germline SNVs and indels from a sorted, indexed BAM/CRAM -> bgzipped VCF + .tbi");
  auto o = std::make_shared<CallOptions>();
  o->command_line = command_line;
  CallParams& p = o->params;
  cmd->add_option("reference", o->reference, "Reference FASTA the reads were aligned to")->required();
  cmd->add_option("bam", o->bam, "Coordinate-sorted, indexed BAM/CRAM")->required();
  cmd->add_option("-o,--output", o->output, "Output VCF (bgzipped, .vcf.gz; .tbi written next to it)")
      ->required();
  cmd->add_option("--regions", o->regions_bed, "BED: call only inside these intervals");
  cmd->add_option("--targets", o->targets_bed,
                  "BED: report only records overlapping these intervals (panels)");
  cmd->add_flag("--gvcf", o->gvcf, "Write a gVCF: <NON_REF> alleles and hom-ref blocks");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores)")->check(CLI::NonNegativeNumber);
  auto backend = std::make_shared<BackendChoice>();
  add_backend_options(cmd, *backend);
  cmd->add_option("--sample", o->sample, "Sample name (default: SM of the @RG lines)");
  add_ploidy_options(cmd, *o);
  cmd->add_option("-q,--min-mapq", p.min_mapq, "Skip reads with mapping quality below this");
  cmd->add_option("-Q,--min-baseq", p.min_baseq, "Bases below this quality do not make candidates");
  cmd->add_flag("--keep-duplicates", p.keep_duplicates, "Use reads flagged as duplicates (0x400)");
  cmd->add_flag("--keep-secondary", p.keep_secondary, "Use secondary and supplementary alignments");
  cmd->add_flag("--keep-qcfail", p.keep_qcfail, "Use reads flagged as QC failures (0x200)");
  cmd->add_option("--min-alt-reads", p.min_alt_reads, "Reads needed to consider an allele");
  cmd->add_option("--min-alt-fraction", p.min_alt_fraction,
                  "Share of the depth needed to consider an allele");
  cmd->add_option("--min-qual", p.min_qual, "Records below this QUAL get FILTER LowQual");
  cmd->add_option("--emit-qual", p.emit_qual, "Records below this QUAL are not written");
  return {cmd, [o, backend] {
            o->make_backend = backend->genotype_factory();
            run_call(*o);
            return 0;
          }};
}

}  // namespace omicsd
