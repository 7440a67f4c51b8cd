// lib/cipher's page cipher against SQLCipher's own provider, on real SQLCipher files: either reads what the other
// wrote (every page's HMAC checked), a wrong key and a changed byte are refused, pages get fresh IVs, and connections
// on several threads at once keep their own contexts.
#include "lib/cipher/page_cipher.h"

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/sqlite.h"

namespace ferry::cipher {
namespace {

using base::Db;
using base::SecretBytes;

class PageCipherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RemovePageCipherForTesting();
    std::string tmpl = "/tmp/ferry-cipher-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    key_ = SecretBytes::Random(32);
  }
  void TearDown() override {
    RemovePageCipherForTesting();
    std::filesystem::remove_all(dir_);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  static std::string Provider(Db& db) {
    auto st = db.Prepare("PRAGMA cipher_provider;");
    EXPECT_TRUE(st.ok());
    if (!st.ok() || !st->Step()) return "";
    return st->Text(0);
  }

  // Writes rows [from, to) into table t (created if missing): each a few hundred bytes, so they fill many pages.
  static void WriteRows(Db& db, int from, int to) {
    ASSERT_TRUE(db.Exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);").ok());
    ASSERT_TRUE(db.Exec("BEGIN;").ok());
    auto st = db.Prepare("INSERT INTO t(id, v) VALUES(?, ?);");
    ASSERT_TRUE(st.ok());
    for (int i = from; i < to; ++i) {
      st->Bind(1, int64_t{i}).Bind(2, RowText(i));
      ASSERT_TRUE(st->Run().ok()) << i;
      st->Reset();
    }
    ASSERT_TRUE(db.Exec("COMMIT;").ok());
  }
  static std::string RowText(int i) {
    return "row " + std::to_string(i) + " " + std::string(300 + i % 97, 'a' + i % 26);
  }

  // Every row of t is the one WriteRows wrote, ids 0 .. n-1, and every page passes SQLite's integrity check.
  static void ExpectRows(Db& db, int n) {
    auto st = db.Prepare("SELECT id, v FROM t ORDER BY id;");
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    int i = 0;
    for (; st->Step(); ++i) {
      ASSERT_EQ(st->Int(0), i);
      ASSERT_EQ(st->Text(1), RowText(i));
    }
    ASSERT_TRUE(st->status().ok()) << st->status().ToString();
    EXPECT_EQ(i, n);
    auto check = db.Prepare("PRAGMA integrity_check;");
    ASSERT_TRUE(check.ok());
    ASSERT_TRUE(check->Step()) << check->status().ToString();
    EXPECT_EQ(check->Text(0), "ok");
  }

  Db MustOpen(const std::string& name, const SecretBytes& key) {
    auto db = Db::OpenEncrypted(Path(name), key);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return std::move(db).value();
  }

  std::string dir_;
  SecretBytes key_;
};

TEST_F(PageCipherTest, EachProviderReadsWhatTheOtherWrote) {
  {  // SQLCipher's own provider writes a.db
    Db db = MustOpen("a.db", key_);
    EXPECT_EQ(Provider(db), "openssl");
    WriteRows(db, 0, 3000);
  }
  ASSERT_TRUE(InstallPageCipher().ok());
  {  // this one reads a.db, adds to it, and writes b.db
    Db a = MustOpen("a.db", key_);
    EXPECT_EQ(Provider(a), kProviderName);
    ExpectRows(a, 3000);
    WriteRows(a, 3000, 6000);
    Db b = MustOpen("b.db", key_);
    EXPECT_EQ(Provider(b), kProviderName);
    WriteRows(b, 0, 3000);
    ExpectRows(b, 3000);
  }
  RemovePageCipherForTesting();
  {  // and SQLCipher's own provider reads both
    Db a = MustOpen("a.db", key_);
    EXPECT_EQ(Provider(a), "openssl");
    ExpectRows(a, 6000);
    Db b = MustOpen("b.db", key_);
    ExpectRows(b, 3000);
  }
}

TEST_F(PageCipherTest, InstallingTwiceKeepsOneProviderAndOutlivesEveryConnection) {
  ASSERT_TRUE(InstallPageCipher().ok());
  ASSERT_TRUE(InstallPageCipher().ok());
  {
    Db db = MustOpen("a.db", key_);
    WriteRows(db, 0, 10);
  }
  // Every file connection is closed: SQLCipher would drop a provider now, were it not held.
  Db db = MustOpen("a.db", key_);
  EXPECT_EQ(Provider(db), kProviderName);
  ExpectRows(db, 10);
}

TEST_F(PageCipherTest, AWrongKeyIsRefused) {
  ASSERT_TRUE(InstallPageCipher().ok());
  {
    Db db = MustOpen("a.db", key_);
    WriteRows(db, 0, 100);
  }
  auto other = Db::OpenEncrypted(Path("a.db"), SecretBytes::Random(32));
  EXPECT_FALSE(other.ok());
}

TEST_F(PageCipherTest, AChangedByteIsRefused) {
  ASSERT_TRUE(InstallPageCipher().ok());
  {
    Db db = MustOpen("a.db", key_);
    WriteRows(db, 0, 200);
  }
  {  // one byte in the middle of the third page (the table's rows)
    std::fstream f(Path("a.db"), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekg(2 * 4096 + 1000);
    char c = 0;
    f.read(&c, 1);
    f.seekp(2 * 4096 + 1000);
    c = static_cast<char>(c ^ 0x01);
    f.write(&c, 1);
  }
  Db db = MustOpen("a.db", key_);
  auto st = db.Prepare("SELECT count(*), sum(length(v)) FROM t;");
  bool failed = !st.ok();
  if (!failed) failed = !st->Step() || !st->status().ok();
  EXPECT_TRUE(failed) << "a page whose byte was changed was read";
}

TEST_F(PageCipherTest, TheSamePagesGetFreshIvs) {
  ASSERT_TRUE(InstallPageCipher().ok());
  for (const char* name : {"a.db", "b.db"}) {
    Db db = MustOpen(name, key_);
    WriteRows(db, 0, 100);
  }
  auto read = [this](const std::string& name) {
    std::ifstream f(Path(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  std::string a = read("a.db");
  std::string b = read("b.db");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 3u * 4096);
  // Page 3 holds the same rows in both files under the same key; its reserve (the last 48 bytes: IV, HMAC) and its
  // ciphertext must still differ.
  std::string pa = a.substr(2 * 4096, 4096);
  std::string pb = b.substr(2 * 4096, 4096);
  EXPECT_NE(pa.substr(4096 - 48, 16), pb.substr(4096 - 48, 16));
  EXPECT_NE(pa.substr(0, 4096 - 48), pb.substr(0, 4096 - 48));
}

TEST_F(PageCipherTest, ConnectionsOnSeveralThreadsKeepTheirOwnContexts) {
  ASSERT_TRUE(InstallPageCipher().ok());
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      // Each thread its own file and key: a context that kept another's key would fail the reads.
      SecretBytes key = SecretBytes::Random(32);
      std::string name = "t" + std::to_string(t) + ".db";
      {
        Db db = MustOpen(name, key);
        WriteRows(db, 0, 1500);
      }
      Db db = MustOpen(name, key);
      ExpectRows(db, 1500);
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace
}  // namespace ferry::cipher
