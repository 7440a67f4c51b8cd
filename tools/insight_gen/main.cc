// ferry-insight-gen: writes a synthetic event stream (tools/insight_gen/generator.h) as newline-delimited JSON events
// in the collector's stored form, and optionally the users' ground truth. Deterministic for a seed.
//
//   ferry-insight-gen --users 1000 --days 120 --seed 7 > events.ndjson
//   ferry-insight-gen --users 100 --truth truth.ndjson --config > insight-config.json
#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "collector/insight/normalize.h"
#include "lib/base/time.h"
#include "tools/insight_gen/generator.h"

int main(int argc, char** argv) {
  ferry::insightgen::Options o;
  std::string start = "2026-01-01", truth_path;
  bool config = false;
  CLI::App app{"ferry-insight-gen: a synthetic, deterministic event stream for Ferry's insight (docs/INSIGHT.md)"};
  app.add_option("--users", o.users, "users to generate")->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  app.add_option("--first-user", o.first_user, "index of the first user (to generate a range)");
  app.add_option("--days", o.days, "days over which users arrive and act")->check(CLI::Range(1, 3660));
  app.add_option("--start", start, "first day, YYYY-MM-DD");
  app.add_option("--seed", o.seed, "random seed");
  app.add_option("--activity", o.activity, "scales sessions per day")->check(CLI::Range(0.01, 100.0));
  app.add_option("--duplicates", o.duplicate_rate, "share of events delivered twice")->check(CLI::Range(0.0, 1.0));
  app.add_option("--project", o.project, "project name");
  app.add_option("--truth", truth_path, "also write each user's ground truth (NDJSON) to this file");
  app.add_flag("--config", config, "print the insight configuration meant for the stream and exit");
  CLI11_PARSE(app, argc, argv);
  if (config) {
    std::cout << nlohmann::json::parse(ferry::insightgen::Generator::ConfigJson()).dump(2) << "\n";
    return 0;
  }
  o.start_day = ferry::insight::DateToDay(start);
  if (o.start_day < 0) {
    std::cerr << "ferry-insight-gen: --start must be YYYY-MM-DD\n";
    return 2;
  }
  std::ofstream truth;
  if (!truth_path.empty()) {
    truth.open(truth_path);
    if (!truth) {
      std::cerr << "ferry-insight-gen: cannot write " << truth_path << "\n";
      return 1;
    }
  }
  std::ios::sync_with_stdio(false);
  auto obj = [](const std::string& text) {
    if (text.empty()) return nlohmann::json::object();
    return nlohmann::json::parse(text, nullptr, false);
  };
  ferry::insightgen::Generator gen(o);
  gen.Run(
      [&](const ferry::insight::InsightEvent& e) {
        nlohmann::json j = {{"messageId", e.message_id},
                            {"type", e.type},
                            {"purpose", e.purpose},
                            {"timestamp", ferry::base::FormatIso8601(e.timestamp_ms)},
                            {"receivedAt", ferry::base::FormatIso8601(e.received_ms)},
                            {"context", obj(e.context)}};
        if (!e.user_id.empty()) j["userId"] = e.user_id;
        if (!e.anonymous_id.empty()) j["anonymousId"] = e.anonymous_id;
        if (e.type == "track") j["event"] = e.name;
        if (e.type == "screen") j["name"] = e.name;
        if (e.type == "identify") {
          j["traits"] = obj(e.traits);
        } else {
          j["properties"] = obj(e.properties);
        }
        std::cout << j.dump() << '\n';
      },
      [&](const ferry::insightgen::UserTruth& t) {
        if (!truth.is_open()) return;
        nlohmann::json j = {{"index", t.index},
                            {"userId", t.user_id},
                            {"anonymousId", t.anonymous_id},
                            {"source", t.source},
                            {"campaign", t.campaign},
                            {"primaryChannel", t.primary_channel},
                            {"firstDay", t.first_day},
                            {"signupDay", t.signup_day},
                            {"churnDay", t.churn_day},
                            {"returnDay", t.return_day},
                            {"personalization", t.personalization},
                            {"marketing", t.marketing},
                            {"events", t.events}};
        truth << j.dump() << '\n';
      });
  return std::cout ? 0 : 1;
}
