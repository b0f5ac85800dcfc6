// The Prometheus metrics registry (service/util/metrics.hpp): text exposition format, collectors, types.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "service/util/metrics.hpp"

using omicsd::Metrics;

TEST(MetricsRegistry, RendersPrometheusText) {
  Metrics m;
  m.describe_counter("jobs_total", "Jobs.");
  m.inc("jobs_total", 1, {{"state", "done"}});
  m.inc("jobs_total", 2, {{"state", "done"}});
  m.set("queue_depth", 7);
  m.add("queue_depth", -2);
  m.describe_histogram("lat_seconds", "Latency.", {0.1, 1});
  m.observe("lat_seconds", 0.05);
  m.observe("lat_seconds", 0.5);
  m.observe("lat_seconds", 5);
  m.add_collector([](Metrics& mm) { mm.set("collected", 42); });
  auto text = m.render();
  EXPECT_NE(text.find("# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{state=\"done\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE queue_depth gauge\nqueue_depth 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_sum 5.55\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_count 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("collected 42\n"), std::string::npos) << text;
  EXPECT_EQ(m.value("jobs_total", {{"state", "done"}}), 3);
  EXPECT_THROW(m.set("jobs_total", 1), std::logic_error);
}
