// ferryctl subject erase --from-file FILE: thousands of erasures over POST /v1/erasures, kMaxBulkIds ids a call
// (docs/COLLECTOR.md "Bulk erasure"): progress on stderr after each call, a summary at the end.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "collector/ferryctl/exit_codes.h"
#include "collector/ferryctl/remote.h"

namespace ferry::collector::ctl {

namespace {

using nlohmann::json;

constexpr size_t kMaxBulkIds = 1000;          // the collector's bound (collector/http/erasure_routes.h)
constexpr size_t kMaxBulkBytes = 512 * 1024;  // well under the admin body limit (1 MiB)

// The ids of `file`: one a line, surrounding blanks trimmed, blank lines and lines starting with '#' skipped.
bool ReadIds(const std::string& file, std::vector<std::string>* ids) {
  std::ifstream in(file);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    size_t e = line.find_last_not_of(" \t\r");
    ids->push_back(line.substr(b, e - b + 1));
  }
  return !in.bad();
}

}  // namespace

void EraseFromFile(Globals& g, const std::string& file, const std::string& project, bool dry_run, bool force,
                   int* exit_code) {
  *exit_code = kExitFailure;
  std::vector<std::string> ids;
  if (!ReadIds(file, &ids)) {
    *exit_code = kExitUsage;
    return (void)std::fprintf(stderr, "ferryctl: cannot read %s\n", file.c_str());
  }
  if (ids.empty()) {
    *exit_code = kExitUsage;
    return (void)std::fprintf(stderr, "ferryctl: %s holds no ids\n", file.c_str());
  }
  json results = json::array();
  int64_t erased = 0, not_found = 0, failed = 0;
  for (size_t next = 0; next < ids.size();) {
    json body = {{"ids", json::array()}, {"dryRun", dry_run}, {"force", force}};
    if (!project.empty()) body["project"] = project;
    size_t bytes = 0;
    while (next < ids.size() && body["ids"].size() < kMaxBulkIds &&
           (body["ids"].empty() || bytes + ids[next].size() + 4 <= kMaxBulkBytes)) {
      bytes += ids[next].size() + 4;
      body["ids"].push_back(ids[next++]);
    }
    std::string answer;
    if (!AdminCall(g, "POST", "/v1/erasures", body.dump(), &answer, exit_code)) {
      std::fprintf(stderr, "ferryctl: stopped after %zu of %zu ids (%lld erased); the rest were not sent\n",
                   next - body["ids"].size(), ids.size(), static_cast<long long>(erased));
      return;
    }
    json doc = json::parse(answer, nullptr, false);
    if (!doc.is_object() || !doc.contains("results") || !doc["results"].is_array()) {
      *exit_code = kExitFailure;
      return (void)std::fprintf(stderr, "ferryctl: the collector's answer is not a bulk erasure result\n");
    }
    for (auto& r : doc["results"]) {
      std::string status = r.value("status", "");
      if (status == "erased" || status == "would_erase") {
        ++erased;
      } else if (status == "not_found") {
        ++not_found;
      } else {
        ++failed;
      }
      results.push_back(std::move(r));
    }
    std::fprintf(stderr, "ferryctl: %zu/%zu ids: %lld %s, %lld not found, %lld failed\n", next, ids.size(),
                 static_cast<long long>(erased), dry_run ? "would be erased" : "erased",
                 static_cast<long long>(not_found), static_cast<long long>(failed));
  }
  json summary = {{"ids", ids.size()},
                  {dry_run ? "wouldErase" : "erased", erased},
                  {"notFound", not_found},
                  {"failed", failed},
                  {"dryRun", dry_run}};
  if (g.json) {
    std::printf("%s\n", json{{"summary", summary}, {"results", results}}.dump(2).c_str());
  } else {
    for (const auto& r : results) {
      std::string status = r.value("status", "");
      if (status == "not_found") std::printf("not found: %s\n", r.value("id", "").c_str());
      if (status == "failed") {
        std::printf("failed: %s (%s)\n", r.value("id", "").c_str(), r.value("error", "").c_str());
      }
    }
    std::printf("%zu ids: %lld %s, %lld not found, %lld failed\n", ids.size(), static_cast<long long>(erased),
                dry_run ? "would be erased (dry run: nothing changed)" : "erased", static_cast<long long>(not_found),
                static_cast<long long>(failed));
  }
  // Each erased id has its own completed erasure request in the register; a failure or an unknown id is the
  // script's to act on.
  *exit_code = failed > 0 ? kExitFailure : not_found > 0 ? kExitNotFound : kExitOk;
}

}  // namespace ferry::collector::ctl
