// The encrypted buffer on its own: schema, accounting, eviction order, outbox, reopen.
#include "sdk/core/buffer.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zstd.h>

#include "lib/base/sqlite.h"
#include "sdk/core/event_codec.h"

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
    return NewEvent{purpose, created, "", "anon-1", std::string(body_len, 'b'), "", 0};
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

// NextBatch against a model of the queue: the first max_events sendable events in seq order, past after_seq, within
// max_bytes, whether the sendable ones lie together (one range read) or spread among events held back (row by row).
TEST_F(BufferTest, NextBatchTakesTheOldestSendableEventsAcrossPurposes) {
  auto s = Open();
  std::vector<NewEvent> evs;
  std::vector<std::string> purpose_of;  // by position (seq order)
  // 300 events: mostly analytics and necessary interleaved; a stretch of marketing (held back) in the middle, and a
  // tail where marketing outnumbers the others.
  for (int i = 0; i < 300; ++i) {
    std::string p =
        (i >= 100 && i < 160) || (i >= 220 && i % 5 != 0) ? "marketing" : (i % 3 == 0 ? "necessary" : "analytics");
    evs.push_back(Ev(p, i, 100 + static_cast<size_t>(i % 7)));
    purpose_of.push_back(p);
  }
  ASSERT_TRUE(s->Append(evs).ok());
  auto all = s->NextBatch({"analytics", "marketing", "necessary"}, 1000, 1u << 30);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 300u);
  std::vector<int64_t> seq_of;
  for (const QueuedEvent& e : *all) seq_of.push_back(e.seq);
  const std::set<std::string> sendable = {"analytics", "necessary"};
  for (size_t max_events : {size_t{1}, size_t{7}, size_t{50}, size_t{120}, size_t{1000}}) {
    for (size_t from : {size_t{0}, size_t{90}, size_t{150}, size_t{230}, size_t{299}}) {
      const int64_t after = from == 0 ? 0 : seq_of[from];
      std::vector<size_t> want;
      for (size_t i = 0; i < 300 && want.size() < max_events; ++i) {
        if (seq_of[i] > after && sendable.count(purpose_of[i]) > 0) want.push_back(i);
      }
      auto got = s->NextBatch(sendable, max_events, 1u << 30, after);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(got->size(), want.size()) << max_events << " after " << after;
      for (size_t k = 0; k < want.size(); ++k) {
        EXPECT_EQ((*got)[k].seq, seq_of[want[k]]);
        EXPECT_EQ((*got)[k].purpose, purpose_of[want[k]]);
        EXPECT_EQ((*got)[k].body, evs[want[k]].body);
        EXPECT_EQ((*got)[k].size, (*all)[want[k]].size);
      }
    }
  }
  // max_bytes: whole events up to it, at least one.
  auto two = s->NextBatch(sendable, 100, 2 * 106 + 50);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  auto one = s->NextBatch(sendable, 100, 10);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  // Events deleted in between are not given.
  std::vector<QueuedEvent> gone((*all).begin() + 1, (*all).begin() + 40);
  ASSERT_TRUE(s->Delete(gone).ok());
  auto rest = s->NextBatch(sendable, 5, 1u << 30);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 5u);
  EXPECT_EQ((*rest)[0].seq, seq_of[0]);
  EXPECT_GT((*rest)[1].seq, seq_of[39]);
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

// Delete takes a batch's runs of consecutive seqs in range deletes: an event of another purpose between two runs
// stays, and a run some of whose events are gone already (a purge meanwhile) counts only those that were there.
TEST_F(BufferTest, DeleteTakesRunsAndLeavesWhatLiesBetween) {
  auto s = Open();
  ASSERT_TRUE(s->Append({Ev("analytics", 1), Ev("analytics", 2), Ev("marketing", 3), Ev("analytics", 4),
                         Ev("analytics", 5), Ev("marketing", 6), Ev("analytics", 7)})
                  .ok());
  auto b = s->NextBatch({"analytics"}, 10, 1 << 20);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 5u);
  // Out of order, as a caller may hand them: runs are found by seq.
  std::vector<QueuedEvent> shuffled = {(*b)[3], (*b)[0], (*b)[4], (*b)[2], (*b)[1]};
  ASSERT_TRUE(s->Delete(shuffled).ok());
  EXPECT_EQ(s->Counts().count("analytics"), 0u);
  EXPECT_EQ(s->Counts()["marketing"].events, 2);
  EXPECT_EQ(s->TotalBytes(), 2 * (100 + Buffer::kRowOverhead));
  auto m = s->NextBatch({"marketing"}, 10, 1 << 20);
  ASSERT_EQ(m->size(), 2u);

  // A run with a hole: the marketing events go by consent (purge), then a batch naming them is deleted.
  ASSERT_TRUE(s->Append({Ev("analytics", 8), Ev("analytics", 9)}).ok());
  auto all = s->NextBatch({"analytics", "marketing"}, 10, 1 << 20);
  ASSERT_EQ(all->size(), 4u);
  ConsentRow denied;
  denied.state = Consent::kDenied;
  auto purged = s->SetConsent("marketing", denied, true, nullptr);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged.value(), 2);
  ASSERT_TRUE(s->Delete(all.value()).ok());
  EXPECT_EQ(s->Counts().count("analytics"), 0u);
  EXPECT_EQ(s->Counts().count("marketing"), 0u);
  EXPECT_EQ(s->TotalBytes(), 0);
  auto left = s->NextBatch({"analytics", "marketing"}, 10, 1 << 20);
  EXPECT_TRUE(left->empty());
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

