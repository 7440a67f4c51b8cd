// The rules: parsing the rules JSON (pii.h has the format) into what the masker runs, and the path patterns of
// "paths" and "allow". Internal to sdk/pii.
#ifndef FERRY_SDK_PII_RULES_H_
#define FERRY_SDK_PII_RULES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/secret.h"
#include "lib/base/status.h"
#include "sdk/pii/detectors.h"
#include "sdk/pii/pii.h"

namespace ferry::pii {

// A property path: the keys from the properties/traits object down to a value (arrays are transparent).
using Path = std::vector<std::string_view>;

// A dot-separated path pattern ("user.*", "*.password").
struct Pattern {
  std::vector<std::string> segs;  // a leading any-depth "*" is not stored here
  bool any_depth = false;
  int literals = 0;  // segments that are not "*"
  std::string text;
};

struct PathRule {
  Pattern pattern;
  PiiAction action = PiiAction::kOff;
};

// Does the pattern match this path exactly?
bool MatchFull(const Pattern& pt, const Path& path);
// Could the pattern match a descendant of this path?
bool MatchPrefix(const Pattern& pt, const Path& path);

// Everything the rules JSON says, ready to run.
struct Rules {
  DetectorActions detectors;
  std::vector<PathRule> paths;  // the rules' and the default drops, highest priority first
  bool has_allow = false;
  std::vector<Pattern> allow;
  base::SecretBytes key;  // the pseudonym key

  // Bit n set: a rule's last segment may match a key of n bytes (bit 63: of 63 bytes or more; all bits: a rule ends
  // in "*"). Set by IndexLeafSizes, which ParseRules calls; Lookup's quick refusal.
  uint64_t leaf_sizes = ~uint64_t{0};
  void IndexLeafSizes();

  // The highest-priority path rule matching path, or null.
  const PathRule* Lookup(const Path& path) const;
};

// Parses rules JSON (pii.h: PiiMasker::Create). kInvalidArgument with the reason on any error.
base::Result<Rules> ParseRules(std::string_view rules_json, const base::SecretBytes& fallback_hash_key);

}  // namespace ferry::pii

#endif  // FERRY_SDK_PII_RULES_H_
