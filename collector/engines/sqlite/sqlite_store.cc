#include "collector/engines/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lib/base/digest.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "platform/platform.h"

namespace ferry::collector {

using base::Result;
using base::SecretBytes;
using base::Status;

namespace {

Status MakeDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  return Status::Storage("cannot create " + dir + ": " + std::strerror(errno));
}

// Migrations: index i takes the schema from version i to i+1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE projects(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL);
CREATE TABLE write_keys(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id), key_hash BLOB NOT NULL UNIQUE,
  prefix TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER);
CREATE TABLE events(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, message_id TEXT NOT NULL, type TEXT NOT NULL,
  user_id TEXT, anonymous_id TEXT, name TEXT, purpose TEXT, timestamp_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, body TEXT NOT NULL, UNIQUE(project_id, message_id));
CREATE INDEX events_by_user ON events(project_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_anon ON events(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE TABLE consent_ledger(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, message_id TEXT NOT NULL, user_id TEXT, anonymous_id TEXT,
  purpose TEXT NOT NULL, state TEXT NOT NULL, previous TEXT, timestamp_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL);
CREATE INDEX consent_by_user ON consent_ledger(project_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX consent_by_anon ON consent_ledger(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE TABLE identity_links(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, from_kind TEXT NOT NULL, from_id TEXT NOT NULL,
  user_id TEXT NOT NULL, source TEXT NOT NULL, first_seen_ms INTEGER NOT NULL,
  UNIQUE(project_id, from_kind, from_id, user_id));
CREATE INDEX identity_by_user ON identity_links(project_id, user_id);
CREATE TABLE suppressions(
  project_id INTEGER NOT NULL, id_hash TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY(project_id, id_hash)) WITHOUT ROWID;
CREATE TABLE dropped_counters(
  project_id INTEGER NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(project_id, reason))
  WITHOUT ROWID;
)sql",
    // 2: data-subject rights.
    R"sql(
ALTER TABLE consent_ledger ADD COLUMN device TEXT;
CREATE INDEX identity_by_from ON identity_links(project_id, from_id);
CREATE INDEX events_by_time ON events(project_id, timestamp_ms);
CREATE TABLE traits(
  project_id INTEGER NOT NULL, subject_id TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL,
  updated_ms INTEGER NOT NULL, PRIMARY KEY(project_id, subject_id, k)) WITHOUT ROWID;
CREATE TABLE requests(
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, project TEXT NOT NULL, subject TEXT NOT NULL,
  subject_hash TEXT NOT NULL, state TEXT NOT NULL, source TEXT NOT NULL, received_ms INTEGER NOT NULL,
  due_ms INTEGER NOT NULL, acted_by TEXT NOT NULL, acted_ms INTEGER NOT NULL, result TEXT NOT NULL);
CREATE INDEX requests_by_subject ON requests(subject_hash);
CREATE INDEX requests_by_due ON requests(state, due_ms);
CREATE TABLE audit_log(
  seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
  action TEXT NOT NULL, subject_hash TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL,
  prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX audit_by_subject ON audit_log(subject_hash, seq);
CREATE TABLE admin_tokens(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE, prefix TEXT NOT NULL,
  roles TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER);
CREATE TABLE project_settings(project_id INTEGER PRIMARY KEY, max_event_age_ms INTEGER NOT NULL);
)sql",
};
constexpr int64_t kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == kSchemaVersion, "one migration per schema version");

}  // namespace

