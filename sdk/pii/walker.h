// The JSON walker: applies the rules to a properties/traits object in place (the allow list, then path rules, then
// the detectors on every string no path rule handled). Internal to sdk/pii.
#ifndef FERRY_SDK_PII_WALKER_H_
#define FERRY_SDK_PII_WALKER_H_

#include <nlohmann/json.hpp>

#include "sdk/pii/pii.h"
#include "sdk/pii/rules.h"

namespace ferry::pii {

// Masks obj (an object) in place and returns what changed.
PiiReport WalkObject(const Rules& rules, nlohmann::json::object_t* obj);

}  // namespace ferry::pii

#endif  // FERRY_SDK_PII_WALKER_H_
