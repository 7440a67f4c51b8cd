#include "sdk/core/uploader.h"

#include <sodium.h>

#include <algorithm>
#include <exception>

#include <nlohmann/json.hpp>

#include "lib/base/time.h"
#include "lib/wire/codec.h"

namespace ferry::core {

using base::Status;
using Json = nlohmann::json;

namespace {
constexpr size_t kMaxBatchJsonBytes = 4u << 20;  // under the collector's 5 MiB decompressed limit
constexpr int64_t kBackoffBaseMs = 1000;
constexpr int64_t kBackoffCapMs = 600000;
const char* const kMetaUnreportedEvicted = "unreported_evicted";
}  // namespace

Uploader::Uploader(const ClientOptions& opts, Buffer* store, Stats* stats, base::Logger log,
                   PurposesFn sendable_purposes, std::unique_ptr<platform::HttpTransport> transport)
    : opts_(opts),
      clock_(opts.clock),
      buffer_(store),
      stats_(stats),
      log_(std::move(log)),
      sendable_purposes_(std::move(sendable_purposes)),
      transport_(std::move(transport)),
      batch_limit_(std::max<uint32_t>(1, opts.batch_size)) {
  if (auto v = buffer_->GetMeta(kMetaUnreportedEvicted)) {
    unreported_evicted_ = std::strtoll(v->c_str(), nullptr, 10);
  }
}

Uploader::~Uploader() { Stop(); }

bool Uploader::AdmitPendingEvent(std::string* body, const std::string& receipt) {
  static constexpr std::string_view kStart = "{\"messageId\":\"";
  static constexpr std::string_view kSeq = ",\"deviceSeq\":";
  static constexpr std::string_view kPending = ",\"consentReceipt\":null";
  const std::string& b = *body;
  if (receipt.empty() || b.compare(0, kStart.size(), kStart) != 0) return false;
  size_t i = kStart.size();
  while (i < b.size() && b[i] != '"') i += b[i] == '\\' ? 2 : 1;  // the end of the messageId string
  if (i >= b.size()) return false;
  ++i;
  if (b.compare(i, kSeq.size(), kSeq) != 0) return false;
  i += kSeq.size();
  size_t digits = i;
  while (i < b.size() && b[i] >= '0' && b[i] <= '9') ++i;
  if (i == digits || b.compare(i, kPending.size(), kPending) != 0) return false;
  std::string quoted = "\"" + receipt + "\"";  // a UUID: nothing to escape
  body->replace(i + kPending.size() - 4, 4, quoted);
  return true;
}

void Uploader::Start() {
  if (opts_.endpoint.empty() || !transport_) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    next_interval_ms_ = clock_->MonotonicMs() + opts_.flush_interval_ms;
  }
  thread_ = std::thread([this] { Run(); });
}

void Uploader::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    ++wakes_;
  }
  cancel_.store(true);
  cv_.notify_all();
  done_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Uploader::Notify(int64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  pending_new_ += n;
  if (pending_new_ >= static_cast<int64_t>(opts_.batch_size)) WakeLocked();
}

void Uploader::WakeLocked() {
  ++wakes_;
  cv_.notify_one();
}

bool Uploader::auth_failed() const {
  std::lock_guard<std::mutex> l(mu_);
  return auth_failed_;
}

int64_t Uploader::unreported_evicted_add(int64_t n) {
  int64_t v;
  {
    std::lock_guard<std::mutex> l(mu_);
    unreported_evicted_ += n;
    v = unreported_evicted_;
  }
  (void)buffer_->PutMeta(kMetaUnreportedEvicted, std::to_string(v));
  return v;
}

void Uploader::SetBackoff(int64_t ms, bool hard) {
  std::lock_guard<std::mutex> l(mu_);
  backoff_until_ms_ = clock_->MonotonicMs() + ms;
  hard_backoff_ = hard;
}

