// What only the embedded engine has, beyond the shared conformance suite: its key file, the encrypted file and its
// pages, its schema version, and the write-ahead log after an erasure (proved on the decrypted database pages).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "collector/engines/sqlite/body_codec.h"
#include "collector/engines/sqlite/sqlite_store.h"
#include "lib/base/sqlite.h"
#include "lib/base/time.h"
#include "tests/support/power_cut_vfs.h"
#include "tests/unit/store_conformance/store_env.h"

namespace ferry::collector::conformance {
namespace {

// Text zstd barely shrinks (the store compresses event bodies): ~6 bits a character, new at every call.
std::string RandomText(size_t n) {
  static std::mt19937 rng(42);
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string s(n, ' ');
  for (char& c : s) c = kAlphabet[rng() % 64];
  return s;
}

// A fresh data directory (removed at the end).
class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    bool skip = false;
    ASSERT_TRUE(backend_.Setup(&error, &skip)) << error;
  }
  const std::string& dir() const { return backend_.dir(); }
  // Opens the store in dir() with a project "shop" (its id in *shop); null, and the test failed, when it cannot.
  std::unique_ptr<Store> OpenShop(int64_t* shop) {
    auto opened = SqliteStore::Open(dir());
    if (!opened.ok()) {
      ADD_FAILURE() << opened.status().ToString();
      return nullptr;
    }
    std::unique_ptr<Store> store = std::move(opened).value();
    auto key = store->CreateWriteKey("shop");
    if (!key.ok()) {
      ADD_FAILURE() << key.status().ToString();
      return nullptr;
    }
    auto info = store->LookupWriteKey(*key);
    if (!info.ok() || !info->has_value()) {
      ADD_FAILURE() << "no write key for shop";
      return nullptr;
    }
    *shop = (*info)->project_id;
    return store;
  }
  Backend backend_{"sqlite"};
};

