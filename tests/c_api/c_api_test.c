/*
 * c_api_test.c — exercises every function of ferry.h from plain C99, against the shared library libferry.so.
 *
 * Real parts only: a real SQLCipher buffer in a fresh temporary directory, the library's own threads, reopen with the
 * same key and with a wrong key. No collector is configured: uploads are covered by the integration tests.
 * Exit status 0 when every check passed; each failed check prints its line.
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry/ferry.h"
#include "tests/c_api/check.h"

/* ---- small helpers ---------------------------------------------------------------------------------------- */

/* The integer value of "key": in a compact JSON object, or -1 when the key is missing. */
static long StatInt(const char* json, const char* key) {
  char needle[64];
  const char* p;
  snprintf(needle, sizeof needle, "\"%s\":", key);
  p = json ? strstr(json, needle) : NULL;
  if (p == NULL) return -1;
  return strtol(p + strlen(needle), NULL, 10);
}

/* The current stats of c as a malloc'ed copy (never NULL; "{}" on failure). */
static char* Stats(ferry_client* c) {
  char* s = NULL;
  char* copy;
  ferry_status st = ferry_stats_json(c, &s);
  CHECK(st == FERRY_OK);
  CHECK(s != NULL);
  copy = malloc(s ? strlen(s) + 1 : 3);
  strcpy(copy, s ? s : "{}");
  ferry_free(s);
  return copy;
}

static long Stat(ferry_client* c, const char* key) {
  char* s = Stats(c);
  long v = StatInt(s, key);
  free(s);
  return v;
}

static char* Export(ferry_client* c) {
  char* s = NULL;
  char* copy;
  CHECK_STATUS(ferry_export_local(c, &s), FERRY_OK);
  copy = malloc(s ? strlen(s) + 1 : 3);
  strcpy(copy, s ? s : "{}");
  ferry_free(s);
  return copy;
}

static int g_log_lines = 0;
static int g_log_warn_lines = 0;
static void LogCb(int level, const char* msg, void* user) {
  int* tag = (int*)user;
  if (tag != NULL && *tag == 42 && msg != NULL) {
    ++g_log_lines;
    if (level >= FERRY_LOG_WARN) ++g_log_warn_lines;
  }
}

static ferry_status FakeSend(const ferry_http_request* req, ferry_http_response* resp, void* user) {
  (void)req;
  (void)user;
  resp->status = 0;
  return FERRY_ERR_NETWORK;
}

static void RemoveTree(const char* dir) {
  DIR* d = opendir(dir);
  struct dirent* e;
  char path[4096];
  if (d == NULL) return;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    remove(path);
  }
  closedir(d);
  rmdir(dir);
}

/* Whether dir holds a file whose name starts with prefix. */
static int HasFileWithPrefix(const char* dir, const char* prefix) {
  DIR* d = opendir(dir);
  struct dirent* e;
  int found = 0;
  if (d == NULL) return 0;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = 1;
  }
  closedir(d);
  return found;
}

