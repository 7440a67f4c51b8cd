/*
 * ferry.h — the public C ABI of libferry, Ferry's privacy-first analytics SDK.
 *
 * NOTE on conventions (they hold for every function below):
 *  - Every function that can fail returns a ferry_status; ferry_status_str() gives a static English message.
 *    Detail goes to the log callback and to ferry_stats_json().
 *  - Strings passed in are UTF-8, NUL-terminated and borrowed for the duration of the call only.
 *    Strings handed out are allocated by Ferry and released with ferry_free().
 *  - Every ferry_client function is safe to call from any thread at the same time.
 *    A ferry_options object must not be shared between threads.
 *  - A NULL handle or a NULL required argument returns FERRY_ERR_INVALID_ARGUMENT. Nothing in this ABI aborts
 *    the host process and no C++ exception crosses it.
 *  - Status codes are only ever appended; a number is never renumbered or reused.
 *
 * The header includes only <stddef.h> and <stdint.h> and compiles as C99 and as C++.
 */
#ifndef FERRY_FERRY_H_
#define FERRY_FERRY_H_

#include <stddef.h>
#include <stdint.h>

/* ----------------------------------------------------------------------------------------------------------------
 * Version
 * -------------------------------------------------------------------------------------------------------------- */
#define FERRY_VERSION_MAJOR 0
#define FERRY_VERSION_MINOR 1
#define FERRY_VERSION_PATCH 0
#define FERRY_VERSION_NUM ((FERRY_VERSION_MAJOR << 16) | (FERRY_VERSION_MINOR << 8) | FERRY_VERSION_PATCH)
#define FERRY_VERSION_AT_LEAST(x, y, z) (FERRY_VERSION_NUM >= (((x) << 16) | ((y) << 8) | (z)))

#if defined(_WIN32)
#if defined(FERRY_BUILDING_LIBRARY)
#define FERRY_API __declspec(dllexport)
#else
#define FERRY_API
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define FERRY_API __attribute__((visibility("default")))
#else
#define FERRY_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------------------------------------------------
 * Status codes and consent states
 * -------------------------------------------------------------------------------------------------------------- */
typedef enum ferry_status {
  FERRY_OK = 0,
  FERRY_ERR_INVALID_ARGUMENT = 1, /* malformed JSON, bad UTF-8, empty or over-long name, over the size limits */
  FERRY_ERR_CONSENT_DENIED = 2,   /* the purpose is denied: the event was dropped and nothing was stored */
  FERRY_ERR_STORAGE = 3,          /* the local buffer cannot be written (disk full, I/O error) */
  FERRY_ERR_CLOSED = 4,           /* the client is closed */
  FERRY_ERR_TIMEOUT = 5,          /* flush/close/forget did not finish in time (work goes on in the background) */
  FERRY_ERR_NETWORK = 6,          /* the collector could not be reached or refused the request */
  FERRY_ERR_INTERNAL = 99,
  /* ferry_open only: the buffer exists but cannot be read with this key (a wrong or lost key). Nothing was changed;
   * open again with the right key, or choose a reset with ferry_options_set_reset_unreadable_buffer(). */
  FERRY_ERR_BUFFER_UNREADABLE = 7
} ferry_status;

typedef enum ferry_consent {
  FERRY_CONSENT_PENDING = 0, /* stored locally (encrypted), never sent */
  FERRY_CONSENT_GRANTED = 1, /* stored and sent */
  FERRY_CONSENT_DENIED = 2   /* never stored; pending events of that purpose are purged */
} ferry_consent;

/* How soon an event accepted by ferry_track() is committed to the encrypted buffer. */
typedef enum ferry_durability {
  /* Default. Events are committed by a background writer in small transactions, at most 50 ms after the call
   * returned. A process crash (even kill -9) loses at most the events of the last 100 ms; a power cut or an OS crash
   * may lose the last commits (up to about a second) as the commits are not fsync'd one by one. ferry_track() costs
   * a few µs. */
  FERRY_DURABILITY_BATCHED = 0,
  /* ferry_track() returns only after the event is committed and fsync'd to disk: nothing that returned FERRY_OK is
   * lost, also on power loss. Each call waits for one fsync'd commit (milliseconds; concurrent callers share one). */
  FERRY_DURABILITY_SYNC = 1
} ferry_durability;

