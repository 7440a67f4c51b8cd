// Test support: a throwaway PostgreSQL cluster (initdb + pg_ctl into a temporary directory, on a free loopback port,
// run as the postgres user through runuser when the tests run as root). Stopped and removed by the destructor.
#ifndef FERRY_TESTS_SUPPORT_PG_CLUSTER_H_
#define FERRY_TESTS_SUPPORT_PG_CLUSTER_H_

#include <memory>
#include <string>

namespace ferry::testsupport {

class PgCluster {
 public:
  // The directory of initdb/pg_ctl/postgres ("" when PostgreSQL is not installed). FERRY_PG_BINDIR overrides.
  static std::string BinDir();
  static bool Available() { return !BinDir().empty(); }

  // initdb + start. nullptr on failure (the reason in *error). FERRY_PG_OPTS adds server settings ("-c name=value ...",
  // e.g. to load pg_stat_statements for a profiling run); FERRY_PG_LOCALE sets the cluster's locale (C.UTF-8).
  static std::unique_ptr<PgCluster> Start(std::string* error = nullptr);
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  // A new empty database; returns its connection URI ("" on failure).
  std::string CreateDatabase(const std::string& name, std::string* error = nullptr);
  // postgresql://postgres@127.0.0.1:PORT/<db>
  std::string Uri(const std::string& db) const;

  // pg_ctl stop (mode "fast" or "immediate") / start again on the same port. false on failure.
  bool Stop(const std::string& mode = "fast", std::string* error = nullptr);
  bool StartAgain(std::string* error = nullptr);
  bool running() const { return running_; }

  // Runs one SQL text through psql on `db` (test setup only); returns psql's exit status, stdout in *out.
  int Psql(const std::string& db, const std::string& sql, std::string* out = nullptr) const;
  // The server log.
  std::string Log() const;

 private:
  PgCluster() = default;
  bool StartServer(std::string* error);
  std::string AsOwner(const std::string& cmd) const;

  std::string bin_, root_, data_dir_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace ferry::testsupport

#endif  // FERRY_TESTS_SUPPORT_PG_CLUSTER_H_
