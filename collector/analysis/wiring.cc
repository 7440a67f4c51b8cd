#include "collector/analysis/wiring.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "collector/insight/clickhouse_engine.h"
#include "collector/insight/embedded_engine.h"
#include "platform/platform.h"

namespace ferry::collector::analysis {

using base::Result;
using base::Status;
using nlohmann::json;

Result<std::vector<insight::PersonPrivacy>> StorePrivacyView::Lookup(const std::string& project,
                                                                     const std::vector<std::string>& persons) {
  std::vector<insight::PersonPrivacy> out(persons.size());
  for (size_t i = 0; i < persons.size(); ++i) {
    auto found = graph_->FindSubject(SubjectQuery{project, persons[i]});
    if (!found.ok()) return found.status();
    if (found->empty()) continue;
    for (const ConsentState& c : found->front().consent) {
      bool granted = c.state == "granted";
      if (c.purpose == "personalization") out[i].personalization = granted;
      if (c.purpose == "marketing") out[i].marketing = granted;
      if (c.purpose == "analytics" && c.state == "denied") out[i].objects_analytics = true;
    }
  }
  return out;
}

Result<std::vector<std::string>> StorePrivacyView::ExcludedFromAnalytics(const std::string& project) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = analytics_denied_.find(project);
  if (it == analytics_denied_.end()) return std::vector<std::string>();
  return std::vector<std::string>(it->second.begin(), it->second.end());
}

void StorePrivacyView::NoteConsent(const std::string& project, const std::vector<std::string>& ids,
                                   const std::string& purpose, const std::string& state) {
  if (purpose != "analytics") return;
  std::lock_guard<std::mutex> lock(mu_);
  auto& denied = analytics_denied_[project];
  for (const std::string& id : ids) {
    if (id.empty()) continue;
    if (state == "denied") {
      denied.insert(id);
    } else if (state == "granted") {
      denied.erase(id);
    }
  }
}

insight::InsightEvent ToInsightEvent(const std::string& project, const StoredEvent& e) {
  insight::InsightEvent ev;
  ev.project = project;
  ev.message_id = e.message_id;
  ev.type = e.type;
  ev.user_id = e.user_id;
  ev.anonymous_id = e.anonymous_id;
  ev.name = e.name;
  ev.purpose = e.purpose;
  ev.timestamp_ms = e.timestamp_ms;
  ev.received_ms = e.received_ms;
  ev.traits = e.traits;
  json body = json::parse(e.body, nullptr, false);
  if (body.is_object()) {
    if (auto p = body.find("properties"); p != body.end() && p->is_object()) ev.properties = p->dump();
    if (auto c = body.find("context"); c != body.end() && c->is_object()) ev.context = c->dump();
    if (ev.traits.empty()) {
      if (auto t = body.find("traits"); t != body.end() && t->is_object()) ev.traits = t->dump();
    }
  }
  return ev;
}

Status InsightFeed::Insert(std::vector<InsertRequest*>& requests) {
  Status s = inner_->Insert(requests);
  if (!s.ok()) return s;
  std::vector<insight::InsightEvent> events;
  for (const InsertRequest* r : requests) {
    for (size_t i = 0; i < r->events.size() && i < r->outcomes.size(); ++i) {
      if (r->outcomes[i] != InsertOutcome::kAccepted) continue;
      const StoredEvent& e = r->events[i];
      if (e.type == "consent") {
        privacy_->NoteConsent(r->project, {e.user_id, e.anonymous_id}, e.consent_purpose, e.consent_state);
        continue;
      }
      if (e.type != "track" && e.type != "screen" && e.type != "identify") continue;
      events.push_back(ToInsightEvent(r->project, e));
    }
  }
  if (events.empty()) return Status::Ok();
  Status a = insight_->Accept(events);
  if (!a.ok()) {
    failures_.fetch_add(1);
    log_.Error("insight: " + std::to_string(events.size()) + " accepted events not taken: " + a.ToString());
  }
  return Status::Ok();
}

bool InsightEnabled(const std::string& spec) { return !spec.empty() && spec != "off"; }

namespace {

// clickhouse://h:p[,h:p][?k=v&k=v] -> options.
Status ParseClickHouse(const std::string& spec, insight::ClickHouseOptions* o) {
  std::string rest = spec.substr(std::string("clickhouse://").size());
  std::string query;
  if (size_t q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::stringstream hosts(rest);
  for (std::string h; std::getline(hosts, h, ',');) {
    if (h.empty() || h.find('/') != std::string::npos || h.find('@') != std::string::npos) {
      return Status::InvalidArgument("--insight: bad ClickHouse host '" + h + "' (want host:port)");
    }
    o->urls.push_back("http://" + h);
  }
  if (o->urls.empty()) return Status::InvalidArgument("--insight: no ClickHouse host");
  std::stringstream params(query);
  for (std::string kv; std::getline(params, kv, '&');) {
    size_t eq = kv.find('=');
    std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (k == "cluster") {
      o->cluster = v;
    } else if (k == "database") {
      o->database = v;
    } else if (k == "user") {
      o->user = v;
    } else if (!k.empty()) {
      return Status::InvalidArgument("--insight: unknown ClickHouse parameter '" + k + "'");
    }
  }
  if (o->urls.size() > 1 && o->cluster.empty()) {
    return Status::InvalidArgument("--insight: several ClickHouse shards need ?cluster=NAME");
  }
  if (const char* pw = std::getenv("FERRY_INSIGHT_CLICKHOUSE_PASSWORD"); pw != nullptr) {
    std::string_view p(pw);
    o->password = base::SecretBytes(reinterpret_cast<const uint8_t*>(p.data()), p.size());
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<insight::Insight>> OpenInsight(const InsightSetup& setup) {
  insight::Insight::Options options;
  if (!setup.config_file.empty()) {
    std::ifstream in(setup.config_file);
    if (!in) return Status::InvalidArgument("cannot read the insight configuration " + setup.config_file);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded()) return Status::InvalidArgument("the insight configuration is not JSON");
    auto c = insight::InsightConfig::FromJson(j);
    if (!c.ok()) return c.status();
    options.config = std::move(c).value();
  }
  options.privacy = setup.privacy;
  options.audit = setup.audit;
  options.log = setup.log;
  std::unique_ptr<insight::Engine> engine;
  if (setup.spec == "embedded") {
    auto key = platform::LoadOrCreateKey(setup.data_dir + "/insight.key");
    if (!key.ok()) return key.status();
    auto e = insight::EmbeddedEngine::Open(setup.data_dir + "/insight.db", *key);
    if (!e.ok()) return e.status();
    engine = std::move(e).value();
  } else if (setup.spec.rfind("clickhouse://", 0) == 0) {
    insight::ClickHouseOptions o;
    FERRY_RETURN_IF_ERROR(ParseClickHouse(setup.spec, &o));
    o.log = setup.log;
    auto e = insight::ClickHouseEngine::Open(std::move(o));
    if (!e.ok()) return e.status();
    engine = std::move(e).value();
  } else {
    return Status::InvalidArgument("--insight: want off, embedded or clickhouse://host:port[,...]");
  }
  return insight::Insight::Open(std::move(options), std::move(engine));
}

}  // namespace ferry::collector::analysis
