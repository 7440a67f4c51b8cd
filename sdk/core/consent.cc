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

Consent ConsentGate::StateLocked(const std::string& purpose) const {
  auto it = states_.find(purpose);
  return it == states_.end() ? fallback_ : it->second;
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
  std::map<std::string, std::string> out;
  for (const auto& [purpose, state] : states_) {
    if (state != Consent::kGranted) continue;
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
  return states_;
}

std::set<std::string> ConsentGate::SendablePurposes() const {
  SharedHold hold = Shared();
  std::set<std::string> out;
  for (const auto& [purpose, state] : states_) {
    if (state == Consent::kGranted) out.insert(purpose);
  }
  out.insert(kNecessary);
  return out;
}

}  // namespace ferry::core
