// Test-only fault injection: answers to give to the next /v1/batch requests instead of the real ones.
// Off unless --fault-plan FILE or FERRY_COLLECTOR_FAULT_PLAN=FILE is given. See docs/COLLECTOR.md.
#ifndef FERRY_COLLECTOR_HTTP_FAULTS_H_
#define FERRY_COLLECTOR_HTTP_FAULTS_H_

#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "lib/base/status.h"

namespace ferry::collector {

struct Fault {
  int status = 0;            // HTTP status to answer (0 with reset)
  int retry_after = -1;      // Retry-After seconds, when >= 0
  bool reset = false;        // close the connection without a complete answer
  bool after_store = false;  // process and store the batch first, then give the fault (a lost answer)
  int delay_ms = 0;          // wait before answering
};

// Thread-safe queue of faults, consumed one per request.
class FaultPlan {
 public:
  // Parses a JSON list; each item: a status number (503), "reset", or an object
  // {"status":503,"retry_after":1,"reset":false,"after_store":false,"delay_ms":0}.
  base::Status LoadJson(const std::string& json_text);
  base::Status LoadFile(const std::string& path);
  std::optional<Fault> Next();
  size_t Remaining();

 private:
  std::mutex mu_;
  std::deque<Fault> faults_;  // guarded by mu_
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_FAULTS_H_
