// Data-subject rights in the embedded store: identity graph, export, erasure (proved by scanning every text column
// and the decrypted database pages), suppression, traits, request register, audit chain, admin tokens, retention.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "collector/engines/sqlite/sqlite_store.h"
#include "collector/store/audit.h"
#include "lib/base/sqlite.h"

namespace ferry::collector {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ferry-rights-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

StoredEvent Ev(const std::string& id, const std::string& type, const std::string& user, const std::string& anon,
               int64_t ts = 1000) {
  StoredEvent e;
  e.message_id = id;
  e.type = type;
  e.user_id = user;
  e.anonymous_id = anon;
  e.name = type == "track" ? "Clicked" : "";
  e.purpose = "analytics";
  e.timestamp_ms = ts;
  e.received_ms = ts + 1;
  nlohmann::json body = {{"messageId", id}, {"type", type}};
  if (!user.empty()) body["userId"] = user;
  if (!anon.empty()) body["anonymousId"] = anon;
  e.body = body.dump();
  return e;
}

std::vector<InsertOutcome> Put(SqliteStore& s, int64_t project_id, std::vector<StoredEvent> evs) {
  InsertRequest r;
  r.project_id = project_id;
  r.events = std::move(evs);
  std::vector<InsertRequest*> reqs = {&r};
  EXPECT_TRUE(s.Insert(reqs).ok());
  return r.outcomes;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<SqliteStore> store;
  int64_t shop = 0, blog = 0;
  Fixture() {
    auto s = SqliteStore::Open(dir.path());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(s).value();
    auto k1 = store->CreateWriteKey("shop");
    auto k2 = store->CreateWriteKey("blog");
    shop = (*store->LookupWriteKey(*k1))->project_id;
    blog = (*store->LookupWriteKey(*k2))->project_id;
  }
  // The user "zebra-user-7781" with two devices (anon ids), traits, consent from one device; another user; one
  // anonymous-only visitor; and the same user in the blog project.
  void Populate() {
    auto identify = Ev("m-id-1", "identify", "zebra-user-7781", "anon-quokka-1");
    identify.traits = R"({"email":"zebra7781@example.org","plan":"pro"})";
    auto consent = Ev("m-c-1", "consent", "", "anon-quokka-2");
    consent.consent_purpose = "marketing";
    consent.consent_state = "granted";
    consent.device = R"({"id":"device-zebra-B","model":"Pixel"})";
    auto identify2 = Ev("m-id-2", "identify", "zebra-user-7781", "anon-quokka-2");
    Put(*store, shop,
        {Ev("m-1", "track", "", "anon-quokka-1"), identify, Ev("m-2", "track", "zebra-user-7781", "anon-quokka-1"),
         consent, identify2, Ev("m-3", "track", "zebra-user-7781", "anon-quokka-2"),
         Ev("o-1", "identify", "other-user", "anon-other"), Ev("o-2", "track", "other-user", "anon-other"),
         Ev("v-1", "track", "", "anon-visitor")});
    Put(*store, blog, {Ev("b-1", "identify", "zebra-user-7781", "anon-blog-9")});
  }
};

TEST(RightsStore, IdentityGraphResolvesAnyIdToTheSameSubject) {
  Fixture f;
  f.Populate();
  for (const char* id : {"zebra-user-7781", "anon-quokka-1", "anon-quokka-2"}) {
    auto found = f.store->FindSubject({"shop", id});
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
    auto traits = nlohmann::json::parse(s.traits);
    EXPECT_EQ(traits["email"], "zebra7781@example.org");
  }
  auto all = f.store->FindSubject({"", "zebra-user-7781"});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);  // shop and blog
  auto visitor = f.store->FindSubject({"shop", "anon-visitor"});
  ASSERT_EQ(visitor->size(), 1u);
  EXPECT_EQ(visitor->front().user_id, "");
  EXPECT_EQ(visitor->front().event_count, 1);
  EXPECT_TRUE(f.store->FindSubject({"", "nobody"})->empty());
}

