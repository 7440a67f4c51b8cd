#include "collector/analysis/insight_api.h"

#include <cstdlib>
#include <sstream>

#include "collector/insight/normalize.h"

namespace ferry::collector::analysis {

namespace {

using base::Result;
using base::Status;
using nlohmann::json;

// The caller of the audience export under way on this thread (ApiAuditHook).
thread_local const rights::Actor* tl_actor = nullptr;
thread_local rights::RightsService* tl_rights = nullptr;

bool Has(const json& q, const char* key) {
  return q.is_object() && q.contains(key) && !q[key].is_null() &&
         !(q[key].is_string() && q[key].get_ref<const std::string&>().empty());
}

Result<std::string> Str(const json& q, const char* key, const std::string& dflt, bool required = false) {
  if (!Has(q, key)) {
    if (required) return Status::InvalidArgument(std::string("missing parameter '") + key + "'");
    return dflt;
  }
  if (!q[key].is_string()) return Status::InvalidArgument(std::string("parameter '") + key + "' must be a string");
  return q[key].get<std::string>();
}

Result<int64_t> Int(const json& q, const char* key, int64_t dflt, int64_t lo, int64_t hi) {
  if (!Has(q, key)) return dflt;
  int64_t v = 0;
  const json& j = q[key];
  if (j.is_number_integer()) {
    v = j.get<int64_t>();
  } else if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    char* end = nullptr;
    long long x = std::strtoll(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != '\0')
      return Status::InvalidArgument(std::string("parameter '") + key + "' must be an integer");
    v = x;
  } else {
    return Status::InvalidArgument(std::string("parameter '") + key + "' must be an integer");
  }
  if (v < lo || v > hi) {
    return Status::InvalidArgument(std::string("parameter '") + key + "' must be within " + std::to_string(lo) + ".." +
                                   std::to_string(hi));
  }
  return v;
}

// A day: "YYYY-MM-DD" or a day number; dflt when absent.
Result<int32_t> Day(const json& q, const char* key, int32_t dflt) {
  if (!Has(q, key)) return dflt;
  const json& j = q[key];
  if (j.is_string()) {
    int32_t d = insight::DateToDay(j.get<std::string>());
    if (d >= 0) return d;
  }
  auto n = Int(q, key, 0, 1, 200000);
  if (!n.ok()) return Status::InvalidArgument(std::string("parameter '") + key + "' must be YYYY-MM-DD");
  return static_cast<int32_t>(*n);
}

Result<insight::Split> SplitOf(const json& q) {
  auto s = Str(q, "split", "none");
  if (!s.ok()) return s.status();
  if (*s == "none") return insight::Split::kNone;
  if (*s == "source") return insight::Split::kSource;
  if (*s == "campaign") return insight::Split::kCampaign;
  if (*s == "source_campaign") return insight::Split::kSourceCampaign;
  return Status::InvalidArgument("split must be none, source, campaign or source_campaign");
}

std::string Date(int32_t day) { return insight::DayToDate(day); }

json CountsJson(const std::vector<int64_t>& counts) {
  json a = json::array();
  for (int64_t c : counts) a.push_back(c < 0 ? json(nullptr) : json(c));
  return a;
}

json TagsJson(const std::vector<insight::AppliedTag>& tags) {
  json a = json::array();
  for (const auto& t : tags) a.push_back({{"tag", t.name}, {"reason", t.reason}});
  return a;
}

json ChurnJson(const insight::ChurnRisk& c) {
  json f = json::array();
  for (const auto& x : c.factors) f.push_back({{"factor", x.name}, {"points", x.points}, {"text", x.text}});
  return {{"score", c.score}, {"factors", f}};
}

const char* kMetricNames[insight::kRfmMetricCount] = {"recency_days", "frequency",  "monetary_cents",
                                                      "active_days",  "depth_x100", "invites"};

json RfmRowJson(const insight::RfmRow& r) {
  json metrics = json::object(), scores = json::object();
  for (int m = 0; m < insight::kRfmMetricCount; ++m) {
    metrics[kMetricNames[m]] = r.metrics[m];
    scores[kMetricNames[m]] = r.scores[m];
  }
  return {{"person", r.person}, {"code", r.code}, {"metrics", metrics}, {"scores", scores}};
}

json ProfileJson(const insight::Profile& p) {
  json key_events = json::array();
  for (const auto& k : p.key_events)
    key_events.push_back({{"event", k.name}, {"count", k.count}, {"lastMs", k.last_ms}});
  json traits = json::object();
  for (const auto& [k, v] : p.traits) {
    json t = json::parse(v, nullptr, false);
    traits[k] = t.is_discarded() ? json(v) : t;
  }
  json out = {{"project", p.project},
              {"person", p.person},
              {"asOf", Date(p.as_of_day)},
              {"firstSeenMs", p.first_seen_ms},
              {"lastSeenMs", p.last_seen_ms},
              {"events", p.events},
              {"activeDays", p.active_days},
              {"sessions", p.sessions},
              {"channels", p.channels},
              {"source", p.source},
              {"campaign", p.campaign},
              {"keyEvents", key_events},
              {"traits", traits},
              {"personalized", p.personalized}};
  if (!p.personalized) {
    out["withheld"] = p.withheld_reason;
    return out;
  }
  out["lifecycle"] = {{"stage", p.lifecycle.stage}, {"reason", p.lifecycle.reason}};
  out["rfm"] = p.has_rfm ? RfmRowJson(p.rfm) : json(nullptr);
  out["tags"] = TagsJson(p.tags);
  out["churn"] = ChurnJson(p.churn);
  return out;
}

json SplitJson(const std::string& source, const std::string& campaign, insight::Split split) {
  json o = json::object();
  if (split == insight::Split::kSource || split == insight::Split::kSourceCampaign) o["source"] = source;
  if (split == insight::Split::kCampaign || split == insight::Split::kSourceCampaign) o["campaign"] = campaign;
  return o;
}

}  // namespace

