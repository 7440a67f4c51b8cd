#include "sdk/core/buffer.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>

#include "lib/base/digest.h"
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

// The bytes of a column (TEXT or BLOB), valid until the next Step/Reset.
std::string_view ColumnBytes(const base::Stmt& st, int col) {
  const void* p = sqlite3_column_blob(st.get(), col);
  int n = sqlite3_column_bytes(st.get(), col);
  return p == nullptr || n <= 0 ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
}

// An event's JSON from its body column: TEXT as it is, a BLOB decompressed (event_codec.h).
Result<std::string> BodyJson(const base::Stmt& st, int col, EventCodec* codec) {
  if (sqlite3_column_type(st.get(), col) != SQLITE_BLOB) return st.Text(col);
  return codec->Decompress(ColumnBytes(st, col));
}

// Loads the dicts table into codec (the newest one current). A buffer before schema 3 has none.
Status LoadDictionaries(base::Db& db, EventCodec* codec) {
  auto st = db.Prepare("SELECT id, bytes FROM dicts ORDER BY id");
  if (!st.ok()) return st.status();
  std::vector<std::pair<int64_t, std::string>> rows;
  while (st->Step()) rows.emplace_back(st->Int(0), std::string(ColumnBytes(st.value(), 1)));
  if (!st->status().ok()) return st->status();
  for (size_t i = 0; i < rows.size(); ++i) {
    FERRY_RETURN_IF_ERROR(codec->AddDictionary(rows[i].first, rows[i].second, i + 1 == rows.size()));
  }
  return Status::Ok();
}

// A dictionary's scope as the dicts table keeps it: "<anonymousId>\n<userId>\n<session id>".
struct Scope {
  std::string anon, user, session;
  bool ok = false;
};
Scope ParseScope(const std::string& text) {
  Scope s;
  size_t a = text.find('\n');
  size_t b = a == std::string::npos ? a : text.find('\n', a + 1);
  if (b == std::string::npos) return s;
  s.anon = text.substr(0, a);
  s.user = text.substr(a + 1, b - a - 1);
  s.session = text.substr(b + 1);
  s.ok = true;
  return s;
}

// Each dictionary's anonymousId, by id (the dictionaries without a scope, from before schema 5, have none).
std::map<int64_t, std::string> ScopeAnons(base::Db& db) {
  std::map<int64_t, std::string> out;
  if (auto st = db.Prepare("SELECT id, scope FROM dicts WHERE scope IS NOT NULL"); st.ok()) {
    while (st->Step()) {
      Scope s = ParseScope(st->Text(1));
      if (s.ok) out[st->Int(0)] = s.anon;
    }
  }
  return out;
}

// Adds each column (name, its type and default) that table lacks: a buffer set back to an older version number by
// hand (tests) keeps the columns it has.
Status AddMissingColumns(base::Db& db, const char* table,
                         std::initializer_list<std::pair<const char*, const char*>> columns) {
  std::set<std::string> have;
  {
    auto cols = db.Prepare(std::string("PRAGMA table_info(") + table + ");");
    if (!cols.ok()) return cols.status();
    while (cols->Step()) have.insert(cols->Text(1));
    FERRY_RETURN_IF_ERROR(cols->status());
  }
  for (const auto& [name, type] : columns) {
    if (have.count(name)) continue;
    FERRY_RETURN_IF_ERROR(db.Exec(std::string("ALTER TABLE ") + table + " ADD COLUMN " + name + " " + type + ";"));
  }
  return Status::Ok();
}

// "?,?,?" for n placeholders.
std::string Placeholders(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += i ? ",?" : "?";
  return s;
}

}  // namespace

Buffer::Buffer(std::string path, base::Db db, base::Logger log)
    : path_(std::move(path)), db_(std::move(db)), log_(std::move(log)) {}

Buffer::~Buffer() { CloseClean(); }

namespace {

// Disk space kept beside the buffer ("<path>.reserve") and given back when the disk is full, so that sent events can
// still be deleted.
constexpr uint64_t kReserveBytes = 1u << 20;

constexpr const char* kKeyCheckText = "ferry buffer key check v1";
constexpr const char* kKeyCheckHeader = "ferry-keycheck-v1 ";

// "ferry-keycheck-v1 <hex of BLAKE2b-256 keyed with the buffer key over a fixed text>\n".
std::string KeyCheckLine(const base::SecretBytes& key) {
  std::string_view k(reinterpret_cast<const char*>(key.data()), key.size());
  return kKeyCheckHeader + base::Blake2b256Hex(kKeyCheckText, k) + "\n";
}

enum class KeyCheck { kAbsent, kMatch, kMismatch };

KeyCheck ReadKeyCheck(const std::string& kcv_path, const base::SecretBytes& key) {
  auto content = platform::ReadSmallFile(kcv_path, 256);
  if (!content.ok()) return KeyCheck::kAbsent;
  if (content->rfind(kKeyCheckHeader, 0) != 0) return KeyCheck::kAbsent;
  return content.value() == KeyCheckLine(key) ? KeyCheck::kMatch : KeyCheck::kMismatch;
}

// Whether the key reads the file's first page (a read-only connection: it writes nothing to the database or its WAL,
// and never checkpoints).
bool KeyReads(const std::string& path, const base::SecretBytes& key) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, base::SqliteCloser> db(raw);
  if (rc != SQLITE_OK) return false;
  std::string pragma = "PRAGMA key = \"x'" + key.ToHex() + "'\";";
  rc = sqlite3_exec(raw, pragma.c_str(), nullptr, nullptr, nullptr);
  base::WipeString(pragma);
  if (rc != SQLITE_OK) return false;
  if (sqlite3_exec(raw, "PRAGMA cipher_page_size = 4096;", nullptr, nullptr, nullptr) != SQLITE_OK) return false;
  return sqlite3_exec(raw, "SELECT count(*) FROM sqlite_master;", nullptr, nullptr, nullptr) == SQLITE_OK;
}

// The clean-close marker ("<path>.clean", Open in buffer.h): what a clean close left, keyed with a key derived from
// the buffer key (a forged or stale marker never matches).
constexpr const char* kCleanHeader = "ferry-clean-v1";

std::string MarkerKey(const base::SecretBytes& key) {
  std::string_view k(reinterpret_cast<const char*>(key.data()), key.size());
  return base::Blake2b256Hex("ferry buffer clean marker key v1", k);
}

// A file's identity and last change: device, inode, size, modification and change times (ns); "-" when absent. Any
// write, truncation, chmod or replacement after the close moves the change time (or the inode), which user space
// cannot set back.
std::string FileIdentity(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return "-";
  auto ns = [](const struct timespec& t) { return std::to_string(t.tv_sec) + "." + std::to_string(t.tv_nsec); };
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         ns(st.st_mtim) + ":" + ns(st.st_ctim);
}