TEST(RightsStore, AliasChainsJoinOldAndNewUserIds) {
  Fixture f;
  auto alias = Ev("al-1", "alias", "new-user", "");
  alias.previous_id = "old-user";
  Put(*f.store, f.shop,
      {Ev("x-1", "identify", "old-user", "anon-old"), Ev("x-2", "track", "old-user", "anon-old"), alias,
       Ev("x-3", "track", "new-user", "anon-new")});
  for (const char* id : {"old-user", "new-user", "anon-old"}) {
    auto found = f.store->FindSubject({"shop", id});
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

TEST(RightsStore, ExportStreamsEveryEventOfEveryLinkedIdOnceAndNothingElse) {
  Fixture f;
  f.Populate();
  // Enough events to span several pages (512 a page), interleaved with another user's.
  std::vector<StoredEvent> more;
  for (int i = 0; i < 1500; ++i) {
    more.push_back(Ev("p-" + std::to_string(i), "track", i % 3 ? "" : "zebra-user-7781",
                      i % 2 ? "anon-quokka-1" : "anon-quokka-2"));
    more.push_back(Ev("q-" + std::to_string(i), "track", "other-user", "anon-other"));
  }
  Put(*f.store, f.shop, std::move(more));
  CollectingVisitor v;
  auto r = f.store->ExportSubject({"shop", "anon-quokka-2"}, v);
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
  auto stopped = f.store->ExportSubject({"shop", "zebra-user-7781"}, stopper);
  EXPECT_FALSE(stopped.ok());
  EXPECT_EQ(stopper.events.size(), 10u);

  CollectingVisitor none;
  auto missing = f.store->ExportSubject({"", "nobody"}, none);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing);
  EXPECT_TRUE(none.projects.empty());
}

// SQLCipher 3 page decryption (raw key, 4 KiB pages, 48-byte reserve holding the IV first): AES-256-CBC.
std::string DecryptPages(const std::string& file, const base::SecretBytes& key) {
  std::ifstream in(file, std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr size_t kPage = 4096, kReserve = 48;
  std::string plain;
  for (size_t off = 0; off + kPage <= raw.size(); off += kPage) {
    size_t skip = off == 0 ? 16 : 0;  // page 1 starts with the salt
    const auto* iv = reinterpret_cast<const unsigned char*>(raw.data() + off + kPage - kReserve);
    std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)> ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, key.data(), iv);
    EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
    std::string out(kPage, '\0');
    int n = 0;
    EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                      reinterpret_cast<const unsigned char*>(raw.data() + off + skip),
                      static_cast<int>(kPage - kReserve - skip));
    out.resize(static_cast<size_t>(n));
    plain += out;
  }
  return plain;
}

