// ferryctl: the compliance officer's and operator's command line (see docs/COLLECTOR.md).
// Offline commands (keys, debug) work on a data directory; admin API commands (subject, requests, audit) use
// --url/--token/--ca-file and are added next to AddOfflineCommands.
#include <sys/stat.h>

#include <CLI/CLI.hpp>

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
  app.add_option("--url", g.url, "Collector admin URL, e.g. https://127.0.0.1:8443 (admin API commands)");
  app.add_option("--token", g.token,
                 "Admin token (admin API commands); prefer --token-file or FERRY_ADMIN_TOKEN: argv is visible to "
                 "other users");
  app.add_option("--token-file", g.token_file,
                 "File holding the admin token (mode 0600 or 0400; default: the FERRY_ADMIN_TOKEN environment "
                 "variable)");
  app.add_option("--ca-file", g.ca_file, "CA certificate to verify the collector (admin API commands)");
  app.add_flag("--json", g.json, "Machine-readable output");
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the subcommand too (ferryctl keys ... --json)
  int exit_code = 0;
  ferry::collector::ctl::AddOfflineCommands(app, g, &exit_code);
  ferry::collector::ctl::AddAdminCommands(app, g, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
