// The lock hazard of long-lived test children: a child that inherits one of the test's descriptors keeps what it
// refers to (an flock'ed file, a socket) after the test dies. Every helper that starts a child (RunCommand, the
// collector, the agent, PostgreSQL through pg_ctl) must leave the test's descriptors behind, even those opened
// without O_CLOEXEC. Checked on the real children through /proc/<pid>/fd.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/agent_process.h"
#include "tests/support/collector_process.h"
#ifdef FERRY_TEST_HAS_POSTGRES
#include "tests/support/pg_cluster.h"
#endif

namespace ferry::testsupport {
namespace {

// What the descriptors of process `pid` refer to.
std::vector<std::string> Targets(pid_t pid) {
  std::vector<std::string> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char buf[4096];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), buf, sizeof buf);
    if (n > 0) out.emplace_back(buf, static_cast<size_t>(n));
  }
  closedir(d);
  return out;
}

bool Holds(pid_t pid, const std::string& path) {
  for (const auto& t : Targets(pid)) {
    if (t == path) return true;
  }
  return false;
}

class ChildFdsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-fd-lock-XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
    // Opened as a careless test (or flock(1)) would: no O_CLOEXEC, and locked.
    fd_ = open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd_, 0);
    ASSERT_EQ(fcntl(fd_, F_GETFD) & FD_CLOEXEC, 0);
    ASSERT_EQ(flock(fd_, LOCK_EX | LOCK_NB), 0);
    ASSERT_TRUE(Holds(getpid(), path_)) << "the check itself sees this process's descriptor";
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  std::string path_;
  int fd_ = -1;
};

TEST_F(ChildFdsTest, RunCommandChildrenDoNotInherit) {
  std::string out;
  ASSERT_EQ(RunCommand("ls -l /proc/self/fd/", &out), 0);
  EXPECT_NE(out.find("/proc/"), std::string::npos) << out;  // ls's own view of its descriptors
  EXPECT_EQ(out.find(path_), std::string::npos) << out;
  // Its stdout still reaches the caller, and the exit status comes back.
  ASSERT_EQ(RunCommand("echo hello; exit 3", &out), 3);
  EXPECT_EQ(out, "hello\n");
}

TEST_F(ChildFdsTest, CollectorAndAgentDoNotInherit) {
  std::string err;
  CollectorOptions o;
  o.tls = false;
  auto c = CollectorProcess::Start(o, &err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_FALSE(Targets(c->pid()).empty());
  EXPECT_FALSE(Holds(c->pid(), path_));
  auto a = AgentProcess::Start({{"consent", {{"analytics", "granted"}}}}, &err);
  ASSERT_NE(a, nullptr) << err;
  EXPECT_FALSE(Targets(a->pid()).empty());
  EXPECT_FALSE(Holds(a->pid(), path_));
  // Once the test lets its descriptor go, nobody holds the lock: another open of the file can take it.
  close(fd_);
  fd_ = -1;
  int other = open(path_.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(other, 0);
  EXPECT_EQ(flock(other, LOCK_EX | LOCK_NB), 0);
  close(other);
}

#ifdef FERRY_TEST_HAS_POSTGRES
TEST_F(ChildFdsTest, PostgresStartedByPgCtlDoesNotInherit) {
  if (!PgCluster::Available()) GTEST_SKIP() << "no PostgreSQL binaries";
  std::string err;
  auto pg = PgCluster::Start(&err);
  ASSERT_NE(pg, nullptr) << err;
  pid_t postmaster = 0;
  std::ifstream(pg->data_dir() + "/postmaster.pid") >> postmaster;
  ASSERT_GT(postmaster, 0);
  EXPECT_FALSE(Targets(postmaster).empty());
  EXPECT_FALSE(Holds(postmaster, path_));
}
#endif

}  // namespace
}  // namespace ferry::testsupport