TEST_F(SqliteStoreTest, CreatesKeyFileWithMode0600AndSchema) {
  auto store = SqliteStore::Open(dir());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat((dir() + "/collector.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ((*store)->SchemaVersion(), kSchemaVersion);
  EXPECT_TRUE((*store)->Check().ok());
}

// An answered batch is on the disk, not only in the operating system's cache: the power goes right after the last
// answer (every write since its file's last sync is dropped, tests/support/power_cut_vfs.h), and the store holds
// every accepted event, the project and its write key.
TEST_F(SqliteStoreTest, AnsweredBatchesSurviveAPowerCut) {
  size_t accepted = 0;
  std::string write_key;
  {
    testsupport::PowerCutVfs vfs;
    ASSERT_TRUE(vfs.installed());
    {
      auto store = SqliteStore::Open(dir());
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      auto key = (*store)->CreateWriteKey("shop");
      ASSERT_TRUE(key.ok()) << key.status().ToString();
      write_key = *key;
      auto info = (*store)->LookupWriteKey(*key);
      ASSERT_TRUE(info.ok() && info->has_value());
      const int64_t shop = (*info)->project_id;
      for (int b = 0, n = 0; b < 5; ++b) {
        std::vector<StoredEvent> events;
        for (int i = 0; i < 40; ++i, ++n) {
          events.push_back(MakeEvent("pc-" + std::to_string(n), "track", "", "anon-" + std::to_string(n % 7),
                                     1700000000000 + n, 1700000000000 + n, {{"n", n}}));
        }
        auto outcomes = PutEvents(**store, shop, std::move(events));
        accepted += static_cast<size_t>(std::count(outcomes.begin(), outcomes.end(), InsertOutcome::kAccepted));
      }
      vfs.Cut();
    }  // closed with the power off: nothing it writes now reaches the files
    ASSERT_GT(vfs.files_opened(), 0u) << "the store did not run on the power-cut VFS";
    ASSERT_EQ(vfs.Revert(), "");
  }
  ASSERT_EQ(accepted, 200u);
  auto store = SqliteStore::Open(dir());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE((*store)->Check().ok());
  auto info = (*store)->LookupWriteKey(write_key);
  ASSERT_TRUE(info.ok() && info->has_value()) << "the write key did not survive the power cut";
  EXPECT_EQ(backend_.QueryText("SELECT count(*) FROM events"), "200");
}

// A new store gets the page size asked for (4 KiB unless SqliteStoreOptions says 16 KiB); a store keeps the size it
// was made with whatever a later open asks for, and takes events as before.
TEST_F(SqliteStoreTest, AStoreKeepsThePageSizeItWasMadeWith) {
  auto key = LoadOrCreateStoreKey(dir(), "");
  ASSERT_TRUE(key.ok());
  const std::string path = dir() + "/collector.db";
  auto page_size = [&] {
    auto db = base::Db::OpenEncrypted(path, *key);
    return db.ok() ? db->PageSize() : -1;
  };
  SqliteStoreOptions big;
  big.new_file_page_size = 16384;
  for (int made : {4096, 16384}) {
    SCOPED_TRACE("made with " + std::to_string(made));
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    for (int round = 0; round < 2; ++round) {
      // Made with `made`, then opened asking for the other size.
      SqliteStoreOptions asked;
      asked.new_file_page_size = (round == 0) == (made == 16384) ? 16384 : 4096;
      auto store = SqliteStore::Open(dir(), "", base::SystemClock(), asked);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      auto wk = (*store)->CreateWriteKey("shop" + std::to_string(round));
      ASSERT_TRUE(wk.ok());
      auto info = (*store)->LookupWriteKey(*wk);
      ASSERT_TRUE(info.ok() && info->has_value());
      std::vector<StoredEvent> events;
      for (int i = 0; i < 50; ++i) {
        events.push_back(MakeEvent("ps-" + std::to_string(round) + "-" + std::to_string(i), "track", "", "anon-1",
                                   1700000000000 + i, 1700000000000 + i, {{"n", i}}));
      }
      auto outcomes = PutEvents(**store, (*info)->project_id, std::move(events));
      EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), InsertOutcome::kAccepted), 50);
    }
    EXPECT_EQ(page_size(), made);
    EXPECT_EQ(backend_.QueryText("SELECT count(*) FROM events"), "100");
  }
  auto fresh = SqliteStore::Open(dir() + "/default");
  ASSERT_TRUE(fresh.ok());
  auto db = base::Db::OpenEncrypted(dir() + "/default/collector.db", *LoadOrCreateStoreKey(dir() + "/default", ""));
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db->PageSize(), 4096);
}

