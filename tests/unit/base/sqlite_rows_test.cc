// base::MemoryRows: rows held in memory that one INSERT ... SELECT stores, in the order given, with each value's
// type kept; the table is the connection's own and cannot be put in a schema.
#include "lib/base/sqlite_rows.h"

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ferry::base {
namespace {

class MemoryRowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/ferry-rows-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    auto db = Db::OpenEncrypted(dir_ + "/t.db", SecretBytes::Random(32));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::make_unique<Db>(std::move(db).value());
    ASSERT_TRUE(
        db_->Exec("CREATE TABLE t(seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, n INTEGER, b TEXT);")
            .ok());
    auto rows = MemoryRows::Register(*db_, "pending", {"name", "n", "b"});
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    rows_ = std::move(rows).value();
  }
  void TearDown() override {
    db_.reset();
    rows_.reset();
    std::filesystem::remove_all(dir_);
  }
  Status InsertPending() {
    auto st = db_->Prepare("INSERT INTO t(name, n, b) SELECT name, n, b FROM pending ORDER BY rowid;");
    if (!st.ok()) return st.status();
    return st->Run();
  }

  std::string dir_;
  std::unique_ptr<MemoryRows> rows_;  // outlives every statement that reads it
  std::unique_ptr<Db> db_;
};

TEST_F(MemoryRowsTest, OneStatementStoresEveryRowInOrderWithItsTypes) {
  std::vector<std::string> names;
  const std::string blob("\x00\x01\xff z", 5);
  for (int i = 0; i < 1000; ++i) names.push_back("event-" + std::to_string(i));
  for (int i = 0; i < 1000; ++i) {
    rows_->AddRow();
    rows_->SetText(0, names[i]);
    if (i % 3 != 0) rows_->SetInt(1, i * 7);  // every third left NULL
    if (i % 2 == 0) {
      rows_->SetBlob(2, blob);
    } else {
      rows_->SetText(2, "");  // an empty text, not NULL
    }
  }
  ASSERT_EQ(rows_->rows(), 1000u);
  ASSERT_TRUE(InsertPending().ok());
  EXPECT_EQ(db_->Changes(), 1000);

  auto st = db_->Prepare("SELECT seq, name, n, typeof(n), b, typeof(b) FROM t ORDER BY seq;");
  ASSERT_TRUE(st.ok());
  int i = 0;
  while (st->Step()) {
    EXPECT_EQ(st->Int(0), i + 1);  // seqs follow the rows' order
    EXPECT_EQ(st->Text(1), names[i]);
    if (i % 3 != 0) {
      EXPECT_EQ(st->Int(2), i * 7);
    } else {
      EXPECT_EQ(st->Text(3), "null");
    }
    if (i % 2 == 0) {
      EXPECT_EQ(st->Text(5), "blob");
      EXPECT_EQ(st->Text(4), blob);
    } else {
      EXPECT_EQ(st->Text(5), "text");
      EXPECT_EQ(st->Text(4), "");
    }
    ++i;
  }
  ASSERT_TRUE(st->status().ok());
  EXPECT_EQ(i, 1000);
}

TEST_F(MemoryRowsTest, ClearedRowsAreNotStoredAgainAndTheMemoryIsKept) {
  rows_->AddRow();
  rows_->SetText(0, "first");
  ASSERT_TRUE(InsertPending().ok());
  rows_->Clear();
  EXPECT_EQ(rows_->rows(), 0u);
  ASSERT_TRUE(InsertPending().ok());  // nothing to store
  EXPECT_EQ(db_->Changes(), 0);
  rows_->AddRow();
  rows_->SetText(0, "second");
  ASSERT_TRUE(InsertPending().ok());
  auto st = db_->Prepare("SELECT group_concat(name, ',') FROM t;");
  ASSERT_TRUE(st.ok() && st->Step());
  EXPECT_EQ(st->Text(0), "first,second");
}

