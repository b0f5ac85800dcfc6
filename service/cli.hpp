#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

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
}  // namespace omicsd
