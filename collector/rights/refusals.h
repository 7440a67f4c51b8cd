// Refused admin calls, counted per source address and written to the audit log in aggregate (docs/SECURITY.md): one
// audit entry per source and interval carries how many calls that source had refused, by outcome, action and
// caller. So nobody without a credential (and no write-key holder) can make the collector write per request.
#ifndef FERRY_COLLECTOR_RIGHTS_REFUSALS_H_
#define FERRY_COLLECTOR_RIGHTS_REFUSALS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ferry::collector::rights {

struct RefusalOptions {
  int64_t interval_ms = 60 * 1000;  // a source's entry covers at most this long
  size_t max_sources = 1024;        // sources counted apart; refusals from further ones are counted under "other"
  size_t max_names = 16;            // callers and actions named in one entry; further ones count under "other"
};

// One source's refusals over one interval.
struct RefusalTally {
  std::string source;
  int64_t first_ms = 0, last_ms = 0;
  int64_t count = 0;
  std::map<std::string, int64_t> results;  // "unauthenticated", "denied"
  std::map<std::string, int64_t> actions;  // "subject.show", ...
  std::map<std::string, int64_t> callers;  // "anonymous", "unknown token", "NAME (PREFIX)"
};

// Thread-safe. Holds only counters: memory is bounded by max_sources * max_names.
class RefusalLedger {
 public:
  explicit RefusalLedger(RefusalOptions options = RefusalOptions()) : opts_(options) {}
  // Counts one refused call.
  void Count(const std::string& source, const std::string& result, const std::string& action, const std::string& caller,
             int64_t now_ms);
  // Removes and returns the tallies whose interval ended by now_ms (every tally when `all`), oldest first.
  std::vector<RefusalTally> TakeDue(int64_t now_ms, bool all);

 private:
  RefusalOptions opts_;
  std::mutex mu_;
  std::map<std::string, RefusalTally> open_;  // by source; guarded by mu_
};

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_REFUSALS_H_
