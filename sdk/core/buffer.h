// Buffer: the device's encrypted event buffer (one SQLCipher file, raw 256-bit key, WAL, 4 KiB pages).
//
// Tables: events (the queue, in insertion order), consent (per purpose: state, whether the user set it),
// meta (ids, keys, unreported counters), outbox (erasure requests waiting for the collector).
// Every method is thread-safe (one internal mutex around the one connection).
#ifndef FERRY_SDK_CORE_BUFFER_H_
#define FERRY_SDK_CORE_BUFFER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lib/base/log.h"
#include "lib/base/secret.h"
#include "lib/base/sqlite.h"
#include "lib/base/status.h"
#include "sdk/core/options.h"

namespace ferry::core {

// An event ready to be written: consent checked, PII masked, serialised.
struct NewEvent {
  std::string purpose;
  int64_t created_ms = 0;
  std::string user_id;
  std::string anonymous_id;
  std::string body;  // the event's JSON
};

// An event read back for upload.
struct QueuedEvent {
  int64_t seq = 0;
  std::string purpose;
  int64_t size = 0;  // accounted bytes (body + kRowOverhead)
  std::string body;
};

struct ConsentRow {
  Consent state = Consent::kPending;
  bool explicit_choice = false;  // set by the user (ferry_set_consent), not a default
  int64_t updated_ms = 0;
};

struct PurposeCount {
  int64_t events = 0;
  int64_t bytes = 0;
};

// What an eviction pass removed.
struct Evicted {
  int64_t events = 0;
  int64_t bytes = 0;
};

class Buffer {
 public:
  // Per-row overhead added to the body size when accounting for max_storage_bytes.
  static constexpr int64_t kRowOverhead = 64;
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the buffer. A file the key cannot open, a corrupt file, or one from a newer schema is moved aside
  // (logged) and a fresh buffer started. kStorage only when no buffer can be created at all.
  static base::Result<std::unique_ptr<Buffer>> Open(const std::string& path, const base::SecretBytes& key,
                                                    const base::Logger& log);
  ~Buffer();

  // Appends events in one transaction (all or nothing).
  base::Status Append(const std::vector<NewEvent>& events);

  // The oldest events whose purpose is in `purposes`, at most max_events and about max_bytes of bodies (at least one).
  base::Result<std::vector<QueuedEvent>> NextBatch(const std::set<std::string>& purposes, size_t max_events,
                                                   size_t max_bytes);
  // Highest seq among events of `purposes` (0 if none).
  base::Result<int64_t> MaxSeq(const std::set<std::string>& purposes);
  // Whether any event of `purposes` with seq <= max_seq remains.
  base::Result<bool> AnyUpTo(const std::set<std::string>& purposes, int64_t max_seq);
  // Deletes events (after the collector answered for them). Events already gone are skipped.
  base::Status Delete(const std::vector<QueuedEvent>& events);

  // Records a consent state; with purge, deletes the purpose's events; `record` (a consent event) is appended in the
  // same transaction when non-empty. Returns the number of events purged.
  base::Result<int64_t> SetConsent(const std::string& purpose, const ConsentRow& row, bool purge,
                                   const NewEvent* record);
  std::map<std::string, ConsentRow> LoadConsent();
  // Replaces the non-explicit (default) rows with `defaults` for purposes the user never chose.
  base::Status ApplyDefaultConsent(const std::map<std::string, Consent>& defaults);

  std::optional<std::string> GetMeta(const std::string& k);
  base::Status PutMeta(const std::string& k, const std::string& v);

  // Size and age limits: evicts the oldest events (non-"necessary" first) until the buffer is under max_bytes,
  // and every non-"necessary" event created before min_created_ms.
  base::Result<Evicted> Evict(int64_t max_bytes, int64_t min_created_ms);

  // Deletes every event (right to erasure on the device). Returns how many.
  base::Result<int64_t> DeleteAllEvents();

  // Outbox of requests for the collector (e.g. /v1/forget), kept until answered.
  base::Status AddOutbox(const std::string& kind, const std::string& body);
  base::Result<std::vector<std::pair<int64_t, std::string>>> Outbox(const std::string& kind);
  base::Status DeleteOutbox(int64_t id);

  // Events that belong to any of the given ids (userId or anonymousId), oldest first, as JSON bodies.
  base::Result<std::vector<std::string>> EventsFor(const std::string& user_id, const std::set<std::string>& anon_ids);

  // Per-purpose counts kept in memory (no query).
  std::map<std::string, PurposeCount> Counts();
  int64_t TotalBytes();
  const std::string& path() const { return path_; }

 private:
  Buffer(std::string path, base::Db db, base::Logger log);
  base::Status Migrate();
  base::Status LoadCounts();
  void Account(const std::string& purpose, int64_t events, int64_t bytes);
  base::Result<Evicted> EvictLocked(int64_t max_bytes, int64_t min_created_ms);

  std::mutex mu_;
  std::string path_;
  base::Db db_;
  base::Logger log_;
  base::Stmt insert_;
  std::map<std::string, PurposeCount> counts_;  // guarded by mu_
  int64_t total_bytes_ = 0;                     // guarded by mu_
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_BUFFER_H_
