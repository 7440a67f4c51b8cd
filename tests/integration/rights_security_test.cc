// The admin API's security through a real collector over TLS: every endpoint without a token, with a write key, with
// an unknown token and with the wrong role; hostile subject ids (quotes, %, .., encoded /, SQL, 10 KB).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/collector_process.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;
using testsupport::HttpRequest;
using testsupport::HttpResult;

std::string Enc(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

class RightsSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    col_ = CollectorProcess::Start({}, &err);
    ASSERT_NE(col_, nullptr) << err;
    compliance_ = col_->CreateAdminToken("compliance", "c");
    operator_ = col_->CreateAdminToken("operator", "o");
    analyst_ = col_->CreateAdminToken("analyst", "a");
    ASSERT_FALSE(compliance_.empty() || operator_.empty() || analyst_.empty());
  }
  HttpResult Call(const std::string& method, const std::string& path, const std::string& token,
                  const std::string& body = "") {
    std::vector<std::string> h;
    if (!token.empty()) h.push_back("Authorization: Bearer " + token);
    return HttpRequest(method, col_->url() + path, body, h, col_->ca_file());
  }
  HttpResult Ingest(const json& events) {
    return HttpRequest("POST", col_->batch_url(), json{{"batch", events}}.dump(),
                       {"Authorization: Bearer " + col_->write_key()}, col_->ca_file());
  }
  static json Event(const std::string& id, const std::string& type, const std::string& user, const std::string& anon) {
    json e = {{"messageId", id}, {"type", type}, {"timestamp", "2024-01-01T00:00:00.000Z"}, {"purpose", "analytics"}};
    if (type == "track") e["event"] = "Clicked";
    if (!user.empty()) e["userId"] = user;
    if (!anon.empty()) e["anonymousId"] = anon;
    return e;
  }

  std::unique_ptr<CollectorProcess> col_;
  std::string compliance_, operator_, analyst_;
};

struct Endpoint {
  const char* method;
  const char* path;
  const char* body;
  std::vector<std::string> allowed;  // roles that may call it
};

