// The benchmark programs' common command-line check: --help (or -h) prints the program's usage and ends the run, and
// an option the program does not know, or one missing its value, prints the usage to stderr and ends it with status 2
// instead of starting a long run with the defaults.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace ferry::bench {

// Checks argv[1..]: each is one of `flags` (no value) or one of `valued` followed by its value. `positional`: the
// number of leading arguments that are values without an option (ferry_bench_agent's), each a number.
inline void CheckArgs(int argc, char** argv, const char* usage, std::initializer_list<const char*> flags,
                      std::initializer_list<const char*> valued, int positional = 0) {
  auto in = [](const char* a, std::initializer_list<const char*> set) {
    for (const char* s : set) {
      if (std::strcmp(a, s) == 0) return true;
    }
    return false;
  };
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(usage, stdout);
      std::exit(0);
    }
  }
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    bool ok = false;
    if (i <= positional) {
      char* end = nullptr;
      std::strtol(a, &end, 10);
      ok = *a != '\0' && *end == '\0';
    } else if (in(a, flags)) {
      ok = true;
    } else if (in(a, valued)) {
      ok = ++i < argc;
    }
    if (!ok) {
      std::fprintf(stderr, "%s: %s %s\n%s", argv[0], i < argc ? "unexpected argument" : "missing value for",
                   i < argc ? argv[i] : a, usage);
      std::exit(2);
    }
  }
}

}  // namespace ferry::bench