/* Log levels passed to the log callback. */
#define FERRY_LOG_DEBUG 0
#define FERRY_LOG_INFO 1
#define FERRY_LOG_WARN 2
#define FERRY_LOG_ERROR 3

/* Built-in purposes. Apps may add their own short lowercase names ([a-z0-9_-], 1-32 bytes). */
#define FERRY_PURPOSE_NECESSARY "necessary" /* always granted; consent records and erasure requests */
#define FERRY_PURPOSE_ANALYTICS "analytics" /* the default purpose of an event */
#define FERRY_PURPOSE_MARKETING "marketing"
#define FERRY_PURPOSE_PERSONALIZATION "personalization"
#define FERRY_PURPOSE_SENSITIVE "sensitive" /* never granted by default (PIPL art. 28-29) */

typedef struct ferry_options ferry_options;
typedef struct ferry_client ferry_client;

/* ----------------------------------------------------------------------------------------------------------------
 * Library
 * -------------------------------------------------------------------------------------------------------------- */

/* "MAJOR.MINOR.PATCH" of the library actually loaded (compare with FERRY_VERSION_* to catch a mismatch). Static. */
FERRY_API const char* ferry_version(void);

/* A static English message for a status; never NULL (unknown codes give "unknown status"). */
FERRY_API const char* ferry_status_str(ferry_status s);

/* Releases a string or buffer that Ferry handed out. NULL is fine. */
FERRY_API void ferry_free(void* p);

/* ----------------------------------------------------------------------------------------------------------------
 * Options. Create, set, then hand to ferry_open(), which takes ownership. Not thread-safe.
 * -------------------------------------------------------------------------------------------------------------- */

/* A new options object with every default; NULL only when out of memory. */
FERRY_API ferry_options* ferry_options_new(void);

/* Frees options that were never passed to ferry_open(). NULL is fine. */
FERRY_API void ferry_options_free(ferry_options* o);

/* The collector's base URL, e.g. "https://collect.example.com". https:// is required; http:// is accepted only for
 * loopback hosts (127.0.0.0/8, ::1, localhost). Default: none (events are buffered but never uploaded). */
FERRY_API ferry_status ferry_options_set_endpoint(ferry_options* o, const char* url);

/* The project's write key, sent as "Authorization: Bearer <key>". 1-256 printable ASCII bytes. */
FERRY_API ferry_status ferry_options_set_write_key(ferry_options* o, const char* key);

/* The buffer's database file. Default: one per app, "<platform app data dir>/ferry/<app>/buffer.db", <app> being the
 * name given to ferry_options_set_app() or else the executable's name (see docs/SDK.md). Its directory is created.
 * One client at a time may hold a buffer: a second ferry_open() on it gets FERRY_ERR_STORAGE. */
FERRY_API ferry_status ferry_options_set_storage_path(ferry_options* o, const char* path);

/* The buffer's 32-byte encryption key (copied, then wiped from Ferry's memory on close).
 * Unset: the platform secret store creates and keeps a random key (Linux: "<storage path>.key", mode 0600). */
FERRY_API ferry_status ferry_options_set_encryption_key(ferry_options* o, const uint8_t* key, size_t len);

/* A PEM file with extra trust anchors for the collector's certificate (tests, private PKI). */
FERRY_API ferry_status ferry_options_set_ca_file(ferry_options* o, const char* pem_path);

/* The consent state a purpose starts with when the device has never recorded one. "necessary" cannot be changed;
 * "sensitive" can only be set to PENDING or DENIED here (it needs an explicit ferry_set_consent()). */
FERRY_API ferry_status ferry_options_set_default_consent(ferry_options* o, const char* purpose, ferry_consent state);

/* How often the uploader sends what is sendable. Default 10000 ms; 100 ms to 24 h. */
FERRY_API ferry_status ferry_options_set_flush_interval_ms(ferry_options* o, uint32_t ms);