// Schema 2 keeps the receipt of each consent state; a buffer written at schema 1 keeps its states (receipt "") and
// takes receipts from then on.
TEST_F(BufferTest, ConsentRowsOfASchemaOneBufferAreKeptAndTakeReceipts) {
  {
    auto s = Open();
    ASSERT_TRUE(
        s->SetConsent("marketing", ConsentRow{Consent::kGranted, true, 5, "r-1", "explicit", "v1"}, false, nullptr)
            .ok());
    EXPECT_EQ(s->LoadConsent()["marketing"].receipt, "r-1");
    EXPECT_EQ(s->LoadConsent()["marketing"].method, "explicit");  // schema 4
    EXPECT_EQ(s->LoadConsent()["marketing"].notice_version, "v1");
  }
  {
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec(R"sql(
ALTER TABLE consent RENAME TO consent2;
CREATE TABLE consent(purpose TEXT PRIMARY KEY, state INTEGER NOT NULL, explicit INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
INSERT INTO consent SELECT purpose, state, explicit, updated_ms FROM consent2;
DROP TABLE consent2;
)sql")
                    .ok())
        << db->ErrMsg();
    ASSERT_TRUE(db->SetUserVersion(1).ok());
  }
  auto s = Open();
  ASSERT_NE(s, nullptr);
  auto rows = s->LoadConsent();
  EXPECT_EQ(rows["marketing"].state, Consent::kGranted);
  EXPECT_EQ(rows["marketing"].method, "");  // unknown before schema 4
  EXPECT_EQ(rows["marketing"].notice_version, "");
  EXPECT_TRUE(rows["marketing"].explicit_choice);
  EXPECT_EQ(rows["marketing"].receipt, "");
  ASSERT_TRUE(
      s->SetConsent("marketing", ConsentRow{Consent::kDenied, true, 6, "r-2", "explicit", ""}, true, nullptr).ok());
  EXPECT_EQ(s->LoadConsent()["marketing"].receipt, "r-2");
}

TEST_F(BufferTest, ConsentPurgeAndDefaults) {
  auto s = Open();
  ASSERT_TRUE(s->Append({Ev("marketing", 1), Ev("marketing", 2), Ev("analytics", 3)}).ok());
  ASSERT_TRUE(s->ApplyDefaultConsent({{"analytics", Consent::kGranted}}).ok());
  NewEvent rec = Ev("necessary", 4);
  auto purged = s->SetConsent("marketing", ConsentRow{Consent::kDenied, true, 5, "", "explicit", ""}, true, &rec);
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

// Files in the test directory whose name starts with prefix.
int CountPrefixed(const std::string& dir, const std::string& prefix) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    n += e.path().filename().string().rfind(prefix, 0) == 0;
  return n;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST_F(BufferTest, WrongKeyIsRefusedAndNothingMoves) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Append({Ev("analytics", 1)}).ok());
  }
  std::string before = ReadFile(path_);
  auto other = base::SecretBytes::Random(32);
  auto s = Buffer::Open(path_, other, base::Logger());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().Is(base::Code::kCorruption)) << s.status().ToString();
  EXPECT_NE(s.status().message().find("key check"), std::string::npos) << s.status().message();
  EXPECT_EQ(CountPrefixed(dir_, "b.db.corrupt-") + CountPrefixed(dir_, "b.db.unreadable-"), 0);
  EXPECT_EQ(ReadFile(path_), before);
  // The right key still has everything.
  auto again = Open();
  EXPECT_EQ(again->Counts()["analytics"].events, 1);
}

TEST_F(BufferTest, WrongKeyWithResetSetsTheFileAsideAndMarksConsentLost) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Append({Ev("analytics", 1)}).ok());
    ASSERT_TRUE(
        s->SetConsent("marketing", ConsentRow{Consent::kDenied, true, 1, "", "explicit", ""}, true, nullptr).ok());
  }
  auto other = base::SecretBytes::Random(32);
  BufferOpenOptions o;
  o.unreadable = UnreadablePolicy::kReset;
  BufferOpenReport report;
  auto s = Buffer::Open(path_, other, base::Logger(), o, &report);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(report.reset);
  EXPECT_TRUE(report.consent_lost);
  EXPECT_EQ(s.value()->TotalBytes(), 0);
  EXPECT_TRUE(s.value()->GetMeta(Buffer::kMetaConsentLost).has_value());
  EXPECT_EQ(CountPrefixed(dir_, "b.db.unreadable-"), 3);  // the file, its -wal and -shm
  s.value().reset();
  // The set-aside file still opens with the old key.
  std::string aside;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    std::string name = e.path().filename().string();
    if (name.rfind("b.db.unreadable-", 0) == 0 && name.find_first_of("-.", 16) == std::string::npos) {
      aside = e.path().string();
    }
  }
  ASSERT_FALSE(aside.empty());
  auto old = Buffer::Open(aside, key_, base::Logger());
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old.value()->Counts()["analytics"].events, 1);
  EXPECT_EQ(old.value()->LoadConsent()["marketing"].state, Consent::kDenied);
}

