// ferry.hpp — a header-only C++17 RAII wrapper over Ferry's C ABI (ferry.h).
//
// It calls the C functions only and defines nothing but inline functions, so it exports no C++ symbol and works
// with libferry.so as well as libferry.a, whatever C++ standard library the library itself was built with.
//
// NOTE on strings: arguments are std::string_view (UTF-8). Because the C ABI takes NUL-terminated strings, each
// argument is copied into a temporary NUL-terminated buffer for the duration of the call. A view that contains an
// embedded NUL byte cannot be passed through the ABI without being silently truncated, so the wrapper refuses it
// *through the ABI*: it calls the C function with a NULL event name / screen name / user id / purpose instead,
// which the library reports as FERRY_ERR_INVALID_ARGUMENT and counts in ferry_stats_json()'s "invalid" counter
// (and logs, when a log callback is set), exactly like any other invalid input. An empty properties/traits view
// means "no properties" (NULL), an empty purpose view means the default purpose ("analytics").
//
// NOTE on errors: nothing here throws. Every call returns a ferry::Status (code() and str()); the only failure the
// wrapper adds on its own is FERRY_ERR_INTERNAL when a temporary copy cannot be allocated, and FERRY_ERR_CLOSED for
// a Client that is not open (default-constructed, moved from or closed). It builds with -fno-exceptions and
// -fno-rtti too (tests/c_api: c_api.ferry_hpp_noexcept_* run its tests built so); there, the one copy that could
// throw (a string Ferry hands out, in ExportLocal/StatsJson) ends the program on allocation failure instead.
//
// NOTE on threads: like ferry_client, every Client method may be called from any thread at the same time, except
// Close(), moving and destruction, which must not race with other calls. Options is not thread-safe.
//
// Example:
//   ferry::Client client;
//   ferry::Status s = ferry::Client::Open(ferry::Options().SetStoragePath("/tmp/app/buffer.db")
//                                                         .SetDefaultConsent("analytics", ferry::Consent::kGranted),
//                                         &client);
//   if (!s.ok()) { std::fprintf(stderr, "ferry: %s\n", s.str()); }
//   client.Track("signup", R"({"plan":"pro"})");
#ifndef FERRY_FERRY_HPP_
#define FERRY_FERRY_HPP_

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "ferry/ferry.h"

namespace ferry {

// The consent state of a purpose (same numbers as ferry_consent).
enum class Consent : int {
  kPending = FERRY_CONSENT_PENDING,  // stored locally (encrypted), never sent
  kGranted = FERRY_CONSENT_GRANTED,  // stored and sent
  kDenied = FERRY_CONSENT_DENIED,    // never stored; pending events of that purpose are purged
};

// How soon an accepted event is committed to the encrypted buffer (same numbers as ferry_durability).
enum class Durability : int {
  kBatched = FERRY_DURABILITY_BATCHED,
  kSync = FERRY_DURABILITY_SYNC,
};

// A ferry_status with helpers. Cheap to copy; ok() for FERRY_OK.
class Status {
 public:
  constexpr Status() noexcept = default;
  constexpr Status(ferry_status code) noexcept : code_(code) {}  // NOLINT(google-explicit-constructor)

  constexpr bool ok() const noexcept { return code_ == FERRY_OK; }
  constexpr ferry_status code() const noexcept { return code_; }
  // A static English message (ferry_status_str()); never NULL.
  const char* str() const noexcept { return ferry_status_str(code_); }

  friend constexpr bool operator==(Status a, Status b) noexcept { return a.code_ == b.code_; }
  friend constexpr bool operator!=(Status a, Status b) noexcept { return a.code_ != b.code_; }

 private:
  ferry_status code_ = FERRY_OK;
};

// The version of the library actually loaded, "MAJOR.MINOR.PATCH".
inline const char* Version() noexcept { return ferry_version(); }

namespace detail {

inline bool HasNul(std::string_view s) noexcept { return s.find('\0') != std::string_view::npos; }

// A NUL-terminated copy of a view, or NULL when the view holds a NUL byte (so the C layer refuses and counts it).
// Small strings stay on the stack; longer ones go to the heap (nothrow).
class CStr {
 public:
  explicit CStr(std::string_view s) noexcept {
    if (HasNul(s)) {
      bad_ = true;
      return;
    }
    char* dst = small_;
    if (s.size() >= sizeof(small_)) {
      heap_ = new (std::nothrow) char[s.size() + 1];
      if (heap_ == nullptr) {
        oom_ = true;
        return;
      }
      dst = heap_;
    }
    if (!s.empty()) std::char_traits<char>::copy(dst, s.data(), s.size());
    dst[s.size()] = '\0';
    ptr_ = dst;
  }
  ~CStr() { delete[] heap_; }
  CStr(const CStr&) = delete;
  CStr& operator=(const CStr&) = delete;