// Returns once the coarse real-time clock that stamps file times has passed the change time of each file (bounded).
void WaitPastChangeTime(std::initializer_list<std::string> paths) {
  struct timespec newest {};
  for (const std::string& p : paths) {
    struct stat st {};
    if (lstat(p.c_str(), &st) == 0 && (st.st_ctim.tv_sec > newest.tv_sec ||
                                       (st.st_ctim.tv_sec == newest.tv_sec && st.st_ctim.tv_nsec > newest.tv_nsec))) {
      newest = st.st_ctim;
    }
  }
  for (int i = 0; i < 100; ++i) {
    struct timespec now {};
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec > newest.tv_sec || (now.tv_sec == newest.tv_sec && now.tv_nsec > newest.tv_nsec)) return;
    const struct timespec pause = {0, 1000000};  // 1 ms
    nanosleep(&pause, nullptr);
  }
}

std::string CleanLine(const std::string& path, const std::string& marker_key) {
  std::string body = std::string(kCleanHeader) + " db " + FileIdentity(path) + " wal " + FileIdentity(path + "-wal");
  return body + " " + base::Blake2b256Hex(body, marker_key) + "\n";
}

// Reads and removes the marker (before anything writes to the buffer): whether the last close was clean and neither
// the file nor its WAL changed since.
bool TakeCleanMarker(const std::string& path, const std::string& marker_key) {
  const std::string marker = path + ".clean";
  auto content = platform::ReadSmallFile(marker, 1024);
  if (!content.ok()) return false;
  if (unlink(marker.c_str()) != 0) return false;  // it would outlive this open: not trusted
  return content.value() == CleanLine(path, marker_key);
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// What could be read out of a damaged buffer.
struct Salvage {
  std::vector<std::tuple<int64_t, std::string, int64_t, int64_t, std::optional<std::string>, std::string, std::string>>
      events;  // seq, purpose, created_ms, size, user_id, anonymous_id, body
  std::vector<std::tuple<std::string, int64_t, int64_t, int64_t>> consent;  // purpose, state, explicit, updated_ms
  bool consent_read = false;
  std::vector<std::pair<std::string, std::string>> meta;
  std::vector<std::tuple<int64_t, std::string, std::string, int64_t>> outbox;
};

// Reads one row of events into out (the statement's columns: seq, purpose, created_ms, size, user_id,
// anonymous_id, body).
// A compressed body is decompressed (salvaged rows are written back as TEXT); one that cannot be is not taken.
// anons: each dictionary's anonymousId (the rows whose anonymousId is NULL have theirs).
void TakeEvent(base::Stmt& st, Salvage* out, EventCodec* codec, const std::map<int64_t, std::string>& anons) {
  std::optional<std::string> uid;
  if (!st.IsNull(4)) uid = st.Text(4);
  auto body = BodyJson(st, 6, codec);
  if (!body.ok()) return;
  std::string anon = st.Text(5);
  if (st.IsNull(5)) {
    // The dictionary's anonymousId (Append); the rows are written back as TEXT, with it.
    auto a = anons.find(EventCodec::DictionaryIdOf(ColumnBytes(st, 6)));
    if (a != anons.end()) anon = a->second;
  }
  out->events.emplace_back(st.Int(0), st.Text(1), st.Int(2), st.Int(3), std::move(uid), std::move(anon),
                           std::move(body).value());
}

void ReadDamagedDb(base::Db& db, Salvage* out);

// Reads what it can, table by table; the events in ranges of seq, and one by one in a range that fails, so that a
// damaged page costs only the rows on it.
Salvage ReadDamaged(const std::string& path, const base::SecretBytes& key) {
  Salvage out;
  auto opened = base::Db::OpenEncrypted(path, key);
  if (opened.ok()) {
    ReadDamagedDb(opened.value(), &out);
    return out;
  }
  // A truncated file: SQLite refuses a file shorter than its header says. Extended (sparse, with zero pages, which
  // read as damaged) it opens, and what is left can be read; then it is cut back to what it was.
  std::error_code ec;
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return out;
  std::filesystem::resize_file(path, std::max<uintmax_t>(size * 2, uintmax_t{1} << 30), ec);
  if (ec) return out;
  {
    auto padded = base::Db::OpenEncrypted(path, key);
    if (padded.ok()) ReadDamagedDb(padded.value(), &out);
  }
  std::filesystem::resize_file(path, size, ec);
  return out;
}

void ReadDamagedDb(base::Db& db, Salvage* salvage) {
  Salvage& out = *salvage;
  if (auto st = db.Prepare("SELECT k, v FROM meta"); st.ok()) {
    while (st->Step()) out.meta.emplace_back(st->Text(0), st->Text(1));
  }
  if (auto st = db.Prepare("SELECT purpose, state, explicit, updated_ms FROM consent"); st.ok()) {
    std::vector<std::tuple<std::string, int64_t, int64_t, int64_t>> rows;
    while (st->Step()) rows.emplace_back(st->Text(0), st->Int(1), st->Int(2), st->Int(3));
    if (st->status().ok()) {
      out.consent = std::move(rows);
      out.consent_read = true;
    }
  }
  if (auto st = db.Prepare("SELECT id, kind, body, created_ms FROM outbox"); st.ok()) {
    while (st->Step()) out.outbox.emplace_back(st->Int(0), st->Text(1), st->Text(2), st->Int(3));
  }
  EventCodec codec;
  (void)LoadDictionaries(db, &codec);  // none, or unreadable: the compressed rows are lost, the text rows kept
  const std::map<int64_t, std::string> anons = ScopeAnons(db);
  int64_t max_seq = -1;
  for (const char* q : {"SELECT seq FROM sqlite_sequence WHERE name = 'events'", "SELECT max(seq) FROM events"}) {
    auto st = db.Prepare(q);
    if (st.ok() && st->Step() && !st->IsNull(0)) max_seq = std::max(max_seq, st->Int(0));
  }
  const char* cols = "SELECT seq, purpose, created_ms, size, user_id, anonymous_id, body FROM events ";
  if (max_seq < 0) {
    // No bound known: read in order until the first failure.
    if (auto st = db.Prepare(std::string(cols) + "ORDER BY seq"); st.ok()) {
      while (st->Step()) TakeEvent(st.value(), &out, &codec, anons);
    }
    return;
  }
  auto range = db.Prepare(std::string(cols) + "WHERE seq BETWEEN ? AND ? ORDER BY seq");
  auto one = db.Prepare(std::string(cols) + "WHERE seq = ?");
  if (!range.ok() || !one.ok()) return;
  constexpr int64_t kChunk = 256;
  for (int64_t lo = 1; lo <= max_seq; lo += kChunk) {
    int64_t hi = std::min(max_seq, lo + kChunk - 1);
    size_t before = out.events.size();
    range->Bind(1, lo).Bind(2, hi);
    while (range->Step()) TakeEvent(range.value(), &out, &codec, anons);
    bool failed = !range->status().ok();
    range->Reset();
    if (!failed) continue;
    out.events.resize(before);
    for (int64_t seq = lo; seq <= hi; ++seq) {
      one->Bind(1, seq);
      if (one->Step()) TakeEvent(one.value(), &out, &codec, anons);
      one->Reset();
    }
  }
  return;
}

// Writes a salvage into a fresh buffer (one transaction).
Status WriteSalvage(base::Db& db, const Salvage& s) {
  base::Transaction tx(db);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto ev = db.Prepare(
      "INSERT OR IGNORE INTO events(seq, purpose, created_ms, size, user_id, anonymous_id, body) "
      "VALUES(?,?,?,?,?,?,?)");
  auto co = db.Prepare("INSERT OR REPLACE INTO consent(purpose, state, explicit, updated_ms) VALUES(?,?,?,?)");
  auto me = db.Prepare("INSERT OR REPLACE INTO meta(k, v) VALUES(?,?)");
  auto ob = db.Prepare("INSERT OR IGNORE INTO outbox(id, kind, body, created_ms) VALUES(?,?,?,?)");
  for (auto* st : {&ev, &co, &me, &ob}) {
    if (!st->ok()) return st->status();
  }
  for (const auto& [seq, purpose, created, size, uid, anon, body] : s.events) {
    ev->Bind(1, seq).Bind(2, purpose).Bind(3, created).Bind(4, size);
    if (uid) {
      ev->Bind(5, *uid);
    } else {
      ev->BindNull(5);
    }
    ev->Bind(6, anon).Bind(7, body);
    FERRY_RETURN_IF_ERROR(ev->Run());
  }
  for (const auto& [purpose, state, expl, updated] : s.consent) {
    co->Bind(1, purpose).Bind(2, state).Bind(3, expl).Bind(4, updated);
    FERRY_RETURN_IF_ERROR(co->Run());
  }
  for (const auto& [k, v] : s.meta) {
    me->Bind(1, k).Bind(2, v);
    FERRY_RETURN_IF_ERROR(me->Run());
  }
  for (const auto& [id, kind, body, created] : s.outbox) {
    ob->Bind(1, id).Bind(2, kind).Bind(3, body).Bind(4, created);
    FERRY_RETURN_IF_ERROR(ob->Run());
  }
  return tx.Commit();
}

}  // namespace

