// The admin roles as a store knows them: their names, the check made when a token is created, and the form they are
// kept in (one text column, comma-separated). Written once above every engine. Which role an admin call needs is
// decided above the store, by the rights service (collector/rights/authorize.h).
#ifndef FERRY_COLLECTOR_STORE_ROLES_H_
#define FERRY_COLLECTOR_STORE_ROLES_H_

#include <string>
#include <string_view>
#include <vector>

#include "lib/base/status.h"

namespace ferry::collector {

inline constexpr const char* kRoleCompliance = "compliance";  // subjects, the request register, the audit log
inline constexpr const char* kRoleOperator = "operator";      // write keys, metrics, the audit log
inline constexpr const char* kRoleAnalyst = "analyst";        // a subject's summary, the operations insight

bool ValidRole(std::string_view role);

// The roles of a new token: each one known, at least one, repeats dropped (the first one kept in place).
// InvalidArgument otherwise.
base::Result<std::vector<std::string>> CanonicalRoles(const std::vector<std::string>& roles);

// The stored form and back: "operator,compliance".
std::string JoinRoles(const std::vector<std::string>& roles);
std::vector<std::string> SplitRoles(std::string_view text);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_ROLES_H_