  // The copy; NULL when the view had an embedded NUL or the copy failed.
  const char* get() const noexcept { return ptr_; }
  bool has_nul() const noexcept { return bad_; }
  bool oom() const noexcept { return oom_; }

 private:
  char small_[256];
  char* heap_ = nullptr;
  const char* ptr_ = nullptr;
  bool bad_ = false;
  bool oom_ = false;
};

// Like CStr, but an empty view gives NULL (an optional argument left out).
class OptCStr {
 public:
  explicit OptCStr(std::string_view s) noexcept : empty_(s.empty()), s_(s) {}
  const char* get() const noexcept { return empty_ ? nullptr : s_.get(); }
  bool has_nul() const noexcept { return !empty_ && s_.has_nul(); }
  bool oom() const noexcept { return !empty_ && s_.oom(); }

 private:
  bool empty_;
  CStr s_;
};

// Takes ownership of a string Ferry handed out, copies it into *out and frees it.
inline Status TakeString(ferry_status s, char* p, std::string* out) noexcept {
  Status result(s);
  if (p != nullptr) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
    try {
      out->assign(p);
    } catch (...) {
      result = FERRY_ERR_INTERNAL;
    }
#else
    // Built with -fno-exceptions: an allocation failure here ends the program, as anywhere else in such code.
    out->assign(p);
#endif
    ferry_free(p);
  }
  return result;
}

// Runs call(char** out) with a place for the string Ferry hands out (NULL when out is NULL) and takes that string
// into *out, whatever the status (TakeString).
template <typename Call>
inline Status CallForString(std::string* out, Call call) noexcept {
  if (out == nullptr) return call(nullptr);
  char* p = nullptr;
  ferry_status s = call(&p);
  return TakeString(s, p, out);
}

}  // namespace detail

// Client configuration. Every setter returns *this so calls chain; a setter never throws: the first failed
// setter's status is kept (status()) and later setters still run. Client::Open() refuses options whose status()
// is not ok. Move-only; frees the underlying ferry_options unless it was handed to Client::Open().
class Options {
 public:
  Options() noexcept : o_(ferry_options_new()) {
    if (o_ == nullptr) first_error_ = FERRY_ERR_INTERNAL;
  }
  ~Options() { ferry_options_free(o_); }
  Options(Options&& other) noexcept
      : o_(std::exchange(other.o_, nullptr)), first_error_(std::exchange(other.first_error_, FERRY_ERR_CLOSED)) {}
  Options& operator=(Options&& other) noexcept {
    if (this != &other) {
      ferry_options_free(o_);
      o_ = std::exchange(other.o_, nullptr);
      first_error_ = std::exchange(other.first_error_, FERRY_ERR_CLOSED);
    }
    return *this;
  }
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;

