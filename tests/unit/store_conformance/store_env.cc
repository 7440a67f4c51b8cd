#include "tests/unit/store_conformance/store_env.h"

#include <cstdlib>

#include "collector/engines/sqlite/sqlite_store.h"
#include "lib/base/sqlite.h"

namespace ferry::collector::conformance {

PgEnvironment* PgEnvironment::Get() {
  static PgEnvironment* env = [] {
    auto* e = new PgEnvironment();
    ::testing::AddGlobalTestEnvironment(e);  // gtest owns it and calls TearDown at the end
    return e;
  }();
  return env;
}

testsupport::PgCluster* PgEnvironment::Cluster(std::string* error, bool* absent) {
  *absent = false;
  if (!testsupport::PgCluster::Available()) {
    *absent = true;
    *error = "PostgreSQL binaries not found";
    return nullptr;
  }
  if (!tried_) {
    tried_ = true;
    cluster_ = testsupport::PgCluster::Start(&start_error_);
  }
  if (!cluster_) *error = "the PostgreSQL cluster did not start: " + start_error_;
  return cluster_.get();
}

std::string PgEnvironment::NewDatabase(std::string* error) {
  bool absent = false;
  testsupport::PgCluster* c = Cluster(error, &absent);
  if (c == nullptr) return "";
  return c->CreateDatabase("conf_" + std::to_string(++next_db_), error);
}

Backend::~Backend() {
  if (!dir_.empty()) (void)std::system(("rm -rf '" + dir_ + "'").c_str());
}

bool Backend::Setup(std::string* error, bool* skip) {
  *skip = false;
  if (kind_ == "sqlite") {
    char tmpl[] = "/tmp/ferry-conformance-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      *error = "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    return true;
  }
  bool absent = false;
  if (PgEnvironment::Get()->Cluster(error, &absent) == nullptr) {
    *skip = absent;
    return false;
  }
  uri_ = PgEnvironment::Get()->NewDatabase(error);
  return !uri_.empty();
}

base::Result<std::unique_ptr<Store>> Backend::Open(int pool_size, int acquire_timeout_ms, base::Clock* clock) {
  StoreConfig c;
  c.clock = clock;
  c.storage = kind_ == "sqlite" ? "sqlite" : uri_;
  c.data_dir = dir_;
  c.pg_pool_size = pool_size;
  c.pg_acquire_timeout_ms = acquire_timeout_ms;
  return MakeStore(c);
}

std::vector<std::string> Backends() {
  std::vector<std::string> out = {"sqlite"};
  if (PostgresAvailable()) out.push_back("postgresql");
  return out;
}

void BackendTest::SetUp() {
  backend_ = std::make_unique<Backend>(GetParam());
  std::string error;
  bool skip = false;
  if (!backend_->Setup(&error, &skip)) {
    if (skip) {
      GTEST_SKIP() << "\n*** SKIPPED: " << error
                   << " — the PostgreSQL half of the storage conformance suite did NOT run. ***\n";
    }
    FAIL() << error;
  }
  auto s = backend_->Open(4, 2000, StoreClock());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  store_ = std::move(s).value();
  shop_ = Project("shop");
  ASSERT_NE(shop_, 0);
}

int64_t BackendTest::Project(const std::string& name) {
  auto key = store_->CreateWriteKey(name);
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  if (!key.ok()) return 0;
  auto info = store_->LookupWriteKey(*key);
  EXPECT_TRUE(info.ok() && info->has_value());
  return info.ok() && info->has_value() ? (*info)->project_id : 0;
}

std::vector<InsertOutcome> BackendTest::Put(int64_t project_id, std::vector<StoredEvent> events, Store* store) {
  return PutEvents(store ? *store : *store_, project_id, std::move(events));
}

std::vector<std::string> BackendTest::MessageIds(const std::string& project) {
  auto rows = store_->DumpEvents(project);
  EXPECT_TRUE(rows.ok());
  std::vector<std::string> out;
  if (rows.ok()) {
    for (const auto& r : *rows) out.push_back(r.message_id);
  }
  return out;
}

namespace {

std::string Database(const std::string& uri) { return uri.substr(uri.rfind('/') + 1); }

}  // namespace

std::string Backend::Exec(const std::string& sql) {
  if (kind_ == "sqlite") {
    auto key = LoadOrCreateStoreKey(dir_, "");
    if (!key.ok()) return key.status().ToString();
    auto db = base::Db::OpenEncrypted(dir_ + "/collector.db", *key);
    if (!db.ok()) return db.status().ToString();
    base::Status s = db->Exec(sql);
    return s.ok() ? std::string() : s.ToString();
  }
  bool absent = false;
  std::string error;
  testsupport::PgCluster* c = PgEnvironment::Get()->Cluster(&error, &absent);
  if (c == nullptr) return error;
  std::string out;
  return c->Psql(Database(uri_), sql, &out) == 0 ? std::string() : out;
}

std::string Backend::QueryText(const std::string& sql) {
  if (kind_ == "sqlite") {
    auto key = LoadOrCreateStoreKey(dir_, "");
    if (!key.ok()) return "";
    auto db = base::Db::OpenEncrypted(dir_ + "/collector.db", *key);
    if (!db.ok()) return "";
    auto st = db->Prepare(sql);
    if (!st.ok() || !st->Step()) return "";
    return st->Text(0);
  }
  bool absent = false;
  std::string error, out;
  testsupport::PgCluster* c = PgEnvironment::Get()->Cluster(&error, &absent);
  if (c == nullptr || c->Psql(Database(uri_), sql, &out) != 0) return "";
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

StoredEvent MakeEvent(const std::string& id, const std::string& type, const std::string& user, const std::string& anon,
                      int64_t timestamp_ms, int64_t received_ms, const nlohmann::json& body) {
  StoredEvent e;
  e.message_id = id;
  e.type = type;
  e.user_id = user;
  e.anonymous_id = anon;
  e.name = type == "track" ? "Clicked" : "";
  e.purpose = "analytics";
  e.timestamp_ms = timestamp_ms;
  e.received_ms = received_ms;
  e.body = body.dump();
  return e;
}

std::vector<InsertOutcome> PutEvents(Store& store, int64_t project_id, std::vector<StoredEvent> events) {
  InsertRequest r;
  r.project_id = project_id;
  r.events = std::move(events);
  std::vector<InsertRequest*> reqs = {&r};
  store.Prepare(&r);  // as GroupCommitter::Submit does (the embedded store compresses the bodies)
  base::Status s = store.Insert(reqs);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return r.outcomes;
}

StoredEvent RightsEvent(const std::string& id, const std::string& type, const std::string& user,
                        const std::string& anon, int64_t ts) {
  nlohmann::json body = {{"messageId", id}, {"type", type}};
  if (!user.empty()) body["userId"] = user;
  if (!anon.empty()) body["anonymousId"] = anon;
  return MakeEvent(id, type, user, anon, ts, ts + 1, body);
}

void PopulateZebra(Store& store, int64_t shop, int64_t blog) {
  auto identify = RightsEvent("m-id-1", "identify", "zebra-user-7781", "anon-quokka-1");
  identify.traits = R"({"email":"zebra7781@example.org","plan":"pro"})";
  auto consent = RightsEvent("m-c-1", "consent", "", "anon-quokka-2");
  consent.consent_purpose = "marketing";
  consent.consent_state = "granted";
  consent.device = R"({"id":"device-zebra-B","model":"Pixel"})";
  auto identify2 = RightsEvent("m-id-2", "identify", "zebra-user-7781", "anon-quokka-2");
  PutEvents(store, shop,
            {RightsEvent("m-1", "track", "", "anon-quokka-1"), identify,
             RightsEvent("m-2", "track", "zebra-user-7781", "anon-quokka-1"), consent, identify2,
             RightsEvent("m-3", "track", "zebra-user-7781", "anon-quokka-2"),
             RightsEvent("o-1", "identify", "other-user", "anon-other"),
             RightsEvent("o-2", "track", "other-user", "anon-other"), RightsEvent("v-1", "track", "", "anon-visitor")});
  PutEvents(store, blog, {RightsEvent("b-1", "identify", "zebra-user-7781", "anon-blog-9")});
}

std::string SeedLinksBeforeProvenance(Store& store) {
  auto key = store.CreateWriteKey("shop");
  EXPECT_TRUE(key.ok());
  int64_t shop = (*store.LookupWriteKey(*key))->project_id;
  StoredEvent alias = RightsEvent("al-1", "alias", "new-user", "anon-n");
  alias.previous_id = "old-user";
  PutEvents(store, shop,
            {RightsEvent("o-1", "identify", "old-user", "anon-o"), RightsEvent("n-1", "identify", "new-user", "anon-n"),
             alias});
  return key.ok() ? *key : std::string();
}

void ExpectLinksOfUnknownProvenance(Store& store, const std::string& write_key) {
  auto info = store.LookupWriteKey(write_key);
  ASSERT_TRUE(info.ok() && info->has_value());
  EXPECT_EQ((*info)->kind, "write");
  EXPECT_EQ((*info)->prefix, write_key.substr(0, 7));
  auto found = store.FindSubject({"shop", "new-user"});
  ASSERT_TRUE(found.ok() && found->size() == 1u);
  const SubjectSummary& s = found->front();
  int checked = 0;
  for (const IdentityLink& l : s.links) {
    EXPECT_EQ(l.credential, "unknown") << l.from_id;
    EXPECT_EQ(l.state, "active") << l.from_id;
    EXPECT_EQ(l.key_id, "") << l.from_id;
    if (l.from_id == "anon-n" || l.from_id == "old-user") {
      EXPECT_EQ(l.followed, l.from_id == "anon-n") << l.from_id;  // old-user is a userId: not on a write key's word
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2);
  for (const SubjectIdentity& i : s.identities) EXPECT_NE(i.id, "old-user");
}

}  // namespace ferry::collector::conformance
