#include "agent/http_front.h"

#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string_view>

#include "lib/httpd/body.h"
#include "lib/net/address.h"
#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"

namespace ferry::agent {

namespace {

constexpr const char* kJson = "application/json";

std::string BearerToken(const httplib::Request& req) {
  return wire::BearerToken(req.get_header_value("Authorization"));
}

bool LoopbackPeer(const httplib::Request& req) { return net::IsLoopbackPeer(req.remote_addr); }

// The facts of a request that Admit (agent/api.h) decides on.
Caller CallerOf(const httplib::Request& req, bool unix_listener) {
  Caller c;
  c.unix_socket = unix_listener;
  c.loopback_peer = !unix_listener && LoopbackPeer(req);
  c.has_origin = req.has_header("Origin");
  c.origin = req.get_header_value("Origin");
  c.browser_fetch = req.has_header("Sec-Fetch-Site") || req.has_header("Sec-Fetch-Mode");
  c.bearer = BearerToken(req);
  return c;
}

void Send(httplib::Response& res, const Answer& a) {
  res.status = a.status;
  res.set_content(a.body, kJson);
  if (a.retry_after_s > 0) res.set_header("Retry-After", std::to_string(a.retry_after_s));
}

// An error answer (ErrorAnswer: the one error body plus "result" and "reason"). close: given before the body was
// read, so the client is told to close the connection (the unread body would be taken for the next request).
void SendError(httplib::Response& res, base::Code code, const std::string& result, const std::string& reason,
               bool close = false, int http_status = 0) {
  Send(res, ErrorAnswer(code, result, reason, http_status));
  if (close) res.set_header("Connection", "close");
}

// Calls fn(fd) for each descriptor of this process (0-2 and the directory's own excepted).
template <typename Fn>
void ForEachFd(Fn fn) {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == dirfd(d)) continue;
    fn(fd);
  }
  closedir(d);
}

// The uid/gid (SO_PEERCRED) of every connection accepted on the Unix socket at `path` whose peer process is `pid`
// (cpp-httplib gives a handler the peer's pid only, see http_front.h). Accepted sockets report the listener's path
// as their own address; the listener itself is skipped.
std::vector<PeerCred> PeerCredentials(const std::string& path, int64_t pid) {
  std::vector<PeerCred> out;
  if (pid <= 0 || path.empty()) return out;
  ForEachFd([&](int fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) return;
    sockaddr_un addr{};
    socklen_t al = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &al) != 0 || addr.sun_family != AF_UNIX) return;
    if (al <= offsetof(sockaddr_un, sun_path)) return;
    if (std::string_view(addr.sun_path, strnlen(addr.sun_path, sizeof addr.sun_path)) != path) return;
    ucred cred{};
    socklen_t cl = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.pid != pid) return;
    out.push_back({cred.pid, cred.uid, cred.gid});
  });
  return out;
}

// cpp-httplib 0.11 listens with a backlog of 5. On a Unix socket a full backlog makes connect() fail at once
// (EAGAIN) instead of being retried like a TCP SYN, so a burst of local clients sees "cannot connect". httplib does
// not expose its listening socket: find it among this process's descriptors (listening, bound to our address) and
// call listen() again, which on Linux only raises the backlog.
void RaiseBacklog(const std::string& unix_path, int tcp_port) {
  ForEachFd([&](int fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) return;
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) return;
    bool ours = false;
    if (ss.ss_family == AF_UNIX && !unix_path.empty()) {
      ours = unix_path == reinterpret_cast<sockaddr_un*>(&ss)->sun_path;
    } else if (ss.ss_family == AF_INET && tcp_port > 0) {
      ours = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port) == tcp_port;
    } else if (ss.ss_family == AF_INET6 && tcp_port > 0) {
      ours = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port) == tcp_port;
    }
    if (ours) listen(fd, SOMAXCONN);
  });
}

}  // namespace

HttpFront::HttpFront(Agent* agent, base::Logger log) : agent_(agent), log_(std::move(log)) {}

HttpFront::~HttpFront() { Stop(); }

