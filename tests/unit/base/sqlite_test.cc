// base::Db's statement cache: a statement given up is taken again by the next Prepare of the same text, reset and
// with its bindings cleared; the cache is bounded; nothing it keeps holds a read open or outlives the connection.
#include "lib/base/sqlite.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ferry::base {
namespace {

class DbStmtCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/ferry-db-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    auto db = Db::OpenEncrypted(dir_ + "/t.db", SecretBytes::Random(32));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::make_unique<Db>(std::move(db).value());
    ASSERT_TRUE(db_->Exec("CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES(1, 'x'), (2, 'y');").ok());
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  // The statements the connection holds, idle in the cache or not.
  int LiveStatements() const {
    int n = 0;
    for (sqlite3_stmt* s = sqlite3_next_stmt(db_->get(), nullptr); s != nullptr; s = sqlite3_next_stmt(db_->get(), s)) {
      ++n;
    }
    return n;
  }
  Stmt MustPrepare(const std::string& sql) {
    auto st = db_->Prepare(sql);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    return st.ok() ? std::move(st).value() : Stmt();
  }

  std::string dir_;
  std::unique_ptr<Db> db_;
};

TEST_F(DbStmtCacheTest, AStatementGivenUpIsTakenAgainResetAndUnbound) {
  const std::string sql = "SELECT ?1, a FROM t ORDER BY a;";
  sqlite3_stmt* first = nullptr;
  {
    Stmt st = MustPrepare(sql);
    first = st.get();
    st.Bind(1, int64_t{42});
    ASSERT_TRUE(st.Step());  // left on its first row: a read in progress
    EXPECT_EQ(st.Int(0), 42);
    EXPECT_NE(sqlite3_stmt_busy(first), 0);
  }
  EXPECT_EQ(LiveStatements(), 1);          // kept, not finalized
  EXPECT_EQ(sqlite3_stmt_busy(first), 0);  // and reset: it holds no read
  Stmt again = MustPrepare(sql);
  EXPECT_EQ(again.get(), first);
  ASSERT_TRUE(again.Step());
  EXPECT_TRUE(again.IsNull(0));  // the binding was cleared
  EXPECT_EQ(again.Int(1), 1);    // from the first row again
}

TEST_F(DbStmtCacheTest, TwoHeldAtOnceAreTwoStatements) {
  const std::string sql = "SELECT a FROM t WHERE a = ?1;";
  Stmt one = MustPrepare(sql);
  Stmt two = MustPrepare(sql);
  ASSERT_TRUE(one && two);
  EXPECT_NE(one.get(), two.get());
  one.Bind(1, int64_t{1});
  two.Bind(1, int64_t{2});
  ASSERT_TRUE(one.Step());
  ASSERT_TRUE(two.Step());
  EXPECT_EQ(one.Int(0), 1);
  EXPECT_EQ(two.Int(0), 2);
  one = Stmt();
  two = Stmt();
  EXPECT_EQ(LiveStatements(), 1);  // one idle statement per text
}

TEST_F(DbStmtCacheTest, TheCacheIsBounded) {
  std::set<sqlite3_stmt*> seen;
  for (size_t i = 0; i < Db::kStmtCacheSize + 40; ++i) {
    Stmt st = MustPrepare("SELECT a + " + std::to_string(i) + " FROM t;");
    ASSERT_TRUE(st.Step());
    EXPECT_EQ(st.Int(0), 1 + static_cast<int64_t>(i));
  }
  EXPECT_EQ(LiveStatements(), static_cast<int>(Db::kStmtCacheSize));
  // The most recent ones are kept; the oldest were finalized and are compiled again.
  Stmt recent = MustPrepare("SELECT a + " + std::to_string(Db::kStmtCacheSize + 39) + " FROM t;");
  EXPECT_EQ(LiveStatements(), static_cast<int>(Db::kStmtCacheSize));  // taken out of the cache, not new
  Stmt old = MustPrepare("SELECT a + 0 FROM t;");
  EXPECT_EQ(LiveStatements(), static_cast<int>(Db::kStmtCacheSize) + 1);
}

TEST_F(DbStmtCacheTest, ATextOfSeveralStatementsIsNotKept) {
  {
    Stmt st = MustPrepare("SELECT a FROM t; SELECT b FROM t;");
    ASSERT_TRUE(st.Step());
    EXPECT_EQ(st.Int(0), 1);
  }
  EXPECT_EQ(LiveStatements(), 0);
}

TEST_F(DbStmtCacheTest, AKeptStatementFollowsTheSchemaAndLetsItChange) {
  const std::string sql = "SELECT count(*) FROM t;";
  {
    Stmt st = MustPrepare(sql);
    ASSERT_TRUE(st.Step());
    EXPECT_EQ(st.Int(0), 2);
  }
  // A kept statement is reset, so the table it reads can be dropped (an active one would make this SQLITE_LOCKED).
  ASSERT_TRUE(db_->Exec("DROP TABLE t;").ok());
  {
    auto gone = db_->Prepare(sql);
    ASSERT_TRUE(gone.ok());  // the kept statement is handed out; its step finds the table gone
    EXPECT_FALSE(gone->Step());
    EXPECT_FALSE(gone->status().ok());
  }
  ASSERT_TRUE(db_->Exec("CREATE TABLE t(a INTEGER); INSERT INTO t VALUES(7), (8), (9);").ok());
  Stmt st = MustPrepare(sql);
  ASSERT_TRUE(st.Step()) << st.status().ToString();
  EXPECT_EQ(st.Int(0), 3);
}