TEST_F(BufferTest, AFileWithoutKeyCheckThatCannotBeReadIsNotTouched) {
  {
    std::ofstream f(path_, std::ios::binary);
    f << std::string(8192, '\x5a');
  }
  auto s = Buffer::Open(path_, key_, base::Logger());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().Is(base::Code::kCorruption)) << s.status().ToString();
  EXPECT_EQ(ReadFile(path_), std::string(8192, '\x5a'));
}

TEST_F(BufferTest, ASecondOpenerIsRefusedAndNothingMoves) {
  auto first = Open();
  ASSERT_TRUE(first->Append({Ev("analytics", 1)}).ok());
  for (const base::SecretBytes& key : {key_, base::SecretBytes::Random(32)}) {
    BufferOpenOptions o;
    o.unreadable = UnreadablePolicy::kReset;  // even a reset never touches a buffer in use
    auto second = Buffer::Open(path_, key, base::Logger(), o);
    ASSERT_FALSE(second.ok());
    EXPECT_TRUE(second.status().Is(base::Code::kStorage));
    EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status().message();
  }
  EXPECT_EQ(CountPrefixed(dir_, "b.db.corrupt-") + CountPrefixed(dir_, "b.db.unreadable-"), 0);
  ASSERT_TRUE(first->Append({Ev("analytics", 2)}).ok());
  first.reset();  // the lock goes with the buffer
  EXPECT_EQ(Open()->Counts()["analytics"].events, 2);
}

TEST_F(BufferTest, FilesAreOwnerOnly) {
  mode_t old = umask(022);
  {
    auto s = Open();
    ASSERT_TRUE(s->Append({Ev("analytics", 1)}).ok());
    for (const char* suffix : {"", "-wal", "-shm", ".lock", ".keycheck", ".reserve"}) {
      struct stat st {};
      ASSERT_EQ(stat((path_ + suffix).c_str(), &st), 0) << suffix;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << suffix;
    }
  }
  // A file someone widened is narrowed at the next open.
  ASSERT_EQ(chmod(path_.c_str(), 0644), 0);
  Open();
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  umask(old);
}

// Fills a buffer with n events (bodies "event-<i>" padded), a denied purpose and some meta, then closes it. The
// padding is pseudo-random letters and digits, as little compressible as real values (the buffer stores events
// compressed, schema 3), so that the events span hundreds of pages.
void Fill(BufferTest* t, Buffer* s, int n) {
  ASSERT_TRUE(
      s->SetConsent("marketing", ConsentRow{Consent::kDenied, true, 1, "", "explicit", ""}, true, nullptr).ok());
  ASSERT_TRUE(s->PutMeta("anonymous_id", "anon-kept").ok());
  std::vector<NewEvent> evs;
  uint32_t x = 16;
  for (int i = 0; i < n; ++i) {
    std::string pad;
    for (int k = 0; k < 600; ++k) {
      x = x * 1664525u + 1013904223u;
      pad.push_back("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[(x >> 24) % 62]);
    }
    std::string body = "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + pad + "\"}";
    evs.push_back(NewEvent{"analytics", i, "", "anon-1", body, "", 0});
  }
  ASSERT_TRUE(s->Append(evs).ok());
  (void)t;
}

// The file as a copy without its WAL would be (the WAL keeps a copy of recent pages; damage must reach the file).
void DropWal(const std::string& path) {
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}

// Overwrites the page in the middle of the file, leaving its size and its WAL as they are. (After a clean close, the
// callers reopen and close once first: a WAL still holding the page would hide the damage from any reader and the
// open's checkpoint would repair it; the second close starts the WAL over.)
void DamageInPlace(const std::string& path) {
  auto size = std::filesystem::file_size(path);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>((size / 4096 / 2) * 4096));
  f << std::string(4096, '\x33');
}

// Opens the damaged buffer at path: it is salvaged, and a damaged page costs only the rows on it (about 10 events of
// ~400 bytes live on a 4 KiB page; an interior page would cost more, never most of them).
std::unique_ptr<Buffer> OpenSalvagedMost(const std::string& path, const base::SecretBytes& key) {
  BufferOpenReport report;
  auto s = Buffer::Open(path, key, base::Logger(), {}, &report);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  EXPECT_TRUE(report.salvaged) << report.reason;
  EXPECT_GE(report.salvaged_events, 1900);
  EXPECT_LT(report.salvaged_events, 2000);
  EXPECT_EQ(s.value()->Counts()["analytics"].events, report.salvaged_events);
  return std::move(s).value();
}

