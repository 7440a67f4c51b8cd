// The rights service (collector/rights/) on every backend, on a manual clock: an action commits with its register
// row and its audit entry or not at all, the register holds only its documented states, roles are checked and
// refusals audited, due dates and audit times come from the clock; and the retention job driven by the clock.
#include "collector/rights/rights_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "collector/rights/retention_job.h"
#include "tests/unit/store_conformance/store_env.h"

namespace ferry::collector::conformance {
namespace {

using nlohmann::json;
using rights::Action;
using rights::Actor;

constexpr int64_t kDayMs = 86400000;

class RightsServiceTest : public BackendTest {
 protected:
  base::Clock* StoreClock() override { return &clock_; }
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    blog_ = Project("blog");
    rights::RightsOptions o;
    o.request_due_ms = 15 * kDayMs;
    service_ = std::make_unique<rights::RightsService>(rights::StoresOf(store_.get()), &clock_, o, base::Logger());
    auto token = store_->CreateAdminToken("ann", {"compliance"});
    ASSERT_TRUE(token.ok());
    auto actor = service_->Authorize(*token, Action::kSubjectErase, "");
    ASSERT_TRUE(actor.ok()) << actor.status().ToString();
    officer_ = *actor;
  }
  void Populate() { PopulateZebra(*store_, shop_, blog_); }
  int64_t EventsOf(const std::string& id) {
    auto found = store_->FindSubject({"shop", id});
    EXPECT_TRUE(found.ok());
    return found.ok() && !found->empty() ? found->front().event_count : 0;
  }
  std::vector<AuditEntry> Audit() {
    auto list = store_->ListAudit(0, 10000, "");
    EXPECT_TRUE(list.ok());
    return list.ok() ? *list : std::vector<AuditEntry>();
  }
  std::vector<RightsRequest> Register() {
    auto list = store_->ListRequests({});
    EXPECT_TRUE(list.ok());
    return list.ok() ? *list : std::vector<RightsRequest>();
  }

  base::ManualClock clock_;
  int64_t blog_ = 0;
  std::unique_ptr<rights::RightsService> service_;
  Actor officer_;
};

TEST_P(RightsServiceTest, AnActionCommitsWithItsAuditEntryOrNotAtAll) {
  Populate();
  size_t audited = Audit().size();
  // The audit log cannot be written (its table is gone behind the store's back): nothing may happen.
  ASSERT_EQ(backend_->Exec("ALTER TABLE audit_log RENAME TO audit_log_away;"), "");
  auto erased = service_->Erase(officer_, {"", "zebra-user-7781"});
  ASSERT_FALSE(erased.ok());
  EXPECT_EQ(erased.status().message(), "the erasure failed; nothing was erased");
  EXPECT_EQ(EventsOf("zebra-user-7781"), 6);
  auto corrected = service_->Correct(officer_, {"shop", "anon-quokka-1"}, R"({"plan":"free"})");
  ASSERT_FALSE(corrected.ok());
  EXPECT_EQ(json::parse((*store_->FindSubject({"shop", "zebra-user-7781"}))[0].traits)["plan"], "pro");
  auto forgot = service_->Forget(WriteKeyInfo{shop_, "shop"}, {"anon-visitor"}, "");
  ASSERT_FALSE(forgot.ok());
  EXPECT_EQ(EventsOf("anon-visitor"), 1);
  auto key = service_->CreateWriteKey(officer_, "third");
  ASSERT_FALSE(key.ok());
  EXPECT_TRUE((*store_->Retention()).empty());
  EXPECT_FALSE(*store_->SetRetention("third", kDayMs));  // no project was made
  auto added = service_->AddRequest(officer_, {"access", "zebra-user-7781", "", 0, ""});
  ASSERT_FALSE(added.ok());
  EXPECT_TRUE(Register().empty());  // no register row without its audit entry

  ASSERT_EQ(backend_->Exec("ALTER TABLE audit_log_away RENAME TO audit_log;"), "");
  EXPECT_EQ(Audit().size(), audited);
  erased = service_->Erase(officer_, {"", "zebra-user-7781"});
  ASSERT_TRUE(erased.ok()) << erased.status().ToString();
  EXPECT_EQ(EventsOf("zebra-user-7781"), 0);
  auto reqs = Register();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].id, erased->request_id);
  EXPECT_EQ(reqs[0].state, "completed");
  EXPECT_EQ(reqs[0].subject, "hash:" + store_->IdHash("zebra-user-7781"));  // the erasure redacted its own row
  EXPECT_EQ(json::parse(reqs[0].result)["requestId"], erased->request_id);
  auto entries = Audit();
  // The erasure's first transaction writes a "started" entry: on the embedded store with the first chunk of its
  // events, on PostgreSQL with the suppression of its ids.
  ASSERT_EQ(entries.size(), audited + 2);
  EXPECT_EQ(entries[entries.size() - 2].action, "subject.erase");
  EXPECT_EQ(entries[entries.size() - 2].result, "started");
  EXPECT_EQ(entries.back().action, "subject.erase");
  EXPECT_EQ(entries.back().result, "ok");
  EXPECT_EQ(json::parse(entries.back().detail)["requestId"], erased->request_id);
  EXPECT_TRUE(store_->VerifyAudit()->ok);
}

