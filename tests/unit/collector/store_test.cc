#include "collector/engines/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "lib/base/sqlite.h"

namespace ferry::collector {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ferry-store-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

StoredEvent Ev(const std::string& id, const std::string& type = "track") {
  StoredEvent e;
  e.message_id = id;
  e.type = type;
  e.anonymous_id = "anon-1";
  e.name = "Clicked";
  e.purpose = "analytics";
  e.timestamp_ms = 1000;
  e.received_ms = 2000;
  e.body = "{\"messageId\":\"" + id + "\"}";
  return e;
}

TEST(SqliteStore, CreatesKeyFileWithMode0600AndSchema) {
  TempDir dir;
  auto store = SqliteStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat((dir.path() + "/collector.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ((*store)->SchemaVersion(), kSchemaVersion);
  EXPECT_TRUE((*store)->Check().ok());
}

TEST(SqliteStore, FileIsEncryptedAndNeedsTheKey) {
  TempDir dir;
  {
    auto store = SqliteStore::Open(dir.path());
    ASSERT_TRUE(store.ok());
    auto key = (*store)->CreateWriteKey("shop");
    ASSERT_TRUE(key.ok());
  }
  std::ifstream f(dir.path() + "/collector.db", std::ios::binary);
  std::string head(16, '\0');
  f.read(head.data(), 16);
  EXPECT_NE(head, std::string("SQLite format 3\0", 16));
  // The wrong key does not open it.
  auto wrong = SqliteStore::OpenFile(dir.path() + "/collector.db", base::SecretBytes::Random(32));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("notadb"), std::string::npos);
  // The right key (from the key file) does, and the data survived.
  auto again = SqliteStore::Open(dir.path());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST(SqliteStore, WriteKeysAreStoredHashedAndLookedUp) {
  TempDir dir;
  auto store = SqliteStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  auto k1 = (*store)->CreateWriteKey("shop");
  auto k2 = (*store)->CreateWriteKey("blog");
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_EQ(k1->rfind("fw_", 0), 0u);
  EXPECT_EQ(k1->size(), 3u + 64u);
  EXPECT_NE(*k1, *k2);
  auto i1 = (*store)->LookupWriteKey(*k1);
  ASSERT_TRUE(i1.ok());
  ASSERT_TRUE(i1->has_value());
  EXPECT_EQ((*i1)->project, "shop");
  auto i2 = (*store)->LookupWriteKey(*k2);
  ASSERT_TRUE(i2.ok() && i2->has_value());
  EXPECT_EQ((*i2)->project, "blog");
  EXPECT_NE((*i1)->project_id, (*i2)->project_id);
  auto none = (*store)->LookupWriteKey("fw_nope");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  // No plaintext key in the database.
  auto key = LoadOrCreateStoreKey(dir.path(), "");
  ASSERT_TRUE(key.ok());
  auto db = base::Db::OpenEncrypted(dir.path() + "/collector.db", *key);
  ASSERT_TRUE(db.ok());
  auto st = db->Prepare("SELECT count(*) FROM write_keys WHERE CAST(key_hash AS TEXT) = ?1 OR prefix = ?1;");
  ASSERT_TRUE(st.ok());
  st->Bind(1, *k1);
  ASSERT_TRUE(st->Step());
  EXPECT_EQ(st->Int(0), 0);
}

TEST(SqliteStore, DedupWithinAndAcrossBatches) {
  TempDir dir;
  auto store = SqliteStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  auto key = (*store)->CreateWriteKey("shop");
  auto info = (*store)->LookupWriteKey(*key);
  ASSERT_TRUE(info.ok() && info->has_value());
  InsertRequest a;
  a.project_id = (*info)->project_id;
  a.events = {Ev("m1"), Ev("m2"), Ev("m1")};
  InsertRequest b;
  b.project_id = (*info)->project_id;
  b.events = {Ev("m2"), Ev("m3")};
  std::vector<InsertRequest*> reqs = {&a, &b};
  ASSERT_TRUE((*store)->Insert(reqs).ok());
  EXPECT_EQ(a.outcomes, (std::vector<InsertOutcome>{InsertOutcome::kAccepted, InsertOutcome::kAccepted,
                                                    InsertOutcome::kDuplicate}));
  EXPECT_EQ(b.outcomes, (std::vector<InsertOutcome>{InsertOutcome::kDuplicate, InsertOutcome::kAccepted}));
  auto rows = (*store)->DumpEvents("shop");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].message_id, "m1");
  EXPECT_EQ((*rows)[2].message_id, "m3");
  EXPECT_EQ((*rows)[0].anonymous_id, "anon-1");
  EXPECT_EQ((*rows)[0].user_id, "");

  // The same messageId in another project is a different event.
  auto key2 = (*store)->CreateWriteKey("blog");
  auto info2 = (*store)->LookupWriteKey(*key2);
  InsertRequest c;
  c.project_id = (*info2)->project_id;
  c.events = {Ev("m1")};
  std::vector<InsertRequest*> one = {&c};
  ASSERT_TRUE((*store)->Insert(one).ok());
  EXPECT_EQ(c.outcomes[0], InsertOutcome::kAccepted);
  EXPECT_EQ((*store)->DumpEvents("")->size(), 4u);
}

TEST(SqliteStore, SuppressionConsentIdentityAndDropped) {
  TempDir dir;
  auto store = SqliteStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  auto key = (*store)->CreateWriteKey("shop");
  int64_t pid = (*(*store)->LookupWriteKey(*key))->project_id;
  auto h = (*store)->IdHash("anon-gone");
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, (*store)->IdHash("anon-gone"));
  EXPECT_FALSE(*(*store)->IsSuppressed(pid, h));
  ASSERT_TRUE((*store)->Suppress(pid, h).ok());
  EXPECT_TRUE(*(*store)->IsSuppressed(pid, h));

