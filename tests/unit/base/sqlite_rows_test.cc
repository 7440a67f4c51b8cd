// base::MemoryRows: rows held in memory that one INSERT ... SELECT stores, in the order given, with each value's
// type kept; the table is the connection's own and cannot be put in a schema.
#include "lib/base/sqlite_rows.h"

#include <stdlib.h>

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

TEST_F(MemoryRowsTest, TheTableCannotBePutInASchemaNorRegisteredTwice) {
  EXPECT_FALSE(db_->Exec("CREATE VIRTUAL TABLE kept USING pending;").ok());
  EXPECT_FALSE(MemoryRows::Register(*db_, "pending", {"x"}).ok());
  EXPECT_FALSE(MemoryRows::Register(*db_, "other", {}).ok());
}

}  // namespace
}  // namespace ferry::base
