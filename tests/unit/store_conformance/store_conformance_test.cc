// The storage conformance suite: every test runs against each backend (sqlite, postgresql) through the Store made by
// MakeStore, so the backends cannot drift apart. It is the one truth for every engine: a test of what a store does
// belongs here; only what one engine alone has (its files, its schema, its pool) is tested beside it
// (sqlite_store_test.cc, pg_store_test.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "collector/ingest/ingest.h"
#include "collector/store/audit.h"
#include "lib/base/time.h"
#include "tests/unit/store_conformance/store_env.h"

namespace ferry::collector::conformance {
namespace {

using nlohmann::json;

StoredEvent Ev(const std::string& id, const std::string& type = "track", const std::string& user = "",
               const std::string& anon = "anon-1", int64_t ts = 0) {
  return MakeEvent(id, type, user, anon, ts != 0 ? ts : base::NowMs() - 60000, base::NowMs(),
                   json{{"messageId", id}, {"type", type}, {"text", "a \"quoted\" \\ value, {braces}"}});
}

StoredEvent Consent(const std::string& id, const std::string& user, const std::string& anon, const std::string& purpose,
                    const std::string& state, int64_t ts) {
  StoredEvent e = Ev(id, "consent", user, anon, ts);
  e.consent_purpose = purpose;
  e.consent_state = state;
  e.device = R"({"model":"Pixel"})";
  return e;
}

class StoreConformance : public BackendTest {};

struct Collect : ExportVisitor {
  std::vector<SubjectSummary> begun;
  std::vector<ConsentRecord> consent;
  std::vector<EventRow> events;
  int ended = 0;
  size_t stop_after_events = SIZE_MAX;
  bool BeginProject(const SubjectSummary& s) override {
    begun.push_back(s);
    return true;
  }
  bool Consent(const ConsentRecord& c) override {
    consent.push_back(c);
    return true;
  }
  bool Event(const EventRow& e) override {
    events.push_back(e);
    return events.size() < stop_after_events;
  }
  bool EndProject() override {
    ++ended;
    return true;
  }
};

TEST_P(StoreConformance, CheckAndWriteKeys) {
  EXPECT_TRUE(store_->Check().ok());
  auto k2 = store_->CreateWriteKey("shop");
  auto k3 = store_->CreateWriteKey("blog");
  ASSERT_TRUE(k2.ok() && k3.ok());
  EXPECT_EQ(k2->rfind("fw_", 0), 0u);
  auto i2 = store_->LookupWriteKey(*k2);
  auto i3 = store_->LookupWriteKey(*k3);
  ASSERT_TRUE(i2.ok() && i2->has_value() && i3.ok() && i3->has_value());
  EXPECT_EQ((*i2)->project_id, shop_);
  EXPECT_EQ((*i2)->project, "shop");
  EXPECT_NE((*i3)->project_id, shop_);
  EXPECT_EQ((*i3)->project, "blog");
  auto none = store_->LookupWriteKey("fw_" + std::string(64, '0'));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(store_->CreateWriteKey("").ok());
  // Keys are stored hashed: the key text is nowhere in the store.
  bool seen = false;
  ASSERT_TRUE(store_
                  ->ScanAllText([&](std::string_view, std::string_view, std::string_view t) {
                    if (t.find(*k2) != std::string_view::npos) seen = true;
                    return true;
                  })
                  .ok());
  EXPECT_FALSE(seen);
}

TEST_P(StoreConformance, InsertDedupsByProjectAndMessageIdAndKeepsOrderAndFields) {
  auto blog_key = store_->CreateWriteKey("blog");
  ASSERT_TRUE(blog_key.ok());
  int64_t blog = (*store_->LookupWriteKey(*blog_key))->project_id;

  StoredEvent first = Ev("m1", "track", "", "anon-1", 1700000000000);
  auto out = Put(shop_, {first, Ev("m2", "screen", "user-1", "anon-1"), Ev("m1"), Ev("m3", "page", "", "")});
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kAccepted, InsertOutcome::kAccepted,
                                             InsertOutcome::kDuplicate, InsertOutcome::kAccepted}));
  out = Put(shop_, {Ev("m2"), Ev("m4")});
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kDuplicate, InsertOutcome::kAccepted}));
  // The same messageId in another project is another event.
  out = Put(blog, {Ev("m1")});
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kAccepted}));

  EXPECT_EQ(MessageIds("shop"), (std::vector<std::string>{"m1", "m2", "m3", "m4"}));
  EXPECT_EQ(MessageIds("blog"), (std::vector<std::string>{"m1"}));
  EXPECT_EQ(MessageIds("").size(), 5u);
  auto rows = store_->DumpEvents("shop");
  ASSERT_TRUE(rows.ok());
  const EventRow& r = (*rows)[0];
  EXPECT_EQ(r.project, "shop");
  EXPECT_EQ(r.type, "track");
  EXPECT_EQ(r.user_id, "");
  EXPECT_EQ(r.anonymous_id, "anon-1");
  EXPECT_EQ(r.name, "Clicked");
  EXPECT_EQ(r.purpose, "analytics");
  EXPECT_EQ(r.timestamp_ms, 1700000000000);
  EXPECT_EQ(r.received_ms, first.received_ms);
  EXPECT_EQ(r.body, first.body);
  EXPECT_EQ((*rows)[1].user_id, "user-1");
  EXPECT_EQ((*rows)[2].anonymous_id, "");
}

TEST_P(StoreConformance, GroupCommitOfSeveralRequestsAndDropCounters) {
  InsertRequest a, b;
  a.project_id = b.project_id = shop_;
  a.events = {Ev("g1"), Ev("g2")};
  b.events = {Ev("g2"), Ev("g3")};
  a.dropped = {{"buffer_full", 3}, {"too_large", 1}};
  b.dropped = {{"buffer_full", 2}};
  std::vector<InsertRequest*> reqs = {&a, &b};
  ASSERT_TRUE(store_->Insert(reqs).ok());
  EXPECT_EQ(a.outcomes, (std::vector<InsertOutcome>{InsertOutcome::kAccepted, InsertOutcome::kAccepted}));
  EXPECT_EQ(b.outcomes, (std::vector<InsertOutcome>{InsertOutcome::kDuplicate, InsertOutcome::kAccepted}));
  InsertRequest c;
  c.project_id = shop_;
  c.dropped = {{"buffer_full", 10}};
  std::vector<InsertRequest*> only = {&c};
  ASSERT_TRUE(store_->Insert(only).ok());
  auto d = store_->DroppedCounters("shop");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, (std::map<std::string, int64_t>{{"buffer_full", 15}, {"too_large", 1}}));
}

TEST_P(StoreConformance, InsertGivesEachAcceptedEventItsSequenceAndEventsAfterReadsThemBack) {
  auto blog_key = store_->CreateWriteKey("blog");
  ASSERT_TRUE(blog_key.ok());
  int64_t blog = (*store_->LookupWriteKey(*blog_key))->project_id;
  InsertRequest a, b;
  a.project_id = shop_;
  a.project = "shop";
  a.events = {Ev("q1"), Ev("q2"), Ev("q1")};
  b.project_id = blog;
  b.project = "blog";
  b.events = {Ev("q3")};
  std::vector<InsertRequest*> reqs = {&a, &b};
  ASSERT_TRUE(store_->Insert(reqs).ok());
  ASSERT_EQ(a.seqs.size(), 3u);
  ASSERT_EQ(b.seqs.size(), 1u);
  EXPECT_GT(a.seqs[0], 0);
  EXPECT_GT(a.seqs[1], a.seqs[0]);  // increasing in insertion order
  EXPECT_EQ(a.seqs[2], 0);          // a duplicate has none
  EXPECT_GT(b.seqs[0], a.seqs[1]);
  InsertRequest c;
  c.project_id = shop_;
  c.events = {Ev("q4"), Ev("q2")};
  std::vector<InsertRequest*> later = {&c};
  ASSERT_TRUE(store_->Insert(later).ok());
  EXPECT_GT(c.seqs[0], b.seqs[0]);
  EXPECT_EQ(c.seqs[1], 0);

  // Every project, in sequence order, after a position, a page at a time.
  auto all = store_->EventsAfter(0, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 4u);
  std::vector<std::string> ids;
  for (const EventRow& r : *all) ids.push_back(r.project + "/" + r.message_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"shop/q1", "shop/q2", "blog/q3", "shop/q4"}));
  EXPECT_EQ((*all)[0].seq, a.seqs[0]);
  EXPECT_EQ((*all)[3].seq, c.seqs[0]);
  EXPECT_EQ((*all)[1].body, a.events[1].body);
  auto page = store_->EventsAfter(a.seqs[1], 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].message_id, "q3");
  auto none = store_->EventsAfter(c.seqs[0], 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreConformance, IdsWithLatestConsentFollowTheLedgerByTimestamp) {
  const int64_t t = base::NowMs() - 3600000;
  // u1: denied, then granted (later timestamp, sent first): not denied. u2 and its device: denied. anon-3: granted
  // then denied. A marketing denial does not count for analytics.
  auto out = Put(
      shop_,
      {Consent("c1", "u1", "", "analytics", "granted", t + 2000),
       Consent("c2", "u1", "", "analytics", "denied", t + 1000),
       Consent("c3", "u2", "anon-2", "analytics", "denied", t), Consent("c4", "", "anon-3", "analytics", "granted", t),
       Consent("c5", "", "anon-3", "analytics", "denied", t + 1), Consent("c6", "u4", "", "marketing", "denied", t)});
  ASSERT_EQ(out.size(), 6u);
  auto denied = store_->IdsWithLatestConsent("shop", "analytics", "denied");
  ASSERT_TRUE(denied.ok()) << denied.status().ToString();
  EXPECT_EQ(*denied, (std::vector<std::string>{"anon-2", "anon-3", "u2"}));
  auto elsewhere = store_->IdsWithLatestConsent("blog", "analytics", "denied");
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_TRUE(elsewhere->empty());
}

TEST_P(StoreConformance, SuppressedSubjectsAreDropped) {
  std::string h = store_->IdHash("anon-x");
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, store_->IdHash("anon-x"));
  EXPECT_NE(h, store_->IdHash("anon-y"));
  auto before = store_->IsSuppressed(shop_, h);
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(*before);
  ASSERT_TRUE(store_->Suppress(shop_, h).ok());
  ASSERT_TRUE(store_->Suppress(shop_, h).ok());  // twice is fine
  EXPECT_TRUE(*store_->IsSuppressed(shop_, h));
  auto out =
      Put(shop_, {Ev("s1", "track", "", "anon-x"), Ev("s2", "track", "u", "anon-y"), Ev("s3", "track", "", "anon-y")});
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kSuppressed, InsertOutcome::kAccepted,
                                             InsertOutcome::kAccepted}));
  ASSERT_TRUE(store_->Suppress(shop_, store_->IdHash("u")).ok());
  out = Put(shop_, {Ev("s4", "track", "u", "anon-z")});
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kSuppressed}));
  EXPECT_EQ(MessageIds("shop"), (std::vector<std::string>{"s2", "s3"}));
}

// A user with two devices, an alias from an old userId, consent and traits.
void SeedSubject(StoreConformance* t, int64_t pid, std::function<void(std::vector<StoredEvent>)> put) {
  (void)t;
  (void)pid;
  StoredEvent ident = Ev("i1", "identify", "alice", "dev-a", 1000);
  ident.traits = R"({"plan":"pro","email":"alice@example.com"})";
  StoredEvent ident2 = Ev("i2", "identify", "alice", "dev-b", 2000);
  ident2.traits = R"({"plan":"team"})";
  StoredEvent alias = Ev("a1", "alias", "alice", "dev-b", 3000);
  alias.previous_id = "alice-old";
  put({Ev("e1", "track", "", "dev-a", 500), ident, Ev("e2", "track", "alice", "dev-a", 1500), ident2,
       Ev("e3", "screen", "", "dev-b", 2500), alias, Ev("e4", "track", "alice-old", "dev-c", 100),
       Consent("c1", "", "dev-a", "analytics", "granted", 400),
       Consent("c2", "alice", "dev-b", "analytics", "denied", 2600),
       Consent("c3", "alice", "dev-b", "ads", "granted", 2700), Ev("x1", "track", "bob", "bobsphone", 900)});
}