/* Upload as soon as this many events are sendable, and at most this many per request. Default 100; 1 to 1000. */
FERRY_API ferry_status ferry_options_set_batch_size(ferry_options* o, uint32_t events);

/* The buffer's size limit; the oldest non-necessary events are evicted (and counted) beyond it.
 * Default 10 MiB; at least 64 KiB. */
FERRY_API ferry_status ferry_options_set_max_storage_bytes(ferry_options* o, uint64_t bytes);

/* PII masking rules as a JSON object (see docs/PII.md): detector actions, path rules, allow list, hash key.
 * Invalid JSON or an unknown action returns FERRY_ERR_INVALID_ARGUMENT and leaves the rules unchanged. */
FERRY_API ferry_status ferry_options_set_pii_rules(ferry_options* o, const char* rules_json);

/* A log sink. Called from any Ferry thread (and from the calling thread); must not call back into the same client.
 * msg is valid for the call only. Default: none (silent). */
FERRY_API ferry_status ferry_options_set_log_callback(ferry_options* o,
                                                      void (*cb)(int level, const char* msg, void* user), void* user);

/* FERRY_DURABILITY_BATCHED (default) or FERRY_DURABILITY_SYNC; see ferry_durability. */
FERRY_API ferry_status ferry_options_set_durability(ferry_options* o, ferry_durability d);

/* The app's name and version, sent in context.app. Default: the executable's name, version "". */
FERRY_API ferry_status ferry_options_set_app(ferry_options* o, const char* name, const char* version);

/* Maximum age of a buffered event; older ones are evicted (and counted). Default 30 days; at least 1 s. */
FERRY_API ferry_status ferry_options_set_max_event_age_ms(ferry_options* o, uint64_t ms);

/* A session ends after this long without events; the next event starts a new context.sessionId.
 * Default 30 minutes; 1 s to 24 h. */
FERRY_API ferry_status ferry_options_set_session_timeout_ms(ferry_options* o, uint32_t ms);

/* ----------------------------------------------------------------------------------------------------------------
 * Native transport (iOS NSURLSession, Android OkHttp, ...). Default: libcurl inside Ferry.
 *
 * Ferry calls send() from its uploader thread only, one request at a time per client. The request and all its
 * strings are owned by Ferry and valid until send() returns. send() blocks until it has an answer (or fails), then
 * fills *resp: status (HTTP status code, 0 for a network failure), retry_after_s (the Retry-After header in seconds,
 * 0 if absent) and body/body_len (a buffer allocated with malloc() that Ferry frees with free(); NULL for none).
 * send() returns FERRY_OK when an HTTP answer arrived (whatever its code), FERRY_ERR_NETWORK otherwise.
 * free_user(user) is called once, from the thread that closes the client, after the last send().
 * -------------------------------------------------------------------------------------------------------------- */
typedef struct ferry_http_request {
  const char* method;         /* "POST" */
  const char* url;            /* full URL */
  const char* const* headers; /* "Name: value" strings, NULL-terminated array */
  const uint8_t* body;
  size_t body_len;
  uint32_t timeout_ms; /* the whole request must finish in this time */
} ferry_http_request;

typedef struct ferry_http_response {
  int status;
  uint32_t retry_after_s;
  uint8_t* body;
  size_t body_len;
} ferry_http_response;

typedef ferry_status (*ferry_transport_send_fn)(const ferry_http_request* req, ferry_http_response* resp, void* user);

FERRY_API ferry_status ferry_options_set_transport(ferry_options* o, ferry_transport_send_fn send, void* user,
                                                   void (*free_user)(void* user));

/* A pinned public key for the collector, "sha256//<base64>" (several joined with ';'). curl transport only. */
FERRY_API ferry_status ferry_options_set_pinned_public_key(ferry_options* o, const char* pins);

/* ----------------------------------------------------------------------------------------------------------------
 * Client lifecycle
 * -------------------------------------------------------------------------------------------------------------- */

