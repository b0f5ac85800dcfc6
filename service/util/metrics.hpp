#pragma once
// The process's Prometheus metrics registry. A utility below every other layer: the HTTP server
// renders it at /metrics, and workers, the webhook notifier and the catalog record into it
// without depending on the HTTP server.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace omicsd {

// Thread-safe registry of counters, gauges and fixed-bucket histograms, rendered in the Prometheus
// text exposition format (version 0.0.4). Metrics used before being described are created on the
// fly (counter for inc, gauge for set/add, histogram with default buckets for observe); using one
// name as two types throws std::logic_error.
class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void describe_counter(const std::string& name, std::string help);
  void describe_gauge(const std::string& name, std::string help);
  void describe_histogram(const std::string& name, std::string help, std::vector<double> buckets);

  void inc(const std::string& name, double v = 1, const Labels& labels = {});  // counter
  void set(const std::string& name, double v, const Labels& labels = {});      // gauge
  void add(const std::string& name, double v, const Labels& labels = {});      // gauge
  void observe(const std::string& name, double v, const Labels& labels = {});  // histogram

  // Current value of a counter/gauge series (histograms: the observation count); 0 if absent.
  double value(const std::string& name, const Labels& labels = {}) const;

  // Called (outside the lock) before each render, to refresh gauges such as queue depth.
  void add_collector(std::function<void(Metrics&)> collector);

  std::string render();

  static const std::vector<double>& default_buckets();  // seconds: 1 ms .. 10 s

 private:
  enum class Type { counter, gauge, histogram };
  struct Series {
    double value = 0;                   // counter/gauge
    std::vector<std::uint64_t> counts;  // histogram, per bucket (not cumulative)
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct Family {
    Type type = Type::counter;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // key: rendered label set `{a="x"}` (sorted by name)
  };
  Family& family(const std::string& name, Type type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::vector<std::function<void(Metrics&)>> collectors_;
};

}  // namespace omicsd
