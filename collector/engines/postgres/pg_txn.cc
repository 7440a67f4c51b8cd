// The PostgreSQL engine's primitive reads and writes inside one transaction (EngineTxn), and the export's cursors.
// Sets of ids travel as one array parameter (ANY($n::text[]), unnest), so a subject costs a statement, not one per id.
#include <algorithm>

#include "collector/engines/postgres/pg_conn.h"
#include "collector/store/columns.h"
#include "collector/store/roles.h"
#include "lib/base/digest.h"
#include "lib/base/secret.h"

namespace ferry::collector::pg {

using base::Result;
using base::Status;

namespace {

constexpr int kPage = 512;  // rows fetched per cursor round trip while exporting
constexpr const char* kTokenColumns =
    "id, name, prefix, roles, created_ms, coalesce(revoked_ms, 0), coalesce(expires_ms, 0)";

// Of a set of ids ($2), those the identity walk may take beyond themselves (EngineTxn::IdsToWalk): linked, a userId
// of a consent record, or (walk_ids, schema 17) a userId of a stored event or an anonymousId seen beside one. The
// last was two probes of `events` in each of its monthly partitions; walk_ids holds every such id (the group commit
// adds them in the events' transaction), perhaps a few that no longer qualify, which only costs a walk.
// One EXISTS over a UNION ALL, so that each id is probed through the indexes: separate EXISTS clauses joined by OR may
// be planned as hashed subplans that read every row of the project (per call) when the statistics are older than the
// rows.
constexpr const char* kIdsToWalkSql =
    "SELECT u.id FROM unnest($2::text[]) AS u(id) WHERE EXISTS ("
    "SELECT 1 FROM identity_links l WHERE l.project_id = $1 AND l.from_id = u.id "
    "UNION ALL SELECT 1 FROM identity_links l WHERE l.project_id = $1 AND l.user_id = u.id "
    "UNION ALL SELECT 1 FROM walk_ids w WHERE w.project_id = $1 AND w.id = u.id "
    "UNION ALL SELECT 1 FROM consent_ledger c WHERE c.project_id = $1 AND c.user_id = u.id)";
constexpr const char* kConsentPolicySql = "SELECT mode, necessary FROM consent_policy WHERE project_id = $1";
constexpr const char* kRestrictionsSql =
    "SELECT r.id, r.project_id, p.name, r.subject_id, r.kind, r.purposes, r.request_id, r.since_ms, r.lifted_ms "
    "FROM restrictions r JOIN projects p ON p.id = r.project_id "
    "WHERE ($1::bigint = 0 OR r.project_id = $1::bigint) AND ($2::bigint = 0 OR r.lifted_ms = 0) ORDER BY r.id";
constexpr const char* kRestrictionModeSql = "SELECT mode FROM restriction_mode WHERE project_id = $1";
constexpr const char* kMinorMarksSql =
    "SELECT m.id, m.project_id, p.name, m.subject_id, m.marked_by, m.since_ms, m.lifted_ms, m.lifted_by "
    "FROM minor_marks m JOIN projects p ON p.id = m.project_id "
    "WHERE ($1::bigint = 0 OR m.project_id = $1::bigint) AND ($2::bigint = 0 OR m.lifted_ms = 0) ORDER BY m.id";
// The gate's reads of them: one project's, in force (index probes: restrictions_by_project, minor_marks_by_project).
constexpr const char* kRestrictionsInForceSql =
    "SELECT r.id, r.project_id, p.name, r.subject_id, r.kind, r.purposes, r.request_id, r.since_ms, r.lifted_ms "
    "FROM restrictions r JOIN projects p ON p.id = r.project_id WHERE r.project_id = $1 AND r.lifted_ms = 0 "
    "ORDER BY r.id";
constexpr const char* kMinorMarksInForceSql =
    "SELECT m.id, m.project_id, p.name, m.subject_id, m.marked_by, m.since_ms, m.lifted_ms, m.lifted_by "
    "FROM minor_marks m JOIN projects p ON p.id = m.project_id WHERE m.project_id = $1 AND m.lifted_ms = 0 "
    "ORDER BY m.id";
// Every consent record under one of the ids ($2) in the project, by id (EngineTxn::ConsentRecordsOf).
const std::string& ConsentOfIdsSql() {
  static const std::string sql = std::string("SELECT ") + kConsentColumns +
                                 " FROM consent_ledger WHERE project_id = $1 AND (user_id = ANY($2::text[]) OR "
                                 "anonymous_id = ANY($2::text[])) ORDER BY id";
  return sql;
}

std::vector<RestrictionRecord> RestrictionsFrom(const PGresult* p) {
  std::vector<RestrictionRecord> out;
  for (int i = 0; i < PQntuples(p); ++i) {
    RestrictionRecord x;
    x.id = GetInt(p, i, 0);
    x.project_id = GetInt(p, i, 1);
    x.project = Get(p, i, 2);
    x.subject_id = Get(p, i, 3);
    x.kind = Get(p, i, 4);
    x.purposes = SplitRoles(Get(p, i, 5));
    x.request_id = Get(p, i, 6);
    x.since_ms = GetInt(p, i, 7);
    x.lifted_ms = GetInt(p, i, 8);
    out.push_back(std::move(x));
  }
  return out;
}

std::vector<MinorMark> MinorMarksFrom(const PGresult* p) {
  std::vector<MinorMark> out;
  for (int i = 0; i < PQntuples(p); ++i) {
    MinorMark m;
    m.id = GetInt(p, i, 0);
    m.project_id = GetInt(p, i, 1);
    m.project = Get(p, i, 2);
    m.subject_id = Get(p, i, 3);
    m.marked_by = Get(p, i, 4);
    m.since_ms = GetInt(p, i, 5);
    m.lifted_ms = GetInt(p, i, 6);
    m.lifted_by = Get(p, i, 7);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<ConsentRecord> ConsentFrom(const PGresult* p) {
  std::vector<ConsentRecord> out;
  for (int i = 0; i < PQntuples(p); ++i) out.push_back(ConsentFromRow(RowView{p, i}));
  return out;
}

class PgTxn final : public EngineTxn {
 public:
  PgTxn(Lease& lease, std::vector<WalkIdsToForget>* deferred) : tx_(lease), deferred_(deferred) {}

  // ---- Projects and credentials ----

  Result<std::vector<ProjectRef>> Projects(const std::string& name) override {
    auto r = tx_.Exec("SELECT id, name FROM projects WHERE $1 = '' OR name = $1 ORDER BY id", {T(name)});
    if (!r.ok()) return r.status();
    std::vector<ProjectRef> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back({GetInt(r->get(), i, 0), Get(r->get(), i, 1)});
    return out;
  }

  Result<std::string> ProjectName(int64_t project_id) override {
    return FirstText("SELECT name FROM projects WHERE id = $1", {I(project_id)});
  }

  Status EnsureProject(const std::string& name, int64_t now_ms) override {
    return tx_.Run("INSERT INTO projects(name, created_ms) VALUES($1, $2) ON CONFLICT (name) DO NOTHING",
                   {T(name), I(now_ms)});
  }

  Status InsertWriteKey(const std::string& project, const std::string& key_hash, const std::string& prefix,
                        const std::string& kind, int64_t now_ms) override {
    return tx_.Run(
        "INSERT INTO write_keys(project_id, key_hash, prefix, created_ms, kind) "
        "SELECT id, $2, $3, $4, $5 FROM projects WHERE name = $1",
        {T(project), T(base::Hex(key_hash)), T(prefix), I(now_ms), T(kind)});
  }

  Result<std::optional<WriteKeyInfo>> FindWriteKey(const std::string& key_hash) override {
    auto r = tx_.Exec(
        "SELECT p.id, p.name, k.kind, k.prefix, coalesce(k.expires_ms, 0) FROM write_keys k JOIN projects p ON p.id = "
        "k.project_id "
        "WHERE k.key_hash = $1 AND k.revoked_ms IS NULL",
        {T(base::Hex(key_hash))});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<WriteKeyInfo>();
    const PGresult* p = r->get();
    WriteKeyInfo info{GetInt(p, 0, 0), Get(p, 0, 1), Get(p, 0, 2), Get(p, 0, 3)};
    info.expires_ms = GetInt(p, 0, 4);
    return std::optional<WriteKeyInfo>(std::move(info));
  }

  Result<std::vector<WriteKeyRecord>> WriteKeys() override {
    auto r = tx_.Exec(
        "SELECT k.id, p.name, k.prefix, k.kind, k.created_ms, coalesce(k.revoked_ms, 0), coalesce(k.expires_ms, 0) "
        "FROM write_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.id");
    if (!r.ok()) return r.status();
    std::vector<WriteKeyRecord> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(WriteKeyFromRow(RowView{r->get(), i}));
    return out;
  }

  Result<bool> RevokeWriteKey(int64_t id, int64_t now_ms) override {
    return Update("UPDATE write_keys SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL", id, now_ms);
  }

  Result<bool> SetWriteKeyExpiry(int64_t id, int64_t expires_ms) override {
    return Update("UPDATE write_keys SET expires_ms = nullif($2::bigint, 0) WHERE id = $1 AND revoked_ms IS NULL", id,
                  expires_ms);
  }

  Result<bool> SetAdminTokenExpiry(int64_t id, int64_t expires_ms) override {
    return Update("UPDATE admin_tokens SET expires_ms = nullif($2::bigint, 0) WHERE id = $1 AND revoked_ms IS NULL", id,
                  expires_ms);
  }

  // An UPDATE of one row by id ($1) with one value ($2): whether it changed a row.
  Result<bool> Update(const char* sql, int64_t id, int64_t value) {
    auto n = tx_.Count(sql, {I(id), I(value)});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  Status InsertAdminToken(const AdminTokenRow& row, const std::string& token_hash) override {
    return tx_.Run("INSERT INTO admin_tokens(name, token_hash, prefix, roles, created_ms) VALUES($1, $2, $3, $4, $5)",
                   {T(row.name), T(base::Hex(token_hash)), T(row.prefix), T(row.roles), I(row.created_ms)});
  }

  Result<std::optional<AdminTokenRow>> FindAdminToken(const std::string& token_hash) override {
    auto r = tx_.Exec(
        std::string("SELECT ") + kTokenColumns + " FROM admin_tokens WHERE token_hash = $1 AND revoked_ms IS NULL",
        {T(base::Hex(token_hash))});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<AdminTokenRow>();
    return std::optional<AdminTokenRow>(TokenFromRow(RowView{r->get(), 0}));
  }

  Result<std::vector<AdminTokenRow>> AdminTokens() override {
    auto r = tx_.Exec(std::string("SELECT ") + kTokenColumns + " FROM admin_tokens ORDER BY id");
    if (!r.ok()) return r.status();
    std::vector<AdminTokenRow> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(TokenFromRow(RowView{r->get(), i}));
    return out;
  }

  Result<bool> RevokeAdminToken(int64_t id, int64_t now_ms) override {
    auto n =
        tx_.Count("UPDATE admin_tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL", {I(id), I(now_ms)});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  // ---- The identity graph ----

  Result<std::vector<LinkRow>> LinksFrom(int64_t project_id, const std::string& from_id) override {
    return Links("from_id", project_id, from_id);
  }

  Result<bool> HeldAsUserId(int64_t project_id, const std::string& id, bool consent_too) override {
    return HeldIn(kUserIdHolders, consent_too ? 3 : 2, project_id, id);
  }

  Result<std::string> UserSeenWithAnonymousId(int64_t project_id, const std::string& anonymous_id) override {
    return FirstText(
        "SELECT user_id FROM events WHERE project_id = $1 AND anonymous_id = $2 AND user_id IS NOT NULL "
        "AND anonymous_id IS NOT NULL LIMIT 1",
        {I(project_id), T(anonymous_id)});
  }

  // One query for all the ids: each test an index probe (identity_by_from, identity_by_user, walk_ids' key,
  // consent_by_user).
  Result<std::vector<std::string>> IdsToWalk(int64_t project_id, const std::vector<std::string>& ids) override {
    auto r = tx_.Exec(kIdsToWalkSql, {I(project_id), TextArray(ids)});
    if (!r.ok()) return r.status();
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(Get(r->get(), i, 0));
    return out;
  }

  // Every read in one round trip (pipeline mode), run once for every batch: each probes indexes with its parameters,
  // so they run on plans made once per connection (kGenericIndexPlans); planning them again for each batch cost more
  // than running them.
  Status IngestGateRows(int64_t project_id, const std::vector<std::string>& starts, const std::vector<std::string>& ids,
                        GateRows* out) override {
    std::vector<Lease::Statement> statements = {
        {kGenericIndexPlans, {}},
        {kConsentPolicySql, {I(project_id)}},
        {kMinorMarksInForceSql, {I(project_id)}},
        {kRestrictionsInForceSql, {I(project_id)}},
        {kRestrictionModeSql, {I(project_id)}},
    };
    if (!starts.empty()) statements.push_back({kIdsToWalkSql, {I(project_id), TextArray(starts)}});
    if (!ids.empty()) statements.push_back({ConsentOfIdsSql().c_str(), {I(project_id), TextArray(ids)}});
    auto r = tx_.ExecAll(statements);
    if (!r.ok()) return r.status();
    const std::vector<ResultPtr>& rs = *r;
    if (PQntuples(rs[1].get()) > 0)
      out->consent_policy = std::make_pair(Get(rs[1].get(), 0, 0), Get(rs[1].get(), 0, 1));
    out->minor_marks = MinorMarksFrom(rs[2].get());
    out->restrictions = RestrictionsFrom(rs[3].get());
    out->restriction_mode = PQntuples(rs[4].get()) > 0 ? Get(rs[4].get(), 0, 0) : std::string();
    size_t next = 5;
    if (!starts.empty()) {
      const PGresult* w = rs[next++].get();
      for (int i = 0; i < PQntuples(w); ++i) out->ids_to_walk.push_back(Get(w, i, 0));
    }
    if (!ids.empty()) out->consent_records = ConsentFrom(rs[next].get());
    return Status::Ok();
  }

  Result<bool> HeldAsAnonymousId(int64_t project_id, const std::string& id, bool events_only) override {
    return HeldIn(kAnonymousIdHolders, events_only ? 1 : 3, project_id, id);
  }

  Result<std::vector<LinkRow>> LinksTo(int64_t project_id, const std::string& user_id) override {
    return Links("user_id", project_id, user_id);
  }

  Result<std::optional<LinkRow>> GetLink(int64_t link_id) override {
    auto r = tx_.Exec(std::string("SELECT ") + kLinkColumns + " FROM identity_links WHERE id = $1", {I(link_id)});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<LinkRow>();
    return std::optional<LinkRow>(LinkFromRow(RowView{r->get(), 0}));
  }

  Result<bool> ConfirmLink(int64_t link_id, const std::string& confirmed_by, int64_t now_ms) override {
    auto n = tx_.Count(
        "UPDATE identity_links SET state = 'active', confirmed_by = $2, confirmed_ms = $3 "
        "WHERE id = $1 AND confirmed_by = ''",
        {I(link_id), T(confirmed_by), I(now_ms)});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  Result<std::vector<std::string>> AnonymousIdsSeenWith(int64_t project_id, const std::string& user_id) override {
    std::vector<std::string> out;
    for (const char* sql : {"SELECT DISTINCT anonymous_id FROM events WHERE project_id = $1 AND user_id = $2 "
                            "AND anonymous_id IS NOT NULL",
                            "SELECT DISTINCT anonymous_id FROM consent_ledger WHERE project_id = $1 AND user_id = $2 "
                            "AND anonymous_id IS NOT NULL"}) {
      auto r = tx_.Exec(sql, {I(project_id), T(user_id)});
      if (!r.ok()) return r.status();
      for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(Get(r->get(), i, 0));
    }
    return out;
  }

  // ---- A subject's rows ----

  Status ReadSubject(int64_t project_id, const std::vector<std::string>& ids, const std::string& user_id,
                     SubjectRows* out) override {
    const Param arr = TextArray(ids);
    for (const char* sql : {"SELECT type, count(*), min(timestamp_ms), max(timestamp_ms) FROM events "
                            "WHERE project_id = $1 AND user_id = ANY($2::text[]) GROUP BY type",
                            "SELECT type, count(*), min(timestamp_ms), max(timestamp_ms) FROM events "
                            "WHERE project_id = $1 AND anonymous_id = ANY($2::text[]) "
                            "AND (user_id IS NULL OR NOT (user_id = ANY($2::text[]))) GROUP BY type"}) {
      auto c = tx_.Exec(sql, {I(project_id), arr});
      if (!c.ok()) return c.status();
      const PGresult* p = c->get();
      for (int i = 0; i < PQntuples(p); ++i) {
        out->counts.push_back({Get(p, i, 0), GetInt(p, i, 1), GetInt(p, i, 2), GetInt(p, i, 3)});
      }
    }
    auto c = tx_.Exec(
        "SELECT purpose, state, timestamp_ms FROM consent_ledger WHERE project_id = $1 AND "
        "(user_id = ANY($2::text[]) OR anonymous_id = ANY($2::text[])) ORDER BY timestamp_ms, id",
        {I(project_id), arr});
    if (!c.ok()) return c.status();
    for (int i = 0; i < PQntuples(c->get()); ++i) {
      out->consent.push_back({Get(c->get(), i, 0), Get(c->get(), i, 1), GetInt(c->get(), i, 2)});
    }
    auto t = tx_.Exec(
        "SELECT k, v FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[]) "
        "ORDER BY subject_id = $3, updated_ms",
        {I(project_id), arr, T(user_id)});
    if (!t.ok()) return t.status();
    for (int i = 0; i < PQntuples(t->get()); ++i) out->traits.emplace_back(Get(t->get(), i, 0), Get(t->get(), i, 1));
    return Status::Ok();
  }

  Status DeleteSubjectRows(int64_t project_id, const std::vector<std::string>& ids, EraseScope scope,
                           std::map<std::string, int64_t>* erased) override {
    struct Step {
      const char* table;
      const char* full;    // following links: userIds and anonymousIds
      const char* anon;    // anonymousIds only
      const char* device;  // a device's own anonymousIds: never a row that carries a userId (nullptr: nothing)
    };
    static const Step kSteps[] = {
        {"events",
         "DELETE FROM events WHERE project_id = $1 AND (user_id = ANY($2::text[]) OR "
         "anonymous_id = ANY($2::text[]))",
         "DELETE FROM events WHERE project_id = $1 AND anonymous_id = ANY($2::text[])",
         "DELETE FROM events WHERE project_id = $1 AND anonymous_id = ANY($2::text[]) AND user_id IS NULL"},
        {"consent_ledger",
         "DELETE FROM consent_ledger WHERE project_id = $1 AND (user_id = ANY($2::text[]) OR "
         "anonymous_id = ANY($2::text[]))",
         "DELETE FROM consent_ledger WHERE project_id = $1 AND anonymous_id = ANY($2::text[])",
         "DELETE FROM consent_ledger WHERE project_id = $1 AND anonymous_id = ANY($2::text[]) AND user_id IS NULL"},
        {"identity_links",
         "DELETE FROM identity_links WHERE project_id = $1 AND (from_id = ANY($2::text[]) OR "
         "user_id = ANY($2::text[]))",
         "DELETE FROM identity_links WHERE project_id = $1 AND from_id = ANY($2::text[])", nullptr},
        {"traits", "DELETE FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[])",
         "DELETE FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[])",
         "DELETE FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[])"},
    };
    const Param arr = TextArray(ids);
    for (const Step& s : kSteps) {
      const char* sql = scope == EraseScope::kFollowingLinks ? s.full
                        : scope == EraseScope::kAnonymousIds ? s.anon
                                                             : s.device;
      if (sql == nullptr) continue;
      auto n = tx_.Count(sql, {I(project_id), arr});
      if (!n.ok()) return n.status();
      (*erased)[s.table] += *n;
    }
    // The ids' walk_ids rows go once no event left holds them as a userId or beside one (a device's own erasure
    // leaves the events that carry a userId, and with them the walk): here when the erasure holds the erase lock
    // (kErase, kEraseMany), else after its commit under the lock (NewTxn's `deferred`).
    if (deferred_ != nullptr) {
      deferred_->push_back({project_id, ids});
      return Status::Ok();
    }
    return ForgetWalkIds(tx_, project_id, ids);
  }

  Result<int64_t> DeleteEventsOf(int64_t project_id, const std::vector<std::string>& ids) override {
    // Through the user and anonymous indexes, as DeleteSubjectRows does.
    return tx_.Count(
        "DELETE FROM events WHERE project_id = $1 AND (user_id = ANY($2::text[]) OR anonymous_id = ANY($2::text[]))",
        {I(project_id), TextArray(ids)});
  }

  Result<std::vector<int64_t>> EventRowsOf(int64_t project_id, const std::vector<std::string>& ids) override {
    auto r = tx_.Exec(
        "SELECT id FROM events WHERE project_id = $1 AND (user_id = ANY($2::text[]) OR anonymous_id = ANY($2::text[])) "
        "ORDER BY id",
        {I(project_id), TextArray(ids)});
    if (!r.ok()) return r.status();
    std::vector<int64_t> rows;
    rows.reserve(static_cast<size_t>(PQntuples(r->get())));
    for (int i = 0; i < PQntuples(r->get()); ++i) rows.push_back(GetInt(r->get(), i, 0));
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    return rows;
  }

  Result<int64_t> DeleteEventRows(int64_t project_id, const std::vector<std::string>& ids,
                                  const std::vector<int64_t>& rows) override {
    // Each row through events_by_id in its partition, and only while one of the ids still holds it.
    return tx_.Count(
        "DELETE FROM events WHERE project_id = $1 AND id = ANY($2::bigint[]) AND "
        "(user_id = ANY($3::text[]) OR anonymous_id = ANY($3::text[]))",
        {I(project_id), IntArray(rows), TextArray(ids)});
  }

  Status DeleteTrait(int64_t project_id, const std::vector<std::string>& ids, const std::string& key) override {
    return tx_.Run("DELETE FROM traits WHERE project_id = $1 AND subject_id = ANY($2::text[]) AND k = $3",
                   {I(project_id), TextArray(ids), T(key)});
  }

  Result<std::vector<std::pair<int64_t, std::string>>> IdentifyBodies(int64_t project_id,
                                                                      const std::vector<std::string>& ids) override {
    auto r = tx_.Exec(
        "SELECT id, body FROM events WHERE project_id = $1 AND type = 'identify' AND "
        "(user_id = ANY($2::text[]) OR anonymous_id = ANY($2::text[])) ORDER BY id",
        {I(project_id), TextArray(ids)});
    if (!r.ok()) return r.status();
    std::vector<std::pair<int64_t, std::string>> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.emplace_back(GetInt(r->get(), i, 0), Get(r->get(), i, 1));
    return out;
  }

  Status SetEventBody(int64_t project_id, int64_t row_id, const std::string& body) override {
    return tx_.Run("UPDATE events SET body = $3 WHERE project_id = $1 AND id = $2",
                   {I(project_id), I(row_id), T(body)});
  }

  Status PutTrait(int64_t project_id, const std::string& holder, const std::string& key, const std::string& value_json,
                  int64_t now_ms) override {
    return tx_.Run(
        "INSERT INTO traits(project_id, subject_id, k, v, updated_ms) VALUES($1, $2, $3, $4, $5) "
        "ON CONFLICT (project_id, subject_id, k) DO UPDATE SET v = EXCLUDED.v, updated_ms = EXCLUDED.updated_ms",
        {I(project_id), T(holder), T(key), T(value_json), I(now_ms)});
  }

  // ---- The suppression list ----

  Result<int64_t> Suppress(int64_t project_id, const std::vector<std::string>& id_hashes, int64_t now_ms) override {
    // xmax = 0 on a row this statement inserted, not on one it updated.
    auto r = tx_.Exec(
        "INSERT INTO suppressions(project_id, id_hash, created_ms) SELECT $1, h, $3 FROM unnest($2::text[]) AS h "
        "ON CONFLICT (project_id, id_hash) DO UPDATE SET created_ms = GREATEST(suppressions.created_ms, "
        "EXCLUDED.created_ms) RETURNING (xmax = 0)",
        {I(project_id), TextArray(id_hashes), I(now_ms)});
    if (!r.ok()) return r.status();
    int64_t added = 0;
    for (int i = 0; i < PQntuples(r->get()); ++i) added += Get(r->get(), i, 0) == "t" ? 1 : 0;
    return added;
  }

  Result<int64_t> SuppressedSince(int64_t project_id, const std::string& id_hash) override {
    auto r = tx_.Exec("SELECT created_ms FROM suppressions WHERE project_id = $1 AND id_hash = $2",
                      {I(project_id), T(id_hash)});
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) > 0 ? GetInt(r->get(), 0, 0) : int64_t{0};
  }

  Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) override {
    return tx_.Exists("SELECT 1 FROM suppressions WHERE project_id = $1 AND id_hash = $2", {I(project_id), T(id_hash)});
  }

  // ---- The request register ----

  Status InsertRequest(const RightsRequest& r) override {
    return tx_.Run(std::string("INSERT INTO requests(") + kRequestColumns +
                       ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                   {T(r.id), T(r.kind), T(r.project), T(r.subject), T(r.subject_hash), T(r.state), T(r.source),
                    I(r.received_ms), I(r.due_ms), T(r.acted_by), I(r.acted_ms), T(r.result)});
  }

  Result<std::optional<RightsRequest>> GetRequest(const std::string& id) override {
    auto r = tx_.Exec(std::string("SELECT ") + kRequestColumns + " FROM requests WHERE id = $1", {T(id)});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<RightsRequest>();
    return std::optional<RightsRequest>(RequestFromRow(RowView{r->get(), 0}));
  }

  Result<bool> UpdateRequestIf(const std::string& id, const std::string& expected_state, const std::string& new_state,
                               const std::string& acted_by, int64_t acted_ms, const std::string& result) override {
    auto n = tx_.Count(
        "UPDATE requests SET state = $3, acted_by = $4, acted_ms = $5, result = $6 WHERE id = $1 AND state = $2",
        {T(id), T(expected_state), T(new_state), T(acted_by), I(acted_ms), T(result)});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  Result<bool> SetRequestDueIf(const std::string& id, const std::string& expected_state, int64_t due_ms) override {
    auto n = tx_.Count("UPDATE requests SET due_ms = $3 WHERE id = $1 AND state = $2",
                       {T(id), T(expected_state), I(due_ms)});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  Result<std::string> GetRequestPolicy(const std::string& project) override {
    auto r = tx_.Exec("SELECT policy FROM request_policies WHERE project = $1", {T(project)});
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) > 0 ? Get(r->get(), 0, 0) : std::string();
  }

  Status SetRequestPolicy(const std::string& project, const std::string& policy) override {
    if (policy.empty()) return tx_.Run("DELETE FROM request_policies WHERE project = $1", {T(project)});
    return tx_.Run(
        "INSERT INTO request_policies(project, policy) VALUES($1, $2) ON CONFLICT (project) DO UPDATE SET policy = $2",
        {T(project), T(policy)});
  }

  Result<std::optional<RightsRequest>> FindDeviceRequest(const std::string& kind, const std::string& project,
                                                         const std::string& subject_hash,
                                                         const std::string& state) override {
    auto r = tx_.Exec(std::string("SELECT ") + kRequestColumns +
                          " FROM requests WHERE subject_hash = $1 AND kind = $2 AND project = $3 AND state = $4 "
                          "AND source = 'device' ORDER BY received_ms, id LIMIT 1",
                      {T(subject_hash), T(kind), T(project), T(state)});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<RightsRequest>();
    return std::optional<RightsRequest>(RequestFromRow(RowView{r->get(), 0}));
  }

  Result<std::vector<RightsRequest>> ListRequests(const RequestFilter& f) override {
    // $2 is cast: compared with the literal 0 alone it would be typed integer, too small for a time in ms.
    auto r =
        tx_.Exec(std::string("SELECT ") + kRequestColumns +
                     " FROM requests WHERE ($1 = '' OR state = $1) AND ($2::bigint = 0 OR (state NOT IN ('completed', "
                     "'rejected') AND due_ms < $2::bigint)) ORDER BY received_ms, id LIMIT $3",
                 {T(f.state), I(f.overdue_at_ms), I(static_cast<int64_t>(f.limit))});
    if (!r.ok()) return r.status();
    std::vector<RightsRequest> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(RequestFromRow(RowView{r->get(), i}));
    return out;
  }

  Result<int64_t> RedactRequests(const std::vector<std::string>& ids, const std::vector<std::string>& hashes) override {
    return tx_.Count(
        "UPDATE requests r SET subject = 'hash:' || r.subject_hash FROM unnest($1::text[], $2::text[]) AS u(h, i) "
        "WHERE r.subject_hash = u.h AND r.subject = u.i",
        {TextArray(hashes), TextArray(ids)});
  }

  // ---- The audit log ----

  Result<std::optional<AuditTip>> LockAuditTip() override {
    // One appender at a time across every collector on the database: the chain's tip is read and extended under
    // the lock, which the transaction's end releases.
    FERRY_RETURN_IF_ERROR(tx_.Lock(kLockAudit));
    auto last = tx_.Exec("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
    if (!last.ok()) return last.status();
    if (PQntuples(last->get()) == 0) return std::optional<AuditTip>();
    return std::optional<AuditTip>(AuditTip{GetInt(last->get(), 0, 0), Get(last->get(), 0, 1)});
  }

  Status InsertAudit(const AuditEntry& e) override {
    return tx_.Run(
        std::string("INSERT INTO audit_log(") + kAuditColumns + ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        {I(e.seq), I(e.time_ms), T(e.actor), T(e.role), T(e.action), T(e.subject_hash), T(e.result), T(e.detail),
         T(e.prev_hash), T(e.hash)});
  }

  Result<std::vector<AuditEntry>> ListAudit(int64_t after_seq, size_t limit, const std::string& subject_hash) override {
    auto r = tx_.Exec(std::string("SELECT ") + kAuditColumns +
                          " FROM audit_log WHERE seq > $1 AND ($2 = '' OR subject_hash = $2) ORDER BY seq LIMIT $3",
                      {I(after_seq), T(subject_hash), I(static_cast<int64_t>(limit))});
    if (!r.ok()) return r.status();
    std::vector<AuditEntry> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(AuditFromRow(RowView{r->get(), i}));
    return out;
  }

  // ---- Settings and inspection ----

  Result<std::vector<ConsentRecord>> ConsentRecordsOf(int64_t project_id,
                                                      const std::vector<std::string>& ids) override {
    auto r = tx_.Exec(ConsentOfIdsSql(), {I(project_id), TextArray(ids)});
    if (!r.ok()) return r.status();
    return ConsentFrom(r->get());
  }

  Result<std::optional<std::pair<std::string, std::string>>> ConsentPolicyRow(int64_t project_id) override {
    auto r = tx_.Exec(kConsentPolicySql, {I(project_id)});
    if (!r.ok()) return r.status();
    std::optional<std::pair<std::string, std::string>> out;
    if (PQntuples(r->get()) > 0) out = std::make_pair(Get(r->get(), 0, 0), Get(r->get(), 0, 1));
    return out;
  }

  Status SetConsentPolicyRow(int64_t project_id, const std::string& mode, const std::string& necessary_json) override {
    return tx_.Run(
        "INSERT INTO consent_policy(project_id, mode, necessary) VALUES($1, $2, $3) "
        "ON CONFLICT (project_id) DO UPDATE SET mode = EXCLUDED.mode, necessary = EXCLUDED.necessary",
        {I(project_id), T(mode), T(necessary_json)});
  }

  Status InsertRestriction(const RestrictionRecord& r) override {
    return tx_.Run(
        "INSERT INTO restrictions(project_id, subject_id, kind, purposes, request_id, since_ms, lifted_ms) "
        "VALUES($1, $2, $3, $4, $5, $6, $7)",
        {I(r.project_id), T(r.subject_id), T(r.kind), T(JoinRoles(r.purposes)), T(r.request_id), I(r.since_ms),
         I(r.lifted_ms)});
  }

  Result<int64_t> LiftRestrictions(const std::string& request_id, int64_t lifted_ms) override {
    return tx_.Count("UPDATE restrictions SET lifted_ms = $2 WHERE request_id = $1 AND lifted_ms = 0",
                     {T(request_id), I(lifted_ms)});
  }

  Result<std::vector<RestrictionRecord>> RestrictionsOf(int64_t project_id, bool active_only) override {
    auto r = tx_.Exec(kRestrictionsSql, {I(project_id), I(active_only ? 1 : 0)});
    if (!r.ok()) return r.status();
    return RestrictionsFrom(r->get());
  }

  Result<int64_t> DeleteRestrictions(int64_t project_id, const std::vector<std::string>& ids) override {
    int64_t n = 0;
    for (const std::string& id : ids) {
      auto c = tx_.Count("DELETE FROM restrictions WHERE project_id = $1 AND subject_id = $2", {I(project_id), T(id)});
      if (!c.ok()) return c.status();
      n += *c;
    }
    return n;
  }

  Result<std::string> RestrictionMode(int64_t project_id) override {
    auto r = tx_.Exec(kRestrictionModeSql, {I(project_id)});
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) > 0 ? Get(r->get(), 0, 0) : std::string();
  }

  Status SetRestrictionMode(int64_t project_id, const std::string& mode) override {
    return tx_.Run(
        "INSERT INTO restriction_mode(project_id, mode) VALUES($1, $2) "
        "ON CONFLICT (project_id) DO UPDATE SET mode = EXCLUDED.mode",
        {I(project_id), T(mode)});
  }

  Result<std::vector<PendingWithdrawal>> PendingWithdrawals(size_t limit) override {
    auto r = tx_.Exec(
        "SELECT q.id, q.project_id, p.name, coalesce(q.user_id, ''), coalesce(q.anonymous_id, ''), q.purpose, "
        "coalesce(q.previous, ''), coalesce(q.receipt_id, ''), q.denied_ms, coalesce(w.action, 'erase') "
        "FROM withdrawal_queue q JOIN projects p ON p.id = q.project_id "
        "LEFT JOIN withdrawal_policy w ON w.project_id = q.project_id AND w.purpose = q.purpose "
        "WHERE q.done_ms = 0 ORDER BY q.id LIMIT $1",
        {I(static_cast<int64_t>(limit))});
    if (!r.ok()) return r.status();
    std::vector<PendingWithdrawal> out;
    PGresult* p = r->get();
    for (int i = 0; i < PQntuples(p); ++i) {
      PendingWithdrawal w;
      w.id = GetInt(p, i, 0);
      w.project_id = GetInt(p, i, 1);
      w.project = Get(p, i, 2);
      w.user_id = Get(p, i, 3);
      w.anonymous_id = Get(p, i, 4);
      w.purpose = Get(p, i, 5);
      w.previous = Get(p, i, 6);
      w.receipt_id = Get(p, i, 7);
      w.denied_ms = GetInt(p, i, 8);
      w.action = Get(p, i, 9);
      out.push_back(std::move(w));
    }
    return out;
  }

  Result<bool> FinishWithdrawal(int64_t id, const std::string& request_id, int64_t now_ms) override {
    auto n = tx_.Count("UPDATE withdrawal_queue SET done_ms = $2, request_id = $3 WHERE id = $1 AND done_ms = 0",
                       {I(id), I(std::max<int64_t>(now_ms, 1)), T(request_id)});
    if (!n.ok()) return n.status();
    return *n > 0;
  }

  Result<int64_t> EventsOfPurpose(int64_t project_id, const std::vector<std::string>& ids, const std::string& purpose,
                                  bool erase) override {
    const std::string where =
        " FROM events WHERE project_id = $1 AND purpose = $3 AND (user_id = ANY($2::text[]) OR "
        "anonymous_id = ANY($2::text[]))";
    if (erase) return tx_.Count("DELETE" + where, {I(project_id), TextArray(ids), T(purpose)});
    auto r = tx_.Exec("SELECT count(*)" + where, {I(project_id), TextArray(ids), T(purpose)});
    if (!r.ok()) return r.status();
    return GetInt(r->get(), 0, 0);
  }

  Result<std::vector<ConsentRecord>> ConsentBetween(int64_t project_id, int64_t from_ms, int64_t to_ms) override {
    auto r = tx_.Exec(std::string("SELECT ") + kConsentColumns +
                          " FROM consent_ledger WHERE project_id = $1 AND timestamp_ms >= $2 AND timestamp_ms < $3 "
                          "ORDER BY timestamp_ms, id",
                      {I(project_id), I(from_ms), I(to_ms)});
    if (!r.ok()) return r.status();
    std::vector<ConsentRecord> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(ConsentFromRow(RowView{r->get(), i}));
    return out;
  }

  Status InsertMinorMark(const MinorMark& m) override {
    return tx_.Run(
        "INSERT INTO minor_marks(project_id, subject_id, marked_by, since_ms, lifted_ms, lifted_by) "
        "VALUES($1, $2, $3, $4, $5, $6)",
        {I(m.project_id), T(m.subject_id), T(m.marked_by), I(m.since_ms), I(m.lifted_ms), T(m.lifted_by)});
  }

  Result<std::vector<MinorMark>> MinorMarksOf(int64_t project_id, bool active_only) override {
    auto r = tx_.Exec(kMinorMarksSql, {I(project_id), I(active_only ? 1 : 0)});
    if (!r.ok()) return r.status();
    return MinorMarksFrom(r->get());
  }

  Result<int64_t> LiftMinorMarks(int64_t project_id, const std::vector<std::string>& ids, int64_t lifted_ms,
                                 const std::string& by) override {
    return tx_.Count(
        "UPDATE minor_marks SET lifted_ms = $3, lifted_by = $4 WHERE project_id = $1 AND "
        "subject_id = ANY($2::text[]) AND lifted_ms = 0",
        {I(project_id), TextArray(ids), I(lifted_ms), T(by)});
  }

  Result<int64_t> DeleteMinorMarks(int64_t project_id, const std::vector<std::string>& ids) override {
    return tx_.Count("DELETE FROM minor_marks WHERE project_id = $1 AND subject_id = ANY($2::text[])",
                     {I(project_id), TextArray(ids)});
  }

  Result<std::map<std::string, std::string>> WithdrawalActions(int64_t project_id) override {
    auto r = tx_.Exec("SELECT purpose, action FROM withdrawal_policy WHERE project_id = $1 ORDER BY purpose",
                      {I(project_id)});
    if (!r.ok()) return r.status();
    std::map<std::string, std::string> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out[Get(r->get(), i, 0)] = Get(r->get(), i, 1);
    return out;
  }

  Status SetWithdrawalAction(int64_t project_id, const std::string& purpose, const std::string& action) override {
    return tx_.Run(
        "INSERT INTO withdrawal_policy(project_id, purpose, action) VALUES($1, $2, $3) "
        "ON CONFLICT (project_id, purpose) DO UPDATE SET action = EXCLUDED.action",
        {I(project_id), T(purpose), T(action)});
  }

  Status SetMaxEventAge(int64_t project_id, int64_t max_age_ms) override {
    if (max_age_ms <= 0) return tx_.Run("DELETE FROM project_settings WHERE project_id = $1", {I(project_id)});
    return tx_.Run(
        "INSERT INTO project_settings(project_id, max_event_age_ms) VALUES($1, $2) "
        "ON CONFLICT (project_id) DO UPDATE SET max_event_age_ms = EXCLUDED.max_event_age_ms",
        {I(project_id), I(max_age_ms)});
  }

  Status SetConsentKeep(int64_t project_id, int64_t keep_ms) override {
    if (keep_ms < 0) return tx_.Run("DELETE FROM consent_retention WHERE project_id = $1", {I(project_id)});
    return tx_.Run(
        "INSERT INTO consent_retention(project_id, keep_ms) VALUES($1, $2) "
        "ON CONFLICT (project_id) DO UPDATE SET keep_ms = EXCLUDED.keep_ms",
        {I(project_id), I(keep_ms)});
  }

  Result<std::map<std::string, int64_t>> MaxEventAges() override {
    return NamedCounts(
        "SELECT p.name, s.max_event_age_ms FROM project_settings s JOIN projects p ON p.id = s.project_id", {});
  }

  Result<std::vector<EventRow>> DumpEvents(const std::string& project) override {
    auto r = tx_.Exec(
        "SELECT p.name, e.message_id, e.type, e.user_id, e.anonymous_id, e.name, e.purpose, e.timestamp_ms, "
        "e.received_ms, e.body, e.consent_receipt FROM events e JOIN projects p ON p.id = e.project_id "
        "WHERE $1 = '' OR p.name = $1 ORDER BY e.id",
        {T(project)});
    if (!r.ok()) return r.status();
    std::vector<EventRow> rows;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      RowView row{r->get(), i};
      rows.push_back(EventFromRow(row, row.Text(0), 1));
      rows.back().covered_by = row.Text(10);
    }
    return rows;
  }

  Result<std::optional<std::pair<std::string, int64_t>>> GetRegistry(int64_t project_id) override {
    auto r = tx_.Exec("SELECT document, updated_ms FROM processing_registry WHERE project_id = $1", {I(project_id)});
    if (!r.ok()) return r.status();
    std::optional<std::pair<std::string, int64_t>> out;
    if (PQntuples(r->get()) > 0) out.emplace(Get(r->get(), 0, 0), GetInt(r->get(), 0, 1));
    return out;
  }

  Status PutRegistry(int64_t project_id, const std::string& document,
                     const std::map<std::string, int64_t>& purpose_max_age_ms, int64_t now_ms) override {
    FERRY_RETURN_IF_ERROR(
        tx_.Run("INSERT INTO processing_registry(project_id, document, updated_ms) VALUES($1, $2, $3) "
                "ON CONFLICT (project_id) DO UPDATE SET document = EXCLUDED.document, updated_ms = EXCLUDED.updated_ms",
                {I(project_id), T(document), I(now_ms)}));
    FERRY_RETURN_IF_ERROR(tx_.Run("DELETE FROM purpose_retention WHERE project_id = $1", {I(project_id)}));
    for (const auto& [purpose, max_age_ms] : purpose_max_age_ms) {
      FERRY_RETURN_IF_ERROR(tx_.Run("INSERT INTO purpose_retention(project_id, purpose, max_age_ms) VALUES($1, $2, $3)",
                                    {I(project_id), T(purpose), I(max_age_ms)}));
    }
    return Status::Ok();
  }

  Result<std::vector<EventRow>> EventsAfter(int64_t after_seq, size_t limit) override {
    auto r = tx_.Exec(
        "SELECT p.name, e.message_id, e.type, e.user_id, e.anonymous_id, e.name, e.purpose, e.timestamp_ms, "
        "e.received_ms, e.body, e.id FROM events e JOIN projects p ON p.id = e.project_id "
        "WHERE e.id > $1 ORDER BY e.id LIMIT $2",
        {I(after_seq), I(static_cast<int64_t>(limit))});
    if (!r.ok()) return r.status();
    std::vector<EventRow> rows;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      RowView row{r->get(), i};
      rows.push_back(EventFromRow(row, row.Text(0), 1));
      rows.back().seq = row.Int(10);
    }
    return rows;
  }

  Result<std::vector<ConsentRecord>> ConsentOfPurpose(const std::string& project, const std::string& purpose) override {
    auto r = tx_.Exec(
        "SELECT c.state, c.user_id, c.anonymous_id, c.timestamp_ms FROM consent_ledger c "
        "JOIN projects p ON p.id = c.project_id WHERE p.name = $1 AND c.purpose = $2 ORDER BY c.timestamp_ms, c.id",
        {T(project), T(purpose)});
    if (!r.ok()) return r.status();
    std::vector<ConsentRecord> rows;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      RowView row{r->get(), i};
      ConsentRecord c;
      c.purpose = purpose;
      c.state = row.Text(0);
      c.user_id = row.Text(1);
      c.anonymous_id = row.Text(2);
      c.timestamp_ms = row.Int(3);
      rows.push_back(std::move(c));
    }
    return rows;
  }

  Result<int64_t> InsertOutbox(const OutboxEntry& e, const std::vector<std::string>& destinations) override {
    auto r = tx_.Exec(
        "INSERT INTO outbox(project, kind, request_id, body, created_ms) VALUES($1, $2, $3, $4, $5) RETURNING seq",
        {T(e.project), T(e.kind), T(e.request_id), T(e.body), I(e.created_ms)});
    if (!r.ok()) return r.status();
    int64_t seq = GetInt(r->get(), 0, 0);
    for (const auto& dest : destinations) {
      FERRY_RETURN_IF_ERROR(
          tx_.Run("INSERT INTO outbox_deliveries(seq, destination, state, attempts, next_ms, last_status, last_error, "
                  "delivered_ms) VALUES($1, $2, 'pending', 0, $3, 0, '', 0)",
                  {I(seq), T(dest), I(e.created_ms)}));
    }
    return seq;
  }

  Result<std::vector<OutboxEntry>> ListOutbox(int64_t after_seq, size_t limit) override {
    auto r = tx_.Exec(
        "SELECT seq, project, kind, request_id, body, created_ms FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
        {I(after_seq), I(static_cast<int64_t>(limit))});
    if (!r.ok()) return r.status();
    std::vector<OutboxEntry> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(OutboxFromRow(RowView{r->get(), i}, 0));
    return out;
  }

  Result<std::vector<std::pair<OutboxEntry, OutboxDelivery>>> DueDeliveries(int64_t now_ms, size_t limit) override {
    auto r = tx_.Exec(
        "SELECT o.seq, o.project, o.kind, o.request_id, o.body, o.created_ms, d.seq, d.destination, d.state, "
        "d.attempts, d.next_ms, d.last_status, d.last_error, d.delivered_ms FROM outbox_deliveries d "
        "JOIN outbox o ON o.seq = d.seq WHERE d.state = 'pending' AND d.next_ms <= $1 ORDER BY d.next_ms, d.seq "
        "LIMIT $2",
        {I(now_ms), I(static_cast<int64_t>(limit))});
    if (!r.ok()) return r.status();
    std::vector<std::pair<OutboxEntry, OutboxDelivery>> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      out.emplace_back(OutboxFromRow(RowView{r->get(), i}, 0), DeliveryFromRow(RowView{r->get(), i}, 6));
    }
    return out;
  }

  Status UpdateDelivery(const OutboxDelivery& d) override {
    return tx_.Run(
        "UPDATE outbox_deliveries SET state = $3, attempts = $4, next_ms = $5, last_status = $6, last_error = $7, "
        "delivered_ms = $8 WHERE seq = $1 AND destination = $2",
        {I(d.seq), T(d.destination), T(d.state), I(d.attempts), I(d.next_ms), I(d.last_status), T(d.last_error),
         I(d.delivered_ms)});
  }

  Result<std::vector<OutboxDelivery>> DeliveriesOf(const std::string& request_id) override {
    auto r = tx_.Exec(
        "SELECT d.seq, d.destination, d.state, d.attempts, d.next_ms, d.last_status, d.last_error, d.delivered_ms "
        "FROM outbox_deliveries d JOIN outbox o ON o.seq = d.seq WHERE o.request_id = $1 "
        "ORDER BY d.seq, d.destination",
        {T(request_id)});
    if (!r.ok()) return r.status();
    std::vector<OutboxDelivery> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(DeliveryFromRow(RowView{r->get(), i}, 0));
    return out;
  }

  Status AckOutbox(const std::string& consumer, int64_t seq, int64_t now_ms) override {
    return tx_.Run(
        "INSERT INTO outbox_consumers(consumer, acked_seq, updated_ms) VALUES($1, $2, $3) ON CONFLICT (consumer) "
        "DO UPDATE SET acked_seq = greatest(outbox_consumers.acked_seq, EXCLUDED.acked_seq), "
        "updated_ms = EXCLUDED.updated_ms",
        {T(consumer), I(seq), I(now_ms)});
  }

  Result<std::map<std::string, int64_t>> OutboxAcks() override {
    return NamedCounts("SELECT consumer, acked_seq FROM outbox_consumers", {});
  }

  Result<int64_t> PruneOutbox(int64_t cutoff_ms) override {
    auto d = tx_.Count("DELETE FROM outbox_deliveries WHERE state = 'delivered' AND delivered_ms < $1", {I(cutoff_ms)});
    if (!d.ok()) return d.status();
    auto e = tx_.Count(
        "DELETE FROM outbox o WHERE o.created_ms < $1 AND o.seq <= (SELECT MIN(acked_seq) FROM outbox_consumers) "
        "AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.seq = o.seq)",
        {I(cutoff_ms)});
    if (!e.ok()) return e.status();
    return *d + *e;
  }

  Result<std::string> Secret(const std::string& name) override {
    FERRY_RETURN_IF_ERROR(tx_.Run("INSERT INTO secrets(name, v) VALUES($1, $2) ON CONFLICT (name) DO NOTHING",
                                  {T(name), T(base::SecretBytes::Random(32).ToHex())}));
    auto r = tx_.Exec("SELECT v FROM secrets WHERE name = $1", {T(name)});
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) > 0 ? Get(r->get(), 0, 0) : std::string();
  }