/* Opens the buffer and starts the writer and uploader threads. Takes ownership of o, also on failure.
 * FERRY_ERR_STORAGE when another client (in this or another process) has the buffer open, or no buffer can be
 * opened or created (the reason goes to the log callback). FERRY_ERR_BUFFER_UNREADABLE when the buffer cannot be read
 * with this key (nothing is changed) unless ferry_options_set_reset_unreadable_buffer() chose a reset. A damaged
 * buffer is salvaged: every readable event is kept (and sent), then the damaged file is moved aside
 * ("<path>.corrupt-<time>"); ferry_stats_json() counts what was salvaged. */
FERRY_API ferry_status ferry_open(ferry_options* o, ferry_client** out);

/* Flushes what it can within flush_timeout_ms (only when an endpoint is set), commits everything accepted so far,
 * stops the threads and frees c. What was not sent stays in the buffer for next time. c is freed in every case.
 * Returns:
 *   FERRY_OK                    everything accepted is committed, and (with an endpoint) no sendable event is left.
 *                               Without an endpoint nothing is sent: FERRY_OK with the events kept in the buffer.
 *                               Events of a PENDING purpose are not sendable and do not make it TIMEOUT.
 *   FERRY_ERR_TIMEOUT           an endpoint is set and sendable events remain after flush_timeout_ms (kept).
 *   FERRY_ERR_STORAGE           accepted events could not be committed to the buffer.
 *   FERRY_ERR_INVALID_ARGUMENT  c is NULL. */
FERRY_API ferry_status ferry_close(ferry_client* c, uint32_t flush_timeout_ms);

/* ----------------------------------------------------------------------------------------------------------------
 * Events. Consent is checked and PII masked before anything touches disk.
 * -------------------------------------------------------------------------------------------------------------- */

/* Records a track event. event: 1-200 bytes. properties_json: NULL or a JSON object. purpose: NULL = "analytics".
 * FERRY_ERR_CONSENT_DENIED if the purpose is denied (nothing stored). An event of a PENDING purpose is stored
 * encrypted but only sent once the purpose is granted. */
FERRY_API ferry_status ferry_track(ferry_client* c, const char* event, const char* properties_json,
                                   const char* purpose);

/* Records a screen view (purpose "analytics"). name: 1-200 bytes, masked like a property value. */
FERRY_API ferry_status ferry_screen(ferry_client* c, const char* name, const char* properties_json);

/* Sets the userId (1-200 bytes, persisted) and records an identify event (purpose "analytics") with traits. */
FERRY_API ferry_status ferry_identify(ferry_client* c, const char* user_id, const char* traits_json);

/* Logout: forgets the userId and rotates the anonymousId and the session. Buffered events keep their ids. */
FERRY_API ferry_status ferry_reset(ferry_client* c);

/* ----------------------------------------------------------------------------------------------------------------
 * Consent
 * -------------------------------------------------------------------------------------------------------------- */

/* Records the device's consent for a purpose (persisted; survives restarts) and queues a "consent" event of purpose
 * "necessary" as proof. GRANTED makes pending events of the purpose sendable; DENIED purges them.
 * "necessary" cannot be denied (FERRY_ERR_INVALID_ARGUMENT). */
FERRY_API ferry_status ferry_set_consent(ferry_client* c, const char* purpose, ferry_consent state);

/* The current state of a purpose; FERRY_CONSENT_PENDING for NULL arguments or a purpose never configured. */
FERRY_API ferry_consent ferry_get_consent(ferry_client* c, const char* purpose);

/* ----------------------------------------------------------------------------------------------------------------
 * Upload, subject rights and introspection
 * -------------------------------------------------------------------------------------------------------------- */

/* Uploads now. FERRY_OK once every event that was sendable when the call started was accepted by the collector;
 * FERRY_ERR_TIMEOUT if time ran out (upload goes on in the background); FERRY_ERR_NETWORK if the collector refused
 * the write key or no endpoint is configured. */
FERRY_API ferry_status ferry_flush(ferry_client* c, uint32_t timeout_ms);

