// ferryctl: the compliance officer's and operator's command line (see docs/COLLECTOR.md).
// Offline commands (keys, debug) work on a data directory; admin API commands (subject, requests, audit) use
// --url/--token/--ca-file and are added next to AddOfflineCommands.
#include <sys/stat.h>

#include <CLI/CLI.hpp>

#include "collector/ferryctl/exit_codes.h"
#include "collector/ferryctl/offline.h"
#include "collector/ferryctl/remote.h"

int main(int argc, char** argv) {
  umask(077);  // the store and its key are for the owner only
  CLI::App app{"ferryctl: manage a Ferry collector: keys, data subjects, the request register, the audit log."};
  ferry::collector::ctl::Globals g;
  app.add_option("--data-dir", g.data_dir, "Collector data directory (offline commands)");
  app.add_option("--key-file", g.key_file, "Store key file (default DATA_DIR/collector.key)");
  app.add_option("--storage", g.storage,
                 "Store of the offline commands: sqlite (in --data-dir, default) or a postgresql:// URI");
  // The connection options can come from the environment, so a session sets them once (and the token stays out of
  // the process list).
  app.add_option("--url", g.url, "Collector admin URL, e.g. https://127.0.0.1:8443 (admin API commands)")
      ->envname("FERRY_URL");
  app.add_option("--token", g.token,
                 "Admin token (admin API commands); prefer --token-file or FERRY_TOKEN: argv is visible to other users")
      ->envname("FERRY_TOKEN");
  app.add_option("--token-file", g.token_file,
                 "File holding the admin token (mode 0600 or 0400; default: the FERRY_TOKEN or FERRY_ADMIN_TOKEN "
                 "environment variable)");
  app.add_option("--ca-file", g.ca_file, "CA certificate to verify the collector (admin API commands)")
      ->envname("FERRY_CA_FILE");
  app.add_flag("--json", g.json, "Machine-readable output");
  app.require_subcommand(1);
  app.set_version_flag("--version", "ferryctl " FERRY_PROJECT_VERSION);
  app.fallthrough();  // global options are accepted after the subcommand too (ferryctl keys ... --json)
  int exit_code = 0;
  ferry::collector::ctl::AddOfflineCommands(app, g, &exit_code);
  ferry::collector::ctl::AddAdminCommands(app, g, &exit_code);
  ferry::collector::ctl::AddInsightCommands(app, g, &exit_code);
  ferry::collector::ctl::AddRegistryCommands(app, g, &exit_code);
  ferry::collector::ctl::AddOutboxCommands(app, g, &exit_code);
  ferry::collector::ctl::AddConsentCommands(app, g, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every command-line mistake exits kExitUsage (CLI11's own codes are 100-114).
    return app.exit(e) == 0 ? ferry::collector::ctl::kExitOk : ferry::collector::ctl::kExitUsage;
  }
  return exit_code;
}
