#pragma once
// The per-sample HTML report: one self-contained file (inline CSS and SVG plots, no scripts, nothing
// fetched) with the QC numbers, exactly as the QC JSON holds them (each in an element with a
// data-qc="<json path>" attribute), their distributions as plots, and the run's provenance.
#include <nlohmann/json.hpp>
#include <string>

#include "host/qc/qc_report.hpp"

namespace omicsd {

std::string qc_report_html(const QcReport& q, const std::string& sample, const nlohmann::json& provenance);

// Written atomically (temp name, fsync, rename).
void write_qc_report_html(const QcReport& q, const std::string& sample, const nlohmann::json& provenance,
                          const std::string& path);

}  // namespace omicsd