/* Right to erasure from the device: wipes every event, id and trait in the buffer, rotates the anonymousId, and asks
 * the collector to erase this device's ids (POST /v1/forget). FERRY_OK once the collector's receipt arrived;
 * FERRY_ERR_TIMEOUT or FERRY_ERR_NETWORK otherwise — the request stays queued and is retried until it goes through,
 * across restarts. */
FERRY_API ferry_status ferry_forget(ferry_client* c, uint32_t timeout_ms);

/* Everything the buffer holds about the current user (ids, consent, events) as a JSON document. *json_out is
 * released with ferry_free(). */
FERRY_API ferry_status ferry_export_local(ferry_client* c, char** json_out);

/* Counters as a JSON object: queued, pending_consent, sent, dropped_consent, evicted, rejected, invalid, retries,
 * storage_bytes, last_error, and more. *json_out is released with ferry_free(). */
FERRY_API ferry_status ferry_stats_json(ferry_client* c, char** json_out);

/* ----------------------------------------------------------------------------------------------------------------
 * Appended: what ferry_open does with a buffer it cannot read
 * -------------------------------------------------------------------------------------------------------------- */

/* What ferry_open() does with a buffer that the key cannot read (a wrong or lost key). reset = 0 (default): it fails
 * with FERRY_ERR_BUFFER_UNREADABLE and changes nothing. reset = 1: the file is moved aside
 * ("<path>.unreadable-<time>", kept so that it can be read if the key turns up) and a fresh buffer is started; the
 * old buffer's events are not sent, ferry_stats_json() reports "buffer_resets": 1 and "consent_reset": true, and
 * as the recorded consent (denials included) is lost, every purpose but "necessary" is DENIED until the app sets it
 * again with ferry_set_consent(). */
FERRY_API ferry_status ferry_options_set_reset_unreadable_buffer(ferry_options* o, int reset);

/* ----------------------------------------------------------------------------------------------------------------
 * Appended: the buffer key from the app's secret store (Android Keystore, Apple Keychain)
 * -------------------------------------------------------------------------------------------------------------- */

/* Loads the key `name` into key[0..len): sets *found = 1 after writing all len bytes, *found = 0 when the store holds
 * no such key. Returns FERRY_OK, or another status when the store cannot be read (ferry_open then fails with
 * FERRY_ERR_STORAGE and creates nothing). The key buffer is Ferry's and is wiped after the call. */
typedef ferry_status (*ferry_key_load_fn)(const char* name, uint8_t* key, size_t len, int* found, void* user);
/* Keeps key[0..len) under `name` (copy it: the buffer is wiped after the call). FERRY_OK only once it is kept. */
typedef ferry_status (*ferry_key_store_fn)(const char* name, const uint8_t* key, size_t len, void* user);

/* The buffer's encryption key (32 bytes) lives in the app's secret store instead of a key file beside the buffer
 * ("<path>.key", which Android's Auto Backup or a device backup would copy along with the buffer). Used by
 * ferry_open() when no ferry_options_set_encryption_key() was given: load(name); if found, that key opens the buffer
 * (a wrong one: FERRY_ERR_BUFFER_UNREADABLE, as for any wrong key); if not, a key file left by an earlier version is
 * moved into the store (stored, loaded back and compared, then the file removed), else a new random key is made and
 * store()d before the buffer is created with it. A failing load or store: FERRY_ERR_STORAGE, nothing created.
 * name is "ferry-buffer-key:" followed by the storage path relative to the platform's data directory (the full path
 * when it lies elsewhere). The callbacks run on the thread that calls ferry_open(), during that call only;
 * free_user(user) (may be NULL) is called once, when ferry_open() has finished with them or the options are freed
 * unopened. NULL load or store: FERRY_ERR_INVALID_ARGUMENT. */
FERRY_API ferry_status ferry_options_set_key_provider(ferry_options* o, ferry_key_load_fn load,
                                                      ferry_key_store_fn store, void* user,
                                                      void (*free_user)(void* user));

/* ----------------------------------------------------------------------------------------------------------------
 * Appended: consent records (issue 12)
 * -------------------------------------------------------------------------------------------------------------- */

