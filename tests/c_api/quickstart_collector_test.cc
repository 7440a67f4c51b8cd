// The C quickstart (examples/c/quickstart.c, target ferry_quickstart) against a real ferry-collector over TLS on
// loopback: it must flush, and the collector must hold the masked events only (no raw PII, nothing of a pending or
// denied purpose).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>

#include "tests/support/collector_process.h"

namespace {

// Runs a command, returns its exit status and stdout+stderr.
int RunCommand(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(QuickstartCollector, CFlushesMaskedEventsOverTls) {
  std::string error;
  auto collector = ferry::testsupport::CollectorProcess::Start({}, &error);
  ASSERT_NE(collector, nullptr) << error;
  ASSERT_FALSE(collector->ca_file().empty());

  std::string cmd = std::string("env -u FERRY_STORAGE_PATH FERRY_ENDPOINT='") + collector->url() +
                    "' FERRY_WRITE_KEY='" + collector->write_key() + "' FERRY_CA_FILE='" + collector->ca_file() + "' " +
                    FERRY_QUICKSTART_BIN;
  std::string out;
  int rc = RunCommand(cmd, &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("flush(10 s)"), std::string::npos) << out;

  auto events = collector->DumpEvents();
  bool order = false, screen = false, identify = false;
  for (const auto& e : events) {
    std::string body = e.contains("body") ? e["body"].dump() : e.dump();
    EXPECT_EQ(body.find("li.wei@example.com"), std::string::npos) << body;
    EXPECT_EQ(body.find("13812345678"), std::string::npos) << body;
    EXPECT_EQ(body.find("hunter2"), std::string::npos) << body;
    EXPECT_EQ(body.find("newsletter_prompt"), std::string::npos) << "pending purpose was sent: " << body;
    EXPECT_EQ(body.find("recommendation_shown"), std::string::npos) << "denied purpose was sent: " << body;
    if (body.find("order_completed") != std::string::npos) {
      order = true;
      EXPECT_NE(body.find("[email]"), std::string::npos) << body;
      EXPECT_NE(body.find("138****5678"), std::string::npos) << body;
    }
    if (body.find("Checkout") != std::string::npos) screen = true;
    if (body.find("user-1001") != std::string::npos) identify = true;
  }
  EXPECT_TRUE(order);
  EXPECT_TRUE(screen);
  EXPECT_TRUE(identify);
}

}  // namespace
