// The only file with extern "C" definitions: NULL checks, handle <-> object, catch everything, return a status.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <set>
#include <string>

#include "ferry/ferry.h"
#include "lib/base/status.h"
#include "lib/wire/event.h"
#include "sdk/c_api/callback_transport.h"
#include "sdk/c_api/key_provider.h"
#include "sdk/core/client.h"
#include "sdk/core/options.h"
#include "sdk/pii/pii.h"

struct ferry_options {
  ferry::core::ClientOptions o;
};

struct ferry_client {
  std::unique_ptr<ferry::core::Client> c;
};

namespace {

using ferry::base::Code;
using ferry::base::Status;
using ferry::core::ClientOptions;
using ferry::core::Consent;

// The one place internal codes become public ones. The ABI's codes are few and stable; the internal ones say more
// (the message carries the detail to the log callback).
ferry_status ToC(const Status& s) {
  switch (s.code()) {
    case Code::kOk: return FERRY_OK;
    case Code::kInvalidArgument:
    case Code::kNotFound:
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition: return FERRY_ERR_INVALID_ARGUMENT;
    case Code::kConsentDenied:
    case Code::kPermissionDenied: return FERRY_ERR_CONSENT_DENIED;
    case Code::kStorage:
    case Code::kCorruption:
    case Code::kResourceExhausted: return FERRY_ERR_STORAGE;
    case Code::kClosed:
    case Code::kCancelled: return FERRY_ERR_CLOSED;
    case Code::kTimeout: return FERRY_ERR_TIMEOUT;
    case Code::kNetwork:
    case Code::kUnavailable:
    case Code::kUnauthenticated: return FERRY_ERR_NETWORK;
    case Code::kConflict:
    case Code::kInternal: return FERRY_ERR_INTERNAL;
  }
  return FERRY_ERR_INTERNAL;
}

// Runs f, turning any escaping exception into a status (nothing crosses the ABI).
template <typename F>
ferry_status Guard(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return FERRY_ERR_INTERNAL;
  } catch (...) {
    return FERRY_ERR_INTERNAL;
  }
}

// A C caller may pass any int where an enum is expected; loading an out-of-range enum value is undefined in C++, so
// the raw bits are read with memcpy and checked as an int.
template <typename Enum>
int RawEnum(const Enum& e) {
  static_assert(sizeof(Enum) == sizeof(int), "C enums are int-sized here");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

bool ValidConsent(const ferry_consent& s) {
  int v = RawEnum(s);
  return v == FERRY_CONSENT_PENDING || v == FERRY_CONSENT_GRANTED || v == FERRY_CONSENT_DENIED;
}

char* CopyOut(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) return nullptr;
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

// The setters of a file path: a non-empty string.
ferry_status SetPath(ferry_options* o, const char* path, std::string ClientOptions::*field) {
  if (o == nullptr || path == nullptr || path[0] == '\0') return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    o->o.*field = path;
    return FERRY_OK;
  });
}

ferry_status Bad(ferry_client* c, const char* why) {
  if (c != nullptr && c->c) (void)c->c->Invalid(why);
  return FERRY_ERR_INVALID_ARGUMENT;
}

}  // namespace

