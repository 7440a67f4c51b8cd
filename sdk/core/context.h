// The "context" object every event carries: app, os, device, locale, timezone, session, library, consent snapshot.
#ifndef FERRY_SDK_CORE_CONTEXT_H_
#define FERRY_SDK_CORE_CONTEXT_H_

#include <map>
#include <string>

#include "platform/platform.h"
#include "sdk/core/options.h"

namespace ferry::core {

struct ContextFacts {
  platform::DeviceInfo device;
  std::string app_name;
  std::string app_version;
};

// Serialised JSON object for an event's "context". No hardware identifiers.
std::string BuildContextJson(const ContextFacts& facts, const std::string& session_id,
                             const std::map<std::string, Consent>& consent);

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_CONTEXT_H_
