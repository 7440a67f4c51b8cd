// The withdrawal job (issue 12 item 6): carries out the denials ingest queued (RightsService::RunWithdrawals) off the
// ingest path, so that the batch carrying a denial never waits for a large erasure. The queue is in the store, so a
// denial not carried out before a restart is carried out after it. Woken by ingest after a batch that stored a
// denial (Wake), and every interval in case another process sharing the store queued one. Its first pass also
// finishes the erasures a previous run of the collector left in_progress (RightsService::ResumeErasures).
#ifndef FERRY_COLLECTOR_RIGHTS_WITHDRAWAL_JOB_H_
#define FERRY_COLLECTOR_RIGHTS_WITHDRAWAL_JOB_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "collector/rights/rights_service.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

namespace ferry::collector::rights {

class WithdrawalJob {
 public:
  WithdrawalJob(RightsService* rights, base::Clock* clock, int64_t interval_ms, base::Logger log);
  ~WithdrawalJob();
  WithdrawalJob(const WithdrawalJob&) = delete;
  WithdrawalJob& operator=(const WithdrawalJob&) = delete;

  // Runs a pass now and then one every interval (or at each Wake), on a thread of its own, until Stop().
  void Start();
  // Asks for a pass as soon as the one under way (if any) ends.
  void Wake();
  // Wakes the thread and joins it (a denial under way is finished first). Safe to call twice.
  void Stop();

 private:
  void Loop();

  RightsService* rights_;
  base::Clock* clock_;
  int64_t interval_ms_;
  int64_t started_ms_;  // when this job was made: the erasures acted on before it are resumed by its first pass
  base::Logger log_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;    // guarded by mu_
  bool kicked_ = false;  // guarded by mu_: a Wake since the last pass began
  std::thread thread_;
};

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_WITHDRAWAL_JOB_H_