TEST(RightsStore, EraseLeavesNoIdOrValueInAnyColumnNorInTheDecryptedPages) {
  Fixture f;
  f.Populate();
  auto req = f.store->CreateRequest({"", "access", "", "zebra-user-7781", "", "completed", "admin", 1, 2, "x", 1, ""});
  ASSERT_TRUE(req.ok());
  const std::vector<std::string> secrets = {"zebra-user-7781",       "anon-quokka-1",  "anon-quokka-2",
                                            "zebra7781@example.org", "device-zebra-B", "anon-blog-9"};
  auto key = LoadOrCreateStoreKey(f.dir.path(), "");
  ASSERT_TRUE(key.ok());
  // Positive control: before the erasure the decrypted pages do show the values (so the decryption is right).
  f.store.reset();
  {
    std::string plain = DecryptPages(f.dir.path() + "/collector.db", *key);
    EXPECT_NE(plain.find("zebra7781@example.org"), std::string::npos);
    EXPECT_NE(plain.find("anon-quokka-2"), std::string::npos);
  }
  f.store = std::move(SqliteStore::Open(f.dir.path())).value();

  auto receipt = f.store->EraseSubject({"", "anon-quokka-1"}, "req_test");
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
  ASSERT_TRUE(f.store
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
  EXPECT_EQ(f.store->FindSubject({"shop", "other-user"})->front().event_count, 2);
  EXPECT_EQ(f.store->FindSubject({"shop", "anon-visitor"})->front().event_count, 1);
  EXPECT_TRUE(f.store->FindSubject({"", "zebra-user-7781"})->empty());

  // Later arrivals of any linked id are suppressed.
  auto out = Put(*f.store, f.shop,
                 {Ev("late-1", "track", "", "anon-quokka-2"), Ev("late-2", "track", "zebra-user-7781", "anon-fresh"),
                  Ev("late-3", "track", "", "anon-visitor")});
  EXPECT_EQ(out, (std::vector<InsertOutcome>{InsertOutcome::kSuppressed, InsertOutcome::kSuppressed,
                                             InsertOutcome::kAccepted}));

  f.store.reset();  // closes and checkpoints
  std::string plain = DecryptPages(f.dir.path() + "/collector.db", *key);
  ASSERT_GT(plain.size(), 4096u);
  EXPECT_EQ(static_cast<unsigned char>(plain[0]), 0x10);  // header byte 16-17: page size 4096 (page 1 after salt)
  for (const auto& s : secrets) EXPECT_EQ(plain.find(s), std::string::npos) << s << " left in the database pages";
  std::ifstream wal(f.dir.path() + "/collector.db-wal", std::ios::binary);
  std::string walraw((std::istreambuf_iterator<char>(wal)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(walraw.empty());
}

TEST(RightsStore, DeviceForgetErasesOnlyItsAnonymousIdsAndNeverAUserId) {
  Fixture f;
  f.Populate();
  auto r = f.store->EraseAnonymousIds(f.shop, {"anon-quokka-2", "zebra-user-7781"}, "req_dev");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->erased.at("events"), 3);  // m-c-1, m-id-2, m-3 carry anon-quokka-2
  EXPECT_EQ(r->ids_suppressed, 1);       // the userId named as an anonymousId is refused
  auto s = f.store->FindSubject({"shop", "zebra-user-7781"});
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ(s->front().event_count, 3);
  auto out = Put(*f.store, f.shop, {Ev("n-1", "track", "zebra-user-7781", "anon-quokka-1")});
  EXPECT_EQ(out[0], InsertOutcome::kAccepted);
}

TEST(RightsStore, PatchTraitsCorrectsAndRemoves) {
  Fixture f;
  f.Populate();
  auto r = f.store->PatchTraits({"shop", "anon-quokka-1"}, R"({"email":"fixed@example.org","plan":null,"n":3})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(r->front().traits), (nlohmann::json{{"email", "fixed@example.org"}, {"n", 3}}));
  EXPECT_FALSE(f.store->PatchTraits({"shop", "x"}, "[1]").ok());
  EXPECT_TRUE(f.store->PatchTraits({"shop", "nobody"}, "{}")->empty());
}

TEST(RightsStore, RequestRegisterStatesAndOverdue) {
  Fixture f;
  RightsRequest late{"", "erasure", "shop", "u-1", "", "awaiting_verification", "device", 1000, 2000, "", 0, ""};
  RightsRequest fine{"", "access", "shop", "u-2", "", "awaiting_verification", "admin", 1000, 1LL << 50, "", 0, ""};
  RightsRequest done{"", "erasure", "shop", "u-3", "", "completed", "admin", 1000, 2000, "ann", 1500, "{}"};
  auto a = f.store->CreateRequest(late);
  auto b = f.store->CreateRequest(fine);
  ASSERT_TRUE(f.store->CreateRequest(done).ok());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->subject_hash, f.store->IdHash("u-1"));
  RequestFilter overdue;
  overdue.overdue_at_ms = 5000;
  auto list = f.store->ListRequests(overdue);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().id, a->id);
  EXPECT_EQ(*f.store->UpdateRequest(a->id, "awaiting_verification", "rejected", "ann", 3000, "{}"),
            RequestUpdate::kUpdated);
  EXPECT_EQ(*f.store->UpdateRequest(a->id, "awaiting_verification", "completed", "bob", 3001, "{}"),
            RequestUpdate::kWrongState);
  EXPECT_EQ(*f.store->UpdateRequest("req_nope", "awaiting_verification", "completed", "bob", 1, ""),
            RequestUpdate::kNotFound);
  EXPECT_TRUE(f.store->ListRequests(overdue)->empty());
  EXPECT_EQ((*f.store->GetRequest(a->id))->acted_by, "ann");
}

TEST(RightsStore, AuditChainVerifiesAndNamesTheFirstEditedOrMissingEntry) {
  Fixture f;
  for (int i = 0; i < 6; ++i) {
    AuditEntry e;
    e.actor = "ann (fa_1234)";
    e.role = "compliance";
    e.action = "subject.show";
    e.subject_hash = f.store->IdHash("u-" + std::to_string(i));
    e.result = "ok";
    auto r = f.store->AppendAudit(e);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->seq, i + 1);
  }
  auto v = f.store->VerifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok);
  EXPECT_EQ(v->entries, 6);
  EXPECT_EQ(f.store->ListAudit(0, 100, f.store->IdHash("u-2"))->size(), 1u);

  auto key = LoadOrCreateStoreKey(f.dir.path(), "");
  {
    // An edit made directly in the database, behind the store's back.
    auto db = base::Db::OpenEncrypted(f.dir.path() + "/collector.db", *key);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->Exec("UPDATE audit_log SET result = 'denied' WHERE seq = 4;").ok());
  }
  v = f.store->VerifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_broken_seq, 4);
  {
    auto db = base::Db::OpenEncrypted(f.dir.path() + "/collector.db", *key);
    ASSERT_TRUE(
        db->Exec("UPDATE audit_log SET result = 'ok' WHERE seq = 4; DELETE FROM audit_log WHERE seq = 3;").ok());
  }
  v = f.store->VerifyAudit();
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_broken_seq, 4);  // the entry after the gap
  // The canonical form separates fields unambiguously.
  AuditEntry x, y;
  x.actor = "a\n1:b";
  y.actor = "a";
  y.role = "b";
  EXPECT_NE(AuditCanonical(x), AuditCanonical(y));
}