TEST_P(StoreConformance, IdentityGraphFindsTheSameSubjectFromAnyId) {
  SeedSubject(this, shop_, [&](std::vector<StoredEvent> evs) { Put(shop_, std::move(evs)); });
  // (dev-c was only seen on an event of the old userId: it resolves to that one, not up the alias.)
  for (const char* id : {"alice", "dev-a", "dev-b", "alice-old"}) {
    auto found = store_->FindSubject({"shop", id});
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    ASSERT_EQ(found->size(), 1u) << id;
    const SubjectSummary& s = (*found)[0];
    EXPECT_EQ(s.project, "shop");
    EXPECT_EQ(s.project_id, shop_);
    EXPECT_EQ(s.user_id, "alice") << id;
    std::set<std::string> ids;
    for (const auto& i : s.identities) ids.insert(i.id);
    EXPECT_EQ(ids, (std::set<std::string>{"alice", "dev-a", "dev-b", "alice-old", "dev-c"})) << id;
    EXPECT_EQ(s.identities[0].kind, "userId");
    // e1 e2 e3 e4 + 2 identify + alias + 3 consent = 10 events (bob's x1 is not hers).
    EXPECT_EQ(s.event_count, 10) << id;
    EXPECT_EQ(s.events_by_type.at("track"), 3);
    EXPECT_EQ(s.events_by_type.at("consent"), 3);
    EXPECT_EQ(s.first_seen_ms, 100);
    EXPECT_EQ(s.last_seen_ms, 3000);
    ASSERT_EQ(s.consent.size(), 2u);
    EXPECT_EQ(s.consent[0].purpose, "ads");
    EXPECT_EQ(s.consent[0].state, "granted");
    EXPECT_EQ(s.consent[1].purpose, "analytics");
    EXPECT_EQ(s.consent[1].state, "denied");
    json traits = json::parse(s.traits, nullptr, false);
    EXPECT_EQ(traits, json({{"plan", "team"}, {"email", "alice@example.com"}}));
  }
  auto links = store_->FindSubject({"", "dev-a"});
  ASSERT_TRUE(links.ok());
  ASSERT_EQ(links->size(), 1u);
  bool linked = false;
  for (const auto& i : (*links)[0].identities) {
    if (i.id == "dev-a") {
      linked = true;
      EXPECT_EQ(i.kind, "anonymousId");
      EXPECT_EQ(i.linked_to, "alice");
      EXPECT_EQ(i.source, "identify");
      EXPECT_EQ(i.first_seen_ms, 1000);
    }
  }
  EXPECT_TRUE(linked);
  auto bob = store_->FindSubject({"shop", "bobsphone"});
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*bob)[0].user_id, "bob");
  EXPECT_EQ((*bob)[0].event_count, 1);
  auto nobody = store_->FindSubject({"", "nobody"});
  ASSERT_TRUE(nobody.ok());
  EXPECT_TRUE(nobody->empty());
  auto other_project = store_->FindSubject({"blog", "alice"});
  ASSERT_TRUE(other_project.ok());
  EXPECT_TRUE(other_project->empty());
}

TEST_P(StoreConformance, AnonymousOnlySubject) {
  Put(shop_, {Ev("n1", "track", "", "lonely"), Ev("n2", "page", "", "lonely")});
  auto f = store_->FindSubject({"", "lonely"});
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].user_id, "");
  EXPECT_EQ((*f)[0].event_count, 2);
  ASSERT_EQ((*f)[0].identities.size(), 1u);
  EXPECT_EQ((*f)[0].identities[0].kind, "anonymousId");
  EXPECT_EQ((*f)[0].traits, "{}");
}

// Ingest's consent gate resolves a batch's device through "the userId its anonymousId was seen with" (an index of the
// events that carry both ids since schema 14): a device with a long anonymous history, then one event under a
// userId, resolves to that userId with every event counted; an anonymousId never seen with one stays anonymous.
TEST_P(StoreConformance, AnAnonymousIdSeenOnceWithAUserIdAmongManyResolvesToIt) {
  std::vector<StoredEvent> history;
  for (int i = 0; i < 300; ++i) history.push_back(Ev("h" + std::to_string(i), "track", "", "phone-9"));
  history.push_back(Ev("h-signed-in", "track", "carol", "phone-9"));
  history.push_back(Consent("c-carol", "carol", "", "analytics", "granted", base::NowMs() - 30000));
  for (int i = 0; i < 20; ++i) history.push_back(Ev("q" + std::to_string(i), "track", "", "tablet-3"));
  Put(shop_, std::move(history));
  auto f = store_->FindSubject({"shop", "phone-9"});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].user_id, "carol");
  EXPECT_EQ((*f)[0].event_count, 302);  // the 301 tracks and carol's consent record
  // What the gate reads for a batch of the device: carol's records, reached through the anonymousId.
  auto consent = store_->PersonConsent(shop_, "", "phone-9");
  ASSERT_TRUE(consent.ok()) << consent.status().ToString();
  ASSERT_EQ(consent->size(), 1u);
  EXPECT_EQ((*consent)[0].user_id, "carol");
  EXPECT_EQ((*consent)[0].state, "granted");
  auto alone = store_->FindSubject({"shop", "tablet-3"});
  ASSERT_TRUE(alone.ok());
  ASSERT_EQ(alone->size(), 1u);
  EXPECT_EQ((*alone)[0].user_id, "");
  EXPECT_EQ((*alone)[0].event_count, 20);
}

TEST_P(StoreConformance, ExportStreamsConsentThenEventsInInsertionOrderAcrossManyPages) {
  SeedSubject(this, shop_, [&](std::vector<StoredEvent> evs) { Put(shop_, std::move(evs)); });
  // Enough events for several pages of both backends.
  std::vector<StoredEvent> many;
  for (int i = 0; i < 1300; ++i)
    many.push_back(Ev("bulk-" + std::to_string(i), "track", i % 2 ? "alice" : "", "dev-a"));
  Put(shop_, many);
  Collect c;
  auto r = store_->ExportSubject({"shop", "dev-b"}, c);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(*r);
  ASSERT_EQ(c.begun.size(), 1u);
  EXPECT_EQ(c.begun[0].event_count, 1310);
  EXPECT_EQ(c.ended, 1);
  ASSERT_EQ(c.consent.size(), 3u);
  EXPECT_EQ(c.consent[0].message_id, "c1");
  EXPECT_EQ(c.consent[0].device, R"({"model":"Pixel"})");
  EXPECT_EQ(c.consent[2].purpose, "ads");
  ASSERT_EQ(c.events.size(), 1310u);
  std::set<std::string> unique;
  for (const auto& e : c.events) {
    unique.insert(e.message_id);
    EXPECT_EQ(e.project, "shop");
  }
  EXPECT_EQ(unique.size(), 1310u);
  EXPECT_EQ(unique.count("x1"), 0u);
  EXPECT_EQ(c.events[0].message_id, "e1");
  EXPECT_EQ(c.events[9].message_id, "c3");
  EXPECT_EQ(c.events[10].message_id, "bulk-0");
  EXPECT_EQ(c.events.back().message_id, "bulk-1299");

  Collect stop;
  stop.stop_after_events = 600;
  auto stopped = store_->ExportSubject({"shop", "alice"}, stop);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), base::Code::kClosed);
  EXPECT_EQ(stop.events.size(), 600u);

  Collect none;
  auto unknown = store_->ExportSubject({"", "nobody"}, none);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(*unknown);
  EXPECT_TRUE(none.begun.empty());
  // The store still works after a stopped export (no lock or connection left behind).
  EXPECT_TRUE(store_->Check().ok());
  EXPECT_EQ(Put(shop_, {Ev("after-export")}), (std::vector<InsertOutcome>{InsertOutcome::kAccepted}));
}

TEST_P(StoreConformance, EraseSubjectRemovesEverythingSuppressesAndRedactsInOneGo) {
  SeedSubject(this, shop_, [&](std::vector<StoredEvent> evs) { Put(shop_, std::move(evs)); });
  RightsRequest open;
  open.kind = "access";
  open.subject = "dev-a";
  open.state = "completed";
  open.source = "admin";
  ASSERT_TRUE(store_->CreateRequest(open).ok());
  auto receipt = store_->EraseSubject({"shop", "dev-b"}, "req_1");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_EQ(receipt->request_id, "req_1");
  EXPECT_EQ(receipt->projects, std::vector<std::string>{"shop"});
  EXPECT_EQ(receipt->erased.at("events"), 10);
  EXPECT_EQ(receipt->erased.at("consent_ledger"), 3);
  EXPECT_EQ(receipt->erased.at("identity_links"), 3);  // dev-a, dev-b (the alias repeats it), alice-old
  EXPECT_EQ(receipt->erased.at("traits"), 2);
  EXPECT_EQ(receipt->erased.at("requests_redacted"), 1);
  EXPECT_EQ(receipt->ids_suppressed, 5);
  EXPECT_GT(receipt->completed_ms, 0);
  EXPECT_EQ(MessageIds("shop"), std::vector<std::string>{"x1"});
  // No id of hers is left anywhere (the audit and suppression list hold keyed hashes only).
  std::vector<std::string> found;
  ASSERT_TRUE(store_
                  ->ScanAllText([&](std::string_view table, std::string_view column, std::string_view t) {
                    for (const char* id : {"alice", "dev-a", "dev-b", "dev-c"}) {
                      if (t.find(id) != std::string_view::npos) {
                        found.push_back(std::string(table) + "." + std::string(column) + ": " + std::string(t));
                      }
                    }
                    return true;
                  })
                  .ok());
  EXPECT_TRUE(found.empty()) << found.front();
  for (const char* id : {"alice", "dev-a", "dev-b", "alice-old", "dev-c"}) {
    EXPECT_TRUE(*store_->IsSuppressed(shop_, store_->IdHash(id))) << id;
  }
  auto resent = Put(shop_, {Ev("e1", "track", "", "dev-a", 500), Ev("late", "track", "alice", "")});
  EXPECT_EQ(resent, (std::vector<InsertOutcome>{InsertOutcome::kSuppressed, InsertOutcome::kSuppressed}));
  auto f = store_->FindSubject({"", "alice"});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->empty());
  auto reqs = store_->ListRequests({});
  ASSERT_TRUE(reqs.ok());
  ASSERT_EQ(reqs->size(), 1u);
  EXPECT_EQ((*reqs)[0].subject, "hash:" + store_->IdHash("dev-a"));

  // An unknown subject: nothing erased, the id suppressed in every project.
  auto blog_key = store_->CreateWriteKey("blog");
  ASSERT_TRUE(blog_key.ok());
  auto unknown = store_->EraseSubject({"", "ghost"}, "req_2");
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->projects.empty());
  EXPECT_EQ(unknown->erased.at("events"), 0);
  EXPECT_EQ(unknown->ids_suppressed, 2);
}

TEST_P(StoreConformance, EraseAnonymousIdsTouchesOnlyThoseIds) {
  SeedSubject(this, shop_, [&](std::vector<StoredEvent> evs) { Put(shop_, std::move(evs)); });
  auto r = store_->EraseAnonymousIds(shop_, {"dev-c", "alice", ""}, "req_f");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->projects, std::vector<std::string>{"shop"});
  EXPECT_EQ(r->erased.at("events"), 1);  // e4 (anonymousId dev-c); "alice" is a userId and is refused
  EXPECT_EQ(r->ids_suppressed, 1);
  EXPECT_TRUE(*store_->IsSuppressed(shop_, store_->IdHash("dev-c")));
  EXPECT_FALSE(*store_->IsSuppressed(shop_, store_->IdHash("alice")));
  auto f = store_->FindSubject({"shop", "alice"});
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].event_count, 9);
}

