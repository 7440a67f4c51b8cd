// The encrypted buffer on its own: schema, accounting, eviction order, outbox, reopen.
#include "sdk/core/buffer.h"

#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace ferry::core {
namespace {

class BufferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/ferry-store-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    path_ = dir_ + "/b.db";
    key_ = base::SecretBytes::Random(32);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<Buffer> Open() {
    auto s = Buffer::Open(path_, key_, base::Logger());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  static NewEvent Ev(const std::string& purpose, int64_t created, size_t body_len = 100) {
    return NewEvent{purpose, created, "", "anon-1", std::string(body_len, 'b')};
  }

  std::string dir_, path_;
  base::SecretBytes key_;
};

TEST_F(BufferTest, AppendCountsAndReopen) {
  auto s = Open();
  ASSERT_TRUE(s->Append({Ev("analytics", 1), Ev("analytics", 2), Ev("marketing", 3)}).ok());
  auto c = s->Counts();
  EXPECT_EQ(c["analytics"].events, 2);
  EXPECT_EQ(c["marketing"].events, 1);
  EXPECT_EQ(s->TotalBytes(), 3 * (100 + Buffer::kRowOverhead));
  s.reset();
  s = Open();
  EXPECT_EQ(s->Counts()["analytics"].events, 2);
  EXPECT_EQ(s->TotalBytes(), 3 * (100 + Buffer::kRowOverhead));
}

TEST_F(BufferTest, NextBatchOnlyGivesSendablePurposesInOrder) {
  auto s = Open();
  ASSERT_TRUE(s->Append({Ev("marketing", 1), Ev("analytics", 2), Ev("necessary", 3), Ev("analytics", 4)}).ok());
  auto b = s->NextBatch({"analytics", "necessary"}, 10, 1 << 20);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 3u);
  EXPECT_LT((*b)[0].seq, (*b)[1].seq);
  EXPECT_EQ((*b)[1].purpose, "necessary");
  auto small = s->NextBatch({"analytics", "necessary"}, 10, 150);  // bytes cap, at least one
  ASSERT_EQ(small->size(), 1u);
  ASSERT_TRUE(s->Delete(b.value()).ok());
  ASSERT_TRUE(s->Delete(b.value()).ok());  // twice is harmless and not double-counted
  EXPECT_EQ(s->Counts().count("analytics"), 0u);
  EXPECT_EQ(s->Counts()["marketing"].events, 1);
  EXPECT_FALSE(s->AnyUpTo({"analytics"}, 1000).value());
  EXPECT_TRUE(s->AnyUpTo({"marketing"}, 1000).value());
}

TEST_F(BufferTest, EvictionTakesOldestNonNecessaryThenAge) {
  auto s = Open();
  std::vector<NewEvent> evs;
  evs.push_back(Ev("necessary", 1));
  for (int i = 0; i < 9; ++i) evs.push_back(Ev("analytics", 10 + i));
  ASSERT_TRUE(s->Append(evs).ok());
  int64_t row = 100 + Buffer::kRowOverhead;
  auto ev = s->Evict(5 * row, INT64_MIN);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->events, 5);
  EXPECT_EQ(s->Counts()["necessary"].events, 1);
  EXPECT_EQ(s->Counts()["analytics"].events, 4);
  auto rest = s->NextBatch({"analytics"}, 10, 1 << 20);
  ASSERT_EQ(rest->size(), 4u);
  // Age: everything created before 16 goes (only 15 is left of those), except necessary.
  ev = s->Evict(1 << 30, 16);
  EXPECT_EQ(ev->events, 1);
  EXPECT_EQ(s->Counts()["necessary"].events, 1);
  // Size as a last resort takes necessary too.
  ev = s->Evict(0, INT64_MIN);
  EXPECT_EQ(s->TotalBytes(), 0);
}

TEST_F(BufferTest, ConsentPurgeAndDefaults) {
  auto s = Open();
  ASSERT_TRUE(s->Append({Ev("marketing", 1), Ev("marketing", 2), Ev("analytics", 3)}).ok());
  ASSERT_TRUE(s->ApplyDefaultConsent({{"analytics", Consent::kGranted}}).ok());
  NewEvent rec = Ev("necessary", 4);
  auto purged = s->SetConsent("marketing", ConsentRow{Consent::kDenied, true, 5}, true, &rec);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged.value(), 2);
  auto rows = s->LoadConsent();
  EXPECT_EQ(rows["marketing"].state, Consent::kDenied);
  EXPECT_TRUE(rows["marketing"].explicit_choice);
  EXPECT_EQ(rows["analytics"].state, Consent::kGranted);
  EXPECT_FALSE(rows["analytics"].explicit_choice);
  // New defaults replace old defaults but never a user's choice.
  ASSERT_TRUE(s->ApplyDefaultConsent({{"marketing", Consent::kGranted}}).ok());
  rows = s->LoadConsent();
  EXPECT_EQ(rows.count("analytics"), 0u);
  EXPECT_EQ(rows["marketing"].state, Consent::kDenied);
  EXPECT_EQ(s->Counts()["necessary"].events, 1);
}

TEST_F(BufferTest, OutboxAndMetaSurviveReopen) {
  auto s = Open();
  ASSERT_TRUE(s->AddOutbox("forget", R"({"anonymousIds":["a"]})").ok());
  ASSERT_TRUE(s->PutMeta("k", "v").ok());
  s.reset();
  s = Open();
  auto ob = s->Outbox("forget");
  ASSERT_EQ(ob->size(), 1u);
  EXPECT_EQ(s->GetMeta("k").value_or(""), "v");
  ASSERT_TRUE(s->DeleteOutbox((*ob)[0].first).ok());
  EXPECT_TRUE(s->Outbox("forget")->empty());
}

TEST_F(BufferTest, WrongKeyMovesTheFileAside) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Append({Ev("analytics", 1)}).ok());
  }
  auto other = base::SecretBytes::Random(32);
  auto s = Buffer::Open(path_, other, base::Logger());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value()->TotalBytes(), 0);
  int aside = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    aside += e.path().filename().string().rfind("b.db.corrupt-", 0) == 0;
  }
  EXPECT_EQ(aside, 1);
}

}  // namespace
}  // namespace ferry::core

namespace ferry::core {
namespace {
TEST_F(BufferTest, RepeatedEvictionKeepsAccountingExact) {
  auto s = Open();
  int64_t evicted = 0;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(s->Append({Ev("analytics", i, 1000)}).ok());
    auto ev = s->Evict(64 * 1024, INT64_MIN);
    ASSERT_TRUE(ev.ok());
    evicted += ev->events;
  }
  auto left = s->NextBatch({"analytics"}, 1000, 1 << 30);
  EXPECT_EQ(static_cast<int64_t>(left->size()) + evicted, 300);
  EXPECT_EQ(s->Counts()["analytics"].events, static_cast<int64_t>(left->size()));
  EXPECT_LE(s->TotalBytes(), 64 * 1024);
}
}  // namespace
}  // namespace ferry::core
