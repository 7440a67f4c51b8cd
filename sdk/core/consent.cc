#include "sdk/core/options.h"

namespace ferry::core {

const char* ConsentName(Consent c) {
  switch (c) {
    case Consent::kPending: return "pending";
    case Consent::kGranted: return "granted";
    case Consent::kDenied: return "denied";
  }
  return "pending";
}

}  // namespace ferry::core