TEST_P(StoreConformance, PatchTraitsMergesAndRemoves) {
  SeedSubject(this, shop_, [&](std::vector<StoredEvent> evs) { Put(shop_, std::move(evs)); });
  EXPECT_FALSE(store_->PatchTraits({"", "alice"}, "[1]").ok());
  EXPECT_FALSE(store_->PatchTraits({"", "alice"}, R"({"":1})").ok());
  auto out = store_->PatchTraits({"", "dev-a"}, R"({"plan":"free","email":null,"age":42})");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ(json::parse((*out)[0].traits, nullptr, false), json({{"plan", "free"}, {"age", 42}}));
  auto again = store_->FindSubject({"shop", "alice"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(json::parse((*again)[0].traits, nullptr, false), json({{"plan", "free"}, {"age", 42}}));
  auto none = store_->PatchTraits({"", "nobody"}, R"({"a":1})");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreConformance, RequestRegister) {
  RightsRequest r;
  r.kind = "erasure";
  r.project = "shop";
  r.subject = "carol";
  r.state = "awaiting_verification";
  r.source = "device";
  r.received_ms = 1000;
  r.due_ms = 5000;
  auto a = store_->CreateRequest(r);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->id.rfind("req_", 0), 0u);
  EXPECT_EQ(a->subject_hash, store_->IdHash("carol"));
  r.id = "req_given";
  r.received_ms = 2000;
  r.due_ms = 900000;
  ASSERT_TRUE(store_->CreateRequest(r).ok());
  EXPECT_FALSE(store_->CreateRequest(r).ok());  // the id is taken
  auto got = store_->GetRequest(a->id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->kind, "erasure");
  EXPECT_EQ((*got)->due_ms, 5000);
  EXPECT_FALSE(store_->GetRequest("req_nope")->has_value());

  EXPECT_EQ(*store_->UpdateRequest(a->id, "awaiting_verification", "completed", "officer", 3000, "{\"ok\":1}"),
            RequestUpdate::kUpdated);
  EXPECT_EQ(*store_->UpdateRequest(a->id, "awaiting_verification", "rejected", "other", 3001, ""),
            RequestUpdate::kWrongState);
  EXPECT_EQ(*store_->UpdateRequest("req_nope", "x", "y", "z", 1, ""), RequestUpdate::kNotFound);
  got = store_->GetRequest(a->id);
  EXPECT_EQ((*got)->state, "completed");
  EXPECT_EQ((*got)->acted_by, "officer");
  EXPECT_EQ((*got)->acted_ms, 3000);
  EXPECT_EQ((*got)->result, "{\"ok\":1}");

  auto all = store_->ListRequests({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, a->id);
  RequestFilter f;
  f.state = "awaiting_verification";
  EXPECT_EQ(store_->ListRequests(f)->size(), 1u);
  RequestFilter overdue;
  overdue.overdue_at_ms = 1000000;
  auto od = store_->ListRequests(overdue);
  ASSERT_EQ(od->size(), 1u);
  EXPECT_EQ((*od)[0].id, "req_given");
  RequestFilter lim;
  lim.limit = 1;
  EXPECT_EQ(store_->ListRequests(lim)->size(), 1u);
}

TEST_P(StoreConformance, AuditChainAppendsListsAndVerifies) {
  for (int i = 0; i < 5; ++i) {
    AuditEntry e;
    e.actor = "ops (fa_1234)";
    e.role = "compliance";
    e.action = i % 2 ? "subject.show" : "subject.erase";
    e.subject_hash = i % 2 ? store_->IdHash("dan") : "";
    e.result = "ok";
    e.detail = "{\"n\":" + std::to_string(i) + "}";
    if (i == 0) e.time_ms = 12345;
    auto out = store_->AppendAudit(e);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->seq, i + 1);
    EXPECT_EQ(out->hash.size(), 64u);
    if (i == 0) {
      EXPECT_EQ(out->prev_hash, std::string(64, '0'));
      EXPECT_EQ(out->time_ms, 12345);
    }
  }
  auto list = store_->ListAudit(0, 100, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 5u);
  for (size_t i = 1; i < list->size(); ++i) EXPECT_EQ((*list)[i].prev_hash, (*list)[i - 1].hash);
  EXPECT_EQ(store_->ListAudit(0, 100, store_->IdHash("dan"))->size(), 2u);
  EXPECT_EQ(store_->ListAudit(3, 100, "")->size(), 2u);
  EXPECT_EQ(store_->ListAudit(0, 2, "")->size(), 2u);
  auto v = store_->VerifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->reason;
  EXPECT_EQ(v->entries, 5);
}

TEST_P(StoreConformance, ConcurrentAuditAppendsFromTwoStoresKeepOneChain) {
  auto second = backend_->Open();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  // sqlite is one process's store: the second "collector" shares it; postgresql gets a second pool.
  Store* stores[2] = {store_.get(), GetParam() == "sqlite" ? store_.get() : second->get()};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        AuditEntry e;
        e.actor = "writer-" + std::to_string(t);
        e.action = "subject.show";
        e.result = "ok";
        if (!stores[t % 2]->AppendAudit(e).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto v = store_->VerifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->reason << " at " << v->first_broken_seq;
  EXPECT_EQ(v->entries, 150);
}

TEST_P(StoreConformance, ConcurrentIngestOfOverlappingBatchesStoresEachEventOnce) {
  auto second = backend_->Open();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  Store* stores[2] = {store_.get(), GetParam() == "sqlite" ? store_.get() : second->get()};
  // 4 threads over 2 stores; batch b of each thread holds ids [b*50, b*50+100): each id arrives ~8 times.
  std::atomic<int64_t> accepted{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < 20; ++b) {
        InsertRequest r;
        r.project_id = shop_;
        for (int i = b * 50; i < b * 50 + 100; ++i) {
          // Reverse order on odd threads: the claims are taken in opposite orders.
          int id = t % 2 ? (b * 50 + 99 - (i - b * 50)) : i;
          r.events.push_back(Ev("c-" + std::to_string(id)));
        }
        std::vector<InsertRequest*> reqs = {&r};
        if (!stores[t % 2]->Insert(reqs).ok()) {
          ++failures;
          continue;
        }
        for (InsertOutcome o : r.outcomes) accepted += o == InsertOutcome::kAccepted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(accepted.load(), 1050);
  auto ids = MessageIds("shop");
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(ids.size(), 1050u);
  EXPECT_EQ(unique.size(), 1050u);
}

TEST_P(StoreConformance, AdminTokens) {
  EXPECT_FALSE(store_->CreateAdminToken("x", {}).ok());
  EXPECT_FALSE(store_->CreateAdminToken("x", {"root"}).ok());
  auto t1 = store_->CreateAdminToken("ops", {"operator", "compliance", "operator"});
  auto t2 = store_->CreateAdminToken("", {"analyst"});
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_EQ(t1->rfind("fa_", 0), 0u);
  EXPECT_EQ(t1->size(), 67u);
  auto info = store_->LookupAdminToken(*t1);
  ASSERT_TRUE(info.ok() && info->has_value());
  EXPECT_EQ((*info)->name, "ops");
  EXPECT_EQ((*info)->roles, (std::vector<std::string>{"operator", "compliance"}));
  EXPECT_EQ((*info)->prefix, t1->substr(0, 9));
  EXPECT_EQ((*store_->LookupAdminToken(*t2))->name, "admin");
  EXPECT_FALSE(store_->LookupAdminToken("fa_" + std::string(64, 'a'))->has_value());
  auto wk = store_->CreateWriteKey("shop");
  EXPECT_FALSE(store_->LookupAdminToken(*wk)->has_value());
  auto list = store_->ListAdminTokens();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_TRUE(*store_->RevokeAdminToken((*info)->id));
  EXPECT_FALSE(*store_->RevokeAdminToken((*info)->id));
  EXPECT_FALSE(store_->LookupAdminToken(*t1)->has_value());
  list = store_->ListAdminTokens();
  int revoked = 0;
  for (const auto& t : *list) revoked += t.revoked_ms > 0;
  EXPECT_EQ(revoked, 1);
}

// Issue 11: a device's clock never keeps an event past the retention policy. An event dated 2999 goes through ingest
// (clamped into the window around its received time) into the store, and the retention pass after the policy's age
// (plus the window's future bound) deletes it.
TEST_P(StoreConformance, AnEventDated2999DoesNotSurviveRetention) {
  constexpr int64_t kDay = 86400000;
  const int64_t received = base::NowMs();
  json batch = {{"batch", json::array({json{{"messageId", "from-2999"},
                                            {"type", "track"},
                                            {"event", "Clicked"},
                                            {"anonymousId", "anon-2999"},
                                            {"timestamp", "2999-01-01T00:00:00.000Z"},
                                            {"purpose", "analytics"}}})}};
  ParsedBatch parsed = ParseBatch(wire::Encoding::kIdentity, batch.dump(), wire::Limits(), received);
  ASSERT_EQ(parsed.status, 200) << parsed.error;
  ASSERT_EQ(parsed.events.size(), 1u);
  EXPECT_EQ(parsed.clamped, 1u);
  EXPECT_EQ(Put(shop_, std::move(parsed.events)), (std::vector<InsertOutcome>{InsertOutcome::kAccepted}));
  auto rows = store_->DumpEvents("shop");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_LE((*rows)[0].timestamp_ms, received + TimeWindow().max_future_ms);
  EXPECT_EQ(json::parse((*rows)[0].body)["originalTimestamp"], "2999-01-01T00:00:00.000Z");
  // Kept while younger than the policy (30 days)...
  ASSERT_EQ(*store_->PurgeExpired(received + 29 * kDay, 30 * kDay, 100), 0);
  EXPECT_EQ(MessageIds("shop").size(), 1u);
  // ...and gone once the policy's age has passed since it arrived (plus the window's future bound).
  auto purged = store_->PurgeExpired(received + 30 * kDay + TimeWindow().max_future_ms + 1, 30 * kDay, 100);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 1);
  EXPECT_TRUE(MessageIds("shop").empty());
}

TEST_P(StoreConformance, RetentionPurgesOldEventsPerProjectInChunks) {
  auto blog_key = store_->CreateWriteKey("blog");
  int64_t blog = (*store_->LookupWriteKey(*blog_key))->project_id;
  int64_t now = base::NowMs();
  constexpr int64_t kDay = 86400000;
  std::vector<StoredEvent> shop_events, blog_events;
  for (int i = 0; i < 30; ++i) shop_events.push_back(Ev("old-" + std::to_string(i), "track", "", "a", now - 40 * kDay));
  shop_events.push_back(Consent("old-consent", "", "a", "analytics", "granted", now - 40 * kDay));
  for (int i = 0; i < 5; ++i) shop_events.push_back(Ev("new-" + std::to_string(i), "track", "", "a", now - kDay));
  for (int i = 0; i < 4; ++i) blog_events.push_back(Ev("b-" + std::to_string(i), "track", "", "a", now - 40 * kDay));
  Put(shop_, shop_events);
  Put(blog, blog_events);

  EXPECT_FALSE(*store_->SetRetention("nope", kDay));
  EXPECT_FALSE(*store_->SetRetention("", kDay));
  ASSERT_TRUE(*store_->SetRetention("blog", 100 * kDay));  // blog keeps its 40-day-old events
  EXPECT_EQ(*store_->Retention(), (std::map<std::string, int64_t>{{"blog", 100 * kDay}}));

  int64_t total = 0;
  for (int calls = 0; calls < 20; ++calls) {
    auto n = store_->PurgeExpired(now, 30 * kDay, 8);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    total += *n;
    if (*n < 8) break;
  }
  EXPECT_EQ(total, 31);  // 30 tracks + the consent event
  auto left = MessageIds("shop");
  EXPECT_EQ(left, (std::vector<std::string>{"new-0", "new-1", "new-2", "new-3", "new-4"}));
  EXPECT_EQ(MessageIds("blog").size(), 4u);
  auto f = store_->FindSubject({"shop", "a"});
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1u);
  EXPECT_TRUE((*f)[0].consent.empty());
  ASSERT_TRUE(*store_->SetRetention("blog", 0));
  EXPECT_TRUE(store_->Retention()->empty());
  // 0 as the default keeps events forever.
  EXPECT_EQ(*store_->PurgeExpired(now, 0, 100), 0);
  EXPECT_EQ(MessageIds("blog").size(), 4u);
  EXPECT_EQ(*store_->PurgeExpired(now, 30 * kDay, 100), 4);
  // The dedup keys of purged events went with them: a resend of one is a new event again (and would be purged
  // again), while a kept event's key still makes its resend a duplicate.
  EXPECT_EQ(Put(shop_, {Ev("old-0", "track", "", "a", now - 40 * kDay), Ev("new-0", "track", "", "a", now - kDay)}),
            (std::vector<InsertOutcome>{InsertOutcome::kAccepted, InsertOutcome::kDuplicate}));
}

// The consent gate reads a batch's people together (issue 16): PeopleConsent gives each (userId, anonymousId) what
// PersonConsent gives it alone, in the same order, whether the person is a device on its own, a device linked to a
// userId (its records under another device of that userId), a device seen once with a userId, a userId, a new
// userId on a known device, or the same device under two userIds.
TEST_P(StoreConformance, PeopleConsentGivesEachPersonWhatPersonConsentGives) {
  const int64_t t = base::NowMs() - 50000;
  StoredEvent identify = Ev("i-dave", "identify", "dave", "dev-c", t);
  Put(shop_,
      {Consent("c-a", "", "dev-a", "analytics", "granted", t), Ev("e-a", "track", "", "dev-a", t),
       Ev("e-b", "track", "", "dev-b", t), identify, Consent("c-dave", "dave", "dev-d", "analytics", "denied", t + 1),
       Consent("c-dev-d", "", "dev-d", "marketing", "granted", t + 2), Ev("e-9", "track", "carol", "phone-9", t),
       Consent("c-carol", "carol", "", "analytics", "granted", t + 3),
       Consent("c-erin", "erin", "", "ads", "granted", t + 4),
       Consent("c-f", "", "dev-f", "analytics", "granted", t + 5),
       Consent("c-both", "gina", "dev-g", "analytics", "granted", t + 6)});
  const std::vector<std::pair<std::string, std::string>> people = {
      {"", "dev-a"},     {"", "dev-b"}, {"", "dev-c"},    {"", "phone-9"}, {"erin", ""}, {"frank", "dev-f"},
      {"gina", "dev-g"}, {"", "dev-g"}, {"hal", "dev-a"}, {"", "nobody"},  {"", ""},     {"dave", "dev-c"}};
  auto together = store_->PeopleConsent(shop_, people);
  ASSERT_TRUE(together.ok()) << together.status().ToString();
  ASSERT_EQ(together->size(), people.size());
  auto ids = [](const std::vector<ConsentRecord>& records) {
    std::vector<std::string> out;
    for (const ConsentRecord& r : records) out.push_back(r.message_id);
    return out;
  };
  for (size_t i = 0; i < people.size(); ++i) {
    auto alone = store_->PersonConsent(shop_, people[i].first, people[i].second);
    ASSERT_TRUE(alone.ok()) << alone.status().ToString();
    EXPECT_EQ(ids((*together)[i]), ids(*alone)) << "(" << people[i].first << ", " << people[i].second << ")";
  }
  using V = std::vector<std::string>;
  EXPECT_EQ(ids((*together)[0]), (V{"c-a"}));
  EXPECT_TRUE((*together)[1].empty());
  EXPECT_EQ(ids((*together)[2]), (V{"c-dave", "c-dev-d"}));  // dev-c is dave's: his records, and his other device's
  EXPECT_EQ(ids((*together)[3]), (V{"c-carol"}));
  EXPECT_EQ(ids((*together)[4]), (V{"c-erin"}));
  EXPECT_EQ(ids((*together)[5]), (V{"c-f"}));
  EXPECT_EQ(ids((*together)[6]), (V{"c-both"}));  // once, though it carries both ids
  EXPECT_EQ(ids((*together)[7]), (V{"c-both"}));
  EXPECT_EQ(ids((*together)[8]), (V{"c-a"}));
  EXPECT_TRUE((*together)[9].empty());
  EXPECT_TRUE((*together)[10].empty());
  EXPECT_EQ(ids((*together)[11]), (V{"c-dave", "c-dev-d"}));
  // An engine may name more ids to walk than need it (the default names all), never fewer.
  auto walk = store_->TransactFor<std::vector<std::string>>(TxnMode::kRead, [&](StoreTxn& tx) {
    return tx.primitives().IdsToWalk(shop_, {"dev-a", "dev-b", "dev-c", "phone-9", "erin", "frank", "dave", "nobody"});
  });
  ASSERT_TRUE(walk.ok()) << walk.status().ToString();
  std::set<std::string> named(walk->begin(), walk->end());
  for (const char* id : {"dev-c", "phone-9", "erin", "dave"}) EXPECT_EQ(named.count(id), 1u) << id;
  if (backend_->kind() == "postgresql") {
    EXPECT_EQ(named, (std::set<std::string>{"dev-c", "phone-9", "erin", "dave"}));
  }
}

// An erasure in chunks (issue 13) lists the subject's rows once, in row order, and deletes them a slice at a time:
// EventRowsOf names every event held under one of the ids (as userId or anonymousId) once, ascending, and nothing
// else; DeleteEventRows deletes only rows still held under one of the ids, so a stale list cannot reach another
// person's event. DeleteEventsOf deletes all of them at once.
TEST_P(StoreConformance, AnErasuresRowListNamesTheSubjectsEventsInRowOrderAndDeletesOnlyThose) {
  const int64_t t = base::NowMs() - 50000;
  Put(shop_, {Ev("r1", "track", "rita", "dev-r1", t), Ev("o1", "track", "", "dev-other", t),
              Ev("r2", "track", "", "dev-r2", t + 1), Ev("r3", "track", "rita", "dev-r2", t + 2),
              Ev("o2", "track", "olga", "dev-o", t + 3), Ev("r4", "track", "", "dev-r1", t + 4)});
  const std::vector<std::string> rita = {"rita", "dev-r1", "dev-r2"};
  auto rows = store_->TransactFor<std::vector<int64_t>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().EventRowsOf(shop_, rita); });
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 4u);  // r1..r4, each once though r1 and r3 carry two of the ids
  EXPECT_TRUE(std::is_sorted(rows->begin(), rows->end()));
  EXPECT_EQ(std::set<int64_t>(rows->begin(), rows->end()).size(), 4u);
  auto olga = store_->TransactFor<std::vector<int64_t>>(TxnMode::kRead, [&](StoreTxn& tx) {
    return tx.primitives().EventRowsOf(shop_, {"olga", "nobody"});
  });
  ASSERT_TRUE(olga.ok());
  ASSERT_EQ(olga->size(), 1u);
  // A slice with another person's row in it (a list gone stale) deletes the subject's rows only.
  auto first = store_->TransactFor<int64_t>(TxnMode::kWrite, [&](StoreTxn& tx) {
    return tx.primitives().DeleteEventRows(shop_, rita, {(*rows)[0], (*olga)[0], (*rows)[1]});
  });
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 2);
  auto left = [&] {
    auto ids = MessageIds("shop");
    return std::set<std::string>(ids.begin(), ids.end());
  };
  EXPECT_EQ(left(), (std::set<std::string>{"o1", "o2", "r3", "r4"}));
  // Rows already gone count nothing; the rest of the list goes.
  auto rest = store_->TransactFor<int64_t>(
      TxnMode::kWrite, [&](StoreTxn& tx) { return tx.primitives().DeleteEventRows(shop_, rita, *rows); });
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, 2);
  EXPECT_EQ(left(), (std::set<std::string>{"o1", "o2"}));
  // All of a subject's events in one go (an erasure where writers run side by side).
  auto all = store_->TransactFor<int64_t>(TxnMode::kWrite, [&](StoreTxn& tx) {
    return tx.primitives().DeleteEventsOf(shop_, {"olga", "nobody"});
  });
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, 1);
  EXPECT_EQ(left(), (std::set<std::string>{"o1"}));
}