  Status InsertVerificationCode(const VerificationCodeRow& row, int64_t prune_before_ms) override {
    FERRY_RETURN_IF_ERROR(tx_.Run("DELETE FROM verification_codes WHERE expires_ms < $1", {I(prune_before_ms)}));
    auto n = tx_.Count(
        "INSERT INTO verification_codes(code_hash, project, subject, created_ms, expires_ms, used_ms) "
        "VALUES($1, $2, $3, $4, $5, 0) ON CONFLICT (code_hash) DO NOTHING",
        {T(row.code_hash), T(row.project), T(row.subject), I(row.created_ms), I(row.expires_ms)});
    if (!n.ok()) return n.status();
    if (*n != 1) return Status::AlreadyExists("verification code taken");
    return Status::Ok();
  }

  Result<std::optional<VerificationCodeRow>> GetVerificationCode(const std::string& code_hash) override {
    auto r = tx_.Exec(
        "SELECT code_hash, project, subject, created_ms, expires_ms, used_ms FROM verification_codes "
        "WHERE code_hash = $1",
        {T(code_hash)});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 0) return std::optional<VerificationCodeRow>();
    VerificationCodeRow row;
    row.code_hash = Get(r->get(), 0, 0);
    row.project = Get(r->get(), 0, 1);
    row.subject = Get(r->get(), 0, 2);
    row.created_ms = GetInt(r->get(), 0, 3);
    row.expires_ms = GetInt(r->get(), 0, 4);
    row.used_ms = GetInt(r->get(), 0, 5);
    return std::optional<VerificationCodeRow>(std::move(row));
  }

