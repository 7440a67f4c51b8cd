// ferryctl commands that work offline on a collector's data directory (bootstrap, debugging).
#ifndef FERRY_COLLECTOR_FERRYCTL_OFFLINE_H_
#define FERRY_COLLECTOR_FERRYCTL_OFFLINE_H_

#include <string>

#include <CLI/CLI.hpp>

namespace ferry::collector::ctl {

// Options shared by every subcommand (set on the top-level app).
struct Globals {
  std::string data_dir;            // offline commands
  std::string key_file;            // store key (default DIR/collector.key)
  std::string storage = "sqlite";  // offline commands: "sqlite" (in data_dir) or a postgresql:// URI
  std::string url;                 // admin API commands (next: subject, requests, audit)
  std::string token;               // --token (visible in the process list: prefer the next two)
  std::string token_file;          // --token-file: a file holding the token (no group/other permissions)
  std::string ca_file;
  bool json = false;
};

// Adds `keys ...` and `debug ...` to the app. Each command sets *exit_code when it ran.
void AddOfflineCommands(CLI::App& app, Globals& g, int* exit_code);

}  // namespace ferry::collector::ctl

#endif  // FERRY_COLLECTOR_FERRYCTL_OFFLINE_H_
