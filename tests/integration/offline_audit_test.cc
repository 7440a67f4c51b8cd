// Offline ferryctl commands are audited (issue 13 item 8), on both stores: every command that opens the store
// directly (keys, projects, a full event dump) appends an audit row naming the OS user, the command and its
// arguments before it acts; the rows are visible through the admin API and `audit verify` still passes.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/integration/store_collector.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

class OfflineAuditTest : public StoreCollectorTest {
 protected:
  // ferryctl on the store itself (no admin API): the data directory, or the PostgreSQL URI.
  std::string Offline(const std::string& args, int* rc) {
    std::string where = uri_.empty() ? "--data-dir " + ShellQuote(col_->data_dir()) : "--storage " + ShellQuote(uri_);
    std::string out;
    *rc = testsupport::RunCommand(ShellQuote(testsupport::FerryctlBinary()) + " " + where + " " + args + " 2>&1", &out);
    return out;
  }
};

TEST_P(OfflineAuditTest, EveryOfflineCommandLeavesAnAuditRowAndTheChainVerifies) {
  if (IsSkipped()) return;
  int rc = -1;
  std::string out = Offline("keys create-write-key --project blog", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = Offline("projects set-retention --project blog --days 30", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = Offline("projects set-consent --project blog --mode report-only --necessary app_open", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = Offline("keys create-admin-token --roles operator --name ops", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = Offline("--json debug dump-events --project shop", &rc);
  ASSERT_EQ(rc, 0) << out;
  // A command that fails after opening the store is audited too (it did open it).
  out = Offline("projects set-retention --project nosuch --days 1", &rc);
  EXPECT_NE(rc, 0) << out;

  out = Ctl("--json audit --limit 1000", &rc);
  ASSERT_EQ(rc, 0) << out;
  json doc = json::parse(out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << out;
  passwd* pw = getpwuid(geteuid());
  ASSERT_NE(pw, nullptr);
  const std::string actor = std::string("os:") + pw->pw_name + " (ferryctl offline)";
  std::map<std::string, json> by_action;
  int offline_rows = 0;
  for (const auto& e : doc["entries"]) {
    std::string action = e.value("action", "");
    if (action.rfind("offline.", 0) != 0) continue;
    ++offline_rows;
    EXPECT_EQ(e.value("actor", ""), actor) << e.dump();
    EXPECT_EQ(e.value("result", ""), "started") << e.dump();
    by_action[action] = json::parse(e.value("detail", ""), nullptr, false);
  }
  EXPECT_GE(offline_rows, 6) << out;  // the fixture may have made its keys offline too
  ASSERT_EQ(by_action.count("offline.debug.dump-events"), 1u) << out;
  EXPECT_EQ(by_action["offline.debug.dump-events"]["command"], "debug dump-events");
  EXPECT_EQ(by_action["offline.debug.dump-events"]["args"]["project"], "shop");
  EXPECT_EQ(by_action["offline.keys.create-write-key"]["args"]["project"], "blog");
  EXPECT_EQ(by_action["offline.projects.set-consent"]["args"]["necessary"], json::array({"app_open"}));
  EXPECT_EQ(by_action["offline.keys.create-admin-token"]["args"]["roles"], json::array({"operator"}));
  EXPECT_EQ(by_action["offline.projects.set-retention"]["args"]["project"], "nosuch");  // the last one
  // The token it made is audited under the same OS user, not an anonymous "ferryctl-offline".
  bool token_row = false;
  for (const auto& e : doc["entries"]) {
    if (e.value("action", "") != "keys.create-admin-token" || e.value("detail", "").find("ops") == std::string::npos) {
      continue;
    }
    token_row = true;
    EXPECT_EQ(e.value("actor", ""), actor) << e.dump();
  }
  EXPECT_TRUE(token_row) << out;

  out = Ctl("audit verify", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("hash chain intact"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(Stores, OfflineAuditTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