  Result<bool> SpendVerificationCode(const std::string& code_hash, int64_t now_ms) override {
    auto n = tx_.Count("UPDATE verification_codes SET used_ms = $2 WHERE code_hash = $1 AND used_ms = 0",
                       {T(code_hash), I(now_ms)});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  Result<bool> BindRequestSubject(const std::string& id, const std::string& subject,
                                  const std::string& subject_hash) override {
    auto n = tx_.Count("UPDATE requests SET subject = $2, subject_hash = $3 WHERE id = $1 AND subject = ''",
                       {T(id), T(subject), T(subject_hash)});
    if (!n.ok()) return n.status();
    return *n == 1;
  }

  Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) override {
    return NamedCounts(
        "SELECT d.reason, d.count FROM dropped_counters d JOIN projects p ON p.id = d.project_id WHERE p.name = $1",
        {T(project)});
  }

 private:
  // Whether a row of project_id holds `id` in one of the first n (table, column) places.
  Result<bool> HeldIn(const IdHolder* holders, size_t n, int64_t project_id, const std::string& id) {
    for (size_t i = 0; i < n; ++i) {
      auto found = tx_.Exists(std::string("SELECT 1 FROM ") + holders[i].table + " WHERE project_id = $1 AND " +
                                  holders[i].column + " = $2 LIMIT 1",
                              {I(project_id), T(id)});
      if (!found.ok() || *found) return found;
    }
    return false;
  }

