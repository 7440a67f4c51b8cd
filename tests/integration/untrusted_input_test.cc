// Issue 11 through a real collector over TLS: what an outsider (network access only) or a write-key holder sends
// cannot crash the collector, make it write per request, name ids the admin API cannot name, or keep data past the
// retention policy by lying about the time.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include <string>
#include <vector>

#include "lib/base/time.h"
#include "tests/support/collector_process.h"
#include "tests/support/wait.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorOptions;
using testsupport::CollectorProcess;
using testsupport::HttpRequest;
using testsupport::HttpResult;

class UntrustedInputTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& extra_args = {}) {
    CollectorOptions o;
    o.extra_args = extra_args;
    std::string err;
    col_ = CollectorProcess::Start(o, &err);
    ASSERT_NE(col_, nullptr) << err;
    compliance_ = col_->CreateAdminToken("compliance", "officer");
    operator_ = col_->CreateAdminToken("operator", "ops");
    ASSERT_FALSE(compliance_.empty() || operator_.empty());
  }
  HttpResult Call(const std::string& method, const std::string& path, const std::string& token,
                  const std::string& body = "") {
    std::vector<std::string> h;
    if (!token.empty()) h.push_back("Authorization: Bearer " + token);
    if (!body.empty()) h.push_back("Content-Type: application/json");
    return HttpRequest(method, col_->url() + path, body, h, col_->ca_file());
  }
  HttpResult Ingest(const json& events) {
    return HttpRequest("POST", col_->batch_url(), json{{"batch", events}}.dump(),
                       {"Authorization: Bearer " + col_->write_key()}, col_->ca_file());
  }
  static json Event(const std::string& id, const std::string& user, const std::string& ts = "") {
    return json{{"messageId", id},
                {"type", "identify"},
                {"userId", user},
                {"anonymousId", "anon-" + id},
                {"timestamp", ts.empty() ? base::FormatIso8601(base::NowMs() - 1000) : ts},
                {"purpose", "analytics"}};
  }
  bool Alive() { return Call("GET", "/healthz", "").status == 200; }
  std::vector<json> AuditEntries() {
    HttpResult r = Call("GET", "/v1/audit?limit=10000", operator_);
    EXPECT_EQ(r.status, 200) << r.body;
    json doc = json::parse(r.body, nullptr, false);
    std::vector<json> out;
    if (doc.is_object() && doc["entries"].is_array()) out.assign(doc["entries"].begin(), doc["entries"].end());
    return out;
  }
  static std::string Nested(size_t depth) {
    return "{\"x\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
  }

  std::unique_ptr<CollectorProcess> col_;
  std::string compliance_, operator_;
};

TEST_F(UntrustedInputTest, DeeplyNestedAdminBodiesAreRefusedAndTheCollectorStaysUp) {
  Start();
  ASSERT_EQ(Ingest(json::array({Event("m-1", "victim")})).status, 200);
  for (size_t depth : {size_t{100000}, size_t{30000}, size_t{50}}) {
    HttpResult r = Call("PATCH", "/v1/subjects/victim/traits", compliance_, Nested(depth));
    EXPECT_EQ(r.status, 400) << depth << ": " << r.body.substr(0, 200);
    EXPECT_NE(r.body.find("nested too deeply"), std::string::npos) << r.body.substr(0, 200);
    ASSERT_TRUE(Alive()) << "after a body nested " << depth << " deep";
  }
  EXPECT_EQ(Call("POST", "/v1/requests", compliance_, Nested(100000)).status, 400);
  EXPECT_EQ(Call("POST", "/v1/requests/req_x/reject", compliance_, Nested(100000)).status, 400);
  EXPECT_EQ(Call("POST", "/v1/keys/write-keys", operator_, Nested(100000)).status, 400);
  EXPECT_EQ(Call("PATCH", "/v1/subjects/victim/traits", compliance_, "{\"x\":").status, 400);
  ASSERT_TRUE(Alive());
  // Nothing deep was stored; a body within the limits still goes through.
  HttpResult ok = Call("PATCH", "/v1/subjects/victim/traits", compliance_, R"({"tier":{"level":[1,2]}})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  HttpResult show = Call("GET", "/v1/subjects/victim", compliance_);
  ASSERT_EQ(show.status, 200);
  EXPECT_EQ(json::parse(show.body)["projects"][0]["traits"], (json{{"tier", {{"level", {1, 2}}}}}));
}

TEST_F(UntrustedInputTest, ControlCharactersInIdsAndNamesAreRefused) {
  Start();
  json track = Event("m-3", "dave");
  track["type"] = "track";
  track["event"] = "Clicked\nInjected";
  json c1 = Event("m-4", std::string("erin\xC2\x85x"));  // U+0085 (NEL)
  HttpResult in = Ingest(json::array(
      {Event("m-1", std::string("carol\0x", 7)), Event("m-2", "bob\x1b[2J"), track, c1, Event("m-5", "frank")}));
  ASSERT_EQ(in.status, 200) << in.body;
  json a = json::parse(in.body);
  EXPECT_EQ(a["accepted"], 1);
  ASSERT_EQ(a["rejected"].size(), 4u);
  EXPECT_EQ(a["rejected"][0]["reason"], "invalid userId: control character");
  EXPECT_EQ(a["rejected"][1]["reason"], "invalid userId: control character");
  EXPECT_EQ(a["rejected"][2]["reason"], "invalid event: control character");
  EXPECT_EQ(a["rejected"][3]["reason"], "invalid userId: control character");
  std::vector<json> rows = col_->DumpEvents();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["userId"], "frank");
  // The admin API refuses to name such ids, with a reason in the one error body.
  for (const char* path : {"/v1/subjects/carol%00x", "/v1/subjects/carol%01x", "/v1/subjects/bob%1B%5B2J",
                           "/v1/subjects/erin%C2%85x/export"}) {
    HttpResult r = Call("GET", path, compliance_);
    EXPECT_EQ(r.status, 400) << path << " " << r.body;
    json err = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(err.is_object()) << r.body;
  }
  HttpResult r = Call("GET", "/v1/subjects/carol%01x", compliance_);
  EXPECT_NE(r.body.find("control character"), std::string::npos) << r.body;
  HttpResult add =
      Call("POST", "/v1/requests", compliance_, json{{"kind", "erasure"}, {"subject", "eve\u0001"}}.dump());
  EXPECT_EQ(add.status, 400) << add.body;
  EXPECT_NE(add.body.find("control character"), std::string::npos) << add.body;
}

