// omicsd: one binary, several roles (see docs/architecture.md). This file only parses the command
// line and maps failures to one clear line on stderr and a non-zero exit.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda/device_info.hpp"
#include "host/common/error.hpp"
#include "omicsd_version.hpp"
#include "service/cli/cli.hpp"
#include "service/cli/cmd_bench.hpp"
#include "service/util/logging.hpp"

int main(int argc, char** argv) {
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  CLI::App app{"omicsd: GPU-accelerated genomic processing (alignment, variant calling, service)"};
  app.require_subcommand(1);
  app.fallthrough();  // --log-json / --log-level also work after the subcommand
  // The backends line tells a CUDA image from a CPU one without a GPU (scripts/container-test.sh).
  app.set_version_flag("--version", std::string("omicsd ") + omicsd::kVersion + " (git " + omicsd::kGitHash +
                                        ")\nbackends: " + omicsd::compiled_backends());
  bool log_json = false;
  std::string log_level = "info";
  app.add_flag("--log-json", log_json, "Log one JSON object per line (for machines)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  const std::vector<omicsd::CliAction> actions = {
      omicsd::add_index_command(app),
      omicsd::add_align_command(app, command_line),
      omicsd::add_call_command(app, command_line),
      omicsd::add_run_command(app, command_line),
      omicsd::add_bench_command(app),
      omicsd::add_serve_command(app, command_line),
      omicsd::add_submit_command(app),
      omicsd::add_status_command(app),
      omicsd::add_wait_command(app),
      omicsd::add_cancel_command(app),
      omicsd::add_resume_command(app),
      omicsd::add_logs_command(app),
      omicsd::add_outputs_command(app),
      omicsd::add_worker_command(app),
      omicsd::add_run_group_command(app),
      omicsd::add_reference_command(app),
      omicsd::add_readset_command(app),
      omicsd::add_query_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  omicsd::setup_logging(log_json, log_level.c_str());
  try {
    for (const auto& action : actions)
      if (action.command->parsed()) return action.run();
  } catch (const omicsd::InputError& e) {
    std::fprintf(stderr, "omicsd: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "omicsd: error: %s\n", e.what());
    return 1;
  }
  return 1;
}