  // See ferry_options_set_endpoint(): https:// (http:// for loopback only).
  Options& SetEndpoint(std::string_view url) noexcept {
    detail::CStr u(url);
    return Note(u.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_endpoint(o_, u.get()));
  }
  Options& SetWriteKey(std::string_view key) noexcept {
    detail::CStr k(key);
    return Note(k.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_write_key(o_, k.get()));
  }
  Options& SetStoragePath(std::string_view path) noexcept {
    detail::CStr p(path);
    return Note(p.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_storage_path(o_, p.get()));
  }
  // Exactly 32 bytes.
  Options& SetEncryptionKey(const std::uint8_t* key, std::size_t len) noexcept {
    return Note(ferry_options_set_encryption_key(o_, key, len));
  }
  Options& SetCaFile(std::string_view pem_path) noexcept {
    detail::CStr p(pem_path);
    return Note(p.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_ca_file(o_, p.get()));
  }
  Options& SetDefaultConsent(std::string_view purpose, Consent state) noexcept {
    detail::CStr p(purpose);
    return Note(p.oom() ? FERRY_ERR_INTERNAL
                        : ferry_options_set_default_consent(o_, p.get(), static_cast<ferry_consent>(state)));
  }
  Options& SetFlushIntervalMs(std::uint32_t ms) noexcept { return Note(ferry_options_set_flush_interval_ms(o_, ms)); }
  Options& SetBatchSize(std::uint32_t events) noexcept { return Note(ferry_options_set_batch_size(o_, events)); }
  Options& SetMaxStorageBytes(std::uint64_t bytes) noexcept {
    return Note(ferry_options_set_max_storage_bytes(o_, bytes));
  }
  Options& SetMaxEventAgeMs(std::uint64_t ms) noexcept { return Note(ferry_options_set_max_event_age_ms(o_, ms)); }
  // PII rules as a JSON object (see docs/PII.md).
  Options& SetPiiRules(std::string_view rules_json) noexcept {
    detail::CStr r(rules_json);
    return Note(r.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_pii_rules(o_, r.get()));
  }
  // cb is called from any Ferry thread; it must not call back into the client. NULL removes the sink.
  Options& SetLogCallback(void (*cb)(int level, const char* msg, void* user), void* user) noexcept {
    return Note(ferry_options_set_log_callback(o_, cb, user));
  }
  Options& SetDurability(Durability d) noexcept {
    return Note(ferry_options_set_durability(o_, static_cast<ferry_durability>(d)));
  }
  Options& SetApp(std::string_view name, std::string_view version) noexcept {
    detail::CStr n(name);
    detail::CStr v(version);
    if (n.oom() || v.oom()) return Note(FERRY_ERR_INTERNAL);
    // A NUL inside the version must be refused too: pass a NULL name so the C layer reports it.
    return Note(ferry_options_set_app(o_, v.has_nul() ? nullptr : n.get(), v.get()));
  }
  Options& SetTransport(ferry_transport_send_fn send, void* user, void (*free_user)(void* user)) noexcept {
    return Note(ferry_options_set_transport(o_, send, user, free_user));
  }
  Options& SetPinnedPublicKey(std::string_view pins) noexcept {
    detail::CStr p(pins);
    return Note(p.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_pinned_public_key(o_, p.get()));
  }

  // A buffer the key cannot read: false (default) = Open fails with FERRY_ERR_BUFFER_UNREADABLE, true = reset.
  Options& SetResetUnreadableBuffer(bool reset) noexcept {
    return Note(ferry_options_set_reset_unreadable_buffer(o_, reset ? 1 : 0));
  }
  // The buffer key from the app's secret store (Keystore, Keychain): ferry.h, ferry_options_set_key_provider().
  Options& SetKeyProvider(ferry_key_load_fn load, ferry_key_store_fn store, void* user,
                          void (*free_user)(void* user)) noexcept {
    return Note(ferry_options_set_key_provider(o_, load, store, user, free_user));
  }
  // The app's data directory (absolute), in place of the platform's: ferry.h, ferry_options_set_data_dir().
  Options& SetDataDir(std::string_view dir) noexcept {
    detail::CStr d(dir);
    return Note(d.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_data_dir(o_, d.get()));
  }
  // Holds a pending purpose's events for at most max_ms (never "sensitive"): ferry.h, ferry_options_set_hold_pending().
  // Without it an event of a pending purpose is refused (FERRY_ERR_CONSENT_DENIED) and dropped.
  Options& SetHoldPending(std::string_view purpose, std::uint64_t max_ms) noexcept {
    detail::CStr p(purpose);
    return Note(p.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_hold_pending(o_, p.get(), max_ms));
  }

  // A session ends after this long without events (1 s to 24 h): ferry.h, ferry_options_set_session_timeout_ms().
  Options& SetSessionTimeoutMs(std::uint32_t ms) noexcept { return Note(ferry_options_set_session_timeout_ms(o_, ms)); }
  // The privacy notice the app shows (id and version), named by every consent record: ferry_options_set_notice().
  Options& SetNotice(std::string_view notice_id, std::string_view version) noexcept {
    detail::CStr n(notice_id);
    detail::CStr v(version);
    if (n.oom() || v.oom()) return Note(FERRY_ERR_INTERNAL);
    // A NUL inside the version must be refused too: pass a NULL id so the C layer reports it.
    return Note(ferry_options_set_notice(o_, v.has_nul() ? nullptr : n.get(), v.get()));
  }
  // The language the notice was shown in ("de-CH"), carried by every consent record:
  // ferry_options_set_consent_language().
  Options& SetConsentLanguage(std::string_view language) noexcept {
    detail::CStr l(language);
    return Note(l.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_consent_language(o_, l.get()));
  }
  // Only these purposes ("marketing,analytics") are asked again when the notice version changes:
  // ferry_options_set_notice_changed_purposes().
  Options& SetNoticeChangedPurposes(std::string_view purposes) noexcept {
    detail::CStr p(purposes);
    return Note(p.oom() ? FERRY_ERR_INTERNAL : ferry_options_set_notice_changed_purposes(o_, p.get()));
  }

