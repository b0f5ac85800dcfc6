#pragma once
namespace omicsd {
// Configures the default spdlog logger on stderr: human-readable lines, or one JSON object per line
// with `json` (for machines: the daemon, workers, Batch logs). `level` is an spdlog level name.
void setup_logging(bool json, const char* level);
}  // namespace omicsd