TEST_F(RightsSecurityTest, EveryAdminEndpointNeedsATokenWithTheRightRole) {
  ASSERT_EQ(Ingest(json::array({Event("s-1", "identify", "victim", "anon-v")})).status, 200);
  const std::vector<Endpoint> endpoints = {
      {"GET", "/v1/subjects/victim", "", {"compliance", "analyst"}},
      {"GET", "/v1/subjects/victim/export", "", {"compliance"}},
      {"POST", "/v1/subjects/victim/erase", "{}", {"compliance"}},
      {"PATCH", "/v1/subjects/victim/traits", R"({"x":1})", {"compliance"}},
      {"GET", "/v1/requests", "", {"compliance"}},
      {"POST", "/v1/requests", R"({"kind":"access","subject":"victim"})", {"compliance"}},
      {"POST", "/v1/requests/req_none/approve", "{}", {"compliance"}},
      {"POST", "/v1/requests/req_none/reject", "{}", {"compliance"}},
      {"GET", "/v1/audit", "", {"operator", "compliance"}},
      {"GET", "/v1/audit/verify", "", {"operator", "compliance"}},
      {"POST", "/v1/keys/write-keys", R"({"project":"p2"})", {"operator"}},
  };
  const std::map<std::string, std::string> tokens = {
      {"compliance", compliance_}, {"operator", operator_}, {"analyst", analyst_}};
  for (const Endpoint& e : endpoints) {
    std::string what = std::string(e.method) + " " + e.path;
    EXPECT_EQ(Call(e.method, e.path, "", e.body).status, 401) << what;
    EXPECT_EQ(Call(e.method, e.path, col_->write_key(), e.body).status, 401) << what << " with a write key";
    EXPECT_EQ(Call(e.method, e.path, "fa_" + std::string(64, '0'), e.body).status, 401) << what;
    EXPECT_EQ(Call(e.method, e.path, compliance_ + "x", e.body).status, 401) << what;
    for (const auto& [role, token] : tokens) {
      bool allowed = std::find(e.allowed.begin(), e.allowed.end(), role) != e.allowed.end();
      if (allowed) continue;  // the allowed calls are made below, after the denials (erase would end the test)
      HttpResult r = Call(e.method, e.path, token, e.body);
      EXPECT_EQ(r.status, 403) << what << " as " << role;
      EXPECT_EQ(r.body.find("victim"), std::string::npos) << what;
    }
  }
  // The denied calls changed nothing.
  HttpResult show = Call("GET", "/v1/subjects/victim", analyst_);
  ASSERT_EQ(show.status, 200);
  json doc = json::parse(show.body, nullptr, false);
  EXPECT_EQ(doc["projects"][0]["eventCount"], 1);
  EXPECT_EQ(doc["projects"][0]["traits"], json::object());
  // Each allowed call goes through.
  for (const Endpoint& e : endpoints) {
    for (const auto& role : e.allowed) {
      HttpResult r = Call(e.method, e.path, tokens.at(role), e.body);
      EXPECT_NE(r.status, 401) << e.path;
      EXPECT_NE(r.status, 403) << e.path;
      EXPECT_LT(r.status, 500) << e.path << " " << r.body;
    }
  }
  // Every attempt is in the audit log, the denied ones as such, and the chain holds.
  HttpResult audit = Call("GET", "/v1/audit?limit=10000", operator_);
  ASSERT_EQ(audit.status, 200);
  json entries = json::parse(audit.body, nullptr, false)["entries"];
  // Refusals are audited in aggregate: one "admin.refused" entry per source address and interval, with the counts.
  int denied = 0, unauthenticated = 0, refusal_rows = 0;
  for (const json& en : entries) {
    EXPECT_NE(en["result"], "denied");  // never one entry per refused call
    EXPECT_NE(en["result"], "unauthenticated");
    if (en["action"] != "admin.refused") continue;
    ++refusal_rows;
    json d = json::parse(en["detail"].get<std::string>(), nullptr, false);
    EXPECT_EQ(d["source"], "127.0.0.1");
    denied += d["results"].value("denied", 0);
    unauthenticated += d["results"].value("unauthenticated", 0);
  }
  EXPECT_EQ(refusal_rows, 1);
  EXPECT_EQ(denied, 19);  // one per (endpoint, role not allowed)
  EXPECT_EQ(unauthenticated, 44);
  HttpResult verify = Call("GET", "/v1/audit/verify", compliance_);
  EXPECT_EQ(json::parse(verify.body, nullptr, false)["ok"], true) << verify.body;
}

