#include "tests/unit/insight/insight_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collector/insight/embedded_engine.h"
#include "collector/insight/normalize.h"
#include "lib/base/secret.h"
#include "tests/support/clickhouse_server.h"

namespace ferry::insight::test {

using base::Result;
using base::Status;
using testsupport::ClickHouseServer;

// ---- MemoryPrivacy ----

Result<std::vector<PersonPrivacy>> MemoryPrivacy::Lookup(const std::string&, const std::vector<std::string>& persons) {
  std::lock_guard<std::mutex> lock(mu_);
  ++lookups_;
  std::vector<PersonPrivacy> out;
  out.reserve(persons.size());
  for (const auto& p : persons) {
    auto it = states_.find(p);
    out.push_back(it == states_.end() ? fallback_ : it->second);
  }
  return out;
}

Result<std::vector<std::string>> MemoryPrivacy::ExcludedFromAnalytics(const std::string&) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, s] : states_) {
    if (!s.AllowsAnalytics()) out.push_back(id);
  }
  return out;
}

void MemoryPrivacy::Set(const std::string& person, PersonPrivacy p) {
  std::lock_guard<std::mutex> lock(mu_);
  states_[person] = p;
}

PersonPrivacy MemoryPrivacy::Get(const std::string& person) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(person);
  return it == states_.end() ? fallback_ : it->second;
}

void MemoryPrivacy::SetFallback(PersonPrivacy p) {
  std::lock_guard<std::mutex> lock(mu_);
  fallback_ = p;
}

int64_t MemoryPrivacy::lookups() {
  std::lock_guard<std::mutex> lock(mu_);
  return lookups_;
}

PersonPrivacy AllGranted() {
  PersonPrivacy p;
  p.personalization = true;
  p.marketing = true;
  return p;
}

// ---- Engines ----

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kEmbedded: return "embedded";
    case Kind::kClickHouse: return "clickhouse";
    case Kind::kClickHouseShards: return "clickhouse_2shards";
  }
  return "?";
}

namespace {

struct Servers {
  std::mutex mu;
  std::unique_ptr<ClickHouseServer> single;
  std::vector<std::unique_ptr<ClickHouseServer>> shards;
  std::string error;
};

Servers& TheServers() {
  static Servers* s = new Servers();  // stopped by the atexit handler below (ordered before static destruction)
  return *s;
}

void StopAll() {
  Servers& s = TheServers();
  std::lock_guard<std::mutex> lock(s.mu);
  s.single.reset();
  s.shards.clear();
}

struct Cleanup {
  std::mutex mu;
  std::vector<std::string> dirs;
  ~Cleanup() {
    if (std::getenv("FERRY_KEEP_TEST_DIRS") != nullptr) return;
    for (const auto& d : dirs) {
      std::string cmd = "rm -rf '" + d + "'";
      (void)std::system(cmd.c_str());
    }
  }
};
Cleanup& TheCleanup() {
  static Cleanup c;
  return c;
}

bool EnsureServers(Kind k, std::string* why) {
  Servers& s = TheServers();
  std::lock_guard<std::mutex> lock(s.mu);
  static bool registered = false;
  if (!registered) {
    std::atexit(StopAll);
    registered = true;
  }
  if (k == Kind::kClickHouse && s.single == nullptr) {
    s.single = ClickHouseServer::Start(&s.error);
    if (s.single == nullptr) {
      *why = s.error;
      return false;
    }
  }
  if (k == Kind::kClickHouseShards && s.shards.empty()) {
    s.shards = ClickHouseServer::StartCluster(2, "ferry_shards", &s.error);
    if (s.shards.empty()) {
      *why = s.error;
      return false;
    }
  }
  return true;
}

std::atomic<int> g_counter{0};

struct EngineSpot {
  std::string path;
  base::SecretBytes key;
  std::string database;
};

Result<std::unique_ptr<Engine>> OpenAt(Kind k, const EngineSpot& spot, ClickHouseOptions tweak) {
  if (k == Kind::kEmbedded) {
    auto e = EmbeddedEngine::Open(spot.path, spot.key);
    if (!e.ok()) return e.status();
    return std::unique_ptr<Engine>(std::move(e.value()));
  }
  std::string why;
  if (!EnsureServers(k, &why)) return Status::Unavailable(why);
  ClickHouseOptions o = std::move(tweak);
  o.urls = ShardUrls(k);
  if (k == Kind::kClickHouseShards) o.cluster = "ferry_shards";
  o.database = spot.database;
  if (o.flush_interval_ms == 500) o.flush_interval_ms = 50;
  auto e = ClickHouseEngine::Open(std::move(o));
  if (!e.ok()) return e.status();
  return std::unique_ptr<Engine>(std::move(e.value()));
}

EngineSpot NewSpot(Kind k) {
  EngineSpot s;
  if (k == Kind::kEmbedded) {
    char tmpl[] = "/tmp/ferry-insight-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) {
      std::lock_guard<std::mutex> lock(TheCleanup().mu);
      TheCleanup().dirs.push_back(tmpl);
      s.path = std::string(tmpl) + "/insight.db";
    }
    s.key = base::SecretBytes::Random(32);
  } else {
    s.database = "t" + std::to_string(getpid()) + "_" + std::to_string(++g_counter);
  }
  return s;
}

