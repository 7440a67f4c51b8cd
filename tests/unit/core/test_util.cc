#include "tests/unit/core/test_util.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace ferry::testing {

namespace {
std::mutex g_log_mu;
std::vector<std::string> g_log;
void CollectLog(int level, const char* msg, void*) {
  std::lock_guard<std::mutex> l(g_log_mu);
  g_log.push_back(std::to_string(level) + " " + msg);
}
}  // namespace

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ferry-test-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  path_ = p ? p : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

std::vector<uint8_t> TestKey(uint8_t seed) {
  std::vector<uint8_t> k(32);
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed * 31 + i);
  return k;
}

ferry_options* BaseOptions(const std::string& storage_path, uint8_t key_seed, bool hold_analytics) {
  ferry_options* o = ferry_options_new();
  ferry_options_set_storage_path(o, storage_path.c_str());
  auto k = TestKey(key_seed);
  ferry_options_set_encryption_key(o, k.data(), k.size());
  ferry_options_set_log_callback(o, CollectLog, nullptr);
  ferry_options_set_app(o, "ferry-tests", "1.0");
  // The tests track analytics events before (or without) granting it: they opt in to holding them (issue 12 item 7).
  if (hold_analytics) ferry_options_set_hold_pending(o, "analytics", 365ull * 24 * 3600 * 1000);
  return o;
}

void DamageMiddlePage(const std::string& path) {
  constexpr std::size_t kDamagedPages = 3;
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  auto size = std::filesystem::file_size(path);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>((size / 4096 / 2) * 4096));
  f << std::string(kDamagedPages * 4096, '\x33');
}

nlohmann::json Stats(ferry_client* c) {
  char* s = nullptr;
  if (ferry_stats_json(c, &s) != FERRY_OK) return nullptr;
  nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
  ferry_free(s);
  return j;
}

nlohmann::json Export(ferry_client* c) {
  char* s = nullptr;
  if (ferry_export_local(c, &s) != FERRY_OK) return nullptr;
  nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
  ferry_free(s);
  return j;
}

std::string ReadAll(const std::string& path) {
  std::string out;
  for (const std::string& p : {path, path + "-wal"}) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    out += ss.str();
  }
  return out;
}

std::vector<std::string> LogLines() {
  std::lock_guard<std::mutex> l(g_log_mu);
  return g_log;
}

bool Eventually(const std::function<bool()>& pred, int timeout_ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace ferry::testing