TEST_P(RightsServiceTest, AFailedErasureChangesNothingAndWaitsForAnOfficer) {
  Populate();
  // Erasure itself fails (a table it deletes from is gone); the audit log works.
  ASSERT_EQ(backend_->Exec("ALTER TABLE traits RENAME TO traits_away;"), "");
  auto erased = service_->Erase(officer_, {"", "anon-quokka-2"});
  ASSERT_FALSE(erased.ok());
  ASSERT_EQ(backend_->Exec("ALTER TABLE traits_away RENAME TO traits;"), "");
  EXPECT_EQ(EventsOf("zebra-user-7781"), 6);
  auto reqs = Register();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].state, "awaiting_verification");
  if (GetParam() == "postgres") {
    // There the first transaction suppressed the subject's ids before the second failed: the error says so.
    EXPECT_EQ(json::parse(reqs[0].result)["error"],
              "the erasure failed part way: the subject's ids were suppressed (their new events are dropped), nothing "
              "was erased; the request awaits an officer, whose approval finishes the erasure");
    EXPECT_TRUE(*store_->IsSuppressed(shop_, store_->IdHash("anon-quokka-2")));
  } else {
    EXPECT_EQ(json::parse(reqs[0].result)["error"], "the erasure failed; nothing was erased");
  }
  EXPECT_EQ(Audit().back().result, "error");
  // An officer approves it once the store works again: it is carried out and completed.
  auto approved = service_->Approve(officer_, reqs[0].id);
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  EXPECT_EQ(approved->state, "completed");
  EXPECT_EQ(EventsOf("zebra-user-7781"), 0);
  EXPECT_EQ(json::parse(approved->result)["erased"]["events"], 7);  // 6 in shop, 1 in blog
}

TEST_P(RightsServiceTest, TheRegisterHoldsOnlyItsDocumentedStates) {
  Populate();
  ASSERT_TRUE(service_->Show(officer_, {"shop", "anon-visitor"}).ok());
  ASSERT_TRUE(service_->BeginLookup(officer_, {"shop", "other-user"}).ok());  // a lookup: audited, not registered
  ASSERT_TRUE(service_->Correct(officer_, {"shop", "other-user"}, R"({"plan":"basic"})").ok());
  auto forgot = service_->Forget(WriteKeyInfo{shop_, "shop"}, {"anon-visitor"}, "zebra-user-7781");
  ASSERT_TRUE(forgot.ok()) << forgot.status().ToString();
  EXPECT_FALSE(forgot->user_request_id.empty());
  auto add = service_->AddRequest(officer_, {"access", "someone", "", 0, ""});
  ASSERT_TRUE(add.ok());
  ASSERT_TRUE(service_->Reject(officer_, add->id, "identity could not be verified").ok());
  auto approved = service_->Approve(officer_, forgot->user_request_id);
  ASSERT_TRUE(approved.ok()) << approved.status().ToString();
  ASSERT_TRUE(service_->Erase(officer_, {"", "other-user"}).ok());
  auto reqs = Register();
  ASSERT_EQ(reqs.size(), 5u);  // correction, the device's erasure, its userId's, the added one, erase (no lookup)
  std::multiset<std::string> states;
  for (const auto& r : reqs) states.insert(r.state);
  EXPECT_EQ(states.count("completed"), 4u);
  EXPECT_EQ(states.count("rejected"), 1u);
  for (const auto& r : reqs) {
    EXPECT_TRUE(r.state == "received" || r.state == "awaiting_verification" || r.state == "in_progress" ||
                r.state == "extended" || r.state == "completed" || r.state == "rejected")
        << r.state;
  }
  EXPECT_EQ(std::count_if(reqs.begin(), reqs.end(), [](const RightsRequest& r) { return r.kind == "access"; }),
            1);  // the one added; the officer's lookup registered nothing
  EXPECT_EQ(Audit().back().action, "subject.erase");
  // Acting twice on one request is refused, and says why.
  auto again = service_->Approve(officer_, forgot->user_request_id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), base::Code::kFailedPrecondition);
  EXPECT_EQ(again.status().message(), "the request is completed, not awaiting_verification");
  auto missing = service_->Reject(officer_, "req_nope", "");
  EXPECT_EQ(missing.status().code(), base::Code::kNotFound);
  auto rejected = store_->GetRequest(add->id);
  EXPECT_EQ(json::parse((*rejected)->result)["reason"], "identity could not be verified");
}