// Both ingest gates' reads for a batch come together (issue 16): ReadIngestGate gives what ConsentPolicyOf,
// ActiveMinorMarks, PeopleConsent, ActiveRestrictions and RestrictionModeOf give one by one, with nothing set and
// with a policy, marks (one lifted), restrictions (one lifted) and a mode set; another project's settings stay out.
TEST_P(StoreConformance, ReadIngestGateGivesWhatTheGatesReadOneByOne) {
  const int64_t t = base::NowMs() - 50000;
  auto blog_key = store_->CreateWriteKey("blog");
  ASSERT_TRUE(blog_key.ok());
  const int64_t blog = (*store_->LookupWriteKey(*blog_key))->project_id;
  Put(shop_, {Consent("c-a", "", "dev-a", "analytics", "granted", t), Ev("i-dave", "identify", "dave", "dev-c", t),
              Consent("c-dave", "dave", "dev-d", "analytics", "denied", t + 1),
              Consent("c-both", "gina", "dev-g", "analytics", "granted", t + 2)});
  const std::vector<std::pair<std::string, std::string>> people = {{"", "dev-a"},     {"", "dev-b"}, {"", "dev-c"},
                                                                   {"gina", "dev-g"}, {"", "dev-g"}, {"", ""}};
  auto ids = [](const std::vector<ConsentRecord>& records) {
    std::vector<std::string> out;
    for (const ConsentRecord& r : records) out.push_back(r.message_id);
    return out;
  };
  auto subjects = [](const auto& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.subject_id);
    return out;
  };
  auto same_as_one_by_one = [&](int64_t project) {
    auto in = store_->ReadIngestGate(project, people);
    ASSERT_TRUE(in.ok()) << in.status().ToString();
    auto policy = store_->ConsentPolicyOf(project);
    ASSERT_TRUE(policy.ok());
    ASSERT_EQ(in->consent_policy.has_value(), policy->has_value());
    if (policy->has_value()) {
      EXPECT_EQ(in->consent_policy->mode, (*policy)->mode);
      EXPECT_EQ(in->consent_policy->necessary, (*policy)->necessary);
    }
    EXPECT_EQ(subjects(in->minor_marks), subjects(*store_->ActiveMinorMarks(project)));
    EXPECT_EQ(subjects(in->restrictions), subjects(*store_->ActiveRestrictions(project)));
    EXPECT_EQ(in->restriction_mode, *store_->RestrictionModeOf(project));
    auto together = store_->PeopleConsent(project, people);
    ASSERT_TRUE(together.ok());
    ASSERT_EQ(in->people.size(), people.size());
    for (size_t i = 0; i < people.size(); ++i) EXPECT_EQ(ids(in->people[i]), ids((*together)[i])) << i;
  };
  same_as_one_by_one(shop_);
  {
    auto in = store_->ReadIngestGate(shop_, people);
    ASSERT_TRUE(in.ok());
    EXPECT_FALSE(in->consent_policy.has_value());
    EXPECT_TRUE(in->minor_marks.empty());
    EXPECT_TRUE(in->restrictions.empty());
    EXPECT_EQ(in->restriction_mode, kRestrictQuarantine);
    using V = std::vector<std::string>;
    EXPECT_EQ(ids(in->people[0]), (V{"c-a"}));
    EXPECT_TRUE(in->people[1].empty());
    EXPECT_EQ(ids(in->people[2]), (V{"c-dave"}));  // dev-c is dave's
    EXPECT_EQ(ids(in->people[3]), (V{"c-both"}));
    EXPECT_EQ(ids(in->people[4]), (V{"c-both"}));
    EXPECT_TRUE(in->people[5].empty());
  }

  ConsentPolicy policy;
  policy.mode = kConsentEnforce;
  policy.necessary = {"App Opened", "Crash"};
  ASSERT_TRUE(*store_->SetConsentPolicy("shop", policy));
  ASSERT_TRUE(*store_->SetRestrictionMode("shop", kRestrictRefuse));
  ASSERT_TRUE(store_
                  ->Transact(TxnMode::kWrite,
                             [&](StoreTxn& tx) -> base::Status {
                               for (const char* id : {"dev-a", "kid", "dev-b"}) {
                                 MinorMark m;
                                 m.project_id = shop_;
                                 m.subject_id = id;
                                 m.marked_by = "officer";
                                 m.since_ms = t;
                                 FERRY_RETURN_IF_ERROR(tx.primitives().InsertMinorMark(m));
                               }
                               auto lifted = tx.primitives().LiftMinorMarks(shop_, {"dev-b"}, t + 1, "officer");
                               if (!lifted.ok()) return lifted.status();
                               for (const char* id : {"dev-c", "dev-g"}) {
                                 RestrictionRecord r;
                                 r.project_id = shop_;
                                 r.subject_id = id;
                                 r.kind = "restriction";
                                 r.purposes = {"marketing"};
                                 r.request_id = std::string("req-") + id;
                                 r.since_ms = t;
                                 FERRY_RETURN_IF_ERROR(tx.primitives().InsertRestriction(r));
                               }
                               auto lift = tx.primitives().LiftRestrictions("req-dev-g", t + 1);
                               return lift.ok() ? base::Status::Ok() : lift.status();
                             })
                  .ok());
  same_as_one_by_one(shop_);
  same_as_one_by_one(blog);
  auto in = store_->ReadIngestGate(shop_, people);
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(in->consent_policy.has_value());
  EXPECT_EQ(in->consent_policy->mode, kConsentEnforce);
  EXPECT_EQ(in->consent_policy->necessary, (std::set<std::string>{"App Opened", "Crash"}));
  EXPECT_EQ(subjects(in->minor_marks), (std::vector<std::string>{"dev-a", "kid"}));
  EXPECT_EQ(subjects(in->restrictions), (std::vector<std::string>{"dev-c"}));
  EXPECT_EQ(in->restriction_mode, kRestrictRefuse);
  auto other = store_->ReadIngestGate(blog, people);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->consent_policy.has_value());
  EXPECT_TRUE(other->minor_marks.empty());
  EXPECT_TRUE(other->restrictions.empty());
  EXPECT_EQ(other->restriction_mode, kRestrictQuarantine);
  for (const auto& records : other->people) EXPECT_TRUE(records.empty());
}

