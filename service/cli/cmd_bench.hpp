#pragma once
#include "service/cli/cli.hpp"

namespace omicsd {

// `omicsd bench`: throughput of the alignment and pair-HMM backends on synthetic batches (the selected
// backend and the CPU backend side by side): GCUPS by read length, band width and batch size,
// pair-HMM cells/s, and for a CUDA backend the share of wall time spent in transfers. Prints a table;
// --json writes the same numbers. A tool for people, never a test: nothing is asserted.
CliAction add_bench_command(CLI::App& app);

}  // namespace omicsd
