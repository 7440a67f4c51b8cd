// The PostgreSQL engine's ingest: a group-commit batch in one transaction (suppression, dedup through event_ids,
// events in one statement, consent records, traits, identity links, drop counters).
#include <algorithm>
#include <map>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "collector/engines/postgres/pg_parts.h"
#include "collector/store/identity.h"
#include "collector/store/readmission.h"
#include "lib/base/time.h"

namespace ferry::collector::pg {

using base::Status;
using nlohmann::json;

namespace {

// The statement that claims (project, messageId) in event_ids and stores the events whose claim it won, in batch order.
// Claims are taken in key order (bytewise: COLLATE "C" compares without the locale) so that two collectors inserting
// overlapping batches take the unique-index entries in the same order (no deadlock); a claim another transaction holds
// is waited for, then skipped once that one commits. The arrays hold each (project, messageId) once. The claims read
// only their three arrays, and the events are the batch's rows whose claim came back: a filter on the stream of the
// batch's rows (a hashed subplan of the claims; `IS TRUE` keeps the planner from turning the `IN` into a join), so the
// rows reach the insert, and take their ids, in batch order with no copy of the batch materialised, sorted or merged.
// The subplan is hashed because the statement runs on its generic plan (kGenericIndexPlans below: a few claims
// estimated, whatever work_mem); a custom plan for a batch whose claims do not fit in work_mem would scan the claims
// again for every row. A join with the claims gave the same order only through a sort of every stored row, bodies
// included (`ORDER BY` the row's place): ~4 % of PostgreSQL's CPU an event. The arrays are unnested in a select list,
// where PostgreSQL walks them in lockstep and streams the rows; `FROM unnest(a, b, ...)` would first copy each array's
// elements into a tuplestore of its own (bodies included).
constexpr const char* kClaimAndInsert =
    "WITH claimed AS (INSERT INTO event_ids(project_id, message_id, timestamp_ms) "
    "SELECT p, m, ts FROM (SELECT unnest($1::bigint[]) AS p, unnest($2::text[]) AS m, unnest($8::bigint[]) AS ts) "
    "AS c ORDER BY p, m COLLATE \"C\" ON CONFLICT DO NOTHING RETURNING project_id, message_id) "
    "INSERT INTO events(project_id, message_id, type, user_id, anonymous_id, name, purpose, timestamp_ms, "
    "received_ms, body, consent_receipt) "
    "SELECT p, m, ty, usr, anon, nm, purpose, ts, recv, body, receipt FROM (SELECT unnest($1::bigint[]) AS p, "
    "unnest($2::text[]) AS m, unnest($3::text[]) AS ty, unnest($4::text[]) AS usr, unnest($5::text[]) AS anon, "
    "unnest($6::text[]) AS nm, unnest($7::text[]) AS purpose, unnest($8::bigint[]) AS ts, unnest($9::bigint[]) AS "
    "recv, unnest($10::text[]) AS body, unnest($11::text[]) AS receipt) AS u "
    "WHERE ((u.p, u.m) IN (SELECT project_id, message_id FROM claimed)) IS TRUE "
    "RETURNING project_id, message_id, id";

// (project, messageId) or (project, id): a key viewing strings that outlive the batch's statements.
using EventKey = std::pair<int64_t, std::string_view>;
struct EventKeyHash {
  size_t operator()(const EventKey& k) const {
    return std::hash<std::string_view>()(k.second) ^ (static_cast<size_t>(k.first) * 0x9e3779b97f4a7c15ULL);
  }
};

// The batch's rows of walk_ids (schema 17): each userId, and each anonymousId beside one, with the end of the month
// of the event's time; in key order (bytewise, as the claims) so that two collectors' batches take the unique-index
// entries in the same order. A row that is there already is left as it is.
constexpr const char* kWalkIdsInsert =
    "INSERT INTO walk_ids(project_id, id, until_ms) SELECT p, i, u FROM (SELECT unnest($1::bigint[]) AS p, "
    "unnest($2::text[]) AS i, unnest($3::bigint[]) AS u) AS w ORDER BY p, i COLLATE \"C\", u ON CONFLICT DO NOTHING";

// Collects a batch's walk_ids rows, each once.
class WalkRows {
 public:
  void Add(int64_t project_id, const StoredEvent& e) {
    if (e.user_id.empty()) return;
    if (e.timestamp_ms < month_.start_ms || e.timestamp_ms >= month_.end_ms) month_ = base::MonthOf(e.timestamp_ms);
    for (const std::string* id : {&e.user_id, &e.anonymous_id}) {
      if (id->empty() || !seen_.emplace(Key{project_id, *id, month_.end_ms}).second) continue;
      pids_.Add(project_id);
      ids_.Add(*id);
      until_.Add(month_.end_ms);
    }
  }
  bool empty() const { return seen_.empty(); }
  std::vector<Param> Finish() && {
    return {std::move(pids_).Finish(), std::move(ids_).Finish(), std::move(until_).Finish()};
  }

