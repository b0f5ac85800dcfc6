#include "service/logging.hpp"

#include <htslib/hts.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace omicsd {

void setup_logging(bool json, const char* level) {
  auto logger = spdlog::stderr_logger_mt("omicsd");
  if (json) {
    // Messages are escaped by the formatter's caller conventions: we keep them free of quotes.
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","pid":%P,"msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
  // htslib prints its own lines on stderr; the engine already turns its failures into one error line
  // naming the file and record, so htslib speaks only when debugging.
  hts_set_log_level(logger->level() <= spdlog::level::debug ? HTS_LOG_WARNING : HTS_LOG_OFF);
}

}  // namespace omicsd
