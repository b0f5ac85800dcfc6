#include "service/cli/progress_bar.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace omicsd {

std::string human_count(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.1f G", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1f M", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

std::string human_duration(double s) {
  char buf[32];
  const long t = long(std::lround(std::max(0.0, s)));
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)), enabled_(isatty(STDERR_FILENO)) {}

void ProgressBar::update(const AlignProgress& p) {
  if (!enabled_) return;
  const double rate = p.reads / std::max(p.seconds, 1e-9);
  std::string line = "\r" + label_ + " ";
  if (p.bytes_total > 0) {
    const double f = std::min(1.0, double(p.bytes_consumed) / double(p.bytes_total));
    constexpr int kWidth = 30;
    const int filled = int(f * kWidth);
    line += "[" + std::string(size_t(filled), '=') + (filled < kWidth ? ">" : "") +
            std::string(size_t(std::max(0, kWidth - filled - 1)), ' ') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%%  ", 100 * f);
    line += pct;
    line += human_count(double(p.reads)) + " reads  " + human_count(rate) + " reads/s";
    if (!p.done && f > 0.01) line += "  ETA " + human_duration(p.seconds * (1 - f) / f);
  } else {
    line += human_count(double(p.reads)) + " reads  " + human_count(rate) + " reads/s";
  }
  line += p.done ? "  done in " + human_duration(p.seconds) + "\033[K\n" : "\033[K";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace omicsd