// Refusals from a named source are counted, not audited one by one: one "admin.refused" entry per source and
// interval (written at the first call after the interval, or when the log is read).
TEST_P(RightsServiceTest, RefusalsFromASourceAreAuditedInAggregatePerInterval) {
  auto analyst = store_->CreateAdminToken("al", {"analyst"});
  ASSERT_TRUE(analyst.ok());
  const size_t before = Audit().size();
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(service_->Authorize("", Action::kSubjectShow, "victim", "10.0.0.1").status().code(),
              base::Code::kUnauthenticated);
    EXPECT_EQ(service_->Authorize(*analyst, Action::kSubjectErase, "victim", "10.0.0.1").status().code(),
              base::Code::kPermissionDenied);
  }
  (void)service_->Authorize("", Action::kAuditList, "", "10.0.0.2");
  EXPECT_EQ(Audit().size(), before);  // nothing written per call
  clock_.Advance(rights::RefusalOptions().interval_ms);
  (void)service_->Authorize("", Action::kAuditList, "", "10.0.0.3");  // the interval ended: both tallies written
  auto entries = Audit();
  ASSERT_EQ(entries.size(), before + 2);
  json first = json::parse(entries[before].detail);
  EXPECT_EQ(entries[before].action, "admin.refused");
  EXPECT_EQ(entries[before].result, "refused");
  EXPECT_EQ(first["source"], "10.0.0.1");
  EXPECT_EQ(first["count"], 100);
  EXPECT_EQ(first["results"]["unauthenticated"], 50);
  EXPECT_EQ(first["results"]["denied"], 50);
  EXPECT_EQ(first["callers"]["al (" + analyst->substr(0, 9) + ")"], 50);
  EXPECT_EQ(json::parse(entries[before + 1].detail)["source"], "10.0.0.2");
  // The rest is written when the service ends (or the log is read).
  service_.reset();
  auto last = Audit();
  ASSERT_EQ(last.size(), before + 3);
  EXPECT_EQ(json::parse(last.back().detail)["source"], "10.0.0.3");
  EXPECT_TRUE(store_->VerifyAudit()->ok);
}