// Bodies go into the file compressed (a BLOB: collector/engines/sqlite/body_codec.h) when they pass through
// Prepare as ingest's do, and every reader gets the JSON as it was sent: the dump, the insight's feed, a subject's
// export, the scan of every stored text that erasure proofs rely on. Bodies stored as text (before this format, or
// inserted without Prepare) read as before beside them; a damaged one fails the read with kCorruption.
TEST_F(SqliteStoreTest, EventBodiesAreStoredCompressedAndReadBackAsSent) {
  int64_t shop = 0;
  std::unique_ptr<Store> store = OpenShop(&shop);
  ASSERT_NE(store, nullptr);
  auto body_of = [](int i) {
    return nlohmann::json{{"anonymousId", "anon-7"},
                          {"context",
                           {{"app", {{"name", "shop"}, {"version", "4.2.0"}}},
                            {"library", {{"name", "ferry"}, {"version", "1.0.0"}}},
                            {"locale", "de-DE"},
                            {"timezone", "Europe/Berlin"}}},
                          {"event", "Product Viewed"},
                          {"messageId", "cb-" + std::to_string(i)},
                          {"properties", {{"currency", "EUR"}, {"sku", "SKU-4711-" + std::to_string(i)}}},
                          {"purpose", "analytics"},
                          {"receivedAt", "2026-12-04T18:40:12.345Z"},
                          {"timestamp", "2026-12-04T18:40:12.301Z"},
                          {"type", "track"}};
  };
  std::vector<StoredEvent> prepared, plain;
  for (int i = 0; i < 20; ++i) {
    (i % 2 == 0 ? prepared : plain)
        .push_back(MakeEvent("cb-" + std::to_string(i), "track", "", "anon-7", 1700000000000 + i, 1700000000000 + i,
                             body_of(i)));
  }
  auto outcomes = PutEvents(*store, shop, std::move(prepared));  // Prepare, then Insert
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), InsertOutcome::kAccepted), 10);
  {
    InsertRequest r;  // Insert alone: the text as it is
    r.project_id = shop;
    r.events = std::move(plain);
    std::vector<InsertRequest*> reqs = {&r};
    ASSERT_TRUE(store->Insert(reqs).ok());
  }
  EXPECT_EQ(backend_.QueryText("SELECT count(*) FROM events WHERE typeof(body) = 'blob'"), "10");
  EXPECT_EQ(backend_.QueryText("SELECT count(*) FROM events WHERE typeof(body) = 'text'"), "10");
  // The compressed ones take less than half the bytes of the text ones.
  EXPECT_EQ(backend_.QueryText("SELECT (SELECT sum(length(body)) FROM events WHERE typeof(body) = 'blob') * 2 < "
                               "(SELECT sum(length(CAST(body AS BLOB))) FROM events WHERE typeof(body) = 'text')"),
            "1");

  auto rows = store->DumpEvents("shop");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 20u);
  for (const EventRow& e : *rows) {
    const int i = std::stoi(e.message_id.substr(3));
    EXPECT_EQ(nlohmann::json::parse(e.body), body_of(i)) << e.message_id;
    EXPECT_EQ(e.body, body_of(i).dump()) << "not byte for byte: " << e.message_id;
  }
  auto fed = store->EventsAfter(0, 100);
  ASSERT_TRUE(fed.ok()) << fed.status().ToString();
  ASSERT_EQ(fed->size(), 20u);
  for (const EventRow& e : *fed) EXPECT_EQ(e.body, body_of(std::stoi(e.message_id.substr(3))).dump());
  // A subject's export streams the same rows (the rights path).
  struct Collect : ExportVisitor {
    std::vector<EventRow>* out;
    explicit Collect(std::vector<EventRow>* o) : out(o) {}
    bool BeginProject(const SubjectSummary&) override { return true; }
    bool Consent(const ConsentRecord&) override { return true; }
    bool Event(const EventRow& e) override {
      out->push_back(e);
      return true;
    }
    bool EndProject() override { return true; }
  };
  std::vector<EventRow> exported;
  Collect visitor(&exported);
  auto found = store->ExportSubject({"shop", "anon-7"}, visitor);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(*found);
  ASSERT_EQ(exported.size(), 20u);
  for (const EventRow& e : exported) EXPECT_EQ(e.body, body_of(std::stoi(e.message_id.substr(3))).dump());
  // The scan of every stored text sees inside the compressed bodies: all 20 skus.
  int skus = 0;
  ASSERT_TRUE(store
                  ->ScanAllText([&](std::string_view, std::string_view, std::string_view text) {
                    if (text.find("SKU-4711-") != std::string_view::npos) ++skus;
                    return true;
                  })
                  .ok());
  EXPECT_EQ(skus, 20);

  // One body damaged in the file: the readers say so, the others are still there to read one by one.
  EXPECT_EQ(backend_.Exec("UPDATE events SET body = x'01ffeeddccbbaa' WHERE message_id = 'cb-4'"), "");
  auto damaged = store->DumpEvents("shop");
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), base::Code::kCorruption);
}

