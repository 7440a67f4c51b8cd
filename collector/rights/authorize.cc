#include "collector/rights/authorize.h"

#include <algorithm>

#include "collector/store/roles.h"

namespace ferry::collector::rights {

namespace {

struct Rule {
  const char* name;
  std::vector<const char*> roles;
};

const Rule& RuleOf(Action action) {
  static const Rule kRules[] = {
      {"subject.show", {kRoleCompliance, kRoleAnalyst}},
      {"subject.export", {kRoleCompliance}},
      {"subject.erase", {kRoleCompliance}},
      {"subject.correct", {kRoleCompliance}},
      {"requests.list", {kRoleCompliance}},
      {"requests.add", {kRoleCompliance}},
      {"requests.approve", {kRoleCompliance}},
      {"requests.reject", {kRoleCompliance}},
      {"audit.list", {kRoleOperator, kRoleCompliance}},
      {"audit.verify", {kRoleOperator, kRoleCompliance}},
      {"keys.create-write-key", {kRoleOperator}},
      {"insight.read", {kRoleAnalyst}},
      {"insight.audience", {kRoleAnalyst}},
      {"keys.create-server-key", {kRoleOperator}},
      {"links.confirm", {kRoleCompliance}},
      {"keys.list", {kRoleOperator}},
      {"keys.revoke", {kRoleOperator}},
      {"keys.expire", {kRoleOperator}},
      {"subject.events", {kRoleCompliance}},
      {"whoami", {kRoleCompliance, kRoleOperator, kRoleAnalyst}},
      {"registry.read", {kRoleCompliance, kRoleOperator}},
      {"registry.edit", {kRoleCompliance}},
      {"subject.event-consent", {kRoleCompliance}},
      {"requests.complete", {kRoleCompliance}},
      {"requests.deliver", {kRoleCompliance}},
      {"requests.stats", {kRoleCompliance}},
      {"requests.lift", {kRoleCompliance}},
      {"restriction.mode", {kRoleCompliance}},
      {"outbox.read", {kRoleCompliance, kRoleOperator}},
      {"outbox.ack", {kRoleCompliance, kRoleOperator}},
      {"requests.extend", {kRoleCompliance}},
      {"requests.due", {kRoleCompliance}},
      {"requests.policy", {kRoleCompliance}},
      {"requests.identify", {kRoleCompliance}},
      {"consent.stats", {kRoleCompliance, kRoleAnalyst}},
      {"subject.minor", {kRoleCompliance}},
  };
  static_assert(sizeof(kRules) / sizeof(kRules[0]) == static_cast<size_t>(Action::kSubjectMinor) + 1,
                "one rule per Action, in the enum's order");
  return kRules[static_cast<size_t>(action)];
}

}  // namespace

const char* ActionName(Action action) { return RuleOf(action).name; }

const std::vector<const char*>& RolesFor(Action action) { return RuleOf(action).roles; }

std::string RolesNeeded(Action action) {
  std::string need;
  for (const char* r : RolesFor(action)) need += (need.empty() ? "" : " or ") + std::string(r);
  return need;
}

std::string AllowingRole(const std::vector<std::string>& roles, Action action) {
  for (const char* want : RolesFor(action)) {
    if (HoldsRole(roles, want)) return want;
  }
  return std::string();
}

bool HoldsRole(const std::vector<std::string>& roles, std::string_view role) {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

}  // namespace ferry::collector::rights
