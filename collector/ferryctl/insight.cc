// ferryctl insight ...: the operations insight's questions (docs/INSIGHT.md) over the admin API
// (GET /v1/insight/..., POST /v1/insight/audiences; an analyst token). --json prints the collector's answer.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "collector/ferryctl/remote.h"

namespace ferry::collector::ctl {

namespace {

using nlohmann::json;

struct Params {
  std::string project, as_of, person, granularity, from, to, split, steps, tag, stage, name;
  int periods = 0, window_days = 0, min_churn_risk = -1;
  int64_t window_seconds = 0;
};

std::string Text(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

void Print(const json& j) { std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str()); }

void PrintRetention(const json& t) {
  std::printf("retention by %s, %s periods, cohorts %s .. %s (as of %s; groups under %s persons suppressed)\n",
              Text(t["granularity"]).c_str(), Text(t["periods"]).c_str(), Text(t["from"]).c_str(),
              Text(t["to"]).c_str(), Text(t["asOf"]).c_str(), Text(t["minCohortSize"]).c_str());
  for (const auto& row : t["rows"]) {
    std::string split;
    for (const auto& [k, v] : row["split"].items()) split += " " + k + "=" + (v == "" ? "(none)" : Text(v));
    if (row.value("suppressed", false)) {
      std::printf("%s%s  (suppressed)\n", Text(row["cohort"]).c_str(), split.c_str());
      continue;
    }
    std::string cells;
    int64_t size = row.value("size", 0);
    for (const auto& c : row["counts"]) {
      char buf[32];
      if (c.is_null()) {
        std::snprintf(buf, sizeof buf, "%7s", "-");
      } else {
        std::snprintf(buf, sizeof buf, "%6.0f%%", size > 0 ? 100.0 * c.get<double>() / size : 0.0);
      }
      cells += buf;
    }
    std::printf("%s%s  size %5lld  converted %5s %s\n", Text(row["cohort"]).c_str(), split.c_str(),
                static_cast<long long>(size), Text(row["converted"]).c_str(), cells.c_str());
  }
}

void PrintTags(const json& tags) {
  for (const auto& t : tags) std::printf("  tag %s: %s\n", Text(t["tag"]).c_str(), Text(t["reason"]).c_str());
}

void PrintProfile(const json& p) {
  std::printf("person %s (project %s, as of %s)\n", Text(p["person"]).c_str(), Text(p["project"]).c_str(),
              Text(p["asOf"]).c_str());
  std::printf("  events %s  active days %s  sessions %s  channels %s  source %s  campaign %s\n",
              Text(p["events"]).c_str(), Text(p["activeDays"]).c_str(), Text(p["sessions"]).c_str(),
              Text(p["channels"]).c_str(), Text(p["source"]).c_str(), Text(p["campaign"]).c_str());
  if (!p.value("personalized", false)) {
    std::printf("  judgements withheld: %s\n", Text(p["withheld"]).c_str());
    return;
  }
  std::printf("  lifecycle %s: %s\n", Text(p["lifecycle"]["stage"]).c_str(), Text(p["lifecycle"]["reason"]).c_str());
  if (p["rfm"].is_object()) std::printf("  rfm %s\n", Text(p["rfm"]["code"]).c_str());
  PrintTags(p["tags"]);
  std::printf("  churn risk %s\n", Text(p["churn"]["score"]).c_str());
  for (const auto& f : p["churn"]["factors"]) std::printf("    %s\n", Text(f["text"]).c_str());
}

std::string Query(const Params& p, const std::vector<std::pair<const char*, std::string>>& more) {
  std::string q = "?project=" + UrlEscape(p.project);
  if (!p.as_of.empty()) q += "&as_of=" + UrlEscape(p.as_of);
  for (const auto& [k, v] : more) {
    if (!v.empty()) q += std::string("&") + k + "=" + UrlEscape(v);
  }
  return q;
}

std::string Num(int64_t v) { return v > 0 ? std::to_string(v) : std::string(); }

}  // namespace

void AddInsightCommands(CLI::App& app, Globals& g, int* exit_code) {
  CLI::App* in = app.add_subcommand("insight",
                                    "Operations insight: profiles, retention, funnels, RFM, lifecycle, "
                                    "tags, churn risk, audiences (admin API, analyst role)");
  in->require_subcommand(1);
  auto p = std::make_shared<Params>();
  auto common = [p](CLI::App* c) {
    c->add_option("--project", p->project, "Project")->required();
    c->add_option("--as-of", p->as_of, "Day the question is asked as of (YYYY-MM-DD; default today)");
  };
  // Runs one call and prints its answer (printer for people, or JSON).
  auto run = [&g, exit_code](const std::string& method, const std::string& path, const std::string& body,
                             void (*printer)(const json&)) {
    *exit_code = 1;
    std::string answer;
    if (!AdminCall(g, method, path, body, &answer, exit_code)) return;
    json doc = json::parse(answer, nullptr, false);
    if (doc.is_discarded()) return (void)std::fprintf(stderr, "ferryctl: the collector's answer is not JSON\n");
    (g.json || printer == nullptr) ? Print(doc) : printer(doc);
    *exit_code = 0;
  };

  CLI::App* profile = in->add_subcommand("profile", "A person's unified profile, tags with reasons, churn risk");
  profile->add_option("PERSON", p->person, "The person (userId, or anonymousId without one)")->required();
  common(profile);
  profile->callback([p, run] {
    run("GET", "/v1/insight/profile" + Query(*p, {{"person", p->person}}), "", PrintProfile);
  });

  CLI::App* retention = in->add_subcommand("retention", "Retention cohorts by first-seen day or week");
  common(retention);
  retention->add_option("--granularity", p->granularity, "day or week (default week)");
  retention->add_option("--periods", p->periods, "Periods shown (default 12)");
  retention->add_option("--from", p->from, "First cohort day (YYYY-MM-DD)");
  retention->add_option("--to", p->to, "Last cohort day (YYYY-MM-DD)");
  retention->add_option("--split", p->split, "none, source, campaign or source_campaign");
  retention->callback([p, run] {
    run("GET",
        "/v1/insight/retention" + Query(*p, {{"granularity", p->granularity},
                                             {"periods", Num(p->periods)},
                                             {"from", p->from},
                                             {"to", p->to},
                                             {"split", p->split}}),
        "", PrintRetention);
  });

  CLI::App* funnel = in->add_subcommand("funnel", "Conversion between named events within a window");
  common(funnel);
  funnel->add_option("--steps", p->steps, "Event names, comma-separated")->required();
  funnel->add_option("--window-seconds", p->window_seconds, "Longest time from the first step to the last");
  funnel->add_option("--from", p->from, "First entry day (YYYY-MM-DD)");
  funnel->add_option("--to", p->to, "Last entry day (YYYY-MM-DD)");
  funnel->add_option("--split", p->split, "none, source, campaign or source_campaign");
  funnel->callback([p, run] {
    run("GET",
        "/v1/insight/funnel" + Query(*p, {{"steps", p->steps},
                                          {"window_seconds", Num(p->window_seconds)},
                                          {"from", p->from},
                                          {"to", p->to},
                                          {"split", p->split}}),
        "", nullptr);
  });

  CLI::App* rfm = in->add_subcommand("rfm", "RFM scores extended with behaviour");
  common(rfm);
  rfm->add_option("--window-days", p->window_days, "RFM window in days");
  rfm->callback([p, run] {
    run("GET", "/v1/insight/rfm" + Query(*p, {{"window_days", Num(p->window_days)}}), "", nullptr);
  });

  CLI::App* lifecycle = in->add_subcommand("lifecycle", "Lifecycle stages with their reasons");
  common(lifecycle);
  lifecycle->callback([p, run] { run("GET", "/v1/insight/lifecycle" + Query(*p, {}), "", nullptr); });

  CLI::App* tags = in->add_subcommand("tags", "Rule tags that apply, with the reason for each");
  common(tags);
  tags->add_option("--person", p->person, "Only this person");
  tags->callback([p, run] {
    run("GET", "/v1/insight/tags" + Query(*p, {{"person", p->person}}), "", [](const json& doc) {
      for (const auto& person : doc["persons"]) {
        std::printf("%s\n", Text(person["person"]).c_str());
        PrintTags(person["tags"]);
      }
    });
  });

  CLI::App* churn = in->add_subcommand("churn", "Churn risk per person with its main factors");
  common(churn);
  churn->callback([p, run] { run("GET", "/v1/insight/churn" + Query(*p, {}), "", nullptr); });

  CLI::App* audience = in->add_subcommand("audience", "Export an audience (ids and reasons) for outreach; audited");
  common(audience);
  audience->add_option("--name", p->name, "The audience's name (audit log)")->required();
  audience->add_option("--tag", p->tag, "Persons with this tag");
  audience->add_option("--stage", p->stage, "Persons in this lifecycle stage");
  audience->add_option("--min-churn-risk", p->min_churn_risk, "Persons with at least this churn risk (0-100)");
  audience->callback([p, run] {
    json body = {{"project", p->project}, {"name", p->name}};
    if (!p->as_of.empty()) body["as_of"] = p->as_of;
    if (!p->tag.empty()) body["tag"] = p->tag;
    if (!p->stage.empty()) body["stage"] = p->stage;
    if (p->min_churn_risk >= 0) body["min_churn_risk"] = p->min_churn_risk;
    run("POST", "/v1/insight/audiences", body.dump(), [](const json& doc) {
      std::printf(
          "audience %s: %zu persons (matched %s; without personalization consent %s, without marketing "
          "consent %s)\n",
          Text(doc["name"]).c_str(), doc["members"].size(), Text(doc["matched"]).c_str(),
          Text(doc["skippedNoPersonalization"]).c_str(), Text(doc["skippedNoMarketing"]).c_str());
      for (const auto& m : doc["members"])
        std::printf("%s\t%s\n", Text(m["person"]).c_str(), Text(m["reason"]).c_str());
    });
  });
}

}  // namespace ferry::collector::ctl
