// ferryctl's exit codes (docs/COLLECTOR.md#exit-codes) and `--version` on every binary, through the real processes:
// a real collector over TLS, the real ferryctl, the real ferry-agent.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/collector_process.h"
#if FERRY_TEST_HAS_AGENT
#include "tests/integration/agent_process.h"
#endif

namespace ferry::testing {
namespace {

using nlohmann::json;
using testsupport::CollectorProcess;
using testsupport::RunCommand;

std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a binary with arguments; stdout and stderr both in *out.
int RunBin(const std::string& binary, const std::string& args, std::string* out) {
  return RunCommand(Q(binary) + " " + args + " 2>&1", out);
}

const std::string kVersion = FERRY_PROJECT_VERSION;  // the project's version, as CMake read it from ferry.h

class FerryctlExitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    col_ = CollectorProcess::Start({}, &err);
    ASSERT_NE(col_, nullptr) << err;
    officer_ = col_->CreateAdminToken("compliance,operator", "officer");
    analyst_ = col_->CreateAdminToken("analyst", "analyst");
    ASSERT_FALSE(officer_.empty());
    ASSERT_FALSE(analyst_.empty());
  }
  // An admin command against the test's collector with this token.
  int Admin(const std::string& token, const std::string& args, std::string* out) {
    return RunBin(testsupport::FerryctlBinary(),
                  "--url " + Q(col_->url()) + " --token " + Q(token) + " --ca-file " + Q(col_->ca_file()) + " " + args,
                  out);
  }
  int Offline(const std::string& args, std::string* out) {
    return RunBin(testsupport::FerryctlBinary(), "--data-dir " + Q(col_->data_dir()) + " " + args, out);
  }
  std::unique_ptr<CollectorProcess> col_;
  std::string officer_, analyst_;
};

TEST_F(FerryctlExitTest, UsageErrorsExitTwo) {
  std::string out;
  EXPECT_EQ(RunBin(testsupport::FerryctlBinary(), "", &out), 2) << out;  // a subcommand is required
  EXPECT_EQ(RunBin(testsupport::FerryctlBinary(), "--no-such-option keys create-write-key --project p", &out), 2)
      << out;
  EXPECT_EQ(Offline("keys create-write-key", &out), 2) << out;                               // --project is required
  EXPECT_EQ(RunBin(testsupport::FerryctlBinary(), "subject show someone", &out), 2) << out;  // no --url/--token
  EXPECT_NE(out.find("--url and --token are required"), std::string::npos) << out;
  EXPECT_EQ(RunBin(testsupport::FerryctlBinary(), "keys create-write-key --project p", &out), 2) << out;  // no data dir
  EXPECT_EQ(Admin(officer_, "subject erase someone", &out), 2) << out;                                    // no --yes
  EXPECT_EQ(Admin(officer_, "subject traits someone --set novalue", &out), 2) << out;
  EXPECT_EQ(Offline("--storage nosuchdb keys create-write-key --project p", &out), 2) << out;
  EXPECT_EQ(RunBin(testsupport::FerryctlBinary(), "--help", &out), 0) << out;
}

TEST_F(FerryctlExitTest, NotFoundExitsFour) {
  std::string out;
  EXPECT_EQ(Admin(officer_, "subject show nobody-by-this-name", &out), 4) << out;
  EXPECT_NE(out.find("404"), std::string::npos) << out;
  EXPECT_EQ(Admin(officer_, "requests approve req_doesnotexist", &out), 4) << out;
  EXPECT_EQ(Offline("projects set-retention --project no-such-project --days 1", &out), 4) << out;
}

TEST_F(FerryctlExitTest, PermissionExitsSix) {
  std::string out;
  EXPECT_EQ(Admin("not-a-token", "requests", &out), 6) << out;           // 401
  EXPECT_EQ(Admin(analyst_, "subject export someone", &out), 6) << out;  // 403: needs compliance
  EXPECT_NE(out.find("403"), std::string::npos) << out;
  EXPECT_EQ(Admin(col_->write_key(), "audit verify", &out), 6) << out;  // a write key is not an admin token
}

TEST_F(FerryctlExitTest, ConflictExitsSeven) {
  std::string out;
  ASSERT_EQ(Admin(officer_, "--json requests add --kind erasure --subject someone-else", &out), 0) << out;
  json req = json::parse(out, nullptr, false);
  ASSERT_TRUE(req.is_object() && req.contains("id")) << out;
  std::string rid = req["id"].get<std::string>();
  ASSERT_EQ(Admin(officer_, "requests reject " + Q(rid) + " --reason duplicate", &out), 0) << out;
  EXPECT_EQ(Admin(officer_, "requests reject " + Q(rid), &out), 7) << out;  // no longer awaiting verification
  EXPECT_EQ(Admin(officer_, "requests approve " + Q(rid), &out), 7) << out;
}

TEST_F(FerryctlExitTest, UnreachableCollectorExitsFive) {
  std::string out;
  ASSERT_EQ(Admin(officer_, "audit verify", &out), 0) << out;
  ASSERT_EQ(col_->Stop(), 0);
  EXPECT_EQ(Admin(officer_, "audit verify", &out), 5) << out;  // nothing listens on the port any more
  EXPECT_NE(out.find("cannot reach the collector"), std::string::npos) << out;
}

TEST_F(FerryctlExitTest, EveryBinaryPrintsItsVersion) {
  std::string out;
  EXPECT_EQ(RunBin(testsupport::FerryctlBinary(), "--version", &out), 0) << out;
  EXPECT_NE(out.find("ferryctl " + kVersion), std::string::npos) << out;
  EXPECT_EQ(RunBin(testsupport::CollectorBinary(), "--version", &out), 0) << out;
  EXPECT_NE(out.find("ferry-collector " + kVersion), std::string::npos) << out;
#if FERRY_TEST_HAS_AGENT
  EXPECT_EQ(RunBin(testsupport::AgentBinary(), "--version", &out), 0) << out;
  EXPECT_NE(out.find("ferry-agent " + kVersion), std::string::npos) << out;
#endif
}

TEST_F(FerryctlExitTest, DaemonsExitTwoOnABadCommandLine) {
  std::string out;
  EXPECT_EQ(RunBin(testsupport::CollectorBinary(), "--no-such-flag 1", &out), 2) << out;
  EXPECT_EQ(RunBin(testsupport::CollectorBinary(), "--listen 127.0.0.1:0", &out), 2) << out;  // --data-dir required
#if FERRY_TEST_HAS_AGENT
  EXPECT_EQ(RunBin(testsupport::AgentBinary(), "", &out), 2) << out;  // --config required
  EXPECT_EQ(RunBin(testsupport::AgentBinary(), "--config", &out), 2) << out;
#endif
}

}  // namespace
}  // namespace ferry::testing
