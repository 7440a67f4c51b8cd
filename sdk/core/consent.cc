#include "sdk/core/consent.h"

#include <utility>

namespace ferry::core {

const char* ConsentName(Consent c) {
  switch (c) {
    case Consent::kPending: return "pending";
    case Consent::kGranted: return "granted";
    case Consent::kDenied: return "denied";
  }
  return "pending";
}

bool ConsentFromName(std::string_view name, Consent* out) {
  for (Consent c : {Consent::kPending, Consent::kGranted, Consent::kDenied}) {
    if (name == ConsentName(c)) {
      *out = c;
      return true;
    }
  }
  return false;
}

Consent ConsentGate::RecordedLocked(const std::string& purpose) const {
  auto it = states_.find(purpose);
  return it == states_.end() ? fallback_ : it->second;
}

Consent ConsentGate::StateLocked(const std::string& purpose) const {
  Consent recorded = RecordedLocked(purpose);
  if (minor_ && recorded == Consent::kGranted && purpose != kNecessary && MethodLocked(purpose) != kMethodGuardian) {
    return Consent::kPending;
  }
  return recorded;
}

std::map<std::string, Consent> ConsentGate::StatesLocked() const {
  std::map<std::string, Consent> out;
  for (const auto& entry : states_) out[entry.first] = StateLocked(entry.first);
  return out;
}

const std::string& ConsentGate::MethodLocked(const std::string& purpose) const {
  static const std::string kNone;
  auto it = methods_.find(purpose);
  return it == methods_.end() ? kNone : it->second;
}

void ConsentGate::LoadLocked(std::map<std::string, Consent> states) {
  states_ = std::move(states);
  states_[kNecessary] = Consent::kGranted;
}

const std::string& ConsentGate::ReceiptLocked(const std::string& purpose) const {
  static const std::string kNone;
  auto it = receipts_.find(purpose);
  return it == receipts_.end() ? kNone : it->second;
}

std::map<std::string, std::string> ConsentGate::GrantReceipts() const {
  SharedHold hold = Shared();
  return GrantReceiptsLocked();
}

std::map<std::string, std::string> ConsentGate::GrantReceiptsLocked() const {
  std::map<std::string, std::string> out;
  for (const auto& entry : states_) {
    const std::string& purpose = entry.first;
    if (StateLocked(purpose) != Consent::kGranted) continue;
    auto it = receipts_.find(purpose);
    if (it != receipts_.end() && !it->second.empty()) out[purpose] = it->second;
  }
  return out;
}

Consent ConsentGate::State(const std::string& purpose) const {
  SharedHold hold = Shared();
  return StateLocked(purpose);
}

std::map<std::string, Consent> ConsentGate::States() const {
  SharedHold hold = Shared();
  return StatesLocked();
}

std::set<std::string> ConsentGate::SendablePurposes() const {
  SharedHold hold = Shared();
  return SendablePurposesLocked();
}

std::set<std::string> ConsentGate::SendablePurposesLocked() const {
  std::set<std::string> out;
  for (const auto& entry : states_) {
    if (StateLocked(entry.first) == Consent::kGranted) out.insert(entry.first);
  }
  out.insert(kNecessary);
  return out;
}

}  // namespace ferry::core