TEST_P(RightsServiceTest, RolesAreCheckedAndRefusalsAudited) {
  auto analyst = store_->CreateAdminToken("al", {"analyst"});
  auto ops = store_->CreateAdminToken("oz", {"operator", "compliance"});
  ASSERT_TRUE(analyst.ok() && ops.ok());
  auto none = service_->Authorize("", Action::kSubjectShow, "victim");
  EXPECT_EQ(none.status().code(), base::Code::kUnauthenticated);
  auto unknown = service_->Authorize("fa_" + std::string(64, '0'), Action::kSubjectShow, "victim");
  EXPECT_EQ(unknown.status().code(), base::Code::kUnauthenticated);
  auto denied = service_->Authorize(*analyst, Action::kSubjectErase, "victim");
  EXPECT_EQ(denied.status().code(), base::Code::kPermissionDenied);
  EXPECT_EQ(denied.status().message(), "this call needs the role compliance");
  auto shows = service_->Authorize(*analyst, Action::kSubjectShow, "victim");
  ASSERT_TRUE(shows.ok());
  EXPECT_EQ(shows->role, "analyst");
  EXPECT_EQ(shows->name, "al");
  EXPECT_EQ(shows->audit_name, "al (" + analyst->substr(0, 9) + ")");
  // The first role of the action's list that the token holds is the one recorded.
  EXPECT_EQ(service_->Authorize(*ops, Action::kAuditList, "")->role, "operator");
  EXPECT_TRUE(service_->HasRole(*ops, "operator"));
  EXPECT_FALSE(service_->HasRole(*analyst, "operator"));
  EXPECT_FALSE(service_->HasRole("", "operator"));
  auto entries = Audit();
  ASSERT_GE(entries.size(), 3u);
  EXPECT_EQ(entries[entries.size() - 3].actor, "anonymous");
  EXPECT_EQ(entries[entries.size() - 3].result, "unauthenticated");
  EXPECT_EQ(entries[entries.size() - 3].subject_hash, store_->IdHash("victim"));
  EXPECT_EQ(entries[entries.size() - 2].actor, "unknown token");
  EXPECT_EQ(entries.back().result, "denied");
  EXPECT_EQ(entries.back().role, "");
  EXPECT_EQ(json::parse(entries.back().detail)["needs"], "compliance");
  EXPECT_EQ(service_->AuthorizeDevice("").status().code(), base::Code::kUnauthenticated);
  EXPECT_EQ(service_->AuthorizeDevice("fw_nope").status().code(), base::Code::kUnauthenticated);
}

TEST_P(RightsServiceTest, DueDatesAndAuditTimesComeFromTheClock) {
  int64_t t0 = clock_.NowMs();
  auto added = service_->AddRequest(officer_, {"erasure", "carol", "shop", 0, ""});
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->received_ms, t0);
  EXPECT_EQ(added->due_ms, t0 + 15 * kDayMs);
  EXPECT_EQ(added->state, "awaiting_verification");
  EXPECT_EQ(Audit().back().time_ms, t0);
  RequestFilter overdue;
  overdue.overdue_at_ms = service_->NowMs();
  auto early = service_->ListRequests(officer_, overdue);
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  EXPECT_TRUE(early->empty());
  clock_.Advance(16 * kDayMs);
  overdue.overdue_at_ms = service_->NowMs();
  auto late = service_->ListRequests(officer_, overdue);
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ(late->front().id, added->id);
  EXPECT_EQ(Audit().back().time_ms, t0 + 16 * kDayMs);
  auto given = service_->AddRequest(officer_, {"access", "dave", "", t0 - kDayMs, ""});  // received by mail yesterday
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given->due_ms, t0 + 14 * kDayMs);
  EXPECT_EQ(service_->AddRequest(officer_, {"poke", "dave", "", 0, ""}).status().code(), base::Code::kInvalidArgument);
}

TEST_P(RightsServiceTest, TheRetentionJobPurgesAtStartAndThenEveryIntervalOfTheClock) {
  int64_t now = clock_.NowMs();
  Put(shop_, {RightsEvent("old-1", "track", "", "a", now - 40 * kDayMs), RightsEvent("new-1", "track", "", "a", now)});
  int64_t purged = 0;
  rights::RetentionJob job(store_.get(), &clock_, rights::RetentionOptions{30 * kDayMs, 3600 * 1000, 5000},
                           base::Logger(), [&](int64_t n) { purged += n; });
  job.Start();
  ASSERT_TRUE(job.WaitForPasses(1, 60000));
  EXPECT_EQ(MessageIds("shop"), std::vector<std::string>{"new-1"});
  EXPECT_EQ(purged, 1);
  // Time passes: new-1 is now 31 days old; the next pass comes once an interval of the clock went by.
  clock_.Advance(31 * kDayMs);
  ASSERT_TRUE(job.WaitForPasses(2, 60000));
  EXPECT_TRUE(MessageIds("shop").empty());
  EXPECT_EQ(purged, 2);
  job.Stop();
  EXPECT_EQ(job.passes(), 2);
}