TEST_F(BufferTest, ATruncatedFileIsSalvaged) {
  {
    auto s = Open();
    Fill(this, s.get(), 2000);
  }
  DropWal(path_);
  auto size = std::filesystem::file_size(path_);
  ASSERT_GT(size, 200u * 4096);
  std::filesystem::resize_file(path_, (size / 4096) * 4096 * 6 / 10 / 4096 * 4096);
  BufferOpenReport report;
  auto s = Buffer::Open(path_, key_, base::Logger(), {}, &report);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(report.salvaged) << report.reason;
  ASSERT_GT(report.salvaged_events, 0) << report.reason;
  EXPECT_LT(report.salvaged_events, 2000);
  EXPECT_EQ(s.value()->Counts()["analytics"].events, report.salvaged_events);
  auto batch = s.value()->NextBatch({"analytics"}, 5000, 1u << 30);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(static_cast<int64_t>(batch->size()), report.salvaged_events);
  EXPECT_NE(batch->front().body.find("\"i\":0,"), std::string::npos);  // the oldest came through
  // Each keeps its anonymousId (a compressed row leaves it to its dictionary's scope).
  auto mine = s.value()->EventsFor("", {"anon-1"});
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(static_cast<int64_t>(mine->size()), report.salvaged_events);
  EXPECT_EQ(s.value()->LoadConsent()["marketing"].state, Consent::kDenied);
  EXPECT_EQ(s.value()->GetMeta("anonymous_id").value_or(""), "anon-kept");
  EXPECT_FALSE(report.consent_lost);
  EXPECT_EQ(CountPrefixed(dir_, "b.db.corrupt-"), 1);
}

TEST_F(BufferTest, ADamagedPageCostsOnlyItsRows) {
  {
    auto s = Open();
    Fill(this, s.get(), 2000);
  }
  DropWal(path_);
  DamageInPlace(path_);  // one page in the middle of the events
  BufferOpenReport report;
  auto s = Buffer::Open(path_, key_, base::Logger(), {}, &report);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(report.salvaged) << report.reason;
  // About 10 events of ~400 bytes live on a 4 KiB page; an interior page would cost more, never most of them.
  EXPECT_GE(report.salvaged_events, 1900);
  EXPECT_LT(report.salvaged_events, 2000);
  EXPECT_EQ(s.value()->LoadConsent()["marketing"].state, Consent::kDenied);
}

