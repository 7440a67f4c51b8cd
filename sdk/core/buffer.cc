#include "sdk/core/buffer.h"

#include <string_view>

#include "lib/base/time.h"
#include "platform/platform.h"

namespace ferry::core {

using base::Result;
using base::Status;

namespace {

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  purpose TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  size INTEGER NOT NULL,
  user_id TEXT,
  anonymous_id TEXT,
  body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_purpose ON events(purpose, seq, size);
CREATE TABLE IF NOT EXISTS consent(
  purpose TEXT PRIMARY KEY,
  state INTEGER NOT NULL,
  explicit INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
)sql";

// "?,?,?" for n placeholders.
std::string Placeholders(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += i ? ",?" : "?";
  return s;
}

}  // namespace

Buffer::Buffer(std::string path, base::Db db, base::Logger log)
    : path_(std::move(path)), db_(std::move(db)), log_(std::move(log)) {}

Buffer::~Buffer() = default;

Result<std::unique_ptr<Buffer>> Buffer::Open(const std::string& path, const base::SecretBytes& key,
                                             const base::Logger& log) {
  FERRY_RETURN_IF_ERROR(platform::EnsureDir(platform::DirName(path)));
  for (int attempt = 0; attempt < 2; ++attempt) {
    Status why;
    auto db = base::Db::OpenEncrypted(path, key);
    if (db.ok()) {
      std::unique_ptr<Buffer> store(new Buffer(path, std::move(db).value(), log));
      why = store->Migrate();
      if (why.ok()) why = store->LoadCounts();
      if (why.ok()) return store;
    } else {
      why = db.status();
    }
    // A file that cannot be read as a buffer (kCorruption: not a database, a wrong key, damaged, an unreadable or
    // newer schema) is moved aside; anything else (a plain I/O failure) is reported.
    bool unusable = why.Is(base::Code::kCorruption);
    if (attempt == 1 || !unusable) return Status::Storage("cannot open the buffer " + path + ": " + why.message());
    auto moved = platform::MoveAside(path);
    if (!moved.ok())
      return Status::Storage("cannot move aside the unreadable buffer " + path + ": " + moved.status().message());
    log.Warn("the buffer " + path + " could not be opened (" + why.message() + "); moved it to " + moved.value() +
             " and started a fresh buffer");
  }
  return Status::Internal("unreachable");
}

Status Buffer::Migrate() {
  int64_t v = db_.UserVersion();
  // To this library, a file whose schema it cannot read is as unreadable as a damaged one (kCorruption).
  if (v < 0) return Status::Corruption("cannot read the schema version: " + db_.ErrMsg());
  if (v > kSchemaVersion) {
    return Status::Corruption("schema version " + std::to_string(v) + " is newer than this library");
  }
  if (v < 1) {
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(db_.Exec(kSchemaV1));
    FERRY_RETURN_IF_ERROR(db_.SetUserVersion(1));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  // Future migrations: if (v < 2) { ... SetUserVersion(2) } in one transaction each.

  auto ins =
      db_.Prepare("INSERT INTO events(purpose, created_ms, size, user_id, anonymous_id, body) VALUES(?,?,?,?,?,?)");
  if (!ins.ok()) return ins.status();
  insert_ = std::move(ins).value();
  return Status::Ok();
}

Status Buffer::LoadCounts() {
  auto st = db_.Prepare("SELECT purpose, count(*), sum(size) FROM events GROUP BY purpose");
  if (!st.ok()) return st.status();
  counts_.clear();
  total_bytes_ = 0;
  while (st->Step()) {
    PurposeCount& c = counts_[st->Text(0)];
    c.events = st->Int(1);
    c.bytes = st->Int(2);
    total_bytes_ += c.bytes;
  }
  return st->status();
}

void Buffer::Account(const std::string& purpose, int64_t events, int64_t bytes) {
  PurposeCount& c = counts_[purpose];
  c.events += events;
  c.bytes += bytes;
  total_bytes_ += bytes;
  if (c.events <= 0) counts_.erase(purpose);
}

Status Buffer::Append(const std::vector<NewEvent>& events) {
  if (events.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  for (const NewEvent& e : events) {
    int64_t size = static_cast<int64_t>(e.body.size()) + kRowOverhead;
    insert_.Bind(1, e.purpose).Bind(2, e.created_ms).Bind(3, size);
    if (e.user_id.empty()) {
      insert_.BindNull(4);
    } else {
      insert_.Bind(4, e.user_id);
    }
    insert_.Bind(5, e.anonymous_id).Bind(6, e.body);
    FERRY_RETURN_IF_ERROR(insert_.Run());
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  for (const NewEvent& e : events) Account(e.purpose, 1, static_cast<int64_t>(e.body.size()) + kRowOverhead);
  return Status::Ok();
}

Result<std::vector<QueuedEvent>> Buffer::NextBatch(const std::set<std::string>& purposes, size_t max_events,
                                                   size_t max_bytes) {
  std::vector<QueuedEvent> out;
  if (purposes.empty() || max_events == 0) return out;
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("SELECT seq, purpose, size, body FROM events WHERE purpose IN (" +
                        Placeholders(purposes.size()) + ") ORDER BY seq LIMIT ?");
  if (!st.ok()) return st.status();
  int i = 1;
  for (const auto& p : purposes) st->Bind(i++, p);
  st->Bind(i, static_cast<int64_t>(max_events));
  size_t bytes = 0;
  while (st->Step()) {
    std::string_view body = st->TextView(3);
    if (!out.empty() && bytes + body.size() > max_bytes) break;
    bytes += body.size();
    out.push_back(QueuedEvent{st->Int(0), st->Text(1), st->Int(2), std::string(body)});
  }
  if (!st->status().ok()) return st->status();
  return out;
}

Result<int64_t> Buffer::MaxSeq(const std::set<std::string>& purposes) {
  if (purposes.empty()) return int64_t{0};
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("SELECT max(seq) FROM events WHERE purpose IN (" + Placeholders(purposes.size()) + ")");
  if (!st.ok()) return st.status();
  int i = 1;
  for (const auto& p : purposes) st->Bind(i++, p);
  if (!st->Step()) return st->status().ok() ? Status::Internal("max(seq) gave no row") : st->status();
  return st->IsNull(0) ? int64_t{0} : st->Int(0);
}

Result<bool> Buffer::AnyUpTo(const std::set<std::string>& purposes, int64_t max_seq) {
  if (purposes.empty() || max_seq <= 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto st =
      db_.Prepare("SELECT 1 FROM events WHERE purpose IN (" + Placeholders(purposes.size()) + ") AND seq <= ? LIMIT 1");
  if (!st.ok()) return st.status();
  int i = 1;
  for (const auto& p : purposes) st->Bind(i++, p);
  st->Bind(i, max_seq);
  bool any = st->Step();
  if (!st->status().ok()) return st->status();
  return any;
}

Status Buffer::Delete(const std::vector<QueuedEvent>& events) {
  if (events.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto st = db_.Prepare("DELETE FROM events WHERE seq = ?");
  if (!st.ok()) return st.status();
  std::vector<const QueuedEvent*> gone;
  for (const QueuedEvent& e : events) {
    st->Bind(1, e.seq);
    FERRY_RETURN_IF_ERROR(st->Run());
    if (db_.Changes() == 1) gone.push_back(&e);
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  for (const QueuedEvent* e : gone) Account(e->purpose, -1, -e->size);
  return Status::Ok();
}

Result<int64_t> Buffer::SetConsent(const std::string& purpose, const ConsentRow& row, bool purge,
                                   const NewEvent* record) {
  std::lock_guard<std::mutex> lock(mu_);
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto up = db_.Prepare("INSERT OR REPLACE INTO consent(purpose, state, explicit, updated_ms) VALUES(?,?,?,?)");
  if (!up.ok()) return up.status();
  up->Bind(1, purpose)
      .Bind(2, static_cast<int64_t>(row.state))
      .Bind(3, int64_t{row.explicit_choice ? 1 : 0})
      .Bind(4, row.updated_ms);
  FERRY_RETURN_IF_ERROR(up->Run());
  int64_t purged = 0, purged_bytes = 0;
  if (purge) {
    auto sum = db_.Prepare("SELECT count(*), coalesce(sum(size), 0) FROM events WHERE purpose = ?");
    if (!sum.ok()) return sum.status();
    sum->Bind(1, purpose);
    if (sum->Step()) {
      purged = sum->Int(0);
      purged_bytes = sum->Int(1);
    }
    FERRY_RETURN_IF_ERROR(sum->status());
    auto del = db_.Prepare("DELETE FROM events WHERE purpose = ?");
    if (!del.ok()) return del.status();
    del->Bind(1, purpose);
    FERRY_RETURN_IF_ERROR(del->Run());
  }
  if (record != nullptr) {
    int64_t size = static_cast<int64_t>(record->body.size()) + kRowOverhead;
    insert_.Bind(1, record->purpose).Bind(2, record->created_ms).Bind(3, size);
    if (record->user_id.empty()) {
      insert_.BindNull(4);
    } else {
      insert_.Bind(4, record->user_id);
    }
    insert_.Bind(5, record->anonymous_id).Bind(6, record->body);
    FERRY_RETURN_IF_ERROR(insert_.Run());
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  if (purged > 0) Account(purpose, -purged, -purged_bytes);
  if (record != nullptr) Account(record->purpose, 1, static_cast<int64_t>(record->body.size()) + kRowOverhead);
  return purged;
}

std::map<std::string, ConsentRow> Buffer::LoadConsent() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, ConsentRow> out;
  auto st = db_.Prepare("SELECT purpose, state, explicit, updated_ms FROM consent");
  if (!st.ok()) return out;
  while (st->Step()) {
    int64_t s = st->Int(1);
    ConsentRow r;
    r.state = s == 1 ? Consent::kGranted : s == 2 ? Consent::kDenied : Consent::kPending;
    r.explicit_choice = st->Int(2) != 0;
    r.updated_ms = st->Int(3);
    out[st->Text(0)] = r;
  }
  return out;
}

Status Buffer::ApplyDefaultConsent(const std::map<std::string, Consent>& defaults) {
  std::lock_guard<std::mutex> lock(mu_);
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  FERRY_RETURN_IF_ERROR(db_.Exec("DELETE FROM consent WHERE explicit = 0"));
  auto ins = db_.Prepare("INSERT OR IGNORE INTO consent(purpose, state, explicit, updated_ms) VALUES(?,?,0,?)");
  if (!ins.ok()) return ins.status();
  int64_t now = base::NowMs();
  for (const auto& [purpose, state] : defaults) {
    ins->Bind(1, purpose).Bind(2, static_cast<int64_t>(state)).Bind(3, now);
    FERRY_RETURN_IF_ERROR(ins->Run());
  }
  return tx.Commit();
}

std::optional<std::string> Buffer::GetMeta(const std::string& k) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("SELECT v FROM meta WHERE k = ?");
  if (!st.ok()) return std::nullopt;
  st->Bind(1, k);
  if (!st->Step()) return std::nullopt;
  return st->Text(0);
}

Status Buffer::PutMeta(const std::string& k, const std::string& v) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)");
  if (!st.ok()) return st.status();
  st->Bind(1, k).Bind(2, v);
  return st->Run();
}

Result<Evicted> Buffer::Evict(int64_t max_bytes, int64_t min_created_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  return EvictLocked(max_bytes, min_created_ms);
}

Result<Evicted> Buffer::EvictLocked(int64_t max_bytes, int64_t min_created_ms) {
  Evicted ev;
  // Candidates in order: non-necessary oldest first (size and age), then necessary ones (size only).
  auto pick = db_.Prepare(
      "SELECT seq, purpose, size, created_ms FROM events WHERE purpose != 'necessary' ORDER BY seq LIMIT 512");
  auto pick_necessary = db_.Prepare("SELECT seq, purpose, size, created_ms FROM events ORDER BY seq LIMIT 512");
  auto del = db_.Prepare("DELETE FROM events WHERE seq = ?");
  if (!pick.ok()) return pick.status();
  if (!pick_necessary.ok()) return pick_necessary.status();
  if (!del.ok()) return del.status();
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  std::vector<std::pair<std::string, int64_t>> removed;  // purpose, size
  int64_t bytes_now = total_bytes_;
  for (base::Stmt* st : {&pick.value(), &pick_necessary.value()}) {
    bool by_age_allowed = st == &pick.value();
    for (;;) {
      bool over = bytes_now > max_bytes;
      std::vector<std::tuple<int64_t, std::string, int64_t>> victims;
      while (st->Step()) {
        int64_t created = st->Int(3);
        bool old = by_age_allowed && created < min_created_ms;
        if (!old && !over) break;
        victims.emplace_back(st->Int(0), st->Text(1), st->Int(2));
        if (!old) {
          bytes_now -= st->Int(2);
          over = bytes_now > max_bytes;
        }
      }
      FERRY_RETURN_IF_ERROR(st->status());
      st->Reset();
      if (victims.empty()) break;
      for (auto& [seq, purpose, size] : victims) {
        del->Bind(1, seq);
        FERRY_RETURN_IF_ERROR(del->Run());
        if (db_.Changes() == 1) {
          removed.emplace_back(purpose, size);
          ev.events++;
          ev.bytes += size;
        }
      }
    }
    if (bytes_now <= max_bytes) break;
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  for (auto& [purpose, size] : removed) Account(purpose, -1, -size);
  return ev;
}

Result<int64_t> Buffer::DeleteAllEvents() {
  std::lock_guard<std::mutex> lock(mu_);
  FERRY_RETURN_IF_ERROR(db_.Exec("DELETE FROM events"));
  int64_t n = db_.Changes();
  counts_.clear();
  total_bytes_ = 0;
  return n;
}

Status Buffer::AddOutbox(const std::string& kind, const std::string& body) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("INSERT INTO outbox(kind, body, created_ms) VALUES(?,?,?)");
  if (!st.ok()) return st.status();
  st->Bind(1, kind).Bind(2, body).Bind(3, base::NowMs());
  return st->Run();
}

Result<std::vector<std::pair<int64_t, std::string>>> Buffer::Outbox(const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<int64_t, std::string>> out;
  auto st = db_.Prepare("SELECT id, body FROM outbox WHERE kind = ? ORDER BY id");
  if (!st.ok()) return st.status();
  st->Bind(1, kind);
  while (st->Step()) out.emplace_back(st->Int(0), st->Text(1));
  if (!st->status().ok()) return st->status();
  return out;
}

Status Buffer::DeleteOutbox(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto st = db_.Prepare("DELETE FROM outbox WHERE id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  return st->Run();
}

Result<std::vector<std::string>> Buffer::EventsFor(const std::string& user_id, const std::set<std::string>& anon_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  std::string sql = "SELECT body FROM events WHERE ";
  sql += user_id.empty() ? "0" : "user_id = ?";
  if (!anon_ids.empty()) sql += " OR anonymous_id IN (" + Placeholders(anon_ids.size()) + ")";
  sql += " ORDER BY seq";
  auto st = db_.Prepare(sql);
  if (!st.ok()) return st.status();
  int i = 1;
  if (!user_id.empty()) st->Bind(i++, user_id);
  for (const auto& a : anon_ids) st->Bind(i++, a);
  while (st->Step()) out.push_back(st->Text(0));
  if (!st->status().ok()) return st->status();
  return out;
}

std::map<std::string, PurposeCount> Buffer::Counts() {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

int64_t Buffer::TotalBytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return total_bytes_;
}

}  // namespace ferry::core
