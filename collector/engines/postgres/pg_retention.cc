// The PostgreSQL engine's retention: whole monthly partitions dropped once every project's cutoff passed them, the
// rest deleted row by row in bounded chunks, and the dedup keys and walk_ids rows of expired events with them.
#include <algorithm>

#include "collector/engines/postgres/pg_parts.h"

namespace ferry::collector::pg {

using base::Result;
using base::Status;

namespace {

// The events `select_ids` names (a SELECT of event ids) are deleted, and the consent records they name learn how long
// they covered something (covered_until_ms) in the same statement. Returns the events deleted.
std::string DeleteEventsMarkingConsent(const std::string& select_ids) {
  return "WITH gone AS (DELETE FROM events WHERE id IN (" + select_ids +
         ") RETURNING project_id, consent_receipt, timestamp_ms), marked AS (UPDATE consent_ledger c SET "
         "covered_until_ms = greatest(coalesce(c.covered_until_ms, 0), g.m) FROM (SELECT project_id, consent_receipt, "
         "max(timestamp_ms) AS m FROM gone WHERE consent_receipt IS NOT NULL GROUP BY project_id, consent_receipt) g "
         "WHERE c.project_id = g.project_id AND c.receipt_id = g.consent_receipt RETURNING 1) "
         "SELECT count(*) FROM gone";
}

// Drops the monthly partitions wholly below `cutoff` and returns the events they held. Each partition is first
// detached from `events`, in a transaction of its own: the detach waits for the batches writing into it and no batch
// can reach it afterwards (a late event of that month goes to the DEFAULT partition and is purged row by row). Only
// then are its rows counted, the consent records they name marked, and the table dropped. Counting before the detach
// missed the rows of a batch that committed between the count and the drop: they were dropped uncounted, and their
// consent records never learned that they had covered them. A partition left detached by a crash between the two
// transactions is still listed in event_partitions, and the next pass drops it.
Result<int64_t> DropPartitionsBelow(Pool& pool, int64_t cutoff) {
  auto names = WithLease(&pool, [&](Lease& tx) -> Result<std::vector<std::string>> {
    auto r = tx.Exec("SELECT name FROM event_partitions WHERE hi_ms <= $1 ORDER BY lo_ms", {I(cutoff)});
    if (!r.ok()) return r.status();
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(Get(r->get(), i, 0));
    return out;
  });
  if (!names.ok()) return names.status();
  int64_t n = 0;
  for (const std::string& name : *names) {
    Status detached = WithLease(&pool, [&](Lease& tx) -> Status {
      FERRY_RETURN_IF_ERROR(tx.Begin());
      FERRY_RETURN_IF_ERROR(tx.Lock(kLockPartitions));
      auto attached = tx.Exec(
          "SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass "
          "AND c.relname = $1",
          {T(name)});
      if (!attached.ok()) return attached.status();
      if (PQntuples(attached->get()) > 0) {
        FERRY_RETURN_IF_ERROR(tx.Run("ALTER TABLE events DETACH PARTITION " + tx.Ident(name)));
      }
      return tx.Commit();
    });
    if (!detached.ok()) return detached;
    auto rows = WithLease(&pool, [&](Lease& tx) -> Result<int64_t> {
      FERRY_RETURN_IF_ERROR(tx.Begin());
      FERRY_RETURN_IF_ERROR(tx.Lock(kLockPartitions));
      // Another collector on the same database may have dropped it meanwhile.
      auto listed = tx.Exec("SELECT 1 FROM event_partitions WHERE name = $1", {T(name)});
      if (!listed.ok()) return listed.status();
      if (PQntuples(listed->get()) == 0) {
        FERRY_RETURN_IF_ERROR(tx.Commit());
        return int64_t{0};
      }
      auto c = tx.Exec("SELECT count(*) FROM " + tx.Ident(name));
      if (!c.ok()) return c.status();
      const int64_t count = GetInt(c->get(), 0, 0);
      // The consent records its events name learn how long they covered something before the events go.
      FERRY_RETURN_IF_ERROR(
          tx.Run("UPDATE consent_ledger c SET covered_until_ms = greatest(coalesce(c.covered_until_ms, 0), g.m) FROM "
                 "(SELECT project_id, consent_receipt, max(timestamp_ms) AS m FROM " +
                 tx.Ident(name) +
                 " WHERE consent_receipt IS NOT NULL GROUP BY project_id, consent_receipt) g WHERE c.project_id = "
                 "g.project_id AND c.receipt_id = g.consent_receipt"));
      FERRY_RETURN_IF_ERROR(tx.Run("DROP TABLE " + tx.Ident(name)));
      FERRY_RETURN_IF_ERROR(tx.Run("DELETE FROM event_partitions WHERE name = $1", {T(name)}));
      FERRY_RETURN_IF_ERROR(tx.Commit());
      return count;
    });
    if (!rows.ok()) return rows.status();
    n += *rows;
  }
  return n;
}

// The project's walk_ids rows of months that ended by `cutoff` (schema 17), once none of its events before the cutoff
// is left: until then one of them may still be what makes an id worth walking. Under the erase lock, exclusively: an
// ingest transaction in flight (it holds the lock shared) may be adding an event whose row exists already, and must
// not lose it. Checked first without the lock, so that the lock is taken only when a month's rows are due; then at
// most `max_rows` of them a call (the lock taken when no batch holds it, held for one bounded delete).
Status ForgetWalkIdsBefore(Pool& pool, int64_t project_id, int64_t cutoff, int64_t max_rows) {
  constexpr const char* kNoEventBefore =
      "NOT EXISTS (SELECT 1 FROM events WHERE project_id = $1 AND timestamp_ms < $2)";
  return WithLease(&pool, [&](Lease& tx) -> Status {
    auto due = tx.Exec(std::string("SELECT EXISTS (SELECT 1 FROM walk_ids WHERE project_id = $1 AND until_ms <= $2) "
                                   "AND ") +
                           kNoEventBefore,
                       {I(project_id), I(cutoff)});
    if (!due.ok()) return due.status();
    if (!GetBool(due->get(), 0, 0)) return Status::Ok();
    FERRY_RETURN_IF_ERROR(tx.Begin());
    FERRY_RETURN_IF_ERROR(tx.LockWhenFree(kLockErase));
    FERRY_RETURN_IF_ERROR(tx.Run(std::string("DELETE FROM walk_ids WHERE (project_id, id, until_ms) IN (SELECT "
                                             "project_id, id, until_ms FROM walk_ids WHERE project_id = $1 AND "
                                             "until_ms <= $2 LIMIT $3) AND ") +
                                     kNoEventBefore,
                                 {I(project_id), I(cutoff), I(max_rows)}));
    return tx.Commit();
  });
}

}  // namespace

Result<int64_t> PurgeExpired(Pool& pool, int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows,
                             int64_t default_consent_keep_ms) {
  // Cutoffs per project (projects kept forever have none), and how long its consent records outlive their events.
  struct Cut {
    int64_t project_id, cutoff, keep_ms;
  };
  std::vector<Cut> cutoffs;
  bool every_project_expires = true;
  {
    auto r = WithLease(&pool, [&](Lease& tx) -> Result<ResultPtr> {
      return tx.Exec(
          "SELECT p.id, coalesce(s.max_event_age_ms, $1), coalesce(k.keep_ms, $2) FROM projects p "
          "LEFT JOIN project_settings s ON s.project_id = p.id LEFT JOIN consent_retention k ON k.project_id = p.id "
          "ORDER BY p.id",
          {I(default_max_age_ms), I(std::max<int64_t>(default_consent_keep_ms, 0))});
    });
    if (!r.ok()) return r.status();
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      int64_t age = GetInt(r->get(), i, 1);
      if (age > 0) {
        cutoffs.push_back({GetInt(r->get(), i, 0), now_ms - age, GetInt(r->get(), i, 2)});
      } else {
        every_project_expires = false;
      }
    }
  }
  int64_t deleted = 0;
  // Purposes with a retention of their own (the processing registry): their events go when older than it, whatever
  // the project keeps (a purpose's retention longer than the project's changes nothing: those events are gone).
  {
    auto by_purpose = WithLease(&pool, [&](Lease& tx) -> Result<int64_t> {
      auto r = tx.Exec(DeleteEventsMarkingConsent(
                           "SELECT e.id FROM events e JOIN purpose_retention r ON r.project_id = e.project_id AND "
                           "r.purpose = e.purpose WHERE e.timestamp_ms < $1 - r.max_age_ms LIMIT $2"),
                       {I(now_ms), I(max_rows)});
      if (!r.ok()) return r.status();
      return GetInt(r->get(), 0, 0);
    });
    if (!by_purpose.ok()) return by_purpose.status();
    deleted += *by_purpose;
  }
  if (cutoffs.empty() || deleted >= max_rows) return deleted;
  // Whole partitions below every project's cutoff are dropped (no row-by-row delete, no bloat).
  if (every_project_expires) {
    int64_t min_cut = cutoffs.front().cutoff;
    for (const Cut& c : cutoffs) min_cut = std::min(min_cut, c.cutoff);
    auto dropped = DropPartitionsBelow(pool, min_cut);
    if (!dropped.ok()) return dropped.status();
    deleted += *dropped;
  }
  // The rest row by row, bounded per call.
  auto rows = WithLease(&pool, [&](Lease& tx) -> Result<int64_t> {
    int64_t n = 0;
    FERRY_RETURN_IF_ERROR(tx.Begin());
    for (const Cut& cut : cutoffs) {
      const int64_t pid = cut.project_id, cutoff = cut.cutoff;
      if (deleted + n < max_rows) {
        auto ev = tx.Exec(DeleteEventsMarkingConsent("SELECT id FROM events WHERE project_id = $1 AND timestamp_ms < "
                                                     "$2 LIMIT $3"),
                          {I(pid), I(cutoff), I(max_rows - deleted - n)});
        if (!ev.ok()) return ev.status();
        n += GetInt(ev->get(), 0, 0);
      }
      // A consent record goes once no stored event names it and the newest event it covered is older than the
      // cut-off by the keep period (interfaces.h).
      FERRY_RETURN_IF_ERROR(
          tx.Run("DELETE FROM consent_ledger WHERE id IN (SELECT c.id FROM consent_ledger c WHERE c.project_id = $1 "
                 "AND c.timestamp_ms < $2 AND coalesce(c.covered_until_ms, 0) < $2 AND (c.receipt_id IS NULL OR NOT "
                 "EXISTS (SELECT 1 FROM events e WHERE e.project_id = $1 AND e.consent_receipt = c.receipt_id)) "
                 "LIMIT $3)",
                 {I(pid), I(cutoff - cut.keep_ms), I(max_rows)}));
      // Dedup keys of expired events (a resend older than the retention would be purged again anyway). They are
      // rows of a non-partitioned table: deleted with a larger budget than events, since a dropped partition leaves
      // all of its keys behind.
      FERRY_RETURN_IF_ERROR(
          tx.Run("DELETE FROM event_ids WHERE (project_id, message_id) IN (SELECT project_id, message_id FROM "
                 "event_ids WHERE project_id = $1 AND timestamp_ms < $2 LIMIT $3)",
                 {I(pid), I(cutoff), I(std::max<int64_t>(max_rows * 20, 10000))}));
    }
    FERRY_RETURN_IF_ERROR(tx.Commit());
    return n;
  });
  if (!rows.ok()) return rows.status();
  for (const Cut& cut : cutoffs) {
    FERRY_RETURN_IF_ERROR(
        ForgetWalkIdsBefore(pool, cut.project_id, cut.cutoff, std::max<int64_t>(max_rows * 20, 10000)));
  }
  return deleted + *rows;
}

}  // namespace ferry::collector::pg
