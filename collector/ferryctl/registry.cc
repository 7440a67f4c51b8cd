// ferryctl registry ...: the purpose and processing registry over the admin API (docs/COMPLIANCE.md "Purpose and
// processing registry"): show it, replace it from a JSON file, and render the records of processing (GDPR art. 30)
// or the inputs of an impact assessment (DPIA / PIPL PIA) as HTML, Markdown or JSON.
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "collector/ferryctl/exit_codes.h"
#include "collector/ferryctl/remote.h"

namespace ferry::collector::ctl {

namespace {

using nlohmann::json;

void PrintRegistry(const json& doc) {
  const json& reg = doc.value("registry", json::object());
  std::printf("project %s  updated %s  purposes %zu\n", Text(doc, "project").c_str(), Text(doc, "updatedAt").c_str(),
              reg.value("purposes", json::array()).size());
  for (const auto& p : reg.value("purposes", json::array())) {
    std::printf("  %-20s %-22s retention %-6s %s\n", Text(p, "id").c_str(), Text(p, "legalBasis").c_str(),
                p.contains("retentionDays") ? (Text(p, "retentionDays") + "d").c_str() : "-",
                Text(p, "description").c_str());
  }
}

// Writes `text` to `path` ("" or "-": stdout). false after a line on stderr.
bool WriteOut(const std::string& path, const std::string& text, int* exit_code) {
  if (path.empty() || path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return true;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) {
    std::fprintf(stderr, "ferryctl: cannot write %s\n", path.c_str());
    *exit_code = kExitFailure;
    return false;
  }
  std::fprintf(stderr, "ferryctl: written to %s\n", path.c_str());
  return true;
}

}  // namespace

void AddRegistryCommands(CLI::App& app, Globals& g, int* exit_code) {
  CLI::App* registry =
      app.add_subcommand("registry", "The purpose and processing registry: show, set, records, impact (admin API)");
  registry->require_subcommand(1);
  auto project = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("md");
  auto output = std::make_shared<std::string>();
  auto path = [project](const std::string& tail) { return "/v1/projects/" + UrlEscape(*project) + "/registry" + tail; };

  CLI::App* show = registry->add_subcommand("show", "The project's purposes (compliance or operator)");
  show->add_option("--project", *project, "The project")->required();
  show->callback([&g, path, exit_code] {
    std::string answer;
    if (!AdminCall(g, "GET", path(""), "", &answer, exit_code)) return;
    json doc = json::parse(answer, nullptr, false);
    if (g.json || doc.is_discarded()) return (void)std::printf("%s\n", answer.c_str());
    PrintRegistry(doc);
  });

  CLI::App* set = registry->add_subcommand("set", "Replace the project's registry with a JSON file (compliance)");
  set->add_option("--project", *project, "The project")->required();
  set->add_option("--file,-f", *file, "The registry document (JSON; docs/COMPLIANCE.md)")->required();
  set->callback([&g, path, file, exit_code] {
    std::ifstream in(*file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "ferryctl: cannot read %s\n", file->c_str());
      *exit_code = kExitUsage;
      return;
    }
    std::stringstream body;
    body << in.rdbuf();
    std::string answer;
    if (!AdminCall(g, "PUT", path(""), body.str(), &answer, exit_code)) return;
    json doc = json::parse(answer, nullptr, false);
    if (g.json || doc.is_discarded()) return (void)std::printf("%s\n", answer.c_str());
    PrintRegistry(doc);
  });

  for (const char* view : {"records", "impact"}) {
    std::string name = view;
    CLI::App* c = registry->add_subcommand(
        name, name == "records" ? "Records of processing activities (GDPR art. 30)"
                                : "Inputs of an impact assessment (GDPR art. 35 DPIA, PIPL art. 55-56 PIA)");
    c->add_option("--project", *project, "The project")->required();
    c->add_option("--format", *format, "html, md or json (default md)")
        ->check(CLI::IsMember({"html", "md", "markdown", "json"}));
    c->add_option("--output,-o", *output, "Write to this file (default: stdout)");
    c->callback([&g, path, name, format, output, exit_code] {
      std::string answer;
      if (!AdminCall(g, "GET", path("/" + name + "?format=" + UrlEscape(*format)), "", &answer, exit_code)) return;
      WriteOut(*output, answer, exit_code);
    });
  }
}

}  // namespace ferry::collector::ctl
