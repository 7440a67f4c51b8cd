#include "collector/http/server.h"

#include <algorithm>
#include <chrono>

#include "collector/http/consent_routes.h"
#include "collector/http/due_routes.h"
#include "collector/http/erasure_routes.h"
#include "collector/http/exchange.h"
#include "collector/http/minor_routes.h"
#include "collector/ingest/consent_gate.h"
#include "collector/ingest/ingest.h"
#include "collector/ingest/restriction_gate.h"
#include "lib/base/time.h"
#include "lib/httpd/decode.h"
#include "lib/net/address.h"
#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"

namespace ferry::collector {

namespace {

constexpr const char* kJson = "application/json";

// "Bearer <token>" -> token ("" when absent or malformed).
std::string BearerToken(const HttpRequest& req) { return wire::BearerToken(req.get_header_value("Authorization")); }

// Records the answer of one /v1/batch request when it goes out of scope.
class BatchTimer {
 public:
  BatchTimer(Metrics& m, const HttpResponse& res) : m_(m), res_(res), start_(std::chrono::steady_clock::now()) {}
  ~BatchTimer() {
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - start_;
    m_.ObserveBatch(res_.status, d.count());
  }

 private:
  Metrics& m_;
  const HttpResponse& res_;
  std::chrono::steady_clock::time_point start_;
};

void Answer(HttpResponse& res, int status, const std::string& reason) {
  res.status = status;
  res.set_content(wire::ErrorBody(wire::CodeForHttpStatus(status), reason), kJson);
}

// Gives an injected fault as the answer.
void ApplyFault(const Fault& f, HttpResponse& res, base::Clock* clock) {
  if (f.delay_ms > 0) clock->SleepUntil(clock->MonotonicMs() + f.delay_ms);
  if (f.reset) {
    // The status line and headers go out, then the connection closes before the body ends: the client sees a
    // transport error, as with a connection reset mid-answer.
    res.status = 200;
    res.set_chunked_content_provider(kJson, [](httpd::BodyWriter&) { return false; });
    return;
  }
  Answer(res, f.status, "injected fault");
  if (f.retry_after >= 0) res.set_header("Retry-After", std::to_string(f.retry_after));
}

rights::RightsOptions WithOutbox(rights::RightsOptions o, const rights::Outbox* outbox) {
  o.outbox = outbox;
  return o;
}

AdminOptions WithInsight(AdminOptions o, bool insight, rights::RegistryService* registry) {
  o.insight = insight;
  o.registry = registry;
  return o;
}

}  // namespace

CollectorServer::CollectorServer(ServerOptions opts, Store* store, base::Logger log)
    : opts_(std::move(opts)),
      credentials_(store),
      gates_(store),
      health_(store),
      clock_(opts_.clock != nullptr ? opts_.clock : base::SystemClock()),
      log_(std::move(log)),
      limiter_(opts_.rate_limit, opts_.rate_burst),
      committer_(opts_.ingest_sink != nullptr ? opts_.ingest_sink : store, GroupCommitter::kMaxEvents,
                 opts_.ingest_writers > 0 ? opts_.ingest_writers : (store->WritersQueue() ? 1 : 2)),
      outbox_(opts_.webhooks),
      rights_(rights::StoresOf(store), clock_, WithOutbox(opts_.rights, &outbox_), log_),
      registry_(&rights_, store, opts_.retention_max_age_ms),
      admin_(&rights_, log_, WithInsight(opts_.admin, opts_.insight != nullptr, &registry_), clock_),
      retention_(store, clock_,
                 rights::RetentionOptions{opts_.retention_max_age_ms, opts_.retention_interval_ms, 5000,
                                          opts_.consent_keep_ms, opts_.outbox_keep_ms},
                 log_,
                 [this](int64_t n) {
                   metrics_.AddPurged(n);
                   if (opts_.on_retention_purged) opts_.on_retention_purged(clock_->NowMs());
                 }),
      webhooks_(&outbox_, store, clock_, opts_.webhook, log_),
      transactions_(store),
      withdrawals_(&rights_, clock_, opts_.withdrawal_interval_ms, log_) {
  admin_.LimitForgets(opts_.forget_rate_limit, opts_.forget_rate_burst, clock_);
}

CollectorServer::~CollectorServer() {
  Stop();
  if (svr_) svr_->Stop(1000);  // handlers return before the writer they submit to stops
  committer_.Stop();
  retention_.Stop();
  webhooks_.Stop();
  withdrawals_.Stop();
}

base::Result<int> CollectorServer::Bind() {
  if (svr_) return base::Status::Internal("Bind() once");
  httpd::ServerOptions o;
  o.io_threads = 1;
  o.worker_threads = opts_.threads > 0 ? opts_.threads : 64;
  o.max_queued_requests = 1024;
  o.log = log_;
  // Bodies as sent are bounded by the compressed limit on every route (413 before they are kept in memory).
  o.limits.max_body_bytes = opts_.limits.max_compressed_bytes;
  o.limits.max_header_bytes = opts_.max_header_bytes;
  o.limits.max_header_count = opts_.max_header_count;
  o.limits.idle_timeout_ms = int64_t{opts_.keep_alive_timeout_s} * 1000;
  o.limits.request_timeout_ms = int64_t{opts_.read_timeout_s} * 1000;
  o.limits.write_timeout_ms = int64_t{opts_.read_timeout_s} * 1000;
  o.limits.max_connections = httpd::ConnectionsThatFit(opts_.max_connections);
  o.limits.reserved_connections = std::min<size_t>(256, o.limits.max_connections / 8);
  o.limits.max_connections_per_source = opts_.max_connections_per_source;
  if (o.limits.max_connections < opts_.max_connections) {
    log_.Warn("at most " + std::to_string(o.limits.max_connections) +
              " connections: the file descriptor limit allows no more");
  }
  svr_ = std::make_unique<httpd::Server>(std::move(o));
  Routes(svr_->router());
  httpd::ListenerOptions main = httpd::ListenerOptions::Tcp(opts_.host, opts_.port);
  main.tls_cert_file = opts_.tls_cert;
  main.tls_key_file = opts_.tls_key;
  main.tag = "main";
  svr_->AddListener(std::move(main));
  if (!opts_.metrics_host.empty()) {
    if (!net::IsLoopbackHost(opts_.metrics_host)) {
      return base::Status::InvalidArgument("the metrics listener must be on a loopback address, not " +
                                           opts_.metrics_host);
    }
    auto metrics_router = std::make_shared<httpd::Router>();
    MetricsRoutes(*metrics_router);
    httpd::ListenerOptions m = httpd::ListenerOptions::Tcp(opts_.metrics_host, opts_.metrics_port);
    m.tag = "metrics";
    m.router = std::move(metrics_router);
    metrics_listener_ = svr_->AddListener(std::move(m));
  }
  base::Status started = svr_->Start();
  if (!started.ok()) {
    std::string what = tls() ? " (or the TLS certificate or key cannot be loaded)" : "";
    return base::Status::Network("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + what + ": " +
                                 started.message());
  }
  return svr_->port(0);
}

int CollectorServer::metrics_port() const {
  return svr_ && !opts_.metrics_host.empty() ? svr_->port(metrics_listener_) : 0;
}

httpd::Stats CollectorServer::http_stats() const { return svr_ ? svr_->stats() : httpd::Stats(); }

base::Status CollectorServer::Serve() {
  if (!svr_) return base::Status::Internal("Bind() first");
  retention_.Start();
  webhooks_.Start();
  withdrawals_.Start();
  {
    std::unique_lock<std::mutex> l(stop_mu_);
    stop_cv_.wait(l, [this] { return stop_; });
  }
  svr_->Stop(5000);  // in-flight requests finish and their answers go out
  retention_.Stop();
  webhooks_.Stop();
  withdrawals_.Stop();
  committer_.Stop();  // in-flight handlers have returned: drain the writer
  return base::Status::Ok();
}

void CollectorServer::Stop() {
  std::lock_guard<std::mutex> l(stop_mu_);
  stop_ = true;
  stop_cv_.notify_all();
}

std::string CollectorServer::RenderMetrics() const {
  return metrics_.Render() + RenderGroupCommit(committer_.stats()) + RenderCheckpoints(health_->Checkpoints()) +
         httpd::RenderStats(http_stats(), "ferry_collector_http");
}

void CollectorServer::Health(HttpResponse& res) {
  base::Status s = health_->Check();
  res.status = s.ok() ? 200 : 503;
  res.set_content(s.ok() ? "ok\n" : "store unavailable\n", "text/plain");
}

void CollectorServer::MetricsRoutes(httpd::Router& r) {
  r.Get("/healthz", Adapt([this](const HttpRequest&, HttpResponse& res) { Health(res); }));
  r.Get("/metrics", Adapt([this](const HttpRequest&, HttpResponse& res) {
          res.set_content(RenderMetrics(), "text/plain; version=0.0.4");
        }));
}

void CollectorServer::Routes(httpd::Router& svr) {
  svr.Get("/healthz", Adapt([this](const HttpRequest&, HttpResponse& res) { Health(res); }));
  // Without a token only from loopback, and only when the main listener itself is on loopback (a proxy on the same
  // host would otherwise open it to everyone) and there is no metrics listener; elsewhere an operator token.
  bool open_on_loopback = opts_.metrics_host.empty() && net::IsLoopbackHost(opts_.host);
  svr.Get("/metrics", Adapt([this, open_on_loopback](const HttpRequest& req, HttpResponse& res) {
            bool loopback = open_on_loopback && net::IsLoopbackPeer(req.remote_addr);
            if (!loopback && !admin_.HasRole(req, "operator")) return Answer(res, 401, "an operator token is required");
            res.set_content(RenderMetrics(), "text/plain; version=0.0.4");
          }));
  admin_.Register(svr);
  RegisterInsightRoutes(svr, opts_.insight, &rights_, log_);
  RegisterRegistryRoutes(svr, &registry_, &rights_);
  RegisterOutboxRoutes(svr, transactions_, &rights_);
  RegisterErasureRoutes(svr, &rights_);
  RegisterDueRoutes(svr, &rights_);
  RegisterPublicRoutes(svr, &rights_, opts_.public_requests, opts_.public_options, clock_);
  if (opts_.public_requests) RegisterSelfServeRoutes(svr);
  RegisterConsentRoutes(svr, &rights_);
  RegisterMinorRoutes(svr, &rights_);
  if (opts_.console) RegisterConsoleRoutes(svr, log_);

  svr.Post(
      "/v1/batch", Adapt([this](const HttpRequest& req, HttpResponse& res) {
        BatchTimer timer(metrics_, res);
        int64_t received_ms = clock_->NowMs();
        std::optional<Fault> fault = faults_.Next();
        if (fault && !fault->after_store) return ApplyFault(*fault, res, clock_);

        std::string key = BearerToken(req);
        if (key.empty()) return Answer(res, 401, "missing write key");
        auto info = credentials_->LookupWriteKey(key);
        if (!info.ok()) {
          // Like every other store failure of this route: the sender retries after a second (the key's cached
          // lookup lasts kWriteKeyCacheMs, so an outage longer than that meets this path first).
          log_.Error("write key lookup failed: " + info.status().ToString());
          Answer(res, 503, "store unavailable");
          res.set_header("Retry-After", "1");
          return;
        }
        if (!info->has_value()) return Answer(res, 401, "unknown write key");
        const WriteKeyInfo& project = **info;

        if (int64_t wait = limiter_.Take(key, clock_->MonotonicMs()); wait > 0) {
          Answer(res, 429, "rate limit");
          res.set_header("Retry-After", std::to_string(wait));
          return;
        }

        // Bounded as sent (the route's body limit) and once decoded (zstd, gzip or identity).
        httpd::BodyLimits limits;
        limits.max_body_bytes = opts_.limits.max_compressed_bytes;
        limits.max_decoded_bytes = opts_.limits.max_decompressed_bytes;
        std::string body;
        httpd::BodyRead read = httpd::DecodeBody(req.get_header_value("Content-Encoding"), req.body, limits, &body);
        if (!read.ok()) return Answer(res, read.status, read.reason);

        ParsedBatch parsed = ParseBatch(wire::Encoding::kIdentity, body, opts_.limits, received_ms, opts_.event_time,
                                        opts_.insight != nullptr);
        body.clear();
        body.shrink_to_fit();
        if (parsed.status != 200) return Answer(res, parsed.status, parsed.error);

        // What both gates read (consent policy, minor marks, the people's consent records, restrictions), together.
        const std::vector<std::pair<std::string, std::string>> people = ConsentGatePeople(parsed.events);
        IngestGateInput gate_input;
        if (!parsed.events.empty()) {
          auto read = gates_->ReadIngestGate(project.project_id, people);
          if (!read.ok()) {
            log_.Error("reading consent and restrictions for a batch failed: " + read.status().ToString());
            Answer(res, 503, "store unavailable");
            res.set_header("Retry-After", "1");
            return;
          }
          gate_input = std::move(read).value();
        }
        // Consent (issue 12): refused events leave the batch in a project that enforces; the answer counts them as
        // accepted (like events of erased subjects), so a write key's holder learns nothing of anyone's choices.
        auto gate = JudgeConsent(gate_input, people, opts_.consent_default, &parsed.events);
        if (!gate.ok()) {
          log_.Error("reading consent for a batch failed: " + gate.status().ToString());
          Answer(res, 503, "store unavailable");
          res.set_header("Retry-After", "1");
          return;
        }
        int64_t consent_refused = 0;
        for (const auto& entry : gate->refused) consent_refused += gate->enforced ? entry.second : 0;
        metrics_.AddConsentRefusals(gate->refused, gate->enforced);
        // Restriction (issue 13): refused events leave the batch and are counted as accepted too.
        const RestrictionGateResult restricted =
            JudgeRestrictions(gate_input.restrictions, gate_input.restriction_mode, &parsed.events);
        metrics_.AddRestricted(restricted.quarantined, restricted.refused);

        InsertRequest ins;
        ins.project_id = project.project_id;
        ins.project = project.project;
        ins.credential = project.credential();  // the provenance of the identity links it asserts
        ins.key_id = project.prefix;
        ins.events = std::move(parsed.events);
        ins.dropped = std::move(parsed.dropped);
        base::Status s = committer_.Submit(&ins);
        if (!s.ok()) {
          log_.Error("storing a batch failed: " + s.ToString());
          Answer(res, 503, "store unavailable");
          res.set_header("Retry-After", "1");
          return;
        }
        int64_t accepted = 0, duplicate = 0, suppressed = 0;
        bool denial = false;  // a withdrawal stored: it acts on stored data (the withdrawal job, off this path)
        for (size_t i = 0; i < ins.outcomes.size(); ++i) {
          const InsertOutcome o = ins.outcomes[i];
          if (o == InsertOutcome::kAccepted) ++accepted;
          if (o == InsertOutcome::kDuplicate) ++duplicate;
          if (o == InsertOutcome::kSuppressed) ++suppressed;
          denial = denial || (o == InsertOutcome::kAccepted && i < ins.events.size() && IsWithdrawal(ins.events[i]));
        }
        if (denial) withdrawals_.Wake();
        metrics_.AddEvents(accepted, duplicate, static_cast<int64_t>(parsed.rejected.size()), suppressed);
        if (fault) return ApplyFault(*fault, res, clock_);  // after_store: the batch is kept, the answer is lost
        res.status = 200;
        // Events of erased subjects are counted as suppressed in the metrics only: the sender (a write key,
        // which anyone may hold) is told they were accepted, so the answer does not reveal who was erased.
        res.set_content(
            BatchAnswer(accepted + suppressed + consent_refused + restricted.refused, duplicate, 0, parsed.rejected),
            kJson);
      }));
}

}  // namespace ferry::collector