void Uploader::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    if (!calls_.empty()) {  // an app's call waits for its answer: ahead of any pass, whatever the backoff
      std::shared_ptr<CallTask> t = calls_.front();
      calls_.pop_front();
      t->started = true;
      l.unlock();
      t->status = transport_->Post(t->req, &t->resp);
      for (std::string& h : t->req.headers) sodium_memzero(h.data(), h.size());
      sodium_memzero(t->req.body.data(), t->req.body.size());  // a claim
      l.lock();
      t->done = true;
      done_cv_.notify_all();
      continue;
    }
    int64_t now = clock_->MonotonicMs();
    bool in_backoff = now < backoff_until_ms_;
    bool due =
        !auth_failed_ && (kick_ || pending_new_ >= static_cast<int64_t>(opts_.batch_size) || now >= next_interval_ms_);
    // A new flush may cut an exponential backoff short once, never a Retry-After.
    if (in_backoff && !(kick_ && cut_backoff_ && !hard_backoff_)) due = false;
    if (!due) {
      // Until the backoff or the interval ends, or something wakes the thread (then it looks again).
      int64_t wake = in_backoff ? backoff_until_ms_ : next_interval_ms_;
      uint64_t seen = wakes_;
      clock_->WaitUntil(l, cv_, std::max(wake, now + 1), [&] { return wakes_ != seen; });
      continue;
    }
    pass_kicked_ = kick_;
    kick_ = false;
    cut_backoff_ = false;
    pending_new_ = 0;
    l.unlock();
    Cycle();
    l.lock();
    passes_++;
    next_interval_ms_ = clock_->MonotonicMs() + opts_.flush_interval_ms;
    done_cv_.notify_all();
  }
  done_cv_.notify_all();
}

void Uploader::Cycle() {
  if (pass_hook_) pass_hook_();
  if (!SendForgets()) return;
  std::set<std::string> purposes = sendable_purposes_();
  if (!more_transports_.empty()) {
    SendPipelined(purposes);
  } else {
    while (SendOneBatch(purposes)) {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
    }
  }
  // After the events: a request names the device's ids, which the collector must have seen on its events.
  (void)SendRequests();
}

bool Uploader::MayOverlap(const std::vector<QueuedEvent>& events) {
  // The client's track path writes {"messageId":"…","deviceSeq":N,"consentReceipt":null|"…","type":"…", …}; anything
  // else (a consent record is dumped with sorted keys; events of the batch API and the agent) is taken as a barrier.
  static constexpr std::string_view kStart = "{\"messageId\":\"";
  static constexpr std::string_view kSeq = ",\"deviceSeq\":";
  static constexpr std::string_view kReceipt = ",\"consentReceipt\":";
  static constexpr std::string_view kType = ",\"type\":\"";
  for (const QueuedEvent& e : events) {
    std::string_view b = e.body;
    if (b.substr(0, kStart.size()) != kStart) return false;
    size_t i = kStart.size();
    while (i < b.size() && b[i] != '"') i += b[i] == '\\' ? 2 : 1;
    if (i >= b.size()) return false;
    ++i;
    if (b.substr(i, kSeq.size()) != kSeq) return false;
    i += kSeq.size();
    while (i < b.size() && b[i] >= '0' && b[i] <= '9') ++i;
    if (b.substr(i, kReceipt.size()) != kReceipt) return false;
    i += kReceipt.size();
    if (b.substr(i, 4) == "null") {
      i += 4;
    } else if (i < b.size() && b[i] == '"') {
      ++i;
      while (i < b.size() && b[i] != '"') i += b[i] == '\\' ? 2 : 1;
      if (i >= b.size()) return false;
      ++i;
    } else {
      return false;
    }
    if (b.substr(i, kType.size()) != kType) return false;
    std::string_view rest = b.substr(i + kType.size());
    if (rest.substr(0, 6) != "track\"" && rest.substr(0, 7) != "screen\"" && rest.substr(0, 5) != "page\"")
      return false;
  }
  return true;
}

