// --backend and --device of `align`, `call` and `run`: the user's choice, turned into the backend
// factories the engine is handed (backends/).
#include "backends/align_backend_select.hpp"
#include "backends/genotype_backend_select.hpp"
#include "service/cli/cli.hpp"

namespace omicsd {

void add_backend_options(CLI::App* cmd, BackendChoice& choice) {
  cmd->add_option("--backend", choice.name, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--device", choice.device, "CUDA device index for the cuda backend (default 0)")
      ->check(CLI::NonNegativeNumber);
}

AlignBackendFactory BackendChoice::align_factory() const { return align_backend_factory(name, device); }

GenotypeBackendFactory BackendChoice::genotype_factory() const {
  return genotype_backend_factory(name, device);
}

}  // namespace omicsd