TEST_F(MemoryRowsTest, AFailedInsertStoresNoneOfTheRows) {
  rows_->AddRow();
  rows_->SetText(0, "kept out");
  rows_->AddRow();                     // name NULL: the NOT NULL constraint fails on the second row
  EXPECT_FALSE(InsertPending().ok());  // ABORT: the statement undoes its own rows
  auto count = [&] {
    auto st = db_->Prepare("SELECT count(*) FROM t;");
    return st.ok() && st->Step() ? st->Int(0) : -1;
  };
  EXPECT_EQ(count(), 0);
  // As the buffer stores a commit: OR FAIL inside a transaction, which the failure rolls back.
  {
    Transaction tx(*db_);
    ASSERT_TRUE(tx.begin_status().ok());
    auto st = db_->Prepare("INSERT OR FAIL INTO t(name, n, b) SELECT name, n, b FROM pending ORDER BY rowid;");
    ASSERT_TRUE(st.ok());
    EXPECT_FALSE(st->Run().ok());
  }
  EXPECT_EQ(count(), 0);
}

// How the collector claims a commit's event ids: OR FAIL keeps the rows before a conflict, the changes count says how
// many, and the statement is run again from the row after the one that conflicted.
TEST_F(MemoryRowsTest, AnInsertStoppedByAConflictResumesAfterIt) {
  ASSERT_TRUE(db_->Exec("CREATE TABLE k(name TEXT PRIMARY KEY) WITHOUT ROWID; INSERT INTO k VALUES('c');").ok());
  std::vector<std::string> names = {"a", "b", "c", "d", "b", "e", "f", "f"};  // c is stored; b and f come twice
  for (const auto& n : names) {
    rows_->AddRow();
    rows_->SetText(0, n);
  }
  Transaction tx(*db_);
  ASSERT_TRUE(tx.begin_status().ok());
  auto st = db_->Prepare("INSERT OR FAIL INTO k(name) SELECT name FROM pending WHERE rowid >= ?1 ORDER BY rowid;");
  ASSERT_TRUE(st.ok());
  std::vector<int64_t> conflicts, runs;
  int64_t from = 0;
  for (int guard = 0; guard < 20; ++guard) {
    st->Bind(1, from);
    while (st->Step()) {
    }
    const int code = sqlite3_extended_errcode(db_->get());
    const bool failed = !st->status().ok();
    st->Reset();
    runs.push_back(db_->Changes());
    if (!failed) break;
    ASSERT_EQ(code, SQLITE_CONSTRAINT_PRIMARYKEY);
    conflicts.push_back(from + db_->Changes());
    from = conflicts.back() + 1;
  }
  EXPECT_EQ(conflicts, (std::vector<int64_t>{2, 4, 7}));
  EXPECT_EQ(runs, (std::vector<int64_t>{2, 1, 2, 0}));
  ASSERT_TRUE(tx.Commit().ok());
  auto all = db_->Prepare("SELECT group_concat(name, '') FROM (SELECT name FROM k ORDER BY name);");
  ASSERT_TRUE(all.ok() && all->Step());
  EXPECT_EQ(all->Text(0), "abcdef");
  // "rowid > ?" and bounds past either end.
  auto read = [&](const char* where, int64_t v) -> std::string {  // "rows read, first rowid"
    auto q = db_->Prepare(std::string("SELECT count(*), ifnull(min(rowid), -1) FROM pending WHERE ") + where + ";");
    if (!q.ok()) return q.status().ToString();
    q->Bind(1, v);
    if (!q->Step()) return q->status().ToString();
    return std::to_string(q->Int(0)) + "," + std::to_string(q->Int(1));
  };
  EXPECT_EQ(read("rowid > ?1", 5), "2,6");
  EXPECT_EQ(read("rowid >= ?1", -3), "8,0");
  EXPECT_EQ(read("rowid >= ?1", 8), "0,-1");
  EXPECT_EQ(read("rowid > ?1", INT64_MAX), "0,-1");
  EXPECT_EQ(read("rowid >= ?1 AND rowid < 3", 1), "2,1");
}

TEST_F(MemoryRowsTest, TheTableCannotBePutInASchemaNorRegisteredTwice) {
  EXPECT_FALSE(db_->Exec("CREATE VIRTUAL TABLE kept USING pending;").ok());
  EXPECT_FALSE(MemoryRows::Register(*db_, "pending", {"x"}).ok());
  EXPECT_FALSE(MemoryRows::Register(*db_, "other", {}).ok());
}

}  // namespace
}  // namespace ferry::base