TEST_F(UntrustedInputTest, RefusedAdminCallsAreSlowedPerSourceAndAuditedInAggregate) {
  Start({"--admin-refusal-rate", "0.01", "--admin-refusal-burst", "20"});
  const size_t before = AuditEntries().size();
  int unauthorized = 0, limited = 0;
  std::string retry_after;
  for (int i = 0; i < 200; ++i) {
    // No token, a write key (public: it ships in apps), and a made-up admin token.
    std::string token = i % 3 == 0 ? "" : i % 3 == 1 ? col_->write_key() : "fa_" + std::string(64, 'a');
    HttpResult r = Call("GET", "/v1/subjects/victim-" + std::to_string(i), token);
    if (r.status == 401) ++unauthorized;
    if (r.status == 429) {
      ++limited;
      retry_after = r.retry_after;
    }
  }
  EXPECT_EQ(unauthorized, 20);
  EXPECT_EQ(limited, 180);
  EXPECT_FALSE(retry_after.empty());
  // An officer from the same address is not slowed down: only refusals are.
  EXPECT_EQ(Call("GET", "/v1/requests", compliance_).status, 200);
  // 200 refused calls: one audit entry (for the source and interval) with the count, not 200.
  std::vector<json> entries = AuditEntries();
  int refused_rows = 0;
  for (const json& e : entries) {
    if (e["action"] != "admin.refused") continue;
    ++refused_rows;
    json d = json::parse(e["detail"].get<std::string>());
    EXPECT_EQ(d["source"], "127.0.0.1");
    EXPECT_EQ(d["count"], 200);
    EXPECT_EQ(d["results"]["unauthenticated"], 200);
    EXPECT_EQ(d["actions"]["subject.show"], 200);
  }
  EXPECT_EQ(refused_rows, 1);
  // The refusal entry, the request list and the audit list before this one: the flood itself wrote nothing else.
  EXPECT_EQ(entries.size(), before + 3);
  HttpResult verify = Call("GET", "/v1/audit/verify", operator_);
  EXPECT_EQ(json::parse(verify.body, nullptr, false)["ok"], true) << verify.body;
}

TEST_F(UntrustedInputTest, AnEventDated2999IsClampedAndDoesNotSurviveRetention) {
  // Retention of 2 seconds, checked every second; event times at most 1 s ahead of their arrival.
  Start({"--retention-days", "0.0000231", "--retention-interval-s", "1", "--event-future-s", "1"});
  HttpResult in = Ingest(json::array({Event("from-2999", "timetraveller", "2999-01-01T00:00:00.000Z")}));
  ASSERT_EQ(in.status, 200) << in.body;
  EXPECT_EQ(json::parse(in.body)["accepted"], 1);
  // The retention job deletes it once the policy's age has passed since it arrived (it waits on what the store
  // holds; before the fix the row stayed until the year 2999).
  ASSERT_TRUE(testsupport::WaitFor([&] { return col_->DumpEvents().empty(); }, nullptr, {60000, 500, 0}))
      << "the event dated 2999 survived retention";
  HttpResult m = Call("GET", "/metrics", "");
  EXPECT_GE(CollectorProcess::MetricValue(m.body, "ferry_events_purged_total"), 1.0) << m.body;
}

