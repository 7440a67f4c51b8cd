// The JSON walker: applies the rules to a properties/traits object in place (the allow list, then path rules, then
// the detectors on every string no path rule handled). Internal to sdk/pii.
#ifndef FERRY_SDK_PII_WALKER_H_
#define FERRY_SDK_PII_WALKER_H_

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sdk/pii/pii.h"
#include "sdk/pii/rules.h"

namespace ferry::pii {

// Masks obj (an object) in place and returns what changed.
PiiReport WalkObject(const Rules& rules, nlohmann::json::object_t* obj);

// The single pass (stream.cc): validates the JSON text of an object and appends its masked form to *out, with what
// WalkObject does to the parsed object (pii.h: PiiMasker::MaskObjectText).
ObjectTextOutcome MaskObjectText(const Rules& rules, std::string_view text, size_t max_depth, std::string* out,
                                 PiiReport* rep);

// The mask path action: the first and the last UTF-8 character kept, one star for each character between; 2
// characters or fewer: all stars.
std::string PathMask(std::string_view v);

}  // namespace ferry::pii

#endif  // FERRY_SDK_PII_WALKER_H_