std::unique_ptr<Uploader::Shipment> Uploader::Prepare(const std::set<std::string>& purposes, int64_t after_seq,
                                                      bool* failed) {
  *failed = false;
  uint32_t limit;
  {
    std::lock_guard<std::mutex> l(mu_);
    limit = batch_limit_;
  }
  std::map<std::string, std::string> receipts;
  auto batch = batch_source_ ? batch_source_(limit, kMaxBatchJsonBytes, after_seq, &receipts)
                             : buffer_->NextBatch(purposes, limit, kMaxBatchJsonBytes, after_seq);
  if (!batch.ok()) {
    stats_->SetLastError("reading the buffer failed: " + batch.status().message());
    log_.Error("reading the buffer failed: " + batch.status().message());
    SetBackoff(kBackoffBaseMs, false);
    *failed = true;
    return nullptr;
  }
  if (batch->empty()) return nullptr;
  auto s = std::make_unique<Shipment>();
  s->evs = std::move(batch).value();
  const std::vector<QueuedEvent>& evs = s->evs;
  s->overlap = MayOverlap(evs);
  {
    std::lock_guard<std::mutex> l(mu_);
    s->evicted = std::max<int64_t>(0, unreported_evicted_ - claimed_evicted_);
    claimed_evicted_ += s->evicted;
  }

  std::string body;
  size_t raw = 64;
  for (const auto& e : evs) raw += e.body.size() + 1;
  s->full = evs.size() >= limit || raw >= kMaxBatchJsonBytes / 2;
  body.reserve(raw);
  body += "{\"sentAt\":\"";
  body += base::FormatIso8601(clock_->NowMs());
  body += "\",\"batch\":[";
  if (!batch_source_ && grant_receipts_) receipts = grant_receipts_();
  for (size_t i = 0; i < evs.size(); ++i) {
    if (i) body += ',';
    auto r = receipts.find(evs[i].purpose);
    if (r != receipts.end() && evs[i].body.find(",\"consentReceipt\":null") != std::string::npos) {
      std::string admitted = evs[i].body;
      AdmitPendingEvent(&admitted, r->second);
      body += admitted;
    } else {
      body += evs[i].body;
    }
  }
  body += "],\"dropped\":{\"evicted\":";
  body += std::to_string(s->evicted);
  body += "}}";

  s->req.url = opts_.endpoint + "/v1/batch";
  s->req.headers = {"Content-Type: application/json", "Content-Encoding: zstd",
                    "Authorization: Bearer " + opts_.write_key};
  s->req.body = zstd_.Compress(body, opts_.zstd_level);
  s->req.timeout_ms = opts_.request_timeout_ms;
  s->req.cancel = &cancel_;
  return s;
}

bool Uploader::SendOneBatch(const std::set<std::string>& purposes) {
  bool failed = false;
  std::unique_ptr<Shipment> s = Prepare(purposes, 0, &failed);
  if (!s) return false;
  s->net = transport_->Post(s->req, &s->resp);
  // A partial batch ends a pass that no flush asked for (see SendPipelined).
  return Finish(s.get(), false) && (s->full || pass_kicked_);
}

platform::HttpTransport* Uploader::FreeTransport(const std::deque<std::unique_ptr<Shipment>>& flight) const {
  auto busy = [&](const platform::HttpTransport* t) {
    for (const auto& s : flight) {
      if (s->transport == t) return true;
    }
    return false;
  };
  if (!busy(transport_.get())) return transport_.get();
  for (const auto& t : more_transports_) {
    if (!busy(t.get())) return t.get();
  }
  return nullptr;
}

void Uploader::SendPipelined(const std::set<std::string>& purposes) {
  std::deque<std::unique_ptr<Shipment>> flight;  // in the order sent; at most one on each transport
  bool go = true;                                // false: send nothing more this pass, only take the answers
  bool failed = false;                           // a request of this pass failed (its backoff stands)
  for (;;) {
    while (go && (flight.empty() || flight.back()->overlap)) {
      platform::HttpTransport* free = FreeTransport(flight);
      if (free == nullptr) break;  // one request in flight on each transport
      bool read_failed = false;
      std::unique_ptr<Shipment> s = Prepare(purposes, flight.empty() ? 0 : flight.back()->evs.back().seq, &read_failed);
      if (!s) {
        if (read_failed) go = false;
        break;  // nothing more to send now (more may come once the answer in flight is taken)
      }
      s->transport = free;
      Shipment* t = s.get();
      try {
        s->posted = std::async(std::launch::async, [t] { t->net = t->transport->Post(t->req, &t->resp); });
      } catch (const std::exception&) {  // no thread to be had: this one sends it
        t->net = t->transport->Post(t->req, &t->resp);
      }
      // A pass sends full batches while there are any, then at most one partial batch, and ends: the events that
      // trickle in behind it wait for the next pass (batch_size of them, the interval, or a flush), so a steady
      // stream of events is uploaded in full batches instead of a tiny request after every answer (each answer's
      // delete is a buffer transaction beside the writer's). A flush's pass sends everything.
      if (!t->full && !pass_kicked_) go = false;
      flight.push_back(std::move(s));
    }
    if (flight.empty()) return;
    std::unique_ptr<Shipment> s = std::move(flight.front());
    flight.pop_front();
    if (s->posted.valid()) s->posted.wait();
    if (!Finish(s.get(), failed)) {
      go = false;
      failed = true;
    }
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) go = false;
  }
}