// Issue 11, item 12 through ferryctl: the token comes from a file or the environment, never argv; credentials are
// listed, revoked and expired, and a revoked or expired one is refused by the collector at once.
TEST_F(UntrustedInputTest, FerryctlListsRevokesAndExpiresCredentialsWithATokenFromAFileOrTheEnvironment) {
  Start();
  ASSERT_EQ(Ingest(json::array({Event("m-1", "alice")})).status, 200);
  const std::string token_file = col_->data_dir() + "/ops.token";
  {
    std::ofstream f(token_file);
    f << operator_ << "\n";
  }
  ASSERT_EQ(::chmod(token_file.c_str(), 0644), 0);
  auto ctl = [&](const std::string& auth, const std::string& args, std::string* out) {
    return testsupport::RunCommand(auth + " " + testsupport::FerryctlBinary() + " --url " + col_->url() +
                                       " --ca-file " + col_->ca_file() + " " + args + " 2>&1",
                                   out);
  };
  std::string out;
  const std::string by_file = "env -u FERRY_ADMIN_TOKEN";
  // A token file others may read is refused.
  EXPECT_NE(ctl(by_file, "--token-file " + token_file + " credentials list", &out), 0);
  EXPECT_NE(out.find("chmod 600"), std::string::npos) << out;
  ASSERT_EQ(::chmod(token_file.c_str(), 0600), 0);
  ASSERT_EQ(ctl(by_file, "--token-file " + token_file + " --json credentials list", &out), 0) << out;
  json doc = json::parse(out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << out;
  int64_t key_id = 0, officer_id = 0;
  for (const json& k : doc["writeKeys"]) {
    if (k["prefix"] == col_->write_key().substr(0, 7)) key_id = k["id"].get<int64_t>();
  }
  for (const json& t : doc["adminTokens"]) {
    if (t["name"] == "officer") officer_id = t["id"].get<int64_t>();
  }
  ASSERT_GT(key_id, 0);
  ASSERT_GT(officer_id, 0);
  EXPECT_EQ(out.find(col_->write_key()), std::string::npos);
  EXPECT_EQ(out.find(compliance_), std::string::npos);
  // Without any token: a clear refusal, no call made.
  EXPECT_NE(ctl(by_file, "credentials list", &out), 0);
  EXPECT_NE(out.find("FERRY_ADMIN_TOKEN"), std::string::npos) << out;

  // The officer's token expires (a time already past): refused at once.
  ASSERT_EQ(Call("GET", "/v1/requests", compliance_).status, 200);
  const std::string by_env = "env FERRY_ADMIN_TOKEN=" + operator_;
  ASSERT_EQ(
      ctl(by_env, "credentials expire admin-token " + std::to_string(officer_id) + " --at 2001-01-01T00:00:00Z", &out),
      0)
      << out;
  EXPECT_EQ(Call("GET", "/v1/requests", compliance_).status, 401);
  ASSERT_EQ(ctl(by_env, "credentials expire admin-token " + std::to_string(officer_id) + " --at never", &out), 0)
      << out;
  EXPECT_EQ(Call("GET", "/v1/requests", compliance_).status, 200);

  // The write key is revoked: the next batch is refused at once.
  ASSERT_EQ(ctl(by_env, "credentials revoke write-key " + std::to_string(key_id), &out), 0) << out;
  HttpResult refused = Ingest(json::array({Event("m-2", "alice")}));
  EXPECT_EQ(refused.status, 401) << refused.body;
  EXPECT_NE(ctl(by_env, "credentials revoke write-key " + std::to_string(key_id), &out), 0);  // already revoked
  EXPECT_NE(out.find("404"), std::string::npos) << out;
  // Only an operator may do this; the officer is refused.
  EXPECT_EQ(Call("POST", "/v1/keys/admin-tokens/" + std::to_string(officer_id) + "/revoke", compliance_, "{}").status,
            403);
  ASSERT_EQ(ctl(by_env, "--json credentials list", &out), 0) << out;
  doc = json::parse(out, nullptr, false);
  for (const json& k : doc["writeKeys"]) {
    if (k["id"] == key_id) {
      EXPECT_TRUE(k["revokedAt"].is_string()) << k;
    }
  }
}

}  // namespace
}  // namespace ferry::testing
