// ClientOptions: everything ferry_options_* sets, validated by the setters in c_api.cc (and the clock, for tests).
#ifndef FERRY_SDK_CORE_OPTIONS_H_
#define FERRY_SDK_CORE_OPTIONS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/base/secret.h"
#include "platform/platform.h"

namespace ferry::core {

enum class Consent { kPending = 0, kGranted = 1, kDenied = 2 };
enum class Durability { kBatched = 0, kSync = 1 };

// The longest hold of a pending purpose's events (ClientOptions::hold_pending) may be 1 s to 365 days.
inline constexpr uint64_t kMinHoldPendingMs = 1000;
inline constexpr uint64_t kMaxHoldPendingMs = 365ull * 24 * 3600 * 1000;

struct ClientOptions {
  std::string endpoint;  // collector base URL; empty: never upload
  std::string write_key;
  std::string storage_path;  // empty: DefaultBufferPath(app_name or the executable's name)
  // The app's data directory (ferry_options_set_data_dir): the default storage path and the key provider's key names
  // are relative to it. Empty: platform::DefaultDataDir().
  std::string data_dir;
  base::SecretBytes encryption_key;  // empty: the platform secret store keeps one
  std::string ca_file;
  std::string pinned_public_key;
  std::string app_name;  // empty: the process name
  std::string app_version;
  std::map<std::string, Consent> default_consent;
  // The privacy notice the app shows (ferry_options_set_notice): carried by every consent record. "" = none set.
  std::string notice_id, notice_version;
  // The language the notice was shown in (ferry_options_set_consent_language); "" = the device's locale.
  std::string consent_language;
  // The purposes whose terms changed with this notice version (ferry_options_set_notice_changed_purposes): only these
  // fall back to pending when the version differs from the one they were granted under. Empty: every purpose.
  std::set<std::string> notice_changed_purposes;
  // Purposes whose events are held on the device while pending (ferry_options_set_hold_pending), with the longest
  // hold in ms; events of any other pending purpose are dropped. "necessary" is never pending and "sensitive" never
  // held, whatever this holds.
  std::map<std::string, uint64_t> hold_pending;
  uint32_t flush_interval_ms = 10000;
  uint32_t batch_size = 100;
  uint64_t max_storage_bytes = 10ull << 20;
  uint64_t max_event_age_ms = 30ull * 24 * 3600 * 1000;
  std::string pii_rules;  // empty: defaults
  Durability durability = Durability::kBatched;
  int zstd_level = 3;
  uint32_t request_timeout_ms = 30000;
  uint32_t session_timeout_ms = 30 * 60 * 1000;
  base::Logger logger;
  std::unique_ptr<platform::HttpTransport> transport;  // null: the build's own (libcurl; none: endpoint refused)
  std::unique_ptr<platform::KeyStore> key_store;       // null: the key file "<storage_path>.key"
  bool reset_unreadable_buffer = false;  // a buffer the key cannot read: false = ferry_open fails, true = reset

  // Internal, not in the C ABI: the clock behind timestamps, the session timeout, waits, flush intervals, backoff and
  // deadlines. Tests hand in a base::ManualClock (which must outlive the client) to drive time instead of sleeping.
  base::Clock* clock = base::SystemClock();
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_OPTIONS_H_
