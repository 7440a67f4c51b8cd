// What a write-key holder can do to other people's data, through a real collector over TLS, on each store (the
// embedded SQLCipher store and a PostgreSQL cluster started here): an alias naming a victim's userId does not pull
// the victim into the attacker's subject (export, erasure); only a server key or an officer merges userIds; the
// subject view shows each link's provenance; POST /v1/forget acts only on ids seen as anonymousIds, never on rows
// under a userId, is rate-limited per key and folds repeats into one register entry; the ingest answer does not
// tell the sender that an id was erased. Keys and tokens are made with ferryctl on the same store.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/time.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;
using testsupport::HttpRequest;
using testsupport::HttpResult;
using testsupport::PgCluster;

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class IdentityTrustTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() { cluster_.reset(); }

  void SetUp() override {
    std::string err;
    testsupport::CollectorOptions opts;
    opts.extra_args = {"--forget-rate-burst", "6", "--forget-rate-limit", "0.001"};
    if (GetParam() == "postgresql") {
      if (!PgCluster::Available()) GTEST_SKIP() << "\n*** SKIPPED: PostgreSQL binaries not found ***\n";
      if (!cluster_) cluster_ = PgCluster::Start(&err);
      ASSERT_NE(cluster_, nullptr) << err;
      static int n = 0;
      uri_ = cluster_->CreateDatabase("trust_" + std::to_string(++n), &err);
      ASSERT_FALSE(uri_.empty()) << err;
      opts.extra_args.insert(opts.extra_args.end(), {"--storage", uri_});
    }
    col_ = CollectorProcess::Start(opts, &err);
    ASSERT_NE(col_, nullptr) << err;
    key_ = Ctl("keys create-write-key --project shop");
    ASSERT_EQ(key_.rfind("fw_", 0), 0u) << key_;
    compliance_ = Ctl("keys create-admin-token --roles compliance --name officer");
    ASSERT_EQ(compliance_.rfind("fa_", 0), 0u) << compliance_;
  }

  // ferryctl on the collector's store; its output without the final newline ("" when it failed).
  std::string Ctl(const std::string& args) {
    std::string where = uri_.empty() ? "--data-dir " + Quote(col_->data_dir()) : "--storage " + Quote(uri_);
    std::string out;
    int rc = testsupport::RunCommand(Quote(testsupport::FerryctlBinary()) + " " + where + " " + args, &out);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return rc == 0 ? out : std::string();
  }
  HttpResult Call(const std::string& method, const std::string& path, const std::string& token,
                  const std::string& body = "") {
    std::vector<std::string> h;
    if (!token.empty()) h.push_back("Authorization: Bearer " + token);
    return HttpRequest(method, col_->url() + path, body, h, col_->ca_file());
  }
  json Send(const std::string& key, const std::vector<json>& events) {
    json batch = json::object();
    batch["batch"] = json::array();
    for (const json& e : events) batch["batch"].push_back(e);
    HttpResult r = Call("POST", "/v1/batch", key, batch.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  static json Event(const std::string& id, const std::string& type, const std::string& user, const std::string& anon,
                    const std::string& previous = "") {
    json e = {{"messageId", id},
              {"type", type},
              {"timestamp", base::FormatIso8601(base::NowMs() - 1000)},
              {"purpose", "analytics"}};
    if (type == "track") e["event"] = "Clicked";
    if (!user.empty()) e["userId"] = user;
    if (!anon.empty()) e["anonymousId"] = anon;
    if (!previous.empty()) e["previousId"] = previous;
    return e;
  }
  json Subject(const std::string& id) {
    HttpResult r = Call("GET", "/v1/subjects/" + id, compliance_);
    EXPECT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body, nullptr, false);
    return j.is_object() && !j["projects"].empty() ? j["projects"][0] : json::object();
  }
  // The messageIds of the subject's export.
  std::set<std::string> Exported(const std::string& id) {
    HttpResult r = Call("GET", "/v1/subjects/" + id + "/export", compliance_);
    EXPECT_EQ(r.status, 200) << r.body;
    json doc = json::parse(r.body, nullptr, false);
    std::set<std::string> ids;
    if (!doc.is_object()) return ids;
    for (const json& p : doc["projects"]) {
      for (const json& e : p["events"]) ids.insert(e["messageId"].get<std::string>());
    }
    return ids;
  }
  std::set<std::string> Stored() {
    std::set<std::string> ids;
    std::string out = Ctl("--json debug dump-events");
    size_t at = 0;
    while (at < out.size()) {
      size_t end = out.find('\n', at);
      if (end == std::string::npos) end = out.size();
      json row = json::parse(out.substr(at, end - at), nullptr, false);
      if (row.is_object()) ids.insert(row["messageId"].get<std::string>());
      at = end + 1;
    }
    return ids;
  }
  double Metric(const std::string& name) {
    return CollectorProcess::MetricValue(Call("GET", "/metrics", "").body, name);
  }
  static std::set<std::string> Ids(const json& subject) {
    std::set<std::string> ids;
    for (const json& i : subject["identities"]) ids.insert(i["id"].get<std::string>());
    return ids;
  }
  static json LinkFrom(const json& subject, const std::string& from, const std::string& to) {
    for (const json& l : subject["links"]) {
      if (l["from"] == from && l["to"] == to) return l;
    }
    return json();
  }

  static std::unique_ptr<PgCluster> cluster_;
  std::string uri_;
  std::unique_ptr<CollectorProcess> col_;
  std::string key_, compliance_;
};

