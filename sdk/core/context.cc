#include "sdk/core/context.h"

#include <nlohmann/json.hpp>

#include "ferry/ferry.h"
#include "sdk/core/consent.h"

namespace ferry::core {

std::string BuildContextJson(const ContextFacts& facts, const std::string& session_id,
                             const std::map<std::string, Consent>& consent) {
  nlohmann::json c = nlohmann::json::object();
  c["app"] = {{"name", facts.app_name}, {"version", facts.app_version}};
  c["os"] = {{"name", facts.device.os_name}, {"version", facts.device.os_version}};
  if (!facts.device.device_model.empty()) c["device"] = {{"model", facts.device.device_model}};
  if (!facts.device.locale.empty()) c["locale"] = facts.device.locale;
  if (!facts.device.timezone.empty()) c["timezone"] = facts.device.timezone;
  c["sessionId"] = session_id;
  c["library"] = {{"name", "ferry"},
                  {"version", std::to_string(FERRY_VERSION_MAJOR) + "." + std::to_string(FERRY_VERSION_MINOR) + "." +
                                  std::to_string(FERRY_VERSION_PATCH)}};
  nlohmann::json snap = nlohmann::json::object();
  for (const auto& [purpose, state] : consent) snap[purpose] = ConsentName(state);
  c["consent"] = std::move(snap);
  return c.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ferry::core
