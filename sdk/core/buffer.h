// Buffer: the device's encrypted event buffer (one SQLCipher file, raw 256-bit key, WAL, 4 KiB pages).
//
// Tables: events (the queue, in insertion order), consent (per purpose: state, whether the user set it),
// meta (ids, keys, unreported counters), outbox (erasure requests waiting for the collector), dicts (schema 3: the
// zstd dictionaries the events are compressed with, event_codec.h; an event's body is its JSON as TEXT or, written
// by Append since schema 3, a compressed BLOB).
// Every method is thread-safe (one internal mutex around the one connection).
//
// Files beside "<path>" (all mode 0600): "<path>-wal" and "<path>-shm" (SQLite's; kept across closes, so that a full
// disk can still open and drain the buffer), "<path>.lock" (held with an advisory lock while the buffer is open: a
// second opener is refused and nothing is touched), "<path>.keycheck" (a key-check value: BLAKE2b-256 keyed with the
// buffer key over a fixed text; it tells a wrong key from a damaged file and reveals nothing of the key),
// "<path>.clean" (written by a clean close, removed at open: see Open).
#ifndef FERRY_SDK_CORE_BUFFER_H_
#define FERRY_SDK_CORE_BUFFER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/log.h"
#include "lib/base/secret.h"
#include "lib/base/sqlite.h"
#include "lib/base/sqlite_rows.h"
#include "lib/base/status.h"
#include "platform/platform.h"
#include "sdk/core/event_codec.h"
#include "sdk/core/options.h"

namespace ferry::core {

// An event ready to be written: consent checked, PII masked, serialised.
struct NewEvent {
  std::string purpose;
  int64_t created_ms = 0;
  std::string user_id;
  std::string anonymous_id;
  std::string body;  // the event's JSON
  // Its stored form made ahead of Append (Buffer::Precompress), and the generation of the dictionary that made it;
  // Append uses it while that dictionary is still current (empty: Append compresses the body itself).
  std::string stored;
  uint64_t stored_generation = 0;
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
  std::string receipt;  // receiptId of the consent record that set this state ("" in buffers older than schema 2)
  // Schema 4: the method of that record ("explicit", "default", "guardian", "notice_change", "minor"; "" in older
  // buffers) and the notice version the app declared when it was made ("" when none was, or in older buffers).
  std::string method;
  std::string notice_version;
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

// What Open does with a buffer that this key cannot read (a wrong or lost key, or a file with no key check that
// cannot be read).
enum class UnreadablePolicy {
  kFail,   // Open fails with kCorruption and touches nothing (the default)
  kReset,  // the file is moved aside ("<path>.unreadable-<ms>") and a fresh buffer started; consent is marked lost
};

struct BufferOpenOptions {
  UnreadablePolicy unreadable = UnreadablePolicy::kFail;
  bool sync_commits = false;  // synchronous=FULL: every commit is fsync'd (SYNC durability); else NORMAL
};

// What Open found and did.
struct BufferOpenReport {
  bool reset = false;           // an unreadable buffer was moved aside and a fresh one started (kReset)
  bool salvaged = false;        // a damaged buffer was salvaged into a fresh one and moved aside
  int64_t salvaged_events = 0;  // events recovered from it
  bool consent_lost = false;    // the recorded consent could not be read (reset, or not salvageable)
  std::string set_aside;        // where the old file went
  std::string reason;           // why it was unreadable or damaged
};

class Buffer {
 public:
  // Per-row overhead added to the body size when accounting for max_storage_bytes.
  static constexpr int64_t kRowOverhead = 64;
  static constexpr int kSchemaVersion = 5;
  // Meta key set (to the time, in ms) when the buffer's recorded consent was lost (reset, or not salvageable).
  static constexpr const char* kMetaConsentLost = "consent_lost_ms";
  // Meta key written by a clean close: the per-purpose counts (JSON), trusted at open only with a valid clean marker.
  static constexpr const char* kMetaCountsAtClose = "counts_at_close";
  // A dictionary's tables come from up to this many events of its scope (the first append's, then once more when
  // that one had fewer).
  static constexpr size_t kDictionarySamples = 16;
  // New dictionaries for a change of scope (a new session, identify, reset, another app's ids through an agent): a
  // bucket of kDictionaryBurst, refilled by one for every kEventsPerDictionary events appended.
  static constexpr double kDictionaryBurst = 4;
  static constexpr double kEventsPerDictionary = 256;

