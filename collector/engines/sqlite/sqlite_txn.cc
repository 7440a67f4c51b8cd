// SqliteStore: data-subject rights (identity graph, export, erasure, correction), request register, audit log,
// admin tokens and retention. The ingest half is in sqlite_store.cc.
#include <sodium.h>

#include <algorithm>
#include <deque>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

#include "collector/engines/sqlite/sqlite_store.h"
#include "collector/store/audit.h"
#include "lib/base/digest.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"

namespace ferry::collector {

using base::Result;
using base::Status;
using nlohmann::json;

namespace {

constexpr size_t kMaxSubjectIds = 100000;  // a bound on the identity graph walk
constexpr int64_t kPage = 512;             // rows read per lock hold while exporting

bool ValidRole(const std::string& r) { return r == "compliance" || r == "operator" || r == "analyst"; }

std::string JoinRoles(const std::vector<std::string>& roles) {
  std::string out;
  for (const auto& r : roles) {
    if (!out.empty()) out += ',';
    out += r;
  }
  return out;
}

std::vector<std::string> SplitRoles(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

// Runs `sql` (binding ?1 = project_id, ?2 = text) and tells whether it gave a row.
Result<bool> Exists(base::Db& db, std::string_view sql, int64_t project_id, const std::string& text) {
  auto st = db.Prepare(sql);
  if (!st.ok()) return st.status();
  st->Bind(1, project_id).Bind(2, text);
  bool found = st->Step();
  FERRY_RETURN_IF_ERROR(st->status());
  return found;
}

// First text column of the first row, "" when none.
Result<std::string> FirstText(base::Db& db, std::string_view sql, int64_t project_id, const std::string& text) {
  auto st = db.Prepare(sql);
  if (!st.ok()) return st.status();
  st->Bind(1, project_id).Bind(2, text);
  std::string out;
  if (st->Step()) out = st->Text(0);
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

// Merges the rowids of one table's rows that match any of several (column, id) pairs, in rowid order without
// repeats, reading each pair's rowids a page at a time through its index. Each call of Next() runs with the
// store's mutex held; nothing is kept between calls but rowids.
class RowidMerger {
 public:
  RowidMerger(std::string table, int64_t project_id) : table_(std::move(table)), project_id_(project_id) {}
  void Add(const char* column, const std::string& id) { sources_.push_back({column, id, {}, 0, false}); }

  // Up to `n` next rowids (fewer only at the end).
  Status Next(base::Db& db, size_t n, std::vector<int64_t>* out) {
    out->clear();
    while (out->size() < n) {
      Source* best = nullptr;
      for (Source& s : sources_) {
        FERRY_RETURN_IF_ERROR(Fill(db, s));
        if (!s.buf.empty() && (best == nullptr || s.buf.front() < best->buf.front())) best = &s;
      }
      if (best == nullptr) break;
      int64_t rowid = best->buf.front();
      best->buf.pop_front();
      if (rowid <= last_) continue;  // the same row through another id
      last_ = rowid;
      out->push_back(rowid);
    }
    return Status::Ok();
  }

 private:
  struct Source {
    const char* column;
    std::string id;
    std::deque<int64_t> buf;
    int64_t after;
    bool done;
  };
  Status Fill(base::Db& db, Source& s) {
    if (!s.buf.empty() || s.done) return Status::Ok();
    // The index is named: with `id > ?` and ORDER BY id the planner would otherwise walk the whole table by rowid.
    std::string index = (table_ == "events" ? std::string("events_by_") : std::string("consent_by_")) +
                        (std::string(s.column) == "user_id" ? "user" : "anon");
    auto st = db.Prepare("SELECT id FROM " + table_ + " INDEXED BY " + index + " WHERE project_id = ?1 AND " +
                         s.column + " = ?2 AND " + s.column + " IS NOT NULL AND id > ?3 ORDER BY id LIMIT ?4;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id_).Bind(2, s.id).Bind(3, std::max(s.after, last_)).Bind(4, kPage);
    int64_t got = 0;
    while (st->Step()) {
      s.after = st->Int(0);
      s.buf.push_back(s.after);
      ++got;
    }
    FERRY_RETURN_IF_ERROR(st->status());
    if (got < kPage) s.done = true;
    return Status::Ok();
  }

  std::string table_;
  int64_t project_id_;
  std::vector<Source> sources_;
  int64_t last_ = 0;
};

RightsRequest RequestFromRow(const base::Stmt& st) {
  RightsRequest r;
  r.id = st.Text(0);
  r.kind = st.Text(1);
  r.project = st.Text(2);
  r.subject = st.Text(3);
  r.subject_hash = st.Text(4);
  r.state = st.Text(5);
  r.source = st.Text(6);
  r.received_ms = st.Int(7);
  r.due_ms = st.Int(8);
  r.acted_by = st.Text(9);
  r.acted_ms = st.Int(10);
  r.result = st.Text(11);
  return r;
}
constexpr const char* kRequestCols =
    "id, kind, project, subject, subject_hash, state, source, received_ms, due_ms, acted_by, acted_ms, result";

AuditEntry AuditFromRow(const base::Stmt& st) {
  AuditEntry e;
  e.seq = st.Int(0);
  e.time_ms = st.Int(1);
  e.actor = st.Text(2);
  e.role = st.Text(3);
  e.action = st.Text(4);
  e.subject_hash = st.Text(5);
  e.result = st.Text(6);
  e.detail = st.Text(7);
  e.prev_hash = st.Text(8);
  e.hash = st.Text(9);
  return e;
}
constexpr const char* kAuditCols = "seq, time_ms, actor, role, action, subject_hash, result, detail, prev_hash, hash";

}  // namespace

// ---- Subjects ----

Result<std::vector<std::pair<int64_t, std::string>>> SqliteStore::ProjectsLocked(const std::string& name) {
  auto st = db_.Prepare("SELECT id, name FROM projects WHERE ?1 = '' OR name = ?1 ORDER BY id;");
  if (!st.ok()) return st.status();
  st->Bind(1, name);
  std::vector<std::pair<int64_t, std::string>> out;
  while (st->Step()) out.emplace_back(st->Int(0), st->Text(1));
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

Result<std::optional<SqliteStore::Resolved>> SqliteStore::ResolveLocked(int64_t project_id, const std::string& project,
                                                                        const std::string& id) {
  using Opt = std::optional<Resolved>;
  if (id.empty()) return Opt();
  // Climb links from the id to the userId it belongs to (an anonymousId's or an old alias id's userId), then up
  // alias chains (an old userId that became a previousId of a newer one).
  std::string user;
  std::set<std::string> climbed;
  std::string at = id;
  for (int hops = 0; hops < 64; ++hops) {
    climbed.insert(at);
    auto up = FirstText(db_,
                        "SELECT user_id FROM identity_links WHERE project_id = ?1 AND from_id = ?2 "
                        "ORDER BY first_seen_ms, id LIMIT 1;",
                        project_id, at);
    if (!up.ok()) return up.status();
    if (up->empty() || climbed.count(*up)) break;
    user = *up;
    at = *up;
  }
  if (user.empty()) {
    auto is_user = Exists(db_, "SELECT 1 FROM events WHERE project_id = ?1 AND user_id = ?2 LIMIT 1;", project_id, id);
    if (!is_user.ok()) return is_user.status();
    if (!*is_user) {
      is_user =
          Exists(db_, "SELECT 1 FROM identity_links WHERE project_id = ?1 AND user_id = ?2 LIMIT 1;", project_id, id);
      if (!is_user.ok()) return is_user.status();
    }
    if (!*is_user) {
      is_user =
          Exists(db_, "SELECT 1 FROM consent_ledger WHERE project_id = ?1 AND user_id = ?2 LIMIT 1;", project_id, id);
      if (!is_user.ok()) return is_user.status();
    }
    if (*is_user) {
      user = id;
    } else {
      // An anonymousId seen on events together with a userId (but never linked by identify/alias).
      auto seen = FirstText(db_,
                            "SELECT user_id FROM events WHERE project_id = ?1 AND anonymous_id = ?2 "
                            "AND user_id IS NOT NULL LIMIT 1;",
                            project_id, id);
      if (!seen.ok()) return seen.status();
      user = *seen;
    }
  }

  Resolved r;
  r.project_id = project_id;
  r.project = project;
  std::unordered_set<std::string> seen;
  auto add = [&](SubjectIdentity ident) {
    if (seen.size() >= kMaxSubjectIds || !seen.insert(ident.id).second) return false;
    r.ids.push_back(ident.id);
    r.idents.push_back(std::move(ident));
    return true;
  };

  if (user.empty()) {
    // Anonymous-only: known if anything is held under the id.
    static const char* const kProbes[] = {
        "SELECT 1 FROM events WHERE project_id = ?1 AND anonymous_id = ?2 LIMIT 1;",
        "SELECT 1 FROM consent_ledger WHERE project_id = ?1 AND anonymous_id = ?2 LIMIT 1;",
        "SELECT 1 FROM traits WHERE project_id = ?1 AND subject_id = ?2 LIMIT 1;",
    };
    bool known = false;
    for (const char* sql : kProbes) {
      auto e = Exists(db_, sql, project_id, id);
      if (!e.ok()) return e.status();
      if (*e) {
        known = true;
        break;
      }
    }
    if (!known) return Opt();
    add({"anonymousId", id, "", "event", 0});
    return Opt(std::move(r));
  }

  r.user_id = user;
  add({"userId", user, "", "event", 0});
  std::deque<std::string> users = {user};
  auto links = db_.Prepare(
      "SELECT from_kind, from_id, source, first_seen_ms FROM identity_links WHERE project_id = ?1 AND user_id = ?2 "
      "ORDER BY first_seen_ms, id;");
  if (!links.ok()) return links.status();
  auto ev_anon = db_.Prepare(
      "SELECT DISTINCT anonymous_id FROM events INDEXED BY events_by_user WHERE project_id = ?1 AND user_id = ?2 "
      "AND anonymous_id IS NOT NULL;");
  if (!ev_anon.ok()) return ev_anon.status();
  auto cons_anon = db_.Prepare(
      "SELECT DISTINCT anonymous_id FROM consent_ledger INDEXED BY consent_by_user WHERE project_id = ?1 "
      "AND user_id = ?2 "
      "AND anonymous_id IS NOT NULL;");
  if (!cons_anon.ok()) return cons_anon.status();
  while (!users.empty() && seen.size() < kMaxSubjectIds) {
    std::string u = users.front();
    users.pop_front();
    links->Bind(1, project_id).Bind(2, u);
    while (links->Step()) {
      std::string kind = links->Text(0);
      std::string from = links->Text(1);
      // An old id named by alias may itself be a userId with devices of its own: walk it too.
      if (add({kind, from, u, links->Text(2), links->Int(3)}) && kind == "previousId") users.push_back(from);
    }
    FERRY_RETURN_IF_ERROR(links->status());
    links->Reset();
    for (base::Stmt* st : {&*ev_anon, &*cons_anon}) {
      st->Bind(1, project_id).Bind(2, u);
      while (st->Step()) add({"anonymousId", st->Text(0), u, "event", 0});
      FERRY_RETURN_IF_ERROR(st->status());
      st->Reset();
    }
  }
  return Opt(std::move(r));
}

Result<std::vector<SqliteStore::Resolved>> SqliteStore::ResolveAllLocked(const SubjectQuery& q) {
  std::vector<Resolved> out;
  auto projects = ProjectsLocked(q.project);
  if (!projects.ok()) return projects.status();
  std::vector<bool> found(projects->size(), false);
  std::vector<std::string> users;
  for (size_t i = 0; i < projects->size(); ++i) {
    auto r = ResolveLocked((*projects)[i].first, (*projects)[i].second, q.id);
    if (!r.ok()) return r.status();
    if (!r->has_value()) continue;
    found[i] = true;
    if (!(*r)->user_id.empty() && (*r)->user_id != q.id) users.push_back((*r)->user_id);
    out.push_back(std::move(**r));
  }
  // Across projects, a userId is the same person: an anonymousId known in one project names its user in the others.
  for (size_t i = 0; i < projects->size(); ++i) {
    for (size_t u = 0; u < users.size() && !found[i]; ++u) {
      auto r = ResolveLocked((*projects)[i].first, (*projects)[i].second, users[u]);
      if (!r.ok()) return r.status();
      if (!r->has_value()) continue;
      found[i] = true;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

Result<SubjectSummary> SqliteStore::SummaryLocked(const Resolved& r) {
  SubjectSummary s;
  s.project = r.project;
  s.project_id = r.project_id;
  s.user_id = r.user_id;
  s.identities = r.idents;
  // The subject's ids in a temporary (in-memory) table, for set queries.
  FERRY_RETURN_IF_ERROR(
      db_.Exec("CREATE TEMP TABLE IF NOT EXISTS subject_ids(id TEXT PRIMARY KEY); "
               "DELETE FROM temp.subject_ids;"));
  {
    auto ins = db_.Prepare("INSERT OR IGNORE INTO temp.subject_ids(id) VALUES(?1);");
    if (!ins.ok()) return ins.status();
    for (const auto& id : r.ids) {
      ins->Bind(1, id);
      FERRY_RETURN_IF_ERROR(ins->Run());
    }
  }
  auto count = [&](std::string_view sql) -> Status {
    auto st = db_.Prepare(sql);
    if (!st.ok()) return st.status();
    for (const auto& id : r.ids) {
      st->Bind(1, r.project_id).Bind(2, id);
      while (st->Step()) {
        int64_t n = st->Int(1);
        if (n == 0) continue;
        s.events_by_type[st->Text(0)] += n;
        s.event_count += n;
        int64_t lo = st->Int(2), hi = st->Int(3);
        if (s.first_seen_ms == 0 || lo < s.first_seen_ms) s.first_seen_ms = lo;
        if (hi > s.last_seen_ms) s.last_seen_ms = hi;
      }
      FERRY_RETURN_IF_ERROR(st->status());
      st->Reset();
    }
    return Status::Ok();
  };
  FERRY_RETURN_IF_ERROR(
      count("SELECT type, count(*), min(timestamp_ms), max(timestamp_ms) FROM events "
            "WHERE project_id = ?1 AND user_id = ?2 GROUP BY type;"));
  FERRY_RETURN_IF_ERROR(
      count("SELECT type, count(*), min(timestamp_ms), max(timestamp_ms) FROM events "
            "WHERE project_id = ?1 AND anonymous_id = ?2 "
            "AND (user_id IS NULL OR user_id NOT IN (SELECT id FROM temp.subject_ids)) GROUP BY type;"));
  {
    auto st = db_.Prepare(
        "SELECT purpose, state, timestamp_ms FROM consent_ledger WHERE project_id = ?1 AND "
        "(user_id IN (SELECT id FROM temp.subject_ids) OR anonymous_id IN (SELECT id FROM temp.subject_ids)) "
        "ORDER BY timestamp_ms, id;");
    if (!st.ok()) return st.status();
    st->Bind(1, r.project_id);
    std::map<std::string, ConsentState> latest;
    while (st->Step()) latest[st->Text(0)] = {st->Text(0), st->Text(1), st->Int(2)};
    FERRY_RETURN_IF_ERROR(st->status());
    for (auto& [p, c] : latest) s.consent.push_back(std::move(c));
  }
  {
    // Traits under every id, the userId's last so they win.
    auto st = db_.Prepare(
        "SELECT k, v FROM traits WHERE project_id = ?1 AND subject_id IN (SELECT id FROM temp.subject_ids) "
        "ORDER BY subject_id = ?2, updated_ms;");
    if (!st.ok()) return st.status();
    st->Bind(1, r.project_id).Bind(2, r.user_id);
    json traits = json::object();
    while (st->Step()) {
      json v = json::parse(st->TextView(1), nullptr, false);
      traits[st->Text(0)] = v.is_discarded() ? json(st->Text(1)) : v;
    }
    FERRY_RETURN_IF_ERROR(st->status());
    s.traits = traits.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return s;
}

Result<std::vector<SubjectSummary>> SqliteStore::FindSubject(const SubjectQuery& q) {
  std::lock_guard<std::mutex> lock(mu_);
  auto all = ResolveAllLocked(q);
  if (!all.ok()) return all.status();
  std::vector<SubjectSummary> out;
  for (const Resolved& r : *all) {
    auto s = SummaryLocked(r);
    if (!s.ok()) return s.status();
    out.push_back(std::move(s).value());
  }
  return out;
}

Result<bool> SqliteStore::ExportSubject(const SubjectQuery& q, ExportVisitor& visitor) {
  std::vector<Resolved> subjects;
  std::vector<SubjectSummary> summaries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto all = ResolveAllLocked(q);
    if (!all.ok()) return all.status();
    for (const Resolved& r : *all) {
      auto s = SummaryLocked(r);
      if (!s.ok()) return s.status();
      summaries.push_back(std::move(s).value());
    }
    subjects = std::move(all).value();
  }
  if (subjects.empty()) return false;
  const Status stopped = Status::Closed("the export was stopped by its reader");
  for (size_t i = 0; i < subjects.size(); ++i) {
    const Resolved& r = subjects[i];
    if (!visitor.BeginProject(summaries[i])) return stopped;

    RowidMerger consent("consent_ledger", r.project_id);
    RowidMerger events("events", r.project_id);
    for (const auto& id : r.ids) {
      consent.Add("user_id", id);
      consent.Add("anonymous_id", id);
      events.Add("user_id", id);
      events.Add("anonymous_id", id);
    }
    std::vector<int64_t> rowids;
    for (;;) {
      std::vector<ConsentRecord> page;
      {
        std::lock_guard<std::mutex> lock(mu_);
        FERRY_RETURN_IF_ERROR(consent.Next(db_, kPage, &rowids));
        auto st = db_.Prepare(
            "SELECT message_id, user_id, anonymous_id, purpose, state, previous, timestamp_ms, received_ms, device "
            "FROM consent_ledger WHERE id = ?1;");
        if (!st.ok()) return st.status();
        for (int64_t id : rowids) {
          st->Bind(1, id);
          if (st->Step()) {
            page.push_back({st->Text(0), st->Text(1), st->Text(2), st->Text(3), st->Text(4), st->Text(5), st->Int(6),
                            st->Int(7), st->Text(8)});
          }
          FERRY_RETURN_IF_ERROR(st->status());
          st->Reset();
        }
      }
      for (const ConsentRecord& c : page) {
        if (!visitor.Consent(c)) return stopped;
      }
      if (rowids.size() < static_cast<size_t>(kPage)) break;
    }
    for (;;) {
      std::vector<EventRow> page;
      {
        std::lock_guard<std::mutex> lock(mu_);
        FERRY_RETURN_IF_ERROR(events.Next(db_, kPage, &rowids));
        auto st = db_.Prepare(
            "SELECT message_id, type, user_id, anonymous_id, name, purpose, timestamp_ms, received_ms, body "
            "FROM events WHERE id = ?1;");
        if (!st.ok()) return st.status();
        for (int64_t id : rowids) {
          st->Bind(1, id);
          if (st->Step()) {
            EventRow e;
            e.project = r.project;
            e.message_id = st->Text(0);
            e.type = st->Text(1);
            e.user_id = st->Text(2);
            e.anonymous_id = st->Text(3);
            e.name = st->Text(4);
            e.purpose = st->Text(5);
            e.timestamp_ms = st->Int(6);
            e.received_ms = st->Int(7);
            e.body = st->Text(8);
            page.push_back(std::move(e));
          }
          FERRY_RETURN_IF_ERROR(st->status());
          st->Reset();
        }
      }
      for (const EventRow& e : page) {
        if (!visitor.Event(e)) return stopped;
      }
      if (rowids.size() < static_cast<size_t>(kPage)) break;
    }
    if (!visitor.EndProject()) return stopped;
  }
  return true;
}

Status SqliteStore::EraseIdsLocked(int64_t project_id, const std::vector<std::string>& ids, bool anonymous_only,
                                   EraseReceipt* receipt) {
  struct Step {
    const char* table;
    const char* sql;
    bool all_ids;  // false: only when the erasure follows links (not a device's anonymousIds)
  };
  static const Step kSteps[] = {
      {"events", "DELETE FROM events WHERE project_id = ?1 AND user_id = ?2;", false},
      {"events", "DELETE FROM events WHERE project_id = ?1 AND anonymous_id = ?2;", true},
      {"consent_ledger", "DELETE FROM consent_ledger WHERE project_id = ?1 AND user_id = ?2;", false},
      {"consent_ledger", "DELETE FROM consent_ledger WHERE project_id = ?1 AND anonymous_id = ?2;", true},
      {"identity_links", "DELETE FROM identity_links WHERE project_id = ?1 AND from_id = ?2;", true},
      {"identity_links", "DELETE FROM identity_links WHERE project_id = ?1 AND user_id = ?2;", false},
      {"traits", "DELETE FROM traits WHERE project_id = ?1 AND subject_id = ?2;", true},
  };
  for (const char* t : {"events", "consent_ledger", "identity_links", "traits", "requests_redacted"}) {
    receipt->erased.emplace(t, 0);
  }
  std::vector<base::Stmt> stmts;
  for (const Step& s : kSteps) {
    auto st = db_.Prepare(s.sql);
    if (!st.ok()) return st.status();
    stmts.push_back(std::move(st).value());
  }
  auto redact =
      db_.Prepare("UPDATE requests SET subject = 'hash:' || subject_hash WHERE subject_hash = ?1 AND subject = ?2;");
  if (!redact.ok()) return redact.status();
  auto sup = db_.Prepare("INSERT OR IGNORE INTO suppressions(project_id, id_hash, created_ms) VALUES(?1, ?2, ?3);");
  if (!sup.ok()) return sup.status();
  int64_t now = base::NowMs();
  for (const std::string& id : ids) {
    for (size_t i = 0; i < stmts.size(); ++i) {
      if (anonymous_only && !kSteps[i].all_ids) continue;
      stmts[i].Bind(1, project_id).Bind(2, id);
      FERRY_RETURN_IF_ERROR(stmts[i].Run());
      receipt->erased[kSteps[i].table] += db_.Changes();
    }
    std::string h = IdHash(id);
    redact->Bind(1, h).Bind(2, id);
    FERRY_RETURN_IF_ERROR(redact->Run());
    receipt->erased["requests_redacted"] += db_.Changes();
    sup->Bind(1, project_id).Bind(2, h).Bind(3, now);
    FERRY_RETURN_IF_ERROR(sup->Run());
    receipt->ids_suppressed += db_.Changes();
  }
  return Status::Ok();
}

Result<EraseReceipt> SqliteStore::EraseSubject(const SubjectQuery& q, const std::string& request_id) {
  EraseReceipt receipt;
  receipt.request_id = request_id;
  std::lock_guard<std::mutex> lock(mu_);
  {
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    auto all = ResolveAllLocked(q);
    if (!all.ok()) return all.status();
    if (all->empty()) {
      // Unknown: nothing to erase, but the id is suppressed so that what devices still hold never lands.
      auto projects = ProjectsLocked(q.project);
      if (!projects.ok()) return projects.status();
      for (const auto& [pid, name] : *projects) {
        FERRY_RETURN_IF_ERROR(EraseIdsLocked(pid, {q.id}, false, &receipt));
      }
    }
    for (const Resolved& r : *all) {
      receipt.projects.push_back(r.project);
      FERRY_RETURN_IF_ERROR(EraseIdsLocked(r.project_id, r.ids, false, &receipt));
    }
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  // Old page images of the erased rows stay in the WAL until a checkpoint: write them back now (secure_delete has
  // zeroed the freed space) and empty the WAL. Best effort: a reader in another process may hold it back.
  (void)db_.Exec("PRAGMA wal_checkpoint(TRUNCATE);");
  receipt.completed_ms = base::NowMs();
  return receipt;
}

Result<EraseReceipt> SqliteStore::EraseAnonymousIds(int64_t project_id, const std::vector<std::string>& ids,
                                                    const std::string& request_id) {
  EraseReceipt receipt;
  receipt.request_id = request_id;
  std::lock_guard<std::mutex> lock(mu_);
  {
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    std::vector<std::string> anon;
    for (const std::string& id : ids) {
      if (id.empty()) continue;
      // A device may not suppress someone's userId by naming it as one of "its" anonymousIds.
      auto is_user =
          Exists(db_, "SELECT 1 FROM identity_links WHERE project_id = ?1 AND user_id = ?2 LIMIT 1;", project_id, id);
      if (!is_user.ok()) return is_user.status();
      if (!*is_user) {
        is_user = Exists(db_, "SELECT 1 FROM events WHERE project_id = ?1 AND user_id = ?2 LIMIT 1;", project_id, id);
        if (!is_user.ok()) return is_user.status();
      }
      if (*is_user) continue;
      anon.push_back(id);
    }
    FERRY_RETURN_IF_ERROR(EraseIdsLocked(project_id, anon, true, &receipt));
    auto name = db_.Prepare("SELECT name FROM projects WHERE id = ?1;");
    if (!name.ok()) return name.status();
    name->Bind(1, project_id);
    if (name->Step()) receipt.projects.push_back(name->Text(0));
    FERRY_RETURN_IF_ERROR(name->status());
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  (void)db_.Exec("PRAGMA wal_checkpoint(TRUNCATE);");
  receipt.completed_ms = base::NowMs();
  return receipt;
}

Result<std::vector<SubjectSummary>> SqliteStore::PatchTraits(const SubjectQuery& q, const std::string& patch_json) {
  json patch = json::parse(patch_json, nullptr, false);
  if (patch.is_discarded() || !patch.is_object()) return Status::InvalidArgument("traits must be a JSON object");
  for (const auto& [k, v] : patch.items()) {
    if (k.empty() || k.size() > 200) return Status::InvalidArgument("a trait name is 1-200 bytes");
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SubjectSummary> out;
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto all = ResolveAllLocked(q);
  if (!all.ok()) return all.status();
  auto del = db_.Prepare("DELETE FROM traits WHERE project_id = ?1 AND subject_id = ?2 AND k = ?3;");
  if (!del.ok()) return del.status();
  auto put = db_.Prepare(
      "INSERT OR REPLACE INTO traits(project_id, subject_id, k, v, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5);");
  if (!put.ok()) return put.status();
  int64_t now = base::NowMs();
  for (const Resolved& r : *all) {
    const std::string& holder = r.user_id.empty() ? r.ids.front() : r.user_id;
    for (const auto& [k, v] : patch.items()) {
      // A corrected value replaces what any linked id held for that trait.
      for (const auto& id : r.ids) {
        del->Bind(1, r.project_id).Bind(2, id).Bind(3, k);
        FERRY_RETURN_IF_ERROR(del->Run());
      }
      if (v.is_null()) continue;
      put->Bind(1, r.project_id).Bind(2, holder).Bind(3, k);
      put->Bind(4, v.dump(-1, ' ', false, json::error_handler_t::replace)).Bind(5, now);
      FERRY_RETURN_IF_ERROR(put->Run());
    }
    auto s = SummaryLocked(r);
    if (!s.ok()) return s.status();
    out.push_back(std::move(s).value());
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  return out;
}

Status SqliteStore::ScanAllText(
    const std::function<bool(std::string_view table, std::string_view column, std::string_view text)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> tables;
  {
    auto st = db_.Prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%';");
    if (!st.ok()) return st.status();
    while (st->Step()) tables.push_back(st->Text(0));
    FERRY_RETURN_IF_ERROR(st->status());
  }
  for (const std::string& t : tables) {
    std::vector<std::string> cols;
    {
      auto st = db_.Prepare("PRAGMA table_info(\"" + t + "\");");
      if (!st.ok()) return st.status();
      while (st->Step()) cols.push_back(st->Text(1));
      FERRY_RETURN_IF_ERROR(st->status());
    }
    for (const std::string& c : cols) {
      auto st = db_.Prepare("SELECT \"" + c + "\" FROM \"" + t + "\" WHERE typeof(\"" + c + "\") = 'text';");
      if (!st.ok()) return st.status();
      while (st->Step()) {
        if (!fn(t, c, st->TextView(0))) return Status::Ok();
      }
      FERRY_RETURN_IF_ERROR(st->status());
    }
  }
  return Status::Ok();
}

// ---- Request register ----

Result<RightsRequest> SqliteStore::CreateRequest(RightsRequest r) {
  if (r.id.empty()) r.id = "req_" + base::RandomHex(12);
  if (r.subject_hash.empty() && !r.subject.empty()) r.subject_hash = IdHash(r.subject);
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare(std::string("INSERT INTO requests(") + kRequestCols +
                        ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12);");
  if (!st.ok()) return st.status();
  st->Bind(1, r.id).Bind(2, r.kind).Bind(3, r.project).Bind(4, r.subject).Bind(5, r.subject_hash).Bind(6, r.state);
  st->Bind(7, r.source).Bind(8, r.received_ms).Bind(9, r.due_ms).Bind(10, r.acted_by).Bind(11, r.acted_ms);
  st->Bind(12, r.result);
  FERRY_RETURN_IF_ERROR(st->Run());
  return r;
}

Result<std::optional<RightsRequest>> SqliteStore::GetRequest(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare(std::string("SELECT ") + kRequestCols + " FROM requests WHERE id = ?1;");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  if (!st->Step()) {
    FERRY_RETURN_IF_ERROR(st->status());
    return std::optional<RightsRequest>();
  }
  return std::optional<RightsRequest>(RequestFromRow(*st));
}

Result<RequestUpdate> SqliteStore::UpdateRequest(const std::string& id, const std::string& expected_state,
                                                 const std::string& new_state, const std::string& acted_by,
                                                 int64_t acted_ms, const std::string& result) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare(
      "UPDATE requests SET state = ?3, acted_by = ?4, acted_ms = ?5, result = ?6 WHERE id = ?1 AND state = ?2;");
  if (!st.ok()) return st.status();
  st->Bind(1, id).Bind(2, expected_state).Bind(3, new_state).Bind(4, acted_by).Bind(5, acted_ms).Bind(6, result);
  FERRY_RETURN_IF_ERROR(st->Run());
  if (db_.Changes() == 1) return RequestUpdate::kUpdated;
  auto ex = db_.Prepare("SELECT 1 FROM requests WHERE id = ?1;");
  if (!ex.ok()) return ex.status();
  ex->Bind(1, id);
  bool found = ex->Step();
  FERRY_RETURN_IF_ERROR(ex->status());
  return found ? RequestUpdate::kWrongState : RequestUpdate::kNotFound;
}

Result<std::vector<RightsRequest>> SqliteStore::ListRequests(const RequestFilter& f) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare(std::string("SELECT ") + kRequestCols +
                        " FROM requests WHERE (?1 = '' OR state = ?1) AND (?2 = 0 OR (state NOT IN ('completed', "
                        "'rejected') AND due_ms < ?2)) ORDER BY received_ms, id LIMIT ?3;");
  if (!st.ok()) return st.status();
  st->Bind(1, f.state).Bind(2, f.overdue_at_ms).Bind(3, static_cast<int64_t>(f.limit));
  std::vector<RightsRequest> out;
  while (st->Step()) out.push_back(RequestFromRow(*st));
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

// ---- Audit log ----

Result<AuditEntry> SqliteStore::AppendAudit(AuditEntry e) {
  if (e.time_ms <= 0) e.time_ms = base::NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  {
    auto last = db_.Prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1;");
    if (!last.ok()) return last.status();
    if (last->Step()) {
      e.seq = last->Int(0) + 1;
      e.prev_hash = last->Text(1);
    } else {
      FERRY_RETURN_IF_ERROR(last->status());
      e.seq = 1;
      e.prev_hash = kAuditGenesis;
    }
  }
  e.hash = AuditChainHash(e.prev_hash, AuditCanonical(e));
  auto st = db_.Prepare(std::string("INSERT INTO audit_log(") + kAuditCols +
                        ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);");
  if (!st.ok()) return st.status();
  st->Bind(1, e.seq).Bind(2, e.time_ms).Bind(3, e.actor).Bind(4, e.role).Bind(5, e.action).Bind(6, e.subject_hash);
  st->Bind(7, e.result).Bind(8, e.detail).Bind(9, e.prev_hash).Bind(10, e.hash);
  FERRY_RETURN_IF_ERROR(st->Run());
  FERRY_RETURN_IF_ERROR(tx.Commit());
  return e;
}

Result<std::vector<AuditEntry>> SqliteStore::ListAudit(int64_t after_seq, size_t limit,
                                                       const std::string& subject_hash) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare(std::string("SELECT ") + kAuditCols +
                        " FROM audit_log WHERE seq > ?1 AND (?2 = '' OR subject_hash = ?2) ORDER BY seq LIMIT ?3;");
  if (!st.ok()) return st.status();
  st->Bind(1, after_seq).Bind(2, subject_hash).Bind(3, static_cast<int64_t>(limit));
  std::vector<AuditEntry> out;
  while (st->Step()) out.push_back(AuditFromRow(*st));
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

Result<AuditVerifyResult> SqliteStore::VerifyAudit() {
  AuditChainChecker checker;
  int64_t after = 0;
  for (;;) {
    auto page = ListAudit(after, 2000, "");
    if (!page.ok()) return page.status();
    for (const AuditEntry& e : *page) {
      if (!checker.Add(e)) return checker.Result();
      after = e.seq;
    }
    if (page->size() < 2000) break;
  }
  return checker.Result();
}

// ---- Admin tokens ----

Result<std::string> SqliteStore::CreateAdminToken(const std::string& name, const std::vector<std::string>& roles) {
  if (roles.empty()) return Status::InvalidArgument("an admin token needs at least one role");
  std::vector<std::string> sorted;
  for (const auto& r : roles) {
    if (!ValidRole(r)) return Status::InvalidArgument("unknown role '" + r + "' (compliance, operator, analyst)");
    if (std::find(sorted.begin(), sorted.end(), r) == sorted.end()) sorted.push_back(r);
  }
  if (name.size() > 200) return Status::InvalidArgument("a token name is at most 200 bytes");
  std::string token = "fa_" + base::RandomHex(32);
  std::string hash = base::Blake2b256(token);
  std::lock_guard<std::mutex> lock(mu_);
  auto st =
      db_.Prepare("INSERT INTO admin_tokens(name, token_hash, prefix, roles, created_ms) VALUES(?1, ?2, ?3, ?4, ?5);");
  if (!st.ok()) return st.status();
  st->Bind(1, name.empty() ? std::string("admin") : name).BindBlob(2, hash.data(), hash.size());
  st->Bind(3, token.substr(0, 9)).Bind(4, JoinRoles(sorted)).Bind(5, base::NowMs());
  FERRY_RETURN_IF_ERROR(st->Run());
  return token;
}

Result<std::optional<AdminTokenInfo>> SqliteStore::LookupAdminToken(const std::string& token) {
  using Opt = std::optional<AdminTokenInfo>;
  if (token.rfind("fa_", 0) != 0) return Opt();
  std::string hash = base::Blake2b256(token);
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare(
      "SELECT id, name, prefix, roles, created_ms FROM admin_tokens WHERE token_hash = ?1 AND revoked_ms IS NULL;");
  if (!st.ok()) return st.status();
  st->BindBlob(1, hash.data(), hash.size());
  if (!st->Step()) {
    FERRY_RETURN_IF_ERROR(st->status());
    return Opt();
  }
  return Opt(AdminTokenInfo{st->Int(0), st->Text(1), st->Text(2), SplitRoles(st->Text(3)), st->Int(4), 0});
}

Result<std::vector<AdminTokenInfo>> SqliteStore::ListAdminTokens() {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("SELECT id, name, prefix, roles, created_ms, ifnull(revoked_ms, 0) FROM admin_tokens;");
  if (!st.ok()) return st.status();
  std::vector<AdminTokenInfo> out;
  while (st->Step()) {
    out.push_back({st->Int(0), st->Text(1), st->Text(2), SplitRoles(st->Text(3)), st->Int(4), st->Int(5)});
  }
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

Result<bool> SqliteStore::RevokeAdminToken(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("UPDATE admin_tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL;");
  if (!st.ok()) return st.status();
  st->Bind(1, id).Bind(2, base::NowMs());
  FERRY_RETURN_IF_ERROR(st->Run());
  return db_.Changes() == 1;
}

// ---- Retention ----

Result<bool> SqliteStore::SetRetention(const std::string& project, int64_t max_age_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto p = ProjectsLocked(project);
  if (!p.ok()) return p.status();
  if (project.empty() || p->empty()) return false;
  auto st = max_age_ms > 0
                ? db_.Prepare("INSERT OR REPLACE INTO project_settings(project_id, max_event_age_ms) VALUES(?1, ?2);")
                : db_.Prepare("DELETE FROM project_settings WHERE project_id = ?1;");
  if (!st.ok()) return st.status();
  st->Bind(1, p->front().first);
  if (max_age_ms > 0) st->Bind(2, max_age_ms);
  FERRY_RETURN_IF_ERROR(st->Run());
  return true;
}

Result<std::map<std::string, int64_t>> SqliteStore::Retention() {
  std::lock_guard<std::mutex> lock(mu_);
  auto st =
      db_.Prepare("SELECT p.name, s.max_event_age_ms FROM project_settings s JOIN projects p ON p.id = s.project_id;");
  if (!st.ok()) return st.status();
  std::map<std::string, int64_t> out;
  while (st->Step()) out[st->Text(0)] = st->Int(1);
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

Result<int64_t> SqliteStore::PurgeExpired(int64_t now_ms, int64_t default_max_age_ms, int64_t max_rows) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<int64_t, int64_t>> cutoffs;  // project id -> oldest timestamp kept
  {
    auto st = db_.Prepare(
        "SELECT p.id, ifnull(s.max_event_age_ms, ?1) FROM projects p "
        "LEFT JOIN project_settings s ON s.project_id = p.id;");
    if (!st.ok()) return st.status();
    st->Bind(1, default_max_age_ms);
    while (st->Step()) {
      if (st->Int(1) > 0) cutoffs.emplace_back(st->Int(0), now_ms - st->Int(1));
    }
    FERRY_RETURN_IF_ERROR(st->status());
  }
  int64_t deleted = 0;
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto ev = db_.Prepare(
      "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE project_id = ?1 AND timestamp_ms < ?2 LIMIT ?3);");
  if (!ev.ok()) return ev.status();
  auto cons = db_.Prepare(
      "DELETE FROM consent_ledger WHERE id IN (SELECT id FROM consent_ledger WHERE project_id = ?1 AND "
      "timestamp_ms < ?2 LIMIT ?3);");
  if (!cons.ok()) return cons.status();
  for (const auto& [pid, cutoff] : cutoffs) {
    if (deleted >= max_rows) break;
    ev->Bind(1, pid).Bind(2, cutoff).Bind(3, max_rows - deleted);
    FERRY_RETURN_IF_ERROR(ev->Run());
    deleted += db_.Changes();
    cons->Bind(1, pid).Bind(2, cutoff).Bind(3, max_rows);
    FERRY_RETURN_IF_ERROR(cons->Run());
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  return deleted;
}

}  // namespace ferry::collector