 private:
  struct Key {
    int64_t project_id;
    std::string_view id;
    int64_t until_ms;
    bool operator==(const Key& o) const { return project_id == o.project_id && until_ms == o.until_ms && id == o.id; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<std::string_view>()(k.id) ^ (static_cast<size_t>(k.project_id) * 0x9e3779b97f4a7c15ULL) ^
             static_cast<size_t>(k.until_ms);
    }
  };
  base::UtcMonth month_;  // the last event's month (a batch's events share a few)
  std::unordered_set<Key, KeyHash> seen_;
  ArrayParam pids_ = ArrayParam::Int(), ids_ = ArrayParam::Text(), until_ = ArrayParam::Int();
};

// Whether storing the event may need a statement of its own (a consent record, traits, identity links).
bool NeedsOwnStatements(const StoredEvent& e, const std::string& credential) {
  if (e.type == "consent") return true;
  if (e.type == "identify" && !e.traits.empty()) return true;
  return !LinksAsserted(e, credential).empty();
}

Status InsertOnce(Lease& tx, const IdHasher& id_hash, std::vector<InsertRequest*>& requests) {
  for (InsertRequest* req : requests) {
    req->outcomes.assign(req->events.size(), InsertOutcome::kAccepted);
    req->seqs.assign(req->events.size(), 0);
  }
  // Suppressed subjects: one query for the hashes of the batch's ids, each (project, id) once (a device's events
  // share their ids).
  std::vector<int64_t> sup_pids;
  std::vector<std::string> sup_hashes;
  std::unordered_set<EventKey, EventKeyHash> sup_seen;
  for (InsertRequest* req : requests) {
    for (const StoredEvent& e : req->events) {
      for (const std::string* id : {&e.user_id, &e.anonymous_id}) {
        if (id->empty() || !sup_seen.emplace(req->project_id, *id).second) continue;
        sup_pids.push_back(req->project_id);
        sup_hashes.push_back(id_hash(*id));
      }
    }
  }
  // One round trip: the transaction, its generic plans, the erase lock and the suppressions. The lock is held shared
  // against an erasure's exclusive one: an erasure waits for ingest transactions in flight, and a batch that starts
  // after an erasure committed sees its suppressions (the query runs after the lock is taken, and each statement reads
  // what committed before it began).
  //
  // Every statement of this transaction inserts rows or probes an index with its parameters, so each runs on the
  // generic plan made once per connection (kGenericIndexPlans, to the transaction's end) instead of the session's
  // custom plan a run: a custom plan copies the parameters' values into the plan, and planning kClaimAndInsert with a
  // batch's arrays inlined took ~0.6 ms of PostgreSQL's CPU a group commit (pg_stat_statements), ~3 us an event.
  std::map<std::pair<int64_t, std::string>, int64_t> suppressed;  // (project, id hash) -> since
  {
    auto r = tx.ExecAll({{"BEGIN", {}},
                         {kGenericIndexPlans, {}},
                         {"SELECT pg_advisory_xact_lock_shared($1)", {I(kLockErase)}},
                         {"SELECT s.project_id, s.id_hash, s.created_ms FROM suppressions s "
                          "JOIN unnest($1::bigint[], $2::text[]) AS u(p, h) ON s.project_id = u.p AND s.id_hash = u.h",
                          {IntArray(sup_pids), TextArray(sup_hashes)}}});
    if (!r.ok()) return r.status();
    const PGresult* rows = (*r)[3].get();
    for (int i = 0; i < PQntuples(rows); ++i) {
      suppressed[{GetInt(rows, i, 0), Get(rows, i, 1)}] = GetInt(rows, i, 2);
    }
  }
  // The latest suppression of the event's ids (0: none).
  auto suppressed_since = [&](int64_t pid, const StoredEvent& e) -> int64_t {
    int64_t since = 0;
    if (suppressed.empty()) return since;
    for (const std::string* id : {&e.user_id, &e.anonymous_id}) {
      if (id->empty()) continue;
      auto it = suppressed.find({pid, id_hash(*id)});
      if (it != suppressed.end()) since = std::max(since, it->second);
    }
    return since;
  };
  // A suppressed id's new start (readmission.h): the choices its installation made after the suppression.
  Readmission readmission(
      [&](int64_t project_id, const std::string& anonymous_id) -> base::Result<std::vector<NewChoice>> {
        auto r = tx.Exec(
            "SELECT timestamp_ms, COALESCE(device_seq, 0), COALESCE(receipt_id, '') FROM consent_ledger WHERE "
            "project_id = $1 AND anonymous_id = $2 AND method IN ('explicit', 'guardian')",
            {I(project_id), T(anonymous_id)});
        if (!r.ok()) return r.status();
        std::vector<NewChoice> out;
        for (int i = 0; i < PQntuples(r->get()); ++i) {
          out.push_back({GetInt(r->get(), i, 0), GetInt(r->get(), i, 1), Get(r->get(), i, 2)});
        }
        return out;
      });

  // The events that are not suppressed, in batch order, claimed and stored by one statement (kClaimAndInsert): its
  // eleven columns built straight from the events.
  size_t events = 0, body_bytes = 0;
  for (InsertRequest* req : requests) {
    events += req->events.size();
    for (const StoredEvent& e : req->events) body_bytes += e.body.size();
  }
  ArrayParam pids = ArrayParam::Int(), mids = ArrayParam::Text(), types = ArrayParam::Text(),
             users = ArrayParam::Text(), anons = ArrayParam::Text(), names = ArrayParam::Text(),
             purposes = ArrayParam::Text(), stamps = ArrayParam::Int(), received = ArrayParam::Int(),
             bodies = ArrayParam::Text(), receipts = ArrayParam::Text();
  for (ArrayParam* a : {&pids, &stamps, &received}) a->Reserve(events * 12);
  for (ArrayParam* a : {&mids, &types, &users, &anons, &names, &purposes, &receipts}) a->Reserve(events * 40);
  bodies.Reserve(events * 4 + body_bytes);
  bool own_statements = false;  // an event may need a statement of its own once it is known to be stored
  WalkRows walk_rows;
  // A messageId again in the batch is a duplicate of the first.
  std::unordered_set<EventKey, EventKeyHash> sent;
  sent.reserve(events);
  for (InsertRequest* req : requests) {
    for (size_t i = 0; i < req->events.size(); ++i) {
      const StoredEvent& e = req->events[i];
      if (int64_t since = suppressed_since(req->project_id, e); since > 0) {
        auto admit = readmission.Admit(req->project_id, e, since);
        if (!admit.ok()) return admit.status();
        if (!*admit) {
          req->outcomes[i] = InsertOutcome::kSuppressed;
          continue;
        }
      }
      if (!sent.emplace(req->project_id, e.message_id).second) continue;  // kDuplicate below
      own_statements = own_statements || NeedsOwnStatements(e, req->credential);
      pids.Add(req->project_id);
      mids.Add(e.message_id);
      types.Add(e.type);
      users.AddOrNull(e.user_id);
      anons.AddOrNull(e.anonymous_id);
      names.AddOrNull(e.name);
      purposes.AddOrNull(e.purpose);
      stamps.Add(e.timestamp_ms);
      received.Add(e.received_ms);
      bodies.Add(e.body);
      receipts.AddOrNull(e.covered_by);
      walk_rows.Add(req->project_id, e);
    }
  }
  // Drop counters, summed per (project, reason) and updated in key order.
  std::map<std::pair<int64_t, std::string>, int64_t> drops;
  for (InsertRequest* req : requests) {
    for (const auto& [reason, count] : req->dropped) drops[{req->project_id, reason}] += count;
  }
  std::vector<Lease::Statement> statements;
  const bool any_events = pids.size() > 0;
  if (any_events) {
    statements.push_back({kClaimAndInsert,
                          {std::move(pids).Finish(), std::move(mids).Finish(), std::move(types).Finish(),
                           std::move(users).Finish(), std::move(anons).Finish(), std::move(names).Finish(),
                           std::move(purposes).Finish(), std::move(stamps).Finish(), std::move(received).Finish(),
                           std::move(bodies).Finish(), std::move(receipts).Finish()}});
  }
  // The walk's ids of every event sent (one that turns out a duplicate holds the ids of the event stored before it).
  if (!walk_rows.empty()) statements.push_back({kWalkIdsInsert, std::move(walk_rows).Finish()});
  for (const auto& [k, count] : drops) {
    statements.push_back(
        {"INSERT INTO dropped_counters(project_id, reason, count) VALUES($1, $2, $3) "
         "ON CONFLICT (project_id, reason) DO UPDATE SET count = dropped_counters.count + "
         "EXCLUDED.count",
         {I(k.first), T(k.second), I(count)}});
  }
  // Nothing that depends on which events were stored: the commit goes in the same round trip.
  if (!own_statements) statements.push_back({"COMMIT", {}});
  auto done = tx.ExecAll(statements);
  if (!done.ok()) return done.status();

  // Outcomes: an event whose claim this transaction won is stored (its row id returned), in batch order; any other
  // (claimed before, by another transaction, or earlier in this batch) is a duplicate.
  std::vector<std::pair<InsertRequest*, const StoredEvent*>> accepted;
  if (any_events) {
    const PGresult* rows = done->front().get();
    std::unordered_map<EventKey, int64_t, EventKeyHash> stored;  // (project, messageId) -> row id
    stored.reserve(static_cast<size_t>(PQntuples(rows)));
    for (int i = 0; i < PQntuples(rows); ++i) {
      stored.emplace(EventKey(GetInt(rows, i, 0),
                              std::string_view(PQgetvalue(rows, i, 1), static_cast<size_t>(PQgetlength(rows, i, 1)))),
                     GetInt(rows, i, 2));
    }
    for (InsertRequest* req : requests) {
      for (size_t i = 0; i < req->events.size(); ++i) {
        if (req->outcomes[i] == InsertOutcome::kSuppressed) continue;
        const StoredEvent& e = req->events[i];
        auto it = stored.find({req->project_id, e.message_id});
        if (it == stored.end()) {
          req->outcomes[i] = InsertOutcome::kDuplicate;
          continue;
        }
        req->seqs[i] = it->second;
        stored.erase(it);
        if (own_statements) accepted.emplace_back(req, &e);
      }
    }
  }
  if (!own_statements) return Status::Ok();
  // Consent records, traits and identity links (rare events: one statement each).
  for (const auto& [req, ev] : accepted) {
    const StoredEvent& e = *ev;
    if (e.type == "consent") {
      FERRY_RETURN_IF_ERROR(
          tx.Run("INSERT INTO consent_ledger(project_id, message_id, user_id, anonymous_id, purpose, state, previous, "
                 "timestamp_ms, received_ms, device, method, notice_id, notice_version, language, device_seq, "
                 "receipt_id, minor) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
                 "$17)",
                 {I(req->project_id), T(e.message_id), Opt(e.user_id), Opt(e.anonymous_id), T(e.consent_purpose),
                  T(e.consent_state), Opt(e.consent_previous), I(e.timestamp_ms), I(e.received_ms), Opt(e.device),
                  Opt(e.consent_method), Opt(e.notice_id), Opt(e.notice_version), Opt(e.language),
                  e.consent_seq > 0 ? I(e.consent_seq) : Opt(std::string()), Opt(e.receipt_id),
                  e.consent_minor >= 0 ? I(e.consent_minor) : Opt(std::string())}));
      if (IsWithdrawal(e)) {
        // A withdrawal acts on the stored events of its purpose (the withdrawal job): queued with the record.
        FERRY_RETURN_IF_ERROR(
            tx.Run("INSERT INTO withdrawal_queue(project_id, user_id, anonymous_id, purpose, previous, receipt_id, "
                   "denied_ms, done_ms, request_id) VALUES($1, $2, $3, $4, $5, $6, $7, 0, '')",
                   {I(req->project_id), Opt(e.user_id), Opt(e.anonymous_id), T(e.consent_purpose),
                    Opt(e.consent_previous), Opt(e.receipt_id), I(e.timestamp_ms)}));
      }
    }
    if (e.type == "identify" && !e.traits.empty()) {
      json t = json::parse(e.traits, nullptr, false);
      if (t.is_object()) {
        const std::string& subject = e.user_id.empty() ? e.anonymous_id : e.user_id;
        for (const auto& [k, v] : t.items()) {
          FERRY_RETURN_IF_ERROR(
              tx.Run("INSERT INTO traits(project_id, subject_id, k, v, updated_ms) VALUES($1, $2, $3, $4, $5) "
                     "ON CONFLICT (project_id, subject_id, k) DO UPDATE SET v = EXCLUDED.v, updated_ms = "
                     "EXCLUDED.updated_ms",
                     {I(req->project_id), T(subject), T(k), T(v.dump(-1, ' ', false, json::error_handler_t::replace)),
                      I(e.received_ms)}));
        }
      }
    }
    // A link asserted again with more weight (active where it was pending, or by a trusted credential where it was
    // not) takes the new provenance.
    for (const LinkAssertion& a : LinksAsserted(e, req->credential)) {
      FERRY_RETURN_IF_ERROR(tx.Run(
          "INSERT INTO identity_links(project_id, from_kind, from_id, user_id, source, first_seen_ms, credential, "
          "key_id, via_message_id, via_anonymous_id, asserted_ms, state) "
          "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
          "ON CONFLICT (project_id, from_kind, from_id, user_id) DO UPDATE SET source = EXCLUDED.source, "
          "credential = EXCLUDED.credential, key_id = EXCLUDED.key_id, via_message_id = EXCLUDED.via_message_id, "
          "via_anonymous_id = EXCLUDED.via_anonymous_id, asserted_ms = EXCLUDED.asserted_ms, state = EXCLUDED.state "
          "WHERE identity_links.confirmed_by = '' AND ((identity_links.state = 'pending' AND EXCLUDED.state = "
          "'active') OR (EXCLUDED.credential IN ('server_key', 'internal') AND identity_links.credential NOT IN "
          "('server_key', 'internal')))",
          {I(req->project_id), T(a.kind), T(a.from), T(e.user_id), T(e.type), I(e.timestamp_ms), T(req->credential),
           T(req->key_id), T(e.message_id), T(e.anonymous_id), I(e.received_ms), T(a.state)}));
    }
  }
  return tx.Commit();
}

}  // namespace

Status InsertBatch(Pool& pool, Partitions& partitions, const IdHasher& id_hash, std::vector<InsertRequest*>& requests) {
  std::vector<int64_t> stamps;
  for (InsertRequest* req : requests) {
    for (const StoredEvent& e : req->events) stamps.push_back(e.timestamp_ms);
  }
  Status s = partitions.Ensure(stamps);
  if (s.ok()) s = WithLease(&pool, [&](Lease& tx) { return InsertOnce(tx, id_hash, requests); });
  if (!s.ok()) {
    for (InsertRequest* r : requests) {
      r->outcomes.clear();
      r->seqs.clear();
    }
  }
  return s;
}

}  // namespace ferry::collector::pg