// The clean-close marker: written by a close, taken by the next open (so a kill leaves none), and the counts it vouches
// for are the buffer's.
TEST_F(BufferTest, ACleanCloseLeavesAMarkerThatTheNextOpenTakes) {
  {
    auto s = Open();
    Fill(this, s.get(), 300);
    ASSERT_TRUE(s->Append({Ev("necessary", 1)}).ok());
    EXPECT_FALSE(std::filesystem::exists(path_ + ".clean"));
  }
  ASSERT_TRUE(std::filesystem::exists(path_ + ".clean"));
  struct stat st {};
  ASSERT_EQ(stat((path_ + ".clean").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto s = Open();
  EXPECT_FALSE(std::filesystem::exists(path_ + ".clean"));  // a crash from here on leaves no marker
  EXPECT_EQ(s->Counts()["analytics"].events, 300);
  EXPECT_EQ(s->Counts()["necessary"].events, 1);
  auto b = s->NextBatch({"analytics", "necessary"}, 1000, 1u << 30);
  ASSERT_TRUE(b.ok());
  int64_t bytes = 0;
  for (const auto& e : b.value()) bytes += e.size;
  EXPECT_EQ(b->size(), 301u);
  EXPECT_EQ(s->TotalBytes(), bytes);
}

// Damage written after a clean close, even with the file's size and WAL unchanged, is found at open and salvaged.
TEST_F(BufferTest, DamageAfterACleanCloseIsFoundAtOpen) {
  {
    auto s = Open();
    Fill(this, s.get(), 2000);
  }
  Open().reset();
  ASSERT_TRUE(std::filesystem::exists(path_ + ".clean"));
  DamageInPlace(path_);
  ASSERT_NE(OpenSalvagedMost(path_, key_), nullptr);
}

// Damage met while open (a page that no longer authenticates) withholds the marker: the next open checks every page
// and salvages the file.
TEST_F(BufferTest, DamageMetWhileOpenIsSalvagedAtTheNextOpen) {
  {
    auto s = Open();
    Fill(this, s.get(), 2000);
  }
  Open().reset();
  {
    auto s = Open();  // after a clean close: the pages are not read at open
    DamageInPlace(path_);
    auto b = s->NextBatch({"analytics"}, 5000, 1u << 30);
    EXPECT_TRUE(!b.ok() || b->size() < 2000u);
  }
  EXPECT_FALSE(std::filesystem::exists(path_ + ".clean"));
  ASSERT_NE(OpenSalvagedMost(path_, key_), nullptr);
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

// Schema 3: events stored as zstd BLOBs against the buffer's dictionary, read back byte for byte; a schema-2 buffer of
// TEXT rows migrated and read beside new rows; no user data in the dictionary. An event as the client writes it:
std::string CodecBody(int i, const std::string& anon = "5d1f7a52-0c1b-4b53-9a51-1f0f5e0c2a11") {
  return R"({"messageId":"0c6f2b8e-3a7d-4e55-8d2b-)" + std::to_string(100000000000 + i) + R"(","deviceSeq":)" +
         std::to_string(i) + R"(,"consentReceipt":"r-1","type":"track","event":"Product Viewed","anonymousId":")" +
         anon + R"(","timestamp":"2026-12-01T03:00:00.123Z","purpose":"analytics","properties":{"sku":"SKU-)" +
         std::to_string(7919 * i % 100000) +
         R"(","name":"Running Shoes","price":6.37,"quantity":2},"context":{"app":{"name":"bench","version":"1.0.0"},)"
         R"("consent":{"analytics":"granted"},"library":{"name":"ferry","version":"0.9.0"},"locale":"en-US",)"
         R"("os":{"name":"Linux","version":"6.1"},"sessionId":"9a8b7c6d-1111-4222-8333-444455556666",)"
         R"("timezone":"UTC"}})";
}
NewEvent CodecEv(int i, const std::string& body) { return NewEvent{"analytics", i, "", "anon-1", body, "", 0}; }

TEST_F(BufferTest, EventsAreStoredCompressedAndReadBackExactly) {
  std::vector<NewEvent> evs;
  for (int i = 1; i <= 50; ++i) evs.push_back(CodecEv(i, CodecBody(i)));
  {
    auto s = Open();
    ASSERT_TRUE(s->Append(evs).ok());
    auto b = s->NextBatch({"analytics"}, 100, 1 << 20);
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b->size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ((*b)[i].body, evs[i].body);
    // Accounting is by the JSON's size, as before.
    EXPECT_EQ(s->TotalBytes(), static_cast<int64_t>(50 * Buffer::kRowOverhead + [&] {
                size_t n = 0;
                for (const auto& e : evs) n += e.body.size();
                return n;
              }()));
  }
  auto db = base::Db::OpenEncrypted(path_, key_);
  ASSERT_TRUE(db.ok());
  auto st = db->Prepare("SELECT typeof(body), length(body), count(*) FROM events GROUP BY 1, 2 ORDER BY 2 DESC");
  ASSERT_TRUE(st.ok());
  size_t json_max = 0;
  for (const auto& e : evs) json_max = std::max(json_max, e.body.size());
  int64_t rows = 0;
  while (st->Step()) {
    EXPECT_EQ(st->Text(0), "blob");
    EXPECT_LT(st->Int(1) * 2, static_cast<int64_t>(json_max)) << "not compressed to under half";
    rows += st->Int(2);
  }
  EXPECT_EQ(rows, 50);
  // Reopened: the dictionary is loaded from the file.
  auto s = Open();
  auto b = s->NextBatch({"analytics"}, 100, 1 << 20);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 50u);
  EXPECT_EQ((*b)[49].body, evs[49].body);
  auto mine = s->EventsFor("", {"anon-1"});
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 50u);
  EXPECT_EQ((*mine)[7], evs[7].body);
}

// The stored forms of every event, in seq order (read straight from the file).
std::vector<std::string> StoredBodies(const std::string& path, const base::SecretBytes& key) {
  std::vector<std::string> out;
  auto db = base::Db::OpenEncrypted(path, key);
  if (!db.ok()) return out;
  auto st = db->Prepare("SELECT body FROM events ORDER BY seq");
  if (!st.ok()) return out;
  while (st->Step()) {
    const void* p = sqlite3_column_blob(st->get(), 0);
    out.emplace_back(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st->get(), 0)));
  }
  return out;
}

