#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "host/align/align_backend.hpp"
#include "host/call/genotype_backend.hpp"

namespace omicsd {
// Each subcommand registers its options and returns the action to run when it is selected.
struct CliAction {
  CLI::App* command = nullptr;
  std::function<int()> run;
};
CliAction add_index_command(CLI::App& app);
CliAction add_align_command(CLI::App& app, const std::string& command_line);
CliAction add_call_command(CLI::App& app, const std::string& command_line);
CliAction add_run_command(CLI::App& app, const std::string& command_line);
CliAction add_serve_command(CLI::App&, const std::string&);
// Client commands (service/cli/cmd_client.cpp) and the Batch worker (service/cli/cmd_worker.cpp).
CliAction add_submit_command(CLI::App& app);
CliAction add_status_command(CLI::App& app);
CliAction add_wait_command(CLI::App& app);
CliAction add_cancel_command(CLI::App& app);
CliAction add_resume_command(CLI::App& app);
CliAction add_logs_command(CLI::App& app);
CliAction add_outputs_command(CLI::App& app);
CliAction add_worker_command(CLI::App& app);
// omicsd reference add|list|get|delete (service/cli/cmd_reference.cpp).
CliAction add_reference_command(CLI::App& app);
// omicsd run-group set|list|get|delete (service/cli/cmd_run_group.cpp).
CliAction add_run_group_command(CLI::App& app);
// Stores (service/cli/cmd_readset.cpp).
CliAction add_readset_command(CLI::App& app);
// omicsd query: the variant store (service/cli/cmd_query.cpp).
CliAction add_query_command(CLI::App& app);
// --ploidy, --ploidy-bed, --sex and --allow-multiple-samples of `call` and `run` (cli_ploidy.cpp).
struct CallOptions;
void add_ploidy_options(CLI::App* command, CallOptions& options);
// --backend auto|cpu|cuda and --device N of `align`, `call` and `run` (cli_backend.cpp), and the
// factories the engine is handed for them (backends/: the engine never chooses a backend itself).
struct BackendChoice {
  std::string name = "auto";
  int device = 0;
  AlignBackendFactory align_factory() const;
  GenotypeBackendFactory genotype_factory() const;
};
void add_backend_options(CLI::App* command, BackendChoice& choice);
}  // namespace omicsd
