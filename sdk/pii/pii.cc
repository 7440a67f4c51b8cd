// The masker's entry points: the rules (rules.cc) run by the JSON walker (walker.cc) and the detectors
// (detectors.cc).
#include "sdk/pii/pii.h"

#include <utility>

#include "sdk/pii/detectors.h"
#include "sdk/pii/rules.h"
#include "sdk/pii/walker.h"

namespace ferry::pii {

struct PiiMasker::Impl {
  Rules rules;
};

PiiMasker::PiiMasker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PiiMasker::~PiiMasker() = default;

base::Result<std::shared_ptr<const PiiMasker>> PiiMasker::Create(std::string_view rules_json,
                                                                 const base::SecretBytes& fallback_hash_key) {
  if (!base::EnsureSodium()) return base::Status::Internal("pii: libsodium failed to initialise");
  auto rules = ParseRules(rules_json, fallback_hash_key);
  if (!rules.ok()) return rules.status();
  auto impl = std::make_unique<Impl>();
  impl->rules = std::move(rules).value();
  return std::shared_ptr<const PiiMasker>(new PiiMasker(std::move(impl)));
}

PiiReport PiiMasker::ApplyToObject(nlohmann::json* obj) const {
  if (obj == nullptr || !obj->is_object()) return PiiReport{};
  return WalkObject(impl_->rules, obj->get_ptr<nlohmann::json::object_t*>());
}

ObjectTextOutcome PiiMasker::MaskObjectText(std::string_view json, size_t max_depth, std::string* out,
                                            PiiReport* report) const {
  PiiReport local;
  return pii::MaskObjectText(impl_->rules, json, max_depth, out, report != nullptr ? report : &local);
}

std::string PiiMasker::MaskString(std::string_view s, PiiReport* report) const {
  std::string out;
  bool drop = false;
  PiiReport local;
  const Rules& r = impl_->rules;
  if (MaskText(s, r.detectors, r.key, &out, report != nullptr ? report : &local, false, &drop)) return out;
  return std::string(s);
}

}  // namespace ferry::pii
