// The embedded engine's primitive reads and writes inside one transaction (EngineTxn). Each runs with the engine's
// mutex held by the caller (SqliteEngine::Transact/Export); the algorithms built on them are in collector/store/.
#include <algorithm>
#include <set>
#include <string_view>
#include <unordered_set>

#include "collector/engines/sqlite/body_codec.h"
#include "collector/engines/sqlite/sqlite_engine.h"
#include "collector/store/columns.h"
#include "collector/store/roles.h"
#include "lib/base/secret.h"

namespace ferry::collector::sqlite {

using base::Result;
using base::Status;

namespace {

constexpr const char* kTokenCols = "id, name, prefix, roles, created_ms, ifnull(revoked_ms, 0), ifnull(expires_ms, 0)";

class SqliteTxn final : public EngineTxn {
 public:
  explicit SqliteTxn(base::Db& db) : db_(db) {}

  // ---- Projects and credentials ----

  Result<std::vector<ProjectRef>> Projects(const std::string& name) override {
    auto st = db_.Prepare("SELECT id, name FROM projects WHERE ?1 = '' OR name = ?1 ORDER BY id;");
    if (!st.ok()) return st.status();
    st->Bind(1, name);
    std::vector<ProjectRef> out;
    while (st->Step()) out.push_back({st->Int(0), st->Text(1)});
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<std::string> ProjectName(int64_t project_id) override {
    auto st = db_.Prepare("SELECT name FROM projects WHERE id = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id);
    std::string name;
    if (st->Step()) name = st->Text(0);
    FERRY_RETURN_IF_ERROR(st->status());
    return name;
  }

  Status EnsureProject(const std::string& name, int64_t now_ms) override {
    auto st = db_.Prepare("INSERT OR IGNORE INTO projects(name, created_ms) VALUES(?1, ?2);");
    if (!st.ok()) return st.status();
    st->Bind(1, name).Bind(2, now_ms);
    return st->Run();
  }

  Status InsertWriteKey(const std::string& project, const std::string& key_hash, const std::string& prefix,
                        const std::string& kind, int64_t now_ms) override {
    auto st = db_.Prepare(
        "INSERT INTO write_keys(project_id, key_hash, prefix, created_ms, kind) "
        "SELECT id, ?2, ?3, ?4, ?5 FROM projects WHERE name = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, project).BindBlob(2, key_hash.data(), key_hash.size()).Bind(3, prefix).Bind(4, now_ms);
    st->Bind(5, kind);
    return st->Run();
  }

  Result<std::optional<WriteKeyInfo>> FindWriteKey(const std::string& key_hash) override {
    return FindByHash<WriteKeyInfo>(
        "SELECT p.id, p.name, k.kind, k.prefix, ifnull(k.expires_ms, 0) FROM write_keys k JOIN projects p "
        "ON p.id = k.project_id WHERE k.key_hash = ?1 AND k.revoked_ms IS NULL;",
        key_hash, [](const base::Stmt& st) {
          WriteKeyInfo info{st.Int(0), st.Text(1), st.Text(2), st.Text(3)};
          info.expires_ms = st.Int(4);
          return info;
        });
  }

  Result<std::vector<WriteKeyRecord>> WriteKeys() override {
    auto st = db_.Prepare(
        "SELECT k.id, p.name, k.prefix, k.kind, k.created_ms, ifnull(k.revoked_ms, 0), ifnull(k.expires_ms, 0) "
        "FROM write_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.id;");
    if (!st.ok()) return st.status();
    std::vector<WriteKeyRecord> out;
    while (st->Step()) out.push_back(WriteKeyFromRow(*st));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<bool> RevokeWriteKey(int64_t id, int64_t now_ms) override {
    return Update("UPDATE write_keys SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL;", id, now_ms);
  }

  Result<bool> SetWriteKeyExpiry(int64_t id, int64_t expires_ms) override {
    return Update("UPDATE write_keys SET expires_ms = nullif(?2, 0) WHERE id = ?1 AND revoked_ms IS NULL;", id,
                  expires_ms);
  }

  Result<bool> SetAdminTokenExpiry(int64_t id, int64_t expires_ms) override {
    return Update("UPDATE admin_tokens SET expires_ms = nullif(?2, 0) WHERE id = ?1 AND revoked_ms IS NULL;", id,
                  expires_ms);
  }

  Status InsertAdminToken(const AdminTokenRow& row, const std::string& token_hash) override {
    auto st = db_.Prepare(
        "INSERT INTO admin_tokens(name, token_hash, prefix, roles, created_ms) VALUES(?1, ?2, ?3, ?4, ?5);");
    if (!st.ok()) return st.status();
    st->Bind(1, row.name).BindBlob(2, token_hash.data(), token_hash.size()).Bind(3, row.prefix).Bind(4, row.roles);
    st->Bind(5, row.created_ms);
    return st->Run();
  }

  Result<std::optional<AdminTokenRow>> FindAdminToken(const std::string& token_hash) override {
    return FindByHash<AdminTokenRow>(
        std::string("SELECT ") + kTokenCols + " FROM admin_tokens WHERE token_hash = ?1 AND revoked_ms IS NULL;",
        token_hash, [](const base::Stmt& st) { return TokenFromRow(st); });
  }

  Result<std::vector<AdminTokenRow>> AdminTokens() override {
    auto st = db_.Prepare(std::string("SELECT ") + kTokenCols + " FROM admin_tokens ORDER BY id;");
    if (!st.ok()) return st.status();
    std::vector<AdminTokenRow> out;
    while (st->Step()) out.push_back(TokenFromRow(*st));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<bool> RevokeAdminToken(int64_t id, int64_t now_ms) override {
    return Update("UPDATE admin_tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL;", id, now_ms);
  }

  // An UPDATE of one row by id (?1) with one value (?2): whether it changed a row.
  Result<bool> Update(const char* sql, int64_t id, int64_t value) {
    auto st = db_.Prepare(sql);
    if (!st.ok()) return st.status();
    st->Bind(1, id).Bind(2, value);
    FERRY_RETURN_IF_ERROR(st->Run());
    return db_.Changes() == 1;
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
        "SELECT user_id FROM events INDEXED BY events_anon_with_user WHERE project_id = ?1 AND anonymous_id = ?2 "
        "AND user_id IS NOT NULL AND anonymous_id IS NOT NULL LIMIT 1;",
        project_id, anonymous_id);
  }

  Result<bool> HeldAsAnonymousId(int64_t project_id, const std::string& id, bool events_only) override {
    return HeldIn(kAnonymousIdHolders, events_only ? 1 : 3, project_id, id);
  }

  Result<std::vector<LinkRow>> LinksTo(int64_t project_id, const std::string& user_id) override {
    return Links("user_id", project_id, user_id);
  }

  Result<std::optional<LinkRow>> GetLink(int64_t link_id) override {
    auto st = db_.Prepare(std::string("SELECT ") + kLinkColumns + " FROM identity_links WHERE id = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, link_id);
    if (st->Step()) return std::optional<LinkRow>(LinkFromRow(*st));
    FERRY_RETURN_IF_ERROR(st->status());
    return std::optional<LinkRow>();
  }

  Result<bool> ConfirmLink(int64_t link_id, const std::string& confirmed_by, int64_t now_ms) override {
    auto st = db_.Prepare(
        "UPDATE identity_links SET state = 'active', confirmed_by = ?2, confirmed_ms = ?3 "
        "WHERE id = ?1 AND confirmed_by = '';");
    if (!st.ok()) return st.status();
    st->Bind(1, link_id).Bind(2, confirmed_by).Bind(3, now_ms);
    FERRY_RETURN_IF_ERROR(st->Run());
    return db_.Changes() == 1;
  }

  Result<std::vector<std::string>> AnonymousIdsSeenWith(int64_t project_id, const std::string& user_id) override {
    std::vector<std::string> out;
    for (const char* sql :
         {"SELECT DISTINCT anonymous_id FROM events INDEXED BY events_by_user WHERE project_id = ?1 AND user_id = ?2 "
          "AND anonymous_id IS NOT NULL;",
          "SELECT DISTINCT anonymous_id FROM consent_ledger INDEXED BY consent_by_user WHERE project_id = ?1 "
          "AND user_id = ?2 AND anonymous_id IS NOT NULL;"}) {
      auto st = db_.Prepare(sql);
      if (!st.ok()) return st.status();
      st->Bind(1, project_id).Bind(2, user_id);
      while (st->Step()) out.push_back(st->Text(0));
      FERRY_RETURN_IF_ERROR(st->status());
    }
    return out;
  }

  // ---- A subject's rows ----

  Status ReadSubject(int64_t project_id, const std::vector<std::string>& ids, const std::string& user_id,
                     SubjectRows* out) override {
    // The subject's ids in a temporary (in-memory) table, for set queries.
    FERRY_RETURN_IF_ERROR(
        db_.Exec("CREATE TEMP TABLE IF NOT EXISTS subject_ids(id TEXT PRIMARY KEY); "
                 "DELETE FROM temp.subject_ids;"));
    {
      auto ins = db_.Prepare("INSERT OR IGNORE INTO temp.subject_ids(id) VALUES(?1);");
      if (!ins.ok()) return ins.status();
      for (const auto& id : ids) {
        ins->Bind(1, id);
        FERRY_RETURN_IF_ERROR(ins->Run());
      }
    }
    // Per id through the per-id indexes: events by userId, then by anonymousId unless their userId was counted.
    for (const char* sql :
         {"SELECT type, count(*), min(timestamp_ms), max(timestamp_ms) FROM events "
          "WHERE project_id = ?1 AND user_id = ?2 GROUP BY type;",
          "SELECT type, count(*), min(timestamp_ms), max(timestamp_ms) FROM events "
          "WHERE project_id = ?1 AND anonymous_id = ?2 "
          "AND (user_id IS NULL OR user_id NOT IN (SELECT id FROM temp.subject_ids)) GROUP BY type;"}) {
      auto st = db_.Prepare(sql);
      if (!st.ok()) return st.status();
      for (const auto& id : ids) {
        st->Bind(1, project_id).Bind(2, id);
        while (st->Step()) out->counts.push_back({st->Text(0), st->Int(1), st->Int(2), st->Int(3)});
        FERRY_RETURN_IF_ERROR(st->status());
        st->Reset();
      }
    }
    {
      auto st = db_.Prepare(
          "SELECT purpose, state, timestamp_ms FROM consent_ledger WHERE project_id = ?1 AND "
          "(user_id IN (SELECT id FROM temp.subject_ids) OR anonymous_id IN (SELECT id FROM temp.subject_ids)) "
          "ORDER BY timestamp_ms, id;");
      if (!st.ok()) return st.status();
      st->Bind(1, project_id);
      while (st->Step()) out->consent.push_back({st->Text(0), st->Text(1), st->Int(2)});
      FERRY_RETURN_IF_ERROR(st->status());
    }
    auto st = db_.Prepare(
        "SELECT k, v FROM traits WHERE project_id = ?1 AND subject_id IN (SELECT id FROM temp.subject_ids) "
        "ORDER BY subject_id = ?2, updated_ms;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, user_id);
    while (st->Step()) out->traits.emplace_back(st->Text(0), st->Text(1));
    return st->status();
  }

  Status DeleteSubjectRows(int64_t project_id, const std::vector<std::string>& ids, EraseScope scope,
                           std::map<std::string, int64_t>* erased) override {
    using S = EraseScope;
    struct Step {
      const char* table;
      const char* sql;
      std::vector<S> scopes;  // the scopes this step belongs to
    };
    static const Step kSteps[] = {
        {"events", "DELETE FROM events WHERE project_id = ?1 AND user_id = ?2;", {S::kFollowingLinks}},
        {"events",
         "DELETE FROM events WHERE project_id = ?1 AND anonymous_id = ?2;",
         {S::kFollowingLinks, S::kAnonymousIds}},
        {"events",
         "DELETE FROM events WHERE project_id = ?1 AND anonymous_id = ?2 AND user_id IS NULL;",
         {S::kDeviceOwn}},
        {"consent_ledger", "DELETE FROM consent_ledger WHERE project_id = ?1 AND user_id = ?2;", {S::kFollowingLinks}},
        {"consent_ledger",
         "DELETE FROM consent_ledger WHERE project_id = ?1 AND anonymous_id = ?2;",
         {S::kFollowingLinks, S::kAnonymousIds}},
        {"consent_ledger",
         "DELETE FROM consent_ledger WHERE project_id = ?1 AND anonymous_id = ?2 AND user_id IS NULL;",
         {S::kDeviceOwn}},
        {"identity_links",
         "DELETE FROM identity_links WHERE project_id = ?1 AND from_id = ?2;",
         {S::kFollowingLinks, S::kAnonymousIds}},
        {"identity_links", "DELETE FROM identity_links WHERE project_id = ?1 AND user_id = ?2;", {S::kFollowingLinks}},
        {"traits",
         "DELETE FROM traits WHERE project_id = ?1 AND subject_id = ?2;",
         {S::kFollowingLinks, S::kAnonymousIds, S::kDeviceOwn}},
    };
    for (const Step& step : kSteps) {
      if (std::find(step.scopes.begin(), step.scopes.end(), scope) == step.scopes.end()) continue;
      auto st = db_.Prepare(step.sql);
      if (!st.ok()) return st.status();
      for (const std::string& id : ids) {
        st->Bind(1, project_id).Bind(2, id);
        FERRY_RETURN_IF_ERROR(st->Run());
        (*erased)[step.table] += db_.Changes();
      }
    }
    return Status::Ok();
  }

  Result<int64_t> DeleteEventsOf(int64_t project_id, const std::vector<std::string>& ids) override {
    // Through the user and anonymous indexes: no scan.
    static const char* const kSql[] = {
        "DELETE FROM events WHERE project_id = ?1 AND user_id = ?2;",
        "DELETE FROM events WHERE project_id = ?1 AND anonymous_id = ?2;",
    };
    int64_t deleted = 0;
    for (const char* sql : kSql) {
      auto st = db_.Prepare(sql);
      if (!st.ok()) return st.status();
      for (const std::string& id : ids) {
        st->Bind(1, project_id).Bind(2, id);
        FERRY_RETURN_IF_ERROR(st->Run());
        deleted += db_.Changes();
      }
    }
    return deleted;
  }

  Result<std::vector<int64_t>> EventRowsOf(int64_t project_id, const std::vector<std::string>& ids) override {
    // From the user and anonymous indexes alone (each entry carries its row id).
    auto st = db_.Prepare(
        "SELECT id FROM events WHERE project_id = ?1 AND user_id = ?2 UNION ALL "
        "SELECT id FROM events WHERE project_id = ?1 AND anonymous_id = ?2;");
    if (!st.ok()) return st.status();
    std::vector<int64_t> rows;
    for (const std::string& id : ids) {
      st->Reset();
      st->Bind(1, project_id).Bind(2, id);
      while (st->Step()) rows.push_back(st->Int(0));
      FERRY_RETURN_IF_ERROR(st->status());
    }
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    return rows;
  }

  Result<int64_t> DeleteEventRows(int64_t project_id, const std::vector<std::string>& ids,
                                  const std::vector<int64_t>& rows) override {
    // Each row is checked before it goes: a row id the list names may have been deleted since (retention) and, as
    // the newest row's id, taken again by another event.
    const std::unordered_set<std::string_view> holders(ids.begin(), ids.end());
    auto get = db_.Prepare("SELECT user_id, anonymous_id FROM events WHERE id = ?1 AND project_id = ?2;");
    if (!get.ok()) return get.status();
    auto del = db_.Prepare("DELETE FROM events WHERE id = ?1;");
    if (!del.ok()) return del.status();
    int64_t deleted = 0;
    for (int64_t row : rows) {
      get->Reset();
      get->Bind(1, row).Bind(2, project_id);
      if (!get->Step()) {
        FERRY_RETURN_IF_ERROR(get->status());
        continue;
      }
      const bool held = (!get->IsNull(0) && holders.count(get->TextView(0)) > 0) ||
                        (!get->IsNull(1) && holders.count(get->TextView(1)) > 0);
      get->Reset();
      if (!held) continue;
      del->Bind(1, row);
      FERRY_RETURN_IF_ERROR(del->Run());
      deleted += db_.Changes();
    }
    return deleted;
  }

  Status DeleteTrait(int64_t project_id, const std::vector<std::string>& ids, const std::string& key) override {
    auto st = db_.Prepare("DELETE FROM traits WHERE project_id = ?1 AND subject_id = ?2 AND k = ?3;");
    if (!st.ok()) return st.status();
    for (const std::string& id : ids) {
      st->Bind(1, project_id).Bind(2, id).Bind(3, key);
      FERRY_RETURN_IF_ERROR(st->Run());
    }
    return Status::Ok();
  }

  Result<std::vector<std::pair<int64_t, std::string>>> IdentifyBodies(int64_t project_id,
                                                                      const std::vector<std::string>& ids) override {
    auto st = db_.Prepare(
        "SELECT id, body FROM events WHERE project_id = ?1 AND type = 'identify' AND (user_id = ?2 OR anonymous_id = "
        "?2) "
        "ORDER BY id;");
    if (!st.ok()) return st.status();
    std::map<int64_t, std::string> rows;
    for (const std::string& id : ids) {
      st->Reset();
      st->Bind(1, project_id).Bind(2, id);
      while (st->Step()) {
        auto body = ReadBody(*st, 1);
        if (!body.ok()) return body.status();
        rows.emplace(st->Int(0), std::move(body).value());
      }
      FERRY_RETURN_IF_ERROR(st->status());
    }
    return std::vector<std::pair<int64_t, std::string>>(rows.begin(), rows.end());
  }

  Status SetEventBody(int64_t project_id, int64_t row_id, const std::string& body) override {
    auto st = db_.Prepare("UPDATE events SET body = ?3 WHERE project_id = ?1 AND id = ?2;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, row_id).Bind(3, body);
    return st->Run();
  }

  Status PutTrait(int64_t project_id, const std::string& holder, const std::string& key, const std::string& value_json,
                  int64_t now_ms) override {
    auto st = db_.Prepare(
        "INSERT OR REPLACE INTO traits(project_id, subject_id, k, v, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5);");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, holder).Bind(3, key).Bind(4, value_json).Bind(5, now_ms);
    return st->Run();
  }

  // ---- The suppression list ----

  Result<int64_t> Suppress(int64_t project_id, const std::vector<std::string>& id_hashes, int64_t now_ms) override {
    auto st = db_.Prepare("INSERT OR IGNORE INTO suppressions(project_id, id_hash, created_ms) VALUES(?1, ?2, ?3);");
    if (!st.ok()) return st.status();
    auto again = db_.Prepare(
        "UPDATE suppressions SET created_ms = ?3 WHERE project_id = ?1 AND id_hash = ?2 AND created_ms < ?3;");
    if (!again.ok()) return again.status();
    int64_t added = 0;
    for (const std::string& h : id_hashes) {
      st->Bind(1, project_id).Bind(2, h).Bind(3, now_ms);
      FERRY_RETURN_IF_ERROR(st->Run());
      if (db_.Changes() > 0) {
        ++added;
        continue;
      }
      again->Bind(1, project_id).Bind(2, h).Bind(3, now_ms);
      FERRY_RETURN_IF_ERROR(again->Run());
    }
    return added;
  }

  Result<int64_t> SuppressedSince(int64_t project_id, const std::string& id_hash) override {
    auto st = db_.Prepare("SELECT created_ms FROM suppressions WHERE project_id = ?1 AND id_hash = ?2;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, id_hash);
    int64_t since = st->Step() ? st->Int(0) : 0;
    FERRY_RETURN_IF_ERROR(st->status());
    return since;
  }

  Result<bool> IsSuppressed(int64_t project_id, const std::string& id_hash) override {
    static const IdHolder kList[] = {{"suppressions", "id_hash"}};
    return HeldIn(kList, 1, project_id, id_hash);
  }

  // ---- The request register ----

  Status InsertRequest(const RightsRequest& r) override {
    auto st = db_.Prepare(std::string("INSERT INTO requests(") + kRequestColumns +
                          ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12);");
    if (!st.ok()) return st.status();
    st->Bind(1, r.id).Bind(2, r.kind).Bind(3, r.project).Bind(4, r.subject).Bind(5, r.subject_hash).Bind(6, r.state);
    st->Bind(7, r.source).Bind(8, r.received_ms).Bind(9, r.due_ms).Bind(10, r.acted_by).Bind(11, r.acted_ms);
    st->Bind(12, r.result);
    Status s = st->Run();
    if (!s.ok() && sqlite3_errcode(db_.get()) == SQLITE_CONSTRAINT) {
      return Status::AlreadyExists("a request with the id " + r.id + " exists");
    }
    return s;
  }

  Result<std::optional<RightsRequest>> GetRequest(const std::string& id) override {
    auto st = db_.Prepare(std::string("SELECT ") + kRequestColumns + " FROM requests WHERE id = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, id);
    if (!st->Step()) {
      FERRY_RETURN_IF_ERROR(st->status());
      return std::optional<RightsRequest>();
    }
    return std::optional<RightsRequest>(RequestFromRow(*st));
  }

  Result<bool> UpdateRequestIf(const std::string& id, const std::string& expected_state, const std::string& new_state,
                               const std::string& acted_by, int64_t acted_ms, const std::string& result) override {
    auto st = db_.Prepare(
        "UPDATE requests SET state = ?3, acted_by = ?4, acted_ms = ?5, result = ?6 WHERE id = ?1 AND state = ?2;");
    if (!st.ok()) return st.status();
    st->Bind(1, id).Bind(2, expected_state).Bind(3, new_state).Bind(4, acted_by).Bind(5, acted_ms).Bind(6, result);
    FERRY_RETURN_IF_ERROR(st->Run());
    return db_.Changes() == 1;
  }

  Result<bool> SetRequestDueIf(const std::string& id, const std::string& expected_state, int64_t due_ms) override {
    auto st = db_.Prepare("UPDATE requests SET due_ms = ?3 WHERE id = ?1 AND state = ?2;");
    if (!st.ok()) return st.status();
    st->Bind(1, id).Bind(2, expected_state).Bind(3, due_ms);
    FERRY_RETURN_IF_ERROR(st->Run());
    return db_.Changes() == 1;
  }

  Result<std::string> GetRequestPolicy(const std::string& project) override {
    auto st = db_.Prepare("SELECT policy FROM request_policies WHERE project = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, project);
    if (st->Step()) return st->Text(0);
    FERRY_RETURN_IF_ERROR(st->status());
    return std::string();
  }

  Status SetRequestPolicy(const std::string& project, const std::string& policy) override {
    auto st = db_.Prepare(policy.empty() ? "DELETE FROM request_policies WHERE project = ?1;"
                                         : "INSERT OR REPLACE INTO request_policies(project, policy) VALUES(?1, ?2);");
    if (!st.ok()) return st.status();
    st->Bind(1, project);
    if (!policy.empty()) st->Bind(2, policy);
    return st->Run();
  }

  Result<std::optional<RightsRequest>> FindDeviceRequest(const std::string& kind, const std::string& project,
                                                         const std::string& subject_hash,
                                                         const std::string& state) override {
    auto st = db_.Prepare(std::string("SELECT ") + kRequestColumns +
                          " FROM requests WHERE subject_hash = ?1 AND kind = ?2 AND project = ?3 AND state = ?4 "
                          "AND source = 'device' ORDER BY received_ms, id LIMIT 1;");
    if (!st.ok()) return st.status();
    st->Bind(1, subject_hash).Bind(2, kind).Bind(3, project).Bind(4, state);
    if (st->Step()) return std::optional<RightsRequest>(RequestFromRow(*st));
    FERRY_RETURN_IF_ERROR(st->status());
    return std::optional<RightsRequest>();
  }

  Result<std::vector<RightsRequest>> ListRequests(const RequestFilter& f) override {
    auto st = db_.Prepare(std::string("SELECT ") + kRequestColumns +
                          " FROM requests WHERE (?1 = '' OR state = ?1) AND (?2 = 0 OR (state NOT IN ('completed', "
                          "'rejected') AND due_ms < ?2)) ORDER BY received_ms, id LIMIT ?3;");
    if (!st.ok()) return st.status();
    st->Bind(1, f.state).Bind(2, f.overdue_at_ms).Bind(3, static_cast<int64_t>(f.limit));
    std::vector<RightsRequest> out;
    while (st->Step()) out.push_back(RequestFromRow(*st));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<int64_t> RedactRequests(const std::vector<std::string>& ids, const std::vector<std::string>& hashes) override {
    auto st =
        db_.Prepare("UPDATE requests SET subject = 'hash:' || subject_hash WHERE subject_hash = ?1 AND subject = ?2;");
    if (!st.ok()) return st.status();
    int64_t n = 0;
    for (size_t i = 0; i < ids.size() && i < hashes.size(); ++i) {
      st->Bind(1, hashes[i]).Bind(2, ids[i]);
      FERRY_RETURN_IF_ERROR(st->Run());
      n += db_.Changes();
    }
    return n;
  }

  // ---- The audit log ----

  Result<std::optional<AuditTip>> LockAuditTip() override {
    // The transaction began with BEGIN IMMEDIATE: the database's write lock keeps every other appender out.
    auto st = db_.Prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1;");
    if (!st.ok()) return st.status();
    if (!st->Step()) {
      FERRY_RETURN_IF_ERROR(st->status());
      return std::optional<AuditTip>();
    }
    return std::optional<AuditTip>(AuditTip{st->Int(0), st->Text(1)});
  }

  Status InsertAudit(const AuditEntry& e) override {
    auto st = db_.Prepare(std::string("INSERT INTO audit_log(") + kAuditColumns +
                          ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);");
    if (!st.ok()) return st.status();
    st->Bind(1, e.seq).Bind(2, e.time_ms).Bind(3, e.actor).Bind(4, e.role).Bind(5, e.action).Bind(6, e.subject_hash);
    st->Bind(7, e.result).Bind(8, e.detail).Bind(9, e.prev_hash).Bind(10, e.hash);
    return st->Run();
  }

  Result<std::vector<AuditEntry>> ListAudit(int64_t after_seq, size_t limit, const std::string& subject_hash) override {
    auto st = db_.Prepare(std::string("SELECT ") + kAuditColumns +
                          " FROM audit_log WHERE seq > ?1 AND (?2 = '' OR subject_hash = ?2) ORDER BY seq LIMIT ?3;");
    if (!st.ok()) return st.status();
    st->Bind(1, after_seq).Bind(2, subject_hash).Bind(3, static_cast<int64_t>(limit));
    std::vector<AuditEntry> out;
    while (st->Step()) out.push_back(AuditFromRow(*st));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  // ---- Settings and inspection ----

  Result<std::vector<ConsentRecord>> ConsentRecordsOf(int64_t project_id,
                                                      const std::vector<std::string>& ids) override {
    std::vector<ConsentRecord> out;
    std::set<std::string> seen;
    for (const char* where : {" FROM consent_ledger INDEXED BY consent_by_user WHERE project_id = ?1 AND user_id = ?2;",
                              " FROM consent_ledger INDEXED BY consent_by_anon WHERE project_id = ?1 AND "
                              "anonymous_id = ?2;"}) {
      auto st = db_.Prepare(std::string("SELECT ") + kConsentColumns + where);
      if (!st.ok()) return st.status();
      for (const auto& id : ids) {
        st->Bind(1, project_id).Bind(2, id);
        while (st->Step()) {
          ConsentRecord r = ConsentFromRow(*st);
          if (seen.insert(r.message_id).second) out.push_back(std::move(r));
        }
        FERRY_RETURN_IF_ERROR(st->status());
        st->Reset();
      }
    }
    return out;
  }

  Result<std::optional<std::pair<std::string, std::string>>> ConsentPolicyRow(int64_t project_id) override {
    auto st = db_.Prepare("SELECT mode, necessary FROM consent_policy WHERE project_id = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id);
    std::optional<std::pair<std::string, std::string>> out;
    if (st->Step()) out = std::make_pair(st->Text(0), st->Text(1));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Status SetConsentPolicyRow(int64_t project_id, const std::string& mode, const std::string& necessary_json) override {
    auto st = db_.Prepare("INSERT OR REPLACE INTO consent_policy(project_id, mode, necessary) VALUES(?1, ?2, ?3);");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, mode).Bind(3, necessary_json);
    return st->Run();
  }

  Status InsertRestriction(const RestrictionRecord& r) override {
    auto st = db_.Prepare(
        "INSERT INTO restrictions(project_id, subject_id, kind, purposes, request_id, since_ms, lifted_ms) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7);");
    if (!st.ok()) return st.status();
    st->Bind(1, r.project_id)
        .Bind(2, r.subject_id)
        .Bind(3, r.kind)
        .Bind(4, JoinRoles(r.purposes))
        .Bind(5, r.request_id)
        .Bind(6, r.since_ms)
        .Bind(7, r.lifted_ms);
    return st->Run();
  }

  Result<int64_t> LiftRestrictions(const std::string& request_id, int64_t lifted_ms) override {
    auto st = db_.Prepare("UPDATE restrictions SET lifted_ms = ?2 WHERE request_id = ?1 AND lifted_ms = 0;");
    if (!st.ok()) return st.status();
    st->Bind(1, request_id).Bind(2, lifted_ms);
    FERRY_RETURN_IF_ERROR(st->Run());
    return static_cast<int64_t>(db_.Changes());
  }

  Result<std::vector<RestrictionRecord>> RestrictionsOf(int64_t project_id, bool active_only) override {
    auto st = db_.Prepare(
        "SELECT r.id, r.project_id, p.name, r.subject_id, r.kind, r.purposes, r.request_id, r.since_ms, r.lifted_ms "
        "FROM restrictions r JOIN projects p ON p.id = r.project_id "
        "WHERE (?1 = 0 OR r.project_id = ?1) AND (?2 = 0 OR r.lifted_ms = 0) ORDER BY r.id;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, static_cast<int64_t>(active_only ? 1 : 0));
    std::vector<RestrictionRecord> out;
    while (st->Step()) {
      RestrictionRecord r;
      r.id = st->Int(0);
      r.project_id = st->Int(1);
      r.project = st->Text(2);
      r.subject_id = st->Text(3);
      r.kind = st->Text(4);
      r.purposes = SplitRoles(st->Text(5));
      r.request_id = st->Text(6);
      r.since_ms = st->Int(7);
      r.lifted_ms = st->Int(8);
      out.push_back(std::move(r));
    }
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<int64_t> DeleteRestrictions(int64_t project_id, const std::vector<std::string>& ids) override {
    auto st = db_.Prepare("DELETE FROM restrictions WHERE project_id = ?1 AND subject_id = ?2;");
    if (!st.ok()) return st.status();
    int64_t n = 0;
    for (const std::string& id : ids) {
      st->Reset();
      st->Bind(1, project_id).Bind(2, id);
      FERRY_RETURN_IF_ERROR(st->Run());
      n += static_cast<int64_t>(db_.Changes());
    }
    return n;
  }

  Result<std::string> RestrictionMode(int64_t project_id) override {
    auto st = db_.Prepare("SELECT mode FROM restriction_mode WHERE project_id = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id);
    std::string mode;
    if (st->Step()) mode = st->Text(0);
    FERRY_RETURN_IF_ERROR(st->status());
    return mode;
  }

  Status SetRestrictionMode(int64_t project_id, const std::string& mode) override {
    auto st = db_.Prepare("INSERT OR REPLACE INTO restriction_mode(project_id, mode) VALUES(?1, ?2);");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, mode);
    return st->Run();
  }

  Result<std::vector<PendingWithdrawal>> PendingWithdrawals(size_t limit) override {
    auto st = db_.Prepare(
        "SELECT q.id, q.project_id, p.name, ifnull(q.user_id, ''), ifnull(q.anonymous_id, ''), q.purpose, "
        "ifnull(q.previous, ''), ifnull(q.receipt_id, ''), q.denied_ms, ifnull(w.action, 'erase') "
        "FROM withdrawal_queue q JOIN projects p ON p.id = q.project_id "
        "LEFT JOIN withdrawal_policy w ON w.project_id = q.project_id AND w.purpose = q.purpose "
        "WHERE q.done_ms = 0 ORDER BY q.id LIMIT ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, static_cast<int64_t>(limit));
    std::vector<PendingWithdrawal> out;
    while (st->Step()) {
      PendingWithdrawal w;
      w.id = st->Int(0);
      w.project_id = st->Int(1);
      w.project = st->Text(2);
      w.user_id = st->Text(3);
      w.anonymous_id = st->Text(4);
      w.purpose = st->Text(5);
      w.previous = st->Text(6);
      w.receipt_id = st->Text(7);
      w.denied_ms = st->Int(8);
      w.action = st->Text(9);
      out.push_back(std::move(w));
    }
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<bool> FinishWithdrawal(int64_t id, const std::string& request_id, int64_t now_ms) override {
    auto st = db_.Prepare("UPDATE withdrawal_queue SET done_ms = ?2, request_id = ?3 WHERE id = ?1 AND done_ms = 0;");
    if (!st.ok()) return st.status();
    st->Bind(1, id).Bind(2, std::max<int64_t>(now_ms, 1)).Bind(3, request_id);
    FERRY_RETURN_IF_ERROR(st->Run());
    return db_.Changes() > 0;
  }

  Result<int64_t> EventsOfPurpose(int64_t project_id, const std::vector<std::string>& ids, const std::string& purpose,
                                  bool erase) override {
    // Row ids first (an event under two of the ids is counted once), then deleted when erasing.
    std::set<int64_t> rows;
    for (const char* sql : {"SELECT rowid FROM events INDEXED BY events_by_user WHERE project_id = ?1 AND user_id = ?2 "
                            "AND purpose = ?3;",
                            "SELECT rowid FROM events INDEXED BY events_by_anon WHERE project_id = ?1 AND "
                            "anonymous_id = ?2 AND purpose = ?3;"}) {
      auto st = db_.Prepare(sql);
      if (!st.ok()) return st.status();
      for (const std::string& id : ids) {
        st->Bind(1, project_id).Bind(2, id).Bind(3, purpose);
        while (st->Step()) rows.insert(st->Int(0));
        FERRY_RETURN_IF_ERROR(st->status());
        st->Reset();
      }
    }
    if (erase && !rows.empty()) {
      auto del = db_.Prepare("DELETE FROM events WHERE rowid = ?1;");
      if (!del.ok()) return del.status();
      for (int64_t row : rows) {
        del->Reset();
        del->Bind(1, row);
        FERRY_RETURN_IF_ERROR(del->Run());
      }
    }
    return static_cast<int64_t>(rows.size());
  }

  Result<std::vector<ConsentRecord>> ConsentBetween(int64_t project_id, int64_t from_ms, int64_t to_ms) override {
    auto st = db_.Prepare(std::string("SELECT ") + kConsentColumns +
                          " FROM consent_ledger WHERE project_id = ?1 AND timestamp_ms >= ?2 AND timestamp_ms < ?3 "
                          "ORDER BY timestamp_ms, id;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, from_ms).Bind(3, to_ms);
    std::vector<ConsentRecord> out;
    while (st->Step()) out.push_back(ConsentFromRow(*st));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Status InsertMinorMark(const MinorMark& m) override {
    auto st = db_.Prepare(
        "INSERT INTO minor_marks(project_id, subject_id, marked_by, since_ms, lifted_ms, lifted_by) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6);");
    if (!st.ok()) return st.status();
    st->Bind(1, m.project_id).Bind(2, m.subject_id).Bind(3, m.marked_by).Bind(4, m.since_ms);
    st->Bind(5, m.lifted_ms).Bind(6, m.lifted_by);
    return st->Run();
  }

  Result<std::vector<MinorMark>> MinorMarksOf(int64_t project_id, bool active_only) override {
    auto st = db_.Prepare(
        "SELECT m.id, m.project_id, p.name, m.subject_id, m.marked_by, m.since_ms, m.lifted_ms, m.lifted_by "
        "FROM minor_marks m JOIN projects p ON p.id = m.project_id "
        "WHERE (?1 = 0 OR m.project_id = ?1) AND (?2 = 0 OR m.lifted_ms = 0) ORDER BY m.id;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, static_cast<int64_t>(active_only ? 1 : 0));
    std::vector<MinorMark> out;
    while (st->Step()) {
      MinorMark m;
      m.id = st->Int(0);
      m.project_id = st->Int(1);
      m.project = st->Text(2);
      m.subject_id = st->Text(3);
      m.marked_by = st->Text(4);
      m.since_ms = st->Int(5);
      m.lifted_ms = st->Int(6);
      m.lifted_by = st->Text(7);
      out.push_back(std::move(m));
    }
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<int64_t> LiftMinorMarks(int64_t project_id, const std::vector<std::string>& ids, int64_t lifted_ms,
                                 const std::string& by) override {
    auto st = db_.Prepare(
        "UPDATE minor_marks SET lifted_ms = ?3, lifted_by = ?4 WHERE project_id = ?1 AND subject_id = ?2 AND "
        "lifted_ms = 0;");
    if (!st.ok()) return st.status();
    int64_t n = 0;
    for (const std::string& id : ids) {
      st->Reset();
      st->Bind(1, project_id).Bind(2, id).Bind(3, lifted_ms).Bind(4, by);
      FERRY_RETURN_IF_ERROR(st->Run());
      n += static_cast<int64_t>(db_.Changes());
    }
    return n;
  }

  Result<int64_t> DeleteMinorMarks(int64_t project_id, const std::vector<std::string>& ids) override {
    auto st = db_.Prepare("DELETE FROM minor_marks WHERE project_id = ?1 AND subject_id = ?2;");
    if (!st.ok()) return st.status();
    int64_t n = 0;
    for (const std::string& id : ids) {
      st->Reset();
      st->Bind(1, project_id).Bind(2, id);
      FERRY_RETURN_IF_ERROR(st->Run());
      n += static_cast<int64_t>(db_.Changes());
    }
    return n;
  }

  Result<std::map<std::string, std::string>> WithdrawalActions(int64_t project_id) override {
    auto st = db_.Prepare("SELECT purpose, action FROM withdrawal_policy WHERE project_id = ?1 ORDER BY purpose;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id);
    std::map<std::string, std::string> out;
    while (st->Step()) out[st->Text(0)] = st->Text(1);
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Status SetWithdrawalAction(int64_t project_id, const std::string& purpose, const std::string& action) override {
    auto st = db_.Prepare("INSERT OR REPLACE INTO withdrawal_policy(project_id, purpose, action) VALUES(?1, ?2, ?3);");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, purpose).Bind(3, action);
    return st->Run();
  }

  Status SetMaxEventAge(int64_t project_id, int64_t max_age_ms) override {
    auto st = max_age_ms > 0
                  ? db_.Prepare("INSERT OR REPLACE INTO project_settings(project_id, max_event_age_ms) VALUES(?1, ?2);")
                  : db_.Prepare("DELETE FROM project_settings WHERE project_id = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id);
    if (max_age_ms > 0) st->Bind(2, max_age_ms);
    return st->Run();
  }

  Status SetConsentKeep(int64_t project_id, int64_t keep_ms) override {
    auto st = keep_ms >= 0
                  ? db_.Prepare("INSERT OR REPLACE INTO consent_retention(project_id, keep_ms) VALUES(?1, ?2);")
                  : db_.Prepare("DELETE FROM consent_retention WHERE project_id = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id);
    if (keep_ms >= 0) st->Bind(2, keep_ms);
    return st->Run();
  }

  Result<std::map<std::string, int64_t>> MaxEventAges() override {
    auto st = db_.Prepare(
        "SELECT p.name, s.max_event_age_ms FROM project_settings s JOIN projects p ON p.id = s.project_id;");
    return NamedCounts(st);
  }

  Result<std::vector<EventRow>> DumpEvents(const std::string& project) override {
    auto st = db_.Prepare(
        "SELECT p.name, e.message_id, e.type, e.user_id, e.anonymous_id, e.name, e.purpose, e.timestamp_ms, "
        "e.received_ms, e.body, e.consent_receipt FROM events e JOIN projects p ON p.id = e.project_id "
        "WHERE ?1 = '' OR p.name = ?1 ORDER BY e.id;");
    if (!st.ok()) return st.status();
    st->Bind(1, project);
    std::vector<EventRow> rows;
    while (st->Step()) {
      auto row = ReadEventRow(*st, st->Text(0), 1);
      if (!row.ok()) return row.status();
      rows.push_back(std::move(row).value());
      rows.back().covered_by = st->Text(10);
    }
    FERRY_RETURN_IF_ERROR(st->status());
    return rows;
  }

  Result<std::optional<std::pair<std::string, int64_t>>> GetRegistry(int64_t project_id) override {
    auto st = db_.Prepare("SELECT document, updated_ms FROM processing_registry WHERE project_id = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id);
    std::optional<std::pair<std::string, int64_t>> out;
    if (st->Step()) out.emplace(st->Text(0), st->Int(1));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Status PutRegistry(int64_t project_id, const std::string& document,
                     const std::map<std::string, int64_t>& purpose_max_age_ms, int64_t now_ms) override {
    auto put =
        db_.Prepare("INSERT OR REPLACE INTO processing_registry(project_id, document, updated_ms) VALUES(?1, ?2, ?3);");
    if (!put.ok()) return put.status();
    put->Bind(1, project_id).Bind(2, document).Bind(3, now_ms);
    FERRY_RETURN_IF_ERROR(put->Run());
    auto clear = db_.Prepare("DELETE FROM purpose_retention WHERE project_id = ?1;");
    if (!clear.ok()) return clear.status();
    clear->Bind(1, project_id);
    FERRY_RETURN_IF_ERROR(clear->Run());
    auto age = db_.Prepare("INSERT INTO purpose_retention(project_id, purpose, max_age_ms) VALUES(?1, ?2, ?3);");
    if (!age.ok()) return age.status();
    for (const auto& [purpose, max_age_ms] : purpose_max_age_ms) {
      age->Bind(1, project_id).Bind(2, purpose).Bind(3, max_age_ms);
      FERRY_RETURN_IF_ERROR(age->Run());
    }
    return Status::Ok();
  }

  Result<std::vector<EventRow>> EventsAfter(int64_t after_seq, size_t limit) override {
    auto st = db_.Prepare(
        "SELECT p.name, e.message_id, e.type, e.user_id, e.anonymous_id, e.name, e.purpose, e.timestamp_ms, "
        "e.received_ms, e.body, e.id FROM events e JOIN projects p ON p.id = e.project_id "
        "WHERE e.id > ?1 ORDER BY e.id LIMIT ?2;");
    if (!st.ok()) return st.status();
    st->Bind(1, after_seq).Bind(2, static_cast<int64_t>(limit));
    std::vector<EventRow> rows;
    while (st->Step()) {
      auto row = ReadEventRow(*st, st->Text(0), 1);
      if (!row.ok()) return row.status();
      rows.push_back(std::move(row).value());
      rows.back().seq = st->Int(10);
    }
    FERRY_RETURN_IF_ERROR(st->status());
    return rows;
  }

  Result<std::vector<ConsentRecord>> ConsentOfPurpose(const std::string& project, const std::string& purpose) override {
    auto st = db_.Prepare(
        "SELECT c.state, c.user_id, c.anonymous_id, c.timestamp_ms FROM consent_ledger c "
        "JOIN projects p ON p.id = c.project_id WHERE p.name = ?1 AND c.purpose = ?2 ORDER BY c.timestamp_ms, c.id;");
    if (!st.ok()) return st.status();
    st->Bind(1, project).Bind(2, purpose);
    std::vector<ConsentRecord> rows;
    while (st->Step()) {
      ConsentRecord r;
      r.purpose = purpose;
      r.state = st->Text(0);
      r.user_id = st->Text(1);
      r.anonymous_id = st->Text(2);
      r.timestamp_ms = st->Int(3);
      rows.push_back(std::move(r));
    }
    FERRY_RETURN_IF_ERROR(st->status());
    return rows;
  }

  Result<int64_t> InsertOutbox(const OutboxEntry& e, const std::vector<std::string>& destinations) override {
    auto ins =
        db_.Prepare("INSERT INTO outbox(project, kind, request_id, body, created_ms) VALUES(?1, ?2, ?3, ?4, ?5);");
    if (!ins.ok()) return ins.status();
    ins->Bind(1, e.project).Bind(2, e.kind).Bind(3, e.request_id).Bind(4, e.body).Bind(5, e.created_ms);
    FERRY_RETURN_IF_ERROR(ins->Run());
    int64_t seq = db_.LastInsertRowid();
    auto d = db_.Prepare(
        "INSERT INTO outbox_deliveries(seq, destination, state, attempts, next_ms, last_status, last_error, "
        "delivered_ms) VALUES(?1, ?2, 'pending', 0, ?3, 0, '', 0);");
    if (!d.ok()) return d.status();
    for (const auto& dest : destinations) {
      d->Bind(1, seq).Bind(2, dest).Bind(3, e.created_ms);
      FERRY_RETURN_IF_ERROR(d->Run());
    }
    return seq;
  }

  Result<std::vector<OutboxEntry>> ListOutbox(int64_t after_seq, size_t limit) override {
    auto st = db_.Prepare(
        "SELECT seq, project, kind, request_id, body, created_ms FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2;");
    if (!st.ok()) return st.status();
    st->Bind(1, after_seq).Bind(2, static_cast<int64_t>(limit));
    std::vector<OutboxEntry> out;
    while (st->Step()) out.push_back(OutboxFromRow(*st, 0));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<std::vector<std::pair<OutboxEntry, OutboxDelivery>>> DueDeliveries(int64_t now_ms, size_t limit) override {
    auto st = db_.Prepare(
        "SELECT o.seq, o.project, o.kind, o.request_id, o.body, o.created_ms, d.seq, d.destination, d.state, "
        "d.attempts, d.next_ms, d.last_status, d.last_error, d.delivered_ms FROM outbox_deliveries d "
        "JOIN outbox o ON o.seq = d.seq WHERE d.state = 'pending' AND d.next_ms <= ?1 ORDER BY d.next_ms, d.seq "
        "LIMIT ?2;");
    if (!st.ok()) return st.status();
    st->Bind(1, now_ms).Bind(2, static_cast<int64_t>(limit));
    std::vector<std::pair<OutboxEntry, OutboxDelivery>> out;
    while (st->Step()) out.emplace_back(OutboxFromRow(*st, 0), DeliveryFromRow(*st, 6));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Status UpdateDelivery(const OutboxDelivery& d) override {
    auto st = db_.Prepare(
        "UPDATE outbox_deliveries SET state = ?3, attempts = ?4, next_ms = ?5, last_status = ?6, last_error = ?7, "
        "delivered_ms = ?8 WHERE seq = ?1 AND destination = ?2;");
    if (!st.ok()) return st.status();
    st->Bind(1, d.seq).Bind(2, d.destination).Bind(3, d.state).Bind(4, d.attempts).Bind(5, d.next_ms);
    st->Bind(6, d.last_status).Bind(7, d.last_error).Bind(8, d.delivered_ms);
    return st->Run();
  }

  Result<std::vector<OutboxDelivery>> DeliveriesOf(const std::string& request_id) override {
    auto st = db_.Prepare(
        "SELECT d.seq, d.destination, d.state, d.attempts, d.next_ms, d.last_status, d.last_error, d.delivered_ms "
        "FROM outbox_deliveries d JOIN outbox o ON o.seq = d.seq WHERE o.request_id = ?1 "
        "ORDER BY d.seq, d.destination;");
    if (!st.ok()) return st.status();
    st->Bind(1, request_id);
    std::vector<OutboxDelivery> out;
    while (st->Step()) out.push_back(DeliveryFromRow(*st, 0));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Status AckOutbox(const std::string& consumer, int64_t seq, int64_t now_ms) override {
    auto st = db_.Prepare(
        "INSERT OR REPLACE INTO outbox_consumers(consumer, acked_seq, updated_ms) VALUES(?1, max(?2, ifnull("
        "(SELECT acked_seq FROM outbox_consumers WHERE consumer = ?1), 0)), ?3);");
    if (!st.ok()) return st.status();
    st->Bind(1, consumer).Bind(2, seq).Bind(3, now_ms);
    return st->Run();
  }

  Result<std::map<std::string, int64_t>> OutboxAcks() override {
    auto st = db_.Prepare("SELECT consumer, acked_seq FROM outbox_consumers;");
    return NamedCounts(st);
  }

  Result<int64_t> PruneOutbox(int64_t cutoff_ms) override {
    int64_t n = 0;
    for (const char* sql :
         {"DELETE FROM outbox_deliveries WHERE state = 'delivered' AND delivered_ms < ?1;",
          "DELETE FROM outbox WHERE created_ms < ?1 AND seq <= (SELECT MIN(acked_seq) FROM outbox_consumers) "
          "AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.seq = outbox.seq);"}) {
      auto st = db_.Prepare(sql);
      if (!st.ok()) return st.status();
      st->Bind(1, cutoff_ms);
      FERRY_RETURN_IF_ERROR(st->Run());
      n += db_.Changes();
    }
    return n;
  }

  Result<std::string> Secret(const std::string& name) override {
    auto ins = db_.Prepare("INSERT OR IGNORE INTO secrets(name, v) VALUES(?1, ?2);");
    if (!ins.ok()) return ins.status();
    ins->Bind(1, name).Bind(2, base::SecretBytes::Random(32).ToHex());
    FERRY_RETURN_IF_ERROR(ins->Run());
    auto st = db_.Prepare("SELECT v FROM secrets WHERE name = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, name);
    std::string v;
    if (st->Step()) v = st->Text(0);
    FERRY_RETURN_IF_ERROR(st->status());
    return v;
  }

  Status InsertVerificationCode(const VerificationCodeRow& row, int64_t prune_before_ms) override {
    auto prune = db_.Prepare("DELETE FROM verification_codes WHERE expires_ms < ?1;");
    if (!prune.ok()) return prune.status();
    prune->Bind(1, prune_before_ms);
    FERRY_RETURN_IF_ERROR(prune->Run());
    auto st = db_.Prepare(
        "INSERT INTO verification_codes(code_hash, project, subject, created_ms, expires_ms, used_ms) "
        "VALUES(?1, ?2, ?3, ?4, ?5, 0);");
    if (!st.ok()) return st.status();
    st->Bind(1, row.code_hash)
        .Bind(2, row.project)
        .Bind(3, row.subject)
        .Bind(4, row.created_ms)
        .Bind(5, row.expires_ms);
    Status s = st->Run();
    if (!s.ok() && sqlite3_errcode(db_.get()) == SQLITE_CONSTRAINT) {
      return Status::AlreadyExists("verification code taken");
    }
    return s;
  }

  Result<std::optional<VerificationCodeRow>> GetVerificationCode(const std::string& code_hash) override {
    auto st = db_.Prepare(
        "SELECT code_hash, project, subject, created_ms, expires_ms, used_ms FROM verification_codes "
        "WHERE code_hash = ?1;");
    if (!st.ok()) return st.status();
    st->Bind(1, code_hash);
    if (!st->Step()) {
      FERRY_RETURN_IF_ERROR(st->status());
      return std::optional<VerificationCodeRow>();
    }
    VerificationCodeRow r;
    r.code_hash = st->Text(0);
    r.project = st->Text(1);
    r.subject = st->Text(2);
    r.created_ms = st->Int(3);
    r.expires_ms = st->Int(4);
    r.used_ms = st->Int(5);
    return std::optional<VerificationCodeRow>(std::move(r));
  }

  Result<bool> SpendVerificationCode(const std::string& code_hash, int64_t now_ms) override {
    auto st = db_.Prepare("UPDATE verification_codes SET used_ms = ?2 WHERE code_hash = ?1 AND used_ms = 0;");
    if (!st.ok()) return st.status();
    st->Bind(1, code_hash).Bind(2, now_ms);
    FERRY_RETURN_IF_ERROR(st->Run());
    return db_.Changes() == 1;
  }

  Result<bool> BindRequestSubject(const std::string& id, const std::string& subject,
                                  const std::string& subject_hash) override {
    auto st = db_.Prepare("UPDATE requests SET subject = ?2, subject_hash = ?3 WHERE id = ?1 AND subject = '';");
    if (!st.ok()) return st.status();
    st->Bind(1, id).Bind(2, subject).Bind(3, subject_hash);
    FERRY_RETURN_IF_ERROR(st->Run());
    return db_.Changes() == 1;
  }

  Result<std::map<std::string, int64_t>> DroppedCounters(const std::string& project) override {
    auto st = db_.Prepare(
        "SELECT d.reason, d.count FROM dropped_counters d JOIN projects p ON p.id = d.project_id WHERE p.name = ?1;");
    if (st.ok()) st->Bind(1, project);
    return NamedCounts(st);
  }

 private:
  // (text, integer) rows as a map.
  static Result<std::map<std::string, int64_t>> NamedCounts(Result<base::Stmt>& st) {
    if (!st.ok()) return st.status();
    std::map<std::string, int64_t> out;
    while (st->Step()) out[st->Text(0)] = st->Int(1);
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  // The row a raw hash (bound as ?1) selects, made by make(stmt); nullopt when none.
  template <typename T, typename Make>
  Result<std::optional<T>> FindByHash(const std::string& sql, const std::string& hash, Make make) {
    auto st = db_.Prepare(sql);
    if (!st.ok()) return st.status();
    st->BindBlob(1, hash.data(), hash.size());
    if (!st->Step()) {
      FERRY_RETURN_IF_ERROR(st->status());
      return std::optional<T>();
    }
    return std::optional<T>(make(*st));
  }

  // Whether a row of project_id holds `id` in one of the first n (table, column) places.
  Result<bool> HeldIn(const IdHolder* holders, size_t n, int64_t project_id, const std::string& id) {
    for (size_t i = 0; i < n; ++i) {
      auto st = db_.Prepare(std::string("SELECT 1 FROM ") + holders[i].table + " WHERE project_id = ?1 AND " +
                            holders[i].column + " = ?2 LIMIT 1;");
      if (!st.ok()) return st.status();
      st->Bind(1, project_id).Bind(2, id);
      bool found = st->Step();
      FERRY_RETURN_IF_ERROR(st->status());
      if (found) return true;
    }
    return false;
  }

  // First text column of the first row (binding ?1 = project_id, ?2 = text), "" when none.
  // The links whose `column` (from_id or user_id) is `id`, oldest first.
  Result<std::vector<LinkRow>> Links(const char* column, int64_t project_id, const std::string& id) {
    auto st = db_.Prepare(std::string("SELECT ") + kLinkColumns + " FROM identity_links WHERE project_id = ?1 AND " +
                          column + " = ?2 ORDER BY first_seen_ms, id;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, id);
    std::vector<LinkRow> out;
    while (st->Step()) out.push_back(LinkFromRow(*st));
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  Result<std::string> FirstText(std::string_view sql, int64_t project_id, const std::string& text) {
    auto st = db_.Prepare(sql);
    if (!st.ok()) return st.status();
    st->Bind(1, project_id).Bind(2, text);
    std::string out;
    if (st->Step()) out = st->Text(0);
    FERRY_RETURN_IF_ERROR(st->status());
    return out;
  }

  base::Db& db_;
};

}  // namespace

std::unique_ptr<EngineTxn> NewTxn(base::Db& db) { return std::make_unique<SqliteTxn>(db); }

}  // namespace ferry::collector::sqlite
