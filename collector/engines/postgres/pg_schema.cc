// The PostgreSQL engine's schema: migrations under an advisory lock, the id-hash key, and the monthly partitions of
// the events table.
#include <algorithm>
#include <cstdio>

#include "collector/engines/postgres/pg_parts.h"
#include "lib/base/time.h"

namespace ferry::collector::pg {

using base::Result;
using base::Status;

namespace {

constexpr int64_t kPartitionRetryMs = 3600 * 1000;  // a partition that could not be made is retried after this

std::string PartitionName(const base::UtcMonth& m) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "events_%04lld%02u", static_cast<long long>(m.year), m.month);
  return buf;
}

// The schema, one statement per entry (PQexecParams runs one statement at a time). Index i: version i -> i+1.
const std::vector<std::vector<const char*>>& Migrations() {
  static const std::vector<std::vector<const char*>> kMigrations = {
      {
          "CREATE TABLE meta(k text PRIMARY KEY, v text NOT NULL)",
          "CREATE TABLE projects(id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, created_ms bigint NOT NULL)",
          "CREATE TABLE write_keys(id bigserial PRIMARY KEY, project_id bigint NOT NULL REFERENCES projects(id), "
          "key_hash text NOT NULL UNIQUE, prefix text NOT NULL, created_ms bigint NOT NULL, revoked_ms bigint)",
          // Events, partitioned by event time; ids from one sequence give the insertion order across partitions.
          "CREATE SEQUENCE events_id_seq",
          "CREATE TABLE events(id bigint NOT NULL DEFAULT nextval('events_id_seq'), project_id bigint NOT NULL, "
          "message_id text NOT NULL, type text NOT NULL, user_id text, anonymous_id text, name text, purpose text, "
          "timestamp_ms bigint NOT NULL, received_ms bigint NOT NULL, body text NOT NULL) "
          "PARTITION BY RANGE (timestamp_ms)",
          "CREATE TABLE events_default PARTITION OF events DEFAULT",
          "CREATE INDEX events_by_user ON events(project_id, user_id) WHERE user_id IS NOT NULL",
          "CREATE INDEX events_by_anon ON events(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL",
          "CREATE INDEX events_by_time ON events(project_id, timestamp_ms)",
          "CREATE TABLE event_partitions(name text PRIMARY KEY, lo_ms bigint NOT NULL, hi_ms bigint NOT NULL)",
          // Dedup by (project, messageId): a unique key on the partitioned table would have to include the
          // partition key, and a resend's corrected timestamp may differ. Rows expire with the events' retention.
          "CREATE TABLE event_ids(project_id bigint NOT NULL, message_id text NOT NULL, timestamp_ms bigint NOT NULL, "
          "PRIMARY KEY(project_id, message_id))",
          "CREATE INDEX event_ids_by_time ON event_ids(project_id, timestamp_ms)",
          "CREATE TABLE consent_ledger(id bigserial PRIMARY KEY, project_id bigint NOT NULL, message_id text NOT NULL, "
          "user_id text, anonymous_id text, purpose text NOT NULL, state text NOT NULL, previous text, "
          "timestamp_ms bigint NOT NULL, received_ms bigint NOT NULL, device text)",
          "CREATE INDEX consent_by_user ON consent_ledger(project_id, user_id) WHERE user_id IS NOT NULL",
          "CREATE INDEX consent_by_anon ON consent_ledger(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL",
          "CREATE INDEX consent_by_time ON consent_ledger(project_id, timestamp_ms)",
          "CREATE TABLE identity_links(id bigserial PRIMARY KEY, project_id bigint NOT NULL, from_kind text NOT NULL, "
          "from_id text NOT NULL, user_id text NOT NULL, source text NOT NULL, first_seen_ms bigint NOT NULL, "
          "UNIQUE(project_id, from_kind, from_id, user_id))",
          "CREATE INDEX identity_by_user ON identity_links(project_id, user_id)",
          "CREATE INDEX identity_by_from ON identity_links(project_id, from_id)",
          "CREATE TABLE suppressions(project_id bigint NOT NULL, id_hash text NOT NULL, created_ms bigint NOT NULL, "
          "PRIMARY KEY(project_id, id_hash))",
          "CREATE TABLE dropped_counters(project_id bigint NOT NULL, reason text NOT NULL, count bigint NOT NULL, "
          "PRIMARY KEY(project_id, reason))",
          "CREATE TABLE traits(project_id bigint NOT NULL, subject_id text NOT NULL, k text NOT NULL, v text NOT NULL, "
          "updated_ms bigint NOT NULL, PRIMARY KEY(project_id, subject_id, k))",
          "CREATE TABLE requests(id text PRIMARY KEY, kind text NOT NULL, project text NOT NULL, subject text NOT "
          "NULL, "
          "subject_hash text NOT NULL, state text NOT NULL, source text NOT NULL, received_ms bigint NOT NULL, "
          "due_ms bigint NOT NULL, acted_by text NOT NULL, acted_ms bigint NOT NULL, result text NOT NULL)",
          "CREATE INDEX requests_by_subject ON requests(subject_hash)",
          "CREATE INDEX requests_by_due ON requests(state, due_ms)",
          "CREATE TABLE audit_log(seq bigint PRIMARY KEY, time_ms bigint NOT NULL, actor text NOT NULL, "
          "role text NOT NULL, action text NOT NULL, subject_hash text NOT NULL, result text NOT NULL, "
          "detail text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL)",
          "CREATE INDEX audit_by_subject ON audit_log(subject_hash, seq)",
          "CREATE TABLE admin_tokens(id bigserial PRIMARY KEY, name text NOT NULL, token_hash text NOT NULL UNIQUE, "
          "prefix text NOT NULL, roles text NOT NULL, created_ms bigint NOT NULL, revoked_ms bigint)",
          "CREATE TABLE project_settings(project_id bigint PRIMARY KEY, max_event_age_ms bigint NOT NULL)",
      },
      // 2: identity links carry their provenance and a state (collector/store/identity.h); server keys. Links made
      // before this are of unknown provenance: the walk treats them as a write key's.
      {
          "ALTER TABLE identity_links ADD COLUMN credential text NOT NULL DEFAULT 'unknown', "
          "ADD COLUMN key_id text NOT NULL DEFAULT '', ADD COLUMN via_message_id text NOT NULL DEFAULT '', "
          "ADD COLUMN via_anonymous_id text NOT NULL DEFAULT '', ADD COLUMN asserted_ms bigint NOT NULL DEFAULT 0, "
          "ADD COLUMN state text NOT NULL DEFAULT 'active', ADD COLUMN confirmed_by text NOT NULL DEFAULT '', "
          "ADD COLUMN confirmed_ms bigint NOT NULL DEFAULT 0",
          "ALTER TABLE write_keys ADD COLUMN kind text NOT NULL DEFAULT 'write'",
      },
      // 3: credential expiry (write keys and admin tokens; NULL: none).
      {
          "ALTER TABLE write_keys ADD COLUMN expires_ms bigint",
          "ALTER TABLE admin_tokens ADD COLUMN expires_ms bigint",
      },
      // 4: consent records carry how they were collected and their receipt (issue 12).
      {
          "ALTER TABLE consent_ledger ADD COLUMN method text, ADD COLUMN notice_id text, "
          "ADD COLUMN notice_version text, ADD COLUMN language text, ADD COLUMN device_seq bigint, "
          "ADD COLUMN receipt_id text",
          "CREATE INDEX consent_by_receipt ON consent_ledger(project_id, receipt_id) WHERE receipt_id IS NOT NULL",
      },
      // 5: the purpose and processing registry (issue 13): one JSON document per project, and the retention of each
      // purpose that has one (the retention job reads it).
      {
          "CREATE TABLE IF NOT EXISTS processing_registry(project_id bigint PRIMARY KEY, document text NOT NULL, "
          "updated_ms bigint NOT NULL)",
          "CREATE TABLE IF NOT EXISTS purpose_retention(project_id bigint NOT NULL, purpose text NOT NULL, "
          "max_age_ms bigint NOT NULL, PRIMARY KEY(project_id, purpose))",
      },
      // 6: consent enforcement per project (issue 12); existing projects keep storing as before (report-only).
      {
          "CREATE TABLE IF NOT EXISTS consent_policy(project_id bigint PRIMARY KEY, mode text NOT NULL, "
          "necessary text NOT NULL)",
          "INSERT INTO consent_policy(project_id, mode, necessary) SELECT id, 'report-only', '[]' FROM projects "
          "ON CONFLICT (project_id) DO NOTHING",
      },
      // 7: the insight feed replays events by insertion sequence (EventFeedSource::EventsAfter).
      {
          "CREATE INDEX IF NOT EXISTS events_by_id ON events(id)",
      },
      // 8: restriction of processing and objection (issue 13): one row per id of a restricted subject and request
      // (purposes: comma-separated, "" = every purpose; lifted_ms 0 while in force), and each project's mode.
      {
          "CREATE TABLE IF NOT EXISTS restrictions(id bigserial PRIMARY KEY, project_id bigint NOT NULL, "
          "subject_id text NOT NULL, kind text NOT NULL, purposes text NOT NULL, request_id text NOT NULL, "
          "since_ms bigint NOT NULL, lifted_ms bigint NOT NULL DEFAULT 0)",
          "CREATE INDEX IF NOT EXISTS restrictions_by_project ON restrictions(project_id, lifted_ms)",
          "CREATE INDEX IF NOT EXISTS restrictions_by_request ON restrictions(request_id)",
          "CREATE TABLE IF NOT EXISTS restriction_mode(project_id bigint PRIMARY KEY, mode text NOT NULL)",
      },
      // 9: the downstream outbox (issue 13): changes for downstream systems, their webhook deliveries, the feed's
      // consumers, and named secrets (the outbox's sealing and signing keys).
      {
          "CREATE TABLE IF NOT EXISTS outbox(seq bigserial PRIMARY KEY, project text NOT NULL, kind text NOT NULL, "
          "request_id text NOT NULL, body text NOT NULL, created_ms bigint NOT NULL)",
          "CREATE INDEX IF NOT EXISTS outbox_by_request ON outbox(request_id)",
          "CREATE TABLE IF NOT EXISTS outbox_deliveries(seq bigint NOT NULL, destination text NOT NULL, state text NOT "
          "NULL, "
          "attempts bigint NOT NULL, next_ms bigint NOT NULL, last_status bigint NOT NULL, last_error text NOT NULL, "
          "delivered_ms bigint NOT NULL, PRIMARY KEY(seq, destination))",
          "CREATE INDEX IF NOT EXISTS deliveries_due ON outbox_deliveries(state, next_ms)",
          "CREATE TABLE IF NOT EXISTS outbox_consumers(consumer text PRIMARY KEY, acked_seq bigint NOT NULL, "
          "updated_ms bigint NOT NULL)",
          "CREATE TABLE IF NOT EXISTS secrets(name text PRIMARY KEY, v text NOT NULL)",
      },
      // 10: proof outlives what it covers (issue 12): each event keeps the receipt of the consent record that
      // admitted it; a consent record remembers the newest event it covered that retention deleted, and a project
      // may keep consent records longer than that (else --consent-keep-days).
      {
          "ALTER TABLE events ADD COLUMN IF NOT EXISTS consent_receipt text",
          "CREATE INDEX IF NOT EXISTS events_by_receipt ON events(project_id, consent_receipt) "
          "WHERE consent_receipt IS NOT NULL",
          "ALTER TABLE consent_ledger ADD COLUMN IF NOT EXISTS covered_until_ms bigint",
          "CREATE TABLE IF NOT EXISTS consent_retention(project_id bigint PRIMARY KEY, keep_ms bigint NOT NULL)",
      },
      // 11: the due-date policy of each project's requests (issue 13): gdpr, pipl or days:N, by project name ("":
      // every project without its own).
      {
          "CREATE TABLE IF NOT EXISTS request_policies(project text PRIMARY KEY, policy text NOT NULL)",
      },
      // 12: public intake (issue 13 item 3): the short-lived verification codes an app shows its user, by hash.
      {
          "CREATE TABLE IF NOT EXISTS verification_codes(code_hash text PRIMARY KEY, project text NOT NULL, "
          "subject text NOT NULL, created_ms bigint NOT NULL, expires_ms bigint NOT NULL, used_ms bigint NOT NULL)",
          "CREATE INDEX IF NOT EXISTS verification_codes_by_expiry ON verification_codes(expires_ms)",
      },
      // 13: withdrawal acts on stored data (issue 12 item 6): per project and purpose, erase or restrict; each
      // denial queued by ingest with its record, carried out by the withdrawal job (done_ms 0 while waiting).
      {
          "CREATE TABLE IF NOT EXISTS withdrawal_policy(project_id bigint NOT NULL, purpose text NOT NULL, "
          "action text NOT NULL, PRIMARY KEY(project_id, purpose))",
          "CREATE TABLE IF NOT EXISTS withdrawal_queue(id bigserial PRIMARY KEY, project_id bigint NOT NULL, "
          "user_id text, anonymous_id text, purpose text NOT NULL, previous text, receipt_id text, "
          "denied_ms bigint NOT NULL, done_ms bigint NOT NULL, request_id text NOT NULL)",
          "CREATE INDEX IF NOT EXISTS withdrawal_waiting ON withdrawal_queue(done_ms, id)",
      },
      // 14: ingest's consent gate resolves each batch's device (issue 16): "the userId an anonymousId was seen with"
      // is read from the events that carry both, not by visiting every event of the anonymousId.
      {
          "CREATE INDEX IF NOT EXISTS events_anon_with_user ON events(project_id, anonymous_id) "
          "WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL",
      },
      // 15: minors (issue 12 item 8): a consent record keeps the device's `minor` (1, 0; NULL when not sent), and an
      // officer's mark is kept per id of the subject (lifted_ms 0 while in force).
      {
          "ALTER TABLE consent_ledger ADD COLUMN IF NOT EXISTS minor integer",
          "CREATE TABLE IF NOT EXISTS minor_marks(id bigserial PRIMARY KEY, project_id bigint NOT NULL, "
          "subject_id text NOT NULL, marked_by text NOT NULL, since_ms bigint NOT NULL, "
          "lifted_ms bigint NOT NULL DEFAULT 0, lifted_by text NOT NULL DEFAULT '')",
          "CREATE INDEX IF NOT EXISTS minor_marks_by_project ON minor_marks(project_id, lifted_ms)",
          "CREATE INDEX IF NOT EXISTS minor_marks_by_subject ON minor_marks(project_id, subject_id)",
      },
      // 16: the user index also holds each event's anonymousId, so the identity walk (the devices seen with a userId,
      // AnonymousIdsSeenWith) scans the index alone instead of fetching every event of the user from the table: an
      // erasure walks the subject up to three times, one of them while ingest waits. Same entries, same writes at
      // ingest. (The embedded store's schema 16 made the same change.)
      {
          "DROP INDEX IF EXISTS events_by_user",
          "CREATE INDEX events_by_user ON events(project_id, user_id, anonymous_id) WHERE user_id IS NOT NULL",
      },
      // 17: the ids the identity walk may take further because of stored events (a userId, or an anonymousId seen
      // beside one), each with the end of a month it was seen in. The gate asked `events` itself, two index probes in
      // every monthly partition for every device of every batch: a store that keeps a year ingested a quarter slower
      // (docs/PERFORMANCE.md, "a year of monthly partitions"). The group commit adds a batch's rows; an erasure
      // removes an id once no event holds it; retention removes a month's rows once the project's events before its
      // cut-off are gone. Filled here from the events already stored (re-runnable: IF NOT EXISTS, ON CONFLICT).
      {
          "CREATE TABLE IF NOT EXISTS walk_ids(project_id bigint NOT NULL, id text NOT NULL, until_ms bigint NOT NULL, "
          "PRIMARY KEY(project_id, id, until_ms))",
          "CREATE INDEX IF NOT EXISTS walk_ids_by_until ON walk_ids(project_id, until_ms)",
          "INSERT INTO walk_ids(project_id, id, until_ms) SELECT DISTINCT project_id, id, (extract(epoch FROM "
          "date_trunc('month', to_timestamp(timestamp_ms / 1000.0) AT TIME ZONE 'UTC') + interval '1 month') * "
          "1000)::bigint FROM (SELECT project_id, user_id AS id, timestamp_ms FROM events WHERE user_id IS NOT NULL "
          "UNION ALL SELECT project_id, anonymous_id, timestamp_ms FROM events WHERE user_id IS NOT NULL AND "
          "anonymous_id IS NOT NULL) AS seen ON CONFLICT DO NOTHING",
      },
  };
  return kMigrations;
}

}  // namespace

