#include "collector/store/roles.h"

#include <algorithm>

namespace ferry::collector {

bool ValidRole(std::string_view role) {
  return role == kRoleCompliance || role == kRoleOperator || role == kRoleAnalyst;
}

base::Result<std::vector<std::string>> CanonicalRoles(const std::vector<std::string>& roles) {
  if (roles.empty()) return base::Status::InvalidArgument("an admin token needs at least one role");
  std::vector<std::string> out;
  for (const auto& r : roles) {
    if (!ValidRole(r)) return base::Status::InvalidArgument("unknown role '" + r + "' (compliance, operator, analyst)");
    if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
  }
  return out;
}

std::string JoinRoles(const std::vector<std::string>& roles) {
  std::string out;
  for (const auto& r : roles) {
    if (!out.empty()) out += ',';
    out += r;
  }
  return out;
}

std::vector<std::string> SplitRoles(std::string_view s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string_view::npos) e = s.size();
    if (e > b) out.emplace_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

}  // namespace ferry::collector