  // FERRY_OK, or the status of the first setter that failed.
  Status status() const noexcept { return first_error_; }

  // Hands the ferry_options over (the caller owns it; NULL if already released). status() is not checked.
  ferry_options* release() noexcept { return std::exchange(o_, nullptr); }

 private:
  Options& Note(ferry_status s) noexcept {
    if (s != FERRY_OK && first_error_.ok()) first_error_ = s;
    return *this;
  }

  ferry_options* o_;
  Status first_error_;
};

// An open Ferry client (one encrypted buffer). Move-only; the destructor closes it, waiting at most
// kDestructorCloseTimeoutMs for a final upload (what is not sent stays in the buffer for next time).
class Client {
 public:
  static constexpr std::uint32_t kDestructorCloseTimeoutMs = 500;

  // A Client that is not open; every call returns FERRY_ERR_CLOSED.
  Client() noexcept = default;
  ~Client() { (void)Close(kDestructorCloseTimeoutMs); }
  Client(Client&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
  Client& operator=(Client&& other) noexcept {
    if (this != &other) {
      (void)Close(kDestructorCloseTimeoutMs);
      c_ = std::exchange(other.c_, nullptr);
    }
    return *this;
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens a client into *out (which is closed first if it was open). Consumes opts in every case: it is left empty
  // (its status() becomes FERRY_ERR_CLOSED). If a setter of opts failed, returns that status without opening
  // anything. Takes a named Options, a temporary, or a chain of setters on a temporary:
  //   Client::Open(Options().SetStoragePath(p).SetEncryptionKey(k, 32), &client);
  static Status Open(Options& opts, Client* out) noexcept {
    Options owned(std::move(opts));
    if (out == nullptr) return FERRY_ERR_INVALID_ARGUMENT;
    (void)out->Close(kDestructorCloseTimeoutMs);
    if (!owned.status().ok()) return owned.status();
    ferry_client* c = nullptr;
    Status s = ferry_open(owned.release(), &c);
    if (s.ok()) out->c_ = c;
    return s;
  }
  static Status Open(Options&& opts, Client* out) noexcept { return Open(opts, out); }

  // Flushes for at most flush_timeout_ms, then frees the client; is_open() is false afterwards (also on error).
  Status Close(std::uint32_t flush_timeout_ms) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    return ferry_close(std::exchange(c_, nullptr), flush_timeout_ms);
  }

  bool is_open() const noexcept { return c_ != nullptr; }
  explicit operator bool() const noexcept { return is_open(); }
  // The C handle, for calls the wrapper does not cover. Still owned by this Client.
  ferry_client* get() const noexcept { return c_; }

  // properties_json: a JSON object, or empty for none. purpose: empty means "analytics".
  Status Track(std::string_view event, std::string_view properties_json = {}, std::string_view purpose = {}) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    detail::CStr e(event);
    detail::OptCStr p(properties_json);
    detail::OptCStr u(purpose);
    if (e.oom() || p.oom() || u.oom()) return FERRY_ERR_INTERNAL;
    if (p.has_nul() || u.has_nul()) return ferry_track(c_, nullptr, nullptr, nullptr);
    return ferry_track(c_, e.get(), p.get(), u.get());
  }