TEST_F(BufferTest, EventsCompressedAheadAreStoredAsAppendWouldStoreThem) {
  std::vector<NewEvent> first, ahead, inline_made;
  for (int i = 1; i <= 20; ++i) first.push_back(CodecEv(i, CodecBody(i)));
  for (int i = 21; i <= 50; ++i) ahead.push_back(CodecEv(i, CodecBody(i)));
  // Another device's event (an agent's other app): not of the dictionary's scope, so not compressed ahead.
  NewEvent other = CodecEv(51, CodecBody(51, "0a0b0c0d-1111-4222-8333-444455556666"));
  other.anonymous_id = "anon-2";
  ahead.push_back(other);
  inline_made = ahead;
  {
    auto s = Open();
    // Nothing to compress with before the first append made a dictionary.
    EventCodec::Precompressor with;
    s->Precompress(&with, inline_made);
    for (const NewEvent& e : inline_made) EXPECT_TRUE(e.stored.empty());
    ASSERT_TRUE(s->Append(first).ok());
    s->Precompress(&with, ahead);
    for (size_t i = 0; i + 1 < ahead.size(); ++i) {
      EXPECT_FALSE(ahead[i].stored.empty()) << i;
      EXPECT_NE(ahead[i].stored_generation, 0u) << i;
    }
    EXPECT_TRUE(ahead.back().stored.empty()) << "another scope's event";
    ASSERT_TRUE(s->Append(ahead).ok());
    auto b = s->NextBatch({"analytics"}, 100, 1 << 20);
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b->size(), 51u);
    for (size_t i = 0; i < ahead.size(); ++i) EXPECT_EQ((*b)[20 + i].body, ahead[i].body) << i;
  }
  // The rows hold exactly the forms made ahead: the commit inserted them...
  std::vector<std::string> stored = StoredBodies(path_, key_);
  ASSERT_EQ(stored.size(), 51u);
  for (size_t i = 0; i + 1 < ahead.size(); ++i) EXPECT_EQ(stored[20 + i], ahead[i].stored) << i;
  // ...and they are byte for byte what the commit makes itself of the same events in a buffer with the same history.
  const std::string other_path = dir_ + "/inline.db";
  {
    auto s = Buffer::Open(other_path, key_, base::Logger());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->Append(first).ok());
    ASSERT_TRUE((*s)->Append(inline_made).ok());
  }
  std::vector<std::string> made_inline = StoredBodies(other_path, key_);
  ASSERT_EQ(made_inline.size(), stored.size());
  for (size_t i = 0; i < stored.size(); ++i) EXPECT_EQ(made_inline[i], stored[i]) << i;
}

TEST_F(BufferTest, AFormCompressedAheadOfADictionaryChangeIsMadeAnew) {
  std::vector<NewEvent> first, ahead;
  for (int i = 1; i <= 20; ++i) first.push_back(CodecEv(i, CodecBody(i)));
  for (int i = 21; i <= 30; ++i) ahead.push_back(CodecEv(i, CodecBody(i)));
  auto s = Open();
  ASSERT_TRUE(s->Append(first).ok());
  EventCodec::Precompressor with;
  s->Precompress(&with, ahead);
  for (const NewEvent& e : ahead) ASSERT_FALSE(e.stored.empty());
  // An erasure on the device deletes the dictionaries with the events: a form made with the old one names a
  // dictionary that is gone, and would be unreadable if it were stored.
  auto gone = s->DeleteAllEvents();
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(*gone, 20);
  ASSERT_TRUE(s->Append(ahead).ok());
  auto b = s->NextBatch({"analytics"}, 100, 1 << 20);
  ASSERT_TRUE(b.ok()) << b.status().message();
  ASSERT_EQ(b->size(), ahead.size());
  for (size_t i = 0; i < ahead.size(); ++i) EXPECT_EQ((*b)[i].body, ahead[i].body) << i;
  s.reset();
  std::vector<std::string> stored = StoredBodies(path_, key_);
  ASSERT_EQ(stored.size(), ahead.size());
  for (size_t i = 0; i < ahead.size(); ++i) EXPECT_NE(stored[i], ahead[i].stored) << i;
}

TEST_F(BufferTest, ASchemaTwoBufferMigratesAndKeepsItsTextRows) {
  // A buffer as schema 2 left it: no dicts table, every body TEXT.
  { ASSERT_NE(Open(), nullptr); }
  {
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec("DROP TABLE dicts;").ok()) << db->ErrMsg();
    auto ins =
        db->Prepare("INSERT INTO events(purpose, created_ms, size, user_id, anonymous_id, body) VALUES(?,?,?,?,?,?)");
    ASSERT_TRUE(ins.ok());
    for (int i = 1; i <= 3; ++i) {
      std::string body = CodecBody(i);
      ins->Bind(1, "analytics").Bind(2, i).Bind(3, static_cast<int64_t>(body.size()) + Buffer::kRowOverhead);
      ins->BindNull(4).Bind(5, "anon-1").Bind(6, body);
      ASSERT_TRUE(ins->Run().ok());
    }
    ASSERT_TRUE(db->SetUserVersion(2).ok());
  }
  auto s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->Counts()["analytics"].events, 3);
  ASSERT_TRUE(s->Append({CodecEv(4, CodecBody(4)), CodecEv(5, CodecBody(5))}).ok());
  auto b = s->NextBatch({"analytics"}, 10, 1 << 20);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*b)[i].body, CodecBody(i + 1)) << i;
  s.reset();
  auto db = base::Db::OpenEncrypted(path_, key_);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db->UserVersion(), Buffer::kSchemaVersion);
  auto st = db->Prepare("SELECT typeof(body) FROM events ORDER BY seq");
  ASSERT_TRUE(st.ok());
  std::vector<std::string> types;
  while (st->Step()) types.push_back(st->Text(0));
  EXPECT_EQ(types, (std::vector<std::string>{"text", "text", "text", "blob", "blob"}));
}