  InsertRequest r;
  r.project_id = pid;
  StoredEvent gone = Ev("g1");
  gone.anonymous_id = "anon-gone";
  StoredEvent consent = Ev("c1", "consent");
  consent.consent_purpose = "marketing";
  consent.consent_state = "granted";
  consent.consent_previous = "pending";
  StoredEvent ident = Ev("i1", "identify");
  ident.user_id = "user-9";
  StoredEvent alias = Ev("a1", "alias");
  alias.user_id = "user-9";
  alias.anonymous_id = "";
  alias.previous_id = "old-user";
  r.events = {gone, consent, ident, alias};
  r.dropped = {{"evicted", 5}, {"expired", 2}};
  std::vector<InsertRequest*> reqs = {&r};
  ASSERT_TRUE((*store)->Insert(reqs).ok());
  EXPECT_EQ(r.outcomes[0], InsertOutcome::kSuppressed);
  EXPECT_EQ(r.outcomes[1], InsertOutcome::kAccepted);
  r.events.clear();
  r.dropped = {{"evicted", 1}};
  ASSERT_TRUE((*store)->Insert(reqs).ok());
  auto dropped = (*store)->DroppedCounters("shop");
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ((*dropped)["evicted"], 6);
  EXPECT_EQ((*dropped)["expired"], 2);

  auto k = LoadOrCreateStoreKey(dir.path(), "");
  auto db = base::Db::OpenEncrypted(dir.path() + "/collector.db", *k);
  ASSERT_TRUE(db.ok());
  auto q = [&](const std::string& sql) {
    auto st = db->Prepare(sql);
    EXPECT_TRUE(st.ok());
    EXPECT_TRUE(st->Step()) << sql;
    return st->Text(0);
  };
  EXPECT_EQ(q("SELECT purpose || '/' || state || '/' || previous FROM consent_ledger;"), "marketing/granted/pending");
  EXPECT_EQ(q("SELECT group_concat(from_kind || ':' || from_id || '>' || user_id, ',') FROM "
              "(SELECT * FROM identity_links ORDER BY id);"),
            "anonymousId:anon-1>user-9,previousId:old-user>user-9");
  EXPECT_EQ(q("SELECT count(*) FROM events WHERE message_id = 'g1';"), "0");
}

TEST(SqliteStore, RefusesNewerSchema) {
  TempDir dir;
  {
    auto store = SqliteStore::Open(dir.path());
    ASSERT_TRUE(store.ok());
  }
  auto k = LoadOrCreateStoreKey(dir.path(), "");
  {
    auto db = base::Db::OpenEncrypted(dir.path() + "/collector.db", *k);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->SetUserVersion(kSchemaVersion + 1).ok());
  }
  auto store = SqliteStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("newer"), std::string::npos);
}

TEST(SqliteStore, ExplicitKeyFile) {
  TempDir dir;
  std::string kf = dir.path() + "/my.key";
  { std::ofstream(kf) << base::SecretBytes::Random(32).ToHex() << "\n"; }
  ASSERT_EQ(chmod(kf.c_str(), 0600), 0);  // a key file with group/other permissions is refused
  auto store = SqliteStore::Open(dir.path() + "/data", kf);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_NE(access((dir.path() + "/data/collector.db").c_str(), F_OK), -1);
  EXPECT_EQ(access((dir.path() + "/data/collector.key").c_str(), F_OK), -1);
  { std::ofstream(kf) << "short"; }
  EXPECT_FALSE(SqliteStore::Open(dir.path() + "/data2", kf).ok());
}

}  // namespace
}  // namespace ferry::collector
