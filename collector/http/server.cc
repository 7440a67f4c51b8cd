#include "collector/http/server.h"

#include <httplib.h>

#include <chrono>

#include "collector/ingest/ingest.h"
#include "lib/base/time.h"
#include "lib/httpd/body.h"
#include "lib/net/address.h"
#include "lib/wire/auth.h"
#include "lib/wire/http_status.h"

namespace ferry::collector {

namespace {

constexpr const char* kJson = "application/json";

// "Bearer <token>" -> token ("" when absent or malformed).
std::string BearerToken(const httplib::Request& req) {
  return wire::BearerToken(req.get_header_value("Authorization"));
}

// Records the answer of one /v1/batch request when it goes out of scope.
class BatchTimer {
 public:
  BatchTimer(Metrics& m, const httplib::Response& res) : m_(m), res_(res), start_(std::chrono::steady_clock::now()) {}
  ~BatchTimer() {
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - start_;
    m_.ObserveBatch(res_.status, d.count());
  }

 private:
  Metrics& m_;
  const httplib::Response& res_;
  std::chrono::steady_clock::time_point start_;
};

void Answer(httplib::Response& res, int status, const std::string& reason) {
  res.status = status;
  res.set_content(wire::ErrorBody(wire::CodeForHttpStatus(status), reason), kJson);
}

// An answer given before the body was read: the client is told to close the connection, since the unread body
// would otherwise be taken for the next request.
void AnswerUnread(httplib::Response& res, int status, const std::string& reason) {
  Answer(res, status, reason);
  res.set_header("Connection", "close");
}

// Gives an injected fault as the answer.
void ApplyFault(const Fault& f, httplib::Response& res, base::Clock* clock) {
  if (f.delay_ms > 0) clock->SleepUntil(clock->MonotonicMs() + f.delay_ms);
  if (f.reset) {
    // The status line and headers go out, then the connection closes before the promised body: the client sees a
    // transport error, as with a connection reset mid-answer.
    res.status = 200;
    res.set_content_provider(
        1024, kJson, [](size_t, size_t, httplib::DataSink&) { return false; }, nullptr);
    return;
  }
  AnswerUnread(res, f.status, "injected fault");
  if (f.retry_after >= 0) res.set_header("Retry-After", std::to_string(f.retry_after));
}

}  // namespace

CollectorServer::CollectorServer(ServerOptions opts, Store* store, base::Logger log)
    : opts_(std::move(opts)),
      credentials_(store),
      health_(store),
      clock_(opts_.clock != nullptr ? opts_.clock : base::SystemClock()),
      log_(std::move(log)),
      limiter_(opts_.rate_limit, opts_.rate_burst),
      committer_(store),
      rights_(rights::StoresOf(store), clock_, opts_.rights, log_),
      admin_(&rights_, log_, opts_.admin, clock_),
      retention_(store, clock_, rights::RetentionOptions{opts_.retention_max_age_ms, opts_.retention_interval_ms, 5000},
                 log_, [this](int64_t n) { metrics_.AddPurged(n); }) {}

CollectorServer::~CollectorServer() {
  Stop();
  committer_.Stop();
  retention_.Stop();
}

base::Result<int> CollectorServer::Bind() {
  if (tls()) {
    auto s = std::make_unique<httplib::SSLServer>(opts_.tls_cert.c_str(), opts_.tls_key.c_str());
    if (!s->is_valid()) return base::Status::InvalidArgument("cannot load the TLS certificate or key");
    svr_ = std::move(s);
  } else {
    svr_ = std::make_unique<httplib::Server>();
  }
  int threads = opts_.threads > 0 ? opts_.threads : 64;
  svr_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr_->set_tcp_nodelay(true);
  svr_->set_keep_alive_max_count(1000000);
  svr_->set_keep_alive_timeout(opts_.keep_alive_timeout_s);
  svr_->set_read_timeout(opts_.read_timeout_s, 0);
  svr_->set_write_timeout(opts_.read_timeout_s, 0);
  // Bodies whose Content-Length is above the compressed limit are refused (413) without being kept in memory.
  svr_->set_payload_max_length(opts_.limits.max_compressed_bytes);
  Routes();
  int port = opts_.port == 0 ? svr_->bind_to_any_port(opts_.host)
                             : (svr_->bind_to_port(opts_.host, opts_.port) ? opts_.port : -1);
  if (port <= 0) {
    return base::Status::Network("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port));
  }
  return port;
}

base::Status CollectorServer::Serve() {
  if (!svr_) return base::Status::Internal("Bind() first");
  retention_.Start();
  bool ok = svr_->listen_after_bind();
  retention_.Stop();
  committer_.Stop();  // in-flight handlers have returned: drain the writer
  return ok ? base::Status::Ok() : base::Status::Network("the server stopped with an error");
}

void CollectorServer::Stop() {
  if (svr_) svr_->stop();
}

void CollectorServer::Routes() {
  svr_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    base::Status s = health_->Check();
    res.status = s.ok() ? 200 : 503;
    res.set_content(s.ok() ? "ok\n" : "store unavailable\n", "text/plain");
  });
  svr_->Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    // Open on loopback; elsewhere an operator token is needed.
    bool loopback = net::IsLoopbackPeer(req.remote_addr);
    if (!loopback && !admin_.HasRole(req, "operator")) return Answer(res, 401, "an operator token is required");
    res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
  });
  admin_.Register(*svr_);

  svr_->Post(
      "/v1/batch", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        BatchTimer timer(metrics_, res);
        int64_t received_ms = clock_->NowMs();
        std::optional<Fault> fault = faults_.Next();
        if (fault && !fault->after_store) return ApplyFault(*fault, res, clock_);

        std::string key = BearerToken(req);
        if (key.empty()) return AnswerUnread(res, 401, "missing write key");
        auto info = credentials_->LookupWriteKey(key);
        if (!info.ok()) {
          log_.Error("write key lookup failed: " + info.status().ToString());
          return AnswerUnread(res, 503, "store unavailable");
        }
        if (!info->has_value()) return AnswerUnread(res, 401, "unknown write key");
        const WriteKeyInfo& project = **info;

        if (int64_t wait = limiter_.Take(key, clock_->MonotonicMs()); wait > 0) {
          AnswerUnread(res, 429, "rate limit");
          res.set_header("Retry-After", std::to_string(wait));
          return;
        }

        // Bounded as sent and once decoded (zstd, gzip or identity).
        httpd::BodyLimits limits;
        limits.max_body_bytes = opts_.limits.max_compressed_bytes;
        limits.max_decoded_bytes = opts_.limits.max_decompressed_bytes;
        std::string body;
        httpd::BodyRead read = httpd::ReadEncodedBody(req, res, reader, limits, &body);
        if (!read.ok() && read.unread) return AnswerUnread(res, read.status, read.reason);
        if (!read.ok()) return Answer(res, read.status, read.reason);

        ParsedBatch parsed = ParseBatch(wire::Encoding::kIdentity, body, opts_.limits, received_ms, opts_.event_time);
        body.clear();
        body.shrink_to_fit();
        if (parsed.status != 200) return Answer(res, parsed.status, parsed.error);

        InsertRequest ins;
        ins.project_id = project.project_id;
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
        for (InsertOutcome o : ins.outcomes) {
          if (o == InsertOutcome::kAccepted) ++accepted;
          if (o == InsertOutcome::kDuplicate) ++duplicate;
          if (o == InsertOutcome::kSuppressed) ++suppressed;
        }
        metrics_.AddEvents(accepted, duplicate, static_cast<int64_t>(parsed.rejected.size()), suppressed);
        if (fault) return ApplyFault(*fault, res, clock_);  // after_store: the batch is kept, the answer is lost
        res.status = 200;
        res.set_content(BatchAnswer(accepted, duplicate, suppressed, parsed.rejected), kJson);
      });
}

}  // namespace ferry::collector
