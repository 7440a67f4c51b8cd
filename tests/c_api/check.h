/* check.h — the checks of the C test programs in tests/c_api (plain C99): CHECK(cond) and CHECK_STATUS(expr, want)
 * count every check and print each failure with its line; main() returns g_failures == 0. One test program per
 * translation unit includes it. */
#ifndef FERRY_TESTS_C_API_CHECK_H_
#define FERRY_TESTS_C_API_CHECK_H_

#include <stdio.h>

#include "ferry/ferry.h"

static int g_checks = 0;
static int g_failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    ++g_checks;                                                                \
    if (!(cond)) {                                                             \
      ++g_failures;                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_STATUS(expr, want)                                                                          \
  do {                                                                                                    \
    ferry_status got_ = (expr);                                                                           \
    ++g_checks;                                                                                           \
    if (got_ != (want)) {                                                                                 \
      ++g_failures;                                                                                       \
      fprintf(stderr, "%s:%d: %s returned %d (%s), want %d (%s)\n", __FILE__, __LINE__, #expr, (int)got_, \
              ferry_status_str(got_), (int)(want), ferry_status_str(want));                               \
    }                                                                                                     \
  } while (0)

#endif /* FERRY_TESTS_C_API_CHECK_H_ */