TEST_F(SqliteStoreTest, FileIsEncryptedAndNeedsTheKey) {
  {
    auto store = SqliteStore::Open(dir());
    ASSERT_TRUE(store.ok());
    auto key = (*store)->CreateWriteKey("shop");
    ASSERT_TRUE(key.ok());
  }
  std::ifstream f(dir() + "/collector.db", std::ios::binary);
  std::string head(16, '\0');
  f.read(head.data(), 16);
  EXPECT_NE(head, std::string("SQLite format 3\0", 16));
  // The wrong key does not open it.
  auto wrong = SqliteStore::OpenFile(dir() + "/collector.db", base::SecretBytes::Random(32));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("notadb"), std::string::npos);
  // The right key (from the key file) does, and the data survived.
  auto again = SqliteStore::Open(dir());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

// The conformance suite's WriteKeysAreStoredHashedAndLookedUp, and the key's absence from the raw table.
TEST_F(SqliteStoreTest, WriteKeysAreStoredWithoutTheirPlainText) {
  auto store = SqliteStore::Open(dir());
  ASSERT_TRUE(store.ok());
  auto k1 = (*store)->CreateWriteKey("shop");
  ASSERT_TRUE(k1.ok());
  auto key = LoadOrCreateStoreKey(dir(), "");
  ASSERT_TRUE(key.ok());
  auto db = base::Db::OpenEncrypted(dir() + "/collector.db", *key);
  ASSERT_TRUE(db.ok());
  auto st = db->Prepare("SELECT count(*) FROM write_keys WHERE CAST(key_hash AS TEXT) = ?1 OR prefix = ?1;");
  ASSERT_TRUE(st.ok());
  st->Bind(1, *k1);
  ASSERT_TRUE(st->Step());
  EXPECT_EQ(st->Int(0), 0);
}

TEST_F(SqliteStoreTest, RefusesNewerSchema) {
  {
    auto store = SqliteStore::Open(dir());
    ASSERT_TRUE(store.ok());
  }
  auto k = LoadOrCreateStoreKey(dir(), "");
  {
    auto db = base::Db::OpenEncrypted(dir() + "/collector.db", *k);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->SetUserVersion(kSchemaVersion + 1).ok());
  }
  auto store = SqliteStore::Open(dir());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("newer"), std::string::npos);
}

