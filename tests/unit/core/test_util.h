// Helpers shared by the SDK core tests.
#ifndef FERRY_TESTS_UNIT_CORE_TEST_UTIL_H_
#define FERRY_TESTS_UNIT_CORE_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ferry/ferry.h"

namespace ferry::testing {

// A fresh directory under $TMPDIR, removed (recursively) by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A fixed 32-byte test key.
std::vector<uint8_t> TestKey(uint8_t seed = 7);

// Options with storage in dir, the test key, and log lines collected into a global list; analytics events are held
// while analytics is pending (ferry_options_set_hold_pending) unless hold_analytics is false.
ferry_options* BaseOptions(const std::string& storage_path, uint8_t key_seed = 7, bool hold_analytics = true);

// The stats JSON as an object.
nlohmann::json Stats(ferry_client* c);
// The local export as an object.
nlohmann::json Export(ferry_client* c);

// Every byte of a file (and its -wal companion appended).
std::string ReadAll(const std::string& path);

// Damages a closed buffer: removes its -wal and -shm (the WAL holds copies of recent pages) and overwrites three
// consecutive 4 KiB pages in the middle of the file. One page was not enough: in about one run in seven it was an
// index or free page, the salvage then kept every event, and a test expecting a loss failed; of three pages in a row
// at least one holds events (1,500 events of ~250 B: 34-36 lost in 100 runs).
void DamageMiddlePage(const std::string& path);

// Log lines collected by BaseOptions' callback.
std::vector<std::string> LogLines();

// Waits until pred() holds, for at most timeout_ms, and returns its last value. For an event that gives no signal of
// its own (a counter in ferry_stats_json): it looks every few milliseconds. Not for letting time pass.
bool Eventually(const std::function<bool()>& pred, int timeout_ms = 60000);

}  // namespace ferry::testing

#endif  // FERRY_TESTS_UNIT_CORE_TEST_UTIL_H_
