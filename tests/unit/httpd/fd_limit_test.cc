// accept() out of file descriptors: the server backs off, says so in its log, and serves the waiting connections once
// descriptors are back. A binary of its own, labelled nosan: with the descriptors exhausted, UBSan's vptr check cannot
// open the pipe it probes memory with and reports every virtual call as an invalid vptr (a sanitizer artefact).
#include <sys/resource.h>

#include <filesystem>
#include <mutex>

#include <gtest/gtest.h>

#include "lib/httpd/httpd.h"
#include "tests/unit/httpd/test_util.h"

namespace ferry::httpd {
namespace {

using testing::Conn;
using testing::WaitUntil;

TEST(FdLimitTest, OutOfDescriptorsBacksOffAndRecovers) {
  std::mutex mu;
  std::string log;
  ServerOptions o;
  o.log = base::Logger([&](base::LogLevel, const std::string& m) {
    std::lock_guard<std::mutex> l(mu);
    log += m + "\n";
  });
  Server server(o);
  server.router().Get("/hello", [](Request&) { return Response::Text(200, "hello"); });
  server.AddListener(ListenerOptions::Tcp("127.0.0.1", 0));
  ASSERT_TRUE(server.Start().ok());
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  int open_fds = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++open_fds;
  }
  // A few descriptors to spare: the clients and the server's accepts share them, so accept() runs out.
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(open_fds + 4);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<std::unique_ptr<Conn>> clients;
  for (int i = 0; i < 6; ++i) {
    auto c = Conn::Tcp(server.port());
    if (!c) break;
    clients.push_back(std::move(c));
  }
  bool failed = WaitUntil([&] { return server.stats().accept_errors > 0; }, 3000);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_TRUE(failed) << "accept never ran out of descriptors";
  ASSERT_FALSE(clients.empty());
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_NE(log.find("accept failed"), std::string::npos);
  }
  // With descriptors back, the waiting connections are accepted and served.
  for (auto& c : clients) {
    ASSERT_TRUE(c->Send("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    auto r = c->Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  server.Stop(1000);
}

}  // namespace
}  // namespace ferry::httpd