std::map<Engine*, EngineSpot>& Spots() {
  static std::map<Engine*, EngineSpot> m;
  return m;
}
std::mutex g_spots_mu;

}  // namespace

bool KindAvailable(Kind k, std::string* why) {
  if (k == Kind::kEmbedded) return true;
  if (!ClickHouseServer::Available()) {
    *why = "clickhouse-server is not installed (scripts/install-deps.sh --group clickhouse)";
    return false;
  }
  return EnsureServers(k, why);
}

std::vector<std::string> ShardUrls(Kind k) {
  Servers& s = TheServers();
  std::vector<std::string> out;
  if (k == Kind::kClickHouse && s.single) out.push_back(s.single->url());
  if (k == Kind::kClickHouseShards) {
    for (const auto& x : s.shards) out.push_back(x->url());
  }
  return out;
}

void StopSingleClickHouse() {
  Servers& s = TheServers();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.single) s.single->Kill();  // a crash: the sink must not lose what it had not delivered
}

bool RestartSingleClickHouse(std::string* error) {
  Servers& s = TheServers();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.single) return false;
  return s.single->Restart(error);
}

Result<std::unique_ptr<Engine>> MakeEngine(Kind k, ClickHouseOptions tweak) {
  EngineSpot spot = NewSpot(k);
  auto e = OpenAt(k, spot, std::move(tweak));
  if (!e.ok()) return e.status();
  std::lock_guard<std::mutex> lock(g_spots_mu);
  Spots()[e.value().get()] = spot;
  return e;
}

namespace {

Made Wrap(std::unique_ptr<Engine> engine, InsightConfig config, std::shared_ptr<MemoryPrivacy> privacy = nullptr) {
  Made m;
  m.privacy = privacy;
  if (m.privacy == nullptr) {
    m.privacy = std::make_shared<MemoryPrivacy>();
    m.privacy->SetFallback(AllGranted());
  }
  m.audits = std::make_shared<std::vector<AuditRecord>>();
  m.engine = engine.get();
  Insight::Options o;
  o.config = std::move(config);
  o.privacy = m.privacy.get();
  auto audits = m.audits;
  o.audit = [audits](const AuditRecord& r) {
    audits->push_back(r);
    return Status::Ok();
  };
  auto in = Insight::Open(std::move(o), std::move(engine));
  if (!in.ok()) {
    ADD_FAILURE_AT(__FILE__, __LINE__);
    std::fprintf(stderr, "Insight::Open: %s\n", in.status().ToString().c_str());
    return m;
  }
  m.insight = std::move(in.value());
  return m;
}

}  // namespace

Made MakeInsight(Kind k, InsightConfig config, ClickHouseOptions tweak) {
  auto e = MakeEngine(k, std::move(tweak));
  if (!e.ok()) {
    std::fprintf(stderr, "MakeEngine(%s): %s\n", KindName(k), e.status().ToString().c_str());
    return {};
  }
  return Wrap(std::move(e.value()), std::move(config));
}

Made Reopen(Kind k, Made old, InsightConfig config) {
  EngineSpot spot;
  {
    std::lock_guard<std::mutex> lock(g_spots_mu);
    spot = Spots()[old.engine];
    Spots().erase(old.engine);
  }
  auto privacy = old.privacy;
  old.insight.reset();  // closes the engine (the file, the sender thread)
  auto e = OpenAt(k, spot, {});
  if (!e.ok()) {
    std::fprintf(stderr, "reopen: %s\n", e.status().ToString().c_str());
    return {};
  }
  {
    std::lock_guard<std::mutex> lock(g_spots_mu);
    Spots()[e.value().get()] = spot;
  }
  return Wrap(std::move(e.value()), std::move(config), privacy);
}

// ---- The data set ----

const Dataset& TheDataset() {
  static const Dataset* d = [] {
    auto* ds = new Dataset();
    ds->options.seed = 20260101;
    ds->options.users = 2000;
    ds->options.days = 120;
    ds->options.activity = 3.0;
    ds->options.duplicate_rate = 0.01;
    ds->options.project = "p";
    ds->as_of = ds->options.start_day + 89;
    insightgen::Generator g(ds->options);
    g.Run([&](const InsightEvent& e) { ds->events.push_back(e); },
          [&](const insightgen::UserTruth& t) {
            ds->truth_of[t.anonymous_id] = static_cast<int64_t>(ds->users.size());
            if (!t.user_id.empty()) ds->truth_of[t.user_id] = static_cast<int64_t>(ds->users.size());
            ds->users.push_back(t);
          });
    return ds;
  }();
  return *d;
}

