#include "collector/rights/refusals.h"

#include <algorithm>

namespace ferry::collector::rights {

namespace {

void Add(std::map<std::string, int64_t>& m, const std::string& name, size_t max_names) {
  auto it = m.find(name);
  if (it != m.end()) {
    ++it->second;
  } else if (m.size() < max_names) {
    m.emplace(name, 1);
  } else {
    ++m["other"];
  }
}

}  // namespace

void RefusalLedger::Count(const std::string& source, const std::string& result, const std::string& action,
                          const std::string& caller, int64_t now_ms) {
  std::lock_guard<std::mutex> l(mu_);
  std::string key = source;
  if (open_.find(key) == open_.end() && open_.size() >= opts_.max_sources) key = "other";
  RefusalTally& t = open_[key];
  if (t.count == 0) {
    t.source = key;
    t.first_ms = now_ms;
  }
  t.last_ms = std::max(t.last_ms, now_ms);
  ++t.count;
  Add(t.results, result, opts_.max_names);
  Add(t.actions, action, opts_.max_names);
  Add(t.callers, caller, opts_.max_names);
}

std::vector<RefusalTally> RefusalLedger::TakeDue(int64_t now_ms, bool all) {
  std::vector<RefusalTally> out;
  std::lock_guard<std::mutex> l(mu_);
  for (auto it = open_.begin(); it != open_.end();) {
    if (all || now_ms - it->second.first_ms >= opts_.interval_ms) {
      out.push_back(std::move(it->second));
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const RefusalTally& a, const RefusalTally& b) { return a.first_ms < b.first_ms; });
  return out;
}

}  // namespace ferry::collector::rights
