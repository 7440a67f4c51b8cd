/*
 * transport_none_test.c — a FERRY_TRANSPORT=none libferry (no libcurl inside) sends through the app's transport
 * only. Built and run only in such a build (tests/c_api/CMakeLists.txt).
 *
 *  1. An endpoint without an app transport: ferry_open refuses (FERRY_ERR_INVALID_ARGUMENT), the log callback says
 *     why (FERRY_TRANSPORT=none, ferry_options_set_transport), and no buffer file was created.
 *  2. With an app transport (a C function here): events tracked, ferry_flush returns FERRY_OK, the transport saw a
 *     POST to <endpoint>/v1/batch with the write key, a zstd body that decodes to a batch holding the events, and
 *     the stats count them as sent.
 * Exit status 0 when every check passed; each failed check prints its line.
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "ferry/ferry.h"
#include "tests/c_api/check.h"

static const uint8_t kKey[32] = {7,  7,  7,  7,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};

/* The log lines, joined, for the refusal's reason. */
static char g_log[8192];
static void LogCb(int level, const char* msg, void* user) {
  (void)level;
  (void)user;
  if (msg != NULL && strlen(g_log) + strlen(msg) + 2 < sizeof g_log) {
    strcat(g_log, msg);
    strcat(g_log, "\n");
  }
}

/* What the app's transport saw. */
struct Seen {
  int calls;
  int bad;         /* requests that were not what the SDK must send */
  int events_seen; /* "order_completed" events found in the decoded bodies */
  char url[256];
};

static ferry_status AppSend(const ferry_http_request* req, ferry_http_response* resp, void* user) {
  struct Seen* seen = (struct Seen*)user;
  const char* const* h;
  int auth = 0, zstd = 0, n = 0;
  unsigned long long raw_len;
  char* raw;
  const char* p;
  static const char kAnswerFmt[] = "{\"accepted\":%d,\"duplicate\":0,\"rejected\":[]}";
  char answer[128];

  ++seen->calls;
  snprintf(seen->url, sizeof seen->url, "%s", req->url);
  if (strcmp(req->method, "POST") != 0) ++seen->bad;
  for (h = req->headers; *h != NULL; ++h) {
    if (strcmp(*h, "Authorization: Bearer wk_none_test") == 0) auth = 1;
    if (strcmp(*h, "Content-Encoding: zstd") == 0) zstd = 1;
  }
  if (!auth || !zstd) ++seen->bad;
  raw_len = ZSTD_getFrameContentSize(req->body, req->body_len);
  if (raw_len == ZSTD_CONTENTSIZE_ERROR || raw_len == ZSTD_CONTENTSIZE_UNKNOWN || raw_len > (1u << 24)) {
    ++seen->bad;
    resp->status = 400;
    return FERRY_OK;
  }
  raw = malloc((size_t)raw_len + 1);
  if (raw == NULL || ZSTD_isError(ZSTD_decompress(raw, (size_t)raw_len, req->body, req->body_len))) {
    free(raw);
    ++seen->bad;
    resp->status = 400;
    return FERRY_OK;
  }
  raw[raw_len] = '\0';
  for (p = strstr(raw, "\"order_completed\""); p != NULL; p = strstr(p + 1, "\"order_completed\"")) ++n;
  if (strstr(raw, "\"batch\":[") == NULL) ++seen->bad;
  free(raw);
  seen->events_seen += n;

  snprintf(answer, sizeof answer, kAnswerFmt, n);
  resp->status = 200;
  resp->body = malloc(strlen(answer));
  if (resp->body != NULL) {
    memcpy(resp->body, answer, strlen(answer));
    resp->body_len = strlen(answer);
  }
  return FERRY_OK;
}

static long StatInt(const char* json, const char* key) {
  char needle[64];
  const char* p;
  snprintf(needle, sizeof needle, "\"%s\":", key);
  p = json ? strstr(json, needle) : NULL;
  return p == NULL ? -1 : strtol(p + strlen(needle), NULL, 10);
}

static ferry_options* BaseOptions(const char* db) {
  ferry_options* o = ferry_options_new();
  CHECK(o != NULL);
  CHECK(ferry_options_set_storage_path(o, db) == FERRY_OK);
  CHECK(ferry_options_set_encryption_key(o, kKey, sizeof kKey) == FERRY_OK);
  CHECK(ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED) == FERRY_OK);
  CHECK(ferry_options_set_app(o, "transport_none_test", "1.0") == FERRY_OK);
  CHECK(ferry_options_set_log_callback(o, LogCb, NULL) == FERRY_OK);
  CHECK(ferry_options_set_endpoint(o, "https://collect.example.com") == FERRY_OK);
  CHECK(ferry_options_set_write_key(o, "wk_none_test") == FERRY_OK);
  return o;
}

int main(void) {
  char dir[] = "/tmp/ferry_transport_none_test.XXXXXX";
  char db[512];
  ferry_client* c = NULL;
  ferry_options* o;
  struct Seen seen;
  char* stats = NULL;
  int i;

  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(db, sizeof db, "%s/buffer.db", dir);

  /* 1. No app transport: refused before any file is made, and the log says why. */
  g_log[0] = '\0';
  CHECK(ferry_open(BaseOptions(db), &c) == FERRY_ERR_INVALID_ARGUMENT);
  CHECK(c == NULL);
  CHECK(strstr(g_log, "FERRY_TRANSPORT=none") != NULL);
  CHECK(strstr(g_log, "ferry_options_set_transport") != NULL);
  CHECK(access(db, F_OK) != 0);
  if (strstr(g_log, "FERRY_TRANSPORT=none") == NULL) fprintf(stderr, "log was:\n%s", g_log);

  /* 2. The app's transport carries every upload. */
  memset(&seen, 0, sizeof seen);
  o = BaseOptions(db);
  CHECK(ferry_options_set_transport(o, AppSend, &seen, NULL) == FERRY_OK);
  CHECK(ferry_open(o, &c) == FERRY_OK);
  if (c == NULL) return 1;
  for (i = 0; i < 3; ++i) CHECK(ferry_track(c, "order_completed", "{\"total\":12.5}", NULL) == FERRY_OK);
  CHECK(ferry_flush(c, 20000) == FERRY_OK);
  CHECK(ferry_stats_json(c, &stats) == FERRY_OK);
  CHECK(StatInt(stats, "sent") == 3);
  CHECK(StatInt(stats, "queued") == 0);
  if (StatInt(stats, "sent") != 3) fprintf(stderr, "stats: %s\nlog:\n%s", stats ? stats : "(null)", g_log);
  ferry_free(stats);
  CHECK(ferry_close(c, 5000) == FERRY_OK);
  CHECK(seen.calls >= 1);
  CHECK(seen.bad == 0);
  CHECK(seen.events_seen == 3);
  CHECK(strcmp(seen.url, "https://collect.example.com/v1/batch") == 0);

  {
    char path[600];
    {
      DIR* d = opendir(dir);
      struct dirent* e;
      while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
      }
      if (d != NULL) closedir(d);
    }
    rmdir(dir);
  }
  printf("transport_none_test: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