// Proof outlives what it covers (issue 12): with a retention of one day, old events go, but a consent record stays
// while a stored event names it (whatever its age), and for the keep period after the newest event it covered.
TEST_P(StoreConformance, RetentionKeepsTheConsentRecordsThatCoverStoredEvents) {
  int64_t now = base::NowMs();
  constexpr int64_t kDay = 86400000;
  auto grant = [&](const std::string& id, const std::string& purpose) {
    StoredEvent c = Consent(id, "", "phone", purpose, "granted", now - 5 * kDay);
    c.receipt_id = "rcpt-" + id;
    c.consent_method = "explicit";
    return c;
  };
  auto covered = [&](const std::string& id, int64_t ts, const std::string& receipt) {
    StoredEvent e = Ev(id, "track", "", "phone", ts);
    e.covered_by = receipt;
    return e;
  };
  // r-old covered an event that expires; r-new covers one that stays; r-idle covered nothing.
  Put(shop_, {grant("r-old", "analytics"), grant("r-new", "marketing"), grant("r-idle", "ads"),
              covered("old", now - 3 * kDay, "rcpt-r-old"), covered("new", now - 3600000, "rcpt-r-new")});
  auto rows = store_->DumpEvents("shop");
  ASSERT_TRUE(rows.ok());
  std::map<std::string, std::string> covered_by;
  for (const EventRow& r : *rows) covered_by[r.message_id] = r.covered_by;
  EXPECT_EQ(covered_by["old"], "rcpt-r-old");
  EXPECT_EQ(covered_by["new"], "rcpt-r-new");
  EXPECT_EQ(covered_by["r-old"], "");
  auto receipts = [&] {
    auto records = store_->PersonConsent(shop_, "", "phone");
    EXPECT_TRUE(records.ok());
    std::set<std::string> out;
    for (const ConsentRecord& r : *records) out.insert(r.receipt_id);
    return out;
  };
  ASSERT_TRUE(*store_->SetRetention("shop", kDay));

  // Kept 3 days beyond the newest event covered: "old" (3 days old) goes, r-old stays until day 4; r-idle (5 days
  // old, covered nothing) goes.
  auto n = store_->PurgeExpired(now, 30 * kDay, 100, 3 * kDay);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(MessageIds("shop"), (std::vector<std::string>{"new"}));
  EXPECT_EQ(receipts(), (std::set<std::string>{"rcpt-r-old", "rcpt-r-new"}));
  // A day and a half later: "new" expired too, so r-new has only its keep period left; r-old's ended (3 days after
  // the event it covered), so it is gone.
  ASSERT_TRUE(store_->PurgeExpired(now + kDay + kDay / 2, 30 * kDay, 100, 3 * kDay).ok());
  EXPECT_TRUE(MessageIds("shop").empty());
  EXPECT_EQ(receipts(), (std::set<std::string>{"rcpt-r-new"}));
  // The project's own keep period wins over the collector's: 0 days, r-new goes at once.
  EXPECT_FALSE(*store_->SetConsentKeep("nope", 0));
  ASSERT_TRUE(*store_->SetConsentKeep("shop", 0));
  ASSERT_TRUE(store_->PurgeExpired(now + kDay + kDay / 2, 30 * kDay, 100, 3 * kDay).ok());
  EXPECT_TRUE(receipts().empty());
}

// With a keep period of 0, a consent record still stays as long as a stored event names it, however old it is.
TEST_P(StoreConformance, RetentionNeverDeletesTheProofOfAStoredEvent) {
  int64_t now = base::NowMs();
  constexpr int64_t kDay = 86400000;
  StoredEvent c = Consent("grant", "", "phone", "analytics", "granted", now - 300 * kDay);
  c.receipt_id = "rcpt-grant";
  StoredEvent e = Ev("recent", "track", "", "phone", now - kDay);
  e.covered_by = "rcpt-grant";
  Put(shop_, {c, e});
  auto n = store_->PurgeExpired(now, 30 * kDay, 100, 0);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);  // the consent event itself (300 days old); its record stays
  EXPECT_EQ(MessageIds("shop"), (std::vector<std::string>{"recent"}));
  auto records = store_->PersonConsent(shop_, "", "phone");
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].receipt_id, "rcpt-grant");
}

// A purpose with a retention of its own (the processing registry, collector/rights/registry.h) loses its events when
// they are older than it, whatever the project keeps; other purposes keep the project's retention.
TEST_P(StoreConformance, RetentionHonoursAPurposesShorterRetention) {
  int64_t now = base::NowMs();
  constexpr int64_t kDay = 86400000;
  auto with_purpose = [&](const std::string& id, const std::string& purpose, int64_t age_days) {
    StoredEvent e = Ev(id, "track", "", "a", now - age_days * kDay);
    e.purpose = purpose;
    return e;
  };
  Put(shop_, {with_purpose("ads-old", "ads", 10), with_purpose("ads-new", "ads", 1),
              with_purpose("analytics-old", "analytics", 10), with_purpose("none-old", "", 10)});
  auto put_registry = [&](const std::string& doc, const std::map<std::string, int64_t>& ages) {
    return store_->Transact(TxnMode::kWrite,
                            [&](StoreTxn& tx) { return tx.primitives().PutRegistry(shop_, doc, ages, now); });
  };
  // No registry: the project's retention (395 days) keeps everything.
  auto none = store_->TransactFor<std::optional<std::pair<std::string, int64_t>>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().GetRegistry(shop_); });
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(*store_->PurgeExpired(now, 395 * kDay, 100), 0);

  ASSERT_TRUE(put_registry(R"({"purposes":["ads","analytics"]})", {{"ads", 7 * kDay}, {"analytics", 30 * kDay}}).ok());
  auto got = store_->TransactFor<std::optional<std::pair<std::string, int64_t>>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().GetRegistry(shop_); });
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->first, R"({"purposes":["ads","analytics"]})");
  EXPECT_EQ((*got)->second, now);

  auto purged = store_->PurgeExpired(now, 395 * kDay, 100);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(MessageIds("shop"), (std::vector<std::string>{"ads-new", "analytics-old", "none-old"}));

  // Replaced without the purposes' retention: nothing more goes. A project retention shorter than a purpose's wins.
  ASSERT_TRUE(put_registry(R"({"purposes":[]})", {}).ok());
  EXPECT_EQ(*store_->PurgeExpired(now, 395 * kDay, 100), 0);
  ASSERT_TRUE(put_registry(R"({"purposes":["analytics"]})", {{"analytics", 30 * kDay}}).ok());
  ASSERT_TRUE(*store_->SetRetention("shop", 5 * kDay));
  EXPECT_EQ(*store_->PurgeExpired(now, 395 * kDay, 100), 2);
  EXPECT_EQ(MessageIds("shop"), (std::vector<std::string>{"ads-new"}));
}

// The downstream outbox's primitives (collector/rights/outbox.h builds on them): entries in seq order with a pending
// delivery per destination, due deliveries, their updates, a request's deliveries, consumers' acknowledgements that
// never move back, and named secrets made once.
TEST_P(StoreConformance, OutboxEntriesDeliveriesAcksAndSecrets) {
  auto in_txn = [&](const std::function<base::Status(EngineTxn&)>& fn) {
    return store_->Transact(TxnMode::kWrite, [&](StoreTxn& tx) { return fn(tx.primitives()); });
  };
  std::vector<int64_t> seqs;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        in_txn([&](EngineTxn& t) -> base::Status {
          OutboxEntry e{0, "shop", "erasure", "req_" + std::to_string(i), "sealed:00", 1000 + i};
          auto seq = t.InsertOutbox(e, i == 2 ? std::vector<std::string>{} : std::vector<std::string>{"a", "b"});
          if (!seq.ok()) return seq.status();
          seqs.push_back(*seq);
          return base::Status::Ok();
        }).ok());
  }
  ASSERT_EQ(seqs.size(), 3u);
  EXPECT_LT(seqs[0], seqs[1]);
  EXPECT_LT(seqs[1], seqs[2]);
  auto page = store_->TransactFor<std::vector<OutboxEntry>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().ListOutbox(seqs[0], 10); });
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].request_id, "req_1");
  EXPECT_EQ((*page)[0].body, "sealed:00");
  EXPECT_EQ((*page)[1].created_ms, 1002);

  using Due = std::vector<std::pair<OutboxEntry, OutboxDelivery>>;
  auto due =
      store_->TransactFor<Due>(TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().DueDeliveries(1000, 10); });
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  ASSERT_EQ(due->size(), 2u);  // entry 0's two destinations; entry 1 falls due at 1001
  OutboxDelivery d = (*due)[0].second;
  EXPECT_EQ(d.state, "pending");
  d.state = "delivered";
  d.attempts = 2;
  d.last_status = 200;
  d.delivered_ms = 1500;
  ASSERT_TRUE(in_txn([&](EngineTxn& t) { return t.UpdateDelivery(d); }).ok());
  due = store_->TransactFor<Due>(TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().DueDeliveries(5000, 10); });
  ASSERT_TRUE(due.ok());
  EXPECT_EQ(due->size(), 3u);
  auto of = store_->TransactFor<std::vector<OutboxDelivery>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().DeliveriesOf("req_0"); });
  ASSERT_TRUE(of.ok());
  ASSERT_EQ(of->size(), 2u);
  EXPECT_EQ((*of)[0].destination, d.destination);
  EXPECT_EQ((*of)[0].state, "delivered");
  EXPECT_EQ((*of)[0].attempts, 2);
  EXPECT_EQ((*of)[0].delivered_ms, 1500);

  ASSERT_TRUE(in_txn([&](EngineTxn& t) { return t.AckOutbox("sync", seqs[1], 10); }).ok());
  ASSERT_TRUE(in_txn([&](EngineTxn& t) { return t.AckOutbox("sync", seqs[0], 11); }).ok());
  auto acks = store_->TransactFor<std::map<std::string, int64_t>>(
      TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().OutboxAcks(); });
  ASSERT_TRUE(acks.ok());
  EXPECT_EQ(*acks, (std::map<std::string, int64_t>{{"sync", seqs[1]}}));

  std::string first, again, other;
  ASSERT_TRUE(in_txn([&](EngineTxn& t) -> base::Status {
                auto a = t.Secret("k1");
                auto b = t.Secret("k1");
                auto c = t.Secret("k2");
                if (!a.ok() || !b.ok() || !c.ok()) return base::Status::Internal("secret");
                first = *a;
                again = *b;
                other = *c;
                return base::Status::Ok();
              }).ok());
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other);
}

// ---- Folded in from the embedded store's own tests (tests/unit/collector/store_test.cc): now every backend ----

StoredEvent Plain(const std::string& id, const std::string& type = "track") {
  return MakeEvent(id, type, "", "anon-1", 1000, 2000, json{{"messageId", id}});
}

