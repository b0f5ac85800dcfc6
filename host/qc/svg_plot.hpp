#pragma once
// Small inline SVG charts for the self-contained HTML report (host/qc/qc_html.hpp): no scripts, no
// external files; every bar and point carries a <title> with its exact values (the browser's tooltip).
#include <string>
#include <utility>
#include <vector>

namespace omicsd {

struct PlotSpec {
  std::string title, x_label, y_label;
  bool bars = false;  // a bar at each x (histograms); otherwise one line per series
};

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), x increasing
};

// An x/y chart of numeric series. Empty series give a chart that says "no data".
std::string svg_xy_plot(const PlotSpec& spec, const std::vector<PlotSeries>& series);

// Bars over named categories, in the order given.
std::string svg_category_bars(const PlotSpec& spec, const std::vector<std::pair<std::string, double>>& bars);

// Text escaped for XML/HTML element content and attribute values.
std::string xml_escape(const std::string& s);

}  // namespace omicsd
