// The request register tells the truth (issue 13 part A), through a real ferry-collector over TLS on both stores and
// the real ferryctl over HTTPS: an officer's lookup is audited, not registered; an access request is approved with its
// verification evidence and completes only when its copy was downloaded in full; the lifecycle's moves are enforced;
// a refusal's reason is kept and shown; the register in figures (by kind, state and lateness).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "collector/engines/postgres/pg_store.h"
#include "collector/engines/sqlite/sqlite_store.h"
#include "lib/base/sqlite.h"
#include "lib/base/time.h"
#include "tests/integration/store_collector.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::RunCommand;

constexpr int64_t kDayMs = 24LL * 3600 * 1000;

// The shared fixture (store_collector.h), with the officer's token holding compliance and operator.
class RightsRegisterTest : public StoreCollectorTest {
 protected:
  void SetUp() override {
    StoreCollectorTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    token_ = Token("compliance,operator", "officer-ann");
    ASSERT_FALSE(token_.empty());
    if (GetParam() == "postgres") pg_db_ = "ferry";
  }

  // Sends `n` track events and an identify of `user` through the ingest API.
  void Ingest(const std::string& user, int n) {
    json batch = json::array();
    const std::string ts = base::FormatIso8601(base::NowMs());
    batch.push_back({{"messageId", user + "-id"},
                     {"type", "identify"},
                     {"userId", user},
                     {"anonymousId", "anon-" + user},
                     {"timestamp", ts},
                     {"purpose", "analytics"},
                     {"traits", {{"plan", "pro"}}}});
    for (int i = 0; i < n; ++i) {
      batch.push_back({{"messageId", user + "-" + std::to_string(i)},
                       {"type", "track"},
                       {"event", "Viewed"},
                       {"userId", user},
                       {"timestamp", ts},
                       {"purpose", "analytics"}});
    }
    auto r =
        testsupport::HttpRequest("POST", col_->batch_url(), json{{"sentAt", ts}, {"batch", batch}}.dump(),
                                 {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  std::string Ctl(const std::string& args, int* rc) {
    std::string out;
    *rc = RunCommand(ShellQuote(testsupport::FerryctlBinary()) + " --url " + ShellQuote(col_->url()) + " --token " +
                         ShellQuote(token_) + " --ca-file " + ShellQuote(col_->ca_file()) + " " + args,
                     &out);
    return out;
  }
  json Requests() { return CtlJson("requests")["requests"]; }
  json Request(const std::string& id) {
    for (const json& r : Requests()) {
      if (r["id"] == id) return r;
    }
    return json();
  }
  json Audit() { return CtlJson("audit --limit 10000")["entries"]; }

  TempDir dir_;
  std::string pg_db_;  // the PostgreSQL database ("" on the embedded store)

  // SQL on the collector's store behind its back (someone holding the store's key); "" when it ran.
  std::string Exec(const std::string& sql) {
    if (!pg_db_.empty()) {
      std::string out;
      return cluster_->Psql(pg_db_, sql, &out) == 0 ? std::string() : out;
    }
    auto key = collector::LoadOrCreateStoreKey(col_->data_dir(), "");
    if (!key.ok()) return key.status().ToString();
    auto db = base::Db::OpenEncrypted(col_->data_dir() + "/collector.db", *key);
    if (!db.ok()) return db.status().ToString();
    base::Status s = db->Exec(sql);
    return s.ok() ? std::string() : s.ToString();
  }
};

TEST_P(RightsRegisterTest, ALookupIsNotARequestAndAnAccessRequestCompletesWhenItsCopyIsDelivered) {
  Ingest("u-reg-1", 5);
  Ingest("u-reg-2", 2);
  int rc = 0;

  // The officer's lookup: the export is written, the audit log has it as a lookup, the register stays empty.
  std::string looked = dir_.File("lookup.json");
  Ctl("subject export u-reg-1 --output " + ShellQuote(looked), &rc);
  ASSERT_EQ(rc, 0);
  std::ifstream lf(looked);
  json lookup = json::parse(lf, nullptr, false);
  ASSERT_EQ(lookup["projects"][0]["events"].size(), 6u);
  EXPECT_TRUE(Requests().empty());
  bool lookup_audited = false;
  for (const json& e : Audit()) {
    if (e["action"] == "subject.export") lookup_audited = json::parse(e["detail"].get<std::string>())["lookup"] == true;
  }
  EXPECT_TRUE(lookup_audited);

  // An access request received by mail two days ago.
  const std::string two_days_ago = base::FormatIso8601(base::NowMs() - 2 * kDayMs).substr(0, 10);
  json added = CtlJson("requests add --kind access --subject u-reg-1 --project shop --received " + two_days_ago);
  const std::string rid = added["id"];
  EXPECT_EQ(added["state"], "awaiting_verification");
  EXPECT_EQ(added["receivedAt"].get<std::string>().substr(0, 10), two_days_ago);

  // No copy before the person's identity was verified; no completion by hand for an access request.
  Ctl("requests deliver " + rid + " --output " + ShellQuote(dir_.File("early.json")), &rc);
  EXPECT_EQ(rc, 7);  // 409: the state does not allow it
  json approved = CtlJson("requests approve " + rid + " --method id-document --reference ticket-4711");
  EXPECT_EQ(approved["state"], "in_progress");
  EXPECT_EQ(approved["verification"]["method"], "id-document");
  EXPECT_EQ(approved["verification"]["reference"], "ticket-4711");
  EXPECT_EQ(approved["verification"]["by"], "officer-ann");
  EXPECT_FALSE(approved["verification"]["at"].get<std::string>().empty());
  Ctl("requests complete " + rid, &rc);
  EXPECT_EQ(rc, 7);
  EXPECT_EQ(Request(rid)["state"], "in_progress");
  Ctl("requests approve " + rid, &rc);
  EXPECT_EQ(rc, 7);  // approved once

  // The copy, downloaded in full: the request is completed, with the delivery on record.
  std::string copy = dir_.File("copy.json");
  Ctl("requests deliver " + rid + " --output " + ShellQuote(copy), &rc);
  ASSERT_EQ(rc, 0);
  std::ifstream cf(copy);
  json doc = json::parse(cf, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["subject"], "u-reg-1");
  ASSERT_EQ(doc["projects"][0]["events"].size(), 6u);
  json done = Request(rid);
  EXPECT_EQ(done["state"], "completed");
  EXPECT_EQ(done["delivered"]["events"], 6);
  EXPECT_EQ(done["delivered"]["by"], "officer-ann");
  EXPECT_EQ(done["verification"]["method"], "id-document");  // kept
  Ctl("requests deliver " + rid + " --output " + ShellQuote(dir_.File("again.json")), &rc);
  EXPECT_EQ(rc, 7);
  int started = 0, delivered = 0;
  for (const json& e : Audit()) {
    if (e["action"] != "requests.deliver") continue;
    started += e["result"] == "started";
    delivered += e["result"] == "ok";
  }
  EXPECT_EQ(started, 1);
  EXPECT_EQ(delivered, 1);

  // A correction: approved (in progress), then carried out by hand (completed, with the note).
  json corr = CtlJson("requests add --kind correction --subject u-reg-2 --project shop");
  EXPECT_EQ(CtlJson("requests approve " + corr["id"].get<std::string>() + " --method account-login")["state"],
            "in_progress");
  json corrected = CtlJson("requests complete " + corr["id"].get<std::string>() + " --note 'plan set to free'");
  EXPECT_EQ(corrected["state"], "completed");
  EXPECT_EQ(corrected["result"]["completion"]["note"], "plan set to free");

  // A refusal keeps its reason and shows it; a refused request cannot be approved afterwards.
  json other = CtlJson("requests add --kind access --subject u-reg-2 --project shop --state received");
  EXPECT_EQ(other["state"], "received");
  json rejected =
      CtlJson("requests reject " + other["id"].get<std::string>() + " --reason 'identity could not be verified'");
  EXPECT_EQ(rejected["state"], "rejected");
  EXPECT_EQ(rejected["refusalReason"], "identity could not be verified");
  EXPECT_EQ(Request(other["id"])["refusalReason"], "identity could not be verified");
  Ctl("requests approve " + other["id"].get<std::string>(), &rc);
  EXPECT_EQ(rc, 7);

  // An erasure received forty days ago and still open is overdue.
  const std::string long_ago = base::FormatIso8601(base::NowMs() - 40 * kDayMs);
  CtlJson("requests add --kind erasure --subject u-reg-2 --project shop --received " + long_ago);
  Ctl("requests add --kind erasure --subject u-reg-2 --received not-a-date", &rc);
  EXPECT_NE(rc, 0);

  json st = CtlJson("requests stats");
  EXPECT_EQ(st["total"], 4);
  EXPECT_EQ(st["byKind"]["access"], 2);
  EXPECT_EQ(st["byKind"]["correction"], 1);
  EXPECT_EQ(st["byKind"]["erasure"], 1);
  EXPECT_EQ(st["byState"]["completed"], 2);
  EXPECT_EQ(st["byState"]["rejected"], 1);
  EXPECT_EQ(st["byState"]["awaiting_verification"], 1);
  EXPECT_EQ(st["lateness"]["openOverdue"], 1);
  EXPECT_EQ(st["lateness"]["openOnTime"], 0);
  EXPECT_EQ(st["lateness"]["closedOnTime"], 3);
  EXPECT_EQ(st["lateness"]["closedLate"], 0);
  std::string text = Ctl("requests stats", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(text.find("openOverdue: 1"), std::string::npos) << text;

  // Every step above is in an intact audit chain.
  Ctl("audit verify", &rc);
  EXPECT_EQ(rc, 0);
}

TEST_P(RightsRegisterTest, ErasureDryRunNotFoundRefusalAndAnAuditAnchorThatCatchesARewrite) {
  Ingest("u-del-1", 4);
  Ingest("u-keep", 2);
  int rc = 0;

  // A dry run: the exact counts, and nothing changes (no erasure, no suppression, no register entry).
  json dry = CtlJson("subject erase u-del-1 --dry-run");
  EXPECT_EQ(dry["dryRun"], true);
  EXPECT_EQ(dry["erased"]["events"], 5);
  EXPECT_GE(dry["idsSuppressed"].get<int64_t>(), 1);
  EXPECT_EQ(CtlJson("subject show u-del-1")["projects"][0]["eventCount"], 5);
  EXPECT_TRUE(Requests().empty());
  std::string text = Ctl("subject erase u-del-1 --dry-run", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(text.find("dry run: nothing was erased"), std::string::npos) << text;

  // A mistyped id: refused, nothing suppressed or registered; events of that id arriving later are stored.
  Ctl("subject erase u-del-l --yes", &rc);
  EXPECT_EQ(rc, 4);
  EXPECT_TRUE(Requests().empty());
  Ingest("u-del-l", 1);
  EXPECT_EQ(CtlJson("subject show u-del-l")["projects"][0]["eventCount"], 2);
  // With --force an id without data is suppressed and registered as erased.
  json forced = CtlJson("subject erase nobody-at-all --force --yes");
  EXPECT_EQ(forced["erased"]["events"], 0);
  EXPECT_EQ(forced["idsSuppressed"], 1);
  EXPECT_EQ(Requests().size(), 1u);
  int not_found = 0, dry_runs = 0;
  for (const json& e : Audit()) {
    if (e["action"] != "subject.erase") continue;
    not_found += e["result"] == "not_found";
    dry_runs += e["result"] == "dry_run";
  }
  EXPECT_EQ(not_found, 1);
  EXPECT_EQ(dry_runs, 2);

  // The real erasure erases what the dry run counted.
  json done = CtlJson("subject erase u-del-1 --yes");
  for (const char* table : {"events", "consent_ledger", "identity_links", "traits"}) {
    EXPECT_EQ(done["erased"][table], dry["erased"][table]) << table;
  }
  EXPECT_EQ(done["idsSuppressed"], dry["idsSuppressed"]);
  EXPECT_EQ(done["erased"]["events"], 5);

  // The head hash, and an anchor kept elsewhere.
  text = Ctl("audit verify", &rc);
  ASSERT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("head: entry "), std::string::npos) << text;
  std::string anchor = dir_.File("anchor.json");
  text = Ctl("audit anchor -o " + ShellQuote(anchor), &rc);
  ASSERT_EQ(rc, 0) << text;
  std::ifstream af(anchor);
  json a = json::parse(af, nullptr, false);
  ASSERT_TRUE(a.is_object());
  const int64_t head = a["headSeq"].get<int64_t>();
  ASSERT_GT(head, 5);
  EXPECT_EQ(a["headHash"].get<std::string>().size(), 64u);
  text = Ctl("audit verify --anchor " + ShellQuote(anchor), &rc);
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("still has the anchored hash"), std::string::npos) << text;

  // Someone holding the store's key replaces the whole log with a history of their own: a chain that verifies.
  ASSERT_EQ(Exec("DELETE FROM audit_log;"), "");
  for (int64_t i = 0; i <= head + 2; ++i) CtlJson("requests");  // each call appends one entry from seq 1 on
  text = Ctl("audit verify", &rc);
  EXPECT_EQ(rc, 0) << text;  // intact on its own
  text = Ctl("audit verify --anchor " + ShellQuote(anchor) + " 2>&1", &rc);
  EXPECT_EQ(rc, 3) << text;  // but not against the anchor
  EXPECT_NE(text.find("does NOT match the anchor"), std::string::npos) << text;
}

// PostgreSQL keeps a deleted row's old version, intact, in the table file until a VACUUM removes it: the erasure
// runs one on the tables it changed, so no row version of the subject is left for pageinspect (or a raw read of the
// pages' tuples) to find. Nor an index entry naming the subject: a VACUUM that finds dead rows on under 2 % of a
// table's pages skips the indexes (PostgreSQL 14+), leaving the entries with the subject's ids, unless told
// INDEX_CLEANUP ON; the bystander's rows below make the subject's pages two of ~580. The embedded store overwrites
// deleted rows itself (secure_delete) inside an encrypted file.
TEST_P(RightsRegisterTest, OnPostgresAnErasureLeavesNoDeadRowVersionOfTheSubject) {
  if (pg_db_.empty()) GTEST_SKIP() << "PostgreSQL only: the embedded store overwrites deleted rows (secure_delete)";
  const std::string who = "u-vacuum-marker-7q";
  Ingest(who, 20);
  Ingest("u-stays", 5);
  // A bystander's 40,000 events beside them, in the same month's partition.
  const std::string now = std::to_string(base::NowMs());
  ASSERT_EQ(
      Exec("INSERT INTO events(project_id, message_id, type, user_id, name, purpose, timestamp_ms, received_ms, "
           "body) SELECT e.project_id, 'bulk-' || g, 'track', 'u-bulk', 'Viewed', 'analytics', e.timestamp_ms, " +
           now +
           ", '{}' FROM generate_series(1, 40000) g, (SELECT project_id, timestamp_ms FROM events WHERE user_id = "
           "'u-stays' LIMIT 1) e;"),
      "");
  ASSERT_EQ(Exec("CREATE EXTENSION IF NOT EXISTS pageinspect;"), "");
  auto count = [&](const std::string& sql) {
    std::string out;
    EXPECT_EQ(cluster_->Psql(pg_db_, sql, &out), 0) << out;
    return std::atoi(out.c_str());
  };
  // Tuples (live or dead) holding the id's bytes, in every partition of events and in traits.
  const std::string tuples_sql =
      "SELECT count(*) FROM (SELECT c.oid::regclass::text AS rel FROM pg_class c WHERE c.relkind = 'r' AND "
      "(c.relname = 'traits' OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass))) t, "
      "LATERAL generate_series(0, (pg_relation_size(t.rel::regclass) / 8192)::int - 1) AS blk, "
      "LATERAL heap_page_items(get_raw_page(t.rel, blk)) h "
      "WHERE h.t_data IS NOT NULL AND position(convert_to('" +
      who + "', 'UTF8') IN h.t_data) > 0;";
  // Leaf entries (live or dead) holding the id's bytes, in every index of every partition of events.
  const std::string index_entries_sql =
      "SELECT count(*) FROM (SELECT i.indexrelid::regclass::text AS idx FROM pg_index i WHERE i.indrelid IN "
      "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass)) x, "
      "LATERAL generate_series(1, (pg_relation_size(x.idx::regclass) / 8192)::int - 1) AS blk, "
      "LATERAL (SELECT type FROM bt_page_stats(x.idx, blk)) s, "
      "LATERAL (SELECT data FROM bt_page_items(x.idx, blk) WHERE s.type = 'l') b "
      "WHERE position(convert_to('" +
      who + "', 'UTF8') IN decode(replace(b.data, ' ', ''), 'hex')) > 0;";
  ASSERT_GE(count(tuples_sql), 21);        // the query sees them: 21 events and the traits
  ASSERT_GE(count(index_entries_sql), 2);  // by user, by anonymous id (the identify event)
  int rc = 0;
  Ctl("subject erase " + who + " --yes", &rc);
  ASSERT_EQ(rc, 0);
  // The VACUUM runs on the collector's scrub thread right after the erasure's answer, and logs when it is done.
  for (int i = 0; i < 600 && col_->Log().find("erasure scrub: VACUUM of the erased tables done") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_NE(col_->Log().find("erasure scrub: VACUUM of the erased tables done"), std::string::npos) << col_->Log();
  EXPECT_EQ(count(tuples_sql), 0);
  EXPECT_EQ(count(index_entries_sql), 0);
  EXPECT_EQ(CtlJson("subject show u-stays")["projects"][0]["eventCount"], 6);
}

// Due dates (issue 13, item 3): a per-project policy (GDPR one calendar month, PIPL 15 working days, N days), an
// extension with its reason (told to the device that filed the request, as is a refusal's reason), what falls due
// within a period, and the register's figures; through ferryctl and the admin API.
TEST_P(RightsRegisterTest, DueDatesFollowThePolicyAndCanBeExtendedOnceWithAReason) {
  int rc = 0;
  const int64_t now = base::NowMs();
  auto admin = [this](const std::string& method, const std::string& path, const std::string& body = "") {
    return testsupport::HttpRequest(method, col_->url() + path, body,
                                    {"Authorization: Bearer " + token_, "Content-Type: application/json"},
                                    col_->ca_file());
  };
  EXPECT_EQ(CtlJson("requests policy --set days:10")["policy"], "days:10");  // every project without its own
  json soon = CtlJson("requests add --kind erasure --subject u-a --project shop --received " +
                      ShellQuote(base::FormatIso8601(now - 8 * kDayMs)));
  json later = CtlJson("requests add --kind erasure --subject u-b --project shop");
  EXPECT_EQ(base::ParseIso8601(later["dueAt"].get<std::string>()).value() -
                base::ParseIso8601(later["receivedAt"].get<std::string>()).value(),
            10 * kDayMs);
  json due = CtlJson("requests --due-within 7d")["requests"];
  ASSERT_EQ(due.size(), 1u) << due.dump();
  EXPECT_EQ(due[0]["id"], soon["id"]);
  due = CtlJson("requests --due-within 11d")["requests"];
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0]["id"], soon["id"]);  // soonest first
  EXPECT_EQ(due[1]["id"], later["id"]);
  // The same through the admin API, in hours; a period it cannot read is refused.
  auto got = admin("GET", "/v1/requests/due?within=72h");
  ASSERT_EQ(got.status, 200) << got.body;
  json answer = json::parse(got.body);
  EXPECT_EQ(answer["withinMs"], 72 * 3600 * 1000LL);
  ASSERT_EQ(answer["requests"].size(), 1u);
  EXPECT_EQ(answer["requests"][0]["id"], soon["id"]);
  EXPECT_EQ(json::parse(admin("GET", "/v1/requests/due?within=24h").body)["requests"].size(), 0u);
  EXPECT_EQ(admin("GET", "/v1/requests/due?within=1w").status, 400);

  // PIPL: 15 working days from Friday 27 November 2026 is Friday 18 December.
  CtlJson("requests policy --project shop --set pipl");
  json pipl = CtlJson("requests add --kind access --subject u-c --project shop --received 2026-11-27");
  EXPECT_EQ(pipl["dueAt"].get<std::string>().substr(0, 10), "2026-12-18");
  // GDPR: one calendar month, the month's last day when it has no such day (the collector-wide policy).
  got = admin("POST", "/v1/requests/policy", json{{"project", ""}, {"policy", "gdpr"}}.dump());
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(json::parse(got.body)["policy"], "gdpr");
  json gdpr = CtlJson("requests add --kind access --subject u-d --received 2026-01-31");
  EXPECT_EQ(gdpr["dueAt"].get<std::string>().substr(0, 10), "2026-02-28");
  Ctl("requests policy --set 'one week'", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_EQ(admin("POST", "/v1/requests/policy", json{{"policy", "days:0"}}.dump()).status, 400);

  // An extension: from in_progress only, once, with its reason; the copy is still delivered and completes it.
  Ingest("u-c", 2);
  const std::string rid = pipl["id"];
  Ctl("requests extend " + rid + " --days 30 --reason 'many systems to search'", &rc);
  EXPECT_EQ(rc, 7);  // not approved yet
  CtlJson("requests approve " + rid + " --method account-login");
  json extended = CtlJson("requests extend " + rid + " --days 30 --reason 'many systems to search'");
  EXPECT_EQ(extended["state"], "extended");
  EXPECT_EQ(extended["dueAt"].get<std::string>().substr(0, 10), "2027-01-17");
  EXPECT_EQ(extended["extension"]["reason"], "many systems to search");
  EXPECT_EQ(extended["extension"]["days"], 30);
  EXPECT_EQ(extended["extension"]["by"], "officer-ann");
  EXPECT_EQ(extended["extension"]["previousDue"].get<std::string>().substr(0, 10), "2026-12-18");
  EXPECT_EQ(Request(rid)["state"], "extended");
  Ctl("requests extend " + rid + " --days 10 --reason again", &rc);
  EXPECT_EQ(rc, 7);  // once
  EXPECT_EQ(admin("POST", "/v1/requests/" + rid + "/extend", json{{"days", 10}, {"reason", "again"}}.dump()).status,
            409);
  Ctl("requests extend " + rid + " --days 90 --reason 'too long'", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_EQ(admin("POST", "/v1/requests/" + rid + "/extend", json{{"days", 5}}.dump()).status, 400);  // no reason
  EXPECT_EQ(Request(rid)["dueAt"].get<std::string>().substr(0, 10), "2027-01-17");
  Ctl("requests deliver " + rid + " --output " + ShellQuote(dir_.File("c.json")), &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(Request(rid)["state"], "completed");
  EXPECT_EQ(Request(rid)["extension"]["reason"], "many systems to search");  // kept

  // A device's own requests: the extension's reason and a refusal's reason reach it in its status answer (the SDK's
  // ferry_request_status hands this answer to the app), without the officer's name.
  Ingest("u-e", 1);
  const std::string claim(64, 'a');
  auto device = [this, &claim](const std::string& path, const json& body) {
    auto r =
        testsupport::HttpRequest("POST", col_->url() + path, body.dump(),
                                 {"Authorization: Bearer " + key_, "Content-Type: application/json"}, col_->ca_file());
    EXPECT_TRUE(r.status == 200 || r.status == 201) << path << ": " << r.status << " " << r.body;
    return json::parse(r.body, nullptr, false);
  };
  json filed = device("/v1/device/requests", {{"kind", "access"}, {"anonymousIds", {"anon-u-e"}}, {"claim", claim}});
  const std::string dev_rid = filed.value("reference", "");
  ASSERT_FALSE(dev_rid.empty()) << filed.dump();
  CtlJson("requests approve " + dev_rid + " --method device-claim");
  got = admin("POST", "/v1/requests/" + dev_rid + "/extend",
              json{{"days", 60}, {"reason", "the copy spans three systems"}}.dump());
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(json::parse(got.body)["state"], "extended");
  json status = device("/v1/device/requests/" + dev_rid + "/status", {{"claim", claim}});
  EXPECT_EQ(status["state"], "extended");
  EXPECT_EQ(status["extension"]["reason"], "the copy spans three systems");
  EXPECT_EQ(status["extension"]["days"], 60);
  EXPECT_FALSE(status["extension"].contains("by"));
  EXPECT_EQ(status["dueAt"], json::parse(got.body)["dueAt"]);
  EXPECT_TRUE(status["copyReady"].get<bool>());
  json filed2 =
      device("/v1/device/requests", {{"kind", "portability"}, {"anonymousIds", {"anon-u-e"}}, {"claim", claim}});
  const std::string refused_rid = filed2.value("reference", "");
  ASSERT_FALSE(refused_rid.empty()) << filed2.dump();
  CtlJson("requests reject " + refused_rid + " --reason 'we hold no data for portability under consent'");
  status = device("/v1/device/requests/" + refused_rid + "/status", {{"claim", claim}});
  EXPECT_EQ(status["state"], "rejected");
  EXPECT_EQ(status["refusalReason"], "we hold no data for portability under consent");
  EXPECT_TRUE(status["extension"].is_null());

  // The register in figures: by kind, by state, lateness (the extended request is on time against its new date).
  json st = CtlJson("requests stats");
  EXPECT_EQ(st["total"], 6);
  EXPECT_EQ(st["byState"]["extended"], 1);
  EXPECT_EQ(st["byState"]["rejected"], 1);
  EXPECT_EQ(st["byState"]["completed"], 1);
  EXPECT_EQ(st["byKind"]["access"], 3);
  EXPECT_EQ(st["byKind"]["erasure"], 2);
  EXPECT_EQ(st["lateness"]["openOverdue"], 1);  // u-d, due 28 February 2026
  EXPECT_EQ(st["lateness"]["closedLate"], 0);
  EXPECT_EQ(st["lateness"]["openOnTime"], 3);  // u-a, u-b, the extended one
  EXPECT_EQ(st["lateness"]["closedOnTime"], 2);

  std::map<std::string, int> actions;
  for (const json& e : Audit()) {
    if (e["result"] == "ok") ++actions[e["action"].get<std::string>()];
  }
  EXPECT_EQ(actions["requests.policy"], 3);
  EXPECT_EQ(actions["requests.extend"], 2);
  EXPECT_EQ(actions["requests.due"], 4);
  std::map<std::string, int> refused;  // refused bodies are on record too
  for (const json& e : Audit()) {
    if (e["result"] == "bad_request") ++refused[e["action"].get<std::string>()];
  }
  EXPECT_EQ(refused["requests.policy"], 2);
  EXPECT_EQ(refused["requests.extend"], 1);
}

INSTANTIATE_TEST_SUITE_P(Stores, RightsRegisterTest, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace ferry::testing
