// On-device PII masking (C_API.md "PII rules"): built-in detectors scan every string value, path rules act on
// property paths, an allow list keeps only named properties. Hand-written scanners, no std::regex.
#ifndef FERRY_CORE_PII_H_
#define FERRY_CORE_PII_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/secret.h"
#include "base/status.h"

namespace ferry::sdk {

enum class PiiAction { kOff, kRedact, kMask, kHash, kDrop };

// Counters of what one Apply call changed (summed into the client's stats).
struct PiiReport {
  uint32_t values_masked = 0;  // string values (or parts of them) redacted, masked or hashed
  uint32_t keys_dropped = 0;   // keys removed by "drop" or by the allow list
};

// Immutable after Create(); Apply*/MaskString are const and safe from many threads at once.
class PiiMasker {
 public:
  // Parses rules JSON. An empty string means the defaults: every detector on with "redact";
  // "*.password", "*.token", "*.secret" dropped. fallback_hash_key (32 bytes) is used when the rules carry no
  // "hash_key". Invalid JSON, an unknown key or action, or a bad hash_key: kInvalidArgument with the reason.
  static base::Result<std::shared_ptr<const PiiMasker>> Create(std::string_view rules_json,
                                                               const base::SecretBytes& fallback_hash_key);

  // Masks an object (properties or traits) in place: allow list, then path rules, then detectors on every string
  // value that no path rule handled (nested objects and arrays too). Not an object: left alone.
  PiiReport ApplyToObject(nlohmann::json* obj) const;

  // Runs the detectors over one string (a screen name, an event name) and returns the masked text.
  std::string MaskString(std::string_view s, PiiReport* report = nullptr) const;

  ~PiiMasker();
  struct Impl;

 private:
  explicit PiiMasker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::sdk

#endif  // FERRY_CORE_PII_H_