std::unique_ptr<PgCluster> IdentityTrustTest::cluster_;

TEST_P(IdentityTrustTest, AnAliasFromAWriteKeyNeverPullsAVictimIntoTheAttackersExportOrErasure) {
  // The victim, from her own device.
  Send(key_, {Event("v-1", "identify", "victim-ann", "anon-v"), Event("v-2", "track", "victim-ann", "anon-v"),
              Event("v-3", "track", "victim-ann", "anon-v"), Event("v-4", "track", "", "anon-v")});
  // The attacker, with the same public write key: his own events, then an alias naming her userId as his old id,
  // an event pairing his userId with her userId as "anonymousId", and an alias the other way round.
  Send(key_, {Event("m-1", "identify", "mallory", "anon-m"), Event("m-2", "track", "mallory", "anon-m"),
              Event("m-3", "alias", "mallory", "anon-m", "victim-ann"), Event("m-4", "track", "mallory", "victim-ann"),
              Event("m-5", "alias", "victim-ann", "anon-m", "mallory")});

  json m = Subject("mallory");
  EXPECT_EQ(m["userId"], "mallory");
  EXPECT_EQ(Ids(m).count("victim-ann"), 0u) << m.dump();
  // The subject view shows the forged link with its provenance: pending, not followed, by which key and event.
  json forged = LinkFrom(m, "victim-ann", "mallory");
  ASSERT_TRUE(forged.is_object()) << m.dump();
  EXPECT_EQ(forged["state"], "pending");
  EXPECT_EQ(forged["followed"], false);
  EXPECT_EQ(forged["kind"], "previousId");
  EXPECT_EQ(forged["credential"], "write_key");
  EXPECT_EQ(forged["keyId"], key_.substr(0, 7));
  EXPECT_EQ(forged["viaMessageId"], "m-3");
  EXPECT_EQ(forged["viaAnonymousId"], "anon-m");
  EXPECT_TRUE(forged["assertedAt"].is_string());
  json own = LinkFrom(m, "anon-m", "mallory");
  ASSERT_TRUE(own.is_object()) << m.dump();
  EXPECT_EQ(own["state"], "active");
  EXPECT_EQ(own["followed"], true);
  // The victim's view shows the link out of her userId, not followed.
  json v = Subject("victim-ann");
  EXPECT_EQ(v["userId"], "victim-ann");
  EXPECT_EQ(Ids(v).count("mallory"), 0u) << v.dump();
  EXPECT_EQ(LinkFrom(v, "victim-ann", "mallory")["followed"], false);

  // The attacker's export holds none of her events.
  std::set<std::string> exported = Exported("mallory");
  EXPECT_GE(exported.count("m-1"), 1u);
  for (const char* id : {"v-1", "v-2", "v-3", "v-4"}) EXPECT_EQ(exported.count(id), 0u) << id;

  // Erasing the attacker leaves her whole and unsuppressed.
  double suppressed = Metric("ferry_events_suppressed_total");
  HttpResult erased = Call("POST", "/v1/subjects/mallory/erase", compliance_);
  ASSERT_EQ(erased.status, 200) << erased.body;
  std::set<std::string> stored = Stored();
  for (const char* id : {"v-1", "v-2", "v-3", "v-4"}) EXPECT_EQ(stored.count(id), 1u) << id;
  EXPECT_EQ(stored.count("m-1"), 0u);
  EXPECT_EQ(Exported("victim-ann"), (std::set<std::string>{"v-1", "v-2", "v-3", "v-4"}));
  json later = Send(key_, {Event("v-5", "track", "victim-ann", "anon-v")});
  EXPECT_EQ(later["accepted"], 1);
  EXPECT_EQ(Stored().count("v-5"), 1u);
  EXPECT_EQ(Metric("ferry_events_suppressed_total"), suppressed);

  // The attacker's own later event is dropped, but the answer does not say so: it is counted in the metrics only.
  json dropped = Send(key_, {Event("m-6", "track", "mallory", "anon-m2")});
  EXPECT_EQ(dropped["accepted"], 1);
  EXPECT_EQ(dropped["suppressed"], 0);
  EXPECT_EQ(Stored().count("m-6"), 0u);
  EXPECT_EQ(Metric("ferry_events_suppressed_total"), suppressed + 1);
}

