// The collector's storage interface. The embedded SQLCipher store (sqlite_store.h) implements it; a PostgreSQL
// backend will implement it too. Implementations are thread-safe: every method may be called from any thread.
#ifndef FERRY_COLLECTOR_STORE_H_
#define FERRY_COLLECTOR_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace ferry::collector {

// One validated event ready to be stored (made by ingest.h's ParseBatch).
struct StoredEvent {
  std::string message_id;
  std::string type;
  std::string user_id;       // "" when absent
  std::string anonymous_id;  // "" when absent
  std::string name;          // track: event; screen: name; else ""
  std::string purpose;
  int64_t timestamp_ms = 0;  // corrected by the client's clock skew
  int64_t received_ms = 0;
  std::string body;  // the event as JSON text (with receivedAt and the corrected timestamp)
  // consent events: properties.purpose/state/previous; alias: previousId.
  std::string consent_purpose, consent_state, consent_previous;
  std::string previous_id;
};

enum class InsertOutcome { kAccepted, kDuplicate, kSuppressed };

// A batch of one project's events to insert. The store fills `outcomes` (one per event, same order).
struct InsertRequest {
  int64_t project_id = 0;
  std::vector<StoredEvent> events;
  std::map<std::string, int64_t> dropped;  // device-side drop counters to add to the project's totals
  std::vector<InsertOutcome> outcomes;
};

// A stored event as read back.
struct EventRow {
  std::string project;
  std::string message_id, type, user_id, anonymous_id, name, purpose;
  int64_t timestamp_ms = 0, received_ms = 0;
  std::string body;
};

struct WriteKeyInfo {
  int64_t project_id = 0;
  std::string project;
};

class Store {
 public:
  virtual ~Store() = default;

  // A cheap liveness check of the backing storage (GET /healthz).
  virtual base::Status Check() = 0;

  // Creates the project if needed and a new write key for it; returns the key (shown once, stored only hashed).
  virtual base::Result<std::string> CreateWriteKey(const std::string& project) = 0;

  // The project a write key belongs to, or nullopt for an unknown or revoked key.
  virtual base::Result<std::optional<WriteKeyInfo>> LookupWriteKey(const std::string& key) = 0;

  // Inserts several requests' events in ONE transaction (group commit): duplicates by (project, messageId) are
  // ignored, events of suppressed subjects are dropped, consent events fill the consent ledger, identify/alias fill
  // the identity links, drop counters are added. On failure nothing is stored and every request failed.
  virtual base::Status Insert(std::vector<InsertRequest*>& requests) = 0;

  // Keyed hash of a subject id (userId or anonymousId), the form the suppression list holds.
  virtual std::string IdHash(const std::string& id) = 0;
  // Whether a subject id hash is on the project's suppression list.
  virtual base::Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) = 0;
  // Adds an id hash to the suppression list (used by erasure; tests).
  virtual base::Status Suppress(int64_t project_id, const std::string& id_hash) = 0;

  // Stored events (debug/tests), in insertion order; project "" means all.
  virtual base::Result<std::vector<EventRow>> DumpEvents(const std::string& project) = 0;
  // The project's device drop counters.
  virtual base::Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) = 0;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_H_