// Schema 3 keeps each identity link's provenance and each key's kind (schema 4 each credential's expiry, schema 5 each
// consent record's method, notice and receipt): a store
// written by an older build keeps its links and keys, of unknown provenance.
TEST_F(SqliteStoreTest, MigratesLinksAndKeysMadeBeforeProvenanceWasKept) {
  std::string key;
  {
    auto store = SqliteStore::Open(dir());
    ASSERT_TRUE(store.ok());
    key = SeedLinksBeforeProvenance(**store);
  }
  {
    // Back to schema 2, as the older build left it: the same tables without the columns of schemas 3, 4, 5 and 8,
    // and the dedup keys in the events table (before schema 17).
    auto k = LoadOrCreateStoreKey(dir(), "");
    auto db = base::Db::OpenEncrypted(dir() + "/collector.db", *k);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec(R"sql(
ALTER TABLE identity_links RENAME TO links3;
CREATE TABLE identity_links(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, from_kind TEXT NOT NULL, from_id TEXT NOT NULL,
  user_id TEXT NOT NULL, source TEXT NOT NULL, first_seen_ms INTEGER NOT NULL,
  UNIQUE(project_id, from_kind, from_id, user_id));
INSERT INTO identity_links SELECT id, project_id, from_kind, from_id, user_id, source, first_seen_ms FROM links3;
DROP TABLE links3;
CREATE INDEX identity_by_user ON identity_links(project_id, user_id);
CREATE INDEX identity_by_from ON identity_links(project_id, from_id);
ALTER TABLE write_keys RENAME TO keys3;
CREATE TABLE write_keys(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id), key_hash BLOB NOT NULL UNIQUE,
  prefix TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER);
INSERT INTO write_keys SELECT id, project_id, key_hash, prefix, created_ms, revoked_ms FROM keys3;
DROP TABLE keys3;
ALTER TABLE admin_tokens RENAME TO tokens3;
CREATE TABLE admin_tokens(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE, prefix TEXT NOT NULL,
  roles TEXT NOT NULL, created_ms INTEGER NOT NULL, revoked_ms INTEGER);
INSERT INTO admin_tokens SELECT id, name, token_hash, prefix, roles, created_ms, revoked_ms FROM tokens3;
DROP TABLE tokens3;
ALTER TABLE consent_ledger RENAME TO consent5;
CREATE TABLE consent_ledger(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, message_id TEXT NOT NULL, user_id TEXT, anonymous_id TEXT,
  purpose TEXT NOT NULL, state TEXT NOT NULL, previous TEXT, timestamp_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, device TEXT);
INSERT INTO consent_ledger SELECT id, project_id, message_id, user_id, anonymous_id, purpose, state, previous,
  timestamp_ms, received_ms, device FROM consent5;
DROP TABLE consent5;
CREATE INDEX consent_by_user ON consent_ledger(project_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX consent_by_anon ON consent_ledger(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
ALTER TABLE events RENAME TO events8;
CREATE TABLE events(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, message_id TEXT NOT NULL, type TEXT NOT NULL,
  user_id TEXT, anonymous_id TEXT, name TEXT, purpose TEXT, timestamp_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, body TEXT NOT NULL, UNIQUE(project_id, message_id));
INSERT INTO events SELECT id, project_id, message_id, type, user_id, anonymous_id, name, purpose, timestamp_ms,
  received_ms, body FROM events8;
DROP TABLE events8;
CREATE INDEX events_by_user ON events(project_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_anon ON events(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_by_time ON events(project_id, timestamp_ms);
DROP TABLE event_ids;
)sql")
                    .ok())
        << db->ErrMsg();
    ASSERT_TRUE(db->SetUserVersion(2).ok());
  }
  auto store = SqliteStore::Open(dir());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->SchemaVersion(), kSchemaVersion);
  ExpectLinksOfUnknownProvenance(**store, key);
}

// Schema 17 moved the dedup keys out of the events table (an erasure no longer writes a page of the message-id index
// per event): a store of schema 16 keeps its events, their row ids (the insight's cursor) and their dedup.
TEST_F(SqliteStoreTest, MigratesTheDedupKeysOutOfTheEventsTable) {
  std::vector<EventRow> before;
  int64_t pid = 0;
  // A request of track events with these messageIds from device `anon` (dev-<id> when empty).
  auto request = [&pid](std::initializer_list<const char*> ids, const std::string& anon) {
    InsertRequest req;
    req.project_id = pid;
    for (const char* id : ids) {
      StoredEvent e;
      e.message_id = id;
      e.type = "track";
      e.anonymous_id = anon.empty() ? std::string("dev-") + id : anon;
      e.timestamp_ms = base::NowMs() - 1000;
      e.received_ms = base::NowMs();
      e.body = "{}";
      req.events.push_back(e);
    }
    return req;
  };
  {
    auto store = SqliteStore::Open(dir());
    ASSERT_TRUE(store.ok());
    auto k = (*store)->CreateWriteKey("shop");
    ASSERT_TRUE(k.ok());
    pid = (*(*store)->LookupWriteKey(*k))->project_id;
    InsertRequest req = request({"k1", "k2", "k3"}, "");
    std::vector<InsertRequest*> reqs = {&req};
    ASSERT_TRUE((*store)->Insert(reqs).ok());
    // A gap in the row ids (a deleted event), which the rebuild must keep.
    ASSERT_TRUE((*store)->EraseSubject({"shop", "dev-k2"}, "req_gap").ok());
    auto rows = (*store)->EventsAfter(0, 100);
    ASSERT_TRUE(rows.ok());
    before = *rows;
    ASSERT_EQ(before.size(), 2u);
  }
  auto key = LoadOrCreateStoreKey(dir(), "");
  ASSERT_TRUE(key.ok());
  {
    // Back to schema 16: the keys in a UNIQUE constraint of the events table, no event_ids.
    auto db = base::Db::OpenEncrypted(dir() + "/collector.db", *key);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec(R"sql(
CREATE TABLE events16(
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, message_id TEXT NOT NULL, type TEXT NOT NULL,
  user_id TEXT, anonymous_id TEXT, name TEXT, purpose TEXT, timestamp_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL, body TEXT NOT NULL, consent_receipt TEXT, UNIQUE(project_id, message_id));
INSERT INTO events16 SELECT * FROM events;
DROP TABLE events;
ALTER TABLE events16 RENAME TO events;
CREATE INDEX events_by_user ON events(project_id, user_id, anonymous_id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_anon ON events(project_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_by_time ON events(project_id, timestamp_ms);
CREATE INDEX events_by_receipt ON events(project_id, consent_receipt) WHERE consent_receipt IS NOT NULL;
CREATE INDEX events_anon_with_user ON events(project_id, anonymous_id)
  WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL;
DROP TABLE event_ids;
)sql")
                    .ok())
        << db->ErrMsg();
    ASSERT_TRUE(db->SetUserVersion(16).ok());
  }
  {
    auto store = SqliteStore::Open(dir());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->SchemaVersion(), kSchemaVersion);
    auto rows = (*store)->EventsAfter(0, 100);
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), before.size());
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ((*rows)[i].seq, before[i].seq);
      EXPECT_EQ((*rows)[i].message_id, before[i].message_id);
      EXPECT_EQ((*rows)[i].anonymous_id, before[i].anonymous_id);
    }
    // The keys came along: k1 and k3 are still duplicates; k4 is new.
    InsertRequest again = request({"k1", "k3", "k4"}, "dev-again");
    std::vector<InsertRequest*> reqs = {&again};
    ASSERT_TRUE((*store)->Insert(reqs).ok());
    EXPECT_EQ(again.outcomes, (std::vector<InsertOutcome>{InsertOutcome::kDuplicate, InsertOutcome::kDuplicate,
                                                          InsertOutcome::kAccepted}));
    EXPECT_GT(again.seqs[2], before.back().seq);
  }
  // No unique index is left on the events table.
  auto db = base::Db::OpenEncrypted(dir() + "/collector.db", *key);
  ASSERT_TRUE(db.ok());
  auto list = db->Prepare("PRAGMA index_list(events);");  // seq, name, unique, ...
  ASSERT_TRUE(list.ok());
  int indexes = 0;
  while (list->Step()) {
    ++indexes;
    EXPECT_EQ(list->Int(2), 0) << list->Text(1);
  }
  EXPECT_EQ(indexes, 5);
}