TEST_P(IdentityTrustTest, OnlyAServerKeyOrAnOfficerMergesUserIds) {
  std::string server = Ctl("keys create-server-key --project shop");
  ASSERT_EQ(server.rfind("fs_", 0), 0u) << server;
  // The admin API makes them too (operator role), and they are never write keys.
  std::string op = Ctl("keys create-admin-token --roles operator --name ops");
  HttpResult made = Call("POST", "/v1/keys/server-keys", op, R"({"project":"shop"})");
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(json::parse(made.body)["serverKey"].get<std::string>().rfind("fs_", 0), 0u);
  EXPECT_EQ(Call("POST", "/v1/keys/server-keys", compliance_, R"({"project":"shop"})").status, 403);

  Send(key_, {Event("o-1", "identify", "old-user", "anon-o"), Event("n-1", "identify", "new-user", "anon-n")});
  // The backend merges the two accounts.
  Send(server, {Event("s-1", "alias", "new-user", "", "old-user")});
  json merged = Subject("new-user");
  EXPECT_EQ(Ids(merged).count("old-user"), 1u) << merged.dump();
  json link = LinkFrom(merged, "old-user", "new-user");
  EXPECT_EQ(link["credential"], "server_key");
  EXPECT_EQ(link["keyId"], server.substr(0, 7));
  EXPECT_EQ(link["followed"], true);
  std::set<std::string> exported = Exported("new-user");
  EXPECT_EQ(exported.count("o-1"), 1u);

  // The same merge from a write key waits for an officer.
  Send(key_, {Event("p-1", "identify", "user-1", "anon-1"), Event("p-2", "identify", "user-2", "anon-2"),
              Event("p-3", "alias", "user-2", "anon-2", "user-1")});
  json pending = LinkFrom(Subject("user-2"), "user-1", "user-2");
  ASSERT_TRUE(pending.is_object());
  EXPECT_EQ(pending["state"], "pending");
  EXPECT_EQ(Exported("user-2").count("p-1"), 0u);
  std::string confirm = "/v1/links/" + std::to_string(pending["linkId"].get<int64_t>()) + "/confirm";
  EXPECT_EQ(Call("POST", confirm, op).status, 403);  // an officer's call: compliance
  HttpResult ok = Call("POST", confirm, compliance_);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["confirmedBy"], "officer");
  json confirmed = LinkFrom(Subject("user-2"), "user-1", "user-2");
  EXPECT_EQ(confirmed["state"], "active");
  EXPECT_EQ(confirmed["followed"], true);
  EXPECT_EQ(confirmed["confirmedBy"], "officer");
  EXPECT_EQ(Exported("user-2").count("p-1"), 1u);
  EXPECT_EQ(Call("POST", confirm, compliance_).status, 404);  // once
  EXPECT_EQ(Call("POST", "/v1/links/999999/confirm", compliance_).status, 404);
  // The confirmation is audited.
  HttpResult audit = Call("GET", "/v1/audit", compliance_);
  EXPECT_NE(audit.body.find("links.confirm"), std::string::npos);

  // ferryctl shows the links and confirms one over HTTPS.
  Send(key_, {Event("q-1", "identify", "user-4", "anon-4"), Event("q-2", "alias", "user-4", "anon-4", "user-2")});
  std::string remote =
      "--url " + Quote(col_->url()) + " --token " + Quote(compliance_) + " --ca-file " + Quote(col_->ca_file()) + " ";
  std::string out;
  ASSERT_EQ(testsupport::RunCommand(Quote(testsupport::FerryctlBinary()) + " " + remote + "subject show user-4", &out),
            0)
      << out;
  EXPECT_NE(out.find("pending"), std::string::npos) << out;
  EXPECT_NE(out.find("q-2"), std::string::npos) << out;
  json q = LinkFrom(Subject("user-4"), "user-2", "user-4");
  ASSERT_TRUE(q.is_object());
  ASSERT_EQ(testsupport::RunCommand(Quote(testsupport::FerryctlBinary()) + " " + remote + "links confirm " +
                                        std::to_string(q["linkId"].get<int64_t>()),
                                    &out),
            0)
      << out;
  EXPECT_NE(out.find("confirmed"), std::string::npos) << out;
  EXPECT_EQ(LinkFrom(Subject("user-4"), "user-2", "user-4")["followed"], true);
  EXPECT_EQ(Exported("user-4").count("p-2"), 1u);  // user-2's identify, through the confirmed link
}