Result<std::unique_ptr<Buffer>> Buffer::OpenChecked(const std::string& path, const base::SecretBytes& key,
                                                    const base::Logger& log, const BufferOpenOptions& options,
                                                    bool clean_close) {
  // The database file is made (or narrowed to) 0600 before SQLite sees it; SQLite gives its -wal and -shm files the
  // database file's mode.
  FERRY_RETURN_IF_ERROR(platform::EnsurePrivateFile(path));
  for (const char* suffix : {"-wal", "-shm"}) {
    if (Exists(path + suffix)) FERRY_RETURN_IF_ERROR(platform::EnsurePrivateFile(path + suffix));
  }
  auto db = base::Db::OpenEncrypted(path, key);
  if (!db.ok()) return db.status();
  std::unique_ptr<Buffer> store(new Buffer(path, std::move(db).value(), log));
  // Keep the -wal and -shm files (and the WAL's size) when the connection closes: reopening then needs no new disk
  // space, so a full disk can still open the buffer and drain it.
  int persist = 1;
  sqlite3_file_control(store->db_.get(), "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  if (options.sync_commits) FERRY_RETURN_IF_ERROR(store->db_.Exec("PRAGMA synchronous = FULL;"));
  FERRY_RETURN_IF_ERROR(store->Migrate());
  // After a clean close of this very file (its marker), its pages were last checked by the open before, and nothing
  // wrote to it since but this library's commits: the full check is skipped.
  if (!clean_close) FERRY_RETURN_IF_ERROR(store->QuickCheck());
  // Copy what the WAL holds into the file now, so that the next commit rewrites the WAL from its start (in space the
  // file already has) instead of growing it.
  (void)store->db_.Exec("PRAGMA wal_checkpoint(PASSIVE);");
  if (!clean_close || !store->LoadCountsAtClose()) FERRY_RETURN_IF_ERROR(store->LoadCounts());
  store->marker_key_ = MarkerKey(key);  // from here on, a close writes the marker
  return store;
}

Result<std::unique_ptr<Buffer>> Buffer::Open(const std::string& path, const base::SecretBytes& key,
                                             const base::Logger& log, const BufferOpenOptions& options,
                                             BufferOpenReport* report) {
  BufferOpenReport scratch;
  BufferOpenReport& rep = report != nullptr ? *report : scratch;
  rep = BufferOpenReport();
  FERRY_RETURN_IF_ERROR(platform::EnsureDir(platform::DirName(path)));
  auto lock = platform::LockFile(path + ".lock");
  if (!lock.ok()) return Status::Storage("cannot open the buffer " + path + ": " + lock.status().message());
  const std::string kcv_path = path + ".keycheck";
  const std::string kcv = KeyCheckLine(key);
  auto finish = [&](std::unique_ptr<Buffer> b) -> Result<std::unique_ptr<Buffer>> {
    if (ReadKeyCheck(kcv_path, key) != KeyCheck::kMatch) {
      Status w = platform::WriteFileAtomic(kcv_path, kcv);
      if (!w.ok()) log.Warn("cannot write the buffer's key check: " + w.message());
    }
    if (rep.consent_lost) FERRY_RETURN_IF_ERROR(b->PutMeta(kMetaConsentLost, std::to_string(base::NowMs())));
    b->lock_ = std::move(lock).value();
    Status r = platform::EnsureReserve(path + ".reserve", kReserveBytes);
    if (!r.ok()) log.Warn("no disk space reserve beside the buffer: " + r.message());
    return b;
  };

  bool existed = Exists(path);
  KeyCheck check = existed ? ReadKeyCheck(kcv_path, key) : KeyCheck::kAbsent;
  // The key is known to be the buffer's when the key check agrees, or (no key check, or a stale one) when it reads the
  // file's first page. Otherwise SQLite never opens the file for writing: a healthy file stays exactly as it is.
  bool key_good = !existed || check == KeyCheck::kMatch || KeyReads(path, key);
  Status why;
  if (key_good) {
    std::string marker_key = MarkerKey(key);
    bool clean_close = existed && TakeCleanMarker(path, marker_key);
    base::WipeString(marker_key);
    auto opened = OpenChecked(path, key, log, options, clean_close);
    if (opened.ok()) return finish(std::move(opened).value());
    why = opened.status();
    if (!why.Is(base::Code::kCorruption)) {
      return Status::Storage("cannot open the buffer " + path + ": " + why.message());
    }
    if (!existed) return Status::Storage("cannot create the buffer " + path + ": " + why.message());
    rep.reason = why.message();
  }
  if (!key_good) {
    // A wrong or lost key (or a file whose key is unknown): the file may be healthy; it is never touched by default.
    std::string what = check == KeyCheck::kMismatch ? "the key is not the buffer's key (its key check differs)"
                                                    : "the file cannot be read with this key and has no key check";
    if (options.unreadable == UnreadablePolicy::kFail) {
      return Status::Corruption("the buffer " + path + " cannot be read: " + what + "; nothing was changed");
    }
    auto moved = platform::MoveAside(path, "unreadable");
    if (!moved.ok()) return Status::Storage("cannot move aside the unreadable buffer: " + moved.status().message());
    (void)unlink((path + ".clean").c_str());  // a marker of the old file (keyed with another key) is of no use
    rep.reset = true;
    rep.consent_lost = true;
    rep.set_aside = moved.value();
    rep.reason = what;
    log.Error("the buffer " + path + " cannot be read: " + what + "; as the app chose, moved it to " + moved.value() +
              " and started a fresh buffer (its events and consent are not available)");
  } else {
    // The key is right: the file is damaged. Keep what can be read, then set the file aside.
    Salvage salvage = ReadDamaged(path, key);
    auto moved = platform::MoveAside(path, "corrupt");
    if (!moved.ok()) return Status::Storage("cannot move aside the damaged buffer: " + moved.status().message());
    rep.salvaged = true;
    rep.salvaged_events = static_cast<int64_t>(salvage.events.size());
    rep.consent_lost = !salvage.consent_read;
    rep.set_aside = moved.value();
    auto fresh = OpenChecked(path, key, log, options);
    if (!fresh.ok()) return Status::Storage("cannot create the buffer " + path + ": " + fresh.status().message());
    Status w = WriteSalvage(fresh.value()->db_, salvage);
    if (!w.ok()) return Status::Storage("cannot write what was salvaged into " + path + ": " + w.message());
    FERRY_RETURN_IF_ERROR(fresh.value()->LoadCounts());
    log.Error("the buffer " + path + " is damaged (" + rep.reason + "); salvaged " +
              std::to_string(rep.salvaged_events) + " events" +
              (rep.consent_lost ? " (its consent records could not be read)" : "") + " and moved it to " +
              moved.value());
    return finish(std::move(fresh).value());
  }
  auto fresh = OpenChecked(path, key, log, options);
  if (!fresh.ok()) return Status::Storage("cannot create the buffer " + path + ": " + fresh.status().message());
  return finish(std::move(fresh).value());
}

Status Buffer::Migrate() {
  int64_t v = db_.UserVersion();
  if (v < 0) return Status::Corruption("cannot read the schema version: " + db_.ErrMsg());
  if (v > kSchemaVersion) {
    // A newer library wrote it (an app downgrade): refused, never moved or salvaged.
    return Status::Storage("schema version " + std::to_string(v) + " is newer than this library");
  }
  if (v < 1) {
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(db_.Exec(kSchemaV1));
    FERRY_RETURN_IF_ERROR(db_.SetUserVersion(1));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  if (v < 2) {
    // 2: the receipt id of the consent record behind each consent state.
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(db_.Exec("ALTER TABLE consent ADD COLUMN receipt TEXT NOT NULL DEFAULT '';"));
    FERRY_RETURN_IF_ERROR(db_.SetUserVersion(2));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  if (v < 3) {
    // 3: events compressed with zstd against a dictionary of the buffer's own (event_codec.h); existing rows stay
    // TEXT and are read as they are.
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(db_.Exec("CREATE TABLE IF NOT EXISTS dicts(id INTEGER PRIMARY KEY, bytes BLOB NOT NULL);"));
    FERRY_RETURN_IF_ERROR(db_.SetUserVersion(3));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  if (v < 4) {
    // 4: the method of the consent record behind each state and the notice version it was made under (re-consent on
    // a notice change, guardian consent for minors). Rows from before say "" for both.
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(AddMissingColumns(
        db_, "consent", {{"method", "TEXT NOT NULL DEFAULT ''"}, {"notice_version", "TEXT NOT NULL DEFAULT ''"}}));
    FERRY_RETURN_IF_ERROR(db_.SetUserVersion(4));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  if (v < 5) {
    // 5: each dictionary's scope (the ids its content carries), the number of events its tables came from, and the
    // seq of the first event that can use it (NULL for older ones: their events all come before the next one's).
    base::Transaction tx(db_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    FERRY_RETURN_IF_ERROR(AddMissingColumns(
        db_, "dicts", {{"first_seq", "INTEGER"}, {"scope", "TEXT"}, {"samples", "INTEGER NOT NULL DEFAULT 0"}}));
    (void)db_.Exec("DELETE FROM meta WHERE k = 'dictionary_samples';");  // schema 4's mark of its one refresh
    FERRY_RETURN_IF_ERROR(db_.SetUserVersion(5));
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  // Future migrations: if (v < 6) { ... SetUserVersion(6) } in one transaction each.
  FERRY_RETURN_IF_ERROR(LoadDictionaries(db_, &codec_));
  {
    // The current dictionary's scope: the first append of events of that scope uses it (a dictionary from before
    // schema 5 has none, and is replaced at the first append).
    dict_anons_ = ScopeAnons(db_);
    auto st = db_.Prepare("SELECT scope, samples, (SELECT count(*) FROM dicts) FROM dicts ORDER BY id DESC LIMIT 1");
    if (!st.ok()) return st.status();
    if (st->Step()) {
      dictionary_rows_ = st->Int(2);
      Scope scope = st->IsNull(0) ? Scope() : ParseScope(st->Text(0));
      if (scope.ok && codec_.has_current()) {
        dict_anon_ = std::move(scope.anon);
        dict_user_ = std::move(scope.user);
        dict_session_ = std::move(scope.session);
        dict_scope_known_ = true;
        dictionary_refresh_pending_ = st->Int(1) < static_cast<int64_t>(kDictionarySamples);
      }
    }
    FERRY_RETURN_IF_ERROR(st->status());
    PublishDictionaryLocked();
  }

  // A commit's events go in one statement: on SQLCipher 3.4.1 a statement per row cost each row the statement's own
  // work and a read and rewrite of sqlite_sequence (AUTOINCREMENT). In the rows' order, so seqs follow the queue.
  // OR FAIL: a failure leaves the rows before it to the transaction, which every caller rolls back then. The default
  // (ABORT) would make SQLite keep a statement journal to undo the statement alone: an encrypted copy of every page
  // it changes, which made a commit of a few events (SYNC) cost more than one statement per row.
  auto pending = base::MemoryRows::Register(db_, "ferry_pending_events",
                                            {"purpose", "created_ms", "size", "user_id", "anonymous_id", "body"});
  if (!pending.ok()) return pending.status();
  pending_ = std::move(pending).value();
  auto ins = db_.Prepare(
      "INSERT OR FAIL INTO events(purpose, created_ms, size, user_id, anonymous_id, body) "
      "SELECT purpose, created_ms, size, user_id, anonymous_id, body FROM ferry_pending_events ORDER BY rowid");
  if (!ins.ok()) return ins.status();
  insert_ = std::move(ins).value();
  return Status::Ok();
}

Status Buffer::QuickCheck() {
  // Reads every page (and checks its HMAC): a truncated or damaged file is found at open, not mid-upload.
  auto st = db_.Prepare("PRAGMA quick_check;");
  if (!st.ok()) return st.status().Is(base::Code::kStorage) ? Status::Corruption(st.status().message()) : st.status();
  std::string first;
  if (st->Step()) first = st->Text(0);
  if (!st->status().ok()) return Status::Corruption("quick_check: " + st->status().message());
  if (first != "ok") return Status::Corruption("quick_check: " + first);
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

bool Buffer::LoadCountsAtClose() {
  auto st = db_.Prepare("SELECT v FROM meta WHERE k = ?");
  if (!st.ok()) return false;
  st->Bind(1, kMetaCountsAtClose);
  if (!st->Step()) return false;
  auto j = nlohmann::json::parse(st->TextView(0), nullptr, false);
  if (!j.is_object()) return false;
  std::map<std::string, PurposeCount> counts;
  int64_t total = 0;
  for (const auto& [purpose, c] : j.items()) {
    if (!c.is_array() || c.size() != 2 || !c[0].is_number_integer() || !c[1].is_number_integer()) return false;
    counts[purpose] = PurposeCount{c[0].get<int64_t>(), c[1].get<int64_t>()};
    total += c[1].get<int64_t>();
  }
  counts_ = std::move(counts);
  total_bytes_ = total;
  return true;
}

void Buffer::CloseClean() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!db_ || marker_key_.empty()) return;
  bool clean = !damaged_.load();
  if (clean) {
    // The counts, so that the next open need not count the events (trusted only with the marker).
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [purpose, c] : counts_) j[purpose] = {c.events, c.bytes};
    auto st = db_.Prepare("INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)");
    clean = st.ok() && st->Bind(1, kMetaCountsAtClose).Bind(2, j.dump()).Run().ok();
    // The WAL copied into the file here rather than by the next open (which then has nothing to write or sync).
    if (clean) (void)db_.Exec("PRAGMA wal_checkpoint(PASSIVE);");
  }
  insert_ = base::Stmt();
  db_ = base::Db();  // closes the connection (and checkpoints): the file is final
  if (clean) {
    // File times come from a coarse clock (a tick of 1-10 ms): a write in the tick of the close's last write would
    // leave the same change time. Wait for the next tick (at most a few ms), so that any later change shows.
    WaitPastChangeTime({path_, path_ + "-wal"});
    Status w = platform::WriteFileAtomic(path_ + ".clean", CleanLine(path_, marker_key_));
    if (!w.ok())
      log_.Warn("cannot write the buffer's clean-close marker (the next open checks every page): " + w.message());
  }
  base::WipeString(marker_key_);
}

void Buffer::Account(const std::string& purpose, int64_t events, int64_t bytes) {
  PurposeCount& c = counts_[purpose];
  c.events += events;
  c.bytes += bytes;
  total_bytes_ += bytes;
  if (c.events <= 0) counts_.erase(purpose);
}

void Buffer::StageLocked(const NewEvent& e, const std::string_view* stored, bool anon_of_dictionary) {
  pending_->AddRow();
  pending_->SetText(0, e.purpose);
  pending_->SetInt(1, e.created_ms);
  pending_->SetInt(2, static_cast<int64_t>(e.body.size()) + kRowOverhead);
  if (!e.user_id.empty()) pending_->SetText(3, e.user_id);  // else NULL
  if (!anon_of_dictionary) pending_->SetText(4, e.anonymous_id);
  if (stored != nullptr) {
    pending_->SetBlob(5, *stored);
  } else {
    pending_->SetText(5, e.body);
  }
}

Status Buffer::StoreStagedLocked() {
  const int64_t staged = static_cast<int64_t>(pending_->rows());
  Status s = insert_.Run();
  pending_->Clear();  // its views are of the caller's events and of stored_, which may change from here on
  FERRY_RETURN_IF_ERROR(s);
  if (db_.Changes() != staged) {
    return Status::Storage("stored " + std::to_string(db_.Changes()) + " of " + std::to_string(staged) + " events");
  }
  return Status::Ok();
}

Status Buffer::Append(const std::vector<NewEvent>& events) { return Seen(AppendImpl(events)); }

Status Buffer::AppendImpl(const std::vector<NewEvent>& events) {
  if (events.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  dictionary_tokens_ =
      std::min(kDictionaryBurst, dictionary_tokens_ + static_cast<double>(events.size()) / kEventsPerDictionary);
  if (!SameScopeLocked(events.front())) {
    // A new scope, or none known: a dictionary for it (a known scope's replacement spends a token).
    if (!codec_.has_current() || !dict_scope_known_) {
      MakeDictionaryLocked(events);
    } else if (dictionary_tokens_ >= 1) {
      dictionary_tokens_ -= 1;
      MakeDictionaryLocked(events);
    }
  } else if (dictionary_refresh_pending_) {
    CollectDictionarySamplesLocked(events);
  }
  // Each event's stored form: made ahead, or compressed here into stored_ (one string for the whole commit, which
  // keeps its memory for the next: a string per row would keep zstd's bound, ~4x the form, for each), or its text.
  stored_.clear();
  forms_.clear();
  for (const NewEvent& e : events) {
    // Compressed, fewer pages to encrypt and write; the text when zstd fails (it is read either way). The
    // anonymousId of the dictionary's scope is not repeated in the row: NULL says "the dictionary's" (EventsFor).
    // A stored form made ahead (Precompress) stands while its dictionary is the current one.
    Form f;
    if (!e.stored.empty() && codec_.has_current() && e.stored_generation == codec_.generation()) {
      f.kind = Form::kMadeAhead;
    } else if (codec_.Compress(e.body, &compressed_)) {
      f.kind = Form::kHere;
      f.offset = stored_.size();
      f.size = compressed_.size();
      stored_ += compressed_;
    }
    forms_.push_back(f);
  }
  pending_->Clear();
  for (size_t i = 0; i < events.size(); ++i) {
    const NewEvent& e = events[i];
    const Form& f = forms_[i];
    if (f.kind == Form::kText) {
      StageLocked(e, nullptr, false);
      continue;
    }
    const std::string_view form =
        f.kind == Form::kMadeAhead ? std::string_view(e.stored) : std::string_view(stored_).substr(f.offset, f.size);
    StageLocked(e, &form, dict_scope_known_ && !e.anonymous_id.empty() && e.anonymous_id == dict_anon_);
  }
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  FERRY_RETURN_IF_ERROR(StoreStagedLocked());
  FERRY_RETURN_IF_ERROR(tx.Commit());
  for (const NewEvent& e : events) Account(e.purpose, 1, static_cast<int64_t>(e.body.size()) + kRowOverhead);
  return Status::Ok();
}

namespace {

// The session id in an event's context (the client writes "sessionId":"<uuid>"); empty when there is none.
std::string_view SessionOf(std::string_view body) {
  static constexpr std::string_view kKey = "\"sessionId\":\"";
  size_t at = body.rfind(kKey);
  if (at == std::string_view::npos) return {};
  at += kKey.size();
  size_t end = body.find('"', at);
  if (end == std::string_view::npos || end - at > 64) return {};
  return body.substr(at, end - at);
}

}  // namespace

void Buffer::Precompress(EventCodec::Precompressor* with, std::vector<NewEvent>& events) {
  Published now;
  {
    std::lock_guard<std::mutex> lock(published_mu_);
    if (!published_.dict.cdict) return;
    now = published_;
  }
  for (NewEvent& e : events) {
    e.stored.clear();
    e.stored_generation = 0;
    if (e.anonymous_id != now.anon || e.user_id != now.user || SessionOf(e.body) != now.session) continue;
    if (with->Compress(now.dict, e.body, &e.stored)) {
      e.stored_generation = now.dict.generation;
    } else {
      e.stored.clear();
    }
  }
  with->Release();
}

void Buffer::PublishDictionaryLocked() {
  Published next;
  if (codec_.has_current() && dict_scope_known_) {
    next.dict = codec_.current();
    next.anon = dict_anon_;
    next.user = dict_user_;
    next.session = dict_session_;
  }
  std::lock_guard<std::mutex> lock(published_mu_);
  published_ = std::move(next);
}

bool Buffer::SameScopeLocked(const NewEvent& e) const {
  return codec_.has_current() && dict_scope_known_ && e.anonymous_id == dict_anon_ && e.user_id == dict_user_ &&
         SessionOf(e.body) == dict_session_;
}

void Buffer::MakeDictionaryLocked(const std::vector<NewEvent>& events) {
  const NewEvent& first = events.front();
  std::vector<std::string> samples;
  const std::string_view session = SessionOf(first.body);
  for (const NewEvent& e : events) {
    if (samples.size() >= kDictionarySamples) break;
    if (e.anonymous_id == first.anonymous_id && e.user_id == first.user_id && SessionOf(e.body) == session)
      samples.push_back(e.body);
  }
  const size_t n = samples.size();
  if (!InstallDictionaryLocked(EventCodec::DictionaryFrom(first.body, samples), first.anonymous_id, first.user_id,
                               std::string(session), n))
    return;
  dictionary_samples_.clear();
  dictionary_refresh_pending_ = n < kDictionarySamples;
}

void Buffer::CollectDictionarySamplesLocked(const std::vector<NewEvent>& events) {
  for (const NewEvent& e : events) {
    if (dictionary_samples_.size() >= kDictionarySamples) break;
    if (SameScopeLocked(e)) dictionary_samples_.push_back(e.body);
  }
  if (dictionary_samples_.size() < kDictionarySamples) return;
  dictionary_refresh_pending_ = false;  // once per dictionary
  std::vector<std::string> samples = std::move(dictionary_samples_);
  dictionary_samples_ = {};
  std::string bytes = EventCodec::DictionaryFrom(samples.back(), samples);
  if (!EventCodec::HasTables(bytes)) return;
  (void)InstallDictionaryLocked(bytes, dict_anon_, dict_user_, dict_session_, samples.size());
}

bool Buffer::InstallDictionaryLocked(const std::string& bytes, std::string anon, std::string user, std::string session,
                                     size_t samples) {
  // The next event's seq (AUTOINCREMENT: one past the largest ever given) is the first that can use it.
  auto st = db_.Prepare(
      "INSERT INTO dicts(bytes, first_seq, scope, samples) "
      "VALUES(?, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + 1, ?, ?)");
  std::string scope = anon + "\n" + user + "\n" + session;
  Status s = st.status();
  if (s.ok())
    s = st->BindBlob(1, bytes.data(), bytes.size()).Bind(2, scope).Bind(3, static_cast<int64_t>(samples)).Run();
  if (!s.ok()) {
    log_.Warn("no new dictionary for the buffer's events (" + s.message() + ")");
    return false;
  }
  const int64_t id = db_.LastInsertRowid();
  ++dictionary_rows_;
  s = codec_.AddDictionary(id, bytes, true);
  if (!s.ok()) {
    // No event may use the old one from this row's first seq on: the row goes, or else no dictionary is current.
    log_.Warn("no new dictionary for the buffer's events (" + s.message() + ")");
    auto del = db_.Prepare("DELETE FROM dicts WHERE id = ?");
    if (del.ok() && del->Bind(1, id).Run().ok()) {
      --dictionary_rows_;
    } else {
      codec_.DropCurrent();
    }
    if (!codec_.has_current()) dict_scope_known_ = false;
    PublishDictionaryLocked();
    return false;
  }
  dict_anons_[id] = anon;
  dict_anon_ = std::move(anon);
  dict_user_ = std::move(user);
  dict_session_ = std::move(session);
  dict_scope_known_ = true;
  PublishDictionaryLocked();
  return true;
}

void Buffer::CollectDictionariesLocked() {
  if (dictionary_rows_ <= 1) return;
  // A dictionary other than the current one whose range of seqs holds no event any more.
  auto st = db_.Prepare(
      "SELECT d.id FROM dicts d WHERE d.id <> ?1 AND NOT EXISTS (SELECT 1 FROM events WHERE seq >= "
      "coalesce(d.first_seq, 0) AND seq < coalesce((SELECT min(n.first_seq) FROM dicts n WHERE n.id > d.id AND "
      "n.first_seq IS NOT NULL), 9223372036854775807))");
  if (!st.ok()) return;
  st->Bind(1, codec_.current_id());
  std::vector<int64_t> unused;
  while (st->Step()) unused.push_back(st->Int(0));
  if (!st->status().ok() || unused.empty()) return;
  auto del = db_.Prepare("DELETE FROM dicts WHERE id = ?");
  if (!del.ok()) return;
  for (int64_t id : unused) {
    if (!del->Bind(1, id).Run().ok()) return;
    codec_.RemoveDictionary(id);
    dict_anons_.erase(id);
    --dictionary_rows_;
  }
}

Result<std::vector<QueuedEvent>> Buffer::NextBatch(const std::set<std::string>& purposes, size_t max_events,
                                                   size_t max_bytes, int64_t after_seq) {
  return Seen(NextBatchImpl(purposes, max_events, max_bytes, after_seq));
}

Result<std::vector<QueuedEvent>> Buffer::NextBatchImpl(const std::set<std::string>& purposes, size_t max_events,
                                                       size_t max_bytes, int64_t after_seq) {
  std::vector<QueuedEvent> out;
  if (purposes.empty() || max_events == 0) return out;
  std::lock_guard<std::mutex> lock(mu_);
  // Which events: the first max_events of each purpose from its index (events_by_purpose holds seq and size: no row is
  // read), merged by seq. One query over all the purposes ("purpose IN (...) ORDER BY seq LIMIT n") cannot take the
  // index's order across several purposes: SQLite sorted every queued row of them, bodies included, for each batch.
  struct Pick {
    int64_t seq;
    const std::string* purpose;
    int64_t size;
  };
  std::vector<Pick> picks;
  {
    auto st = db_.Prepare("SELECT seq, size FROM events WHERE purpose = ? AND seq > ? ORDER BY seq LIMIT ?");
    if (!st.ok()) return st.status();
    for (const std::string& p : purposes) {
      st->Bind(1, p).Bind(2, after_seq).Bind(3, static_cast<int64_t>(max_events));
      while (st->Step()) picks.push_back(Pick{st->Int(0), &p, st->Int(1)});
      if (!st->status().ok()) return st->status();
      st->Reset();
    }
  }
  if (picks.empty()) return out;
  std::sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) { return a.seq < b.seq; });
  if (picks.size() > max_events) picks.resize(max_events);
  // Their bodies: one range of rows when the picked seqs are about all there is between the first and the last (the
  // usual case: every queued event is sendable), else one row at a time.
  const int64_t first = picks.front().seq, last = picks.back().seq;
  const bool dense = static_cast<uint64_t>(last - first) < 2 * static_cast<uint64_t>(picks.size());
  auto st = db_.Prepare(dense ? "SELECT seq, body FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq"
                              : "SELECT seq, body FROM events WHERE seq = ?");
  if (!st.ok()) return st.status();
  size_t bytes = 0;
  size_t next = 0;  // the pick the next row must match
  bool full = false;
  auto take = [&]() {
    const int64_t seq = st->Int(0);
    while (next < picks.size() && picks[next].seq < seq) ++next;  // a row gone since the index was read: skipped
    if (next == picks.size() || picks[next].seq != seq) return;   // not picked (another purpose)
    const Pick& pick = picks[next++];
    auto body = BodyJson(st.value(), 1, &codec_);
    if (!body.ok()) {
      // (SQLCipher's page HMAC makes this a dictionary lost with a damaged page, not a bit flip in the row.)
      log_.Error("buffered event " + std::to_string(seq) + " cannot be read: " + body.status().message());
      damaged_.store(true);
      return;
    }
    if (!out.empty() && bytes + body->size() > max_bytes) {
      full = true;
      return;
    }
    bytes += body->size();
    out.push_back(QueuedEvent{seq, *pick.purpose, pick.size, std::move(body).value()});
  };
  if (dense) {
    st->Bind(1, first).Bind(2, last);
    while (!full && st->Step()) take();
    if (!st->status().ok()) return st->status();
  } else {
    for (size_t k = 0; k < picks.size() && !full; ++k) {
      st->Bind(1, picks[k].seq);
      if (st->Step()) take();
      if (!st->status().ok()) return st->status();
      st->Reset();
    }
  }
  return out;
}

Result<int64_t> Buffer::MaxSeq(const std::set<std::string>& purposes) { return Seen(MaxSeqImpl(purposes)); }

Result<int64_t> Buffer::MaxSeqImpl(const std::set<std::string>& purposes) {
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
  return Seen(AnyUpToImpl(purposes, max_seq));
}

Result<bool> Buffer::AnyUpToImpl(const std::set<std::string>& purposes, int64_t max_seq) {
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
  // A batch is the oldest events of its purposes in seq order: runs of consecutive seqs (a gap where an event of
  // another purpose lies between). Each run goes in one range delete, which holds exactly the run's seqs. When a run
  // finds fewer rows than it names (some were deleted meanwhile: a purge, an erasure), the transaction is rolled back
  // and the batch deleted row by row, so that only the events that were there are counted.
  std::vector<const QueuedEvent*> sorted;
  sorted.reserve(events.size());
  for (const QueuedEvent& e : events) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const QueuedEvent* a, const QueuedEvent* b) { return a->seq < b->seq; });
  std::vector<const QueuedEvent*> gone;
  bool full = false;         // the attempt failed for want of disk space (read before the rollback clears the error)
  bool by_ranges = true;     // false once a range found a row missing
  bool short_range = false;  // ... in this attempt (rolled back: tx is not committed)
  auto attempt = [&]() -> Status {
    gone.clear();
    short_range = false;
    base::Transaction tx(db_);
    Status s = tx.begin_status();
    if (by_ranges) {
      auto st = db_.Prepare("DELETE FROM events WHERE seq >= ? AND seq <= ?");
      if (s.ok() && !st.ok()) s = st.status();
      for (size_t i = 0; s.ok() && i < sorted.size();) {
        size_t j = i + 1;  // the run [i, j): consecutive seqs
        while (j < sorted.size() && sorted[j]->seq == sorted[j - 1]->seq + 1) ++j;
        st->Bind(1, sorted[i]->seq);
        st->Bind(2, sorted[j - 1]->seq);
        s = st->Run();
        if (s.ok() && db_.Changes() != static_cast<int64_t>(j - i)) {
          by_ranges = false;
          short_range = true;
          return Status::Ok();
        }
        i = j;
      }
      for (const QueuedEvent* e : sorted) gone.push_back(e);
    } else {
      auto st = db_.Prepare("DELETE FROM events WHERE seq = ?");
      if (s.ok() && !st.ok()) s = st.status();
      for (size_t i = 0; s.ok() && i < sorted.size(); ++i) {
        st->Bind(1, sorted[i]->seq);
        s = st->Run();
        if (s.ok() && db_.Changes() == 1) gone.push_back(sorted[i]);
      }
    }
    if (s.ok()) s = tx.Commit();
    full = !s.ok() && (sqlite3_errcode(db_.get()) & 0xff) == SQLITE_FULL;
    return s;
  };
  auto run = [&]() -> Status {
    Status s = attempt();
    if (s.ok() && short_range) s = attempt();  // a range came short: again, row by row
    return s;
  };
  Status s = run();
  if (full) {
    // A full disk: the WAL cannot grow. Once its frames are copied into the file, the next commit rewrites the WAL
    // from its start, in space it already has: sent events can still be deleted, so the buffer drains.
    (void)db_.Exec("PRAGMA wal_checkpoint(PASSIVE);");
    s = run();
    // Still full: give back the reserve kept beside the buffer for this (made again at the next open).
    if (full && platform::ReleaseReserve(path_ + ".reserve")) {
      log_.Warn("the disk is full: released the buffer's reserve " + path_ + ".reserve to delete sent events");
      s = run();
    }
  }
  FERRY_RETURN_IF_ERROR(s);
  for (const QueuedEvent* e : gone) Account(e->purpose, -1, -e->size);
  CollectDictionariesLocked();
  return Status::Ok();
}

Result<int64_t> Buffer::SetConsent(const std::string& purpose, const ConsentRow& row, bool purge,
                                   const NewEvent* record) {
  return Seen(SetConsentImpl(purpose, row, purge, record));
}

Result<int64_t> Buffer::SetConsentImpl(const std::string& purpose, const ConsentRow& row, bool purge,
                                       const NewEvent* record) {
  std::lock_guard<std::mutex> lock(mu_);
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto up = db_.Prepare(
      "INSERT OR REPLACE INTO consent(purpose, state, explicit, updated_ms, receipt, method, notice_version) "
      "VALUES(?,?,?,?,?,?,?)");
  if (!up.ok()) return up.status();
  up->Bind(1, purpose)
      .Bind(2, static_cast<int64_t>(row.state))
      .Bind(3, int64_t{row.explicit_choice ? 1 : 0})
      .Bind(4, row.updated_ms)
      .Bind(5, row.receipt)
      .Bind(6, row.method)
      .Bind(7, row.notice_version);
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
    pending_->Clear();
    StageLocked(*record, nullptr, false);  // a consent record is kept as text
    FERRY_RETURN_IF_ERROR(StoreStagedLocked());
  }
  FERRY_RETURN_IF_ERROR(tx.Commit());
  if (purged > 0) Account(purpose, -purged, -purged_bytes);
  if (record != nullptr) Account(record->purpose, 1, static_cast<int64_t>(record->body.size()) + kRowOverhead);
  return purged;
}

std::map<std::string, ConsentRow> Buffer::LoadConsent() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, ConsentRow> out;
  auto st = db_.Prepare("SELECT purpose, state, explicit, updated_ms, receipt, method, notice_version FROM consent");
  if (!st.ok()) return out;
  while (st->Step()) {
    int64_t s = st->Int(1);
    ConsentRow r;
    r.state = s == 1 ? Consent::kGranted : s == 2 ? Consent::kDenied : Consent::kPending;
    r.explicit_choice = st->Int(2) != 0;
    r.updated_ms = st->Int(3);
    r.receipt = st->Text(4);
    r.method = st->Text(5);
    r.notice_version = st->Text(6);
    out[st->Text(0)] = r;
  }
  return out;
}