  // The first column of the first row, "" when none.
  // The links whose `column` (from_id or user_id) is `id`, oldest first.
  Result<std::vector<LinkRow>> Links(const char* column, int64_t project_id, const std::string& id) {
    auto r = tx_.Exec(std::string("SELECT ") + kLinkColumns + " FROM identity_links WHERE project_id = $1 AND " +
                          column + " = $2 ORDER BY first_seen_ms, id",
                      {I(project_id), T(id)});
    if (!r.ok()) return r.status();
    std::vector<LinkRow> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(LinkFromRow(RowView{r->get(), i}));
    return out;
  }

  Result<std::string> FirstText(const char* sql, const std::vector<Param>& params) {
    auto r = tx_.Exec(sql, params);
    if (!r.ok()) return r.status();
    return PQntuples(r->get()) > 0 ? Get(r->get(), 0, 0) : std::string();
  }

  // (text, integer) rows as a map.
  Result<std::map<std::string, int64_t>> NamedCounts(const char* sql, const std::vector<Param>& params) {
    auto r = tx_.Exec(sql, params);
    if (!r.ok()) return r.status();
    std::map<std::string, int64_t> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out[Get(r->get(), i, 0)] = GetInt(r->get(), i, 1);
    return out;
  }

  Lease& tx_;
  std::vector<WalkIdsToForget>* deferred_;  // set: an erasure beside ingest lists its ids here (NewTxn)
};