void HttpFront::SetPolicy(const AgentConfig& cfg) {
  auto p = std::make_shared<Policy>();
  p->access.local_token = cfg.local_token;
  p->access.forward_token = cfg.forward_token;
  p->access.origins = cfg.cors_origins;
  p->access.consent_uids = cfg.consent_uids;
  p->access.consent_gids = cfg.consent_gids;
  p->hosts = cfg.allowed_hosts;
  // Clients that reach a non-loopback listener by its address name it in Host ("0.0.0.0" and "::" are no name).
  std::string listen_host = net::NormalizeHostName(cfg.listen_host);
  if (!listen_host.empty() && listen_host != "0.0.0.0" && listen_host != "::") p->hosts.push_back(listen_host);
  p->max_body_bytes = cfg.max_body_bytes;
  p->max_decoded_bytes = cfg.max_decoded_bytes;
  std::lock_guard<std::mutex> l(policy_mu_);
  policy_ = std::move(p);
}

std::shared_ptr<const HttpFront::Policy> HttpFront::policy() const {
  std::lock_guard<std::mutex> l(policy_mu_);
  return policy_;
}

base::Status HttpFront::Bind(const AgentConfig& cfg) {
  SetPolicy(cfg);
  auto setup = [&](httplib::Server& svr, bool unix_listener) {
    int threads = cfg.threads;
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    if (!unix_listener) svr.set_tcp_nodelay(true);
    svr.set_keep_alive_max_count(1000000);
    svr.set_keep_alive_timeout(5);
    svr.set_read_timeout(10, 0);
    svr.set_write_timeout(10, 0);
    svr.set_payload_max_length(cfg.max_body_bytes);
    Routes(svr, unix_listener, unix_listener ? cfg.unix_socket_path : std::string());
  };
  if (!cfg.listen.empty()) {
    if (!cfg.tls_cert.empty()) {
      auto s = std::make_unique<httplib::SSLServer>(cfg.tls_cert.c_str(), cfg.tls_key.c_str());
      if (!s->is_valid()) return base::Status::InvalidArgument("cannot load tls.cert / tls.key");
      tcp_ = std::move(s);
    } else {
      tcp_ = std::make_unique<httplib::Server>();
    }
    setup(*tcp_, false);
    tcp_port_ = cfg.listen_port == 0 ? tcp_->bind_to_any_port(cfg.listen_host)
                                     : (tcp_->bind_to_port(cfg.listen_host, cfg.listen_port) ? cfg.listen_port : -1);
    if (tcp_port_ <= 0) return base::Status::Network("cannot listen on " + cfg.listen);
  }
  if (!cfg.unix_socket_path.empty()) {
    const std::string& path = cfg.unix_socket_path;
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return base::Status::InvalidArgument(path + " exists and is not a socket; refusing to replace it");
      }
      unlink(path.c_str());  // a socket left by a previous run
    }
    unix_ = std::make_unique<httplib::Server>();
    unix_->set_address_family(AF_UNIX);
    setup(*unix_, true);
    if (!unix_->bind_to_port(path, 80)) {
      return base::Status::Network("cannot listen on the Unix socket " + path + ": " + std::strerror(errno));
    }
    socket_path_ = path;
    if (chmod(path.c_str(), cfg.unix_socket_mode) != 0) {
      return base::Status::Network("cannot set the mode of " + path + ": " + std::strerror(errno));
    }
  }
  RaiseBacklog(socket_path_, tcp_port_ > 0 ? tcp_port_ : 0);
  return base::Status::Ok();
}

void HttpFront::Start() {
  for (httplib::Server* s : {tcp_.get(), unix_.get()}) {
    if (s != nullptr) threads_.emplace_back([s] { s->listen_after_bind(); });
  }
}

void HttpFront::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (tcp_) tcp_->stop();
  if (unix_) unix_->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (!socket_path_.empty()) unlink(socket_path_.c_str());
}

