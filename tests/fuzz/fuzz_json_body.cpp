// Request bodies: the one JSON parser of outside bytes (nesting limit, number range) and the body
// parsers of the routes behind it (runs, cohort rules, read-set metadata). Contract: bad input is an
// InputError / HttpError / nlohmann exception (all answered 400); anything else escaping, a crash, a
// leak or a hang is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "host/common/error.hpp"
#include "service/http/http_router.hpp"
#include "service/http/json_input.hpp"
#include "service/stores/readset_store.hpp"
#include "service/stores/variant_routes.hpp"
#include "service/jobs/workflow.hpp"

namespace {
template <typename F>
void expect_400(F&& f) {
  try {
    f();
  } catch (const omicsd::InputError&) {
  } catch (const omicsd::http::HttpError& e) {
    if (e.status() >= 500) __builtin_trap();
  } catch (const nlohmann::json::exception&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json body;
  try {
    body = omicsd::parse_json_input(text, "body");
  } catch (const omicsd::InputError&) {
    return 0;
  }
  if (omicsd::json_nesting_depth(text, 1 << 30) > omicsd::kMaxJsonDepth) __builtin_trap();  // limit bypassed
  (void)body.dump();  // what the daemon does with stored JSON: must not recurse out of the stack
  expect_400([&] { omicsd::parse_workflow_request(body); });
  expect_400([&] { omicsd::cohort_rule_from_json(body); });
  expect_400([&] { omicsd::ReadSetMetadata::from_json(body); });
  return 0;
}
