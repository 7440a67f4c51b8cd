// Bulk erasure (issue 13 item 8) through a real ferry-collector over TLS and the real ferryctl, on both stores:
// `ferryctl subject erase --from-file` erases a few thousand subjects over POST /v1/erasures (at most 1,000 ids a
// call), with progress on stderr, one completed erasure request and one outbox entry per subject, and a summary that
// names the ids it did not find.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lib/base/time.h"
#include "tests/integration/store_collector.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

constexpr int kSubjects = 2500;

std::string UserId(int i) { return "bulk-user-" + std::to_string(i); }

class BulkEraseTest : public StoreCollectorTest {};

TEST_P(BulkEraseTest, ThousandsOfIdsFromAFileEachWithItsRequestAndOutboxEntry) {
  if (IsSkipped()) return;
  // kSubjects subjects, two events each (a userId and its device), plus one that stays.
  for (int first = 0; first <= kSubjects; first += 400) {
    json batch = json::array();
    for (int i = first; i < std::min(first + 400, kSubjects + 1); ++i) {
      std::string who = i == kSubjects ? std::string("keep-me") : UserId(i);
      for (int n = 0; n < 2; ++n) {
        batch.push_back({{"messageId", who + "-m" + std::to_string(n)},
                         {"type", "track"},
                         {"event", "Bulk Test"},
                         {"userId", who},
                         {"anonymousId", "dev-" + who},
                         {"timestamp", base::FormatIso8601(base::NowMs() - 1000)},
                         {"purpose", "analytics"}});
      }
    }
    auto sent =
        testsupport::HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                                 {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(sent.status, 200) << sent.body;
  }

  const std::string file = col_->data_dir() + "/ids.txt";
  {
    std::ofstream ids(file);
    ids << "# erasure requests of the week\n";
    for (int i = 0; i < kSubjects; ++i) ids << "  " << UserId(i) << "\n";
    ids << "\nnever-seen-1\nnever-seen-2\n";
  }
  int rc = -1;
  std::string out = Ctl("subject erase --from-file " + ShellQuote(file) + " --yes", &rc);
  // Two ids were unknown: exit 4 (not found), after everything else was erased.
  EXPECT_EQ(rc, 4) << out;
  EXPECT_NE(out.find("ferryctl: 1000/2502 ids: 1000 erased, 0 not found, 0 failed"), std::string::npos) << out;
  EXPECT_NE(out.find("ferryctl: 2502/2502 ids: 2500 erased, 2 not found, 0 failed"), std::string::npos) << out;
  EXPECT_NE(out.find("not found: never-seen-1\nnot found: never-seen-2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("2502 ids: 2500 erased, 2 not found, 0 failed"), std::string::npos) << out;

  // Gone: a sample of them, with their devices; the one not in the file stays.
  for (int i : {0, 999, 1000, 2499}) {
    out = Ctl("subject show " + UserId(i), &rc);
    EXPECT_EQ(rc, 4) << out;  // not found
    out = Ctl("subject show dev-" + UserId(i), &rc);
    EXPECT_EQ(rc, 4) << out;
  }
  out = Ctl("--json subject show keep-me", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out)["projects"].size(), 1u) << out;

  // One completed erasure request per subject; nothing registered for the unknown ids.
  out = Ctl("--json requests stats", &rc);
  ASSERT_EQ(rc, 0) << out;
  json stats = json::parse(out, nullptr, false);
  EXPECT_EQ(stats["byKind"]["erasure"], kSubjects) << out;
  EXPECT_EQ(stats["byState"]["completed"], kSubjects) << out;

  // One outbox entry per subject, paged.
  int64_t after = 0, entries = 0;
  for (;;) {
    out = Ctl("--json outbox list --limit 1000 --after " + std::to_string(after), &rc);
    ASSERT_EQ(rc, 0) << out;
    json page = json::parse(out, nullptr, false);
    ASSERT_TRUE(page.is_object()) << out;
    for (const auto& e : page["entries"]) {
      EXPECT_EQ(e["kind"], "erasure");
      ++entries;
    }
    after = page["next"];
    if (!page["more"].get<bool>()) break;
  }
  EXPECT_EQ(entries, kSubjects);

  // The route's bound: 1,001 ids are refused whole; a bad id refuses the call before anything is erased.
  json many = json::array();
  for (int i = 0; i < 1001; ++i) many.push_back("x" + std::to_string(i));
  auto r =
      testsupport::HttpRequest("POST", col_->url() + "/v1/erasures", json{{"ids", many}}.dump(),
                               {"Authorization: Bearer " + token_, "Content-Type: application/json"}, col_->ca_file());
  EXPECT_EQ(r.status, 400) << r.body;
  r = testsupport::HttpRequest("POST", col_->url() + "/v1/erasures", json{{"ids", {"keep-me", 7}}}.dump(),
                               {"Authorization: Bearer " + token_, "Content-Type: application/json"}, col_->ca_file());
  EXPECT_EQ(r.status, 400) << r.body;
  out = Ctl("--json subject show keep-me", &rc);
  EXPECT_EQ(json::parse(out)["projects"].size(), 1u) << out;
  // Without the compliance role: refused.
  std::string analyst = Token("analyst", "reader");
  r = testsupport::HttpRequest("POST", col_->url() + "/v1/erasures", json{{"ids", {"keep-me"}}}.dump(),
                               {"Authorization: Bearer " + analyst, "Content-Type: application/json"}, col_->ca_file());
  EXPECT_EQ(r.status, 403) << r.body;

  out = Ctl("audit verify", &rc);
  EXPECT_EQ(rc, 0) << out;
}

// A subject of 1,600 events on three devices: the receipt counts everything once, and nothing of it is left or
// accepted afterwards.
TEST_P(BulkEraseTest, ALargeSubjectIsErasedWholeAndItsReceiptCountsEverything) {
  if (IsSkipped()) return;
  const int kEvents = 1600;
  for (int first = 0; first < kEvents; first += 400) {
    json batch = json::array();
    for (int i = first; i < first + 400; ++i) {
      batch.push_back({{"messageId", "big-" + std::to_string(i)},
                       {"type", "track"},
                       {"event", "Big"},
                       {"userId", "big-user"},
                       {"anonymousId", "big-dev-" + std::to_string(i % 3)},
                       {"timestamp", base::FormatIso8601(base::NowMs() - 1000)},
                       {"purpose", "analytics"}});
    }
    auto sent =
        testsupport::HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                                 {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(sent.status, 200) << sent.body;
  }
  int rc = -1;
  std::string out = Ctl("--json subject show big-user", &rc);
  ASSERT_EQ(rc, 0) << out;
  ASSERT_EQ(json::parse(out)["projects"][0]["eventCount"], kEvents) << out;

  out = Ctl("--json subject erase big-user --yes", &rc);
  ASSERT_EQ(rc, 0) << out;
  json receipt = json::parse(out, nullptr, false);
  ASSERT_TRUE(receipt.is_object()) << out;
  EXPECT_EQ(receipt["erased"]["events"], kEvents) << out;
  EXPECT_EQ(receipt["idsSuppressed"], 4) << out;  // the userId and its three devices, once each
  for (const char* id : {"big-user", "big-dev-0", "big-dev-2"}) {
    out = Ctl(std::string("subject show ") + id, &rc);
    EXPECT_EQ(rc, 4) << out;
  }
  // What a device still holds does not land again.
  json again = json::array({{{"messageId", "big-late"},
                             {"type", "track"},
                             {"event", "Big"},
                             {"anonymousId", "big-dev-1"},
                             {"timestamp", base::FormatIso8601(base::NowMs() - 500)},
                             {"purpose", "analytics"}}});
  auto sent =
      testsupport::HttpRequest("POST", col_->batch_url(), json{{"batch", again}}.dump(),
                               {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
  ASSERT_EQ(sent.status, 200) << sent.body;
  out = Ctl("subject show big-dev-1", &rc);
  EXPECT_EQ(rc, 4) << out;
  // One register entry, completed with those counts; one outbox entry.
  out = Ctl("--json requests stats", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out)["byKind"]["erasure"], 1) << out;
  out = Ctl("--json outbox list", &rc);
  ASSERT_EQ(rc, 0) << out;
  json page = json::parse(out, nullptr, false);
  ASSERT_EQ(page["entries"].size(), 1u) << out;
  EXPECT_EQ(page["entries"][0]["requestId"], receipt["requestId"]);
  out = Ctl("audit verify", &rc);
  EXPECT_EQ(rc, 0) << out;
}

INSTANTIATE_TEST_SUITE_P(Stores, BulkEraseTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