// Outbox pruning (issue 13): the retention job deletes what downstream has taken once it is older than the keep
// period: deliveries delivered, entries every feed consumer acknowledged with no delivery left. An entry a consumer
// has not acknowledged, or with a delivery still pending, stays; without a keep period nothing is pruned.
TEST_P(RightsServiceTest, TheRetentionJobPrunesOnlyAcknowledgedOutboxEntriesAndDeliveredDeliveries) {
  const int64_t now = clock_.NowMs();
  auto put = [&](const std::string& rid, int64_t created_ms, std::vector<std::string> destinations) {
    int64_t seq = 0;
    EXPECT_TRUE(store_
                    ->Transact(TxnMode::kWrite,
                               [&](StoreTxn& tx) -> base::Status {
                                 auto s = tx.primitives().InsertOutbox(
                                     OutboxEntry{0, "shop", "erasure", rid, "sealed:00", created_ms}, destinations);
                                 if (!s.ok()) return s.status();
                                 seq = *s;
                                 return base::Status::Ok();
                               })
                    .ok());
    return seq;
  };
  auto ack = [&](const std::string& consumer, int64_t seq) {
    ASSERT_TRUE(
        store_->Transact(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.primitives().AckOutbox(consumer, seq, now); })
            .ok());
  };
  auto left = [&]() {
    auto page = store_->TransactFor<std::vector<OutboxEntry>>(
        TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().ListOutbox(0, 100); });
    EXPECT_TRUE(page.ok());
    std::vector<std::string> rids;
    for (const auto& e : page.ok() ? *page : std::vector<OutboxEntry>()) rids.push_back(e.request_id);
    return rids;
  };
  auto deliveries = [&](const std::string& rid) {
    auto of = store_->TransactFor<std::vector<OutboxDelivery>>(
        TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().DeliveriesOf(rid); });
    EXPECT_TRUE(of.ok());
    return of.ok() ? *of : std::vector<OutboxDelivery>();
  };
  auto pass = [&](int64_t keep_ms) {
    rights::RetentionOptions o{0, 3600 * 1000, 5000};
    o.outbox_keep_ms = keep_ms;
    rights::RetentionJob job(store_.get(), &clock_, o, base::Logger());
    auto n = job.RunOnce();
    ASSERT_TRUE(n.ok()) << n.status().ToString();
  };
  const int64_t old = now - 40 * kDayMs;
  const int64_t s0 = put("req_0", old, {});
  const int64_t s1 = put("req_1", old, {"hook"});
  put("req_2", old, {});
  const int64_t s3 = put("req_3", now - kDayMs, {});
  const int64_t s4 = put("req_4", old, {"hook"});
  ASSERT_GT(s0, 0);

  // Nobody acknowledged anything: nothing is pruned, however old.
  pass(30 * kDayMs);
  EXPECT_EQ(left(), (std::vector<std::string>{"req_0", "req_1", "req_2", "req_3", "req_4"}));

  // req_1's webhook delivered 35 days ago; consumer "sync" read up to req_1, "warehouse" everything.
  std::vector<OutboxDelivery> d1 = deliveries("req_1");
  ASSERT_EQ(d1.size(), 1u);
  d1[0].state = "delivered";
  d1[0].attempts = 1;
  d1[0].last_status = 200;
  d1[0].delivered_ms = now - 35 * kDayMs;
  ASSERT_TRUE(
      store_->Transact(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.primitives().UpdateDelivery(d1[0]); }).ok());
  ack("sync", s1);
  ack("warehouse", s4);
  pass(0);  // no keep period: kept forever
  EXPECT_EQ(left().size(), 5u);
  pass(30 * kDayMs);
  // req_0 and req_1 went; req_2 is not acknowledged by "sync", req_3 is recent, req_4's delivery is pending.
  EXPECT_EQ(left(), (std::vector<std::string>{"req_2", "req_3", "req_4"}));
  EXPECT_TRUE(deliveries("req_1").empty());
  ASSERT_EQ(deliveries("req_4").size(), 1u);
  EXPECT_EQ(deliveries("req_4")[0].state, "pending");

  // "sync" catches up: req_2 goes; req_3 waits for its age, req_4 for its delivery.
  ack("sync", s4);
  pass(30 * kDayMs);
  EXPECT_EQ(left(), (std::vector<std::string>{"req_3", "req_4"}));
  clock_.Advance(31 * kDayMs);
  pass(30 * kDayMs);
  EXPECT_EQ(left(), (std::vector<std::string>{"req_4"}));
  EXPECT_GT(s3, s1);
}

INSTANTIATE_TEST_SUITE_P(Backends, RightsServiceTest, ::testing::ValuesIn(Backends()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace ferry::collector::conformance