TEST(RightsStore, AdminTokensAreHashedWithRolesAndRevocable) {
  Fixture f;
  EXPECT_FALSE(f.store->CreateAdminToken("x", {}).ok());
  EXPECT_FALSE(f.store->CreateAdminToken("x", {"root"}).ok());
  auto t = f.store->CreateAdminToken("ann", {"compliance", "analyst"});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->rfind("fa_", 0), 0u);
  auto info = f.store->LookupAdminToken(*t);
  ASSERT_TRUE(info.ok() && info->has_value());
  EXPECT_EQ((**info).roles, (std::vector<std::string>{"compliance", "analyst"}));
  EXPECT_FALSE(f.store->LookupAdminToken(*t + "0")->has_value());
  auto wk = f.store->CreateWriteKey("shop");
  EXPECT_FALSE(f.store->LookupAdminToken(*wk)->has_value());
  bool plain = false;
  ASSERT_TRUE(f.store
                  ->ScanAllText([&](std::string_view, std::string_view, std::string_view text) {
                    plain = plain || text.find(t->substr(3)) != std::string_view::npos;
                    return true;
                  })
                  .ok());
  EXPECT_FALSE(plain);
  EXPECT_TRUE(*f.store->RevokeAdminToken((**info).id));
  EXPECT_FALSE(f.store->LookupAdminToken(*t)->has_value());
}

TEST(RightsStore, RetentionPurgesOldEventsPerProject) {
  Fixture f;
  Put(*f.store, f.shop, {Ev("old-1", "track", "", "a", 1000), Ev("new-1", "track", "", "a", 900000)});
  Put(*f.store, f.blog, {Ev("old-2", "track", "", "b", 1000), Ev("new-2", "track", "", "b", 900000)});
  ASSERT_TRUE(*f.store->SetRetention("blog", 10));
  EXPECT_FALSE(*f.store->SetRetention("nope", 10));
  // Default 500,000 ms at now = 1,000,000: shop keeps new-1; blog's own 10 ms removes both.
  auto n = f.store->PurgeExpired(1000000, 500000, 1000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3);
  auto rows = f.store->DumpEvents("");
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().message_id, "new-1");
  EXPECT_EQ(f.store->Retention()->at("blog"), 10);
}

}  // namespace
}  // namespace ferry::collector
