// The console's routes through a real collector over TLS: /console/ serves only the embedded files (and nothing with
// --console off), GET /v1/whoami tells a token its own roles without writing an audit entry, and
// GET /v1/subjects/{id}/events pages a subject's events (compliance only, audited). The browser test
// (tests/console/console_browser_test.py) drives the pages themselves and checks the response headers.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "tests/support/collector_process.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorOptions;
using testsupport::CollectorProcess;
using testsupport::HttpRequest;
using testsupport::HttpResult;

class ConsoleRoutesTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args = {}) {
    CollectorOptions o;
    o.extra_args = std::move(args);
    std::string err;
    col_ = CollectorProcess::Start(o, &err);
    ASSERT_NE(col_, nullptr) << err;
    compliance_ = col_->CreateAdminToken("compliance", "olivia");
    analyst_ = col_->CreateAdminToken("analyst", "ann");
    ASSERT_FALSE(compliance_.empty() || analyst_.empty());
  }
  HttpResult Get(const std::string& path, const std::string& token = "") {
    std::vector<std::string> h;
    if (!token.empty()) h.push_back("Authorization: Bearer " + token);
    return HttpRequest("GET", col_->url() + path, "", h, col_->ca_file());
  }
  size_t AuditEntries() {
    HttpResult r = Get("/v1/audit?limit=10000", compliance_);
    EXPECT_EQ(r.status, 200);
    return json::parse(r.body, nullptr, false)["entries"].size();
  }

  std::unique_ptr<CollectorProcess> col_;
  std::string compliance_, analyst_;
};

TEST_F(ConsoleRoutesTest, ServesOnlyTheEmbeddedFiles) {
  Start();
  HttpResult index = Get("/console/");
  ASSERT_EQ(index.status, 200);
  // index.html names its script and style sheet by content hash; both are served.
  size_t at = index.body.find("src=\"app.");
  ASSERT_NE(at, std::string::npos) << index.body;
  std::string js = index.body.substr(at + 5, index.body.find('"', at + 5) - (at + 5));
  EXPECT_EQ(js.size(), std::string("app.0123456789abcdef.js").size()) << js;
  HttpResult script = Get("/console/" + js);
  EXPECT_EQ(script.status, 200);
  EXPECT_GT(script.body.size(), 1000u);
  EXPECT_EQ(index.body.find("<script>"), std::string::npos) << "no inline script";
  for (const char* path : {"/console/nope.js", "/console/../console/index.html.bak", "/console/%2e%2e/CMakeCache.txt",
                           "/console/app.js", "/console/src/main.tsx"}) {
    EXPECT_EQ(Get(path).status, 404) << path;
  }
}

TEST_F(ConsoleRoutesTest, ConsoleOffLeavesTheAdminApi) {
  Start({"--console", "off"});
  EXPECT_EQ(Get("/console/").status, 404);
  EXPECT_EQ(Get("/v1/whoami", analyst_).status, 200);
}

TEST_F(ConsoleRoutesTest, WhoAmIIsTheCallersOwnTokenAndNotAudited) {
  Start();
  EXPECT_EQ(Get("/v1/whoami").status, 401);
  EXPECT_EQ(Get("/v1/whoami", col_->write_key()).status, 401);
  EXPECT_EQ(Get("/v1/whoami", analyst_ + "x").status, 401);
  size_t before = AuditEntries();  // its own audit.list entry comes after the answer
  for (int i = 0; i < 3; ++i) {
    HttpResult r = Get("/v1/whoami", analyst_);
    ASSERT_EQ(r.status, 200) << r.body;
    json me = json::parse(r.body, nullptr, false);
    EXPECT_EQ(me["name"], "ann");
    EXPECT_EQ(me["roles"], json::array({"analyst"}));
    EXPECT_EQ(me["insight"], false);
    EXPECT_EQ(analyst_.rfind(me["prefix"].get<std::string>(), 0), 0u) << "the prefix is the token's start";
    EXPECT_EQ(r.body.find(analyst_), std::string::npos) << "never the token itself";
  }
  EXPECT_EQ(AuditEntries(), before + 1) << "only the first audit listing was audited, no whoami";
}

TEST_F(ConsoleRoutesTest, EventsArePagedForComplianceAndAudited) {
  Start();
  json batch = json::array();
  for (int i = 0; i < 5; ++i) {
    batch.push_back({{"messageId", "p-" + std::to_string(i)},
                     {"type", "track"},
                     {"event", "Step " + std::to_string(i)},
                     {"userId", "pager"},
                     {"timestamp", "2026-01-01T00:00:00.000Z"},
                     {"purpose", "analytics"}});
  }
  HttpResult in = HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                              {"Authorization: Bearer " + col_->write_key()}, col_->ca_file());
  ASSERT_EQ(in.status, 200) << in.body;

  std::set<std::string> seen;
  std::vector<size_t> sizes;
  std::vector<bool> more;
  for (int offset = 0; offset < 6; offset += 2) {
    HttpResult r = Get("/v1/subjects/pager/events?limit=2&offset=" + std::to_string(offset), compliance_);
    ASSERT_EQ(r.status, 200) << r.body;
    json page = json::parse(r.body, nullptr, false);
    sizes.push_back(page["events"].size());
    more.push_back(page["more"].get<bool>());
    for (const json& e : page["events"]) {
      seen.insert(e["messageId"].get<std::string>());
      EXPECT_EQ(e["userId"], "pager");
      EXPECT_EQ(e["name"], e["event"]["event"]);
    }
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 2, 1}));
  EXPECT_EQ(more, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(seen.size(), 5u);

  EXPECT_EQ(Get("/v1/subjects/pager/events?limit=0", compliance_).status, 400);
  EXPECT_EQ(Get("/v1/subjects/pager/events?limit=501", compliance_).status, 400);
  EXPECT_EQ(Get("/v1/subjects/nobody/events", compliance_).status, 404);
  EXPECT_EQ(Get("/v1/subjects/pager/events", analyst_).status, 403);
  EXPECT_EQ(Get("/v1/subjects/pager/events").status, 401);

  HttpResult audit = Get("/v1/audit?limit=10000", compliance_);
  int listed = 0;
  const json log = json::parse(audit.body, nullptr, false);
  for (const json& e : log["entries"]) {
    if (e["action"] == "subject.events" && e["result"] == "ok") ++listed;
  }
  EXPECT_EQ(listed, 3);
}

}  // namespace
}  // namespace ferry::testing
