// ferryctl commands over the collector's admin API (HTTPS with libcurl): subject, requests, audit.
#ifndef FERRY_COLLECTOR_FERRYCTL_REMOTE_H_
#define FERRY_COLLECTOR_FERRYCTL_REMOTE_H_

#include <CLI/CLI.hpp>

#include "collector/ferryctl/offline.h"

namespace ferry::collector::ctl {

// Adds `subject ...`, `requests ...` and `audit ...`. Each command sets *exit_code when it ran: kExitOk, or the
// ExitCode of its failure (exit_codes.h) with one line on stderr.
void AddAdminCommands(CLI::App& app, Globals& g, int* exit_code);

}  // namespace ferry::collector::ctl

#endif  // FERRY_COLLECTOR_FERRYCTL_REMOTE_H_
