#include "cuda/backend_log.hpp"

#include <spdlog/spdlog.h>

namespace omicsd {

void backend_log(BackendLogLevel level, const std::string& message) {
  switch (level) {
    case BackendLogLevel::kDebug:
      spdlog::debug("{}", message);
      break;
    case BackendLogLevel::kInfo:
      spdlog::info("{}", message);
      break;
    case BackendLogLevel::kWarn:
      spdlog::warn("{}", message);
      break;
  }
}

}  // namespace omicsd
