#include "agent/agent.h"

#include <cstdio>
#include <shared_mutex>

#include <nlohmann/json.hpp>

#include "agent/api.h"
#include "ferry/ferry.h"
#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "lib/wire/event.h"
#include "lib/wire/http_status.h"

namespace ferry::agent {

using base::Result;
using base::Status;
using Json = nlohmann::json;

namespace {

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Answer Reply(int status, const Json& j, int retry_after_s = 0) { return Answer{status, Dump(j), retry_after_s}; }

// The one error body ({"error", "code"}, wire::ErrorBody) with the members in `extra` added.
Answer WithError(base::Code code, const std::string& reason, Json extra, int http_status = 0) {
  Json j = Json::parse(wire::ErrorBody(code, reason), nullptr, false);
  if (!j.is_object()) j = Json::object();
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = std::move(it.value());
  int status = http_status != 0 ? http_status : wire::HttpStatusFor(code);
  return Reply(status, j, status == 503 ? 1 : 0);
}

Answer Invalid(const std::string& why) { return ErrorAnswer(base::Code::kInvalidArgument, "invalid", why); }

Answer Unavailable(const std::string& why, base::Code code = base::Code::kUnavailable) {
  return ErrorAnswer(code, "error", why, 503);
}

std::string PromEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

Answer ErrorAnswer(base::Code code, const std::string& result, const std::string& reason, int http_status) {
  return WithError(code, reason, {{"result", result}, {"reason", reason}}, http_status);
}

Agent::Agent(AgentConfig cfg, base::Logger log, base::Clock* clock)
    : log_(std::move(log)), clock_(clock), cfg_(std::move(cfg)), started_ms_(clock->NowMs()) {}

Agent::~Agent() = default;

Result<std::unique_ptr<core::Client>> Agent::OpenClient(const AgentConfig& cfg, const base::Logger& log) {
  auto key = LoadBufferKey(cfg);
  if (!key.ok()) return key.status();
  core::ClientOptions o;
  o.endpoint = cfg.upstream_url;
  o.write_key = cfg.write_key;
  o.storage_path = cfg.storage_path;
  o.encryption_key = std::move(key).value();
  o.ca_file = cfg.ca_file;
  o.pinned_public_key = cfg.pinned_public_key;
  o.app_name = cfg.app_name;
  o.app_version = kAgentVersion;
  o.default_consent = cfg.default_consent;
  o.hold_pending = cfg.hold_pending;
  o.flush_interval_ms = cfg.flush_interval_ms;
  o.batch_size = cfg.batch_size;
  o.max_storage_bytes = cfg.max_storage_bytes;
  o.max_event_age_ms = cfg.max_event_age_ms;
  o.pii_rules = cfg.pii_rules;
  // An answer to a local caller means the event is on disk: a crash right after loses nothing.
  o.durability = core::Durability::kSync;
  o.zstd_level = cfg.zstd_level;
  o.request_timeout_ms = cfg.request_timeout_ms;
  o.logger = log;
  return core::Client::Open(std::move(o));
}

Result<std::unique_ptr<Agent>> Agent::Open(AgentConfig cfg, base::Logger log, base::Clock* clock) {
  if (clock == nullptr) return Status::InvalidArgument("no clock");
  auto client = OpenClient(cfg, log);
  if (!client.ok()) return client.status();
  std::unique_ptr<Agent> a(new Agent(std::move(cfg), std::move(log), clock));
  a->client_ = std::move(client).value();
  return a;
}

AgentConfig Agent::config() const {
  std::shared_lock<base::SharedMutex> l(client_mu_);
  return cfg_;
}

void Agent::CountRequest(const std::string& route, int status) {
  std::lock_guard<std::mutex> l(metrics_mu_);
  requests_[route + '\x1f' + std::to_string(status)]++;
}

void Agent::CountEvent(const char* result, int64_t n) {
  if (n == 0) return;
  std::lock_guard<std::mutex> l(metrics_mu_);
  events_[result] += n;
}

Answer Agent::FromStatus(const Status& s, const std::string& message_id, const std::string& purpose,
                         core::Client* client) {
  switch (s.code()) {
    case base::Code::kOk: {
      core::Consent c = purpose == "necessary" ? core::Consent::kGranted : client->GetConsent(purpose);
      CountEvent(c == core::Consent::kGranted ? "accepted" : "accepted_pending");
      return Reply(200, {{"result", "accepted"},
                         {"messageId", message_id},
                         {"purpose", purpose},
                         {"consent", core::ConsentName(c)},
                         {"note", c == core::Consent::kGranted ? "stored; it will be sent"
                                                               : "held encrypted (hold_pending_ms); sent only once "
                                                                 "the purpose is granted, purged if it is denied, "
                                                                 "dropped if still pending after its hold"}});
    }
    case base::Code::kConsentDenied:
      CountEvent("dropped_consent");
      return Reply(200, {{"result", "dropped"}, {"reason", s.message()}, {"purpose", purpose}});
    case base::Code::kInvalidArgument: CountEvent("invalid"); return Invalid(s.message());
    case base::Code::kStorage:
      CountEvent("error");
      return Unavailable("the buffer cannot take the event: " + s.message(), base::Code::kStorage);
    case base::Code::kClosed:
      CountEvent("error");
      return Unavailable("the agent is reloading or stopping", base::Code::kClosed);
    default: CountEvent("error"); return ErrorAnswer(s.code(), "error", s.message());
  }
}

Answer Agent::Event(std::string_view type, std::string_view body) {
  EventRequest req;
  std::string why = ParseEventRequest(type, body, &req);
  if (!why.empty()) {
    CountEvent("invalid");
    return Invalid(why);
  }
  core::Client::CallContext ctx;
  ctx.user_id = std::move(req.user_id);
  ctx.anonymous_id = std::move(req.anonymous_id);
  // One sent without a messageId gets a UUIDv7 of the agent's clock, as the SDK makes them: the collector's index on
  // messageIds takes it at its end, not at a random page.
  ctx.message_id = req.message_id.empty() ? base::NewUuidV7(clock_->NowMs()) : std::move(req.message_id);
  ctx.timestamp_ms = req.timestamp_ms;
  std::shared_lock<base::SharedMutex> l(client_mu_);
  if (!client_) return Unavailable("the agent is stopping");
  why = NecessaryProblem(type, req.purpose, req.name, cfg_.necessary_events);
  if (!why.empty()) {
    CountEvent("invalid");
    return ErrorAnswer(base::Code::kPermissionDenied, "forbidden", why);
  }
  Status s = client_->RecordAs(ctx, type, req.name, req.has_payload ? req.payload.c_str() : nullptr,
                               req.has_purpose ? req.purpose.c_str() : nullptr);
  return FromStatus(s, ctx.message_id, type == "track" ? req.purpose : "analytics", client_.get());
}

Answer Agent::Events(std::string_view body) {
  EventsRequest r = ParseEventsBody(body);
  if (r.http_status != 0) {
    CountEvent("invalid");
    return ErrorAnswer(r.code, "invalid", r.error, r.http_status);
  }
  const size_t n = r.items.size();
  Json results = Json::array();
  std::vector<Status> st(n);
  std::vector<uint64_t> tickets(n, 0);
  std::vector<std::string> ids(n), purposes(n);
  std::shared_lock<base::SharedMutex> l(client_mu_);
  if (!client_) return Unavailable("the agent is stopping");
  // Every event is queued first, then all are waited for: one grouped commit (SYNC) for the whole request.
  for (size_t i = 0; i < n; ++i) {
    EventsRequest::Item& it = r.items[i];
    if (!it.invalid.empty()) {
      st[i] = Status::InvalidArgument(it.invalid);
      continue;
    }
    purposes[i] = it.type == "track" ? it.req.purpose : "analytics";
    if (std::string why = NecessaryProblem(it.type, it.req.purpose, it.req.name, cfg_.necessary_events); !why.empty()) {
      st[i] = Status::PermissionDenied(why);
      continue;
    }
    core::Client::CallContext ctx;
    ctx.user_id = std::move(it.req.user_id);
    ctx.anonymous_id = std::move(it.req.anonymous_id);
    ctx.message_id = it.req.message_id.empty() ? base::NewUuidV7(clock_->NowMs()) : std::move(it.req.message_id);
    ctx.timestamp_ms = it.req.timestamp_ms;
    ids[i] = ctx.message_id;
    st[i] = client_->RecordAs(ctx, it.type, it.req.name, it.req.has_payload ? it.req.payload.c_str() : nullptr,
                              it.req.has_purpose ? it.req.purpose.c_str() : nullptr, &tickets[i]);
    if (!st[i].ok()) tickets[i] = 0;
  }
  for (size_t i = 0; i < n; ++i) {
    if (tickets[i] != 0) st[i] = client_->WaitCommitted(tickets[i]);
  }
  int64_t accepted = 0, pending = 0, dropped = 0, refused = 0;
  for (size_t i = 0; i < n; ++i) {
    switch (st[i].code()) {
      case base::Code::kOk: {
        core::Consent c = purposes[i] == "necessary" ? core::Consent::kGranted : client_->GetConsent(purposes[i]);
        ++(c == core::Consent::kGranted ? accepted : pending);
        results.push_back({{"result", "accepted"},
                           {"messageId", ids[i]},
                           {"purpose", purposes[i]},
                           {"consent", core::ConsentName(c)}});
        break;
      }
      case base::Code::kConsentDenied:
        ++dropped;
        results.push_back({{"result", "dropped"}, {"reason", st[i].message()}, {"purpose", purposes[i]}});
        break;
      case base::Code::kInvalidArgument:
      case base::Code::kPermissionDenied:
        ++refused;
        results.push_back({{"result", st[i].code() == base::Code::kInvalidArgument ? "invalid" : "forbidden"},
                           {"reason", st[i].message()}});
        break;
      default: {
        // Some events may be stored already: a caller that sends its own messageIds and resends the request gets
        // each event stored once at the collector.
        int64_t stored = accepted + pending;
        for (size_t k = i + 1; k < n; ++k) stored += st[k].ok() ? 1 : 0;
        CountEvent("accepted", accepted);
        CountEvent("accepted_pending", pending);
        CountEvent("error", static_cast<int64_t>(n) - stored);
        bool closed = st[i].code() == base::Code::kClosed;
        return Unavailable(
            closed ? "the agent is reloading or stopping" : "the buffer cannot take the events: " + st[i].message(),
            closed ? base::Code::kClosed : base::Code::kStorage);
      }
    }
  }
  CountEvent("accepted", accepted);
  CountEvent("accepted_pending", pending);
  CountEvent("dropped_consent", dropped);
  CountEvent("invalid", refused);
  return Reply(200,
               {{"accepted", accepted + pending}, {"dropped", dropped}, {"refused", refused}, {"results", results}});
}

Answer Agent::Batch(std::string_view body, int64_t received_ms) {
  std::vector<std::string> necessary = config().necessary_events;
  PreparedBatch b = PrepareBatch(body, received_ms, necessary);
  // Answered like the collector's /v1/batch: the error body alone.
  if (b.http_status != 0) return WithError(b.code, b.error, Json::object(), b.http_status);
  Json rejected = std::move(b.rejected);
  auto reject = [&](size_t i, const std::string& message_id, const std::string& reason) {
    rejected.push_back({{"index", i}, {"messageId", message_id}, {"reason", reason}});
  };
  std::vector<std::string> ids;  // for messageIds in rejections
  ids.reserve(b.events.size());
  for (const auto& e : b.events) ids.push_back(e.value("messageId", std::string()));

  std::shared_lock<base::SharedMutex> l(client_mu_);
  if (!client_) return Unavailable("the agent is stopping");
  std::vector<Status> st = client_->RecordBuilt(std::move(b.events));
  int64_t accepted = 0, denied = 0;
  for (size_t k = 0; k < st.size(); ++k) {
    switch (st[k].code()) {
      case base::Code::kOk: ++accepted; break;
      case base::Code::kConsentDenied:
        ++denied;
        reject(b.index[k], ids[k], "consent_denied: " + st[k].message());
        break;
      case base::Code::kInvalidArgument: reject(b.index[k], ids[k], st[k].message()); break;
      default:
        // Some events may be stored already: the sender resends the batch, the collector keeps one of each.
        CountEvent("accepted", accepted);
        CountEvent("error", static_cast<int64_t>(st.size()) - accepted);
        return Unavailable("the buffer cannot take the batch: " + st[k].message());
    }
  }
  if (b.evicted > 0) client_->AddUnreportedEvicted(b.evicted);
  CountEvent("accepted", accepted);
  CountEvent("dropped_consent", denied);
  CountEvent("invalid", static_cast<int64_t>(rejected.size()) - denied);
  return Reply(200, {{"accepted", accepted}, {"duplicate", 0}, {"suppressed", 0}, {"rejected", rejected}});
}

Answer Agent::GetConsent() {
  std::shared_lock<base::SharedMutex> l(client_mu_);
  if (!client_) return Unavailable("the agent is stopping");
  Json out = Json::object();
  // The built-in purposes (docs/C_API.md) are listed even when nothing set them: a purpose never set is pending.
  for (const char* p : {"necessary", "analytics", "marketing", "personalization", "sensitive"}) out[p] = "pending";
  for (const auto& [p, c] : client_->ConsentStates()) out[p] = core::ConsentName(c);
  return Reply(200, {{"consent", out}});
}

Answer Agent::PutConsent(const std::string& purpose, std::string_view body) {
  std::string name;
  std::string why = ParseConsentBody(body, &name);
  if (!why.empty()) return Invalid(why);
  core::Consent state;
  if (!core::ConsentFromName(name, &state)) return Invalid("unknown consent state '" + name + "'");
  std::shared_lock<base::SharedMutex> l(client_mu_);
  if (!client_) return Unavailable("the agent is stopping");
  core::Consent previous = client_->GetConsent(purpose);
  Status s = client_->SetConsent(purpose, state);
  if (s.code() == base::Code::kInvalidArgument) return Invalid(s.message());
  if (!s.ok()) return Unavailable(s.message());
  log_.Info("device consent for '" + purpose + "': " + core::ConsentName(previous) + " -> " + core::ConsentName(state));
  return Reply(200,
               {{"purpose", purpose}, {"state", core::ConsentName(state)}, {"previous", core::ConsentName(previous)}});
}

Answer Agent::Health() {
  std::shared_lock<base::SharedMutex> l(client_mu_);
  if (!client_) return WithError(base::Code::kClosed, "stopping", {{"status", "stopping"}});
  Json stats = Json::parse(client_->StatsJson(), nullptr, false);
  if (!stats.is_object()) {
    return WithError(base::Code::kUnavailable, "stats unavailable", {{"status", "stats unavailable"}});
  }
  if (stats.value("auth_failed", false)) {
    const char* why = "upstream refused the write key";
    return WithError(base::Code::kUnavailable, why, {{"status", why}, {"queued", stats["queued"]}});
  }
  return Reply(200, {{"status", "ok"},
                     {"queued", stats["queued"]},
                     {"pending_consent", stats["pending_consent"]},
                     {"last_error", stats["last_error"]}});
}

std::string Agent::Metrics() {
  std::string out;
  auto line = [&](const std::string& name, const std::string& labels, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    out += name;
    if (!labels.empty()) out += "{" + labels + "}";
    out += ' ';
    out += buf;
    out += '\n';
  };
  auto head = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  {
    std::lock_guard<std::mutex> l(metrics_mu_);
    head("ferry_agent_requests_total", "counter", "Local API answers by route and HTTP status.");
    for (const auto& [k, n] : requests_) {
      size_t sep = k.find('\x1f');
      line("ferry_agent_requests_total",
           "route=\"" + PromEscape(k.substr(0, sep)) + "\",code=\"" + k.substr(sep + 1) + "\"", double(n));
    }
    head("ferry_agent_events_total", "counter",
         "Events from local callers by outcome (accepted, accepted_pending, dropped_consent, invalid, error); "
         "dropped_consent: refused by consent (denied, or pending and not held).");
    for (const char* r : {"accepted", "accepted_pending", "dropped_consent", "invalid", "error"}) {
      auto it = events_.find(r);
      line("ferry_agent_events_total", std::string("result=\"") + r + "\"",
           it == events_.end() ? 0 : double(it->second));
    }
  }
  head("ferry_agent_reloads_total", "counter", "Config reloads (SIGHUP) by result.");
  line("ferry_agent_reloads_total", "result=\"ok\"", double(reloads_ok_.load()));
  line("ferry_agent_reloads_total", "result=\"failed\"", double(reloads_failed_.load()));
  head("ferry_agent_start_time_seconds", "gauge", "Start time of the agent (Unix seconds).");
  line("ferry_agent_start_time_seconds", "", double(started_ms_) / 1000.0);

  Json stats;
  {
    std::shared_lock<base::SharedMutex> l(client_mu_);
    if (client_) stats = Json::parse(client_->StatsJson(), nullptr, false);
  }
  head("ferry_agent_up", "gauge", "1 while the buffer is open.");
  line("ferry_agent_up", "", stats.is_object() ? 1 : 0);
  if (!stats.is_object()) return out;
  auto num = [&](const char* k) { return stats.contains(k) && stats[k].is_number() ? stats[k].get<double>() : 0.0; };
  head("ferry_agent_buffer_events", "gauge", "Events in the encrypted buffer: queued (sendable) or pending consent.");
  line("ferry_agent_buffer_events", "state=\"queued\"", num("queued"));
  line("ferry_agent_buffer_events", "state=\"pending_consent\"", num("pending_consent"));
  head("ferry_agent_buffer_bytes", "gauge", "Accounted bytes of the buffer.");
  line("ferry_agent_buffer_bytes", "", num("storage_bytes"));
  head("ferry_agent_buffer_file_bytes", "gauge", "Size of the buffer file and its WAL.");
  line("ferry_agent_buffer_file_bytes", "", num("file_bytes"));
  head("ferry_agent_upstream_auth_failed", "gauge", "1 when the upstream refused the write key (sending stopped).");
  line("ferry_agent_upstream_auth_failed", "", stats.value("auth_failed", false) ? 1 : 0);
  // Counters of the pipeline since the buffer was (re)opened.
  const std::pair<const char*, const char*> counters[] = {
      {"sent", "Events the upstream accepted or already had."},
      {"duplicate", "Events the upstream already had."},
      {"suppressed", "Events the upstream dropped for an erased subject."},
      {"rejected", "Events the upstream rejected."},
      {"dropped_consent", "Events refused because their purpose is denied."},
      {"dropped_pending", "Events of a pending purpose dropped: not held (hold_pending_ms), or held too long."},
      {"purged_consent", "Buffered events purged when their purpose was denied."},
      {"evicted", "Events evicted by the buffer's size or age limit."},
      {"retries", "Upload attempts that failed and will be retried."},
      {"batches", "Batches the upstream answered with 200."},
      {"storage_errors", "Failed commits to the buffer."},
  };
  for (const auto& [k, help] : counters) {
    std::string name = std::string("ferry_agent_pipeline_") + k + "_total";
    head(name.c_str(), "counter", help);
    line(name, "", num(k));
  }
  return out;
}

Status Agent::Reload(AgentConfig next) {
  AgentConfig cur = config();
  // Settings bound to sockets, files and keys stay until a restart.
  auto keep = [&](auto AgentConfig::*field, const char* key) {
    if (next.*field != cur.*field) {
      log_.Warn(std::string("reload: '") + key + "' changed; it takes effect after a restart");
      next.*field = cur.*field;
    }
  };
  keep(&AgentConfig::listen, "listen");
  keep(&AgentConfig::listen_host, "listen");
  keep(&AgentConfig::listen_port, "listen");
  keep(&AgentConfig::unix_socket_path, "unix_socket.path");
  keep(&AgentConfig::unix_socket_mode, "unix_socket.mode");
  keep(&AgentConfig::tls_cert, "tls.cert");
  keep(&AgentConfig::tls_key, "tls.key");
  keep(&AgentConfig::port_file, "port_file");
  keep(&AgentConfig::threads, "threads");
  keep(&AgentConfig::max_body_bytes, "limits.max_body_bytes");
  keep(&AgentConfig::max_decoded_bytes, "limits.max_decoded_bytes");
  keep(&AgentConfig::storage_path, "storage.path");
  keep(&AgentConfig::key_source, "buffer_key.source");
  keep(&AgentConfig::key_path, "buffer_key.path");
  keep(&AgentConfig::key_name, "buffer_key.name");

  std::unique_lock<base::SharedMutex> l(client_mu_);
  if (!client_) return Status::Closed("the agent is stopping");
  // The old client commits what it queued and stops its threads before the buffer is opened again.
  client_.reset();
  auto fresh = OpenClient(next, log_);
  if (!fresh.ok()) {
    reloads_failed_++;
    auto back = OpenClient(cur, log_);
    if (back.ok()) {
      client_ = std::move(back).value();
    } else {
      log_.Error("reload: the previous config cannot be opened again either: " + back.status().ToString());
    }
    return fresh.status();
  }
  client_ = std::move(fresh).value();
  cfg_ = std::move(next);
  reloads_ok_++;
  return Status::Ok();
}

Status Agent::Shutdown(uint32_t timeout_ms) {
  std::unique_lock<base::SharedMutex> l(client_mu_);
  if (!client_) return Status::Ok();
  Status s = client_->Close(timeout_ms);
  client_.reset();
  return s;
}

}  // namespace ferry::agent