/* The privacy notice the app shows: its id (1-200 bytes) and version (1-64 bytes), no control characters. Every
 * consent record made from then on names them. Without it, records carry no notice (null). */
FERRY_API ferry_status ferry_options_set_notice(ferry_options* o, const char* notice_id, const char* version);

/* The language the notice was shown in (1-35 bytes, e.g. "de-CH"), carried by every consent record. Default: the
 * device's locale. */
FERRY_API ferry_status ferry_options_set_consent_language(ferry_options* o, const char* language);

/* ----------------------------------------------------------------------------------------------------------------
 * Appended: the app's data directory (issue 17)
 * -------------------------------------------------------------------------------------------------------------- */

/* The app's data directory, an absolute path (trailing '/' removed), in place of the platform's (Linux:
 * $XDG_DATA_HOME or ~/.local/share; Android: the app's no-backup directory on internal storage; Apple: Application
 * Support). The default storage path is "<dir>/ferry/<app>/buffer.db", and a key provider's key names are relative
 * to it. Android bindings give Context.getNoBackupFilesDir(), which is right for an app moved to adoptable storage
 * too. NULL, "" or a relative path: FERRY_ERR_INVALID_ARGUMENT. */
FERRY_API ferry_status ferry_options_set_data_dir(ferry_options* o, const char* dir);

/* ----------------------------------------------------------------------------------------------------------------
 * Appended: requests filed by the person from the device (issue 13)
 * -------------------------------------------------------------------------------------------------------------- */

/* Files a request about the user's data with the collector: kind is one the collector's request register accepts
 * ("access", "erasure", "correction", ...; 1-32 lowercase letters or '_'; the collector refuses others). The request
 * is queued durably (like ferry_forget), sent after the buffered events with the write key
 * (POST /v1/device/requests) for this device's anonymousIds, and waited for up to timeout_ms. The collector registers
 * it for the device's own subject only (ids it has seen on this device's events), awaiting_verification by an
 * officer. *receipt_json (set whenever the request was queued, also on TIMEOUT and NETWORK; release with
 * ferry_free()) is {"receipt": the id to ask about it with, "kind", "reference": the collector's request id or
 * null while queued, "state": "queued" | "awaiting_verification" | ... | "refused"[, "error"]}.
 * FERRY_OK once registered; FERRY_ERR_TIMEOUT (still queued, retried across restarts); FERRY_ERR_NETWORK when the
 * collector refused it (state "refused") or cannot be reached; FERRY_ERR_INVALID_ARGUMENT for a malformed kind. */
FERRY_API ferry_status ferry_request(ferry_client* c, const char* kind, uint32_t timeout_ms, char** receipt_json);

/* The state of a filed request, asked of the collector (at most timeout_ms): *status_json is {"receipt",
 * "reference", "kind", "state", "receivedAt", "dueAt", "refusalReason", "copyReady", "delivered"}, or the receipt's
 * JSON while it is queued or was refused. FERRY_ERR_INVALID_ARGUMENT for a receipt this buffer never gave. */
FERRY_API ferry_status ferry_request_status(ferry_client* c, const char* receipt, uint32_t timeout_ms,
                                            char** status_json);

/* The copy of an approved access request, fetched once through a one-time link (single use, short-lived): FERRY_OK
 * with *copy_json the copy (the collector's export format, docs/schema/export.schema.json), which completes the
 * request; FERRY_OK with *copy_json NULL while the copy is not ready (see ferry_request_status). The built-in
 * transport keeps answers up to 1 MiB: a larger copy fails with FERRY_ERR_NETWORK. */
FERRY_API ferry_status ferry_request_copy(ferry_client* c, const char* receipt, uint32_t timeout_ms, char** copy_json);

/* A code for the user to type on the project's self-service page (public intake, issue 13): the buffered events
 * are sent first, then the collector is asked (POST /v1/device/verification-code, with the write key) for a code
 * bound to the subject this device demonstrably uses (the first of its anonymousIds seen on its events). The person
 * types the code on the page, which binds their request to that subject (never to what they typed there).
 * *code_json (release with ferry_free()) is {"code": 8 digits, "expiresAt": ISO 8601}; the code is short-lived and
 * single-use, so show it, do not store it. FERRY_ERR_NETWORK when the collector refused (no public intake, no event
 * of this device known yet, too many codes asked) or cannot be reached; FERRY_ERR_TIMEOUT. */
