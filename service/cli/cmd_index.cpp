#include <spdlog/spdlog.h>

#include "host/index/minimizer_index.hpp"
#include "host/io/reference.hpp"
#include "service/cli/cli.hpp"

namespace omicsd {

CliAction add_index_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("index", "Build the minimizer index of a FASTA (saved as <fasta>.omi)");
  struct Opts {
    std::string fasta;
    IndexParams params;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("fasta", o->fasta, "Reference FASTA (plain, gzip or bgzip)")->required();
  cmd->add_option("-k", o->params.k, "k-mer length")->check(CLI::Range(10, 28));
  cmd->add_option("-w", o->params.w, "minimizer window (k-mers)")->check(CLI::Range(1, 64));
  cmd->add_option("-t,--threads", o->params.threads, "build threads (0: all cores)")
      ->check(CLI::Range(0, 256));
  return {cmd, [o] {
            const Reference ref = Reference::load(o->fasta);
            spdlog::info("reference {}: {} contigs, {} bases", o->fasta, ref.contigs().size(),
                         ref.total_length());
            const std::string path =
                MinimizerIndex::build(ref, o->params, MinimizerIndex::default_path(o->fasta));
            const MinimizerIndex index = MinimizerIndex::open(path, ref);
            spdlog::info("index {}: k={} w={} {} minimizers, {} positions", path, index.k(), index.w(),
                         index.num_keys(), index.num_positions());
            return 0;
          }};
}

}  // namespace omicsd
