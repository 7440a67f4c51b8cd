// Consent enforcement at ingest (issue 12) through a real ferry-collector over
// TLS, on both stores: the matrix of purpose x state x device (the phone
// grants, the tablet denies) x identified/anonymous; necessary only for listed
// names; sensitive only after an explicit grant; refusals counted per reason in
// /metrics and invisible in the answer. Each stored event keeps the receipt of
// the record that admitted it, and retention keeps that record while the event
// is stored.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/engines/open_store.h"
#include "collector/engines/postgres/pg_store.h"
#include "collector/store/consent_policy.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;

const char* const kPurposes[] = {"analytics", "marketing", "personalization", "sensitive"};

json Track(const std::string& name, const std::string& anon, const std::string& user, const std::string& purpose,
           int64_t ts, int64_t seq, const std::string& receipt) {
  json e = {{"messageId", base::NewUuidV4()},
            {"type", "track"},
            {"event", name},
            {"anonymousId", anon},
            {"timestamp", base::FormatIso8601(ts)},
            {"purpose", purpose},
            {"deviceSeq", seq},
            {"consentReceipt", receipt.empty() ? json(nullptr) : json(receipt)}};
  if (!user.empty()) e["userId"] = user;
  return e;
}

json Consent(const std::string& anon, const std::string& user, const std::string& purpose, const std::string& state,
             const std::string& method, int64_t ts, int64_t seq, const std::string& receipt) {
  json e = {{"messageId", base::NewUuidV4()},
            {"type", "consent"},
            {"anonymousId", anon},
            {"timestamp", base::FormatIso8601(ts)},
            {"purpose", "necessary"},
            {"deviceSeq", seq},
            {"properties",
             {{"purpose", purpose},
              {"state", state},
              {"previous", "pending"},
              {"method", method},
              {"seq", seq},
              {"receiptId", receipt}}}};
  if (!user.empty()) e["userId"] = user;
  return e;
}

class ConsentEnforcementTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string err;
    testsupport::CollectorOptions o;
    o.project = "shop";
    // Retention at one day, run often, consent records kept no longer than the
    // events they cover.
    o.extra_args = {"--consent-default",      "enforce", "--retention-days",    "1",
                    "--retention-interval-s", "0.2",     "--consent-keep-days", "0"};
    if (GetParam() == "postgres") {
      if (!testsupport::PgCluster::Available()) GTEST_SKIP() << "*** SKIPPED: PostgreSQL binaries not found ***";
      cluster_ = testsupport::PgCluster::Start(&err);
      ASSERT_NE(cluster_, nullptr) << err;
      uri_ = cluster_->CreateDatabase("enforce", &err);
      ASSERT_FALSE(uri_.empty()) << err;
      auto s = OpenPg();
      ASSERT_NE(s, nullptr);
      auto k = s->CreateWriteKey("shop");
      auto b = s->CreateWriteKey("blog");
      ASSERT_TRUE(k.ok() && b.ok());
      key_ = *k;
      blog_key_ = *b;
      collector::ConsentPolicy necessary;
      necessary.necessary = {"Login Failed"};
      ASSERT_TRUE(*s->SetConsentPolicy("shop", necessary));
      collector::ConsentPolicy report;
      report.mode = collector::kConsentReportOnly;
      ASSERT_TRUE(*s->SetConsentPolicy("blog", report));
      o.extra_args.insert(o.extra_args.end(), {"--storage", uri_});
    }
    col_ = CollectorProcess::Start(o, &err);
    ASSERT_NE(col_, nullptr) << err;
    if (key_.empty()) {
      key_ = col_->write_key();
      blog_key_ = col_->CreateWriteKey("blog");
      std::string out;
      std::string ctl = testsupport::FerryctlBinary() + " --data-dir '" + col_->data_dir() + "' projects set-consent ";
      ASSERT_EQ(testsupport::RunCommand(ctl + "--project shop --mode enforce "
                                              "--necessary 'Login Failed' 2>&1",
                                        &out),
                0)
          << out;
      ASSERT_EQ(testsupport::RunCommand(ctl + "--project blog --mode report-only 2>&1", &out), 0) << out;
    }
  }

  std::unique_ptr<collector::PgStore> OpenPg() {
    collector::PgOptions po;
    po.conninfo = uri_;
    auto s = collector::PgStore::Open(po);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Posts a batch; the answer must count every valid event as accepted, refused
  // or not.
  void Post(const std::string& key, const json& batch) {
    json body = {{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", batch}};
    auto r =
        testsupport::HttpRequest("POST", col_->batch_url(), body.dump(),
                                 {"Authorization: Bearer " + key, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
    json a = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(a.is_object()) << r.body;
    EXPECT_EQ(a["accepted"], batch.size()) << r.body;
    EXPECT_TRUE(a["rejected"].empty()) << r.body;
  }

  // The names of the project's stored track events.
  std::multiset<std::string> Stored(const std::string& project) {
    std::multiset<std::string> names;
    if (GetParam() == "postgres") {
      auto s = OpenPg();
      auto rows = s->DumpEvents(project);
      EXPECT_TRUE(rows.ok());
      for (const auto& e : *rows) {
        if (e.type == "track") names.insert(e.name);
      }
    } else {
      for (const json& e : col_->DumpEvents(project)) {
        if (e["type"] == "track") names.insert(e["name"].get<std::string>());
      }
    }
    return names;
  }

  // Track event name -> the receipt of the consent record that admitted it, as stored with the event.
  std::map<std::string, std::string> CoveredBy(const std::string& project) {
    std::map<std::string, std::string> out;
    if (GetParam() == "postgres") {
      auto s = OpenPg();
      auto rows = s->DumpEvents(project);
      EXPECT_TRUE(rows.ok());
      for (const auto& e : *rows) {
        if (e.type == "track") out[e.name] = e.covered_by;
      }
    } else {
      for (const json& e : col_->DumpEvents(project)) {
        if (e["type"] == "track") out[e["name"].get<std::string>()] = e["coveredBy"].get<std::string>();
      }
    }
    return out;
  }

  double Refused(const std::string& metrics, const std::string& reason, const std::string& mode) {
    return CollectorProcess::MetricValue(
        metrics, "ferry_events_consent_refused_total{reason=\"" + reason + "\",mode=\"" + mode + "\"}");
  }

  std::unique_ptr<testsupport::PgCluster> cluster_;
  std::string uri_;
  std::unique_ptr<CollectorProcess> col_;
  std::string key_, blog_key_;
};

TEST_P(ConsentEnforcementTest, TheMatrix) {
  const int64_t t0 = base::NowMs() - 60000;
  // The phone (identified as u1) grants every purpose explicitly, then sends
  // one event of each.
  json phone = json::array();
  std::map<std::string, std::string> grant;
  int64_t seq = 0;
  for (const char* p : kPurposes) {
    grant[p] = base::NewUuidV4();
    phone.push_back(Consent("phone", "u1", p, "granted", "explicit", t0, ++seq, grant[p]));
  }
  for (const char* p : kPurposes)
    phone.push_back(Track(std::string("phone ") + p, "phone", "u1", p, t0 + 10, ++seq, grant[p]));
  Post(key_, phone);
  // The tablet (the same u1) denies every purpose at t0 + 1 s; its events after
  // that are refused.
  json tablet = json::array();
  int64_t tseq = 0;
  for (const char* p : kPurposes)
    tablet.push_back(Consent("tablet", "u1", p, "denied", "explicit", t0 + 1000, ++tseq, base::NewUuidV4()));
  for (const char* p : kPurposes)
    tablet.push_back(Track(std::string("tablet ") + p, "tablet", "u1", p, t0 + 1100, ++tseq, ""));
  Post(key_, tablet);
  // The phone again: an event made before the tablet's denial (uploaded late)
  // is kept; those after it are refused on the phone too, though the phone's
  // own grant still stands.
  json late = json::array();
  for (const char* p : kPurposes)
    late.push_back(Track(std::string("phone early ") + p, "phone", "u1", p, t0 + 500, ++seq, grant[p]));
  for (const char* p : kPurposes)
    late.push_back(Track(std::string("phone after ") + p, "phone", "u1", p, t0 + 2000, ++seq, grant[p]));
  Post(key_, late);
  // An anonymous installation: granted analytics only (by a default), then
  // denied marketing.
  const std::string a_grant = base::NewUuidV4();
  Post(key_, json::array({Consent("anon", "", "analytics", "granted", "default", t0, 1, a_grant),
                          Track("anon analytics", "anon", "", "analytics", t0 + 10, 2, a_grant),
                          Track("anon analytics by seq", "anon", "", "analytics", t0 + 20, 3, ""),
                          Track("anon marketing", "anon", "", "marketing", t0 + 30, 4, ""),
                          Consent("anon", "", "marketing", "denied", "explicit", t0 + 40, 5, base::NewUuidV4()),
                          Track("anon marketing denied", "anon", "", "marketing", t0 + 50, 6, "")}));
  // Sensitive granted by a default only; necessary for a listed name and an
  // unlisted one.
  const std::string s_grant = base::NewUuidV4();
  Post(key_, json::array({Consent("sens", "", "sensitive", "granted", "default", t0, 1, s_grant),
                          Track("sens by default", "sens", "", "sensitive", t0 + 10, 2, s_grant),
                          Track("Login Failed", "sens", "", "necessary", t0 + 20, 3, ""),
                          Track("Promo Seen", "sens", "", "necessary", t0 + 30, 4, "")}));
  // A report-only project stores what it would refuse.
  Post(blog_key_, json::array({Track("blog post read", "reader", "", "analytics", t0, 1, "")}));

  std::multiset<std::string> stored = Stored("shop");
  std::multiset<std::string> expected;
  for (const char* p : kPurposes) {
    expected.insert(std::string("phone ") + p);
    expected.insert(std::string("phone early ") + p);
  }
  expected.insert({"anon analytics", "anon analytics by seq", "Login Failed"});
  EXPECT_EQ(stored, expected);
  EXPECT_EQ(Stored("blog"), std::multiset<std::string>({"blog post read"}));
  // Each stored event keeps the receipt of the record that admitted it (by the receipt it named, or by the device's
  // sequence); necessary and report-only events without consent name none.
  std::map<std::string, std::string> covered = CoveredBy("shop");
  for (const char* p : kPurposes) {
    EXPECT_EQ(covered[std::string("phone ") + p], grant[p]) << p;
    EXPECT_EQ(covered[std::string("phone early ") + p], grant[p]) << p;
  }
  EXPECT_EQ(covered["anon analytics"], a_grant);
  EXPECT_EQ(covered["anon analytics by seq"], a_grant);
  EXPECT_EQ(covered["Login Failed"], "");
  EXPECT_EQ(CoveredBy("blog")["blog post read"], "");

  auto m = testsupport::HttpRequest("GET", col_->url() + "/metrics", "", {}, col_->ca_file());
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(Refused(m.body, collector::kRefusedConsentDenied, "enforce"), 4 + 4 + 1) << m.body;
  EXPECT_EQ(Refused(m.body, collector::kRefusedConsentMissing, "enforce"), 1) << m.body;
  EXPECT_EQ(Refused(m.body, collector::kRefusedSensitiveNotExplicit, "enforce"), 1) << m.body;
  EXPECT_EQ(Refused(m.body, collector::kRefusedNecessaryUnlisted, "enforce"), 1) << m.body;
  EXPECT_EQ(Refused(m.body, collector::kRefusedConsentMissing, "report-only"), 1) << m.body;
}

// Retention at one day removes old events but keeps the consent records that
// cover still-stored events (and only those: keep period 0 here).
TEST_P(ConsentEnforcementTest, RetentionKeepsTheProofOfStoredEvents) {
  const int64_t now = base::NowMs();
  const int64_t day = 86400000;
  const std::string analytics = base::NewUuidV4(), marketing = base::NewUuidV4();
  Post(key_, json::array({Consent("phone", "", "analytics", "granted", "explicit", now - 3 * day, 1, analytics),
                          Track("old analytics", "phone", "", "analytics", now - 2 * day, 2, analytics),
                          Track("new analytics", "phone", "", "analytics", now - 3600000, 3, analytics),
                          Consent("phone", "", "marketing", "granted", "explicit", now - 3 * day, 4, marketing),
                          Track("old marketing", "phone", "", "marketing", now - 2 * day, 5, marketing),
                          Consent("phone", "", "ads", "denied", "explicit", now - 3 * day, 6, base::NewUuidV4())}));
  // The job runs every 0.2 s and says when it deleted something: the three
  // consent events and the two old tracks.
  ASSERT_TRUE(col_->WaitForLog("retention: deleted 5 expired events")) << col_->Log();
  EXPECT_EQ(Stored("shop"), std::multiset<std::string>({"new analytics"}));
  EXPECT_EQ(CoveredBy("shop")["new analytics"], analytics);
  collector::StoreConfig cfg;
  cfg.storage = GetParam() == "postgres" ? uri_ : "sqlite";
  cfg.data_dir = col_->data_dir();
  auto store = collector::MakeStore(cfg);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto shop = (*store)->LookupWriteKey(key_);
  ASSERT_TRUE(shop.ok() && shop->has_value());
  auto records = (*store)->PersonConsent((*shop)->project_id, "", "phone");
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  std::set<std::string> kept;
  for (const auto& r : *records) kept.insert(r.receipt_id);
  EXPECT_EQ(kept, std::set<std::string>({analytics}));
}

INSTANTIATE_TEST_SUITE_P(Stores, ConsentEnforcementTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