FERRY_API ferry_status ferry_request_verification_code(ferry_client* c, uint32_t timeout_ms, char** code_json);

/* ----------------------------------------------------------------------------------------------------------------
 * Appended: re-consent when the notice changes (issue 12)
 * -------------------------------------------------------------------------------------------------------------- */

/* With a notice version set (ferry_options_set_notice), ferry_open() sends every purpose the user granted under
 * another notice version back to PENDING (a grant recorded before this version of the library counts as made under an
 * unknown version), each recorded as a consent record of method "notice_change" (previous "granted", state
 * "pending", the new version) and uploaded like any record; the user's choice is asked again. This option narrows it
 * to the purposes whose terms changed: a comma-separated list ("marketing,analytics"; spaces around names ignored);
 * the other purposes keep their grant under the new version. An empty list or an invalid name:
 * FERRY_ERR_INVALID_ARGUMENT. Denials, defaults and pending purposes are not asked again (a default granted by the
 * app is recorded again, method "default", under the new version). */
FERRY_API ferry_status ferry_options_set_notice_changed_purposes(ferry_options* o, const char* purposes);

/* ----------------------------------------------------------------------------------------------------------------
 * Appended: minors and guardian consent (issue 12)
 * -------------------------------------------------------------------------------------------------------------- */

/* Marks the current user as a minor (minor = 1) or lifts the mark (0; other values: FERRY_ERR_INVALID_ARGUMENT).
 * Persisted in the buffer and recorded: a consent record of purpose "necessary" with method "minor" and "minor":
 * true/false, uploaded like every record; every consent record made while marked carries "minor": true. While the
 * user is marked, only a guardian's grant (ferry_set_consent_guardian) admits events of a purpose other than
 * "necessary": marking sends every grant that is not a guardian's back to PENDING (each recorded, method "minor"), and
 * a later ferry_set_consent() grant is recorded but admits nothing (ferry_get_consent() says PENDING). Lifting the mark
 * restores nothing by itself: the user's next choices count. Setting the state the user already has records
 * nothing. */
FERRY_API ferry_status ferry_set_minor(ferry_client* c, int minor);

/* Records a guardian's choice for a purpose (as ferry_set_consent(), with method "guardian"): for a user marked as a
 * minor, a guardian's GRANTED is what admits the purpose's events; DENIED purges them. Also accepted for a user who
 * is not marked (recorded as given). "necessary" cannot be denied (FERRY_ERR_INVALID_ARGUMENT). */
FERRY_API ferry_status ferry_set_consent_guardian(ferry_client* c, const char* purpose, ferry_consent state);

/* ----------------------------------------------------------------------------------------------------------------
 * Appended: holding events of a pending purpose is opt-in (issue 12)
 * -------------------------------------------------------------------------------------------------------------- */

/* BEHAVIOUR CHANGE: an event of a PENDING purpose is no longer held by default. ferry_track() (screen, identify)
 * returns FERRY_ERR_CONSENT_DENIED, stores nothing and counts it in ferry_stats_json()'s "dropped_pending" (logged
 * once per purpose), unless the app opts in for that purpose here: its events are then stored encrypted while it is
 * pending and sent once granted, as before, for at most max_ms (1 s to 365 days); held events older than that are
 * dropped (counted in "dropped_pending") while the purpose is still pending, also just before a grant would release
 * them. Buffered events of a pending purpose that is not held (made under a grant that a new notice or a minor's mark
 * sent back to pending, or held by an older version) are dropped too. "necessary" and "sensitive" (never held):
 * FERRY_ERR_INVALID_ARGUMENT. */
FERRY_API ferry_status ferry_options_set_hold_pending(ferry_options* o, const char* purpose, uint64_t max_ms);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FERRY_FERRY_H_ */
