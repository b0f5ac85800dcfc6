// Ploidy and sample options shared by `omicsd call` and `omicsd run`.
#include "host/call/call_options.hpp"
#include "host/call/ploidy_genotypes.hpp"
#include "service/cli/cli.hpp"

namespace omicsd {

void add_ploidy_options(CLI::App* cmd, CallOptions& o) {
  cmd->add_option("--ploidy", o.ploidy, "Ploidy of the sample: 1 (haploid) to 10 (default 2)")
      ->check(CLI::Range(1, kMaxPloidy));
  cmd->add_option("--ploidy-bed", o.ploidy_bed,
                  "BED of 'chrom start end ploidy' lines overriding --ploidy and --sex there "
                  "(ploidy 0: not called)");
  cmd->add_option("--sex", o.sex,
                  "male: X outside the PARs and Y haploid; female: Y not called (GRCh37/GRCh38 X, Y)")
      ->check(CLI::IsMember({"male", "female"}));
  cmd->add_flag("--allow-multiple-samples", o.allow_multiple_samples,
                "Call reads of several @RG SM samples together as one sample (named by --sample)");
}

}  // namespace omicsd