static const uint8_t kKey[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* ---- the checks ------------------------------------------------------------------------------------------- */

static void TestLibrary(void) {
  char want[32];
  const ferry_status all[] = {FERRY_OK,          FERRY_ERR_INVALID_ARGUMENT, FERRY_ERR_CONSENT_DENIED,
                              FERRY_ERR_STORAGE, FERRY_ERR_CLOSED,           FERRY_ERR_TIMEOUT,
                              FERRY_ERR_NETWORK, FERRY_ERR_INTERNAL};
  size_t i, j;
  snprintf(want, sizeof want, "%d.%d.%d", FERRY_VERSION_MAJOR, FERRY_VERSION_MINOR, FERRY_VERSION_PATCH);
  CHECK(ferry_version() != NULL);
  CHECK(strcmp(ferry_version(), want) == 0);
  CHECK(FERRY_VERSION_AT_LEAST(0, 0, 1));
  CHECK(!FERRY_VERSION_AT_LEAST(FERRY_VERSION_MAJOR + 1, 0, 0));

  for (i = 0; i < sizeof all / sizeof all[0]; ++i) {
    const char* s = ferry_status_str(all[i]);
    CHECK(s != NULL && s[0] != '\0');
    CHECK(strcmp(s, "unknown status") != 0);
    for (j = 0; j < i; ++j) CHECK(strcmp(s, ferry_status_str(all[j])) != 0); /* distinct messages */
  }
  CHECK(strcmp(ferry_status_str((ferry_status)42), "unknown status") == 0);
  CHECK(strcmp(ferry_status_str((ferry_status)-1), "unknown status") == 0);
  ferry_free(NULL);
  ferry_options_free(NULL);
}

static void TestOptionsSetters(void) {
  ferry_options* o = ferry_options_new();
  int tag = 42;
  CHECK(o != NULL);
  if (o == NULL) return;

  /* endpoint */
  CHECK_STATUS(ferry_options_set_endpoint(o, "https://collect.example.com"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_endpoint(o, "https://collect.example.com:8443/"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_endpoint(o, "http://127.0.0.1:8080"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_endpoint(o, "http://localhost:8080"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_endpoint(o, "http://collect.example.com"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_endpoint(o, "ftp://collect.example.com"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_endpoint(o, ""), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_endpoint(o, NULL), FERRY_ERR_INVALID_ARGUMENT);
  /* write key */
  CHECK_STATUS(ferry_options_set_write_key(o, "wk_test_0123456789"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_write_key(o, ""), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_write_key(o, "has space"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_write_key(o, "tab\tkey"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_write_key(o, NULL), FERRY_ERR_INVALID_ARGUMENT);
  {
    char long_key[300];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    CHECK_STATUS(ferry_options_set_write_key(o, long_key), FERRY_ERR_INVALID_ARGUMENT);
    long_key[256] = '\0';
    CHECK_STATUS(ferry_options_set_write_key(o, long_key), FERRY_OK);
  }
  /* storage path, key, CA */
  CHECK_STATUS(ferry_options_set_storage_path(o, "/tmp/does-not-matter/buffer.db"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_storage_path(o, ""), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_storage_path(o, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_encryption_key(o, kKey, 32), FERRY_OK);
  CHECK_STATUS(ferry_options_set_encryption_key(o, kKey, 31), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_encryption_key(o, kKey, 0), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_encryption_key(o, NULL, 32), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_ca_file(o, "/etc/ssl/certs/ca-certificates.crt"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_ca_file(o, ""), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_ca_file(o, NULL), FERRY_ERR_INVALID_ARGUMENT);
  /* default consent */
  CHECK_STATUS(ferry_options_set_default_consent(o, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  CHECK_STATUS(ferry_options_set_default_consent(o, "my_purpose-2", FERRY_CONSENT_GRANTED), FERRY_OK);
  CHECK_STATUS(ferry_options_set_default_consent(o, "sensitive", FERRY_CONSENT_DENIED), FERRY_OK);
  CHECK_STATUS(ferry_options_set_default_consent(o, "sensitive", FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_default_consent(o, "necessary", FERRY_CONSENT_DENIED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_default_consent(o, "Not Valid", FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_default_consent(o, "", FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_default_consent(o, "analytics", (ferry_consent)7), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_default_consent(o, NULL, FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  /* numbers */
  CHECK_STATUS(ferry_options_set_flush_interval_ms(o, 100), FERRY_OK);
  CHECK_STATUS(ferry_options_set_flush_interval_ms(o, 24u * 3600u * 1000u), FERRY_OK);
  CHECK_STATUS(ferry_options_set_flush_interval_ms(o, 99), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_flush_interval_ms(o, 24u * 3600u * 1000u + 1u), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_batch_size(o, 1), FERRY_OK);
  CHECK_STATUS(ferry_options_set_batch_size(o, 1000), FERRY_OK);
  CHECK_STATUS(ferry_options_set_batch_size(o, 0), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_batch_size(o, 1001), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_max_storage_bytes(o, 64u * 1024u), FERRY_OK);
  CHECK_STATUS(ferry_options_set_max_storage_bytes(o, 64u * 1024u - 1u), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_max_event_age_ms(o, 1000), FERRY_OK);
  CHECK_STATUS(ferry_options_set_max_event_age_ms(o, 999), FERRY_ERR_INVALID_ARGUMENT);
  /* PII rules */
  CHECK_STATUS(ferry_options_set_pii_rules(o, "{}"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_pii_rules(o, "{\"detectors\":{\"email\":\"mask\"},\"paths\":{\"*.pin\":\"drop\"}}"),
               FERRY_OK);
  CHECK_STATUS(ferry_options_set_pii_rules(o, "{\"detectors\":{\"email\":\"explode\"}}"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_pii_rules(o, "{\"no_such_key\":1}"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_pii_rules(o, "{not json"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_pii_rules(o, "[1,2]"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_pii_rules(o, NULL), FERRY_ERR_INVALID_ARGUMENT);
  /* callbacks and the rest */
  CHECK_STATUS(ferry_options_set_log_callback(o, LogCb, &tag), FERRY_OK);
  CHECK_STATUS(ferry_options_set_log_callback(o, NULL, NULL), FERRY_OK); /* removes the sink */
  CHECK_STATUS(ferry_options_set_durability(o, FERRY_DURABILITY_SYNC), FERRY_OK);
  CHECK_STATUS(ferry_options_set_durability(o, FERRY_DURABILITY_BATCHED), FERRY_OK);
  CHECK_STATUS(ferry_options_set_durability(o, (ferry_durability)9), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_app(o, "c_api_test", "1.2.3"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_app(o, "c_api_test", NULL), FERRY_OK);
  CHECK_STATUS(ferry_options_set_app(o, "", "1"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_app(o, "bad\xff\xfe", "1"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_app(o, NULL, "1"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_transport(o, FakeSend, NULL, NULL), FERRY_OK);
  CHECK_STATUS(ferry_options_set_transport(o, NULL, NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_pinned_public_key(o, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
               FERRY_OK);
  CHECK_STATUS(ferry_options_set_pinned_public_key(o, "md5//AAAA"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_session_timeout_ms(o, 60000), FERRY_OK);
  CHECK_STATUS(ferry_options_set_session_timeout_ms(o, 5), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_session_timeout_ms(NULL, 60000), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_pinned_public_key(o, NULL), FERRY_ERR_INVALID_ARGUMENT);
  ferry_options_free(o);

  /* A NULL options handle is refused by every setter. */
  CHECK_STATUS(ferry_options_set_endpoint(NULL, "https://collect.example.com"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_write_key(NULL, "k"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_storage_path(NULL, "/tmp/x.db"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_encryption_key(NULL, kKey, 32), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_ca_file(NULL, "/x.pem"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_default_consent(NULL, "analytics", FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_flush_interval_ms(NULL, 1000), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_batch_size(NULL, 10), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_max_storage_bytes(NULL, 1u << 20), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_max_event_age_ms(NULL, 60000), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_pii_rules(NULL, "{}"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_log_callback(NULL, LogCb, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_durability(NULL, FERRY_DURABILITY_SYNC), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_app(NULL, "a", "1"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_transport(NULL, FakeSend, NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_pinned_public_key(NULL, "sha256//AAAA"), FERRY_ERR_INVALID_ARGUMENT);
}

/* Every client function with a NULL handle: refused, no crash. */
static void TestNullClient(void) {
  char* out = (char*)"untouched";
  ferry_client* c = (ferry_client*)&out; /* overwritten by ferry_open(NULL, ...) */
  CHECK_STATUS(ferry_open(NULL, &c), FERRY_ERR_INVALID_ARGUMENT);
  CHECK(c == NULL);
  CHECK_STATUS(ferry_open(ferry_options_new(), NULL), FERRY_ERR_INVALID_ARGUMENT); /* options freed */
  CHECK_STATUS(ferry_open(NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_close(NULL, 0), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_track(NULL, "e", NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_screen(NULL, "Home", NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_identify(NULL, "u", NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_reset(NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_set_consent(NULL, "analytics", FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK(ferry_get_consent(NULL, "analytics") == FERRY_CONSENT_PENDING);
  CHECK(ferry_get_consent(NULL, NULL) == FERRY_CONSENT_PENDING);
  CHECK_STATUS(ferry_flush(NULL, 0), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_forget(NULL, 0), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_export_local(NULL, &out), FERRY_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL); /* *json_out is cleared on failure */
  out = (char*)"untouched";
  CHECK_STATUS(ferry_stats_json(NULL, &out), FERRY_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  CHECK_STATUS(ferry_export_local(NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_stats_json(NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  out = (char*)"untouched";
  CHECK_STATUS(ferry_request(NULL, "access", 0, &out), FERRY_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  out = (char*)"untouched";
  CHECK_STATUS(ferry_request_status(NULL, "r", 0, &out), FERRY_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  out = (char*)"untouched";
  CHECK_STATUS(ferry_request_copy(NULL, "r", 0, &out), FERRY_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  out = (char*)"untouched";
  CHECK_STATUS(ferry_request_verification_code(NULL, 0, &out), FERRY_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  CHECK_STATUS(ferry_options_set_notice_changed_purposes(NULL, "marketing"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_set_minor(NULL, 1), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_set_consent_guardian(NULL, "analytics", FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_hold_pending(NULL, "marketing", 60000), FERRY_ERR_INVALID_ARGUMENT);
}

static ferry_client* OpenClient(const char* db_path, const uint8_t* key, int* tag) {
  ferry_options* o = ferry_options_new();
  ferry_client* c = NULL;
  CHECK(o != NULL);
  CHECK_STATUS(ferry_options_set_storage_path(o, db_path), FERRY_OK);
  CHECK_STATUS(ferry_options_set_encryption_key(o, key, 32), FERRY_OK);
  CHECK_STATUS(ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  CHECK_STATUS(ferry_options_set_default_consent(o, "personalization", FERRY_CONSENT_DENIED), FERRY_OK);
  /* marketing stays pending: its events are held (for at most a day) only because the app opts in (issue 12). */
  CHECK_STATUS(ferry_options_set_hold_pending(o, "marketing", 86400000u), FERRY_OK);
  CHECK_STATUS(ferry_options_set_hold_pending(o, "sensitive", 86400000u), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_options_set_app(o, "c_api_test", "1.0"), FERRY_OK);
  CHECK_STATUS(ferry_options_set_log_callback(o, LogCb, tag), FERRY_OK);
  CHECK_STATUS(ferry_open(o, &c), FERRY_OK);
  CHECK(c != NULL);
  return c;
}

static void TestClient(const char* dir) {
  char db[4096];
  int tag = 42;
  ferry_client* c;
  char* stats;
  char* exp;
  long invalid_before;
  uint8_t wrong_key[32];

  snprintf(db, sizeof db, "%s/sub/buffer.db", dir); /* the directory is created by ferry_open */
  c = OpenClient(db, kKey, &tag);
  if (c == NULL) return;

  /* Consent: configured defaults, the built-ins, never-configured purposes. */
  CHECK(ferry_get_consent(c, "analytics") == FERRY_CONSENT_GRANTED);
  CHECK(ferry_get_consent(c, "necessary") == FERRY_CONSENT_GRANTED);
  CHECK(ferry_get_consent(c, "personalization") == FERRY_CONSENT_DENIED);
  CHECK(ferry_get_consent(c, "marketing") == FERRY_CONSENT_PENDING);
  CHECK(ferry_get_consent(c, "sensitive") == FERRY_CONSENT_PENDING);
  CHECK(ferry_get_consent(c, "never_configured") == FERRY_CONSENT_PENDING);
  CHECK(ferry_get_consent(c, NULL) == FERRY_CONSENT_PENDING);

  /* Events that are accepted. */
  CHECK_STATUS(ferry_track(c, "app_open", NULL, NULL), FERRY_OK);
  CHECK_STATUS(ferry_track(c, "signup",
                           "{\"plan\":\"pro\",\"contact\":\"alice.liu@example.com\",\"mobile\":\"13812345678\","
                           "\"password\":\"hunter2\",\"nested\":{\"note\":\"mail bob@example.org\"}}",
                           "analytics"),
               FERRY_OK);
  CHECK_STATUS(ferry_track(c, "promo_seen", "{\"campaign\":\"spring\"}", "marketing"), FERRY_OK); /* pending */
  CHECK_STATUS(ferry_screen(c, "Home", NULL), FERRY_OK);
  CHECK_STATUS(ferry_screen(c, "Settings", "{\"tab\":\"privacy\"}"), FERRY_OK);
  CHECK_STATUS(ferry_identify(c, "user-42", "{\"tier\":\"gold\"}"), FERRY_OK);
  CHECK_STATUS(ferry_track(c, "\xe4\xb8\xad\xe6\x96\x87_event", "{}", NULL), FERRY_OK); /* UTF-8 name */

  /* Denied purpose: refused and counted, nothing stored. */
  CHECK_STATUS(ferry_track(c, "recs_shown", "{\"item\":\"leaked-if-stored\"}", "personalization"),
               FERRY_ERR_CONSENT_DENIED);
  CHECK(Stat(c, "dropped_consent") == 1);

  /* Invalid input: refused, counted in "invalid", logged as a warning. */
  invalid_before = Stat(c, "invalid");
  CHECK(invalid_before == 0);
  CHECK_STATUS(ferry_track(c, NULL, NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_track(c, "", NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_track(c, "bad_json", "{\"a\":", NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_track(c, "not_object", "[1,2,3]", NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_track(c, "bad_utf8\xc3\x28", NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_track(c, "bad_purpose", NULL, "Not A Purpose"), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_screen(c, NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_identify(c, NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_identify(c, "", NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_set_consent(c, NULL, FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_set_consent(c, "marketing", (ferry_consent)5), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_set_consent(c, "necessary", FERRY_CONSENT_DENIED), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_export_local(c, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_stats_json(c, NULL), FERRY_ERR_INVALID_ARGUMENT);
  {
    char big[300];
    memset(big, 'e', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_STATUS(ferry_track(c, big, NULL, NULL), FERRY_ERR_INVALID_ARGUMENT); /* over 200 bytes */
  }
  CHECK(Stat(c, "invalid") == 15);
  CHECK(g_log_warn_lines >= 15);
  /* Control characters in ids and names (issue 11): refused with a reason that says so; nothing is stored. */
  CHECK_STATUS(ferry_track(c, "line\nbreak", NULL, NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_screen(c, "esc\x1b[31mred", NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_identify(c, "carol\x01x", NULL), FERRY_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(ferry_identify(c, "c1\xc2\x85next", NULL), FERRY_ERR_INVALID_ARGUMENT); /* U+0085 */
  CHECK(Stat(c, "invalid") == 19);
  stats = Stats(c);
  CHECK(strstr(stats, "userId holds a control character") != NULL);
  free(stats);
  /* Requests filed from the device (issue 13): malformed arguments refused and counted. */
  {
    char* r = NULL;
    CHECK_STATUS(ferry_request(c, NULL, 0, &r), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_request(c, "access", 0, NULL), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_request(c, "Access!", 0, &r), FERRY_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL);
    CHECK_STATUS(ferry_request_status(c, NULL, 0, &r), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_request_status(c, "never-given", 0, &r), FERRY_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL);
    CHECK_STATUS(ferry_request_copy(c, "never-given", 0, NULL), FERRY_ERR_INVALID_ARGUMENT);
    CHECK(Stat(c, "invalid") == 24); /* an unknown receipt is not malformed input */
    CHECK_STATUS(ferry_request_verification_code(c, 0, NULL), FERRY_ERR_INVALID_ARGUMENT);
    CHECK(Stat(c, "invalid") == 25);
  }

  /* The local export: ids, consent and the masked events; the raw PII never reached the buffer. */
  exp = Export(c);
  CHECK(strstr(exp, "\"userId\": \"user-42\"") != NULL);
  CHECK(strstr(exp, "\"anonymousId\"") != NULL);
  CHECK(strstr(exp, "app_open") != NULL);
  CHECK(strstr(exp, "signup") != NULL);
  CHECK(strstr(exp, "promo_seen") != NULL);
  CHECK(strstr(exp, "Settings") != NULL);
  CHECK(strstr(exp, "\"plan\": \"pro\"") != NULL);
  CHECK(strstr(exp, "[email]") != NULL);
  CHECK(strstr(exp, "[phone]") != NULL);
  CHECK(strstr(exp, "alice.liu@example.com") == NULL);
  CHECK(strstr(exp, "bob@example.org") == NULL);
  CHECK(strstr(exp, "13812345678") == NULL);
  CHECK(strstr(exp, "hunter2") == NULL);
  CHECK(strstr(exp, "\"password\"") == NULL);
  CHECK(strstr(exp, "recs_shown") == NULL);
  CHECK(strstr(exp, "leaked-if-stored") == NULL);
  CHECK(strstr(exp, "carol") == NULL);
  free(exp);

  /* Stats (the export above waited for the writer to commit): the pending marketing event is held, the rest is
   * queued (no endpoint, so nothing is sent). */
  stats = Stats(c);
  CHECK(StatInt(stats, "pending_consent") == 1);
  CHECK(StatInt(stats, "queued") >= 6);
  CHECK(StatInt(stats, "sent") == 0);
  CHECK(StatInt(stats, "evicted") == 0);
  CHECK(StatInt(stats, "rejected") == 0);
  CHECK(StatInt(stats, "retries") >= 0);
  CHECK(strstr(stats, "\"last_error\":") != NULL);
  free(stats);

  /* Consent changes: granting makes the pending event sendable, denying refuses new events. */
  CHECK_STATUS(ferry_set_consent(c, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  CHECK(ferry_get_consent(c, "marketing") == FERRY_CONSENT_GRANTED);
  CHECK(Stat(c, "pending_consent") == 0);
  CHECK_STATUS(ferry_set_consent(c, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  CHECK(ferry_get_consent(c, "marketing") == FERRY_CONSENT_DENIED);
  CHECK_STATUS(ferry_track(c, "promo_click", NULL, "marketing"), FERRY_ERR_CONSENT_DENIED);
  CHECK(Stat(c, "dropped_consent") == 2);
  CHECK_STATUS(ferry_set_consent(c, "custom_purpose", FERRY_CONSENT_GRANTED), FERRY_OK);
  CHECK(ferry_get_consent(c, "custom_purpose") == FERRY_CONSENT_GRANTED);
  CHECK_STATUS(ferry_track(c, "custom_event", NULL, "custom_purpose"), FERRY_OK);

  /* Reset: the userId is forgotten, the anonymousId rotates. */
  CHECK_STATUS(ferry_reset(c), FERRY_OK);
  exp = Export(c);
  CHECK(strstr(exp, "\"userId\": null") != NULL);
  CHECK(strstr(exp, "\"previousAnonymousIds\": [") != NULL);
  free(exp);

  /* No endpoint: flush cannot succeed and says so. */
  CHECK_STATUS(ferry_flush(c, 200), FERRY_ERR_NETWORK);

  /* Close; everything accepted so far is committed and survives a reopen with the same key. Without an endpoint
   * nothing is sent, and that is FERRY_OK (ferry.h), with the events kept in the buffer. */
  CHECK_STATUS(ferry_close(c, 200), FERRY_OK);
  c = OpenClient(db, kKey, &tag);
  if (c == NULL) return;
  CHECK(ferry_get_consent(c, "marketing") == FERRY_CONSENT_DENIED); /* persisted */
  CHECK(ferry_get_consent(c, "custom_purpose") == FERRY_CONSENT_GRANTED);
  CHECK(Stat(c, "queued") >= 7);
  CHECK(Stat(c, "invalid") == 0); /* counters are per process */
  exp = Export(c);
  CHECK(strstr(exp, "custom_event") != NULL);
  free(exp);

  /* Forget: local data is wiped at once; the erasure request cannot reach a collector (none configured). */
  {
    ferry_status st = ferry_forget(c, 200);
    CHECK(st == FERRY_ERR_TIMEOUT || st == FERRY_ERR_NETWORK);
  }
  exp = Export(c);
  CHECK(strstr(exp, "signup") == NULL);
  CHECK(strstr(exp, "custom_event") == NULL);
  CHECK(strstr(exp, "user-42") == NULL);
  free(exp);
  {
    ferry_status st = ferry_close(c, 100);
    CHECK(st == FERRY_OK || st == FERRY_ERR_TIMEOUT);
  }

  /* A wrong key: ferry_open reports it and changes nothing; with the reset option the unreadable buffer is moved
   * aside, a fresh one starts, and every purpose is denied until set again (the recorded consent is lost). */
  memcpy(wrong_key, kKey, sizeof wrong_key);
  wrong_key[0] ^= 0xff;
  {
    ferry_options* o = ferry_options_new();
    ferry_client* refused = NULL;
    char sub[4096];
    CHECK_STATUS(ferry_options_set_storage_path(o, db), FERRY_OK);
    CHECK_STATUS(ferry_options_set_encryption_key(o, wrong_key, 32), FERRY_OK);
    CHECK_STATUS(ferry_options_set_reset_unreadable_buffer(o, 2), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_open(o, &refused), FERRY_ERR_BUFFER_UNREADABLE);
    CHECK(refused == NULL);
    CHECK(strcmp(ferry_status_str(FERRY_ERR_BUFFER_UNREADABLE), "unknown status") != 0);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK(!HasFileWithPrefix(sub, "buffer.db.unreadable-"));
    CHECK(!HasFileWithPrefix(sub, "buffer.db.corrupt-"));
    o = ferry_options_new();
    CHECK_STATUS(ferry_options_set_storage_path(o, db), FERRY_OK);
    CHECK_STATUS(ferry_options_set_encryption_key(o, wrong_key, 32), FERRY_OK);
    CHECK_STATUS(ferry_options_set_reset_unreadable_buffer(o, 1), FERRY_OK);
    CHECK_STATUS(ferry_options_set_log_callback(o, LogCb, &tag), FERRY_OK);
    CHECK_STATUS(ferry_open(o, &c), FERRY_OK);
    if (c == NULL) return;
    CHECK(HasFileWithPrefix(sub, "buffer.db.unreadable-"));
  }
  CHECK(Stat(c, "queued") == 0);
  CHECK(Stat(c, "buffer_resets") == 1);
  CHECK(ferry_get_consent(c, "marketing") == FERRY_CONSENT_DENIED);
  CHECK_STATUS(ferry_track(c, "refused_after_rekey", NULL, NULL), FERRY_ERR_CONSENT_DENIED);
  CHECK_STATUS(ferry_set_consent(c, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  CHECK_STATUS(ferry_track(c, "after_rekey", NULL, NULL), FERRY_OK);
  {
    ferry_status st = ferry_close(c, 100);
    CHECK(st == FERRY_OK || st == FERRY_ERR_TIMEOUT);
  }

  /* An unusable storage path: FERRY_ERR_STORAGE, no handle. */
  {
    ferry_options* o = ferry_options_new();
    ferry_client* bad = NULL;
    char file_as_dir[4096];
    FILE* f;
    snprintf(file_as_dir, sizeof file_as_dir, "%s/plain_file", dir);
    f = fopen(file_as_dir, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    snprintf(file_as_dir, sizeof file_as_dir, "%s/plain_file/buffer.db", dir);
    CHECK_STATUS(ferry_options_set_storage_path(o, file_as_dir), FERRY_OK);
    CHECK_STATUS(ferry_options_set_encryption_key(o, kKey, 32), FERRY_OK);
    CHECK_STATUS(ferry_open(o, &bad), FERRY_ERR_STORAGE);
    CHECK(bad == NULL);
  }
}

/* ---- the key provider: the buffer key in the app's secret store --------------------------------------------- */

/* An in-memory secret store standing in for the Android Keystore or the Apple Keychain. */
struct KeyVault {
  uint8_t key[32];
  int has;
  int loads;
  int stores;
  int fail_load;
  int fail_store;
  int freed;
  char name[4200];
};

static ferry_status VaultLoad(const char* name, uint8_t* key, size_t len, int* found, void* user) {
  struct KeyVault* v = (struct KeyVault*)user;
  ++v->loads;
  snprintf(v->name, sizeof v->name, "%s", name);
  if (v->fail_load) return FERRY_ERR_STORAGE;
  if (len != sizeof v->key) return FERRY_ERR_INVALID_ARGUMENT;
  *found = v->has;
  if (v->has) memcpy(key, v->key, len);
  return FERRY_OK;
}

static ferry_status VaultStore(const char* name, const uint8_t* key, size_t len, void* user) {
  struct KeyVault* v = (struct KeyVault*)user;
  ++v->stores;
  snprintf(v->name, sizeof v->name, "%s", name);
  if (v->fail_store || len != sizeof v->key) return FERRY_ERR_STORAGE;
  memcpy(v->key, key, len);
  v->has = 1;
  return FERRY_OK;
}

static void VaultFree(void* user) { ++((struct KeyVault*)user)->freed; }

/* Opens db with the vault as the key provider (no encryption key given); the status, the client in *out. */
static ferry_status OpenWithVault(const char* db, struct KeyVault* v, ferry_client** out) {
  ferry_options* o = ferry_options_new();
  *out = NULL;
  CHECK_STATUS(ferry_options_set_storage_path(o, db), FERRY_OK);
  CHECK_STATUS(ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  CHECK_STATUS(ferry_options_set_key_provider(o, VaultLoad, VaultStore, v, VaultFree), FERRY_OK);
  return ferry_open(o, out);
}

static int Exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int EndsWith(const char* s, const char* suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void CloseOk(ferry_client* c) {
  ferry_status st = ferry_close(c, 100);
  CHECK(st == FERRY_OK || st == FERRY_ERR_TIMEOUT);
}

static void TestKeyProvider(const char* dir) {
  char kp[4096], db[4200], keyfile[4300], mig[4096], migdb[4200], migkey[4300], nodb[4200];
  struct KeyVault v, wrong, broken;
  ferry_client* c = NULL;
  char* exp;

  snprintf(kp, sizeof kp, "%s/kp", dir);
  snprintf(db, sizeof db, "%s/buffer.db", kp);
  snprintf(keyfile, sizeof keyfile, "%s.key", db);

  /* Argument checks; options freed unopened release the provider's user data once. */
  memset(&v, 0, sizeof v);
  {
    ferry_options* o = ferry_options_new();
    CHECK_STATUS(ferry_options_set_key_provider(NULL, VaultLoad, VaultStore, &v, VaultFree),
                 FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_options_set_key_provider(o, NULL, VaultStore, &v, VaultFree), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_options_set_key_provider(o, VaultLoad, NULL, &v, VaultFree), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_options_set_key_provider(o, VaultLoad, VaultStore, &v, VaultFree), FERRY_OK);
    ferry_options_free(o);
    CHECK(v.freed == 1);
  }

  /* First open: no key anywhere, so a new one is made and stored in the vault; no key file beside the buffer. */
  memset(&v, 0, sizeof v);
  CHECK_STATUS(OpenWithVault(db, &v, &c), FERRY_OK);
  if (c == NULL) return;
  CHECK(v.stores == 1);
  CHECK(v.has == 1);
  CHECK(v.freed == 1); /* needed at open only */
  CHECK(strncmp(v.name, "ferry-buffer-key:", 17) == 0);
  CHECK(EndsWith(v.name, "kp/buffer.db"));
  CHECK(!Exists(keyfile));
  CHECK(Exists(db));
  CHECK_STATUS(ferry_track(c, "kept_by_the_vault", NULL, NULL), FERRY_OK);
  CloseOk(c);

  /* Reopen: the vault's key opens the buffer and the event is still there; nothing new stored. */
  CHECK_STATUS(OpenWithVault(db, &v, &c), FERRY_OK);
  if (c == NULL) return;
  CHECK(v.stores == 1);
  CHECK(v.loads >= 2);
  exp = Export(c);
  CHECK(strstr(exp, "kept_by_the_vault") != NULL);
  free(exp);
  CloseOk(c);
  CHECK(!Exists(keyfile));

  /* A vault holding another key: the buffer is not readable with it, and nothing is changed. */
  memcpy(&wrong, &v, sizeof wrong);
  wrong.key[0] ^= 0x5a;
  wrong.freed = 0;
  CHECK_STATUS(OpenWithVault(db, &wrong, &c), FERRY_ERR_BUFFER_UNREADABLE);
  CHECK(c == NULL);
  CHECK(wrong.freed == 1);
  CHECK(!HasFileWithPrefix(kp, "buffer.db.unreadable-"));
  CHECK_STATUS(OpenWithVault(db, &v, &c), FERRY_OK); /* the right key still opens it */
  if (c == NULL) return;
  CloseOk(c);

  /* A store that cannot be read, or cannot keep a new key: FERRY_ERR_STORAGE and no buffer created. */
  snprintf(nodb, sizeof nodb, "%s/never.db", kp);
  memset(&broken, 0, sizeof broken);
  broken.fail_load = 1;
  CHECK_STATUS(OpenWithVault(nodb, &broken, &c), FERRY_ERR_STORAGE);
  CHECK(c == NULL);
  CHECK(!Exists(nodb));
  memset(&broken, 0, sizeof broken);
  broken.fail_store = 1;
  CHECK_STATUS(OpenWithVault(nodb, &broken, &c), FERRY_ERR_STORAGE);
  CHECK(c == NULL);
  CHECK(broken.stores == 1);
  CHECK(!Exists(nodb));
  CHECK(broken.freed == 1);

  /* A buffer made before the provider (key file beside it): its key moves into the vault, the file goes. */
  snprintf(mig, sizeof mig, "%s/mig", dir);
  snprintf(migdb, sizeof migdb, "%s/buffer.db", mig);
  snprintf(migkey, sizeof migkey, "%s.key", migdb);
  {
    ferry_options* o = ferry_options_new();
    CHECK_STATUS(ferry_options_set_storage_path(o, migdb), FERRY_OK);
    CHECK_STATUS(ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
    CHECK_STATUS(ferry_open(o, &c), FERRY_OK);
    if (c == NULL) return;
    CHECK_STATUS(ferry_track(c, "before_the_vault", NULL, NULL), FERRY_OK);
    CloseOk(c);
  }
  CHECK(Exists(migkey));
  memset(&v, 0, sizeof v);
  CHECK_STATUS(OpenWithVault(migdb, &v, &c), FERRY_OK);
  if (c == NULL) return;
  CHECK(v.stores == 1);
  CHECK(v.has == 1);
  CHECK(!Exists(migkey));
  exp = Export(c);
  CHECK(strstr(exp, "before_the_vault") != NULL);
  free(exp);
  CloseOk(c);
  CHECK_STATUS(OpenWithVault(migdb, &v, &c), FERRY_OK); /* and from the vault alone next time */
  if (c == NULL) return;
  CHECK(v.stores == 1);
  CloseOk(c);

  RemoveTree(kp);
  RemoveTree(mig);
}

/* ---- the app's data directory: the default buffer and the key provider's names below it ---------------------- */

static void TestDataDir(const char* dir) {
  char data[4096], slashed[4200], db[4300], keyfile[4400];
  struct KeyVault v;
  ferry_client* c = NULL;

  {
    ferry_options* o = ferry_options_new();
    CHECK_STATUS(ferry_options_set_data_dir(NULL, "/tmp"), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_options_set_data_dir(o, NULL), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_options_set_data_dir(o, ""), FERRY_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ferry_options_set_data_dir(o, "relative/dir"), FERRY_ERR_INVALID_ARGUMENT);
    ferry_options_free(o);
  }

  /* No storage path: the buffer is <data dir>/ferry/<app>/buffer.db, its key file beside it. A trailing '/' is
   * dropped. */
  snprintf(data, sizeof data, "%s/appdata", dir);
  snprintf(slashed, sizeof slashed, "%s//", data);
  snprintf(db, sizeof db, "%s/ferry/data-dir-app/buffer.db", data);
  snprintf(keyfile, sizeof keyfile, "%s.key", db);
  {
    ferry_options* o = ferry_options_new();
    CHECK_STATUS(ferry_options_set_data_dir(o, slashed), FERRY_OK);
    CHECK_STATUS(ferry_options_set_app(o, "data-dir-app", "1"), FERRY_OK);
    CHECK_STATUS(ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
    CHECK_STATUS(ferry_open(o, &c), FERRY_OK);
    if (c == NULL) return;
    CHECK_STATUS(ferry_track(c, "in_the_data_dir", NULL, NULL), FERRY_OK);
    CloseOk(c);
  }
  CHECK(Exists(db));
  CHECK(Exists(keyfile));

  /* With a key provider: the key's name is the storage path relative to the data directory. */
  memset(&v, 0, sizeof v);
  {
    ferry_options* o = ferry_options_new();
    CHECK_STATUS(ferry_options_set_data_dir(o, data), FERRY_OK);
    CHECK_STATUS(ferry_options_set_app(o, "vault-app", "1"), FERRY_OK);
    CHECK_STATUS(ferry_options_set_key_provider(o, VaultLoad, VaultStore, &v, VaultFree), FERRY_OK);
    CHECK_STATUS(ferry_open(o, &c), FERRY_OK);
    if (c == NULL) return;
    CloseOk(c);
  }
  CHECK(v.stores == 1);
  CHECK(strcmp(v.name, "ferry-buffer-key:ferry/vault-app/buffer.db") == 0);
  RemoveTree(data);
}

int main(void) {
  char dir[] = "/tmp/ferry_c_api_test.XXXXXX";
  char sub[sizeof dir + 8];
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  TestLibrary();
  TestOptionsSetters();
  TestNullClient();
  TestClient(dir);
  TestKeyProvider(dir);
  TestDataDir(dir);

  snprintf(sub, sizeof sub, "%s/sub", dir);
  RemoveTree(sub);
  RemoveTree(dir);
  printf("c_api_test: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