TEST_F(RightsSecurityTest, HostileSubjectIdsNeitherLeakNorBreakAnything) {
  const std::vector<std::string> ids = {"quote\"d'id",
                                        "100%",
                                        "%41%2F",
                                        "..",
                                        "../../etc/passwd",
                                        "a/b",
                                        "x' OR '1'='1",
                                        "\"; DROP TABLE events; --",
                                        "u\\n\\u0000",
                                        "ünïcødé",
                                        "a?project=other#frag"};
  json batch = json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    batch.push_back(Event("h-" + std::to_string(i), "identify", ids[i], "anon-h-" + std::to_string(i)));
    batch.push_back(Event("t-" + std::to_string(i), "track", ids[i], "anon-h-" + std::to_string(i)));
  }
  batch.push_back(Event("k-1", "track", "bystander", "anon-bystander"));
  HttpResult in = Ingest(batch);
  ASSERT_EQ(in.status, 200) << in.body;
  ASSERT_EQ(json::parse(in.body)["accepted"], 2 * ids.size() + 1) << in.body;

  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    std::string path = "/v1/subjects/" + Enc(id);
    HttpResult show = Call("GET", path, compliance_);
    ASSERT_EQ(show.status, 200) << id << " " << show.body;
    json doc = json::parse(show.body, nullptr, false);
    ASSERT_FALSE(doc.is_discarded());
    ASSERT_EQ(doc["projects"].size(), 1u) << id;
    EXPECT_EQ(doc["projects"][0]["userId"], id);
    EXPECT_EQ(doc["projects"][0]["eventCount"], 2) << id;

    HttpResult exp = Call("GET", path + "/export", compliance_);
    ASSERT_EQ(exp.status, 200) << id;
    json ex = json::parse(exp.body, nullptr, false);
    ASSERT_FALSE(ex.is_discarded()) << id << ": " << exp.body.substr(0, 300);
    ASSERT_EQ(ex["projects"][0]["events"].size(), 2u) << id;
    for (const json& e : ex["projects"][0]["events"]) EXPECT_EQ(e["userId"], id);
    EXPECT_EQ(exp.body.find("bystander"), std::string::npos);

    HttpResult er = Call("POST", path + "/erase", compliance_, "{}");
    ASSERT_EQ(er.status, 200) << id << " " << er.body;
    EXPECT_EQ(json::parse(er.body)["erased"]["events"], 2) << id;
    EXPECT_EQ(Call("GET", path, compliance_).status, 404) << id;
  }
  // A 10 KB id: refused cleanly (URI too long or too long an id), nothing breaks.
  std::string huge(10240, 'z');
  for (const char* suffix : {"", "/export", "/erase"}) {
    HttpResult r =
        Call(suffix == std::string("/erase") ? "POST" : "GET", "/v1/subjects/" + huge + suffix, compliance_, "{}");
    EXPECT_GE(r.status, 400) << suffix;
    EXPECT_LT(r.status, 500) << suffix;
  }
  // Malformed escapes and an encoded NUL.
  EXPECT_EQ(Call("GET", "/v1/subjects/%zz", compliance_).status, 400);
  EXPECT_EQ(Call("GET", "/v1/subjects/a%00b", compliance_).status, 400);

  // The bystander is untouched, the tables are intact, the server healthy, the audit chain whole.
  HttpResult by = Call("GET", "/v1/subjects/bystander", compliance_);
  ASSERT_EQ(by.status, 200);
  EXPECT_EQ(json::parse(by.body)["projects"][0]["eventCount"], 1);
  auto rows = col_->DumpEvents();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["messageId"], "k-1");
  EXPECT_EQ(HttpRequest("GET", col_->url() + "/healthz", "", {}, col_->ca_file()).status, 200);
  HttpResult verify = Call("GET", "/v1/audit/verify", operator_);
  EXPECT_EQ(json::parse(verify.body, nullptr, false)["ok"], true) << verify.body;
  // The audit log and the register keep no plain id of an erased subject.
  HttpResult audit = Call("GET", "/v1/audit?limit=10000", operator_);
  HttpResult reqs = Call("GET", "/v1/requests", compliance_);
  for (const auto& id : {std::string("../../etc/passwd"), std::string("DROP TABLE")}) {
    EXPECT_EQ(audit.body.find(id), std::string::npos);
    EXPECT_EQ(reqs.body.find(id), std::string::npos);
  }
}

TEST_F(RightsSecurityTest, ForgetNeedsAWriteKeyAndAValidBody) {
  ASSERT_EQ(Ingest(json::array({Event("f-1", "identify", "real-user", "anon-f")})).status, 200);
  auto forget = [&](const std::string& key, const std::string& body) {
    std::vector<std::string> h;
    if (!key.empty()) h.push_back("Authorization: Bearer " + key);
    return HttpRequest("POST", col_->url() + "/v1/forget", body, h, col_->ca_file());
  };
  EXPECT_EQ(forget("", R"({"anonymousIds":["anon-f"]})").status, 401);
  EXPECT_EQ(forget(compliance_, R"({"anonymousIds":["anon-f"]})").status, 401);
  EXPECT_EQ(forget(col_->write_key(), "not json").status, 400);
  EXPECT_EQ(forget(col_->write_key(), R"({"anonymousIds":[1]})").status, 400);
  EXPECT_EQ(forget(col_->write_key(), R"({})").status, 400);
  // A userId named as an anonymousId is not erased on a device's word.
  HttpResult r = forget(col_->write_key(), R"({"anonymousIds":["real-user"]})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["erased"]["events"], 0);
  EXPECT_EQ(Call("GET", "/v1/subjects/real-user", compliance_).status, 200);
  EXPECT_EQ(Ingest(json::array({Event("f-2", "track", "real-user", "anon-g")})).status, 200);
  EXPECT_EQ(col_->DumpEvents().size(), 2u);
}

}  // namespace
}  // namespace ferry::testing