TEST_P(StoreConformance, WriteKeysAreStoredHashedAndLookedUp) {
  auto k1 = store_->CreateWriteKey("shop");
  auto k2 = store_->CreateWriteKey("blog");
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_EQ(k1->rfind("fw_", 0), 0u);
  EXPECT_EQ(k1->size(), 3u + 64u);
  EXPECT_NE(*k1, *k2);
  auto i1 = store_->LookupWriteKey(*k1);
  ASSERT_TRUE(i1.ok());
  ASSERT_TRUE(i1->has_value());
  EXPECT_EQ((*i1)->project, "shop");
  auto i2 = store_->LookupWriteKey(*k2);
  ASSERT_TRUE(i2.ok() && i2->has_value());
  EXPECT_EQ((*i2)->project, "blog");
  EXPECT_NE((*i1)->project_id, (*i2)->project_id);
  auto none = store_->LookupWriteKey("fw_nope");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_P(StoreConformance, DedupWithinAndAcrossBatches) {
  InsertRequest a;
  a.project_id = shop_;
  a.events = {Plain("m1"), Plain("m2"), Plain("m1")};
  InsertRequest b;
  b.project_id = shop_;
  b.events = {Plain("m2"), Plain("m3")};
  std::vector<InsertRequest*> reqs = {&a, &b};
  ASSERT_TRUE(store_->Insert(reqs).ok());
  EXPECT_EQ(a.outcomes, (std::vector<InsertOutcome>{InsertOutcome::kAccepted, InsertOutcome::kAccepted,
                                                    InsertOutcome::kDuplicate}));
  EXPECT_EQ(b.outcomes, (std::vector<InsertOutcome>{InsertOutcome::kDuplicate, InsertOutcome::kAccepted}));
  auto rows = store_->DumpEvents("shop");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].message_id, "m1");
  EXPECT_EQ((*rows)[2].message_id, "m3");
  EXPECT_EQ((*rows)[0].anonymous_id, "anon-1");
  EXPECT_EQ((*rows)[0].user_id, "");

  // The same messageId in another project is a different event.
  InsertRequest c;
  c.project_id = Project("blog");
  c.events = {Plain("m1")};
  std::vector<InsertRequest*> one = {&c};
  ASSERT_TRUE(store_->Insert(one).ok());
  EXPECT_EQ(c.outcomes[0], InsertOutcome::kAccepted);
  EXPECT_EQ(store_->DumpEvents("")->size(), 4u);
}

// Duplicates at either end of a commit, in runs, and repeated within it (as a retried batch and a client's own
// repeats give them): each is refused once, and the rest are stored in their order with increasing seqs.
TEST_P(StoreConformance, RunsOfDuplicatesAtEitherEndLeaveTheRestInOrder) {
  InsertRequest first;
  first.project_id = shop_;
  first.events = {Plain("d1"), Plain("d2"), Plain("d3")};
  std::vector<InsertRequest*> one = {&first};
  ASSERT_TRUE(store_->Insert(one).ok());
  InsertRequest a, b;
  a.project_id = b.project_id = shop_;
  a.events = {Plain("d1"), Plain("d2"), Plain("n1"), Plain("d3"), Plain("n2"), Plain("n2"), Plain("n3")};
  b.events = {Plain("n3"), Plain("n4"), Plain("n1"), Plain("d3")};
  std::vector<InsertRequest*> two = {&a, &b};
  ASSERT_TRUE(store_->Insert(two).ok());
  using O = InsertOutcome;
  EXPECT_EQ(a.outcomes, (std::vector<O>{O::kDuplicate, O::kDuplicate, O::kAccepted, O::kDuplicate, O::kAccepted,
                                        O::kDuplicate, O::kAccepted}));
  EXPECT_EQ(b.outcomes, (std::vector<O>{O::kDuplicate, O::kAccepted, O::kDuplicate, O::kDuplicate}));
  std::vector<int64_t> seqs;
  for (size_t i = 0; i < a.seqs.size(); ++i) {
    if (a.outcomes[i] == O::kAccepted) seqs.push_back(a.seqs[i]);
    if (a.outcomes[i] == O::kDuplicate) {
      EXPECT_EQ(a.seqs[i], 0) << i;
    }
  }
  seqs.push_back(b.seqs[1]);
  ASSERT_EQ(seqs.size(), 4u);
  EXPECT_GT(seqs[0], first.seqs[2]);
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_GT(seqs[i], seqs[i - 1]) << i;
  EXPECT_EQ(MessageIds("shop"), (std::vector<std::string>{"d1", "d2", "d3", "n1", "n2", "n3", "n4"}));
  // A commit of duplicates only stores nothing and fails nothing.
  InsertRequest again;
  again.project_id = shop_;
  again.events = {Plain("n4"), Plain("d1"), Plain("n1"), Plain("n1")};
  std::vector<InsertRequest*> three = {&again};
  ASSERT_TRUE(store_->Insert(three).ok());
  EXPECT_EQ(again.outcomes, (std::vector<O>(4, O::kDuplicate)));
  EXPECT_EQ(MessageIds("shop").size(), 7u);
}

// The stores claim a group commit's messageIds in key order (so that two writers never wait on each other in a cycle);
// the events themselves keep the order they were sent in, whatever their ids: the sequence is the feed's order.
TEST_P(StoreConformance, AGroupCommitStoresItsEventsInTheOrderSentWhateverTheirIds) {
  InsertRequest earlier;
  earlier.project_id = shop_;
  earlier.events = {Plain("k-0500"), Plain("k-0010")};
  std::vector<InsertRequest*> one = {&earlier};
  ASSERT_TRUE(store_->Insert(one).ok());
  // Two requests of 300 events each, their ids in no key order (a stride through 1,000), two of them sent before.
  InsertRequest a, b;
  a.project_id = b.project_id = shop_;
  std::vector<std::string> sent;
  for (int i = 0; i < 600; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "k-%04d", (i * 337 + 500) % 1000);
    (i < 300 ? a : b).events.push_back(Plain(id));
    if (std::string(id) != "k-0500" && std::string(id) != "k-0010") sent.push_back(id);
  }
  std::vector<InsertRequest*> two = {&a, &b};
  ASSERT_TRUE(store_->Insert(two).ok());
  ASSERT_EQ(a.outcomes[0], InsertOutcome::kDuplicate);  // k-0500
  std::vector<int64_t> seqs;
  for (InsertRequest* req : two) {
    for (size_t i = 0; i < req->events.size(); ++i) {
      if (req->outcomes[i] == InsertOutcome::kAccepted) seqs.push_back(req->seqs[i]);
    }
  }
  ASSERT_EQ(seqs.size(), sent.size());
  for (size_t i = 1; i < seqs.size(); ++i) ASSERT_GT(seqs[i], seqs[i - 1]) << i;
  auto feed = store_->EventsAfter(earlier.seqs[1], 1000);
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  std::vector<std::string> fed;
  for (const EventRow& r : *feed) fed.push_back(r.message_id);
  EXPECT_EQ(fed, sent);
}

TEST_P(StoreConformance, SuppressionConsentIdentityAndDropped) {
  int64_t pid = shop_;
  auto h = store_->IdHash("anon-gone");
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, store_->IdHash("anon-gone"));
  EXPECT_FALSE(*store_->IsSuppressed(pid, h));
  ASSERT_TRUE(store_->Suppress(pid, h).ok());
  EXPECT_TRUE(*store_->IsSuppressed(pid, h));

  InsertRequest r;
  r.project_id = pid;
  StoredEvent gone = Plain("g1");
  gone.anonymous_id = "anon-gone";
  StoredEvent consent = Plain("c1", "consent");
  consent.consent_purpose = "marketing";
  consent.consent_state = "granted";
  consent.consent_previous = "pending";
  StoredEvent ident = Plain("i1", "identify");
  ident.user_id = "user-9";
  StoredEvent alias = Plain("a1", "alias");
  alias.user_id = "user-9";
  alias.anonymous_id = "";
  alias.previous_id = "old-user";
  r.events = {gone, consent, ident, alias};
  r.dropped = {{"evicted", 5}, {"expired", 2}};
  std::vector<InsertRequest*> reqs = {&r};
  ASSERT_TRUE(store_->Insert(reqs).ok());
  EXPECT_EQ(r.outcomes[0], InsertOutcome::kSuppressed);
  EXPECT_EQ(r.outcomes[1], InsertOutcome::kAccepted);
  r.events.clear();
  r.dropped = {{"evicted", 1}};
  ASSERT_TRUE(store_->Insert(reqs).ok());
  auto dropped = store_->DroppedCounters("shop");
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ((*dropped)["evicted"], 6);
  EXPECT_EQ((*dropped)["expired"], 2);

  // The rows as the database holds them (read behind the store's back; string aggregation is dialect).
  bool sqlite = GetParam() == "sqlite";
  EXPECT_EQ(backend_->QueryText("SELECT purpose || '/' || state || '/' || previous FROM consent_ledger;"),
            "marketing/granted/pending");
  EXPECT_EQ(backend_->QueryText(
                sqlite ? "SELECT group_concat(from_kind || ':' || from_id || '>' || user_id, ',') FROM "
                         "(SELECT * FROM identity_links ORDER BY id);"
                       : "SELECT string_agg(from_kind || ':' || from_id || '>' || user_id, ',' ORDER BY id) FROM "
                         "identity_links;"),
            "anonymousId:anon-1>user-9,previousId:old-user>user-9");
  EXPECT_EQ(backend_->QueryText("SELECT count(*) FROM events WHERE message_id = 'g1';"), "0");
}

// ---- Folded in from the data-subject rights tests of the embedded store (tests/unit/collector/
// rights_store_test.cc): now every backend ----

class RightsConformance : public StoreConformance {
 protected:
  void SetUp() override {
    StoreConformance::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    blog_ = Project("blog");
  }
  void Populate() { PopulateZebra(*store_, shop_, blog_); }
  int64_t blog_ = 0;
};

TEST_P(RightsConformance, IdentityGraphResolvesAnyIdToTheSameSubject) {
  Populate();
  for (const char* id : {"zebra-user-7781", "anon-quokka-1", "anon-quokka-2"}) {
    auto found = store_->FindSubject({"shop", id});
    ASSERT_TRUE(found.ok());
    ASSERT_EQ(found->size(), 1u) << id;
    const SubjectSummary& s = found->front();
    EXPECT_EQ(s.user_id, "zebra-user-7781") << id;
    std::set<std::string> ids;
    for (const auto& i : s.identities) ids.insert(i.id);
    EXPECT_EQ(ids, (std::set<std::string>{"zebra-user-7781", "anon-quokka-1", "anon-quokka-2"})) << id;
    EXPECT_EQ(s.event_count, 6) << id;
    EXPECT_EQ(s.events_by_type.at("identify"), 2);
    ASSERT_EQ(s.consent.size(), 1u);
    EXPECT_EQ(s.consent[0].state, "granted");
    auto traits = json::parse(s.traits);
    EXPECT_EQ(traits["email"], "zebra7781@example.org");
  }
  auto all = store_->FindSubject({"", "zebra-user-7781"});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);  // shop and blog
  auto visitor = store_->FindSubject({"shop", "anon-visitor"});
  ASSERT_EQ(visitor->size(), 1u);
  EXPECT_EQ(visitor->front().user_id, "");
  EXPECT_EQ(visitor->front().event_count, 1);
  EXPECT_TRUE(store_->FindSubject({"", "nobody"})->empty());
}

TEST_P(RightsConformance, AliasChainsJoinOldAndNewUserIds) {
  auto alias = RightsEvent("al-1", "alias", "new-user", "");
  alias.previous_id = "old-user";
  Put(shop_,
      {RightsEvent("x-1", "identify", "old-user", "anon-old"), RightsEvent("x-2", "track", "old-user", "anon-old"),
       alias, RightsEvent("x-3", "track", "new-user", "anon-new")});
  for (const char* id : {"old-user", "new-user", "anon-old"}) {
    auto found = store_->FindSubject({"shop", id});
    ASSERT_EQ(found->size(), 1u);
    EXPECT_EQ(found->front().user_id, "new-user") << id;
    EXPECT_EQ(found->front().event_count, 4) << id;
  }
}

class CollectingVisitor : public ExportVisitor {
 public:
  bool BeginProject(const SubjectSummary& s) override {
    projects.push_back(s.project);
    return true;
  }
  bool Consent(const ConsentRecord& c) override {
    consent.push_back(c);
    return true;
  }
  bool Event(const EventRow& e) override {
    events.push_back(e.message_id);
    return stop_after < 0 || static_cast<int>(events.size()) < stop_after;
  }
  bool EndProject() override { return true; }
  std::vector<std::string> projects, events;
  std::vector<ConsentRecord> consent;
  int stop_after = -1;
};