// Declares a cursor over `select` and hands each fetched row to give(row); false from give stops with Closed.
template <typename Give>
Status Fetch(Lease& tx, const std::string& cursor, const std::string& select, const std::vector<Param>& params,
             Give give) {
  // Planned for the whole result, which the caller reads to its end: with the default cursor_tuple_fraction (0.1)
  // the planner chose a subject's rows in id order through events_by_id, filtering every row of every partition (0.6 s
  // on 1,000,000 events for a subject of 500), over the subject's own indexes and a sort.
  FERRY_RETURN_IF_ERROR(tx.Run("SELECT set_config('cursor_tuple_fraction', '1', true)"));
  FERRY_RETURN_IF_ERROR(tx.Run("DECLARE " + cursor + " NO SCROLL CURSOR FOR " + select, params));
  const std::string fetch = "FETCH " + std::to_string(kPage) + " FROM " + cursor;
  for (;;) {
    auto page = tx.Exec(fetch);
    if (!page.ok()) return page.status();
    int n = PQntuples(page->get());
    for (int j = 0; j < n; ++j) {
      if (!give(RowView{page->get(), j})) return Status::Closed("the reader stopped");
    }
    if (n < kPage) break;
  }
  return tx.Run("CLOSE " + cursor);
}

}  // namespace

