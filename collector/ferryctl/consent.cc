// ferryctl consent ...: consent over the admin API (issue 12): `consent stats`, the opt-in and opt-out rates per
// purpose and notice version over time (GET /v1/projects/{project}/consent/stats; compliance or analyst).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "collector/ferryctl/remote.h"

namespace ferry::collector::ctl {

using nlohmann::json;

void AddConsentCommands(CLI::App& app, Globals& g, int* exit_code) {
  CLI::App* consent = app.add_subcommand("consent", "Consent figures (admin API, compliance or analyst)");
  consent->require_subcommand(1);
  auto project = std::make_shared<std::string>();
  auto bucket = std::make_shared<std::string>("day");
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  CLI::App* stats = consent->add_subcommand(
      "stats", "Opt-in and opt-out rates per purpose and notice version, per day or week (latest state per subject)");
  stats->add_option("--project", *project, "Project name")->required();
  stats->add_option("--bucket", *bucket, "day (default) or week")->check(CLI::IsMember({"day", "week"}));
  stats->add_option("--from", *from, "First day (YYYY-MM-DD) or time (ISO-8601); default: 30 days before --to");
  stats->add_option("--to", *to, "Last day, included (YYYY-MM-DD), or time (ISO-8601); default: today");
  stats->callback([&g, project, bucket, from, to, exit_code] {
    std::string path = "/v1/projects/" + UrlEscape(*project) + "/consent/stats?bucket=" + UrlEscape(*bucket);
    if (!from->empty()) path += "&from=" + UrlEscape(*from);
    if (!to->empty()) path += "&to=" + UrlEscape(*to);
    std::string answer;
    if (!AdminCall(g, "GET", path, "", &answer, exit_code)) return;
    json doc = json::parse(answer, nullptr, false);
    if (g.json || doc.is_discarded()) return (void)std::printf("%s\n", answer.c_str());
    std::printf("%-10s  %-16s  %-8s  %8s  %8s  %8s  %8s  %7s  %7s\n", "bucket", "purpose", "notice", "subjects",
                "granted", "denied", "pending", "opt-in", "opt-out");
    for (const json& r : doc.value("rows", json::array())) {
      std::printf("%-10s  %-16s  %-8s  %8s  %8s  %8s  %8s  %6.1f%%  %6.1f%%\n", Text(r, "bucket").c_str(),
                  Text(r, "purpose").c_str(), Text(r, "noticeVersion").c_str(), Text(r, "subjects").c_str(),
                  Text(r, "granted").c_str(), Text(r, "denied").c_str(), Text(r, "pending").c_str(),
                  r.value("optInRate", 0.0) * 100, r.value("optOutRate", 0.0) * 100);
    }
  });
}

}  // namespace ferry::collector::ctl