// Rows of the dicts table: bytes, scope.
std::vector<std::pair<std::string, std::string>> DictRows(base::Db* db) {
  std::vector<std::pair<std::string, std::string>> out;
  auto st = db->Prepare("SELECT bytes, coalesce(scope, '') FROM dicts ORDER BY id");
  EXPECT_TRUE(st.ok());
  while (st.ok() && st->Step()) out.emplace_back(st->Text(0), st->Text(1));
  return out;
}

TEST_F(BufferTest, TheDictionaryHasEntropyTablesFromTheFirstEventsAndAContentOnlyOneIsReplaced) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Append({CodecEv(1, CodecBody(1))}).ok());
  }
  const std::string content = R"({"messageId":"00000000-0000-4000-8000-000000000000","deviceSeq":1,"type":"track"})";
  {
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    auto d = DictRows(&*db);
    ASSERT_EQ(d.size(), 1u);
    // A zstd dictionary with tables starts with its magic number (0xEC30A437, little endian).
    EXPECT_EQ(d[0].first.substr(0, 4), std::string("\x37\xA4\x30\xEC", 4));
    EXPECT_TRUE(EventCodec::HasTables(d[0].first));
    EXPECT_EQ(d[0].second, "anon-1\n\n9a8b7c6d-1111-4222-8333-444455556666");
    // The buffer as it was before the tables: its dictionary the content alone (no scope), its event compressed
    // against it.
    EventCodec old;
    ASSERT_TRUE(old.AddDictionary(1, content, true).ok());
    EXPECT_FALSE(old.current_has_tables());
    std::string blob;
    ASSERT_TRUE(old.Compress(CodecBody(1), &blob));
    auto up = db->Prepare("UPDATE dicts SET bytes = ?, scope = NULL, first_seq = NULL, samples = 0 WHERE id = 1");
    ASSERT_TRUE(up.ok());
    ASSERT_TRUE(up->BindBlob(1, content.data(), content.size()).Run().ok());
    auto ev = db->Prepare("UPDATE events SET body = ?");
    ASSERT_TRUE(ev.ok());
    ASSERT_TRUE(ev->BindBlob(1, blob.data(), blob.size()).Run().ok());
  }
  std::vector<std::string> bodies = {CodecBody(1)};
  {
    auto s = Open();
    std::vector<NewEvent> evs;
    for (int i = 2; i <= 21; ++i) {
      evs.push_back(CodecEv(i, CodecBody(i)));
      bodies.push_back(CodecBody(i));
    }
    ASSERT_TRUE(s->Append(evs).ok());
    ASSERT_TRUE(s->Append({CodecEv(22, CodecBody(22))}).ok());
    bodies.push_back(CodecBody(22));
  }
  {
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    auto d = DictRows(&*db);
    // The old one kept (its event is still queued), one with tables from the first 16 events of the batch; the
    // event after it has the same scope and uses it.
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].first, content);
    EXPECT_TRUE(EventCodec::HasTables(d[1].first));
    auto st = db->Prepare("SELECT samples, first_seq FROM dicts WHERE id = 2");
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(st->Step());
    EXPECT_EQ(st->Int(0), 16);
    EXPECT_EQ(st->Int(1), 2);  // the seq of the first event that used it
    // Its frames carry no zstd dictionary id (4 bytes each): the row's own prefix names the dictionary.
    auto rows = db->Prepare("SELECT body FROM events WHERE seq >= 2");
    ASSERT_TRUE(rows.ok());
    int framed = 0;
    while (rows->Step()) {
      std::string b = rows->Text(0);
      ASSERT_GT(b.size(), 4u);
      ASSERT_EQ(EventCodec::DictionaryIdOf(b), 2);
      EXPECT_EQ(ZSTD_getDictID_fromFrame(b.data() + 4, b.size() - 4), 0u);
      ++framed;
    }
    EXPECT_EQ(framed, 21);
  }
  auto s = Open();  // reopened: every dictionary is read back; every row decodes; the same scope needs no new one
  ASSERT_TRUE(s->Append({CodecEv(23, CodecBody(23))}).ok());
  bodies.push_back(CodecBody(23));
  auto b = s->NextBatch({"analytics"}, 100, 1 << 20);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), bodies.size());
  for (size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ((*b)[i].body, bodies[i]) << i;
  s.reset();
  auto db = base::Db::OpenEncrypted(path_, key_);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(DictRows(&*db).size(), 2u);
}

// An event of anonymousId `anon` in session `session`, as the client writes it.
NewEvent ScopedEv(int i, const std::string& anon, const std::string& session) {
  std::string body = CodecBody(i, anon);
  const std::string old_session = "9a8b7c6d-1111-4222-8333-444455556666";
  body.replace(body.find(old_session), old_session.size(), session);
  return NewEvent{"analytics", i, "", anon, body, "", 0};
}