  // Opens or creates the buffer, and holds its lock until destroyed.
  // - Another holder of the lock: kStorage ("in use"), nothing touched.
  // - A file this key cannot read (the key check disagrees, or is absent and the file cannot be read): kCorruption
  //   and nothing touched, or with UnreadablePolicy::kReset the file is moved aside and a fresh buffer started.
  // - A damaged file (the key is the buffer's, but the file or a page of it cannot be read):
  //   every readable event, consent row, id and queued request is copied into a fresh buffer, then the damaged file
  //   is moved aside ("<path>.corrupt-<ms>").
  // - kStorage for I/O failures and for a schema newer than this library (refused, never moved).
  // Every page is read and authenticated (PRAGMA quick_check) unless the last close was clean and the file is the one
  // it left: "<path>.clean" (written by the destructor once the connection is closed, keyed with the buffer key)
  // names the device, inode, size, modification and change times of the file and its WAL; it is removed here before
  // anything is written, so a crash, a kill or any change to either file since (a write, a truncation, a copy
  // over it, a lost WAL) brings the full check back. Damage met later (SQLITE_CORRUPT or NOTADB on a read or write)
  // withholds the marker at close, so the next Open checks and salvages the file.
  // report (optional) says what happened.
  static base::Result<std::unique_ptr<Buffer>> Open(const std::string& path, const base::SecretBytes& key,
                                                    const base::Logger& log, const BufferOpenOptions& options = {},
                                                    BufferOpenReport* report = nullptr);
  ~Buffer();

  // Appends events in one transaction (all or nothing).
  base::Status Append(const std::vector<NewEvent>& events);
  // Makes the stored form of each event of the current dictionary's scope ahead of Append, on the calling thread
  // (the writer's pipeline, writer.h): Append then only inserts it. Thread-safe, and does not wait for the buffer's
  // lock (an Append holds it for milliseconds): it reads a snapshot of the current dictionary, which Append checks
  // again (a stored form of a dictionary no longer current is made anew). One Precompressor per calling thread.
  void Precompress(EventCodec::Precompressor* with, std::vector<NewEvent>& events);

  // The oldest events whose purpose is in `purposes`, at most max_events and about max_bytes of bodies (at least one).
  // With after_seq > 0, only events with a greater seq (those past a batch still in flight).
  base::Result<std::vector<QueuedEvent>> NextBatch(const std::set<std::string>& purposes, size_t max_events,
                                                   size_t max_bytes, int64_t after_seq = 0);
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

