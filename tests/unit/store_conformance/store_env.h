// The backends of the storage conformance suite: "sqlite" (a temporary directory) and "postgresql" (a throwaway
// cluster started once for the test binary, one fresh database per test); and the events and subjects the suite and
// the rights service's tests store.
#ifndef FERRY_TESTS_UNIT_STORE_CONFORMANCE_STORE_ENV_H_
#define FERRY_TESTS_UNIT_STORE_CONFORMANCE_STORE_ENV_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
  base::Result<std::unique_ptr<Store>> Open(int pool_size = 4, int acquire_timeout_ms = 2000,
                                            base::Clock* clock = base::SystemClock());
  const std::string& kind() const { return kind_; }
  const std::string& uri() const { return uri_; }
  const std::string& dir() const { return dir_; }  // sqlite: the data directory

  // Runs SQL on the store's database behind the store's back, as an intruder or an operator would (another
  // connection): "" when it succeeded, else the error.
  std::string Exec(const std::string& sql);
  // The first column of the first row of a query, as text ("" when there is no row).
  std::string QueryText(const std::string& sql);

 private:
  std::string kind_, dir_, uri_;
};

// The backends this build can test: sqlite, and postgresql when built with it.
std::vector<std::string> Backends();

// A test on one backend (the test parameter): a fresh store, opened with StoreClock(), holding project "shop"
// (shop_). Skipped, loudly, when PostgreSQL is not installed.
class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  virtual base::Clock* StoreClock() { return base::SystemClock(); }

  // Creates project `name` (with a write key) unless it exists; its id.
  int64_t Project(const std::string& name);
  // Inserts one request's events (into store_ unless another store is given); returns the outcomes.
  std::vector<InsertOutcome> Put(int64_t project_id, std::vector<StoredEvent> events, Store* store = nullptr);
  // The stored events' messageIds in insertion order (project "" = all).
  std::vector<std::string> MessageIds(const std::string& project = "");

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Store> store_;
  int64_t shop_ = 0;
};

// An event as the store receives it; `body` is stored as its JSON text.
StoredEvent MakeEvent(const std::string& id, const std::string& type, const std::string& user, const std::string& anon,
                      int64_t timestamp_ms, int64_t received_ms, const nlohmann::json& body);

// Inserts one request's events; returns the outcomes (and fails the test when the insert fails).
std::vector<InsertOutcome> PutEvents(Store& store, int64_t project_id, std::vector<StoredEvent> events);

// The data-subject rights tests' event: received a millisecond after its timestamp, its ids in its body.
StoredEvent RightsEvent(const std::string& id, const std::string& type, const std::string& user,
                        const std::string& anon, int64_t ts = 1000);

// The user "zebra-user-7781" with two devices (anonymousIds anon-quokka-1/-2), traits, consent from one device; another
// user; one anonymous-only visitor (in `shop`); and the same user in `blog` on a third device.
void PopulateZebra(Store& store, int64_t shop, int64_t blog);

// Before a migration test takes the database back to its old schema: a write key, two users, and a merge of the
// two (an alias naming the old userId). Returns the write key.
std::string SeedLinksBeforeProvenance(Store& store);
// After the migration: the key is a write key, the old links are of unknown provenance, the anonymousId links are
// followed and the userId merge is not (until a server key or an officer says so).
void ExpectLinksOfUnknownProvenance(Store& store, const std::string& write_key);

}  // namespace ferry::collector::conformance

#endif  // FERRY_TESTS_UNIT_STORE_CONFORMANCE_STORE_ENV_H_