bool Uploader::Finish(Shipment* s, bool failed_before) {
  sodium_memzero(s->req.headers[2].data(), s->req.headers[2].size());
  const std::vector<QueuedEvent>& evs = s->evs;
  const platform::HttpResponse& resp = s->resp;
  const Status& net = s->net;
  const int64_t evicted = s->evicted;
  {
    std::lock_guard<std::mutex> l(mu_);
    claimed_evicted_ -= evicted;
  }
  if (cancel_.load()) return false;  // closing: the batch stays in the buffer (resent next time, deduplicated)

  if (net.ok() && resp.status == 200) {
    Json ans = Json::parse(resp.body, nullptr, false);
    int64_t rejected = 0;
    if (ans.is_object()) {
      stats_->sent += ans.value("accepted", int64_t{0}) + ans.value("duplicate", int64_t{0});
      stats_->duplicate += ans.value("duplicate", int64_t{0});
      stats_->suppressed += ans.value("suppressed", int64_t{0});
      if (ans.contains("rejected") && ans["rejected"].is_array()) {
        rejected = static_cast<int64_t>(ans["rejected"].size());
        for (const auto& r : ans["rejected"]) {
          std::string reason = r.is_object() ? r.value("reason", std::string("?")) : std::string("?");
          std::string mid = r.is_object() ? r.value("messageId", std::string("?")) : std::string("?");
          stats_->SetLastError("collector rejected " + mid + ": " + reason);
          log_.Warn("the collector rejected event " + mid + ": " + reason);
        }
      }
    } else {
      stats_->sent += static_cast<int64_t>(evs.size());
    }
    stats_->rejected += rejected;
    stats_->batches++;
    Status del = buffer_->Delete(evs);
    if (!del.ok()) {
      stats_->SetLastError("deleting sent events failed: " + del.message());
      log_.Error("deleting sent events failed (they will be resent; the collector dedups): " + del.message());
      SetBackoff(kBackoffBaseMs, false);
      return false;
    }
    int64_t left;
    {
      std::lock_guard<std::mutex> l(mu_);
      unreported_evicted_ -= evicted;
      left = unreported_evicted_;
      if (!failed_before) {
        attempt_ = 0;
        backoff_until_ms_ = 0;
        hard_backoff_ = false;
      }
      batch_limit_ = std::min<uint32_t>(opts_.batch_size, batch_limit_ * 2);
    }
    if (evicted > 0) (void)buffer_->PutMeta(kMetaUnreportedEvicted, std::to_string(left));
    return true;
  }

  if (net.ok() && resp.status == 400) {
    // The collector cannot decode this batch at all: resending cannot help.
    stats_->rejected += static_cast<int64_t>(evs.size());
    stats_->SetLastError("the collector could not decode a batch (400): " + resp.body.substr(0, 200));
    log_.Error("the collector answered 400 to a batch of " + std::to_string(evs.size()) + " events; dropped them");
    (void)buffer_->Delete(evs);
    return true;
  }
  if (net.ok() && resp.status == 413) {
    if (evs.size() == 1) {
      stats_->rejected += 1;
      stats_->SetLastError("the collector refused an event as too large (413)");
      log_.Error("the collector answered 413 to a single event; dropped it");
      (void)buffer_->Delete(evs);
      return true;
    }
    std::lock_guard<std::mutex> l(mu_);
    batch_limit_ = std::min(batch_limit_, std::max<uint32_t>(1, static_cast<uint32_t>(evs.size() / 2)));
    log_.Warn("the collector answered 413; splitting batches to " + std::to_string(batch_limit_) + " events");
    return true;
  }
  std::string why = HandleFailure(resp, net);
  stats_->retries++;
  stats_->SetLastError(why);
  log_.Warn(why);
  return false;
}

