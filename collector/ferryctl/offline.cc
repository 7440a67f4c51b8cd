#include "collector/ferryctl/offline.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/engines/open_store.h"
#include "collector/ferryctl/exit_codes.h"
#include "collector/rights/rights_service.h"

namespace ferry::collector::ctl {

namespace {

// The store, or null after one line on stderr and *exit_code set for the reason.
std::unique_ptr<Store> OpenOrSay(const Globals& g, int* exit_code) {
  StoreConfig cfg;
  cfg.storage = g.storage;
  cfg.data_dir = g.data_dir;
  cfg.key_file = g.key_file;
  if (!IsPostgresStorage(cfg.storage) && g.data_dir.empty()) {
    std::fprintf(stderr, "ferryctl: --data-dir (or --storage postgresql://...) is required for this command\n");
    *exit_code = kExitUsage;
    return nullptr;
  }
  auto store = MakeStore(cfg);
  if (!store.ok()) {
    std::string where = IsPostgresStorage(cfg.storage) ? RedactStorage(cfg.storage) : g.data_dir;
    std::fprintf(stderr, "ferryctl: cannot open the store %s: %s\n", where.c_str(), store.status().ToString().c_str());
    *exit_code = ExitForCode(store.status().code());
    return nullptr;
  }
  return std::move(store).value();
}

// Who runs this ferryctl: the OS user of the effective uid (its name, else "uid N").
rights::Actor OsActor() {
  std::string user = "uid " + std::to_string(geteuid());
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
      found->pw_name != nullptr) {
    user = found->pw_name;
  }
  return rights::Actor{"os:" + user + " (ferryctl offline)", "", user};
}

// The store for an offline command, once the command is in its audit log: one row (actor: the OS user; action
// "offline.<command words joined by dots>"; detail {"command", "args"} — the command's own arguments, never the
// store's address or key) appended before the command acts, so a direct read of the store (a full event dump) is
// as visible to `audit list` as an admin call. Null (and nothing done) when the store cannot be opened or the row
// cannot be written.
std::unique_ptr<Store> OpenAudited(const Globals& g, int* exit_code, const std::string& command,
                                   const nlohmann::json& args) {
  auto store = OpenOrSay(g, exit_code);
  if (!store) return nullptr;
  rights::RightsService service(rights::StoresOf(store.get()), base::SystemClock(), rights::RightsOptions(),
                                base::Logger());
  std::string action = "offline." + command;
  for (char& c : action) c = c == ' ' ? '.' : c;
  nlohmann::json detail = {{"command", command}, {"args", args}};
  if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0') detail["sudoUser"] = sudo;
  base::Status audited = service.RecordAudit(OsActor(), action, "", "started", detail.dump());
  if (!audited.ok()) {
    std::fprintf(stderr, "ferryctl: nothing done: %s\n", audited.ToString().c_str());
    *exit_code = ExitForCode(audited.code());
    return nullptr;
  }
  return store;
}

// The exit code of a project setting's change (an unknown project is said and gives kExitNotFound).
int ProjectSettingExit(const base::Result<bool>& ok, const std::string& project) {
  if (ok.ok() && ok.value()) return kExitOk;
  std::fprintf(stderr, "ferryctl: %s\n",
               ok.ok() ? ("no project named " + project).c_str() : ok.status().ToString().c_str());
  return ok.ok() ? kExitNotFound : ExitForCode(ok.status().code());
}

}  // namespace

