// HttpFront: the local API over HTTP(S) on TCP and over HTTP on a Unix socket, served by lib/httpd (the event-driven
// server both daemons use), in front of an Agent. It gathers the facts of a request (agent/api.h Caller) and sends the
// answers; the rules are in agent/api.h: Admit (tokens, origins, the forward token of /v1/batch, who may change
// consent) and the body parsers.
// lib/httpd makes every connection and framing check before a handler runs, and so before any token is looked at
// (lib/httpd/httpd.h): the connection cap (503), the whole-request deadline (408), the header limits (431), the body
// limit as sent (413), strict framing (400). Idle and trickling connections hold no handler thread.
// Then, before any route's rule, a TCP request whose Host header does not name this machine (net::IsAllowedHost:
// loopback names, allowed_hosts, the listen address) gets 421: a DNS-rebinding page cannot reach the agent. The Unix
// socket has no such check (no browser reaches it). Unix-socket peers are known by the credentials the kernel took
// when they connected (SO_PEERCRED of the request's own connection).
#ifndef FERRY_AGENT_HTTP_FRONT_H_
#define FERRY_AGENT_HTTP_FRONT_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/config.h"
#include "lib/base/log.h"
#include "lib/base/status.h"

namespace ferry::httpd {
class Router;
class Server;
}  // namespace ferry::httpd

namespace ferry::agent {

class HttpFront {
 public:
  HttpFront(Agent* agent, base::Logger log);
  ~HttpFront();
  HttpFront(const HttpFront&) = delete;
  HttpFront& operator=(const HttpFront&) = delete;

  // Binds the configured listeners (TCP, Unix socket or both) and serves on background threads until Stop(). Refuses
  // a non-socket file at the socket path. Once.
  base::Status Bind(const AgentConfig& cfg);
  // Port bound by the TCP listener (0 when there is none).
  int tcp_port() const { return tcp_port_; }
  // Stops accepting, lets the requests in flight finish, removes the socket file. Idempotent.
  void Stop();
  // Takes the tokens, origins, Host names and body limits of a reloaded config (connection limits need a restart).
  void SetPolicy(const AgentConfig& cfg);
  // The server's counters in Prometheus text ("ferry_agent_http_..."), "" before Bind.
  std::string HttpMetrics() const;

  struct Policy {
    AccessPolicy access;
    std::vector<std::string> hosts;  // Host header names besides loopback (allowed_hosts and the listen host)
    size_t max_body_bytes = 1u << 20;
    size_t max_decoded_bytes = 5u << 20;
  };

 private:
  void Routes(httpd::Router& r);
  std::shared_ptr<const Policy> policy() const;

  Agent* agent_;
  base::Logger log_;
  mutable std::mutex policy_mu_;
  std::shared_ptr<const Policy> policy_;  // guarded by policy_mu_
  std::unique_ptr<httpd::Server> svr_;
  int tcp_port_ = 0;
};

}  // namespace ferry::agent

#endif  // FERRY_AGENT_HTTP_FRONT_H_