std::string Uploader::HandleFailure(const platform::HttpResponse& resp, const Status& net) {
  std::lock_guard<std::mutex> l(mu_);
  if (net.ok() && resp.status == 401) {
    auth_failed_ = true;
    return "the collector refused the write key (401); sending stops until the client is reopened";
  }
  attempt_ = std::min(attempt_ + 1, 30);
  int64_t cap = std::min<int64_t>(kBackoffCapMs, kBackoffBaseMs << std::min(attempt_ - 1, 20));
  // Full jitter: uniform in [0, cap].
  int64_t delay = static_cast<int64_t>(randombytes_uniform(static_cast<uint32_t>(std::max<int64_t>(cap, 1)) + 1));
  bool hard = false;
  if (net.ok() && (resp.status == 429 || resp.status == 503) && resp.retry_after_s > 0) {
    delay = std::max<int64_t>(delay, static_cast<int64_t>(resp.retry_after_s) * 1000);
    hard = true;
  }
  backoff_until_ms_ = clock_->MonotonicMs() + delay;
  hard_backoff_ = hard;
  std::string what = net.ok() ? "the collector answered " + std::to_string(resp.status)
                              : "the collector could not be reached: " + net.message();
  return what + "; retrying in " + std::to_string(delay) + " ms";
}

bool Uploader::SendForgets() {
  auto items = buffer_->Outbox("forget");
  if (!items.ok() || items->empty()) return true;
  for (const auto& [id, body] : items.value()) {
    platform::HttpRequest req;
    req.url = opts_.endpoint + "/v1/forget";
    req.headers = {"Content-Type: application/json", "Authorization: Bearer " + opts_.write_key};
    req.body = body;
    req.timeout_ms = opts_.request_timeout_ms;
    req.cancel = &cancel_;
    platform::HttpResponse resp;
    Status net = transport_->Post(req, &resp);
    sodium_memzero(req.headers[1].data(), req.headers[1].size());
    if (cancel_.load()) return false;
    if (net.ok() && resp.status == 200) {
      (void)buffer_->DeleteOutbox(id);
      stats_->forgets_sent++;
      log_.Info("the collector confirmed an erasure request: " + resp.body.substr(0, 300));
      continue;
    }
    if (net.ok() && resp.status == 400) {
      (void)buffer_->DeleteOutbox(id);
      stats_->SetLastError("the collector refused an erasure request (400): " + resp.body.substr(0, 200));
      log_.Error("the collector refused an erasure request as malformed (400); dropped it");
      continue;
    }
    std::string why = HandleFailure(resp, net);
    stats_->retries++;
    stats_->SetLastError("erasure request: " + why);
    log_.Warn("erasure request: " + why);
    return false;
  }
  return true;
}

bool Uploader::SendRequests() {
  auto items = buffer_->Outbox("request");
  if (!items.ok() || items->empty()) return true;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (clock_->MonotonicMs() < backoff_until_ms_) return false;  // the batches just set one
  }
  for (const auto& [id, body] : items.value()) {
    Json item = Json::parse(body, nullptr, false);
    if (!item.is_object() || !item["receipt"].is_string() || !item["request"].is_object()) {
      (void)buffer_->DeleteOutbox(id);
      continue;
    }
    const std::string meta_key = "request:" + item["receipt"].get<std::string>();
    platform::HttpRequest req;
    req.url = opts_.endpoint + "/v1/device/requests";
    req.headers = {"Content-Type: application/json", "Authorization: Bearer " + opts_.write_key};
    req.body = item["request"].dump();
    req.timeout_ms = opts_.request_timeout_ms;
    req.cancel = &cancel_;
    platform::HttpResponse resp;
    Status net = transport_->Post(req, &resp);
    sodium_memzero(req.headers[1].data(), req.headers[1].size());
    sodium_memzero(req.body.data(), req.body.size());
    if (cancel_.load()) return false;
    const bool filed = net.ok() && (resp.status == 200 || resp.status == 201);
    const bool refused = net.ok() && (resp.status == 400 || resp.status == 404 || resp.status == 409);
    if (filed || refused) {
      auto kept = buffer_->GetMeta(meta_key);
      Json meta = kept ? Json::parse(*kept, nullptr, false) : Json::object();
      if (!meta.is_object()) meta = Json::object();
      Json ans = Json::parse(resp.body, nullptr, false);
      if (filed && ans.is_object() && ans["reference"].is_string()) {
        meta["reference"] = ans["reference"];
        meta["state"] = ans["state"].is_string() ? ans["state"] : Json("awaiting_verification");
        log_.Info("the collector registered a request: " + ans["reference"].get<std::string>());
      } else {
        meta["state"] = "refused";
        meta["error"] = resp.body.substr(0, 300);
        stats_->SetLastError("the collector refused a request (" + std::to_string(resp.status) +
                             "): " + resp.body.substr(0, 200));
        log_.Error("the collector refused a request (" + std::to_string(resp.status) + "); dropped it");
      }
      if (!buffer_->PutMeta(meta_key, meta.dump()).ok()) return false;  // kept queued: resent, folded
      (void)buffer_->DeleteOutbox(id);
      continue;
    }
    std::string why = HandleFailure(resp, net);
    stats_->retries++;
    stats_->SetLastError("request: " + why);
    log_.Warn("request: " + why);
    return false;
  }
  return true;
}

