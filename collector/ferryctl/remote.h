// ferryctl commands over the collector's admin API (HTTPS with libcurl): subject, requests, audit.
#ifndef FERRY_COLLECTOR_FERRYCTL_REMOTE_H_
#define FERRY_COLLECTOR_FERRYCTL_REMOTE_H_

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "collector/ferryctl/offline.h"

namespace ferry::collector::ctl {

// Adds `subject ...`, `requests ...` and `audit ...`. Each command sets *exit_code when it ran: kExitOk, or the
// ExitCode of its failure (exit_codes.h) with one line on stderr.
void AddAdminCommands(CLI::App& app, Globals& g, int* exit_code);

// Adds `insight ...` (insight.cc): the operations insight's questions over the admin API (analyst role).
void AddInsightCommands(CLI::App& app, Globals& g, int* exit_code);

// Adds `registry ...` (registry.cc): the purpose and processing registry over the admin API.
void AddRegistryCommands(CLI::App& app, Globals& g, int* exit_code);
// Adds `outbox ...` (outbox.cc): the downstream outbox over the admin API.
void AddOutboxCommands(CLI::App& app, Globals& g, int* exit_code);
// Adds `consent ...` (consent.cc): consent statistics over the admin API.
void AddConsentCommands(CLI::App& app, Globals& g, int* exit_code);

// `subject erase --from-file` (bulk.cc): the ids of `file` erased over POST /v1/erasures, a bounded number a call.
void EraseFromFile(Globals& g, const std::string& file, const std::string& project, bool dry_run, bool force,
                   int* exit_code);

// One admin API call that must answer 200 (or 201): its body in *answer; false after one line on stderr saying why
// not (no --url/--token, unreachable, or the collector's error), with *exit_code set to the failure's kind
// (exit_codes.h).
bool AdminCall(Globals& g, const std::string& method, const std::string& path, const std::string& body,
               std::string* answer, int* exit_code);
// Member `k` of a JSON object as text: a string as is, another value as JSON, "-" when absent or null.
std::string Text(const nlohmann::json& j, const char* k);
// Percent-encodes a URL parameter or path segment.
std::string UrlEscape(const std::string& s);

}  // namespace ferry::collector::ctl

#endif  // FERRY_COLLECTOR_FERRYCTL_REMOTE_H_
