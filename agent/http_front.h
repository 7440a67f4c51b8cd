// HttpFront: the local API over HTTP(S) on TCP and over HTTP on a Unix socket (cpp-httplib), in front of an Agent.
// Access: Unix socket callers are trusted by the socket's file mode; TCP callers must send the local token when one
// is configured (health and metrics are open to loopback peers). A request with an Origin header is served only
// when the origin is configured under cors.origins (CORS), so an arbitrary web page cannot post to the agent.
// Consent changes are accepted from the Unix socket and loopback peers only.
#ifndef FERRY_AGENT_HTTP_FRONT_H_
#define FERRY_AGENT_HTTP_FRONT_H_

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/config.h"
#include "lib/base/log.h"
#include "lib/base/status.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ferry::agent {

class HttpFront {
 public:
  HttpFront(Agent* agent, base::Logger log);
  ~HttpFront();
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // Binds the configured listeners (TCP, Unix socket or both). Refuses a non-socket file at the socket path.
  base::Status Bind(const AgentConfig& cfg);
  // Port bound by the TCP listener (0 when there is none).
  int tcp_port() const { return tcp_port_; }
  // Serves on background threads until Stop().
  void Start();
  // Stops accepting, waits for the requests in flight, removes the socket file. Idempotent.
  void Stop();
  // Takes the token and CORS origins of a reloaded config.
  void SetPolicy(const AgentConfig& cfg);

  struct Policy {
    std::string token;
    std::vector<std::string> origins;
    size_t max_body_bytes = 1u << 20;
    size_t max_decoded_bytes = 5u << 20;
  };

 private:
  void Routes(httplib::Server& svr, bool unix_listener);
  std::shared_ptr<const Policy> policy() const;

  Agent* agent_;
  base::Logger log_;
  mutable std::mutex policy_mu_;
  std::shared_ptr<const Policy> policy_;  // guarded by policy_mu_
  std::unique_ptr<httplib::Server> tcp_, unix_;
  std::string socket_path_;
  int tcp_port_ = 0;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace ferry::agent

#endif  // FERRY_AGENT_HTTP_FRONT_H_
