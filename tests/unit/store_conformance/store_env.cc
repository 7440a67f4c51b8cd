#include "tests/unit/store_conformance/store_env.h"

#include <cstdlib>

namespace ferry::collector::conformance {

PgEnvironment* PgEnvironment::Get() {
  static PgEnvironment* env = [] {
    auto* e = new PgEnvironment();
    ::testing::AddGlobalTestEnvironment(e);  // gtest owns it and calls TearDown at the end
    return e;
  }();
  return env;
}

testsupport::PgCluster* PgEnvironment::Cluster(std::string* error, bool* absent) {
  *absent = false;
  if (!testsupport::PgCluster::Available()) {
    *absent = true;
    *error = "PostgreSQL binaries not found";
    return nullptr;
  }
  if (!tried_) {
    tried_ = true;
    cluster_ = testsupport::PgCluster::Start(&start_error_);
  }
  if (!cluster_) *error = "the PostgreSQL cluster did not start: " + start_error_;
  return cluster_.get();
}

std::string PgEnvironment::NewDatabase(std::string* error) {
  bool absent = false;
  testsupport::PgCluster* c = Cluster(error, &absent);
  if (c == nullptr) return "";
  return c->CreateDatabase("conf_" + std::to_string(++next_db_), error);
}

Backend::~Backend() {
  if (!dir_.empty()) (void)std::system(("rm -rf '" + dir_ + "'").c_str());
}

bool Backend::Setup(std::string* error, bool* skip) {
  *skip = false;
  if (kind_ == "sqlite") {
    char tmpl[] = "/tmp/ferry-conformance-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      *error = "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    return true;
  }
  bool absent = false;
  if (PgEnvironment::Get()->Cluster(error, &absent) == nullptr) {
    *skip = absent;
    return false;
  }
  uri_ = PgEnvironment::Get()->NewDatabase(error);
  return !uri_.empty();
}

base::Result<std::unique_ptr<Store>> Backend::Open(int pool_size, int acquire_timeout_ms) {
  StoreConfig c;
  c.storage = kind_ == "sqlite" ? "sqlite" : uri_;
  c.data_dir = dir_;
  c.pg_pool_size = pool_size;
  c.pg_acquire_timeout_ms = acquire_timeout_ms;
  return MakeStore(c);
}

}  // namespace ferry::collector::conformance