  // Deletes the events of `purpose` created before min_created_ms (held events of a pending purpose past their
  // longest hold). Returns how many.
  base::Result<int64_t> DeleteOlder(const std::string& purpose, int64_t min_created_ms);

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
  // Opens the file at path_ as it is and checks it (schema, counts, every page unless clean_close): kCorruption when
  // it cannot be read.
  static base::Result<std::unique_ptr<Buffer>> OpenChecked(const std::string& path, const base::SecretBytes& key,
                                                           const base::Logger& log, const BufferOpenOptions& options,
                                                           bool clean_close = false);
  base::Status Migrate();
  base::Status QuickCheck();
  base::Status LoadCounts();
  // The counts a clean close left in meta; false (nothing changed) when they are absent or unreadable.
  bool LoadCountsAtClose();
  // Notes damage (kCorruption) met after open, so that the close leaves no clean marker; returns what it was given.
  base::Status Seen(base::Status s) {
    if (s.Is(base::Code::kCorruption)) damaged_.store(true);
    return s;
  }
  template <typename T>
  base::Result<T> Seen(base::Result<T> r) {
    if (r.status().Is(base::Code::kCorruption)) damaged_.store(true);
    return r;
  }
  // The methods of the same names (each checked with Seen).
  base::Status AppendImpl(const std::vector<NewEvent>& events);
  base::Result<std::vector<QueuedEvent>> NextBatchImpl(const std::set<std::string>& purposes, size_t max_events,
                                                       size_t max_bytes, int64_t after_seq);
  base::Result<int64_t> MaxSeqImpl(const std::set<std::string>& purposes);
  base::Result<bool> AnyUpToImpl(const std::set<std::string>& purposes, int64_t max_seq);
  base::Result<int64_t> SetConsentImpl(const std::string& purpose, const ConsentRow& row, bool purge,
                                       const NewEvent* record);
  base::Result<int64_t> DeleteOlderImpl(const std::string& purpose, int64_t min_created_ms);
  base::Result<Evicted> EvictImpl(int64_t max_bytes, int64_t min_created_ms);
  base::Result<int64_t> DeleteAllEventsImpl();
  base::Result<std::vector<std::string>> EventsForImpl(const std::string& user_id,
                                                       const std::set<std::string>& anon_ids);
  // The destructor's part: counts into meta, the connection closed, the marker written.
  void CloseClean();
  // Adds e's row to pending_: its stored form (compressed; null: its text) and its anonymousId (NULL when it is the
  // dictionary's). StoreStagedLocked stores the rows added since the last store, in one statement.
  void StageLocked(const NewEvent& e, const std::string_view* stored, bool anon_of_dictionary);
  base::Status StoreStagedLocked();
  void Account(const std::string& purpose, int64_t events, int64_t bytes);
  // Dictionaries (event_codec.h). Each has a scope: the anonymousId, userId and session id of the events it was made
  // from (its content carries them). Append makes one when its first event's scope is not the current one's, from
  // that event and up to kDictionarySamples of the same scope in the batch, and once more from kDictionarySamples
  // when it had fewer. A dictionary row keeps the seq of the first event that can use it: the events that use
  // dictionary d lie in [d.first_seq, first_seq of the next), and a dictionary none of them is left for is deleted
  // (CollectDictionariesLocked, after deletes). DeleteAllEvents deletes them all.
  bool SameScopeLocked(const NewEvent& e) const;
  // Publishes the current dictionary and its scope to Precompress (after every change of either).
  void PublishDictionaryLocked();
  void MakeDictionaryLocked(const std::vector<NewEvent>& events);
  void CollectDictionarySamplesLocked(const std::vector<NewEvent>& events);
  // Inserts a dictionary row and makes it current; false when it could not (the current one stays, or none).
  bool InstallDictionaryLocked(const std::string& bytes, std::string anon, std::string user, std::string session,
                               size_t samples);
  void CollectDictionariesLocked();
  std::string dict_anon_, dict_user_, dict_session_;  // guarded by mu_: the current dictionary's scope
  bool dict_scope_known_ = false;                     // guarded by mu_
  bool dictionary_refresh_pending_ = false;           // guarded by mu_
  std::vector<std::string> dictionary_samples_;       // guarded by mu_
  double dictionary_tokens_ = kDictionaryBurst;       // guarded by mu_
  int64_t dictionary_rows_ = 0;                       // guarded by mu_
  std::map<int64_t, std::string> dict_anons_;         // guarded by mu_: each dictionary's anonymousId, by id
  base::Result<Evicted> EvictLocked(int64_t max_bytes, int64_t min_created_ms);

  // What Precompress reads: the current dictionary (none when its scope is unknown) and its scope, published under a
  // lock of its own so that Precompress never waits for a commit.
  struct Published {
    EventCodec::Current dict;
    std::string anon, user, session;
  };
  std::mutex published_mu_;
  Published published_;                       // guarded by published_mu_
  std::unique_ptr<platform::FileLock> lock_;  // held for the buffer's lifetime (set by Open)
  std::mutex mu_;
  std::string path_;
  // A commit's rows, which insert_ stores in one statement (lib/base/sqlite_rows.h). Declared before db_: it outlives
  // the connection that reads it.
  std::unique_ptr<base::MemoryRows> pending_;  // guarded by mu_
  base::Db db_;
  base::Logger log_;
  base::Stmt insert_;
  EventCodec codec_;        // guarded by mu_
  std::string compressed_;  // guarded by mu_: Append's scratch
  // Append's stored forms: each event's (where it is), the ones made by Append in stored_, one after another.
  struct Form {
    enum Kind { kText, kMadeAhead, kHere } kind = kText;
    size_t offset = 0, size = 0;  // in stored_ (kHere)
  };
  std::vector<Form> forms_;                     // guarded by mu_
  std::string stored_;                          // guarded by mu_
  std::map<std::string, PurposeCount> counts_;  // guarded by mu_
  int64_t total_bytes_ = 0;                     // guarded by mu_
  std::atomic<bool> damaged_{false};            // kCorruption met since open: no clean marker at close
  std::string marker_key_;                      // keys the clean marker (derived from the buffer key; wiped)
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_BUFFER_H_