TEST_P(IdentityTrustTest, ForgetActsOnlyOnItsOwnAnonymousIdsIsRateLimitedAndFolds) {
  auto forget = [&](const std::string& key, const std::string& id) {
    json body = json::object();
    body["anonymousIds"] = json::array({id});
    return Call("POST", "/v1/forget", key, body.dump());
  };
  Send(key_, {Event("b-1", "track", "", "anon-bob"), Event("b-2", "track", "bob", "anon-bob"),
              Event("b-3", "track", "bob", "anon-bob-2")});
  // A userId not seen yet, named as "my anonymousId": nothing happens to it.
  HttpResult r = forget(key_, "carol-future");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["idsSuppressed"], 0);
  json carol = Send(key_, {Event("c-1", "identify", "carol-future", "anon-c")});
  EXPECT_EQ(carol["accepted"], 1);
  EXPECT_EQ(Stored().count("c-1"), 1u);
  // A known userId named as one: nothing either.
  EXPECT_EQ(json::parse(forget(key_, "bob").body)["erased"]["events"], 0);

  // Its own anonymousId: only the event without a userId goes.
  r = forget(key_, "anon-bob");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["erased"]["events"], 1);
  std::set<std::string> stored = Stored();
  EXPECT_EQ(stored.count("b-1"), 0u);
  EXPECT_EQ(stored.count("b-2"), 1u);
  EXPECT_EQ(stored.count("b-3"), 1u);

  // Repeats fold into the register entry of the first.
  ASSERT_EQ(forget(key_, "anon-bob").status, 200);
  ASSERT_EQ(forget(key_, "anon-bob").status, 200);
  HttpResult list = Call("GET", "/v1/requests", compliance_);
  ASSERT_EQ(list.status, 200);
  int device = 0;
  json requests = json::parse(list.body, nullptr, false);
  for (const json& q : requests["requests"]) device += q["source"] == "device" ? 1 : 0;
  EXPECT_EQ(device, 3) << list.body;  // carol-future, bob, anon-bob

  // Six calls a key (this collector's burst), then 429 with Retry-After; another key has its own bucket.
  EXPECT_EQ(forget(key_, "anon-bob").status, 200);
  HttpResult limited = forget(key_, "anon-bob");
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_FALSE(limited.retry_after.empty());
  std::string other = Ctl("keys create-write-key --project shop");
  EXPECT_EQ(forget(other, "anon-other").status, 200);
}

INSTANTIATE_TEST_SUITE_P(Stores, IdentityTrustTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace ferry::testing
