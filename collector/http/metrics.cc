#include "collector/http/metrics.h"

#include <cstdio>
#include <numeric>

namespace ferry::collector {

namespace {
// A histogram in the text exposition format: each bucket of `bounds` with the count up to it, the bucket past the
// last bound (counts has one more than bounds), the sum and the count.
template <size_t N>
void AppendHistogram(std::string& out, const std::string& name, const char* help, const std::array<double, N>& bounds,
                     const std::array<int64_t, N + 1>& counts, double sum, int64_t count) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  char buf[64];
  int64_t cum = 0;
  for (size_t i = 0; i < N; ++i) {
    cum += counts[i];
    std::snprintf(buf, sizeof buf, "%g", bounds[i]);
    out += name + "_bucket{le=\"" + buf + "\"} " + std::to_string(cum) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum + counts[N]) + "\n";
  std::snprintf(buf, sizeof buf, "%.6f", sum);
  out += name + "_sum " + buf + "\n" + name + "_count " + std::to_string(count) + "\n";
}
}  // namespace

void Metrics::AddEvents(int64_t accepted, int64_t duplicate, int64_t rejected, int64_t suppressed) {
  accepted_ += accepted;
  duplicate_ += duplicate;
  rejected_ += rejected;
  suppressed_ += suppressed;
}

void Metrics::AddConsentRefusals(const std::map<std::string, int64_t>& by_reason, bool enforced) {
  if (by_reason.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& entry : by_reason) consent_refused_[{entry.first, enforced}] += entry.second;
}

void Metrics::ObserveBatch(int code, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++batches_[code];
  size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  ++hist_[i];
  sum_ += seconds;
  ++count_;
}

std::string Metrics::Render() const {
  std::string out;
  auto counter = [&out](const char* name, const char* help, int64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(v) + "\n";
  };
  counter("ferry_events_accepted_total", "Events stored.", accepted_.load());
  counter("ferry_events_duplicate_total", "Events already stored (same messageId).", duplicate_.load());
  counter("ferry_events_rejected_total", "Events that failed validation.", rejected_.load());
  counter("ferry_events_suppressed_total", "Events of erased subjects dropped on arrival.", suppressed_.load());
  counter("ferry_events_purged_total", "Events deleted by the retention job (older than the maximum age).",
          purged_.load());
  out +=
      "# HELP ferry_events_restricted_total New events of a subject whose processing is restricted (or who objected) "
      "for their purpose; mode=\"quarantine\": stored and excluded, mode=\"refuse\": not stored.\n"
      "# TYPE ferry_events_restricted_total counter\n"
      "ferry_events_restricted_total{mode=\"quarantine\"} " +
      std::to_string(restricted_quarantined_.load()) + "\nferry_events_restricted_total{mode=\"refuse\"} " +
      std::to_string(restricted_refused_.load()) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  out +=
      "# HELP ferry_events_consent_refused_total Events without the consent their purpose needs, by reason; "
      "mode=\"enforce\": not stored, mode=\"report-only\": stored and reported.\n"
      "# TYPE ferry_events_consent_refused_total counter\n";
  for (const auto& entry : consent_refused_) {
    out += "ferry_events_consent_refused_total{reason=\"" + entry.first.first + "\",mode=\"" +
           (entry.first.second ? "enforce" : "report-only") + "\"} " + std::to_string(entry.second) + "\n";
  }
  out += "# HELP ferry_batches_total POST /v1/batch requests by HTTP status.\n# TYPE ferry_batches_total counter\n";
  for (const auto& [code, n] : batches_) {
    out += "ferry_batches_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
  }
  AppendHistogram(out, "ferry_request_duration_seconds", "POST /v1/batch latency.", kBuckets, hist_, sum_, count_);
  return out;
}

std::string RenderGroupCommit(const GroupCommitter::Stats& s) {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, const std::string& v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + v + "\n";
  };
  metric("ferry_store_commits_total", "counter",
         "Group-commit transactions of the ingest writer (each stores the batches that waited for it).",
         std::to_string(s.transactions));
  metric("ferry_store_commit_failures_total", "counter",
         "Group-commit transactions that failed (their requests were answered with an error, nothing stored).",
         std::to_string(s.failed_transactions));
  metric("ferry_store_commit_requests_total", "counter", "Batch requests the group-commit transactions carried.",
         std::to_string(s.requests));
  metric("ferry_store_commit_events_total", "counter",
         "Events the group-commit transactions carried (stored, duplicate or suppressed); divided by "
         "ferry_store_commits_total, the events per transaction.",
         std::to_string(s.events));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", s.busy_seconds);
  metric("ferry_store_commit_seconds_total", "counter",
         "Time the group-commit writers spent in their transactions; its rate is the writers' utilisation (near "
         "their number, batches queue up behind them).",
         buf);
  metric("ferry_store_commit_queue", "gauge", "Batch requests waiting for the group-commit writers right now.",
         std::to_string(s.queued));
  const auto& bounds = GroupCommitter::kDurationBuckets;
  AppendHistogram(out, "ferry_store_commit_duration_seconds",
                  "Group-commit transactions by how long each took (every batch it carried waited for all of it).",
                  bounds, s.durations, s.busy_seconds,
                  std::accumulate(s.durations.begin(), s.durations.end(), int64_t{0}));
  AppendHistogram(out, "ferry_store_commit_wait_seconds",
                  "Batch requests by how long each waited for the group-commit writers, the queue and its transaction.",
                  bounds, s.waits, s.wait_seconds, std::accumulate(s.waits.begin(), s.waits.end(), int64_t{0}));
  std::snprintf(buf, sizeof buf, "%.6f", s.longest_seconds);
  metric("ferry_store_commit_longest_seconds", "gauge",
         "The longest group-commit transaction since the collector started.", buf);
  return out;
}

std::string RenderCheckpoints(const Engine::CheckpointStats& s) {
  if (!s.reported) return {};
  char bg[64], wr[64];
  std::snprintf(bg, sizeof bg, "%.6f", s.background_seconds);
  std::snprintf(wr, sizeof wr, "%.6f", s.writer_seconds);
  return std::string(
             "# HELP ferry_store_checkpoints_total Copies of the embedded store's write-ahead log into its database "
             "file: by the checkpointer thread, or by the writer between two transactions (batches wait for "
             "those).\n"
             "# TYPE ferry_store_checkpoints_total counter\n"
             "ferry_store_checkpoints_total{by=\"checkpointer\"} ") +
         std::to_string(s.background) + "\nferry_store_checkpoints_total{by=\"writer\"} " + std::to_string(s.writer) +
         "\n# HELP ferry_store_checkpoint_seconds_total Time spent in those copies (their writes and flushes share the "
         "disk with the commits').\n"
         "# TYPE ferry_store_checkpoint_seconds_total counter\n"
         "ferry_store_checkpoint_seconds_total{by=\"checkpointer\"} " +
         bg + "\nferry_store_checkpoint_seconds_total{by=\"writer\"} " + wr + "\n";
}

}  // namespace ferry::collector
