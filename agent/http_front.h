// HttpFront: the local API over HTTP(S) on TCP and over HTTP on a Unix socket (cpp-httplib), in front of an Agent.
// It gathers the facts of a request (agent/api.h Caller) and sends the answers; the rules are in agent/api.h:
// Admit (tokens, origins, the forward token of /v1/batch, who may change consent) and the body parsers.
// Before any route runs, a TCP request whose Host header does not name this machine (net::IsAllowedHost: loopback
// names, allowed_hosts, the listen address) gets 421: a DNS-rebinding page cannot reach the agent. The Unix socket
// has no such check (no browser reaches it).
// Unix-socket peers: cpp-httplib 0.11 does not hand its connection socket to a handler, only the peer's pid (the
// remote_port of a Request on a Unix socket, which it takes from SO_PEERCRED). For a consent change the front lists
// this process's connections accepted on its socket whose SO_PEERCRED pid is that pid and reads each one's uid/gid
// (PeerCredentials); Admit requires every one of them to be allowed, so the request's own connection is.
#ifndef FERRY_AGENT_HTTP_FRONT_H_
#define FERRY_AGENT_HTTP_FRONT_H_

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/api.h"
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
    AccessPolicy access;
    std::vector<std::string> hosts;  // Host header names besides loopback (allowed_hosts and the listen host)
    size_t max_body_bytes = 1u << 20;
    size_t max_decoded_bytes = 5u << 20;
  };

 private:
  // socket_path: the Unix listener's path (for its peers' credentials), "" for TCP.
  void Routes(httplib::Server& svr, bool unix_listener, const std::string& socket_path);
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