Status Migrate(Pool& pool, IdHasher* id_hash) {
  Status s = WithLease(&pool, [&](Lease& tx) -> Status {
    FERRY_RETURN_IF_ERROR(tx.Begin());
    FERRY_RETURN_IF_ERROR(tx.Lock(kLockMigrate));
    auto has = tx.Exec("SELECT to_regclass('ferry_schema') IS NOT NULL");
    if (!has.ok()) return has.status();
    int64_t v = 0;
    if (GetBool(has->get(), 0, 0)) {
      auto r = tx.Exec("SELECT version FROM ferry_schema");
      if (!r.ok()) return r.status();
      if (PQntuples(r->get()) > 0) v = GetInt(r->get(), 0, 0);
    } else {
      FERRY_RETURN_IF_ERROR(tx.Run("CREATE TABLE ferry_schema(version bigint NOT NULL)"));
      FERRY_RETURN_IF_ERROR(tx.Run("INSERT INTO ferry_schema(version) VALUES(0)"));
    }
    const auto& migrations = Migrations();
    if (v > static_cast<int64_t>(migrations.size())) {
      return Status::Storage("the database has schema version " + std::to_string(v) + ", newer than this build (" +
                             std::to_string(migrations.size()) + ")");
    }
    for (; v < static_cast<int64_t>(migrations.size()); ++v) {
      for (const char* sql : migrations[static_cast<size_t>(v)]) FERRY_RETURN_IF_ERROR(tx.Run(sql));
      FERRY_RETURN_IF_ERROR(tx.Run("UPDATE ferry_schema SET version = $1", {I(v + 1)}));
    }
    // The key of the id hashes (suppression list, audit log): made once per database, shared by its collectors.
    FERRY_RETURN_IF_ERROR(tx.Run("INSERT INTO meta(k, v) VALUES('id_hash_key', $1) ON CONFLICT (k) DO NOTHING",
                                 {T(base::SecretBytes::Random(32).ToHex())}));
    auto row = tx.Exec("SELECT v FROM meta WHERE k = 'id_hash_key'");
    if (!row.ok()) return row.status();
    std::string hex = PQntuples(row->get()) > 0 ? Get(row->get(), 0, 0) : std::string();
    base::SecretBytes key = hex.size() == 64 ? base::SecretBytes::FromHex(hex) : base::SecretBytes();
    base::WipeString(hex);
    if (key.size() != 32) return Status::Corruption("meta.id_hash_key is damaged");
    *id_hash = IdHasher(std::move(key));
    return tx.Commit();
  });
  static_assert(kPgSchemaVersion == 17, "one migration per schema version");
  return s;
}

