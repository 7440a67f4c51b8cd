// Test support: start a real ferry-collector process with a fresh data directory, a self-signed TLS certificate
// for 127.0.0.1/localhost and a write key, and read back what it stored. Used by the collector's own tests and by the
// SDK/agent integration tests.
#ifndef FERRY_TESTS_SUPPORT_COLLECTOR_PROCESS_H_
#define FERRY_TESTS_SUPPORT_COLLECTOR_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ferry::testsupport {

struct CollectorOptions {
  bool tls = true;                      // HTTPS with a certificate made for this run (ca_file() trusts it)
  std::string project = "test";         // project of the write key made at start
  std::string fault_plan_json;          // if set: written to a file and passed as --fault-plan (test-only answers)
  std::vector<std::string> extra_args;  // more ferry-collector flags, e.g. {"--rate-limit", "5"}
  std::string data_dir;                 // "" = a new temporary directory, removed by the destructor
  int start_timeout_ms = 15000;
};

// One collector child process. Not thread-safe; one owner. The process is killed if the test process dies
// (PR_SET_PDEATHSIG) and stopped by the destructor.
class CollectorProcess {
 public:
  // Starts the collector and waits until it listens. nullptr on failure (the reason is in *error when given).
  static std::unique_ptr<CollectorProcess> Start(const CollectorOptions& options = {}, std::string* error = nullptr);
  ~CollectorProcess();
  CollectorProcess(const CollectorProcess&) = delete;
  CollectorProcess& operator=(const CollectorProcess&) = delete;

  const std::string& url() const { return url_; }          // "https://127.0.0.1:PORT" (or http://)
  const std::string& ca_file() const { return ca_file_; }  // PEM certificate to trust ("" without TLS)
  const std::string& write_key() const { return write_key_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string batch_url() const { return url_ + "/v1/batch"; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // SIGTERM, then waits (SIGKILL after timeout_ms). Returns the exit status (0 = clean), or -1 if it had to be
  // killed or was not running.
  int Stop(int timeout_ms = 15000);
  // SIGKILL, no cleanup (a crash).
  void Kill();
  // Starts again on the same port and data directory (after Stop or Kill). false if it did not come up.
  bool Restart(std::string* error = nullptr);

  // Another write key (ferryctl keys create-write-key, offline on the data directory).
  std::string CreateWriteKey(const std::string& project) const;
  // A new admin token with these roles, e.g. "compliance,operator" (ferryctl keys create-admin-token, offline on the
  // data directory; works while the collector runs). "" on failure.
  std::string CreateAdminToken(const std::string& roles, const std::string& name = "test") const;
  // Every stored event (ferryctl debug dump-events --json): objects with project, messageId, type, userId,
  // anonymousId, name, purpose, timestampMs, receivedMs and body (the stored event JSON). Works while it runs.
  std::vector<nlohmann::json> DumpEvents(const std::string& project = "") const;
  // How many events `ferryctl debug dump-events` prints (lines, not parsed: a bench's million rows in seconds), or -1.
  long CountEvents(const std::string& project = "") const;
  // The collector's stderr so far.
  std::string Log() const;
  // Blocks until the collector's log since its last start holds `text` (true), or it exits or timeout_ms of real time
  // passed (false; a safety net, not a timing assumption). Wakes on every write to the log, never on a timer: tests
  // wait on what the collector says it did (e.g. "retention: deleted 1 expired events") instead of sleeping.
  bool WaitForLog(const std::string& text, int timeout_ms = 60000) const;
  // Resident set size of the process in KiB (from /proc), -1 if unknown.
  long RssKb() const;
  // GET /metrics text over the collector's own URL and CA ("" when it does not answer 200 within 10 s).
  std::string Metrics() const;
  // GET /metrics value of a sample line such as "ferry_events_accepted_total" (-1 when absent).
  static double MetricValue(const std::string& metrics_text, const std::string& sample);

 private:
  // The output of `ferryctl --json debug dump-events [--project P]` into *out; false if it failed.
  bool DumpEventsText(const std::string& project, std::string* out) const;
  CollectorProcess() = default;
  bool Spawn(const std::string& listen, std::string* error);

  CollectorOptions opts_;
  std::string data_dir_, url_, ca_file_, key_file_, write_key_, log_file_, fault_file_;
  bool owns_dir_ = false;
  int port_ = 0;
  pid_t pid_ = -1;
  size_t log_offset_ = 0;  // where the log of the last start begins
};

// A minimal libcurl client for tests (TLS verified against ca_file when given).
struct HttpResult {
  int status = 0;     // HTTP status; 0 on a transport error
  int curl_code = 0;  // CURLcode (0 = CURLE_OK)
  std::string body;
  std::string retry_after;  // the Retry-After header, if any
};
// method "GET", "POST", "PATCH" or "DELETE"; headers like "Content-Encoding: zstd".
HttpResult HttpRequest(const std::string& method, const std::string& url, const std::string& body = "",
                       const std::vector<std::string>& headers = {}, const std::string& ca_file = "",
                       long timeout_ms = 30000);

// The resident set size of process `pid` in KiB (/proc/<pid>/status VmRSS), -1 when unknown.
long ProcessRssKb(pid_t pid);

// CPU time (user + system) used so far by process `pid` and by each of its threads, in seconds; false when unknown
// (/proc/<pid>/stat and /proc/<pid>/task/*/stat).
struct ProcessCpu {
  double all_s = 0;
  std::map<long, double> thread_s;  // by thread id
  long long minor_faults = -1;      // of the process so far (memory touched first, or again after it went back)
  // What `this` (later) used since `before`: all threads, and the one thread that used the most.
  double AllSince(const ProcessCpu& before) const { return all_s - before.all_s; }
  double BusiestThreadSince(const ProcessCpu& before) const;
};
bool ReadProcessCpu(pid_t pid, ProcessCpu* out);
// Bytes process `pid` has caused to be written to storage so far (/proc/<pid>/io write_bytes, counted when pages are
// dirtied: a store's log and checkpoints), -1 when unknown.
long long ProcessWriteBytes(pid_t pid);

// Runs a command line through /bin/sh; returns its exit status and puts stdout in *out.
int RunCommand(const std::string& cmd, std::string* out);

// Paths of the built binaries.
std::string CollectorBinary();
std::string FerryctlBinary();

}  // namespace ferry::testsupport

#endif  // FERRY_TESTS_SUPPORT_COLLECTOR_PROCESS_H_
