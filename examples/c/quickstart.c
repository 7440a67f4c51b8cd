/*
 * quickstart.c — Ferry from C in one file.
 *
 *   ferry_quickstart [ENDPOINT WRITE_KEY [CA_FILE]]
 *   (or the environment: FERRY_ENDPOINT, FERRY_WRITE_KEY, FERRY_CA_FILE; FERRY_STORAGE_PATH for the buffer file)
 *
 * Records a few events under different consent states, prints what the encrypted local buffer holds (PII already
 * masked on the device) and the counters, and, when a collector is given, uploads. Without a collector everything
 * stays in the local buffer: the run still shows the masking and the consent handling.
 */
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry/ferry.h"

static const char* Arg(int argc, char** argv, int i, const char* env) {
  const char* v = i < argc ? argv[i] : getenv(env);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

static const char* ConsentName(ferry_consent c) {
  return c == FERRY_CONSENT_GRANTED ? "granted" : c == FERRY_CONSENT_DENIED ? "denied" : "pending";
}

static void LogLine(int level, const char* msg, void* user) {
  (void)user;
  if (level >= FERRY_LOG_WARN) fprintf(stderr, "[ferry] %s\n", msg);
}

/* Prints a status and returns it. */
static ferry_status Show(const char* what, ferry_status s) {
  printf("%-58s -> %s\n", what, s == FERRY_OK ? "ok" : ferry_status_str(s));
  return s;
}

int main(int argc, char** argv) {
  const char* endpoint = Arg(argc, argv, 1, "FERRY_ENDPOINT");
  const char* write_key = Arg(argc, argv, 2, "FERRY_WRITE_KEY");
  const char* ca_file = Arg(argc, argv, 3, "FERRY_CA_FILE");
  const char* storage = getenv("FERRY_STORAGE_PATH");
  char tmp_dir[] = "/tmp/ferry_quickstart.XXXXXX";
  char db[4096];
  ferry_options* o;
  ferry_client* c = NULL;
  ferry_status st;
  char* json = NULL;
  int rc = 0;

  printf("Ferry %s quickstart (C)\n\n", ferry_version());
  if (storage != NULL && storage[0] != '\0') {
    snprintf(db, sizeof db, "%s", storage);
  } else {
    if (mkdtemp(tmp_dir) == NULL) {
      perror("mkdtemp");
      return 1;
    }
    snprintf(db, sizeof db, "%s/buffer.db", tmp_dir);
  }

  /* 1. Options. The buffer key is kept by the platform secret store next to the buffer ("<path>.key", 0600). */
  o = ferry_options_new();
  if (o == NULL) return 1;
  ferry_options_set_storage_path(o, db);
  ferry_options_set_app(o, "ferry_quickstart", ferry_version());
  ferry_options_set_log_callback(o, LogLine, NULL);
  ferry_options_set_default_consent(o, FERRY_PURPOSE_ANALYTICS, FERRY_CONSENT_GRANTED);
  ferry_options_set_default_consent(o, FERRY_PURPOSE_PERSONALIZATION, FERRY_CONSENT_DENIED);
  /* Marketing is not asked yet (pending). A pending purpose's events are dropped unless the app holds them: this app
   * holds marketing's for at most a day, to send them if the user grants it (say so in the notice). */
  ferry_options_set_hold_pending(o, FERRY_PURPOSE_MARKETING, 24u * 3600u * 1000u);
  /* Mask phone numbers (keep a few digits) instead of redacting them; passwords are dropped by default. */
  ferry_options_set_pii_rules(o, "{\"detectors\": {\"phone\": \"mask\"}}");
  if (endpoint != NULL) {
    if (ferry_options_set_endpoint(o, endpoint) != FERRY_OK) {
      fprintf(stderr, "endpoint refused (https:// required, http:// only for loopback): %s\n", endpoint);
      ferry_options_free(o);
      return 2;
    }
    if (write_key != NULL) ferry_options_set_write_key(o, write_key);
    if (ca_file != NULL) ferry_options_set_ca_file(o, ca_file);
  }

  /* 2. Open (takes ownership of the options). */
  st = ferry_open(o, &c);
  if (st != FERRY_OK) {
    fprintf(stderr, "ferry_open: %s\n", ferry_status_str(st));
    return 1;
  }
  printf("buffer: %s (encrypted)\ncollector: %s\n\n", db, endpoint ? endpoint : "none (events stay on the device)");

  /* 3. Consent: analytics granted, personalization denied, marketing not asked yet (pending). */
  printf("consent  analytics=%s  marketing=%s  personalization=%s\n\n", ConsentName(ferry_get_consent(c, "analytics")),
         ConsentName(ferry_get_consent(c, "marketing")), ConsentName(ferry_get_consent(c, "personalization")));

  /* 4. Events. PII is masked before anything touches disk. */
  Show("identify(\"user-1001\")", ferry_identify(c, "user-1001", "{\"plan\": \"pro\"}"));
  Show("screen(\"Checkout\")", ferry_screen(c, "Checkout", NULL));
  Show("track(\"order_completed\") with email, mobile, password",
       ferry_track(c, "order_completed",
                   "{\"order_id\": \"A-1001\", \"amount\": 42.5, \"currency\": \"CNY\","
                   " \"email\": \"li.wei@example.com\", \"mobile\": \"13812345678\", \"password\": \"hunter2\","
                   " \"note\": \"call me at 13812345678 or li.wei@example.com\"}",
                   FERRY_PURPOSE_ANALYTICS));
  Show("track(\"newsletter_prompt\") purpose=marketing (pending, held)",
       ferry_track(c, "newsletter_prompt", "{\"placement\": \"footer\"}", FERRY_PURPOSE_MARKETING));
  st = Show("track(\"recommendation_shown\") purpose=personalization",
            ferry_track(c, "recommendation_shown", "{\"item\": \"sku-9\"}", FERRY_PURPOSE_PERSONALIZATION));
  if (st != FERRY_ERR_CONSENT_DENIED) rc = 1; /* a denied purpose must be refused */
  Show("track(\"\") (invalid: empty name)", ferry_track(c, "", NULL, NULL));

  /* 5. What the device holds about this user (right of access): masked values only. */
  if (ferry_export_local(c, &json) == FERRY_OK) {
    printf("\nlocal export (ferry_export_local):\n%s\n", json);
    if (strstr(json, "li.wei@example.com") != NULL || strstr(json, "hunter2") != NULL) rc = 1;
    ferry_free(json);
    json = NULL;
  }

  /* 6. Upload when a collector is configured. */
  if (endpoint != NULL) {
    st = Show("\nflush(10 s)", ferry_flush(c, 10000));
    if (st != FERRY_OK) rc = 1;
  }

  /* 7. Counters. */
  if (ferry_stats_json(c, &json) == FERRY_OK) {
    printf("\nstats (ferry_stats_json):\n%s\n", json);
    ferry_free(json);
  }

  st = ferry_close(c, 2000);
  if (st != FERRY_OK && st != FERRY_ERR_TIMEOUT) rc = 1;
  if (storage == NULL || storage[0] == '\0') {
    /* A throwaway buffer: remove it (a real app keeps it; unsent events are sent on the next run). */
    char path[4200];
    const char* suffixes[] = {"", "-wal", "-shm", ".key", "-journal"};
    size_t i;
    for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; ++i) {
      snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
      remove(path);
    }
    remove(tmp_dir);
  }
  return rc;
}