Result<int64_t> SchemaVersion(Pool& pool) {
  return WithLease(&pool, [&](Lease& tx) -> Result<int64_t> {
    auto r = tx.Exec("SELECT version FROM ferry_schema");
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) > 0 ? GetInt(r->get(), 0, 0) : int64_t{0};
  });
}

Status Partitions::Ensure(const std::vector<int64_t>& timestamps_ms) {
  int64_t now = clock_->NowMs();
  std::vector<base::UtcMonth> wanted;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int64_t ts : timestamps_ms) {
      // Only within a window around now: a client cannot make the store create partitions for any month it likes.
      if (ts < now - 2 * 366 * kDayMs || ts > now + 62 * kDayMs) continue;
      base::UtcMonth m = base::MonthOf(ts);
      auto it = made_.find(m.start_ms);
      if (it != made_.end() && (it->second == 0 || it->second > now)) continue;
      if (std::none_of(wanted.begin(), wanted.end(),
                       [&](const base::UtcMonth& w) { return w.start_ms == m.start_ms; })) {
        wanted.push_back(m);
      }
    }
  }
  for (const base::UtcMonth& m : wanted) {
    std::string name = PartitionName(m);
    bool ddl_failed = false;
    Status s = WithLease(pool_, [&](Lease& tx) -> Status {
      FERRY_RETURN_IF_ERROR(tx.Begin());
      FERRY_RETURN_IF_ERROR(tx.Lock(kLockPartitions));
      auto have = tx.Exec("SELECT 1 FROM event_partitions WHERE name = $1", {T(name)});
      if (!have.ok()) return have.status();
      if (PQntuples(have->get()) == 0) {
        // DDL takes no parameters: the name and the bounds are made here from integers.
        std::string ddl = "CREATE TABLE " + tx.Ident(name) + " PARTITION OF events FOR VALUES FROM (" +
                          std::to_string(m.start_ms) + ") TO (" + std::to_string(m.end_ms) + ")";
        Status created = tx.Run(ddl);
        ddl_failed = !created.ok() && !tx.broken();
        FERRY_RETURN_IF_ERROR(created);
        FERRY_RETURN_IF_ERROR(tx.Run("INSERT INTO event_partitions(name, lo_ms, hi_ms) VALUES($1, $2, $3)",
                                     {T(name), I(m.start_ms), I(m.end_ms)}));
      }
      return tx.Commit();
    });
    if (!s.ok() && !ddl_failed) return s;  // the database is unreachable: the batch fails (503) and is resent
    // A month whose rows already sit in the DEFAULT partition cannot get its own (the DDL fails): its events stay
    // there (still correct, purged row by row) and the DDL is tried again an hour later.
    std::lock_guard<std::mutex> l(mu_);
    made_[m.start_ms] = s.ok() ? 0 : now + kPartitionRetryMs;
  }
  return Status::Ok();
}

Result<std::vector<std::string>> Partitions::List() {
  return WithLease(pool_, [&](Lease& tx) -> Result<std::vector<std::string>> {
    auto r = tx.Exec(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "LEFT JOIN event_partitions p ON p.name = c.relname "
        "WHERE i.inhparent = 'events'::regclass ORDER BY p.lo_ms NULLS LAST, c.relname");
    if (!r.ok()) return r.status();
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(Get(r->get(), i, 0));
    return out;
  });
}

}  // namespace ferry::collector::pg