Status Buffer::ApplyDefaultConsent(const std::map<std::string, Consent>& defaults) {
  std::lock_guard<std::mutex> lock(mu_);
  {
    // Nothing to write when the rows are already these defaults (no write at open: a full disk can still open).
    auto st = db_.Prepare("SELECT purpose, state, explicit FROM consent");
    if (!st.ok()) return st.status();
    std::map<std::string, int64_t> have;
    std::set<std::string> chosen;
    while (st->Step()) {
      if (st->Int(2) != 0) {
        chosen.insert(st->Text(0));
      } else {
        have[st->Text(0)] = st->Int(1);
      }
    }
    FERRY_RETURN_IF_ERROR(st->status());
    std::map<std::string, int64_t> want;
    for (const auto& [purpose, state] : defaults) {
      if (!chosen.count(purpose)) want[purpose] = static_cast<int64_t>(state);
    }
    if (want == have) return Status::Ok();
  }
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

Result<int64_t> Buffer::DeleteOlder(const std::string& purpose, int64_t min_created_ms) {
  return Seen(DeleteOlderImpl(purpose, min_created_ms));
}

Result<int64_t> Buffer::DeleteOlderImpl(const std::string& purpose, int64_t min_created_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(purpose);
  if (it == counts_.end() || it->second.events == 0) return int64_t{0};
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  int64_t n = 0, bytes = 0;
  {
    auto sum = db_.Prepare("SELECT count(*), coalesce(sum(size), 0) FROM events WHERE purpose = ? AND created_ms < ?");
    if (!sum.ok()) return sum.status();
    sum->Bind(1, purpose).Bind(2, min_created_ms);
    if (sum->Step()) {
      n = sum->Int(0);
      bytes = sum->Int(1);
    }
    FERRY_RETURN_IF_ERROR(sum->status());
  }
  if (n == 0) return int64_t{0};
  auto del = db_.Prepare("DELETE FROM events WHERE purpose = ? AND created_ms < ?");
  if (!del.ok()) return del.status();
  del->Bind(1, purpose).Bind(2, min_created_ms);
  FERRY_RETURN_IF_ERROR(del->Run());
  FERRY_RETURN_IF_ERROR(tx.Commit());
  Account(purpose, -n, -bytes);
  return n;
}

Result<Evicted> Buffer::Evict(int64_t max_bytes, int64_t min_created_ms) {
  return Seen(EvictImpl(max_bytes, min_created_ms));
}

Result<Evicted> Buffer::EvictImpl(int64_t max_bytes, int64_t min_created_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto ev = EvictLocked(max_bytes, min_created_ms);
  if (ev.ok()) CollectDictionariesLocked();
  return ev;
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

Result<int64_t> Buffer::DeleteAllEvents() { return Seen(DeleteAllEventsImpl()); }

Result<int64_t> Buffer::DeleteAllEventsImpl() {
  std::lock_guard<std::mutex> lock(mu_);
  // The dictionaries go with the events: their content carries the ids of the events they were made from.
  base::Transaction tx(db_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  FERRY_RETURN_IF_ERROR(db_.Exec("DELETE FROM events"));
  int64_t n = db_.Changes();
  FERRY_RETURN_IF_ERROR(db_.Exec("DELETE FROM dicts"));
  FERRY_RETURN_IF_ERROR(tx.Commit());
  codec_.Clear();
  dict_anons_.clear();
  dict_scope_known_ = false;
  PublishDictionaryLocked();
  dictionary_refresh_pending_ = false;
  for (std::string& e : dictionary_samples_) base::WipeString(e);
  dictionary_samples_.clear();
  dictionary_rows_ = 0;
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
  return Seen(EventsForImpl(user_id, anon_ids));
}

Result<std::vector<std::string>> Buffer::EventsForImpl(const std::string& user_id,
                                                       const std::set<std::string>& anon_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  // A compressed row whose anonymousId is NULL has its dictionary's (Append): read when that one is asked for.
  std::string sql = "SELECT body, anonymous_id IS NULL, user_id FROM events WHERE ";
  sql += user_id.empty() ? "0" : "user_id = ?";
  if (!anon_ids.empty()) sql += " OR anonymous_id IN (" + Placeholders(anon_ids.size()) + ") OR anonymous_id IS NULL";
  sql += " ORDER BY seq";
  auto st = db_.Prepare(sql);
  if (!st.ok()) return st.status();
  int i = 1;
  if (!user_id.empty()) st->Bind(i++, user_id);
  for (const auto& a : anon_ids) st->Bind(i++, a);
  while (st->Step()) {
    if (st->Int(1) != 0 && (user_id.empty() || st->TextView(2) != user_id)) {
      auto anon = dict_anons_.find(EventCodec::DictionaryIdOf(ColumnBytes(st.value(), 0)));
      if (anon == dict_anons_.end() || anon_ids.count(anon->second) == 0) continue;
    }
    auto body = BodyJson(st.value(), 0, &codec_);
    if (!body.ok()) return body.status();
    out.push_back(std::move(body).value());
  }
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