void AddOfflineCommands(CLI::App& app, Globals& g, int* exit_code) {
  CLI::App* keys = app.add_subcommand("keys", "Create write keys (offline, on --data-dir)");
  keys->require_subcommand(1);
  // A write key ships in apps; a server key is for the app's backend (it may merge userIds: docs/SECURITY.md).
  for (bool server : {false, true}) {
    auto project = std::make_shared<std::string>();
    CLI::App* cwk =
        keys->add_subcommand(server ? "create-server-key" : "create-write-key",
                             server ? "Create a server key (the app's backend) for a project; prints it once"
                                    : "Create a write key for a project; prints it once");
    cwk->add_option("--project", *project, "Project name (created if new)")->required();
    cwk->callback([&g, project, exit_code, server] {
      *exit_code = kExitFailure;
      auto store = OpenAudited(g, exit_code, server ? "keys create-server-key" : "keys create-write-key",
                               {{"project", *project}});
      if (!store) return;
      auto key = server ? store->CreateServerKey(*project) : store->CreateWriteKey(*project);
      if (!key.ok()) {
        std::fprintf(stderr, "ferryctl: %s\n", key.status().ToString().c_str());
        *exit_code = ExitForCode(key.status().code());
        return;
      }
      if (g.json) {
        std::printf("%s\n",
                    nlohmann::json{{"project", *project}, {server ? "serverKey" : "writeKey", *key}}.dump().c_str());
      } else {
        std::printf("%s\n", key->c_str());
      }
      *exit_code = kExitOk;
    });
  }

  auto roles = std::make_shared<std::vector<std::string>>();
  auto token_name = std::make_shared<std::string>();
  CLI::App* cat = keys->add_subcommand("create-admin-token", "Create an admin token with roles; prints it once");
  cat->add_option("--roles", *roles, "compliance, operator and/or analyst (comma-separated)")
      ->required()
      ->delimiter(',');
  cat->add_option("--name", *token_name, "Who holds it (shown in the audit log)");
  cat->callback([&g, roles, token_name, exit_code] {
    *exit_code = kExitFailure;
    auto store = OpenAudited(g, exit_code, "keys create-admin-token", {{"roles", *roles}, {"name", *token_name}});
    if (!store) return;
    // Through the rights service: the token and its audit entry are stored together or not at all.
    rights::RightsService service(rights::StoresOf(store.get()), base::SystemClock(), rights::RightsOptions(),
                                  base::Logger());
    auto token = service.CreateAdminToken(OsActor(), *token_name, *roles);
    if (!token.ok()) {
      std::fprintf(stderr, "ferryctl: %s\n", token.status().message().c_str());
      *exit_code = ExitForCode(token.status().code());
      return;
    }
    if (g.json) {
      std::printf("%s\n", nlohmann::json{{"token", *token}, {"roles", *roles}}.dump().c_str());
    } else {
      std::printf("%s\n", token->c_str());
    }
    *exit_code = kExitOk;
  });

  CLI::App* projects = app.add_subcommand("projects", "Project settings (offline, on --data-dir)");
  projects->require_subcommand(1);
  auto days = std::make_shared<double>(0);
  auto rproject = std::make_shared<std::string>();
  CLI::App* ret = projects->add_subcommand("set-retention", "Maximum event age of a project (0: the default)");
  ret->add_option("--project", *rproject, "Project name")->required();
  ret->add_option("--days", *days, "Days (fractions allowed); 0 = the collector's --retention-days")->required();
  ret->callback([&g, rproject, days, exit_code] {
    *exit_code = kExitFailure;
    auto store = OpenAudited(g, exit_code, "projects set-retention", {{"project", *rproject}, {"days", *days}});
    if (!store) return;
    auto ok = store->SetRetention(*rproject, static_cast<int64_t>(*days * 24 * 3600 * 1000));
    *exit_code = ProjectSettingExit(ok, *rproject);
  });

  auto keep_days = std::make_shared<double>(-1);
  CLI::App* keep = projects->add_subcommand(
      "set-consent-keep", "Days a project keeps consent records beyond the newest event they covered");
  keep->add_option("--project", *rproject, "Project name")->required();
  keep->add_option("--days", *keep_days,
                   "Days (fractions allowed; 0: as long as an event needs them); -1 = the "
                   "collector's --consent-keep-days")
      ->required();
  keep->callback([&g, rproject, keep_days, exit_code] {
    *exit_code = kExitFailure;
    auto store = OpenOrSay(g, exit_code);
    if (!store) return;
    int64_t keep_ms = *keep_days < 0 ? -1 : static_cast<int64_t>(*keep_days * 24 * 3600 * 1000);
    auto ok = store->SetConsentKeep(*rproject, keep_ms);
    *exit_code = ProjectSettingExit(ok, *rproject);
  });

  auto mode = std::make_shared<std::string>();
  auto necessary = std::make_shared<std::vector<std::string>>();
  CLI::App* cons = projects->add_subcommand("set-consent", "Consent enforcement at ingest for a project");
  cons->add_option("--project", *rproject, "Project name")->required();
  cons->add_option("--mode", *mode, "enforce (refuse events without consent) or report-only (store and count them)")
      ->required()
      ->check(CLI::IsMember({"enforce", "report-only"}));
  cons->add_option("--necessary", *necessary, "An event name allowed under purpose necessary; repeatable");
  cons->callback([&g, rproject, mode, necessary, exit_code] {
    *exit_code = kExitFailure;
    auto store = OpenAudited(g, exit_code, "projects set-consent",
                             {{"project", *rproject}, {"mode", *mode}, {"necessary", *necessary}});
    if (!store) return;
    ConsentPolicy policy;
    policy.mode = *mode;
    policy.necessary.insert(necessary->begin(), necessary->end());
    auto ok = store->SetConsentPolicy(*rproject, policy);
    *exit_code = ProjectSettingExit(ok, *rproject);
  });

  auto wpurpose = std::make_shared<std::string>();
  auto waction = std::make_shared<std::string>();
  CLI::App* wd = projects->add_subcommand(
      "set-withdrawal", "What a denial does to the person's stored events of its purpose (default: erase)");
  wd->add_option("--project", *rproject, "Project name")->required();
  wd->add_option("--purpose", *wpurpose, "The purpose (analytics, marketing, ...)")->required();
  wd->add_option("--action", *waction, "erase (delete them) or restrict (keep them out of every export and analytics)")
      ->required()
      ->check(CLI::IsMember({kWithdrawErase, kWithdrawRestrict}));
  wd->callback([&g, rproject, wpurpose, waction, exit_code] {
    *exit_code = kExitFailure;
    auto store = OpenAudited(g, exit_code, "projects set-withdrawal",
                             {{"project", *rproject}, {"purpose", *wpurpose}, {"action", *waction}});
    if (!store) return;
    auto ok = store->SetWithdrawalAction(*rproject, *wpurpose, *waction);
    *exit_code = ProjectSettingExit(ok, *rproject);
  });

  CLI::App* debug = app.add_subcommand("debug", "Inspect the store (offline, on --data-dir)");
  debug->require_subcommand(1);
  auto dump_project = std::make_shared<std::string>();
  CLI::App* dump = debug->add_subcommand("dump-events", "Print stored events, one JSON object a line");
  dump->add_option("--project", *dump_project, "Only this project");
  dump->callback([&g, dump_project, exit_code] {
    *exit_code = kExitFailure;
    auto store = OpenAudited(g, exit_code, "debug dump-events", {{"project", *dump_project}});
    if (!store) return;
    auto rows = store->DumpEvents(*dump_project);
    if (!rows.ok()) {
      std::fprintf(stderr, "ferryctl: %s\n", rows.status().ToString().c_str());
      *exit_code = ExitForCode(rows.status().code());
      return;
    }
    for (const EventRow& r : *rows) {
      if (g.json) {
        nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
        nlohmann::json line = {{"project", r.project},
                               {"messageId", r.message_id},
                               {"type", r.type},
                               {"userId", r.user_id},
                               {"anonymousId", r.anonymous_id},
                               {"name", r.name},
                               {"purpose", r.purpose},
                               {"timestampMs", r.timestamp_ms},
                               {"receivedMs", r.received_ms},
                               {"coveredBy", r.covered_by},
                               {"body", body.is_discarded() ? nlohmann::json(r.body) : body}};
        std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      } else {
        std::printf("%s\t%s\t%s\t%s\n", r.project.c_str(), r.message_id.c_str(), r.type.c_str(), r.body.c_str());
      }
    }
    *exit_code = kExitOk;
  });
}

}  // namespace ferry::collector::ctl
