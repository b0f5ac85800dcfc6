#include "service/util/metrics.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace omicsd {

const std::vector<double>& Metrics::default_buckets() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

namespace {
std::string format_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Prefer the shortest representation that round-trips.
  for (int prec = 1; prec <= 17; ++prec) {
    char tmp[64];
    std::snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (std::strtod(tmp, nullptr) == v) return tmp;
  }
  return buf;
}

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// Label set rendered without braces: a="x",b="y" (sorted by name).
std::string label_key(Metrics::Labels labels) {
  std::sort(labels.begin(), labels.end());
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k + "=\"" + escape_label(v) + "\"";
  }
  return out;
}

std::string with_labels(const std::string& name, const std::string& key, const std::string& extra = {}) {
  std::string inner = key;
  if (!extra.empty()) inner += (inner.empty() ? "" : ",") + extra;
  return inner.empty() ? name : name + "{" + inner + "}";
}
}  // namespace

Metrics::Family& Metrics::family(const std::string& name, Type type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    if (type == Type::histogram) it->second.buckets = default_buckets();
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + name + " used with two different types");
  }
  return it->second;
}

void Metrics::describe_counter(const std::string& name, std::string help) {
  std::lock_guard lk(mu_);
  family(name, Type::counter).help = std::move(help);
}
void Metrics::describe_gauge(const std::string& name, std::string help) {
  std::lock_guard lk(mu_);
  family(name, Type::gauge).help = std::move(help);
}
void Metrics::describe_histogram(const std::string& name, std::string help, std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  std::lock_guard lk(mu_);
  auto& f = family(name, Type::histogram);
  f.help = std::move(help);
  if (f.buckets != buckets) {
    f.buckets = std::move(buckets);
    f.series.clear();
  }
}

void Metrics::inc(const std::string& name, double v, const Labels& labels) {
  auto key = label_key(labels);
  std::lock_guard lk(mu_);
  family(name, Type::counter).series[key].value += v;
}
void Metrics::set(const std::string& name, double v, const Labels& labels) {
  auto key = label_key(labels);
  std::lock_guard lk(mu_);
  family(name, Type::gauge).series[key].value = v;
}
void Metrics::add(const std::string& name, double v, const Labels& labels) {
  auto key = label_key(labels);
  std::lock_guard lk(mu_);
  family(name, Type::gauge).series[key].value += v;
}
void Metrics::observe(const std::string& name, double v, const Labels& labels) {
  auto key = label_key(labels);
  std::lock_guard lk(mu_);
  auto& f = family(name, Type::histogram);
  auto& s = f.series[key];
  if (s.counts.size() != f.buckets.size()) s.counts.assign(f.buckets.size(), 0);
  auto it = std::lower_bound(f.buckets.begin(), f.buckets.end(), v);  // first bucket with le >= v
  if (it != f.buckets.end()) ++s.counts[static_cast<std::size_t>(it - f.buckets.begin())];
  s.sum += v;
  ++s.count;
}

double Metrics::value(const std::string& name, const Labels& labels) const {
  auto key = label_key(labels);
  std::lock_guard lk(mu_);
  auto f = families_.find(name);
  if (f == families_.end()) return 0;
  auto s = f->second.series.find(key);
  if (s == f->second.series.end()) return 0;
  return f->second.type == Type::histogram ? static_cast<double>(s->second.count) : s->second.value;
}

void Metrics::add_collector(std::function<void(Metrics&)> collector) {
  std::lock_guard lk(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::render() {
  std::vector<std::function<void(Metrics&)>> collectors;
  {
    std::lock_guard lk(mu_);
    collectors = collectors_;
  }
  for (auto& c : collectors) {
    try {
      c(*this);
    } catch (const std::exception& e) {
      spdlog::warn("metrics collector failed: {}", e.what());
    }
  }
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
    const char* type = f.type == Type::counter ? "counter" : f.type == Type::gauge ? "gauge" : "histogram";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& [key, s] : f.series) {
      if (f.type != Type::histogram) {
        out += with_labels(name, key) + " " + format_number(s.value) + "\n";
        continue;
      }
      std::uint64_t cum = 0;
      for (std::size_t i = 0; i < f.buckets.size(); ++i) {
        cum += i < s.counts.size() ? s.counts[i] : 0;
        out += with_labels(name + "_bucket", key, "le=\"" + format_number(f.buckets[i]) + "\"") + " " +
               std::to_string(cum) + "\n";
      }
      out += with_labels(name + "_bucket", key, "le=\"+Inf\"") + " " + std::to_string(s.count) + "\n";
      out += with_labels(name + "_sum", key) + " " + format_number(s.sum) + "\n";
      out += with_labels(name + "_count", key) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace omicsd