InsightConfig DatasetConfig() {
  nlohmann::json j = nlohmann::json::parse(insightgen::Generator::ConfigJson());
  j["tags"] = nlohmann::json::parse(R"([
    {"name": "digital_browser_no_order",
     "description": "browses digital products often, no order in 30 days, responds to promotions",
     "rule": {"all": [
       {"count": {"event": "product_viewed", "where": [{"prop": "category", "op": "eq", "value": "digital"}],
                  "within_days": 30}, "op": "gte", "value": 3},
       {"not": {"count": {"event": "order_completed", "within_days": 30}, "op": "gte", "value": 1}},
       {"count": {"event": "promotion_clicked", "within_days": 90}, "op": "gte", "value": 1}]}},
    {"name": "big_spender", "description": "spent 300 or more in 90 days",
     "rule": {"sum": {"event": "order_completed", "prop": "revenue", "within_days": 90}, "op": "gte", "value": 300}},
    {"name": "lapsing_buyer",
     "rule": {"all": [{"count": {"event": "order_completed"}, "op": "gte", "value": 1},
                      {"recency": {}, "op": "gte", "value": 14}]}},
    {"name": "mini_or_pro", "rule": {"any": [{"channel": "miniprogram"}, {"trait": "plan", "op": "eq", "value": "pro"}]}},
    {"name": "wechat_inviter",
     "rule": {"all": [{"source": "wechat"}, {"recency": {"event": "invite_sent"}, "op": "lte", "value": 30}]}},
    {"name": "pricey_viewer",
     "rule": {"count": {"event": "product_viewed", "where": [{"prop": "price", "op": "gte", "value": 100},
                                                             {"prop": "category", "op": "in", "value": ["digital", "home"]}],
                        "within_days": 14}, "op": "gte", "value": 2}}
  ])");
  auto c = InsightConfig::FromJson(j);
  if (!c.ok()) {
    std::fprintf(stderr, "DatasetConfig: %s\n", c.status().ToString().c_str());
    std::abort();
  }
  return c.value();
}

void ApplyTruth(MemoryPrivacy& p, const Dataset& d) {
  for (const auto& u : d.users) {
    PersonPrivacy s;
    s.personalization = u.personalization;
    s.marketing = u.marketing;
    p.Set(u.anonymous_id, s);
    if (!u.user_id.empty()) p.Set(u.user_id, s);
  }
}

void Feed(Insight& in, const std::vector<InsightEvent>& events) {
  for (size_t i = 0; i < events.size(); i += 500) {
    std::vector<InsightEvent> batch(events.begin() + static_cast<long>(i),
                                    events.begin() + static_cast<long>(std::min(events.size(), i + 500)));
    Status st = in.Accept(batch);
    if (!st.ok()) {
      ADD_FAILURE() << "Accept: " << st.ToString();
      return;
    }
  }
  Status st = in.Flush(120000);
  if (!st.ok()) ADD_FAILURE() << "Flush: " << st.ToString();
}

// ---- EventMaker ----

InsightEvent EventMaker::Base(const std::string& user, const std::string& type, int32_t day, int64_t ms_of_day) {
  InsightEvent e;
  e.project = project;
  e.seq = ++seq;
  e.message_id = "m" + std::to_string(seq);
  e.type = type;
  e.user_id = user;
  e.anonymous_id = "a-" + user;
  e.purpose = "analytics";
  e.timestamp_ms = static_cast<int64_t>(day) * 86400000 + ms_of_day;
  e.received_ms = e.timestamp_ms + 100;
  e.context = "{\"app\":{\"name\":\"shop-app\"}}";
  return e;
}

InsightEvent EventMaker::Track(const std::string& user, const std::string& name, int32_t day, int64_t ms_of_day,
                               const std::string& props, const std::string& session, const std::string& context_extra) {
  InsightEvent e = Base(user, "track", day, ms_of_day);
  e.name = name;
  e.properties = props;
  std::string ctx = "{\"app\":{\"name\":\"shop-app\"}";
  if (!session.empty()) ctx += ",\"sessionId\":\"" + session + "\"";
  if (!context_extra.empty()) ctx += "," + context_extra;
  e.context = ctx + "}";
  return e;
}

InsightEvent EventMaker::Identify(const std::string& user, int32_t day, int64_t ms_of_day, const std::string& traits) {
  InsightEvent e = Base(user, "identify", day, ms_of_day);
  e.traits = traits;
  return e;
}

}  // namespace ferry::insight::test