TEST_P(RightsConformance, ExportStreamsEveryEventOfEveryLinkedIdOnceAndNothingElse) {
  Populate();
  // Enough events to span several pages (512 a page), interleaved with another user's.
  std::vector<StoredEvent> more;
  for (int i = 0; i < 1500; ++i) {
    more.push_back(RightsEvent("p-" + std::to_string(i), "track", i % 3 ? "" : "zebra-user-7781",
                               i % 2 ? "anon-quokka-1" : "anon-quokka-2"));
    more.push_back(RightsEvent("q-" + std::to_string(i), "track", "other-user", "anon-other"));
  }
  Put(shop_, std::move(more));
  CollectingVisitor v;
  auto r = store_->ExportSubject({"shop", "anon-quokka-2"}, v);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(*r);
  EXPECT_EQ(v.projects, std::vector<std::string>{"shop"});
  EXPECT_EQ(v.events.size(), 1506u);
  std::set<std::string> uniq(v.events.begin(), v.events.end());
  EXPECT_EQ(uniq.size(), v.events.size());
  for (const auto& id : v.events) EXPECT_TRUE(id[0] == 'm' || id[0] == 'p') << id;
  ASSERT_EQ(v.consent.size(), 1u);
  EXPECT_EQ(v.consent[0].purpose, "marketing");
  EXPECT_EQ(v.consent[0].device, R"({"id":"device-zebra-B","model":"Pixel"})");

  CollectingVisitor stopper;
  stopper.stop_after = 10;
  auto stopped = store_->ExportSubject({"shop", "zebra-user-7781"}, stopper);
  EXPECT_FALSE(stopped.ok());
  EXPECT_EQ(stopper.events.size(), 10u);
  // An unknown subject ({"", "nobody"}: ok, false, nothing visited) is asserted by
  // ExportStreamsConsentThenEventsInInsertionOrderAcrossManyPages above, for every backend.
}

// The decrypted pages and the write-ahead log of the embedded engine are checked after the same erasure in
// sqlite_store_test.cc (EraseLeavesNothingInTheDecryptedPagesNorTheWal).
TEST_P(RightsConformance, EraseLeavesNoIdOrValueInAnyColumn) {
  Populate();
  auto req = store_->CreateRequest({"", "access", "", "zebra-user-7781", "", "completed", "admin", 1, 2, "x", 1, ""});
  ASSERT_TRUE(req.ok());
  const std::vector<std::string> secrets = {"zebra-user-7781",       "anon-quokka-1",  "anon-quokka-2",
                                            "zebra7781@example.org", "device-zebra-B", "anon-blog-9"};
  auto receipt = store_->EraseSubject({"", "anon-quokka-1"}, "req_test");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  EXPECT_EQ(receipt->request_id, "req_test");
  EXPECT_EQ(receipt->erased.at("events"), 7);  // 6 in shop + 1 in blog
  EXPECT_EQ(receipt->erased.at("consent_ledger"), 1);
  EXPECT_EQ(receipt->erased.at("identity_links"), 3);
  EXPECT_EQ(receipt->erased.at("traits"), 2);
  EXPECT_EQ(receipt->erased.at("requests_redacted"), 1);
  EXPECT_EQ(receipt->ids_suppressed, 5);  // 3 ids in shop, 2 in blog

  // Every text value of every column of every table.
  std::vector<std::string> hits;
  int64_t values = 0;
  ASSERT_TRUE(store_
                  ->ScanAllText([&](std::string_view t, std::string_view c, std::string_view text) {
                    ++values;
                    for (const auto& s : secrets) {
                      if (text.find(s) != std::string_view::npos) hits.push_back(std::string(t) + "." + std::string(c));
                    }
                    return true;
                  })
                  .ok());
  EXPECT_TRUE(hits.empty()) << hits.front();
  EXPECT_GT(values, 10);
  // Others are untouched.
  EXPECT_EQ(store_->FindSubject({"shop", "other-user"})->front().event_count, 2);
  EXPECT_EQ(store_->FindSubject({"shop", "anon-visitor"})->front().event_count, 1);
  EXPECT_TRUE(store_->FindSubject({"", "zebra-user-7781"})->empty());

  // Later arrivals of any linked id are suppressed.
  auto out = Put(shop_, {RightsEvent("late-1", "track", "", "anon-quokka-2"),
                         RightsEvent("late-2", "track", "zebra-user-7781", "anon-fresh"),
                         RightsEvent("late-3", "track", "", "anon-visitor")});
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kSuppressed, InsertOutcome::kSuppressed,
                                             InsertOutcome::kAccepted}));
}

TEST_P(RightsConformance, DeviceForgetErasesOnlyItsAnonymousIdsAndNeverAUserId) {
  Populate();
  auto r = store_->EraseAnonymousIds(shop_, {"anon-quokka-2", "zebra-user-7781"}, "req_dev");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->erased.at("events"), 3);  // m-c-1, m-id-2, m-3 carry anon-quokka-2
  EXPECT_EQ(r->ids_suppressed, 1);       // the userId named as an anonymousId is refused
  auto s = store_->FindSubject({"shop", "zebra-user-7781"});
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ(s->front().event_count, 3);
  auto out = Put(shop_, {RightsEvent("n-1", "track", "zebra-user-7781", "anon-quokka-1")});
  EXPECT_EQ(out[0], InsertOutcome::kAccepted);
}

TEST_P(RightsConformance, PatchTraitsCorrectsAndRemoves) {
  Populate();
  auto r = store_->PatchTraits({"shop", "anon-quokka-1"}, R"({"email":"fixed@example.org","plan":null,"n":3})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(json::parse(r->front().traits), (json{{"email", "fixed@example.org"}, {"n", 3}}));
  EXPECT_FALSE(store_->PatchTraits({"shop", "x"}, "[1]").ok());
  EXPECT_TRUE(store_->PatchTraits({"shop", "nobody"}, "{}")->empty());
}

TEST_P(RightsConformance, RequestRegisterStatesAndOverdue) {
  RightsRequest late{"", "erasure", "shop", "u-1", "", "awaiting_verification", "device", 1000, 2000, "", 0, ""};
  RightsRequest fine{"", "access", "shop", "u-2", "", "awaiting_verification", "admin", 1000, 1LL << 50, "", 0, ""};
  RightsRequest done{"", "erasure", "shop", "u-3", "", "completed", "admin", 1000, 2000, "ann", 1500, "{}"};
  auto a = store_->CreateRequest(late);
  auto b = store_->CreateRequest(fine);
  ASSERT_TRUE(store_->CreateRequest(done).ok());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->subject_hash, store_->IdHash("u-1"));
  RequestFilter overdue;
  overdue.overdue_at_ms = 5000;
  auto list = store_->ListRequests(overdue);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().id, a->id);
  EXPECT_EQ(*store_->UpdateRequest(a->id, "awaiting_verification", "rejected", "ann", 3000, "{}"),
            RequestUpdate::kUpdated);
  EXPECT_EQ(*store_->UpdateRequest(a->id, "awaiting_verification", "completed", "bob", 3001, "{}"),
            RequestUpdate::kWrongState);
  EXPECT_EQ(*store_->UpdateRequest("req_nope", "awaiting_verification", "completed", "bob", 1, ""),
            RequestUpdate::kNotFound);
  EXPECT_TRUE(store_->ListRequests(overdue)->empty());
  EXPECT_EQ((*store_->GetRequest(a->id))->acted_by, "ann");
}

TEST_P(RightsConformance, AuditChainVerifiesAndNamesTheFirstEditedOrMissingEntry) {
  for (int i = 0; i < 6; ++i) {
    AuditEntry e;
    e.actor = "ann (fa_1234)";
    e.role = "compliance";
    e.action = "subject.show";
    e.subject_hash = store_->IdHash("u-" + std::to_string(i));
    e.result = "ok";
    auto r = store_->AppendAudit(e);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->seq, i + 1);
  }
  auto v = store_->VerifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok);
  EXPECT_EQ(v->entries, 6);
  EXPECT_EQ(store_->ListAudit(0, 100, store_->IdHash("u-2"))->size(), 1u);

  // An edit made directly in the database, behind the store's back.
  ASSERT_EQ(backend_->Exec("UPDATE audit_log SET result = 'denied' WHERE seq = 4;"), "");
  v = store_->VerifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_broken_seq, 4);
  ASSERT_EQ(backend_->Exec("UPDATE audit_log SET result = 'ok' WHERE seq = 4; DELETE FROM audit_log WHERE seq = 3;"),
            "");
  v = store_->VerifyAudit();
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_broken_seq, 4);  // the entry after the gap
  // The canonical form separates fields unambiguously.
  AuditEntry x, y;
  x.actor = "a\n1:b";
  y.actor = "a";
  y.role = "b";
  EXPECT_NE(AuditCanonical(x), AuditCanonical(y));
}

TEST_P(RightsConformance, AdminTokensAreHashedWithRolesAndRevocable) {
  EXPECT_FALSE(store_->CreateAdminToken("x", {}).ok());
  EXPECT_FALSE(store_->CreateAdminToken("x", {"root"}).ok());
  auto t = store_->CreateAdminToken("ann", {"compliance", "analyst"});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->rfind("fa_", 0), 0u);
  auto info = store_->LookupAdminToken(*t);
  ASSERT_TRUE(info.ok() && info->has_value());
  EXPECT_EQ((**info).roles, (std::vector<std::string>{"compliance", "analyst"}));
  EXPECT_FALSE(store_->LookupAdminToken(*t + "0")->has_value());
  auto wk = store_->CreateWriteKey("shop");
  EXPECT_FALSE(store_->LookupAdminToken(*wk)->has_value());
  bool plain = false;
  ASSERT_TRUE(store_
                  ->ScanAllText([&](std::string_view, std::string_view, std::string_view text) {
                    plain = plain || text.find(t->substr(3)) != std::string_view::npos;
                    return true;
                  })
                  .ok());
  EXPECT_FALSE(plain);
  EXPECT_TRUE(*store_->RevokeAdminToken((**info).id));
  EXPECT_FALSE(store_->LookupAdminToken(*t)->has_value());
}

// Issue 11, item 12: write keys and admin tokens can be listed, revoked and given an expiry. A revocation holds at
// once in the store that made it, and in another store on the same data (another collector) once its short cache
// of write keys has aged (kWriteKeyCacheMs); admin tokens are never cached.
TEST_P(RightsConformance, CredentialsAreListedRevokedAndExpireInEveryStoreOnTheData) {
  base::ManualClock clock(1767225600000);
  auto a = backend_->Open(4, 2000, &clock);
  auto b = backend_->Open(4, 2000, &clock);
  ASSERT_TRUE(a.ok() && b.ok());
  Store& sa = **a;
  Store& sb = **b;
  auto key = sa.CreateWriteKey("app");
  auto key2 = sa.CreateWriteKey("app");
  auto token = sa.CreateAdminToken("ops", {"operator"});
  ASSERT_TRUE(key.ok() && key2.ok() && token.ok());
  ASSERT_TRUE(sa.LookupWriteKey(*key)->has_value());
  ASSERT_TRUE(sb.LookupWriteKey(*key)->has_value());  // b now holds it in its cache
  auto keys = sa.ListWriteKeys();
  ASSERT_TRUE(keys.ok());
  const WriteKeyRecord* rec = nullptr;
  for (const WriteKeyRecord& k : *keys) {
    if (k.prefix == key->substr(0, 7) && k.project == "app") rec = &k;
    EXPECT_EQ(k.prefix.size(), 7u);  // never the key
  }
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->revoked_ms, 0);
  EXPECT_EQ(rec->expires_ms, 0);
  const int64_t key_id = rec->id;

  // Revoked through a: refused by a at once, by b once its cache entry aged.
  EXPECT_TRUE(*sa.RevokeWriteKey(key_id));
  EXPECT_FALSE(*sa.RevokeWriteKey(key_id));  // already revoked
  EXPECT_FALSE(sa.LookupWriteKey(*key)->has_value());
  clock.Advance(kWriteKeyCacheMs);
  EXPECT_FALSE(sb.LookupWriteKey(*key)->has_value());
  EXPECT_TRUE(sb.LookupWriteKey(*key2)->has_value());  // the other key of the project stays valid
  auto after_revoke = sa.ListWriteKeys();
  ASSERT_TRUE(after_revoke.ok());
  for (const WriteKeyRecord& k : *after_revoke) {
    if (k.id == key_id) {
      EXPECT_EQ(k.revoked_ms, clock.NowMs() - kWriteKeyCacheMs);
    }
  }

  // An expiry: valid until then, refused from then on, in both stores; clearing it makes the key valid again.
  int64_t key2_id = 0;
  auto all_keys = sa.ListWriteKeys();
  ASSERT_TRUE(all_keys.ok());
  for (const WriteKeyRecord& k : *all_keys) {
    if (k.prefix == key2->substr(0, 7)) key2_id = k.id;
  }
  ASSERT_TRUE(*sb.SetWriteKeyExpiry(key2_id, clock.NowMs() + 60000));
  EXPECT_TRUE(sb.LookupWriteKey(*key2)->has_value());
  clock.Advance(60000);
  EXPECT_FALSE(sb.LookupWriteKey(*key2)->has_value());
  EXPECT_FALSE(sa.LookupWriteKey(*key2)->has_value());
  ASSERT_TRUE(*sa.SetWriteKeyExpiry(key2_id, 0));
  EXPECT_TRUE(sa.LookupWriteKey(*key2)->has_value());
  EXPECT_FALSE(*sa.SetWriteKeyExpiry(key_id, clock.NowMs() + 1000));  // a revoked key gets no expiry

  // Admin tokens: an expiry, then a revocation, each seen at once by the other store.
  auto info = sb.LookupAdminToken(*token);
  ASSERT_TRUE(info.ok() && info->has_value());
  const int64_t token_id = (**info).id;
  ASSERT_TRUE(*sa.SetAdminTokenExpiry(token_id, clock.NowMs() + 1000));
  EXPECT_EQ((**sb.LookupAdminToken(*token)).expires_ms, clock.NowMs() + 1000);
  clock.Advance(1000);
  EXPECT_FALSE(sb.LookupAdminToken(*token)->has_value());
  ASSERT_TRUE(*sa.SetAdminTokenExpiry(token_id, 0));
  EXPECT_TRUE(sb.LookupAdminToken(*token)->has_value());
  EXPECT_TRUE(*sb.RevokeAdminToken(token_id));
  EXPECT_FALSE(sa.LookupAdminToken(*token)->has_value());
  EXPECT_FALSE(*sa.SetAdminTokenExpiry(token_id, clock.NowMs() + 1000));
  bool listed = false;
  auto tokens = sa.ListAdminTokens();
  ASSERT_TRUE(tokens.ok());
  for (const AdminTokenInfo& t : *tokens) {
    if (t.id == token_id) listed = t.revoked_ms > 0;
  }
  EXPECT_TRUE(listed);
}

