#pragma once
#include <memory>
#include <string>

#include "host/call/genotype_backend.hpp"

namespace omicsd {

// Resolves --backend auto|cpu|cuda and --device N for the genotyping stage, exactly as
// select_align_backend() does for alignment (backends/align_backend_select.hpp).
std::unique_ptr<GenotypeBackend> select_genotype_backend(const std::string& name, int threads,
                                                         int device = 0);

// As align_backend_factory(), for CallOptions::make_backend.
GenotypeBackendFactory genotype_backend_factory(const std::string& name, int device);

// As with_cpu_failover() of backends/align_backend_select.hpp, for the genotype stage.
std::unique_ptr<GenotypeBackend> with_cpu_failover(std::unique_ptr<GenotypeBackend> gpu, int device,
                                                   int threads);

}  // namespace omicsd