Status Uploader::PassesUntil(int64_t deadline_ms, const std::function<base::Result<bool>()>& pending,
                             const std::function<Status()>& late) {
  if (!thread_.joinable()) return Status::Network("no endpoint is configured");
  bool first = true;
  for (;;) {
    auto left = pending();
    if (!left.ok()) return left.status();
    if (!left.value()) return Status::Ok();
    std::unique_lock<std::mutex> l(mu_);
    if (auth_failed_) return Status::Network("the collector refused the write key (401)");
    if (stop_) return Status::Closed("the client is closing");
    if (clock_->MonotonicMs() >= deadline_ms) return late();
    kick_ = true;
    if (first) cut_backoff_ = true;
    first = false;
    uint64_t seen = passes_;
    WakeLocked();
    clock_->WaitUntil(l, done_cv_, deadline_ms, [&] { return passes_ != seen || stop_ || auth_failed_; });
  }
}

Status Uploader::Flush(const std::set<std::string>& purposes, int64_t target_seq, int64_t deadline_ms) {
  return PassesUntil(
      deadline_ms, [&] { return buffer_->AnyUpTo(purposes, target_seq); },
      [] { return Status::Timeout("events are still waiting to be sent"); });
}

Status Uploader::DeliverForgets(int64_t deadline_ms) {
  return PassesUntil(
      deadline_ms,
      [&]() -> base::Result<bool> {
        auto items = buffer_->Outbox("forget");
        if (!items.ok()) return items.status();
        return !items->empty();
      },
      [&] {
        return attempt_ > 0 ? Status::Network("the collector has not confirmed the erasure yet; it will be retried")
                            : Status::Timeout("the erasure request is still waiting to be sent");
      });
}

Status Uploader::DeliverRequests(int64_t deadline_ms) {
  return PassesUntil(
      deadline_ms,
      [&]() -> base::Result<bool> {
        auto items = buffer_->Outbox("request");
        if (!items.ok()) return items.status();
        return !items->empty();
      },
      [&] {
        return attempt_ > 0 ? Status::Network("the collector has not registered the request yet; it will be retried")
                            : Status::Timeout("the request is still waiting to be sent");
      });
}

Status Uploader::Call(const std::string& path, const std::string& body, int64_t deadline_ms,
                      platform::HttpResponse* resp) {
  if (!thread_.joinable()) return Status::Network("no endpoint is configured");
  const int64_t left = deadline_ms - clock_->MonotonicMs();
  if (left <= 0) return Status::Timeout("no time left for the call");
  auto t = std::make_shared<CallTask>();
  t->req.url = opts_.endpoint + path;
  t->req.headers = {"Content-Type: application/json", "Authorization: Bearer " + opts_.write_key};
  t->req.body = body;
  t->req.timeout_ms = static_cast<uint32_t>(std::min<int64_t>(left, opts_.request_timeout_ms));
  t->req.cancel = &cancel_;
  std::unique_lock<std::mutex> l(mu_);
  if (auth_failed_) return Status::Network("the collector refused the write key (401)");
  if (stop_) return Status::Closed("the client is closing");
  calls_.push_back(t);
  WakeLocked();
  clock_->WaitUntil(l, done_cv_, deadline_ms, [&] { return t->done || stop_; });
  if (!t->done) {
    auto it = std::find(calls_.begin(), calls_.end(), t);
    if (it != calls_.end()) calls_.erase(it);  // not started: abandoned (a started one ends by its own timeout)
    return stop_ ? Status::Closed("the client is closing") : Status::Timeout("the collector has not answered yet");
  }
  if (!t->status.ok()) return t->status;
  *resp = std::move(t->resp);
  return Status::Ok();
}

}  // namespace ferry::core
