/* An out-of-tree consumer of an installed Ferry: built with find_package(Ferry) and with pkg-config.
 * Usage: consumer <scratch dir>. Opens a buffer there, records an event with an e-mail address, checks that the
 * export holds the masked value only, and that the header and the loaded library agree on the version. */
#include <ferry/ferry.h>
#include <stdio.h>
#include <string.h>

#define STR2(x) #x
#define STR(x) STR2(x)

int main(int argc, char** argv) {
  static const uint8_t key[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                  7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
  char db[4096];
  ferry_options* o;
  ferry_client* c = NULL;
  char* exported = NULL;
  int ok;
  if (argc != 2) {
    fprintf(stderr, "usage: %s <scratch dir>\n", argv[0]);
    return 2;
  }
  if (strcmp(ferry_version(), STR(FERRY_VERSION_MAJOR) "." STR(FERRY_VERSION_MINOR) "." STR(FERRY_VERSION_PATCH))) {
    fprintf(stderr, "header/library version mismatch: %s\n", ferry_version());
    return 1;
  }
  snprintf(db, sizeof db, "%s/consumer.db", argv[1]);
  o = ferry_options_new();
  if (ferry_options_set_storage_path(o, db) != FERRY_OK || ferry_options_set_encryption_key(o, key, 32) != FERRY_OK ||
      ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED) != FERRY_OK) {
    fprintf(stderr, "options refused\n");
    ferry_options_free(o);
    return 1;
  }
  if (ferry_open(o, &c) != FERRY_OK) {
    fprintf(stderr, "ferry_open failed\n");
    return 1;
  }
  ok = ferry_track(c, "installed", "{\"who\":\"dana@example.com\"}", NULL) == FERRY_OK &&
       ferry_export_local(c, &exported) == FERRY_OK && exported != NULL && strstr(exported, "[email]") != NULL &&
       strstr(exported, "dana@example.com") == NULL;
  ferry_free(exported);
  ferry_close(c, 100);
  printf("consumer %s: %s\n", ferry_version(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