void HttpFront::Routes(httplib::Server& svr, bool unix_listener, const std::string& socket_path) {
  // DNS rebinding: before any route, a TCP request must name this machine in its Host header.
  if (!unix_listener) {
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      auto p = policy();
      if (req.get_header_value_count("Host") == 1 && net::IsAllowedHost(req.get_header_value("Host"), p->hosts)) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      SendError(res, base::Code::kPermissionDenied, "forbidden",
                "the Host header does not name this agent (localhost, 127.0.0.1, [::1] or allowed_hosts)", true, 421);
      agent_->CountRequest("misdirected", res.status);
      return httplib::Server::HandlerResponse::Handled;
    });
  }
  // Access (agent/api.h Admit). Returns false when the answer is already set.
  auto admit = [unix_listener, socket_path](const httplib::Request& req, httplib::Response& res, const Policy& p,
                                            Route route) {
    Caller c = CallerOf(req, unix_listener);
    if (NeedsPeerCredentials(route, c, p.access)) c.peers = PeerCredentials(socket_path, req.remote_port);
    Verdict v = Admit(route, c, p.access);
    if (!v.ok) {
      SendError(res, v.code, v.result, v.reason, true, v.http_status);
      return false;
    }
    if (!v.allow_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", v.allow_origin);
      res.set_header("Vary", "Origin");
    }
    return true;
  };
  // Reads a request body, decoding zstd/gzip within the limits. Returns false when the answer is already set.
  auto read_body = [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                      const Policy& p, std::string* out) {
    httpd::BodyRead r = httpd::ReadEncodedBody(req, res, reader, {p.max_body_bytes, p.max_decoded_bytes}, out);
    if (!r.ok()) SendError(res, wire::CodeForHttpStatus(r.status), "invalid", r.reason, r.unread, r.status);
    return r.ok();
  };

  for (const char* type : {"track", "screen", "identify"}) {
    std::string route = type;
    svr.Post(std::string("/v1/") + type,
             [this, admit, read_body, route](const httplib::Request& req, httplib::Response& res,
                                             const httplib::ContentReader& reader) {
               auto p = policy();
               std::string body;
               if (admit(req, res, *p, Route::kEvent) && read_body(req, res, reader, *p, &body))
                 Send(res, agent_->Event(route, body));
               agent_->CountRequest(route, res.status);
             });
  }
  svr.Post("/v1/batch", [this, admit, read_body](const httplib::Request& req, httplib::Response& res,
                                                 const httplib::ContentReader& reader) {
    int64_t received = agent_->clock()->NowMs();
    auto p = policy();
    std::string body;
    if (admit(req, res, *p, Route::kBatch) && read_body(req, res, reader, *p, &body)) {
      Send(res, agent_->Batch(body, received));
    }
    agent_->CountRequest("batch", res.status);
  });
  svr.Get("/v1/consent", [this, admit](const httplib::Request& req, httplib::Response& res) {
    auto p = policy();
    if (admit(req, res, *p, Route::kConsentRead)) Send(res, agent_->GetConsent());
    agent_->CountRequest("consent", res.status);
  });
  svr.Put(R"(/v1/consent/([^/]+))", [this, admit, read_body](const httplib::Request& req, httplib::Response& res,
                                                             const httplib::ContentReader& reader) {
    auto p = policy();
    std::string body;
    if (admit(req, res, *p, Route::kConsentChange) && read_body(req, res, reader, *p, &body)) {
      Send(res, agent_->PutConsent(req.matches[1].str(), body));
    }
    agent_->CountRequest("consent_put", res.status);
  });
  svr.Get("/healthz", [this, admit](const httplib::Request& req, httplib::Response& res) {
    auto p = policy();
    if (admit(req, res, *p, Route::kHealth)) Send(res, agent_->Health());
  });
  svr.Get("/metrics", [this, admit](const httplib::Request& req, httplib::Response& res) {
    auto p = policy();
    if (admit(req, res, *p, Route::kMetrics)) res.set_content(agent_->Metrics(), "text/plain; version=0.0.4");
  });
  // CORS preflight: what a page on an allowed origin may send (never /v1/batch).
  svr.Options(R"(/.*)", [this, unix_listener](const httplib::Request& req, httplib::Response& res) {
    auto p = policy();
    Verdict v = AdmitPreflight(req.path, CallerOf(req, unix_listener), p->access);
    if (!v.ok) {
      SendError(res, v.code, v.result, v.reason, false, v.http_status);
      agent_->CountRequest("preflight", res.status);
      return;
    }
    res.status = 204;
    res.set_header("Access-Control-Allow-Origin", v.allow_origin);
    res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization");
    res.set_header("Access-Control-Max-Age", "600");
    res.set_header("Vary", "Origin");
    // Private Network Access: a public page may not reach the device, an allowed local origin may.
    if (req.get_header_value("Access-Control-Request-Private-Network") == "true") {
      res.set_header("Access-Control-Allow-Private-Network", "true");
    }
    agent_->CountRequest("preflight", res.status);
  });
}

}  // namespace ferry::agent
