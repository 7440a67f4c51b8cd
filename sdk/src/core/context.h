// The "context" object every event carries: app, os, device, locale, timezone, session, library, consent snapshot.
#ifndef FERRY_CORE_CONTEXT_H_
#define FERRY_CORE_CONTEXT_H_

#include <map>
#include <string>

#include "core/options.h"
#include "platform/platform.h"

namespace ferry::sdk {

struct ContextFacts {
  platform::DeviceInfo device;
  std::string app_name;
  std::string app_version;
};

// Serialised JSON object for an event's "context". No hardware identifiers.
std::string BuildContextJson(const ContextFacts& facts, const std::string& session_id,
                             const std::map<std::string, Consent>& consent);

}  // namespace ferry::sdk

#endif  // FERRY_CORE_CONTEXT_H_