  Status Screen(std::string_view name, std::string_view properties_json = {}) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    detail::CStr n(name);
    detail::OptCStr p(properties_json);
    if (n.oom() || p.oom()) return FERRY_ERR_INTERNAL;
    if (p.has_nul()) return ferry_screen(c_, nullptr, nullptr);
    return ferry_screen(c_, n.get(), p.get());
  }

  Status Identify(std::string_view user_id, std::string_view traits_json = {}) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    detail::CStr id(user_id);
    detail::OptCStr t(traits_json);
    if (id.oom() || t.oom()) return FERRY_ERR_INTERNAL;
    if (t.has_nul()) return ferry_identify(c_, nullptr, nullptr);
    return ferry_identify(c_, id.get(), t.get());
  }

  Status Reset() noexcept { return c_ == nullptr ? Status(FERRY_ERR_CLOSED) : Status(ferry_reset(c_)); }

  Status SetConsent(std::string_view purpose, Consent state) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    detail::CStr p(purpose);
    if (p.oom()) return FERRY_ERR_INTERNAL;
    return ferry_set_consent(c_, p.get(), static_cast<ferry_consent>(state));
  }

  // kPending for a purpose never configured, an invalid purpose (embedded NUL included) or a closed client.
  Consent GetConsent(std::string_view purpose) const noexcept {
    if (c_ == nullptr) return Consent::kPending;
    detail::CStr p(purpose);
    return static_cast<Consent>(ferry_get_consent(c_, p.get()));
  }

  Status Flush(std::uint32_t timeout_ms) noexcept {
    return c_ == nullptr ? Status(FERRY_ERR_CLOSED) : Status(ferry_flush(c_, timeout_ms));
  }
  Status Forget(std::uint32_t timeout_ms) noexcept {
    return c_ == nullptr ? Status(FERRY_ERR_CLOSED) : Status(ferry_forget(c_, timeout_ms));
  }

  // Marks the current user as a minor (true) or lifts the mark: ferry.h, ferry_set_minor(). While marked, only a
  // guardian's grant (SetConsentGuardian) admits a purpose other than "necessary".
  Status SetMinor(bool minor) noexcept {
    return c_ == nullptr ? Status(FERRY_ERR_CLOSED) : Status(ferry_set_minor(c_, minor ? 1 : 0));
  }

  // A guardian's choice for a purpose (method "guardian"): ferry.h, ferry_set_consent_guardian().
  Status SetConsentGuardian(std::string_view purpose, Consent state) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    detail::CStr p(purpose);
    if (p.oom()) return FERRY_ERR_INTERNAL;
    return ferry_set_consent_guardian(c_, p.get(), static_cast<ferry_consent>(state));
  }

  // Files a request ("access", "erasure", ...) with the collector: ferry.h, ferry_request(). *receipt_json gets the
  // receipt ({"receipt", "kind", "reference", "state"[, "error"]}) whenever the library gave one: on FERRY_OK, and
  // also on FERRY_ERR_TIMEOUT (still queued, retried) and FERRY_ERR_NETWORK (refused or unreachable), so keep it.
  // Left untouched when no receipt was given.
  Status Request(std::string_view kind, std::uint32_t timeout_ms, std::string* receipt_json) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    detail::CStr k(kind);
    if (k.oom()) return FERRY_ERR_INTERNAL;
    return detail::CallForString(receipt_json, [&](char** out) { return ferry_request(c_, k.get(), timeout_ms, out); });
  }

  // The state of a filed request (receipt: the "receipt" member of Request()'s answer), asked of the collector:
  // ferry.h, ferry_request_status(). *status_json is untouched on failure.
  Status RequestStatus(std::string_view receipt, std::uint32_t timeout_ms, std::string* status_json) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    detail::CStr r(receipt);
    if (r.oom()) return FERRY_ERR_INTERNAL;
    return detail::CallForString(status_json,
                                 [&](char** out) { return ferry_request_status(c_, r.get(), timeout_ms, out); });
  }

  // The copy of an approved access request, fetched once: ferry.h, ferry_request_copy(). FERRY_OK with *copy_json
  // the copy (JSON), or FERRY_OK with *copy_json empty while the copy is not ready. Untouched on failure.
  Status RequestCopy(std::string_view receipt, std::uint32_t timeout_ms, std::string* copy_json) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    detail::CStr r(receipt);
    if (r.oom()) return FERRY_ERR_INTERNAL;
    return detail::CallForString(copy_json, [&](char** out) {
      ferry_status s = ferry_request_copy(c_, r.get(), timeout_ms, out);
      if (s == FERRY_OK && out != nullptr && *out == nullptr) copy_json->clear();  // not ready yet
      return s;
    });
  }

  // A short-lived code ({"code", "expiresAt"}) for the user to type on the project's self-service page: ferry.h,
  // ferry_request_verification_code(). Show it, do not store it. *code_json is untouched on failure.
  Status RequestVerificationCode(std::uint32_t timeout_ms, std::string* code_json) noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    return detail::CallForString(code_json,
                                 [&](char** out) { return ferry_request_verification_code(c_, timeout_ms, out); });
  }

  // Everything the buffer holds about the current user, as JSON, into *json (untouched on failure).
  Status ExportLocal(std::string* json) const noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    if (json == nullptr) return ferry_export_local(c_, nullptr);
    char* p = nullptr;
    ferry_status s = ferry_export_local(c_, &p);
    return detail::TakeString(s, p, json);
  }

  // The counters as a JSON object into *json (untouched on failure).
  Status StatsJson(std::string* json) const noexcept {
    if (c_ == nullptr) return FERRY_ERR_CLOSED;
    if (json == nullptr) return ferry_stats_json(c_, nullptr);
    char* p = nullptr;
    ferry_status s = ferry_stats_json(c_, &p);
    return detail::TakeString(s, p, json);
  }

 private:
  ferry_client* c_ = nullptr;
};

}  // namespace ferry

#endif  // FERRY_FERRY_HPP_
