// A test on each store: a real ferry-collector over TLS on the embedded store ("sqlite") or on a throwaway
// PostgreSQL cluster ("postgres", skipped loudly when PostgreSQL is not installed), holding project "shop" with a
// write key and a compliance token, and the real ferryctl pointed at it.
#ifndef FERRY_TESTS_INTEGRATION_STORE_COLLECTOR_H_
#define FERRY_TESTS_INTEGRATION_STORE_COLLECTOR_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/engines/postgres/pg_store.h"
#include "tests/support/collector_process.h"
#include "tests/support/pg_cluster.h"

namespace ferry::testing {

// A shell word.
inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class StoreCollectorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string err;
    testsupport::CollectorOptions o;
    o.project = "shop";
    if (GetParam() == "postgres") {
      if (!testsupport::PgCluster::Available()) GTEST_SKIP() << "*** SKIPPED: PostgreSQL binaries not found ***";
      cluster_ = testsupport::PgCluster::Start(&err);
      ASSERT_NE(cluster_, nullptr) << err;
      uri_ = cluster_->CreateDatabase("ferry", &err);
      ASSERT_FALSE(uri_.empty()) << err;
      collector::PgOptions po;
      po.conninfo = uri_;
      auto s = collector::PgStore::Open(po);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      auto k = (*s)->CreateWriteKey("shop");
      ASSERT_TRUE(k.ok());
      key_ = *k;
      o.extra_args = {"--storage", uri_};
    }
    o.extra_args.insert(o.extra_args.end(), extra_args_.begin(), extra_args_.end());
    col_ = testsupport::CollectorProcess::Start(o, &err);
    ASSERT_NE(col_, nullptr) << err;
    if (key_.empty()) key_ = col_->write_key();
    token_ = Token("compliance", "officer");
    ASSERT_FALSE(token_.empty());
  }
  void TearDown() override {
    col_.reset();
    cluster_.reset();
  }
  // A new admin token with these roles ("compliance", "operator,analyst", ...); "" on failure.
  std::string Token(const std::string& roles, const std::string& name) {
    if (uri_.empty()) return col_->CreateAdminToken(roles, name);
    collector::PgOptions po;
    po.conninfo = uri_;
    auto s = collector::PgStore::Open(po);
    if (!s.ok()) return std::string();
    std::vector<std::string> list;
    for (size_t b = 0; b <= roles.size();) {
      size_t e = roles.find(',', b);
      if (e == std::string::npos) e = roles.size();
      list.push_back(roles.substr(b, e - b));
      b = e + 1;
    }
    auto t = (*s)->CreateAdminToken(name, list);
    return t.ok() ? *t : std::string();
  }
  // ferryctl against the collector (stderr too); *rc its exit status.
  std::string Ctl(const std::string& args, int* rc, const std::string& token = "") {
    std::string out;
    *rc = testsupport::RunCommand(ShellQuote(testsupport::FerryctlBinary()) + " --url " + ShellQuote(col_->url()) +
                                      " --token " + ShellQuote(token.empty() ? token_ : token) + " --ca-file " +
                                      ShellQuote(col_->ca_file()) + " " + args + " 2>&1",
                                  &out);
    return out;
  }
  // `ferryctl --json ARGS`, expected to succeed, as JSON.
  nlohmann::json CtlJson(const std::string& args) {
    int rc = 0;
    std::string out = Ctl("--json " + args, &rc);
    EXPECT_EQ(rc, 0) << args << ": " << out;
    nlohmann::json doc = nlohmann::json::parse(out, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << args << ": " << out;
    return doc;
  }

  std::unique_ptr<testsupport::PgCluster> cluster_;
  std::unique_ptr<testsupport::CollectorProcess> col_;
  std::vector<std::string> extra_args_;  // more ferry-collector flags, set before SetUp
  std::string uri_, key_, token_;
};

}  // namespace ferry::testing

#endif  // FERRY_TESTS_INTEGRATION_STORE_COLLECTOR_H_
