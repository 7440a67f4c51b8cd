// quickstart.cpp — Ferry from C++ with the header-only wrapper ferry/ferry.hpp.
//
//   ferry_quickstart_cpp [ENDPOINT WRITE_KEY [CA_FILE]]   (or FERRY_ENDPOINT, FERRY_WRITE_KEY, FERRY_CA_FILE)
//
// Tracks with consent and PII masking, prints the local export and the counters, and uploads when a collector is
// given.
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "ferry/ferry.hpp"

namespace {

std::string Arg(int argc, char** argv, int i, const char* env) {
  if (i < argc) return argv[i];
  const char* v = std::getenv(env);
  return v ? v : "";
}

void Show(const char* what, ferry::Status s) { std::printf("%-50s -> %s\n", what, s.ok() ? "ok" : s.str()); }

}  // namespace

int main(int argc, char** argv) {
  const std::string endpoint = Arg(argc, argv, 1, "FERRY_ENDPOINT");
  const std::string write_key = Arg(argc, argv, 2, "FERRY_WRITE_KEY");
  const std::string ca_file = Arg(argc, argv, 3, "FERRY_CA_FILE");
  std::string dir_template = (std::filesystem::temp_directory_path() / "ferry_quickstart_cpp.XXXXXX").string();
  if (mkdtemp(dir_template.data()) == nullptr) return 1;
  const std::filesystem::path dir = dir_template;

  ferry::Options options;
  options.SetStoragePath((dir / "buffer.db").string())
      .SetApp("ferry_quickstart_cpp", ferry::Version())
      .SetDefaultConsent(FERRY_PURPOSE_ANALYTICS, ferry::Consent::kGranted)
      .SetDefaultConsent(FERRY_PURPOSE_PERSONALIZATION, ferry::Consent::kDenied)
      .SetPiiRules(R"({"detectors": {"email": "mask"}})");
  if (!endpoint.empty()) {
    options.SetEndpoint(endpoint);
    if (!write_key.empty()) options.SetWriteKey(write_key);
    if (!ca_file.empty()) options.SetCaFile(ca_file);
  }

  int rc = 0;
  {
    ferry::Client client;  // closes itself at the end of the scope
    ferry::Status s = ferry::Client::Open(std::move(options), &client);
    if (!s.ok()) {
      std::fprintf(stderr, "open: %s\n", s.str());
      return 1;
    }
    std::printf("Ferry %s quickstart (C++)\n\n", ferry::Version());
    Show("identify(\"user-2002\")", client.Identify("user-2002"));
    Show("track(\"signup\") with email and password",
         client.Track("signup", R"({"email": "zhang.min@example.com", "password": "hunter2", "plan": "pro"})"));
    // marketing is pending and this app does not hold it (ferry_options_set_hold_pending): dropped, not kept.
    ferry::Status pending = client.Track("promo_seen", {}, "marketing");
    Show("track(\"promo_seen\") purpose=marketing (pending, not held)", pending);
    if (pending.code() != FERRY_ERR_CONSENT_DENIED) rc = 1;
    ferry::Status denied = client.Track("recs_shown", R"({"item": "sku-1"})", "personalization");
    Show("track(\"recs_shown\") purpose=personalization", denied);
    if (denied.code() != FERRY_ERR_CONSENT_DENIED) rc = 1;

    std::string json;
    if (client.ExportLocal(&json).ok()) std::printf("\nlocal export:\n%s\n", json.c_str());
    if (json.find("zhang.min@example.com") != std::string::npos || json.find("hunter2") != std::string::npos) rc = 1;
    if (!endpoint.empty()) {
      ferry::Status f = client.Flush(10000);
      Show("\nflush(10 s)", f);
      if (!f.ok()) rc = 1;
    }
    if (client.StatsJson(&json).ok()) std::printf("\nstats:\n%s\n", json.c_str());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
