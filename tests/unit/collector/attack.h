// The attacks of issue 11 (items 3 and 4) on a real ferry-collector or ferry-agent process, written once for the
// attack tests (tests/unit/collector/collector_attack_test.cc, tests/integration/agent_attack_test.cc assert what must
// hold) and the bench (tests/bench/bench_attack.cc prints the figures): idle and trickling connections held open, a
// batch timed on a fresh connection, a header flood with the collector's RSS sampled.
#ifndef FERRY_TESTS_UNIT_COLLECTOR_ATTACK_H_
#define FERRY_TESTS_UNIT_COLLECTOR_ATTACK_H_

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/collector_process.h"
#include "tests/unit/httpd/test_util.h"

namespace ferry::testsupport::attack {

// A POST /v1/batch of one event with this messageId, zstd, as exact bytes.
std::string BatchRequest(const std::string& write_key, const std::string& message_id);

// The collector's open connections as its /metrics tells (-1 when it does not answer).
double OpenConnections(const CollectorProcess& c);

// The 1-minute load average (-1 when unknown).
double LoadAverage();

// A client context trusting the collector's certificate (SSL_CTX_free it).
SSL_CTX* TlsContext(const CollectorProcess& c);

// `idle` connections that send nothing and `trickling` ones that send the start of a batch request and then one
// header byte every half second, held open until destruction. TLS when `tls` is set (the handshake done).
class Siege {
 public:
  Siege(int port, SSL_CTX* tls, int idle, int trickling);
  ~Siege();
  Siege(const Siege&) = delete;
  Siege& operator=(const Siege&) = delete;
  // Whether every connection opened; else why not.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  std::vector<std::unique_ptr<httpd::testing::Conn>> idle_, slow_;
  std::atomic<bool> stop_{false};
  std::thread trickler_;
  std::string error_;
};

// One batch on a fresh connection (TLS when `tls` is set), from connect to the last byte of the answer.
struct TimedBatch {
  bool answered = false;
  int status = 0;
  std::string body;
  double ms = 0;
};
TimedBatch SendBatch(int port, SSL_CTX* tls, const std::string& write_key, const std::string& message_id);

// `flooders` connections sending header lines (a batch request without a write key) until each sent `bytes_each`,
// reconnecting whenever the collector closes; the collector's RSS is sampled throughout, then waited on (up to
// settle_ms) to come back within 10 MB of the baseline.
struct FloodResult {
  long baseline_kb = 0, peak_kb = 0, end_kb = 0, after_kb = 0;
  int64_t sent_bytes = 0, connections = 0, answers_431 = 0, other_answers = 0;
  double seconds = 0;
};
FloodResult HeaderFlood(const CollectorProcess& c, int flooders, int64_t bytes_each, int settle_ms = 15000);
// The same against any server of this machine: its TCP port and its process (for the RSS), e.g. a ferry-agent.
FloodResult HeaderFlood(int port, pid_t pid, int flooders, int64_t bytes_each, int settle_ms = 15000);

}  // namespace ferry::testsupport::attack

#endif  // FERRY_TESTS_UNIT_COLLECTOR_ATTACK_H_