std::optional<rights::Action> InsightApi::ActionOf(const std::string& op) {
  static const char* kReads[] = {"profile", "retention", "funnel", "rfm", "lifecycle", "tags", "churn"};
  for (const char* r : kReads) {
    if (op == r) return rights::Action::kInsightRead;
  }
  if (op == "audience") return rights::Action::kInsightAudience;
  return std::nullopt;
}

InsightAnswer InsightApi::Handle(const rights::Actor& actor, const std::string& op, const json& query) {
  InsightAnswer a;
  if (!ActionOf(op)) {
    a.status = Status::NotFound("unknown insight call '" + op + "'");
    return a;
  }
  std::string subject;
  json detail = json::object();
  auto body = Answer(actor, op, query, &subject, &detail);
  const std::string action = "insight." + op;
  if (!body.ok()) {
    (void)rights_->RecordAudit(actor, action, subject, "error", detail.dump());
    a.status = body.status();
    return a;
  }
  if (op != "audience") {  // an audience's entry was written (ApiAuditHook) before the export was returned
    Status audited = rights_->RecordAudit(actor, action, subject, "ok", detail.dump());
    if (!audited.ok()) {
      a.status = audited;
      return a;
    }
  }
  a.body = std::move(body).value();
  return a;
}

Result<json> InsightApi::Answer(const rights::Actor& actor, const std::string& op, const json& q, std::string* subject,
                                json* detail) {
  if (!q.is_object()) return Status::InvalidArgument("the query must be a JSON object");
  insight_->WaitForInput();  // the events accepted before the question are in its answer
  auto project = Str(q, "project", "", true);
  if (!project.ok()) return project.status();
  (*detail)["project"] = *project;
  auto as_of = Day(q, "as_of", 0);
  if (!as_of.ok()) return as_of.status();
  const int32_t today = *as_of > 0 ? *as_of : insight_->Today();
  (*detail)["asOf"] = Date(today);

  if (op == "profile") {
    auto person = Str(q, "person", "", true);
    if (!person.ok()) return person.status();
    *subject = *person;
    auto p = insight_->GetProfile(*project, *person, today);
    if (!p.ok()) return p.status();
    return ProfileJson(*p);
  }
  if (op == "retention") {
    insight::RetentionQuery r;
    r.project = *project;
    r.as_of_day = today;
    auto g = Str(q, "granularity", "week");
    if (!g.ok()) return g.status();
    if (*g != "day" && *g != "week") return Status::InvalidArgument("granularity must be day or week");
    r.granularity = *g == "day" ? insight::Granularity::kDay : insight::Granularity::kWeek;
    auto periods = Int(q, "periods", 12, 1, 60);
    if (!periods.ok()) return periods.status();
    r.periods = static_cast<int32_t>(*periods);
    int32_t span = r.granularity == insight::Granularity::kDay ? r.periods - 1 : 7 * r.periods - 1;
    auto from = Day(q, "from", today - span);
    auto to = Day(q, "to", today);
    auto split = SplitOf(q);
    if (!from.ok()) return from.status();
    if (!to.ok()) return to.status();
    if (!split.ok()) return split.status();
    r.from_day = *from;
    r.to_day = *to;
    r.split = *split;
    auto t = insight_->Retention(r);
    if (!t.ok()) return t.status();
    json rows = json::array();
    for (const auto& row : t->rows) {
      json o = {{"cohort", Date(row.cohort_start_day)}, {"split", SplitJson(row.source, row.campaign, r.split)}};
      if (row.suppressed) {
        o["suppressed"] = true;
      } else {
        o["size"] = row.size;
        o["counts"] = CountsJson(row.counts);
        o["converted"] = row.converted;
      }
      rows.push_back(std::move(o));
    }
    (*detail)["rows"] = t->rows.size();
    return json{{"granularity", *g},
                {"periods", r.periods},
                {"from", Date(r.from_day)},
                {"to", Date(r.to_day)},
                {"asOf", Date(today)},
                {"rows", rows},
                {"suppressedRows", t->suppressed_rows},
                {"minCohortSize", insight_->config().min_cohort_size}};
  }
  if (op == "funnel") {
    insight::FunnelQuery f;
    f.project = *project;
    f.as_of_day = today;
    if (Has(q, "steps") && q["steps"].is_array()) {
      for (const auto& s : q["steps"]) {
        if (!s.is_string()) return Status::InvalidArgument("steps must be event names");
        f.steps.push_back(s.get<std::string>());
      }
    } else {
      auto steps = Str(q, "steps", "", true);
      if (!steps.ok()) return steps.status();
      std::stringstream ss(*steps);
      for (std::string s; std::getline(ss, s, ',');) f.steps.push_back(s);
    }
    auto window = Int(q, "window_seconds", 86400, 1, 366LL * 86400);
    auto from = Day(q, "from", today - 29);
    auto to = Day(q, "to", today);
    auto split = SplitOf(q);
    if (!window.ok()) return window.status();
    if (!from.ok()) return from.status();
    if (!to.ok()) return to.status();
    if (!split.ok()) return split.status();
    f.window_seconds = *window;
    f.from_day = *from;
    f.to_day = *to;
    f.split = *split;
    auto rep = insight_->Funnel(f);
    if (!rep.ok()) return rep.status();
    json rows = json::array();
    for (const auto& row : rep->rows) {
      json o = {{"split", SplitJson(row.source, row.campaign, f.split)}};
      if (row.suppressed) {
        o["suppressed"] = true;
      } else {
        o["counts"] = CountsJson(row.counts);
      }
      rows.push_back(std::move(o));
    }
    return json{
        {"steps", f.steps}, {"windowSeconds", f.window_seconds},     {"from", Date(f.from_day)}, {"to", Date(f.to_day)},
        {"rows", rows},     {"suppressedRows", rep->suppressed_rows}};
  }
  if (op == "rfm") {
    insight::RfmQuery r;
    r.project = *project;
    r.as_of_day = today;
    auto w = Int(q, "window_days", 0, 0, 3660);
    auto ve = Str(q, "value_event", "");
    auto vp = Str(q, "value_prop", "");
    auto ie = Str(q, "invite_event", "");
    if (!w.ok()) return w.status();
    if (!ve.ok()) return ve.status();
    if (!vp.ok()) return vp.status();
    if (!ie.ok()) return ie.status();
    r.window_days = static_cast<int32_t>(*w);
    r.value_event = *ve;
    r.value_prop = *vp;
    r.invite_event = *ie;
    auto rep = insight_->Rfm(r);
    if (!rep.ok()) return rep.status();
    json rows = json::array();
    for (const auto& row : rep->rows) rows.push_back(RfmRowJson(row));
    json dist = json::object();
    for (size_t m = 0; m < rep->distribution.size() && m < insight::kRfmMetricCount; ++m) {
      dist[kMetricNames[m]] = CountsJson(rep->distribution[m]);
    }
    (*detail)["persons"] = rep->rows.size();
    return json{{"asOf", Date(today)}, {"suppressed", rep->suppressed}, {"population", rep->thresholds.population},
                {"persons", rows},     {"distribution", dist},          {"withheld", rep->withheld}};
  }
  if (op == "lifecycle") {
    auto rep = insight_->Lifecycle(*project, today);
    if (!rep.ok()) return rep.status();
    json counts = json::object();
    for (const auto& [stage, n] : rep->counts) counts[stage] = n < 0 ? json(nullptr) : json(n);
    json persons = json::array();
    for (const auto& [person, st] : rep->persons) {
      persons.push_back({{"person", person}, {"stage", st.stage}, {"reason", st.reason}});
    }
    (*detail)["persons"] = rep->persons.size();
    return json{{"asOf", Date(today)}, {"counts", counts}, {"persons", persons}, {"withheld", rep->withheld}};
  }
  if (op == "tags") {
    std::vector<std::string> persons;
    if (Has(q, "person")) {
      auto p = Str(q, "person", "");
      if (!p.ok()) return p.status();
      persons.push_back(*p);
      *subject = *p;
    }
    auto rep = insight_->Tags(*project, today, persons);
    if (!rep.ok()) return rep.status();
    json out = json::array();
    for (const auto& pt : *rep) out.push_back({{"person", pt.person}, {"tags", TagsJson(pt.tags)}});
    json defs = json::array();
    for (const auto& d : insight_->config().tags) {
      defs.push_back({{"name", d.value("name", "")}, {"description", d.value("description", "")}});
    }
    (*detail)["persons"] = out.size();
    return json{{"asOf", Date(today)}, {"definitions", defs}, {"persons", out}};
  }
  if (op == "churn") {
    auto rep = insight_->Churn(*project, today);
    if (!rep.ok()) return rep.status();
    json persons = json::array();
    for (const auto& [person, risk] : rep->persons) {
      json o = ChurnJson(risk);
      o["person"] = person;
      persons.push_back(std::move(o));
    }
    (*detail)["persons"] = persons.size();
    return json{{"asOf", Date(today)}, {"persons", persons}, {"withheld", rep->withheld}};
  }
  // audience
  insight::AudienceQuery a;
  a.project = *project;
  a.as_of_day = today;
  auto name = Str(q, "name", "", true);
  auto tag = Str(q, "tag", "");
  auto stage = Str(q, "stage", "");
  auto risk = Int(q, "min_churn_risk", -1, -1, 100);
  if (!name.ok()) return name.status();
  if (!tag.ok()) return tag.status();
  if (!stage.ok()) return stage.status();
  if (!risk.ok()) return risk.status();
  a.name = *name;
  a.tag = *tag;
  a.stage = *stage;
  a.min_churn_risk = static_cast<int>(*risk);
  (*detail)["name"] = a.name;
  tl_actor = &actor;
  tl_rights = rights_;
  auto aud = insight_->ExportAudience(a);
  tl_actor = nullptr;
  tl_rights = nullptr;
  if (!aud.ok()) return aud.status();
  json members = json::array();
  for (const auto& m : aud->members) members.push_back({{"person", m.person}, {"reason", m.reason}});
  return json{{"name", a.name},
              {"asOf", Date(today)},
              {"members", members},
              {"matched", aud->matched},
              {"skippedNoPersonalization", aud->skipped_no_personalization},
              {"skippedNoMarketing", aud->skipped_no_marketing}};
}

insight::AuditHook ApiAuditHook() {
  return [](const insight::AuditRecord& r) -> Status {
    if (tl_actor == nullptr || tl_rights == nullptr) {
      return Status::FailedPrecondition("audience exports are made through the admin API");
    }
    return tl_rights->RecordAudit(*tl_actor, "insight.audience", "", "ok", r.detail);
  };
}

}  // namespace ferry::collector::analysis
