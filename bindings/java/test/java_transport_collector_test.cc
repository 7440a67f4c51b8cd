// The Java binding's transport against a real ferry-collector over TLS on loopback: io.ferry.TransportTest (a JVM
// child process) uploads through java.net.http with a fault plan whose first answers are 503 and 500, checks on its
// side that Ferry retried them through the Java transport and that everything was accepted; here we check what the
// collector stored (every event once, the e-mail masked on the device).
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>

#include "tests/support/collector_process.h"

namespace {

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

TEST(JavaTransport, UploadsThroughJavaOverTlsAndRetries5xx) {
  ferry::testsupport::CollectorOptions co;
  co.fault_plan_json = R"([503, 500])";
  std::string error;
  auto collector = ferry::testsupport::CollectorProcess::Start(co, &error);
  ASSERT_NE(collector, nullptr) << error;
  ASSERT_FALSE(collector->ca_file().empty());

  const int events = 25;
  std::string cmd = Quote(FERRY_JAVA) + " -Xcheck:jni -Djava.library.path=" + Quote(FERRY_JNI_DIR) + " -cp " +
                    Quote(FERRY_JAVA_CLASSPATH) + " io.ferry.TransportTest " + Quote(collector->url()) + " " +
                    Quote(collector->write_key()) + " " + Quote(collector->ca_file()) + " " +
                    Quote(collector->data_dir()) + " " + std::to_string(events) + " 2>&1";
  std::string out;
  int rc = ferry::testsupport::RunCommand(cmd, &out);
  std::printf("%s", out.c_str());  // what the Java side saw (statuses, stats), for the log
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("TransportTest: "), std::string::npos) << out;
  EXPECT_NE(out.find(" 0 failed"), std::string::npos) << out;

  auto stored = collector->DumpEvents();
  std::set<std::string> ids;
  int ticks = 0, orders = 0;
  for (const auto& e : stored) {
    std::string body = e.contains("body") ? e["body"].dump() : e.dump();
    ids.insert(e.value("messageId", std::string()));
    EXPECT_EQ(body.find("ada@example.com"), std::string::npos) << "raw e-mail stored: " << body;
    if (body.find("java_transport_tick") != std::string::npos) ++ticks;
    if (body.find("java_transport_order") != std::string::npos) {
      ++orders;
      EXPECT_NE(body.find("[email]"), std::string::npos) << body;
    }
  }
  EXPECT_EQ(orders, 1);
  EXPECT_EQ(ticks, events - 1);
  EXPECT_EQ(ids.size(), stored.size()) << "an event was stored twice";
}

}  // namespace