Result<SecretBytes> LoadOrCreateStoreKey(const std::string& data_dir, const std::string& key_file) {
  // Through the platform's key files: no group/other permissions, no symbolic link, created atomically.
  platform::KeyFileOptions o;
  o.len = 32;
  o.hex = true;
  o.create = key_file.empty();  // an operator's --key-file is never made up
  return platform::LoadOrCreateKey(key_file.empty() ? data_dir + "/collector.key" : key_file, o);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& data_dir, const std::string& key_file) {
  FERRY_RETURN_IF_ERROR(MakeDir(data_dir));
  auto key = LoadOrCreateStoreKey(data_dir, key_file);
  if (!key.ok()) return key.status();
  return OpenFile(data_dir + "/collector.db", *key);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::OpenFile(const std::string& path, const SecretBytes& key) {
  if (!base::EnsureSodium()) return Status::Internal("libsodium failed to start");
  auto db = base::Db::OpenEncrypted(path, key);
  if (!db.ok()) return db.status();
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(db).value()));
  store->path_ = path;
  FERRY_RETURN_IF_ERROR(store->db_.Exec("PRAGMA cache_size = -65536;"));  // 64 MiB
  // Erased rows are overwritten, not just unlinked; temporary tables (subject id sets) never touch the disk.
  FERRY_RETURN_IF_ERROR(store->db_.Exec("PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY;"));
  FERRY_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Status SqliteStore::Migrate() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t v = db_.UserVersion();
  if (v < 0) return Status::Storage("cannot read the schema version: " + db_.ErrMsg());
  if (v > kSchemaVersion) {
    return Status::Storage("the store has schema version " + std::to_string(v) + ", newer than this build (" +
                           std::to_string(kSchemaVersion) + ")");
  }
  for (; v < kSchemaVersion; ++v) {
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(db_.Exec(kMigrations[v]));
    FERRY_RETURN_IF_ERROR(db_.SetUserVersion(v + 1));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  // The key of the suppression list's id hashes: made once, kept in the (encrypted) store.
  auto sel = db_.Prepare("SELECT v FROM meta WHERE k = 'id_hash_key';");
  if (!sel.ok()) return sel.status();
  if (sel->Step()) {
    const void* p = sqlite3_column_blob(sel->get(), 0);
    int n = sqlite3_column_bytes(sel->get(), 0);
    if (p == nullptr || n != 32) return Status::Storage("meta.id_hash_key is damaged");
    id_key_ = SecretBytes(static_cast<const uint8_t*>(p), 32);
  } else {
    FERRY_RETURN_IF_ERROR(sel->status());
    id_key_ = SecretBytes::Random(32);
    auto ins = db_.Prepare("INSERT INTO meta(k, v) VALUES('id_hash_key', ?1);");
    if (!ins.ok()) return ins.status();
    ins->BindBlob(1, id_key_.data(), id_key_.size());
    FERRY_RETURN_IF_ERROR(ins->Run());
  }
  return Status::Ok();
}

int64_t SqliteStore::SchemaVersion() {
  std::lock_guard<std::mutex> lock(mu_);
  return db_.UserVersion();
}

Status SqliteStore::Check() {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("SELECT count(*) FROM sqlite_master;");
  if (!st.ok()) return st.status();
  if (!st->Step()) return st->status().ok() ? Status::Storage("no row") : st->status();
  return Status::Ok();
}

Result<std::string> SqliteStore::CreateWriteKey(const std::string& project) {
  if (project.empty() || project.size() > 200) return Status::InvalidArgument("a project name is 1-200 bytes");
  std::string key = "fw_" + base::RandomHex(32);
  std::string hash = base::Blake2b256(key);
  std::lock_guard<std::mutex> lock(mu_);
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  int64_t now = base::NowMs();
  {
    auto ins = db_.Prepare("INSERT OR IGNORE INTO projects(name, created_ms) VALUES(?1, ?2);");
    if (!ins.ok()) return ins.status();
    ins->Bind(1, project).Bind(2, now);
    FERRY_RETURN_IF_ERROR(ins->Run());
  }
  auto ins = db_.Prepare(
      "INSERT INTO write_keys(project_id, key_hash, prefix, created_ms) "
      "SELECT id, ?2, ?3, ?4 FROM projects WHERE name = ?1;");
  if (!ins.ok()) return ins.status();
  ins->Bind(1, project).BindBlob(2, hash.data(), hash.size()).Bind(3, key.substr(0, 7)).Bind(4, now);
  FERRY_RETURN_IF_ERROR(ins->Run());
  FERRY_RETURN_IF_ERROR(tx.Commit());
  return key;
}

Result<std::optional<WriteKeyInfo>> SqliteStore::LookupWriteKey(const std::string& key) {
  std::string hash = base::Blake2b256(key);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = key_cache_.find(hash);
  if (it != key_cache_.end()) return std::optional<WriteKeyInfo>(it->second);
  auto st = db_.Prepare(
      "SELECT p.id, p.name FROM write_keys k JOIN projects p ON p.id = k.project_id "
      "WHERE k.key_hash = ?1 AND k.revoked_ms IS NULL;");
  if (!st.ok()) return st.status();
  st->BindBlob(1, hash.data(), hash.size());
  if (!st->Step()) {
    if (!st->status().ok()) return st->status();
    return std::optional<WriteKeyInfo>();
  }
  WriteKeyInfo info{st->Int(0), st->Text(1)};
  if (key_cache_.size() > 10000) key_cache_.clear();
  key_cache_.emplace(hash, info);
  return std::optional<WriteKeyInfo>(info);
}

