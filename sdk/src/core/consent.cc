#include "core/options.h"

namespace ferry::sdk {

const char* ConsentName(Consent c) {
  switch (c) {
    case Consent::kPending: return "pending";
    case Consent::kGranted: return "granted";
    case Consent::kDenied: return "denied";
  }
  return "pending";
}

}  // namespace ferry::sdk