TEST_F(SqliteStoreTest, ExplicitKeyFile) {
  std::string kf = dir() + "/my.key";
  { std::ofstream(kf) << base::SecretBytes::Random(32).ToHex() << "\n"; }
  ASSERT_EQ(chmod(kf.c_str(), 0600), 0);  // a key file with group/other permissions is refused
  auto store = SqliteStore::Open(dir() + "/data", kf);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_NE(access((dir() + "/data/collector.db").c_str(), F_OK), -1);
  EXPECT_EQ(access((dir() + "/data/collector.key").c_str(), F_OK), -1);
  { std::ofstream(kf) << "short"; }
  EXPECT_FALSE(SqliteStore::Open(dir() + "/data2", kf).ok());
}

// SQLCipher 3 page decryption (raw key, 4 KiB pages, 48-byte reserve holding the IV first): AES-256-CBC.
std::string DecryptPages(const std::string& file, const base::SecretBytes& key) {
  std::ifstream in(file, std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr size_t kPage = 4096, kReserve = 48;
  std::string plain;
  for (size_t off = 0; off + kPage <= raw.size(); off += kPage) {
    size_t skip = off == 0 ? 16 : 0;  // page 1 starts with the salt
    const auto* iv = reinterpret_cast<const unsigned char*>(raw.data() + off + kPage - kReserve);
    std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)> ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, key.data(), iv);
    EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
    std::string out(kPage, '\0');
    int n = 0;
    EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                      reinterpret_cast<const unsigned char*>(raw.data() + off + skip),
                      static_cast<int>(kPage - kReserve - skip));
    out.resize(static_cast<size_t>(n));
    plain += out;
  }
  return plain;
}

