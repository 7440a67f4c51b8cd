// The backends of the storage conformance suite: "sqlite" (a temporary directory) and "postgresql" (a throwaway
// cluster started once for the test binary, one fresh database per test).
#ifndef FERRY_TESTS_UNIT_STORE_CONFORMANCE_STORE_ENV_H_
#define FERRY_TESTS_UNIT_STORE_CONFORMANCE_STORE_ENV_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "collector/engines/open_store.h"
#include "collector/store/store.h"
#include "tests/support/pg_cluster.h"

namespace ferry::collector::conformance {

// Starts the cluster at the first PostgreSQL test and stops it when the binary ends.
class PgEnvironment : public ::testing::Environment {
 public:
  static PgEnvironment* Get();
  void TearDown() override { cluster_.reset(); }
  // The running cluster, started on first use; nullptr when PostgreSQL is not installed (skip) or failed to start
  // (*error says why; fail).
  testsupport::PgCluster* Cluster(std::string* error, bool* absent);
  // A fresh database's URI.
  std::string NewDatabase(std::string* error);

 private:
  std::unique_ptr<testsupport::PgCluster> cluster_;
  std::string start_error_;
  bool tried_ = false;
  int next_db_ = 0;
};

// One backend for one test: the store under test, and (Reopen) more stores on the same data, as another collector
// process would open them.
class Backend {
 public:
  explicit Backend(std::string kind) : kind_(std::move(kind)) {}
  ~Backend();
  // false with GTEST_SKIP/FAIL already issued by the caller when it cannot be set up; *skip tells which.
  bool Setup(std::string* error, bool* skip);
  base::Result<std::unique_ptr<Store>> Open(int pool_size = 4, int acquire_timeout_ms = 2000);
  const std::string& kind() const { return kind_; }
  const std::string& uri() const { return uri_; }

 private:
  std::string kind_, dir_, uri_;
};

}  // namespace ferry::collector::conformance

#endif  // FERRY_TESTS_UNIT_STORE_CONFORMANCE_STORE_ENV_H_