std::unique_ptr<EngineTxn> NewTxn(Lease& lease, std::vector<WalkIdsToForget>* deferred) {
  return std::make_unique<PgTxn>(lease, deferred);
}

namespace {
// The walk_ids rows of $2 that no stored event of project $1 holds any more.
constexpr const char* kWalkIdsHeldByNone =
    "FROM walk_ids w WHERE w.project_id = $1 AND w.id = ANY($2::text[]) AND NOT EXISTS (SELECT 1 FROM events e "
    "WHERE e.project_id = $1 AND e.user_id = w.id) AND NOT EXISTS (SELECT 1 FROM events e WHERE e.project_id = $1 "
    "AND e.anonymous_id = w.id AND e.user_id IS NOT NULL AND e.anonymous_id IS NOT NULL)";
}  // namespace

Status ForgetWalkIds(Lease& lease, int64_t project_id, const std::vector<std::string>& ids) {
  return lease.Run(std::string("DELETE ") + kWalkIdsHeldByNone, {I(project_id), TextArray(ids)});
}

Result<std::vector<std::string>> WalkIdsHeldByNone(Lease& lease, int64_t project_id,
                                                   const std::vector<std::string>& ids) {
  auto r = lease.Exec(std::string("SELECT DISTINCT w.id ") + kWalkIdsHeldByNone, {I(project_id), TextArray(ids)});
  if (!r.ok()) return r.status();
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(Get(r->get(), i, 0));
  return out;
}

Status StreamSubjectRows(Lease& lease, int64_t project_id, const std::string& project,
                         const std::vector<std::string>& ids, RowSink& sink) {
  const std::vector<Param> params = {I(project_id), TextArray(ids)};
  const char* of_ids =
      " WHERE project_id = $1 AND (user_id = ANY($2::text[]) OR anonymous_id = ANY($2::text[])) "
      "ORDER BY id";
  FERRY_RETURN_IF_ERROR(Fetch(lease, "consent_cur",
                              std::string("SELECT ") + kConsentColumns + " FROM consent_ledger" + of_ids, params,
                              [&](const RowView& row) { return sink.Consent(ConsentFromRow(row)); }));
  return Fetch(lease, "events_cur", std::string("SELECT ") + kEventColumns + " FROM events" + of_ids, params,
               [&](const RowView& row) { return sink.Event(EventFromRow(row, project)); });
}

}  // namespace ferry::collector::pg