// The conformance suite's EraseLeavesNoIdOrValueInAnyColumn proves the erasure through the store; this proves it on
// the file: no value is left in the decrypted pages, and the write-ahead log is empty.
TEST_F(SqliteStoreTest, EraseLeavesNothingInTheDecryptedPagesNorTheWal) {
  auto opened = SqliteStore::Open(dir());
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<Store> store = std::move(opened).value();
  int64_t shop = 0, blog = 0;
  for (auto [name, id] : {std::pair<const char*, int64_t*>{"shop", &shop}, {"blog", &blog}}) {
    auto k = store->CreateWriteKey(name);
    ASSERT_TRUE(k.ok());
    *id = (*store->LookupWriteKey(*k))->project_id;
  }
  PopulateZebra(*store, shop, blog);
  auto req = store->CreateRequest({"", "access", "", "zebra-user-7781", "", "completed", "admin", 1, 2, "x", 1, ""});
  ASSERT_TRUE(req.ok());
  const std::vector<std::string> secrets = {"zebra-user-7781",       "anon-quokka-1",  "anon-quokka-2",
                                            "zebra7781@example.org", "device-zebra-B", "anon-blog-9"};
  auto key = LoadOrCreateStoreKey(dir(), "");
  ASSERT_TRUE(key.ok());
  // Bodies are stored compressed (body_codec.h), so their text is not in the pages: what must go is their stored
  // form. EncodeBody is deterministic: the stored form of each body that names one of the ids.
  std::vector<std::string> stored_bodies;
  {
    auto rows = store->DumpEvents("");
    ASSERT_TRUE(rows.ok());
    for (const EventRow& e : *rows) {
      std::string blob;
      const bool names_one = std::any_of(secrets.begin(), secrets.end(),
                                         [&](const std::string& s) { return e.body.find(s) != std::string::npos; });
      if (names_one && sqlite::EncodeBody(e.body, &blob)) stored_bodies.push_back(blob);
    }
  }
  ASSERT_FALSE(stored_bodies.empty());
  // Positive control: before the erasure the decrypted pages do show the values and the stored bodies (so the
  // decryption is right).
  store.reset();
  {
    std::string plain = DecryptPages(dir() + "/collector.db", *key);
    EXPECT_NE(plain.find("zebra7781@example.org"), std::string::npos);
    EXPECT_NE(plain.find("anon-quokka-2"), std::string::npos);
    for (const auto& b : stored_bodies) EXPECT_NE(plain.find(b), std::string::npos) << "a stored body not found";
  }
  store = std::move(SqliteStore::Open(dir())).value();
  auto receipt = store->EraseSubject({"", "anon-quokka-1"}, "req_test");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();

  store.reset();  // closes and checkpoints
  std::string plain = DecryptPages(dir() + "/collector.db", *key);
  ASSERT_GT(plain.size(), 4096u);
  EXPECT_EQ(static_cast<unsigned char>(plain[0]), 0x10);  // header byte 16-17: page size 4096 (page 1 after salt)
  for (const auto& s : secrets) EXPECT_EQ(plain.find(s), std::string::npos) << s << " left in the database pages";
  for (const auto& b : stored_bodies) EXPECT_EQ(plain.find(b), std::string::npos) << "a stored body left in the pages";
  std::ifstream wal(dir() + "/collector.db-wal", std::ios::binary);
  std::string walraw((std::istreambuf_iterator<char>(wal)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(walraw.empty());
}

// Under steady ingest the checkpointer, copying beside the writer, never finds the log fully copied when a write
// transaction begins, and SQLite only restarts the log then: it grew by every commit, without bound. The writer now
// finishes the copy itself once the log is 16 MiB long. Here 85 MB of frames go through the log back to back; it
// must stay near that length (16.5 MB) instead of holding all of them.
TEST_F(SqliteStoreTest, TheLogStaysBoundedUnderSteadyIngest) {
  int64_t shop = 0;
  std::unique_ptr<Store> store = OpenShop(&shop);
  ASSERT_NE(store, nullptr);
  const std::string wal_path = dir() + "/collector.db-wal";
  int64_t max_wal = 0;
  int n = 0;
  size_t accepted = 0;
  // Built first, so that the commits follow each other as closely as under load.
  std::vector<std::vector<StoredEvent>> batches(120);
  for (auto& events : batches) {
    for (int i = 0; i < 200; ++i, ++n) {
      events.push_back(MakeEvent("m-" + std::to_string(n), "track", "", "anon-" + std::to_string(n % 97),
                                 1700000000000 + n, 1700000000000 + n, {{"n", n}, {"pad", RandomText(1500)}}));
    }
  }
  for (auto& events : batches) {
    auto outcomes = PutEvents(*store, shop, std::move(events));
    accepted += static_cast<size_t>(std::count(outcomes.begin(), outcomes.end(), InsertOutcome::kAccepted));
    struct stat st {};
    ASSERT_EQ(stat(wal_path.c_str(), &st), 0);
    max_wal = std::max<int64_t>(max_wal, st.st_size);
  }
  std::printf("the log's largest size: %lld bytes\n", static_cast<long long>(max_wal));
  // 24,000 events of about 1.3 KB stored, with their index entries: some 70 MB of log frames in all.
  EXPECT_LT(max_wal, 32ll << 20) << "the write-ahead log grew to " << max_wal << " bytes";
  EXPECT_EQ(accepted, 24000u);
}

// Past its mark (4 MiB of log) the checkpointer is asked again only after each further MiB of log, not after every
// commit: small commits (one event each) then cost one pass for many of them, not a pass (two fsyncs and the B-trees'
// upper pages written again) each.
TEST_F(SqliteStoreTest, TheCheckpointerRunsOncePerMebibyteOfLogNotPerCommit) {
  int64_t shop = 0;
  std::unique_ptr<Store> store = OpenShop(&shop);
  ASSERT_NE(store, nullptr);
  int n = 0;
  auto event = [&n](size_t pad) {
    ++n;
    return MakeEvent("c-" + std::to_string(n), "track", "", "anon-" + std::to_string(n % 13), 1700000000000 + n,
                     1700000000000 + n, {{"n", n}, {"pad", RandomText(pad)}});
  };
  // The log past its mark: 5 MB in a few commits.
  for (int b = 0; b < 5; ++b) {
    std::vector<StoredEvent> events;
    for (int i = 0; i < 100; ++i) events.push_back(event(10000));
    PutEvents(*store, shop, std::move(events));
  }
  const Engine::CheckpointStats before = store->Checkpoints();
  ASSERT_TRUE(before.reported);
  // 2,000 commits of one ~1 KB event: about 5 pages of log each (the row, its index entries, their parents).
  constexpr int kCommits = 2000;
  for (int c = 0; c < kCommits; ++c) {
    auto outcomes = PutEvents(*store, shop, {event(1000)});
    ASSERT_EQ(outcomes, std::vector<InsertOutcome>{InsertOutcome::kAccepted});
  }
  const Engine::CheckpointStats after = store->Checkpoints();
  const int64_t passes = after.background - before.background;
  std::printf("%d commits: %lld passes of the checkpointer, %lld of the writer\n", kCommits,
              static_cast<long long>(passes), static_cast<long long>(after.writer - before.writer));
  // At most one ask a MiB (256 pages) of log: 37 passes here; asked after every commit it made 1,496.
  EXPECT_LE(passes, 100);
  EXPECT_GE(passes, 1);
}

}  // namespace
}  // namespace ferry::collector::conformance