TEST_F(BufferTest, ADictionaryCarriesTheIdsOfItsEventsNeverTheirContentAndGoesWithThem) {
  const std::string a = "77777777-aaaa-4bbb-8ccc-dddddddddddd", b = "88888888-aaaa-4bbb-8ccc-dddddddddddd";
  const std::string session = "5e55e55e-1111-4222-8333-444455556666";
  auto s = Open();
  std::vector<NewEvent> evs;
  for (int i = 1; i <= 3; ++i) evs.push_back(ScopedEv(i, a, session));
  ASSERT_TRUE(s->Append(evs).ok());
  {
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    auto d = DictRows(&*db);
    ASSERT_EQ(d.size(), 1u);
    const std::string& dict = d[0].first;
    // The ids and facts its events share are there ...
    for (const char* shared : {"77777777-aaaa", "5e55e55e-1111", "\"r-1\"", "\"app\":{\"name\":\"bench\""}) {
      EXPECT_NE(dict.find(shared), std::string::npos) << shared << " not in " << dict;
    }
    // ... never an event's own parts: the random part of its messageId, its name, its properties.
    for (const char* own : {"0c6f2b8e", "Product Viewed", "SKU-", "Running Shoes", "6.37"}) {
      EXPECT_EQ(dict.find(own), std::string::npos) << own << " in " << dict;
    }
  }
  // Another device's events (an agent's other app): a dictionary of theirs.
  const std::vector<NewEvent> of_a = evs;
  evs.clear();
  for (int i = 4; i <= 6; ++i) evs.push_back(ScopedEv(i, b, session));
  ASSERT_TRUE(s->Append(evs).ok());
  {
    // A row leaves the anonymousId of its dictionary's scope to the dictionary (NULL), and is found by it.
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    auto st = db->Prepare("SELECT count(*) FROM events WHERE anonymous_id IS NULL");
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(st->Step());
    EXPECT_EQ(st->Int(0), 6);
  }
  const std::vector<std::pair<std::string, const std::vector<NewEvent>*>> cases = {{a, &of_a}, {b, &evs}};
  for (const auto& [anon, want] : cases) {
    auto mine = s->EventsFor("", {anon});
    ASSERT_TRUE(mine.ok());
    ASSERT_EQ(mine->size(), 3u) << anon;
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*mine)[i], (*want)[i].body) << anon << " " << i;
  }
  auto none = s->EventsFor("", {"99999999-aaaa-4bbb-8ccc-dddddddddddd"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // Once a's events are sent (deleted), its dictionary goes; b's events still read back.
  auto batch = s->NextBatch({"analytics"}, 3, 1 << 20);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 3u);
  ASSERT_TRUE(s->Delete(*batch).ok());
  {
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    auto d = DictRows(&*db);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].first.find("77777777"), std::string::npos);
    EXPECT_NE(d[0].first.find("88888888"), std::string::npos);
  }
  s.reset();
  s = Open();
  auto left = s->NextBatch({"analytics"}, 10, 1 << 20);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*left)[i].body, evs[i].body) << i;
  // Erasure on the device: the dictionaries go with the events; the next event gets a new one.
  ASSERT_TRUE(s->DeleteAllEvents().ok());
  {
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    EXPECT_TRUE(DictRows(&*db).empty());
  }
  ASSERT_TRUE(s->Append({ScopedEv(7, a, session)}).ok());
  auto after = s->NextBatch({"analytics"}, 10, 1 << 20);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].body, ScopedEv(7, a, session).body);
}

TEST_F(BufferTest, ChangesOfScopeGetNewDictionariesAtABoundedRate) {
  auto s = Open();
  // A new session each append: the first gets a dictionary, then kDictionaryBurst more, then one per
  // kEventsPerDictionary events appended.
  std::vector<std::string> bodies;
  for (int i = 1; i <= 12; ++i) {
    char session[40];
    std::snprintf(session, sizeof session, "%08d-1111-4222-8333-444455556666", i);
    NewEvent e = ScopedEv(i, "anon-1", session);
    bodies.push_back(e.body);
    ASSERT_TRUE(s->Append({e}).ok());
  }
  {
    auto db = base::Db::OpenEncrypted(path_, key_);
    ASSERT_TRUE(db.ok());
    EXPECT_EQ(DictRows(&*db).size(), 1u + static_cast<size_t>(Buffer::kDictionaryBurst));
  }
  // 256 events of one more session: the bucket holds one again.
  std::vector<NewEvent> evs;
  for (int i = 0; i < static_cast<int>(Buffer::kEventsPerDictionary); ++i) {
    evs.push_back(ScopedEv(100 + i, "anon-1", "99999999-1111-4222-8333-444455556666"));
    bodies.push_back(evs.back().body);
  }
  ASSERT_TRUE(s->Append(evs).ok());
  auto all = s->NextBatch({"analytics"}, 1000, 1 << 24);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), bodies.size());
  for (size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ((*all)[i].body, bodies[i]) << i;
  s.reset();
  auto db = base::Db::OpenEncrypted(path_, key_);
  ASSERT_TRUE(db.ok());
  auto d = DictRows(&*db);
  ASSERT_EQ(d.size(), 2u + static_cast<size_t>(Buffer::kDictionaryBurst));
  EXPECT_EQ(d.back().second, "anon-1\n\n99999999-1111-4222-8333-444455556666");
}

}  // namespace
}  // namespace ferry::core
