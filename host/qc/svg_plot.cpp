#include "host/qc/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace omicsd {
namespace {

constexpr double kWidth = 640, kHeight = 300;
constexpr double kLeft = 70, kRight = 15, kTop = 30, kBottom = 50;
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};

std::string num(double v) {
  char buf[64];
  if (v != 0 && (std::fabs(v) >= 1e6 || std::fabs(v) < 1e-3))
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else
    std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Up to about `n` round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int n = 5) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / n;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return out;
}

struct Frame {
  double x0, x1, y0, y1;  // data range
  double px(double x) const {
    return kLeft + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (kWidth - kLeft - kRight);
  }
  double py(double y) const {
    return kHeight - kBottom - (y1 > y0 ? (y - y0) / (y1 - y0) : 0) * (kHeight - kTop - kBottom);
  }
};

std::string open_svg(const PlotSpec& spec) {
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 " + num(kWidth) +
                  " " + num(kHeight) + "\" width=\"" + num(kWidth) + "\" height=\"" + num(kHeight) +
                  "\" aria-label=\"" + xml_escape(spec.title) + "\">";
  s += "<title>" + xml_escape(spec.title) + "</title>";
  s += "<text x=\"" + num(kWidth / 2) +
       "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" + xml_escape(spec.title) +
       "</text>";
  return s;
}

std::string axes(const PlotSpec& spec, const Frame& f, bool x_ticks) {
  std::string s;
  const double bottom = kHeight - kBottom;
  s += "<line x1=\"" + num(kLeft) + "\" y1=\"" + num(kTop) + "\" x2=\"" + num(kLeft) + "\" y2=\"" +
       num(bottom) + "\" stroke=\"#333\"/>";
  s += "<line x1=\"" + num(kLeft) + "\" y1=\"" + num(bottom) + "\" x2=\"" + num(kWidth - kRight) +
       "\" y2=\"" + num(bottom) + "\" stroke=\"#333\"/>";
  for (double t : ticks(f.y0, f.y1)) {
    const double y = f.py(t);
    s += "<line x1=\"" + num(kLeft - 4) + "\" y1=\"" + num(y) + "\" x2=\"" + num(kWidth - kRight) +
         "\" y2=\"" + num(y) + "\" stroke=\"#ddd\"/>";
    s += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(y + 4) + "\" text-anchor=\"end\" font-size=\"11\">" +
         num(t) + "</text>";
  }
  if (x_ticks)
    for (double t : ticks(f.x0, f.x1)) {
      const double x = f.px(t);
      s += "<line x1=\"" + num(x) + "\" y1=\"" + num(bottom) + "\" x2=\"" + num(x) + "\" y2=\"" +
           num(bottom + 4) + "\" stroke=\"#333\"/>";
      s += "<text x=\"" + num(x) + "\" y=\"" + num(bottom + 16) +
           "\" text-anchor=\"middle\" font-size=\"11\">" + num(t) + "</text>";
    }
  s += "<text x=\"" + num((kLeft + kWidth - kRight) / 2) + "\" y=\"" + num(kHeight - 8) +
       "\" text-anchor=\"middle\" font-size=\"12\">" + xml_escape(spec.x_label) + "</text>";
  s += "<text transform=\"translate(14," + num((kTop + bottom) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">" + xml_escape(spec.y_label) + "</text>";
  return s;
}

std::string no_data(const PlotSpec& spec) {
  return open_svg(spec) + "<text x=\"" + num(kWidth / 2) + "\" y=\"" + num(kHeight / 2) +
         "\" text-anchor=\"middle\" font-size=\"13\" fill=\"#666\">no data</text></svg>";
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  return out;
}

std::string svg_xy_plot(const PlotSpec& spec, const std::vector<PlotSeries>& series) {
  Frame f{0, 0, 0, 0};
  bool any = false;
  for (const PlotSeries& s : series)
    for (const auto& [x, y] : s.points) {
      if (!any) f = {x, x, 0, y};
      f.x0 = std::min(f.x0, x), f.x1 = std::max(f.x1, x), f.y1 = std::max(f.y1, y), f.y0 = std::min(f.y0, y);
      any = true;
    }
  if (!any) return no_data(spec);
  if (spec.bars) f.x0 -= 0.5, f.x1 += 0.5;
  if (f.y1 <= f.y0) f.y1 = f.y0 + 1;
  std::string s = open_svg(spec) + axes(spec, f, true);
  for (size_t k = 0; k < series.size(); ++k) {
    const std::string color = kColors[k % std::size(kColors)];
    const PlotSeries& ser = series[k];
    if (spec.bars) {
      const double w = std::max(1.0, (f.px(f.x0 + 1) - f.px(f.x0)) * 0.9);
      for (const auto& [x, y] : ser.points) {
        const double top = f.py(std::max(y, 0.0)), base = f.py(std::max(f.y0, 0.0));
        s += "<rect x=\"" + num(f.px(x) - w / 2) + "\" y=\"" + num(top) + "\" width=\"" + num(w) +
             "\" height=\"" + num(std::max(0.0, base - top)) + "\" fill=\"" + color + "\"><title>" +
             xml_escape(spec.x_label) + " " + num(x) + ": " + num(y) + "</title></rect>";
      }
    } else {
      std::string pts;
      for (const auto& [x, y] : ser.points) pts += num(f.px(x)) + "," + num(f.py(y)) + " ";
      s += "<polyline fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.5\" points=\"" + pts +
           "\"><title>" + xml_escape(ser.name) + "</title></polyline>";
    }
    if (series.size() > 1)
      s += "<text x=\"" + num(kWidth - kRight - 4) + "\" y=\"" + num(kTop + 14 + 14 * double(k)) +
           "\" text-anchor=\"end\" font-size=\"11\" fill=\"" + color + "\">" + xml_escape(ser.name) +
           "</text>";
  }
  return s + "</svg>";
}

std::string svg_category_bars(const PlotSpec& spec, const std::vector<std::pair<std::string, double>>& bars) {
  if (bars.empty()) return no_data(spec);
  Frame f{0, double(bars.size()), 0, 0};
  for (const auto& b : bars) f.y1 = std::max(f.y1, b.second);
  if (f.y1 <= 0) f.y1 = 1;
  std::string s = open_svg(spec) + axes(spec, f, false);
  const double slot = (kWidth - kLeft - kRight) / double(bars.size());
  const bool rotate = bars.size() > 8;
  for (size_t i = 0; i < bars.size(); ++i) {
    const double x = kLeft + slot * double(i), top = f.py(bars[i].second), base = f.py(0);
    s += "<rect x=\"" + num(x + slot * 0.1) + "\" y=\"" + num(top) + "\" width=\"" + num(slot * 0.8) +
         "\" height=\"" + num(base - top) + "\" fill=\"" + kColors[0] + "\"><title>" +
         xml_escape(bars[i].first) + ": " + num(bars[i].second) + "</title></rect>";
    const double cx = x + slot / 2, ty = kHeight - kBottom + 14;
    s += rotate ? "<text transform=\"translate(" + num(cx) + "," + num(ty - 6) +
                      ") rotate(45)\" font-size=\"9\">" + xml_escape(bars[i].first.substr(0, 16)) + "</text>"
                : "<text x=\"" + num(cx) + "\" y=\"" + num(ty) +
                      "\" text-anchor=\"middle\" font-size=\"11\">" + xml_escape(bars[i].first) + "</text>";
  }
  return s + "</svg>";
}

}  // namespace omicsd