TEST_F(DbStmtCacheTest, AStatementMayOutliveItsConnection) {
  Stmt held = MustPrepare("SELECT a FROM t;");
  { Stmt idle = MustPrepare("SELECT b FROM t;"); }
  EXPECT_EQ(LiveStatements(), 2);
  // The idle one is finalized with the cache; the connection closes once `held` is finalized, which it now is by
  // itself (its cache is gone). A statement left unfinalized, or one finalized twice, fails the sanitizer builds.
  db_.reset();
  held = Stmt();
}

// The cipher page size is found, not stored: a file opens whatever size it was made with, whichever size the caller
// would give a new one.
class DbPageSizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/ferry-db-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    path_ = dir_ + "/t.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // An empty directory again, for the next case of a loop.
  void Fresh() {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  // Makes the file with `page_size` pages and three rows.
  void Make(int page_size) {
    auto db = Db::OpenEncrypted(path_, key_, page_size);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE(db->Exec("CREATE TABLE t(a INTEGER); INSERT INTO t VALUES(1), (2), (3);").ok());
  }
  // A child process makes the file with `page_size` pages, commits three rows and exits without closing: the commits
  // stay in the log, as after kill -9.
  void CrashAfterCommits(int page_size);
  static int64_t Rows(Db& db) {
    auto st = db.Prepare("SELECT count(*) FROM t;");
    if (!st.ok() || !st->Step()) return -1;
    return st->Int(0);
  }

  std::string dir_, path_;
  SecretBytes key_ = SecretBytes::Random(32);
};

TEST_F(DbPageSizeTest, AFileOpensWithTheSizeItWasMadeWith) {
  for (int made : Db::kPageSizes) {
    SCOPED_TRACE("made with " + std::to_string(made));
    Fresh();
    Make(made);
    for (int asked : Db::kPageSizes) {
      auto db = Db::OpenEncrypted(path_, key_, asked);
      ASSERT_TRUE(db.ok()) << "asked " << asked << ": " << db.status().ToString();
      EXPECT_EQ(db->PageSize(), made);
      EXPECT_EQ(Rows(*db), 3);
      EXPECT_TRUE(db->Exec("INSERT INTO t VALUES(4); DELETE FROM t WHERE a = 4;").ok());
    }
  }
  Fresh();
  auto fresh = Db::OpenEncrypted(path_, key_, 16384);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->PageSize(), 16384);
}

// A store whose commits were never copied out of its log: its size is found with the log's pages too.
TEST_F(DbPageSizeTest, TheSizeIsFoundWhileTheCommitsAreInTheLog) {
  auto writer = Db::OpenEncrypted(path_, key_, 16384);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Exec("PRAGMA wal_autocheckpoint = 0;").ok());
  ASSERT_TRUE(writer->Exec("CREATE TABLE t(a INTEGER); INSERT INTO t VALUES(1), (2), (3);").ok());
  ASSERT_GT(std::filesystem::file_size(path_ + "-wal"), 0u);
  auto reader = Db::OpenEncrypted(path_, key_);  // would make a new file 4 KiB
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ(reader->PageSize(), 16384);
  EXPECT_EQ(Rows(*reader), 3);
}

// After a crash (the process gone without closing: the commits only in the log, no connection open), the attempts
// under the wrong size leave the log alone, and the one under the right size reads every commit.
TEST_F(DbPageSizeTest, ACrashedStoresLogSurvivesTheWrongSizesAttempt) {
  for (int made : Db::kPageSizes) {
    SCOPED_TRACE("made with " + std::to_string(made));
    Fresh();
    CrashAfterCommits(made);
    const int other = made == 4096 ? 16384 : 4096;
    {
      auto db = Db::OpenEncrypted(path_, key_, other);  // the wrong size is tried first
      ASSERT_TRUE(db.ok()) << db.status().ToString();
      EXPECT_EQ(db->PageSize(), made);
      EXPECT_EQ(Rows(*db), 3);
    }
    auto again = Db::OpenEncrypted(path_, key_, other);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(Rows(*again), 3);
  }
}

void DbPageSizeTest::CrashAfterCommits(int page_size) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto db = Db::OpenEncrypted(path_, key_, page_size);
    const bool ok = db.ok() && db->Exec("PRAGMA wal_autocheckpoint = 0;").ok() &&
                    db->Exec("CREATE TABLE t(a INTEGER); INSERT INTO t VALUES(1), (2), (3);").ok();
    _exit(ok ? 0 : 1);  // no close: the log keeps the commits, as after kill -9
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GT(std::filesystem::file_size(path_ + "-wal"), 0u);
}

TEST_F(DbPageSizeTest, AWrongKeyIsRefusedUnderEverySize) {
  Make(16384);
  auto db = Db::OpenEncrypted(path_, SecretBytes::Random(32));
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kCorruption);
  EXPECT_NE(db.status().message().find("notadb"), std::string::npos) << db.status().ToString();
  auto right = Db::OpenEncrypted(path_, key_);  // the failed attempts changed nothing
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  EXPECT_EQ(Rows(*right), 3);
}

TEST_F(DbPageSizeTest, AnUnsupportedSizeIsRefused) {
  auto db = Db::OpenEncrypted(path_, key_, 8192);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

}  // namespace
}  // namespace ferry::base
