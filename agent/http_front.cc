#include "agent/http_front.h"

#include <algorithm>
#include <functional>
#include <string_view>
#include <utility>

#include "lib/httpd/decode.h"
#include "lib/httpd/httpd.h"
#include "lib/net/address.h"
#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"

namespace ferry::agent {

namespace {

constexpr const char* kTcp = "tcp";
constexpr const char* kUnix = "unix";

httpd::Response Send(const Answer& a) {
  httpd::Response r = httpd::Response::Json(a.status, a.body);
  if (a.retry_after_s > 0) r.headers.Set("Retry-After", std::to_string(a.retry_after_s));
  return r;
}

// An error answer (ErrorAnswer: the one error body plus "result" and "reason").
httpd::Response SendError(base::Code code, const std::string& result, const std::string& reason, int http_status = 0) {
  return Send(ErrorAnswer(code, result, reason, http_status));
}

// The facts of a request that Admit (agent/api.h) decides on.
Caller CallerOf(const httpd::Request& req) {
  Caller c;
  c.unix_socket = req.listener_tag == kUnix;
  c.loopback_peer = !c.unix_socket && req.loopback;
  c.has_origin = req.headers.Has("Origin");
  c.origin = req.headers.Get("Origin");
  c.browser_fetch = req.headers.Has("Sec-Fetch-Site") || req.headers.Has("Sec-Fetch-Mode");
  c.bearer = wire::BearerToken(req.headers.Get("Authorization"));
  // The credentials the kernel took when this connection was made (SO_PEERCRED).
  if (c.unix_socket && req.peer) c.peers.push_back({req.peer->pid, req.peer->uid, req.peer->gid});
  return c;
}

void AllowOrigin(httpd::Response& res, const std::string& origin) {
  if (origin.empty()) return;
  res.headers.Set("Access-Control-Allow-Origin", origin);
  res.headers.Set("Vary", "Origin");
}

// A route's answer: Admit, then (with_body) the body decoded within the policy's limits, then `answer`.
httpd::Response Admitted(httpd::Request& req, const HttpFront::Policy& p, Route route, bool with_body,
                         const std::function<httpd::Response(std::string)>& answer) {
  Verdict v = Admit(route, CallerOf(req), p.access);
  if (!v.ok) return SendError(v.code, v.result, v.reason, v.http_status);
  std::string body;
  httpd::Response res;
  httpd::BodyRead read;
  if (with_body) {
    read = httpd::DecodeBody(req.headers.Get("Content-Encoding"), std::move(req.body),
                             {p.max_body_bytes, p.max_decoded_bytes}, &body);
  }
  res = read.ok() ? answer(std::move(body))
                  : SendError(wire::CodeForHttpStatus(read.status), "invalid", read.reason, read.status);
  AllowOrigin(res, v.allow_origin);
  return res;
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
  if (svr_) return base::Status::Internal("Bind() once");
  SetPolicy(cfg);
  httpd::ServerOptions o;
  o.io_threads = 1;
  o.worker_threads = cfg.threads;
  o.log = log_;
  o.limits.max_body_bytes = cfg.max_body_bytes;
  o.limits.max_header_bytes = cfg.max_header_bytes;
  o.limits.max_header_count = cfg.max_header_count;
  o.limits.request_timeout_ms = int64_t{cfg.http_request_timeout_s} * 1000;
  o.limits.write_timeout_ms = int64_t{cfg.http_request_timeout_s} * 1000;
  o.limits.idle_timeout_ms = int64_t{cfg.http_idle_timeout_s} * 1000;
  o.limits.tls_handshake_timeout_ms = o.limits.idle_timeout_ms;
  o.limits.max_connections = httpd::ConnectionsThatFit(cfg.max_connections);
  o.limits.reserved_connections = std::min<size_t>(256, o.limits.max_connections / 8);
  o.limits.max_connections_per_source = cfg.max_connections_per_source;
  if (o.limits.max_connections < cfg.max_connections) {
    log_.Warn("at most " + std::to_string(o.limits.max_connections) +
              " connections: the file descriptor limit allows no more");
  }
  svr_ = std::make_unique<httpd::Server>(std::move(o));
  Routes(svr_->router());
  size_t tcp = 0;
  if (!cfg.listen.empty()) {
    httpd::ListenerOptions l = httpd::ListenerOptions::Tcp(cfg.listen_host, cfg.listen_port);
    l.tls_cert_file = cfg.tls_cert;
    l.tls_key_file = cfg.tls_key;
    l.tag = kTcp;
    tcp = svr_->AddListener(std::move(l));
  }
  if (!cfg.unix_socket_path.empty()) {
    httpd::ListenerOptions l = httpd::ListenerOptions::Unix(cfg.unix_socket_path, cfg.unix_socket_mode);
    l.tag = kUnix;
    svr_->AddListener(std::move(l));
  }
  base::Status started = svr_->Start();
  if (!started.ok()) {
    std::string what = cfg.tls_cert.empty() ? "" : " (or tls.cert / tls.key cannot be loaded)";
    std::string why = "cannot listen" + what + ": " + started.message();
    return started.code() == base::Code::kInvalidArgument ? base::Status::InvalidArgument(why)
                                                          : base::Status::Network(why);
  }
  if (!cfg.listen.empty()) tcp_port_ = svr_->port(tcp);
  return base::Status::Ok();
}

void HttpFront::Stop() {
  if (svr_) svr_->Stop(5000);  // requests in flight finish; the socket file is removed
}

std::string HttpFront::HttpMetrics() const {
  return svr_ ? httpd::RenderStats(svr_->stats(), "ferry_agent_http") : std::string();
}

void HttpFront::Routes(httpd::Router& r) {
  using Serve = std::function<httpd::Response(httpd::Request&, const Policy&)>;
  // Every route: on TCP the Host header must name this machine (DNS rebinding), then `serve`; the answer is counted
  // under `metric` ("" = not counted).
  auto guarded = [this](std::string metric, Serve serve) -> httpd::Handler {
    return [this, metric = std::move(metric), serve = std::move(serve)](httpd::Request& req) {
      auto p = policy();
      httpd::Response res;
      if (req.listener_tag == kTcp &&
          !(req.headers.Count("Host") == 1 && net::IsAllowedHost(req.headers.Get("Host"), p->hosts))) {
        res = SendError(base::Code::kPermissionDenied, "forbidden",
                        "the Host header does not name this agent (localhost, 127.0.0.1, [::1] or allowed_hosts)", 421);
        res.close = true;
        agent_->CountRequest("misdirected", res.status);
        return res;
      }
      res = serve(req, *p);
      if (!metric.empty()) agent_->CountRequest(metric, res.status);
      return res;
    };
  };

  for (std::string type : {"track", "screen", "identify"}) {
    r.Post("/v1/" + type, guarded(type, [this, type](httpd::Request& req, const Policy& p) {
             return Admitted(req, p, Route::kEvent, true,
                             [&](std::string body) { return Send(agent_->Event(type, body)); });
           }));
  }
  r.Post("/v1/events", guarded("events", [this](httpd::Request& req, const Policy& p) {
           return Admitted(req, p, Route::kEvent, true, [&](std::string body) { return Send(agent_->Events(body)); });
         }));
  r.Post("/v1/batch", guarded("batch", [this](httpd::Request& req, const Policy& p) {
           int64_t received = agent_->clock()->NowMs();
           return Admitted(req, p, Route::kBatch, true,
                           [&](std::string body) { return Send(agent_->Batch(body, received)); });
         }));
  r.Get("/v1/consent", guarded("consent", [this](httpd::Request& req, const Policy& p) {
          return Admitted(req, p, Route::kConsentRead, false, [&](std::string) { return Send(agent_->GetConsent()); });
        }));
  r.Put("/v1/consent/{purpose}", guarded("consent_put", [this](httpd::Request& req, const Policy& p) {
          std::string purpose = req.Param("purpose");
          return Admitted(req, p, Route::kConsentChange, true,
                          [&](std::string body) { return Send(agent_->PutConsent(purpose, body)); });
        }));
  r.Get("/healthz", guarded("", [this](httpd::Request& req, const Policy& p) {
          return Admitted(req, p, Route::kHealth, false, [&](std::string) { return Send(agent_->Health()); });
        }));
  r.Get("/metrics", guarded("", [this](httpd::Request& req, const Policy& p) {
          return Admitted(req, p, Route::kMetrics, false, [&](std::string) {
            return httpd::Response::Text(200, agent_->Metrics() + HttpMetrics(), "text/plain; version=0.0.4");
          });
        }));
  // CORS preflight on every route: what a page on an allowed origin may send (never /v1/batch).
  auto preflight = guarded("preflight", [](httpd::Request& req, const Policy& p) {
    Verdict v = AdmitPreflight(req.path, CallerOf(req), p.access);
    if (!v.ok) return SendError(v.code, v.result, v.reason, v.http_status);
    httpd::Response res;
    res.status = 204;
    AllowOrigin(res, v.allow_origin);
    res.headers.Set("Access-Control-Allow-Methods", "GET, POST, PUT, OPTIONS");
    res.headers.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization");
    res.headers.Set("Access-Control-Max-Age", "600");
    // Private Network Access: a public page may not reach the device, an allowed local origin may.
    if (req.headers.Get("Access-Control-Request-Private-Network") == "true") {
      res.headers.Set("Access-Control-Allow-Private-Network", "true");
    }
    return res;
  });
  for (const char* path : {"/v1/track", "/v1/screen", "/v1/identify", "/v1/events", "/v1/batch", "/v1/consent",
                           "/v1/consent/{purpose}", "/healthz", "/metrics"}) {
    r.Options(path, preflight);
  }
}

}  // namespace ferry::agent
