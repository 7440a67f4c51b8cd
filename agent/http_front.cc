#include "agent/http_front.h"

#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool LoopbackPeer(const httplib::Request& req) { return net::IsLoopbackPeer(req.remote_addr); }

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

// cpp-httplib 0.11 listens with a backlog of 5. On a Unix socket a full backlog makes connect() fail at once
// (EAGAIN) instead of being retried like a TCP SYN, so a burst of local clients sees "cannot connect". httplib does
// not expose its listening socket: find it among this process's descriptors (listening, bound to our address) and
// call listen() again, which on Linux only raises the backlog.
void RaiseBacklog(const std::string& unix_path, int tcp_port) {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == dirfd(d)) continue;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) continue;
    bool ours = false;
    if (ss.ss_family == AF_UNIX && !unix_path.empty()) {
      ours = unix_path == reinterpret_cast<sockaddr_un*>(&ss)->sun_path;
    } else if (ss.ss_family == AF_INET && tcp_port > 0) {
      ours = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port) == tcp_port;
    } else if (ss.ss_family == AF_INET6 && tcp_port > 0) {
      ours = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port) == tcp_port;
    }
    if (ours) listen(fd, SOMAXCONN);
  }
  closedir(d);
}

}  // namespace

HttpFront::HttpFront(Agent* agent, base::Logger log) : agent_(agent), log_(std::move(log)) {}

HttpFront::~HttpFront() { Stop(); }

void HttpFront::SetPolicy(const AgentConfig& cfg) {
  auto p = std::make_shared<Policy>();
  p->token = cfg.local_token;
  p->origins = cfg.cors_origins;
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
    Routes(svr, unix_listener);
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

void HttpFront::Routes(httplib::Server& svr, bool unix_listener) {
  // Origin and token checks shared by every route. Returns false when the answer is already set.
  // open_to_loopback: health and metrics need no token from a loopback peer.
  auto admit = [this, unix_listener](const httplib::Request& req, httplib::Response& res, const Policy& p,
                                     bool open_to_loopback) {
    if (req.has_header("Origin")) {
      std::string origin = req.get_header_value("Origin");
      if (std::find(p.origins.begin(), p.origins.end(), origin) == p.origins.end()) {
        SendError(res, base::Code::kPermissionDenied, "forbidden", "origin " + origin + " is not in cors.origins",
                  true);
        return false;
      }
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    }
    if (!unix_listener && !p.token.empty() && !(open_to_loopback && LoopbackPeer(req))) {
      if (!SameSecret(BearerToken(req), p.token)) {
        SendError(res, base::Code::kUnauthenticated, "unauthorized",
                  "missing or wrong local token (Authorization: Bearer ...)", true);
        return false;
      }
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
               if (admit(req, res, *p, false) && read_body(req, res, reader, *p, &body))
                 Send(res, agent_->Event(route, body));
               agent_->CountRequest(route, res.status);
             });
  }
  svr.Post("/v1/batch", [this, admit, read_body](const httplib::Request& req, httplib::Response& res,
                                                 const httplib::ContentReader& reader) {
    int64_t received = agent_->clock()->NowMs();
    auto p = policy();
    std::string body;
    if (admit(req, res, *p, false) && read_body(req, res, reader, *p, &body)) {
      Send(res, agent_->Batch(body, received));
    }
    agent_->CountRequest("batch", res.status);
  });
  svr.Get("/v1/consent", [this, admit](const httplib::Request& req, httplib::Response& res) {
    auto p = policy();
    if (admit(req, res, *p, false)) Send(res, agent_->GetConsent());
    agent_->CountRequest("consent", res.status);
  });
  svr.Put(R"(/v1/consent/([^/]+))",
          [this, admit, read_body, unix_listener](const httplib::Request& req, httplib::Response& res,
                                                  const httplib::ContentReader& reader) {
            auto p = policy();
            std::string body;
            if (admit(req, res, *p, false)) {
              if (!unix_listener && !LoopbackPeer(req)) {
                SendError(res, base::Code::kPermissionDenied, "forbidden",
                          "device consent is changed from this device only (loopback or socket)", true);
              } else if (read_body(req, res, reader, *p, &body)) {
                Send(res, agent_->PutConsent(req.matches[1].str(), body));
              }
            }
            agent_->CountRequest("consent_put", res.status);
          });
  svr.Get("/healthz", [this, admit](const httplib::Request& req, httplib::Response& res) {
    auto p = policy();
    if (admit(req, res, *p, true)) Send(res, agent_->Health());
  });
  svr.Get("/metrics", [this, admit](const httplib::Request& req, httplib::Response& res) {
    auto p = policy();
    if (admit(req, res, *p, true)) res.set_content(agent_->Metrics(), "text/plain; version=0.0.4");
  });
  // CORS preflight: what a page on an allowed origin may send.
  svr.Options(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
    auto p = policy();
    std::string origin = req.get_header_value("Origin");
    if (origin.empty() || std::find(p->origins.begin(), p->origins.end(), origin) == p->origins.end()) {
      SendError(res, base::Code::kPermissionDenied, "forbidden", "origin '" + origin + "' is not in cors.origins");
      agent_->CountRequest("preflight", res.status);
      return;
    }
    res.status = 204;
    res.set_header("Access-Control-Allow-Origin", origin);
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
