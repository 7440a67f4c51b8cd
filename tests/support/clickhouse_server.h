// Test support: throwaway ClickHouse servers (clickhouse-server --config-file with a generated config: its own data
// directory, loopback HTTP and TCP ports, a users file with a password-less default user, UTC). One server, or
// several that name each other as the shards of a cluster (for Distributed tables). Each server is a child process
// (killed with the test process), killed and removed by the destructor (a graceful shutdown takes seconds and the
// data is thrown away anyway), like tests/support/pg_cluster.h.
#ifndef FERRY_TESTS_SUPPORT_CLICKHOUSE_SERVER_H_
#define FERRY_TESTS_SUPPORT_CLICKHOUSE_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace ferry::testsupport {

class ClickHouseServer {
 public:
  // The clickhouse-server binary ("" when not installed: apt-get install clickhouse-server, or
  // scripts/install-deps.sh --group clickhouse). FERRY_CLICKHOUSE_SERVER overrides.
  static std::string Binary();
  static bool Available() { return !Binary().empty(); }

  // One server. nullptr on failure (the reason in *error).
  static std::unique_ptr<ClickHouseServer> Start(std::string* error = nullptr);
  // n servers forming the cluster `cluster` (each one's <remote_servers> lists all of them, one shard each).
  static std::vector<std::unique_ptr<ClickHouseServer>> StartCluster(int n, const std::string& cluster,
                                                                     std::string* error = nullptr);
  ~ClickHouseServer();
  ClickHouseServer(const ClickHouseServer&) = delete;
  ClickHouseServer& operator=(const ClickHouseServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_port_); }
  int http_port() const { return http_port_; }
  int tcp_port() const { return tcp_port_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }

  // Runs one SQL statement over HTTP; returns the HTTP status (0 on a transport error), the body in *out.
  int Query(const std::string& sql, std::string* out = nullptr) const;
  // SIGTERM, then SIGKILL after timeout_ms. Idempotent.
  void Stop(int timeout_ms = 10000);
  // SIGKILL: a crash (no shutdown). Idempotent.
  void Kill();
  // Starts the server again after Stop or Kill: same ports, same data. false if it did not come up.
  bool Restart(std::string* error = nullptr);
  // The server's log files.
  std::string Log() const;

 private:
  ClickHouseServer() = default;
  bool Launch(const std::string& remote_servers_xml, std::string* error);

  std::string dir_, remote_xml_;
  int http_port_ = 0, tcp_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ferry::testsupport

#endif  // FERRY_TESTS_SUPPORT_CLICKHOUSE_SERVER_H_