extern "C" {

const char* ferry_version(void) {
#define FERRY_STR2(x) #x
#define FERRY_STR(x) FERRY_STR2(x)
  return FERRY_STR(FERRY_VERSION_MAJOR) "." FERRY_STR(FERRY_VERSION_MINOR) "." FERRY_STR(FERRY_VERSION_PATCH);
}

const char* ferry_status_str(ferry_status s) {
  switch (RawEnum(s)) {
    case FERRY_OK: return "ok";
    case FERRY_ERR_INVALID_ARGUMENT: return "invalid argument";
    case FERRY_ERR_CONSENT_DENIED: return "consent denied for this purpose; the event was dropped";
    case FERRY_ERR_STORAGE: return "the local buffer cannot be written";
    case FERRY_ERR_CLOSED: return "the client is closed";
    case FERRY_ERR_TIMEOUT: return "timed out; the work goes on in the background";
    case FERRY_ERR_NETWORK: return "the collector could not be reached or refused the request";
    case FERRY_ERR_INTERNAL: return "internal error";
    case FERRY_ERR_BUFFER_UNREADABLE: return "the buffer cannot be read with this key; nothing was changed";
  }
  return "unknown status";
}

void ferry_free(void* p) { std::free(p); }

ferry_options* ferry_options_new(void) { return new (std::nothrow) ferry_options(); }

void ferry_options_free(ferry_options* o) { delete o; }

ferry_status ferry_options_set_endpoint(ferry_options* o, const char* url) {
  if (o == nullptr || url == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    std::string why;
    std::string u(url);
    while (!u.empty() && u.back() == '/') u.pop_back();
    if (!ferry::platform::IsAllowedEndpoint(u, &why)) {
      if (o->o.logger.enabled()) o->o.logger.Warn("endpoint refused: " + why);
      return FERRY_ERR_INVALID_ARGUMENT;
    }
    o->o.endpoint = u;
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_write_key(ferry_options* o, const char* key) {
  if (o == nullptr || key == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    size_t n = std::strlen(key);
    if (n == 0 || n > 256) return FERRY_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; ++i) {
      if (key[i] < 0x21 || key[i] > 0x7e) return FERRY_ERR_INVALID_ARGUMENT;
    }
    o->o.write_key = key;
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_storage_path(ferry_options* o, const char* path) {
  return SetPath(o, path, &ClientOptions::storage_path);
}

ferry_status ferry_options_set_encryption_key(ferry_options* o, const uint8_t* key, size_t len) {
  if (o == nullptr || key == nullptr || len != 32) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    o->o.encryption_key = ferry::base::SecretBytes(key, len);
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_ca_file(ferry_options* o, const char* pem_path) {
  return SetPath(o, pem_path, &ClientOptions::ca_file);
}

ferry_status ferry_options_set_default_consent(ferry_options* o, const char* purpose, ferry_consent state) {
  if (o == nullptr || purpose == nullptr || !ValidConsent(state)) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    std::string p(purpose);
    if (!ferry::wire::IsValidPurpose(p) || p == "necessary") return FERRY_ERR_INVALID_ARGUMENT;
    if (p == "sensitive" && state == FERRY_CONSENT_GRANTED) return FERRY_ERR_INVALID_ARGUMENT;
    o->o.default_consent[p] = static_cast<Consent>(state);
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_flush_interval_ms(ferry_options* o, uint32_t ms) {
  if (o == nullptr || ms < 100 || ms > 24u * 3600 * 1000) return FERRY_ERR_INVALID_ARGUMENT;
  o->o.flush_interval_ms = ms;
  return FERRY_OK;
}

ferry_status ferry_options_set_batch_size(ferry_options* o, uint32_t events) {
  if (o == nullptr || events < 1 || events > 1000) return FERRY_ERR_INVALID_ARGUMENT;
  o->o.batch_size = events;
  return FERRY_OK;
}

ferry_status ferry_options_set_max_storage_bytes(ferry_options* o, uint64_t bytes) {
  if (o == nullptr || bytes < (64u << 10)) return FERRY_ERR_INVALID_ARGUMENT;
  o->o.max_storage_bytes = bytes;
  return FERRY_OK;
}

ferry_status ferry_options_set_max_event_age_ms(ferry_options* o, uint64_t ms) {
  if (o == nullptr || ms < 1000) return FERRY_ERR_INVALID_ARGUMENT;
  o->o.max_event_age_ms = ms;
  return FERRY_OK;
}

ferry_status ferry_options_set_session_timeout_ms(ferry_options* o, uint32_t ms) {
  if (o == nullptr || ms < 1000 || ms > 24u * 3600 * 1000) return FERRY_ERR_INVALID_ARGUMENT;
  o->o.session_timeout_ms = ms;
  return FERRY_OK;
}

ferry_status ferry_options_set_pii_rules(ferry_options* o, const char* rules_json) {
  if (o == nullptr || rules_json == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    // Validate now (with a throwaway key) so a bad rule set is reported where it is set.
    auto m = ferry::pii::PiiMasker::Create(rules_json, ferry::base::SecretBytes::Random(32));
    if (!m.ok()) {
      o->o.logger.Warn("PII rules refused: " + m.status().message());
      return FERRY_ERR_INVALID_ARGUMENT;
    }
    o->o.pii_rules = rules_json;
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_log_callback(ferry_options* o, void (*cb)(int level, const char* msg, void* user),
                                            void* user) {
  if (o == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    if (cb == nullptr) {
      o->o.logger = ferry::base::Logger();
    } else {
      o->o.logger = ferry::base::Logger(
          [cb, user](ferry::base::LogLevel l, const std::string& m) { cb(static_cast<int>(l), m.c_str(), user); });
    }
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_durability(ferry_options* o, ferry_durability d) {
  int v = RawEnum(d);
  if (o == nullptr || (v != FERRY_DURABILITY_BATCHED && v != FERRY_DURABILITY_SYNC)) {
    return FERRY_ERR_INVALID_ARGUMENT;
  }
  o->o.durability = v == FERRY_DURABILITY_SYNC ? ferry::core::Durability::kSync : ferry::core::Durability::kBatched;
  return FERRY_OK;
}

ferry_status ferry_options_set_app(ferry_options* o, const char* name, const char* version) {
  if (o == nullptr || name == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    std::string n(name), v(version ? version : "");
    if (n.empty() || n.size() > 200 || v.size() > 200 || !ferry::wire::IsValidUtf8(n) || !ferry::wire::IsValidUtf8(v)) {
      return FERRY_ERR_INVALID_ARGUMENT;
    }
    o->o.app_name = n;
    o->o.app_version = v;
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_transport(ferry_options* o, ferry_transport_send_fn send, void* user,
                                         void (*free_user)(void* user)) {
  if (o == nullptr || send == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    o->o.transport = ferry::platform::NewCallbackTransport(send, user, free_user);
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_pinned_public_key(ferry_options* o, const char* pins) {
  if (o == nullptr || pins == nullptr || std::strncmp(pins, "sha256//", 8) != 0) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    o->o.pinned_public_key = pins;
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_reset_unreadable_buffer(ferry_options* o, int reset) {
  if (o == nullptr || (reset != 0 && reset != 1)) return FERRY_ERR_INVALID_ARGUMENT;
  o->o.reset_unreadable_buffer = reset == 1;
  return FERRY_OK;
}

ferry_status ferry_options_set_key_provider(ferry_options* o, ferry_key_load_fn load, ferry_key_store_fn store,
                                            void* user, void (*free_user)(void* user)) {
  if (o == nullptr || load == nullptr || store == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    o->o.key_store = ferry::platform::NewCallbackKeyStore(load, store, user, free_user);
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_notice(ferry_options* o, const char* notice_id, const char* version) {
  if (o == nullptr || notice_id == nullptr || version == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    std::string id(notice_id), v(version);
    if (!ferry::wire::IsValidIdText(id, 200) || !ferry::wire::IsValidIdText(v, 64)) return FERRY_ERR_INVALID_ARGUMENT;
    o->o.notice_id = std::move(id);
    o->o.notice_version = std::move(v);
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_consent_language(ferry_options* o, const char* language) {
  if (o == nullptr || language == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    std::string l(language);
    if (!ferry::wire::IsValidIdText(l, 35)) return FERRY_ERR_INVALID_ARGUMENT;
    o->o.consent_language = std::move(l);
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_notice_changed_purposes(ferry_options* o, const char* purposes) {
  if (o == nullptr || purposes == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    // A comma-separated list of purposes (spaces around names ignored); at least one, each a valid purpose name.
    std::set<std::string> out;
    std::string list(purposes);
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      std::string name = list.substr(start, end - start);
      size_t b = name.find_first_not_of(' '), e = name.find_last_not_of(' ');
      name = b == std::string::npos ? std::string() : name.substr(b, e - b + 1);
      if (!ferry::wire::IsValidPurpose(name)) return FERRY_ERR_INVALID_ARGUMENT;
      out.insert(std::move(name));
      start = end + 1;
    }
    o->o.notice_changed_purposes = std::move(out);
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_hold_pending(ferry_options* o, const char* purpose, uint64_t max_ms) {
  if (o == nullptr || purpose == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    std::string p(purpose);
    // "necessary" is always granted; "sensitive" is never held (consent before processing).
    if (!ferry::wire::IsValidPurpose(p) || p == "necessary" || p == "sensitive") return FERRY_ERR_INVALID_ARGUMENT;
    if (max_ms < ferry::core::kMinHoldPendingMs || max_ms > ferry::core::kMaxHoldPendingMs)
      return FERRY_ERR_INVALID_ARGUMENT;
    o->o.hold_pending[p] = max_ms;
    return FERRY_OK;
  });
}

ferry_status ferry_options_set_data_dir(ferry_options* o, const char* dir) {
  if (o == nullptr || dir == nullptr || dir[0] != '/') return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] {
    std::string d(dir);
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    o->o.data_dir = std::move(d);
    return FERRY_OK;
  });
}

ferry_status ferry_open(ferry_options* o, ferry_client** out) {
  if (out != nullptr) *out = nullptr;
  if (o == nullptr || out == nullptr) {
    delete o;
    return FERRY_ERR_INVALID_ARGUMENT;
  }
  return Guard([&] {
    std::unique_ptr<ferry_options> owned(o);
    auto client = ferry::core::Client::Open(std::move(owned->o));
    // At open, kCorruption means only this: the buffer cannot be read with the key (a damaged file is salvaged).
    if (!client.ok() && client.status().Is(Code::kCorruption)) return FERRY_ERR_BUFFER_UNREADABLE;
    if (!client.ok()) return ToC(client.status());
    auto* h = new ferry_client();
    h->c = std::move(client).value();
    *out = h;
    return FERRY_OK;
  });
}

ferry_status ferry_close(ferry_client* c, uint32_t flush_timeout_ms) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  ferry_status s = Guard([&] { return ToC(c->c->Close(flush_timeout_ms)); });
  Guard([&] {
    delete c;
    return FERRY_OK;
  });
  return s;
}

ferry_status ferry_track(ferry_client* c, const char* event, const char* properties_json, const char* purpose) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (event == nullptr) return Bad(c, "ferry_track: event is NULL");
  return Guard([&] { return ToC(c->c->Track(event, properties_json, purpose)); });
}

ferry_status ferry_screen(ferry_client* c, const char* name, const char* properties_json) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (name == nullptr) return Bad(c, "ferry_screen: name is NULL");
  return Guard([&] { return ToC(c->c->Screen(name, properties_json)); });
}

ferry_status ferry_identify(ferry_client* c, const char* user_id, const char* traits_json) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (user_id == nullptr) return Bad(c, "ferry_identify: user_id is NULL");
  return Guard([&] { return ToC(c->c->Identify(user_id, traits_json)); });
}

ferry_status ferry_reset(ferry_client* c) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] { return ToC(c->c->Reset()); });
}

ferry_status ferry_set_consent(ferry_client* c, const char* purpose, ferry_consent state) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (purpose == nullptr) return Bad(c, "ferry_set_consent: purpose is NULL");
  if (!ValidConsent(state)) return Bad(c, "ferry_set_consent: unknown consent state");
  return Guard([&] { return ToC(c->c->SetConsent(purpose, static_cast<Consent>(state))); });
}

ferry_status ferry_set_consent_guardian(ferry_client* c, const char* purpose, ferry_consent state) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (purpose == nullptr) return Bad(c, "ferry_set_consent_guardian: purpose is NULL");
  if (!ValidConsent(state)) return Bad(c, "ferry_set_consent_guardian: unknown consent state");
  return Guard([&] { return ToC(c->c->SetConsentGuardian(purpose, static_cast<Consent>(state))); });
}

ferry_status ferry_set_minor(ferry_client* c, int minor) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (minor != 0 && minor != 1) return Bad(c, "ferry_set_minor: minor must be 0 or 1");
  return Guard([&] { return ToC(c->c->SetMinor(minor == 1)); });
}

ferry_consent ferry_get_consent(ferry_client* c, const char* purpose) {
  if (c == nullptr || purpose == nullptr) return FERRY_CONSENT_PENDING;
  try {
    return static_cast<ferry_consent>(c->c->GetConsent(purpose));
  } catch (...) {
    return FERRY_CONSENT_PENDING;
  }
}

ferry_status ferry_flush(ferry_client* c, uint32_t timeout_ms) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] { return ToC(c->c->Flush(timeout_ms)); });
}

ferry_status ferry_forget(ferry_client* c, uint32_t timeout_ms) {
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  return Guard([&] { return ToC(c->c->Forget(timeout_ms)); });
}

ferry_status ferry_request(ferry_client* c, const char* kind, uint32_t timeout_ms, char** receipt_json) {
  if (receipt_json != nullptr) *receipt_json = nullptr;
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (kind == nullptr || receipt_json == nullptr) return Bad(c, "ferry_request: kind or receipt_json is NULL");
  return Guard([&] {
    std::string receipt;
    ferry_status s = ToC(c->c->Request(kind, timeout_ms, &receipt));
    if (!receipt.empty()) {
      *receipt_json = CopyOut(receipt);
      if (*receipt_json == nullptr) return FERRY_ERR_INTERNAL;
    }
    return s;
  });
}

ferry_status ferry_request_status(ferry_client* c, const char* receipt, uint32_t timeout_ms, char** status_json) {
  if (status_json != nullptr) *status_json = nullptr;
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (receipt == nullptr || status_json == nullptr) return Bad(c, "ferry_request_status: an argument is NULL");
  return Guard([&] {
    auto r = c->c->RequestStatus(receipt, timeout_ms);
    if (!r.ok()) return ToC(r.status());
    *status_json = CopyOut(r.value());
    return *status_json ? FERRY_OK : FERRY_ERR_INTERNAL;
  });
}

ferry_status ferry_request_copy(ferry_client* c, const char* receipt, uint32_t timeout_ms, char** copy_json) {
  if (copy_json != nullptr) *copy_json = nullptr;
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (receipt == nullptr || copy_json == nullptr) return Bad(c, "ferry_request_copy: an argument is NULL");
  return Guard([&] {
    auto r = c->c->RequestCopy(receipt, timeout_ms);
    if (!r.ok()) return ToC(r.status());
    if (r->empty()) return FERRY_OK;  // not ready yet
    *copy_json = CopyOut(r.value());
    return *copy_json ? FERRY_OK : FERRY_ERR_INTERNAL;
  });
}

ferry_status ferry_request_verification_code(ferry_client* c, uint32_t timeout_ms, char** code_json) {
  if (code_json != nullptr) *code_json = nullptr;
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (code_json == nullptr) return Bad(c, "ferry_request_verification_code: code_json is NULL");
  return Guard([&] {
    auto r = c->c->VerificationCode(timeout_ms);
    if (!r.ok()) return ToC(r.status());
    *code_json = CopyOut(r.value());
    return *code_json ? FERRY_OK : FERRY_ERR_INTERNAL;
  });
}

ferry_status ferry_export_local(ferry_client* c, char** json_out) {
  if (json_out != nullptr) *json_out = nullptr;
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (json_out == nullptr) return Bad(c, "ferry_export_local: json_out is NULL");
  return Guard([&] {
    auto r = c->c->ExportLocal();
    if (!r.ok()) return ToC(r.status());
    *json_out = CopyOut(r.value());
    return *json_out ? FERRY_OK : FERRY_ERR_INTERNAL;
  });
}

ferry_status ferry_stats_json(ferry_client* c, char** json_out) {
  if (json_out != nullptr) *json_out = nullptr;
  if (c == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
  if (json_out == nullptr) return Bad(c, "ferry_stats_json: json_out is NULL");
  return Guard([&] {
    *json_out = CopyOut(c->c->StatsJson());
    return *json_out ? FERRY_OK : FERRY_ERR_INTERNAL;
  });
}

}  // extern "C"