TEST_P(RightsConformance, RetentionPurgesOldEventsPerProject) {
  Put(shop_, {RightsEvent("old-1", "track", "", "a", 1000), RightsEvent("new-1", "track", "", "a", 900000)});
  Put(blog_, {RightsEvent("old-2", "track", "", "b", 1000), RightsEvent("new-2", "track", "", "b", 900000)});
  ASSERT_TRUE(*store_->SetRetention("blog", 10));
  EXPECT_FALSE(*store_->SetRetention("nope", 10));
  // Default 500,000 ms at now = 1,000,000: shop keeps new-1; blog's own 10 ms removes both.
  auto n = store_->PurgeExpired(1000000, 500000, 1000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3);
  auto rows = store_->DumpEvents("");
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().message_id, "new-1");
  EXPECT_EQ(store_->Retention()->at("blog"), 10);
}

INSTANTIATE_TEST_SUITE_P(Backends, RightsConformance, ::testing::ValuesIn(Backends()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// ---- Identity links under a public write key (issue 11): provenance, pending links, server keys, an officer's
// confirmation, and a device's forget ----

class IdentityTrustConformance : public StoreConformance {
 protected:
  // Inserts events as a batch sent with `credential` (and key id).
  std::vector<InsertOutcome> Send(const std::string& credential, std::vector<StoredEvent> events) {
    InsertRequest r;
    r.project_id = shop_;
    r.credential = credential;
    r.key_id = credential == kCredentialServerKey ? "fs_test" : "fw_test";
    r.events = std::move(events);
    std::vector<InsertRequest*> reqs = {&r};
    base::Status s = store_->Insert(reqs);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r.outcomes;
  }
  static StoredEvent Alias(const std::string& id, const std::string& user, const std::string& anon,
                           const std::string& previous) {
    StoredEvent e = RightsEvent(id, "alias", user, anon);
    e.previous_id = previous;
    return e;
  }
  SubjectSummary One(const std::string& id) {
    auto f = store_->FindSubject({"shop", id});
    EXPECT_TRUE(f.ok() && f->size() == 1u) << id;
    return f.ok() && !f->empty() ? f->front() : SubjectSummary();
  }
  static std::set<std::string> Ids(const SubjectSummary& s) {
    std::set<std::string> ids;
    for (const auto& i : s.identities) ids.insert(i.id);
    return ids;
  }
  // A copy of the link (the summary is often a temporary).
  static std::optional<IdentityLink> Link(const SubjectSummary& s, const std::string& from, const std::string& to) {
    for (const auto& l : s.links) {
      if (l.from_id == from && l.user_id == to) return l;
    }
    return std::nullopt;
  }
  std::set<std::string> Exported(const std::string& id) {
    CollectingVisitor v;
    auto r = store_->ExportSubject({"shop", id}, v);
    EXPECT_TRUE(r.ok());
    return std::set<std::string>(v.events.begin(), v.events.end());
  }
};

TEST_P(IdentityTrustConformance, AWriteKeysAliasIsPendingAndNeverPullsAUserIdIntoAnotherSubject) {
  Send(kCredentialWriteKey,
       {RightsEvent("v-1", "identify", "victim", "anon-v"), RightsEvent("v-2", "track", "victim", "anon-v")});
  Send(kCredentialWriteKey,
       {RightsEvent("m-1", "identify", "mallory", "anon-m"), Alias("m-2", "mallory", "anon-m", "victim"),
        RightsEvent("m-3", "track", "mallory", "victim"),
        // An id claimed before its owner's first event: linked as the sender's own anonymousId...
        Alias("m-4", "mallory", "future", "future")});
  // ... until it turns out to be someone's userId.
  Send(kCredentialWriteKey, {RightsEvent("f-1", "identify", "future", "anon-f")});

  SubjectSummary m = One("mallory");
  EXPECT_EQ(m.user_id, "mallory");
  EXPECT_EQ(Ids(m), (std::set<std::string>{"mallory", "anon-m"}));
  std::optional<IdentityLink> forged = Link(m, "victim", "mallory");
  ASSERT_TRUE(forged.has_value());
  EXPECT_EQ(forged->kind, "previousId");
  EXPECT_EQ(forged->state, "pending");
  EXPECT_FALSE(forged->followed);
  EXPECT_EQ(forged->credential, "write_key");
  EXPECT_EQ(forged->key_id, "fw_test");
  EXPECT_EQ(forged->via_message_id, "m-2");
  EXPECT_EQ(forged->via_anonymous_id, "anon-m");
  EXPECT_EQ(forged->asserted_ms, 1001);  // received time (RightsEvent: a millisecond after its timestamp)
  EXPECT_EQ(forged->project_id, shop_);
  EXPECT_GT(forged->id, 0);
  std::optional<IdentityLink> claimed = Link(m, "future", "mallory");
  ASSERT_TRUE(claimed.has_value());
  EXPECT_EQ(claimed->state, "active");
  EXPECT_FALSE(claimed->followed);  // "future" is a userId now
  std::optional<IdentityLink> own = Link(m, "anon-m", "mallory");
  ASSERT_TRUE(own.has_value());
  EXPECT_TRUE(own->followed);

  EXPECT_EQ(One("victim").user_id, "victim");
  EXPECT_EQ(One("future").user_id, "future");
  EXPECT_EQ(Ids(One("victim")), (std::set<std::string>{"victim", "anon-v"}));
  std::set<std::string> exported = Exported("mallory");
  for (const char* id : {"v-1", "v-2", "f-1"}) EXPECT_EQ(exported.count(id), 0u) << id;
  EXPECT_EQ(exported.count("m-1"), 1u);

  auto receipt = store_->EraseSubject({"shop", "mallory"}, "req_m");
  ASSERT_TRUE(receipt.ok()) << receipt.status().ToString();
  for (const char* id : {"victim", "anon-v", "future", "anon-f"}) {
    EXPECT_FALSE(*store_->IsSuppressed(shop_, store_->IdHash(id))) << id;
  }
  EXPECT_EQ(Exported("victim"), (std::set<std::string>{"v-1", "v-2"}));
  EXPECT_EQ(Exported("future"), (std::set<std::string>{"f-1"}));
  EXPECT_EQ(Send(kCredentialWriteKey, {RightsEvent("v-3", "track", "victim", "anon-v")})[0], InsertOutcome::kAccepted);
}

TEST_P(IdentityTrustConformance, AServerKeyOrAnOfficerMakesAUserIdLinkFollowed) {
  Send(kCredentialWriteKey,
       {RightsEvent("a-1", "identify", "u1", "anon-1"), RightsEvent("a-2", "identify", "u2", "anon-2"),
        RightsEvent("a-3", "identify", "u3", "anon-3"), Alias("a-4", "u2", "anon-2", "u1"),
        Alias("a-5", "u3", "anon-3", "u1")});
  EXPECT_EQ(Link(One("u2"), "u1", "u2")->state, "pending");
  EXPECT_EQ(Exported("u2").count("a-1"), 0u);

  // The backend asserts the same merge: the link takes the server key's provenance and is followed.
  Send(kCredentialServerKey, {Alias("s-1", "u2", "", "u1")});
  SubjectSummary u2 = One("u2");
  std::optional<IdentityLink> l = Link(u2, "u1", "u2");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->state, "active");
  EXPECT_EQ(l->credential, "server_key");
  EXPECT_EQ(l->key_id, "fs_test");
  EXPECT_EQ(l->via_message_id, "s-1");
  EXPECT_TRUE(l->followed);
  EXPECT_EQ(Ids(u2).count("u1"), 1u);
  EXPECT_EQ(Exported("u2").count("a-1"), 1u);
  // A write key saying it again takes nothing away.
  Send(kCredentialWriteKey, {Alias("w-1", "u2", "anon-2", "u1")});
  EXPECT_EQ(Link(One("u2"), "u1", "u2")->credential, "server_key");

  // An officer confirms the other pending link.
  std::optional<IdentityLink> pending = Link(One("u3"), "u1", "u3");
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(pending->state, "pending");
  auto confirmed = store_->ConfirmLink(pending->id, "officer-ann");
  ASSERT_TRUE(confirmed.ok()) << confirmed.status().ToString();
  ASSERT_TRUE(confirmed->has_value());
  EXPECT_EQ((*confirmed)->state, "active");
  EXPECT_EQ((*confirmed)->confirmed_by, "officer-ann");
  EXPECT_GT((*confirmed)->confirmed_ms, 0);
  EXPECT_TRUE(Link(One("u3"), "u1", "u3")->followed);
  EXPECT_EQ(Exported("u3").count("a-1"), 1u);
  EXPECT_FALSE(store_->ConfirmLink(pending->id, "officer-ann")->has_value());  // once
  EXPECT_FALSE(store_->ConfirmLink(987654321, "officer-ann")->has_value());
}

TEST_P(IdentityTrustConformance, ADevicesForgetActsOnlyOnIdsSeenAsItsAnonymousIdsAndNeverOnRowsUnderAUserId) {
  StoredEvent anon_consent = RightsEvent("c-1", "consent", "", "anon-bob");
  anon_consent.consent_purpose = "analytics";
  anon_consent.consent_state = "granted";
  StoredEvent user_consent = RightsEvent("c-2", "consent", "bob", "anon-bob");
  user_consent.consent_purpose = "ads";
  user_consent.consent_state = "granted";
  Send(kCredentialWriteKey, {RightsEvent("b-1", "track", "", "anon-bob"),
                             RightsEvent("b-2", "track", "bob", "anon-bob"), anon_consent, user_consent});
  auto r = store_->ForgetDeviceIds(shop_, {"anon-bob", "bob", "never-seen", ""}, "req_dev");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->erased.at("events"), 2);          // b-1 and c-1: no userId on them
  EXPECT_EQ(r->erased.at("consent_ledger"), 1);  // c-1's record
  EXPECT_EQ(r->ids_suppressed, 1);
  EXPECT_TRUE(*store_->IsSuppressed(shop_, store_->IdHash("anon-bob")));
  EXPECT_FALSE(*store_->IsSuppressed(shop_, store_->IdHash("bob")));
  EXPECT_FALSE(*store_->IsSuppressed(shop_, store_->IdHash("never-seen")));
  std::vector<std::string> left = MessageIds("shop");
  EXPECT_EQ(std::set<std::string>(left.begin(), left.end()), (std::set<std::string>{"b-2", "c-2"}));
  EXPECT_EQ(Send(kCredentialWriteKey, {RightsEvent("n-1", "identify", "never-seen", "anon-n")})[0],
            InsertOutcome::kAccepted);
}

INSTANTIATE_TEST_SUITE_P(Backends, IdentityTrustConformance, ::testing::ValuesIn(Backends()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::ValuesIn(Backends()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace ferry::collector::conformance