std::string SqliteStore::IdHash(const std::string& id) {
  return base::Blake2b256Hex(id, std::string_view(reinterpret_cast<const char*>(id_key_.data()), id_key_.size()));
}

Result<bool> SqliteStore::IsSuppressed(int64_t project_id, const std::string& id_hash) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("SELECT 1 FROM suppressions WHERE project_id = ?1 AND id_hash = ?2;");
  if (!st.ok()) return st.status();
  st->Bind(1, project_id).Bind(2, id_hash);
  bool found = st->Step();
  if (!st->status().ok()) return st->status();
  return found;
}

Status SqliteStore::Suppress(int64_t project_id, const std::string& id_hash) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("INSERT OR IGNORE INTO suppressions(project_id, id_hash, created_ms) VALUES(?1, ?2, ?3);");
  if (!st.ok()) return st.status();
  st->Bind(1, project_id).Bind(2, id_hash).Bind(3, base::NowMs());
  return st->Run();
}

Status SqliteStore::Insert(std::vector<InsertRequest*>& requests) {
  std::lock_guard<std::mutex> lock(mu_);
  Status s = InsertLocked(requests);
  if (!s.ok()) {
    for (InsertRequest* r : requests) r->outcomes.clear();
  }
  return s;
}

Status SqliteStore::InsertLocked(std::vector<InsertRequest*>& requests) {
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto ev = db_.Prepare(
      "INSERT OR IGNORE INTO events(project_id, message_id, type, user_id, anonymous_id, name, purpose, "
      "timestamp_ms, received_ms, body) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);");
  if (!ev.ok()) return ev.status();
  // The suppression list is usually empty: look ids up only when it is not.
  bool any_suppressed = false;
  {
    auto any = db_.Prepare("SELECT 1 FROM suppressions LIMIT 1;");
    if (!any.ok()) return any.status();
    any_suppressed = any->Step();
    FERRY_RETURN_IF_ERROR(any->status());
  }
  base::Stmt sup, consent, link, drop_ins, drop_upd, trait;
  auto prepare = [&](base::Stmt* out, std::string_view sql) -> Status {
    if (*out) return Status::Ok();
    auto st = db_.Prepare(sql);
    if (!st.ok()) return st.status();
    *out = std::move(st).value();
    return Status::Ok();
  };
  auto bind_opt = [](base::Stmt& st, int i, const std::string& v) {
    if (v.empty()) {
      st.BindNull(i);
    } else {
      st.Bind(i, v);
    }
  };
  for (InsertRequest* req : requests) {
    req->outcomes.assign(req->events.size(), InsertOutcome::kAccepted);
    for (size_t i = 0; i < req->events.size(); ++i) {
      const StoredEvent& e = req->events[i];
      if (any_suppressed) {
        FERRY_RETURN_IF_ERROR(
            prepare(&sup, "SELECT 1 FROM suppressions WHERE project_id = ?1 AND id_hash IN (?2, ?3);"));
        sup.Bind(1, req->project_id)
            .Bind(2, e.user_id.empty() ? std::string() : IdHash(e.user_id))
            .Bind(3, e.anonymous_id.empty() ? std::string() : IdHash(e.anonymous_id));
        bool hit = sup.Step();
        FERRY_RETURN_IF_ERROR(sup.status());
        sup.Reset();
        if (hit) {
          req->outcomes[i] = InsertOutcome::kSuppressed;
          continue;
        }
      }
      ev->Bind(1, req->project_id).Bind(2, e.message_id).Bind(3, e.type);
      bind_opt(*ev, 4, e.user_id);
      bind_opt(*ev, 5, e.anonymous_id);
      bind_opt(*ev, 6, e.name);
      bind_opt(*ev, 7, e.purpose);
      ev->Bind(8, e.timestamp_ms).Bind(9, e.received_ms).Bind(10, e.body);
      FERRY_RETURN_IF_ERROR(ev->Run());
      if (db_.Changes() == 0) {
        req->outcomes[i] = InsertOutcome::kDuplicate;
        continue;
      }
      if (e.type == "consent") {
        FERRY_RETURN_IF_ERROR(prepare(&consent,
                                      "INSERT INTO consent_ledger(project_id, message_id, user_id, anonymous_id, "
                                      "purpose, state, previous, timestamp_ms, received_ms, device) "
                                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);"));
        consent.Bind(1, req->project_id).Bind(2, e.message_id);
        bind_opt(consent, 3, e.user_id);
        bind_opt(consent, 4, e.anonymous_id);
        consent.Bind(5, e.consent_purpose).Bind(6, e.consent_state);
        bind_opt(consent, 7, e.consent_previous);
        consent.Bind(8, e.timestamp_ms).Bind(9, e.received_ms);
        bind_opt(consent, 10, e.device);
        FERRY_RETURN_IF_ERROR(consent.Run());
      }
      if (e.type == "identify" && !e.traits.empty()) {
        FERRY_RETURN_IF_ERROR(prepare(&trait,
                                      "INSERT OR REPLACE INTO traits(project_id, subject_id, k, v, updated_ms) "
                                      "VALUES(?1, ?2, ?3, ?4, ?5);"));
        nlohmann::json t = nlohmann::json::parse(e.traits, nullptr, false);
        if (t.is_object()) {
          const std::string& subject = e.user_id.empty() ? e.anonymous_id : e.user_id;
          for (const auto& [k, v] : t.items()) {
            trait.Bind(1, req->project_id).Bind(2, subject).Bind(3, k);
            trait.Bind(4, v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).Bind(5, e.received_ms);
            FERRY_RETURN_IF_ERROR(trait.Run());
          }
        }
      }
      auto add_link = [&](const char* kind, const std::string& from, const std::string& source) -> Status {
        FERRY_RETURN_IF_ERROR(prepare(&link,
                                      "INSERT OR IGNORE INTO identity_links(project_id, from_kind, from_id, user_id, "
                                      "source, first_seen_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6);"));
        link.Bind(1, req->project_id).Bind(2, std::string_view(kind)).Bind(3, from).Bind(4, e.user_id);
        link.Bind(5, source).Bind(6, e.timestamp_ms);
        return link.Run();
      };
      if (!e.user_id.empty()) {
        if ((e.type == "identify" || e.type == "alias") && !e.anonymous_id.empty()) {
          FERRY_RETURN_IF_ERROR(add_link("anonymousId", e.anonymous_id, e.type));
        }
        if (e.type == "alias" && !e.previous_id.empty() && e.previous_id != e.user_id) {
          FERRY_RETURN_IF_ERROR(add_link("previousId", e.previous_id, e.type));
        }
      }
    }
    for (const auto& [reason, count] : req->dropped) {
      FERRY_RETURN_IF_ERROR(prepare(&drop_ins,
                                    "INSERT OR IGNORE INTO dropped_counters(project_id, reason, count) "
                                    "VALUES(?1, ?2, 0);"));
      FERRY_RETURN_IF_ERROR(prepare(&drop_upd,
                                    "UPDATE dropped_counters SET count = count + ?3 "
                                    "WHERE project_id = ?1 AND reason = ?2;"));
      drop_ins.Bind(1, req->project_id).Bind(2, reason);
      FERRY_RETURN_IF_ERROR(drop_ins.Run());
      drop_upd.Bind(1, req->project_id).Bind(2, reason).Bind(3, count);
      FERRY_RETURN_IF_ERROR(drop_upd.Run());
    }
  }
  return tx.Commit();
}

Result<std::vector<EventRow>> SqliteStore::DumpEvents(const std::string& project) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare(
      "SELECT p.name, e.message_id, e.type, e.user_id, e.anonymous_id, e.name, e.purpose, e.timestamp_ms, "
      "e.received_ms, e.body FROM events e JOIN projects p ON p.id = e.project_id "
      "WHERE ?1 = '' OR p.name = ?1 ORDER BY e.id;");
  if (!st.ok()) return st.status();
  st->Bind(1, project);
  std::vector<EventRow> rows;
  while (st->Step()) {
    EventRow r;
    r.project = st->Text(0);
    r.message_id = st->Text(1);
    r.type = st->Text(2);
    r.user_id = st->Text(3);
    r.anonymous_id = st->Text(4);
    r.name = st->Text(5);
    r.purpose = st->Text(6);
    r.timestamp_ms = st->Int(7);
    r.received_ms = st->Int(8);
    r.body = st->Text(9);
    rows.push_back(std::move(r));
  }
  FERRY_RETURN_IF_ERROR(st->status());
  return rows;
}

Result<std::map<std::string, int64_t>> SqliteStore::DroppedCounters(const std::string& project) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare(
      "SELECT d.reason, d.count FROM dropped_counters d JOIN projects p ON p.id = d.project_id WHERE p.name = ?1;");
  if (!st.ok()) return st.status();
  st->Bind(1, project);
  std::map<std::string, int64_t> out;
  while (st->Step()) out[st->Text(0)] = st->Int(1);
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

}  // namespace ferry::collector
