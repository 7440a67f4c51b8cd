#include "sdk/core/client.h"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "lib/base/ids.h"
#include "lib/base/secret.h"
#include "lib/base/time.h"
#include "lib/wire/event.h"
#include "platform/platform.h"

namespace ferry::core {

using base::Result;
using base::Status;
using Json = nlohmann::json;

namespace {

constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxEventBytes = 32 << 10;
constexpr size_t kMaxDepth = 32;
constexpr size_t kQueueMaxEvents = 1000;  // back-pressure bound of the writer queue: keeps commits under 50 ms
constexpr size_t kQueueMaxBytes = 1u << 20;
constexpr size_t kMaxCommitEvents = 500;       // events per buffer transaction
constexpr int64_t kBackPressureWaitMs = 2000;  // a producer waits this long for room, then gets kStorage
constexpr int64_t kAgeSweepIntervalMs = 60000;

const char* const kMetaAnon = "anonymous_id";
const char* const kMetaUser = "user_id";
const char* const kMetaPrevAnon = "previous_anonymous_ids";
const char* const kMetaHashKey = "pii_hash_key";

// Appends s (valid UTF-8) as a JSON string literal.
void AppendQuoted(std::string* out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        out->append(esc, sizeof esc);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

bool IsBuiltInNecessary(std::string_view p) { return p == "necessary"; }

}  // namespace

Client::Client(ClientOptions opts) : opts_(std::move(opts)), log_(opts_.logger) {}

Client::~Client() {
  if (!closed_.exchange(true)) {
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      writer_stop_ = true;
    }
    queue_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (uploader_) uploader_->Stop();
  }
}

Result<std::unique_ptr<Client>> Client::Open(ClientOptions opts) {
  if (!base::EnsureSodium()) return Status::Internal("libsodium could not start");
  std::unique_ptr<Client> c(new Client(std::move(opts)));
  Status s = c->Init();
  if (!s.ok()) {
    c->log_.Error("ferry_open failed: " + s.ToString());
    return s;
  }
  return c;
}

Status Client::Init() {
  if (opts_.storage_path.empty()) opts_.storage_path = platform::DefaultDataDir() + "/ferry/buffer.db";
  FERRY_RETURN_IF_ERROR(platform::EnsureDir(platform::DirName(opts_.storage_path)));

  base::SecretBytes key;
  if (!opts_.encryption_key.empty()) {
    key = opts_.encryption_key;
  } else {
    auto k = platform::LoadOrCreateKey(opts_.storage_path + ".key", 32);
    if (!k.ok()) return k.status();
    key = std::move(k).value();
  }
  opts_.encryption_key.Wipe();
  auto store = Buffer::Open(opts_.storage_path, key, log_);
  key.Wipe();
  if (!store.ok()) return store.status();
  buffer_ = std::move(store).value();

  // PII hash key: from the rules, else one kept in the (encrypted) buffer.
  base::SecretBytes hash_key;
  if (auto hk = buffer_->GetMeta(kMetaHashKey); hk && hk->size() == 64) {
    hash_key = base::SecretBytes::FromHex(*hk);
  }
  if (hash_key.size() != 32) {
    hash_key = base::SecretBytes::Random(32);
    std::string hex = hash_key.ToHex();
    Status ps = buffer_->PutMeta(kMetaHashKey, hex);
    base::WipeString(hex);
    FERRY_RETURN_IF_ERROR(ps);
  }
  auto masker = pii::PiiMasker::Create(opts_.pii_rules, hash_key);
  if (!masker.ok()) return masker.status();
  masker_ = std::move(masker).value();

  // Consent: defaults for purposes the user never chose, then what is recorded.
  std::map<std::string, Consent> defaults = opts_.default_consent;
  defaults.erase("necessary");
  FERRY_RETURN_IF_ERROR(buffer_->ApplyDefaultConsent(defaults));
  for (const auto& [purpose, row] : buffer_->LoadConsent()) consent_[purpose] = row.state;
  consent_["necessary"] = Consent::kGranted;

  // Identity.
  anonymous_id_ = buffer_->GetMeta(kMetaAnon).value_or("");
  if (anonymous_id_.empty()) {
    anonymous_id_ = base::NewUuidV4();
    FERRY_RETURN_IF_ERROR(buffer_->PutMeta(kMetaAnon, anonymous_id_));
  }
  user_id_ = buffer_->GetMeta(kMetaUser).value_or("");
  if (auto prev = buffer_->GetMeta(kMetaPrevAnon)) {
    Json j = Json::parse(*prev, nullptr, false);
    if (j.is_array()) {
      for (const auto& a : j) {
        if (a.is_string()) previous_anonymous_ids_.insert(a.get<std::string>());
      }
    }
  }
  facts_.device = platform::ReadDeviceInfo();
  facts_.app_name = opts_.app_name.empty() ? facts_.device.process_name : opts_.app_name;
  facts_.app_version = opts_.app_version;
  session_id_ = base::NewUuidV4();
  last_activity_ms_ = base::NowMs();
  RefreshContextLocked();

  // Uploader.
  Uploader::Config ucfg;
  ucfg.endpoint = opts_.endpoint;
  ucfg.write_key = opts_.write_key;
  ucfg.batch_size = opts_.batch_size;
  ucfg.flush_interval_ms = opts_.flush_interval_ms;
  ucfg.request_timeout_ms = opts_.request_timeout_ms;
  ucfg.zstd_level = opts_.zstd_level;
  std::unique_ptr<platform::HttpTransport> transport = std::move(opts_.transport);
  if (!transport && !opts_.endpoint.empty()) {
    platform::CurlTransportOptions copts;
    copts.ca_file = opts_.ca_file;
    copts.pinned_public_key = opts_.pinned_public_key;
    transport = platform::NewCurlTransport(copts);
  }
  uploader_ = std::make_unique<Uploader>(
      ucfg, buffer_.get(), &stats_, log_, [this] { return SendablePurposes(); }, std::move(transport));
  writer_ = std::thread([this] { WriterLoop(); });
  uploader_->Start();
  MaybeEvict(true);
  log_.Info("ferry opened " + opts_.storage_path + " (" + std::to_string(buffer_->TotalBytes()) + " bytes buffered)");
  return Status::Ok();
}

Status Client::Close(uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  int64_t deadline = base::MonotonicMs() + timeout_ms;
  Status flushed = opts_.endpoint.empty() ? Status::Ok() : Flush(timeout_ms);
  Status drained = Drain(deadline + 1000);
  closed_.store(true);
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    writer_stop_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  uploader_->Stop();
  if (!drained.ok()) return drained;
  if (!flushed.ok() && flushed.code() == base::Code::kTimeout) return flushed;
  return Status::Ok();
}

Status Client::Invalid(const std::string& why) {
  stats_.invalid.fetch_add(1, std::memory_order_relaxed);
  stats_.SetLastError(why);
  log_.Warn(why);
  return Status::InvalidArgument(why);
}

Consent Client::StateLocked(const std::string& purpose) const {
  auto it = consent_.find(purpose);
  return it == consent_.end() ? Consent::kPending : it->second;
}

std::map<std::string, Consent> Client::ConsentSnapshotLocked() const { return consent_; }

std::set<std::string> Client::SendablePurposes() {
  std::shared_lock<base::SharedMutex> l(consent_mu_);
  std::set<std::string> out;
  for (const auto& [p, s] : consent_) {
    if (s == Consent::kGranted) out.insert(p);
  }
  out.insert("necessary");
  return out;
}

void Client::RefreshContextLocked() {
  context_json_ = std::make_shared<const std::string>(BuildContextJson(facts_, session_id_, consent_));
}

std::shared_ptr<const std::string> Client::TouchSessionLocked(int64_t now_ms) {
  if (now_ms - last_activity_ms_ > static_cast<int64_t>(opts_.session_timeout_ms)) {
    session_id_ = base::NewUuidV4();
    RefreshContextLocked();
  }
  last_activity_ms_ = now_ms;
  return context_json_;
}

Status Client::Track(std::string_view event, const char* properties_json, const char* purpose) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Closed("the client is closed");
  std::string p = purpose ? purpose : "analytics";
  if (!wire::IsValidPurpose(p)) return Invalid("invalid purpose name (1-32 bytes of a-z, 0-9, _ and -)");
  std::shared_lock<base::SharedMutex> l(consent_mu_);
  return Record("track", "event", event, "properties", properties_json, p, StateLocked(p));
}

Status Client::Screen(std::string_view name, const char* properties_json) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Closed("the client is closed");
  std::shared_lock<base::SharedMutex> l(consent_mu_);
  return Record("screen", "name", name, "properties", properties_json, "analytics", StateLocked("analytics"));
}

Status Client::Identify(std::string_view user_id, const char* traits_json) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Closed("the client is closed");
  if (user_id.empty() || user_id.size() > kMaxNameBytes) return Invalid("userId must be 1-200 bytes");
  if (!wire::IsValidUtf8(user_id)) return Invalid("userId is not valid UTF-8");
  std::shared_lock<base::SharedMutex> l(consent_mu_);
  {
    std::lock_guard<std::mutex> s(state_mu_);
    if (user_id_ != user_id) {
      user_id_ = std::string(user_id);
      Status ps = buffer_->PutMeta(kMetaUser, user_id_);
      if (!ps.ok()) {
        stats_.storage_errors++;
        stats_.SetLastError(ps.message());
        return ps;
      }
    }
  }
  return Record("identify", "", "", "traits", traits_json, "analytics", StateLocked("analytics"));
}

Status Client::Record(std::string_view type, std::string_view name_key, std::string_view name,
                      std::string_view payload_key, const char* payload_json, const std::string& purpose, Consent state,
                      const CallContext* call) {
  if (!name_key.empty()) {
    if (name.empty() || name.size() > kMaxNameBytes) return Invalid(std::string(name_key) + " must be 1-200 bytes");
    if (!wire::IsValidUtf8(name)) return Invalid(std::string(name_key) + " is not valid UTF-8");
  }
  if (state == Consent::kDenied) {
    stats_.dropped_consent.fetch_add(1, std::memory_order_relaxed);
    return Status::ConsentDenied("purpose '" + purpose + "' is denied; the event was dropped");
  }
  Json payload = Json::object();
  if (payload_json != nullptr) {
    payload = Json::parse(payload_json, nullptr, false);
    if (payload.is_discarded()) return Invalid(std::string(payload_key) + " is not valid JSON (or not UTF-8)");
    if (!payload.is_object()) return Invalid(std::string(payload_key) + " must be a JSON object");
    if (wire::JsonDepth(payload) > kMaxDepth) return Invalid(std::string(payload_key) + " nests deeper than 32");
  }
  masker_->ApplyToObject(&payload);
  std::string masked_name;
  if (type == "screen") masked_name = masker_->MaskString(name);

  int64_t now = base::NowMs();
  NewEvent ev;
  ev.purpose = purpose;
  ev.created_ms = now;
  std::shared_ptr<const std::string> ctx;
  {
    std::lock_guard<std::mutex> s(state_mu_);
    ctx = TouchSessionLocked(now);
    bool own_ids = call != nullptr && (!call->user_id.empty() || !call->anonymous_id.empty());
    ev.user_id = own_ids ? call->user_id : user_id_;
    ev.anonymous_id = own_ids ? call->anonymous_id : anonymous_id_;
  }
  std::string& b = ev.body;
  std::string payload_text = payload.dump(-1, ' ', false, Json::error_handler_t::replace);
  b.reserve(payload_text.size() + ctx->size() + name.size() + ev.user_id.size() + purpose.size() + 256);
  b += "{\"messageId\":";
  if (call != nullptr && !call->message_id.empty()) {
    AppendQuoted(&b, call->message_id);
  } else {
    b += '"';
    base::AppendUuidV4(&b);
    b += '"';
  }
  b += ",\"type\":\"";
  b += type;
  b += '"';
  if (!name_key.empty()) {
    b += ",\"";
    b += name_key;
    b += "\":";
    AppendQuoted(&b, type == "screen" ? std::string_view(masked_name) : name);
  }
  if (!ev.anonymous_id.empty()) {
    b += ",\"anonymousId\":";
    AppendQuoted(&b, ev.anonymous_id);
  }
  if (!ev.user_id.empty()) {
    b += ",\"userId\":";
    AppendQuoted(&b, ev.user_id);
  }
  b += ",\"timestamp\":\"";
  base::AppendIso8601(&b, call != nullptr && call->timestamp_ms > 0 ? call->timestamp_ms : now);
  b += "\",\"purpose\":\"";
  b += purpose;
  b += "\",\"";
  b += payload_key;
  b += "\":";
  b += payload_text;
  b += ",\"context\":";
  b += *ctx;
  b += '}';
  if (b.size() > kMaxEventBytes) return Invalid("the event is larger than 32 KiB");
  return Enqueue(std::move(ev), state == Consent::kGranted || IsBuiltInNecessary(purpose));
}

Status Client::Enqueue(NewEvent ev, bool sendable, uint64_t* ticket_out) {
  size_t bytes = ev.body.size();
  uint64_t ticket;
  {
    std::unique_lock<std::mutex> l(queue_mu_);
    if (storage_failing_) {
      stats_.storage_errors.fetch_add(1, std::memory_order_relaxed);
      return Status::Storage("the buffer cannot be written: " + stats_.LastError());
    }
    if (queue_.size() >= kQueueMaxEvents || queue_bytes_ + bytes > kQueueMaxBytes) {
      bool room = commit_cv_.wait_for(l, std::chrono::milliseconds(kBackPressureWaitMs), [&] {
        return writer_stop_ || storage_failing_ ||
               (queue_.size() < kQueueMaxEvents && queue_bytes_ + bytes <= kQueueMaxBytes);
      });
      if (!room || writer_stop_ || storage_failing_) {
        stats_.storage_errors.fetch_add(1, std::memory_order_relaxed);
        return Status::Storage("the buffer is not keeping up (writer queue full)");
      }
    }
    ticket = next_ticket_++;
    queue_bytes_ += bytes;
    queue_.push_back(Pending{std::move(ev), ticket, sendable});
  }
  queue_cv_.notify_one();
  stats_.tracked.fetch_add(1, std::memory_order_relaxed);
  if (ticket_out != nullptr) {
    *ticket_out = ticket;
    return Status::Ok();
  }
  return WaitCommitted(ticket);
}

Status Client::WaitCommitted(uint64_t ticket) {
  if (opts_.durability != Durability::kSync) return Status::Ok();
  std::unique_lock<std::mutex> l(queue_mu_);
  commit_cv_.wait(l, [&] { return committed_ticket_ >= ticket || writer_stop_; });
  if (committed_ticket_ < ticket) return Status::Closed("the client closed before the event was committed");
  if (failed_ticket_ >= ticket) {
    stats_.tracked.fetch_sub(1, std::memory_order_relaxed);
    return Status::Storage("the buffer cannot be written: " + stats_.LastError());
  }
  return Status::Ok();
}

void Client::WriterLoop() {
  int64_t last_age_sweep = base::MonotonicMs();
  std::unique_lock<std::mutex> l(queue_mu_);
  for (;;) {
    queue_cv_.wait_for(l, std::chrono::milliseconds(storage_failing_ ? 200 : 1000),
                       [&] { return writer_stop_ || (!queue_.empty() && !storage_failing_); });
    if (queue_.empty()) {
      if (writer_stop_) break;
    }
    if (!queue_.empty()) {
      // At most kMaxCommitEvents per transaction, so the oldest queued event is durable soon even after a burst.
      std::deque<Pending> batch;
      size_t batch_bytes = 0;
      if (queue_.size() <= kMaxCommitEvents) {
        batch.swap(queue_);
        batch_bytes = queue_bytes_;
      } else {
        for (size_t i = 0; i < kMaxCommitEvents; ++i) {
          batch_bytes += queue_.front().ev.body.size();
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      queue_bytes_ -= batch_bytes;
      l.unlock();
      std::vector<NewEvent> evs;
      evs.reserve(batch.size());
      int64_t sendable = 0;
      for (Pending& p : batch) {
        sendable += p.sendable ? 1 : 0;
        evs.push_back(std::move(p.ev));
      }
      Status s = buffer_->Append(evs);
      if (s.ok()) {
        // Evict before the commit is announced, so that a caller that waited for it sees the limits applied.
        int64_t now = base::MonotonicMs();
        bool age = now - last_age_sweep > kAgeSweepIntervalMs;
        if (age) last_age_sweep = now;
        MaybeEvict(age);
      }
      l.lock();
      uint64_t last = batch.back().ticket;
      if (s.ok()) {
        committed_ticket_ = last;
        storage_failing_ = false;
      } else {
        stats_.storage_errors.fetch_add(1, std::memory_order_relaxed);
        stats_.SetLastError("buffer commit failed: " + s.message());
        if (opts_.durability == Durability::kSync || writer_stop_) {
          committed_ticket_ = last;  // callers learn it failed
          failed_ticket_ = last;
          if (!storage_failing_) log_.Error("buffer commit failed: " + s.message());
        } else {
          // BATCHED: the callers were told OK, so keep the events and retry; refuse new ones meanwhile.
          if (!storage_failing_) log_.Error("buffer commit failed, will retry: " + s.message());
          storage_failing_ = true;
          for (size_t i = 0; i < batch.size(); ++i) batch[i].ev = std::move(evs[i]);
          queue_bytes_ += batch_bytes;
          for (auto it = queue_.begin(); it != queue_.end(); ++it) batch.push_back(std::move(*it));
          queue_.swap(batch);
        }
      }
      commit_cv_.notify_all();
      if (s.ok() && sendable > 0) {
        l.unlock();
        uploader_->Notify(sendable);
        l.lock();
      }
      continue;
    }
    if (writer_stop_) break;
  }
}

void Client::MaybeEvict(bool force_age) {
  if (!force_age && buffer_->TotalBytes() <= static_cast<int64_t>(opts_.max_storage_bytes)) return;
  int64_t min_created = force_age ? base::NowMs() - static_cast<int64_t>(opts_.max_event_age_ms) : INT64_MIN;
  auto ev = buffer_->Evict(static_cast<int64_t>(opts_.max_storage_bytes), min_created);
  if (!ev.ok()) {
    stats_.SetLastError("eviction failed: " + ev.status().message());
    log_.Warn("eviction failed: " + ev.status().message());
    return;
  }
  if (ev->events > 0) {
    stats_.evicted.fetch_add(ev->events, std::memory_order_relaxed);
    uploader_->unreported_evicted_add(ev->events);
    log_.Warn("evicted " + std::to_string(ev->events) + " events (" + std::to_string(ev->bytes) +
              " bytes) over the buffer's size or age limit");
  }
}

Status Client::Drain(int64_t deadline_ms) {
  std::unique_lock<std::mutex> l(queue_mu_);
  uint64_t target = next_ticket_ - 1;
  queue_cv_.notify_one();
  int64_t wait = std::max<int64_t>(0, deadline_ms - base::MonotonicMs());
  bool done = commit_cv_.wait_for(l, std::chrono::milliseconds(wait),
                                  [&] { return committed_ticket_ >= target || storage_failing_ || writer_stop_; });
  if (committed_ticket_ >= target) return Status::Ok();
  if (storage_failing_) return Status::Storage("the buffer cannot be written: " + stats_.LastError());
  if (!done) return Status::Timeout("events are still being committed");
  return Status::Closed("the client is closed");
}

Status Client::RecordAs(const CallContext& ctx, std::string_view type, std::string_view name, const char* payload_json,
                        const char* purpose) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Closed("the client is closed");
  auto id_ok = [](const std::string& id) { return id.size() <= kMaxNameBytes && wire::IsValidUtf8(id); };
  if (!id_ok(ctx.user_id) || !id_ok(ctx.anonymous_id))
    return Invalid("userId/anonymousId must be 0-200 bytes of UTF-8");
  if (ctx.message_id.size() > 64 || !wire::IsValidUtf8(ctx.message_id)) return Invalid("messageId must be 1-64 chars");
  std::string p = type == "track" && purpose != nullptr ? purpose : "analytics";
  if (!wire::IsValidPurpose(p)) return Invalid("invalid purpose name (1-32 bytes of a-z, 0-9, _ and -)");
  std::shared_lock<base::SharedMutex> l(consent_mu_);
  if (type == "track") return Record("track", "event", name, "properties", payload_json, p, StateLocked(p), &ctx);
  if (type == "screen") return Record("screen", "name", name, "properties", payload_json, p, StateLocked(p), &ctx);
  if (type == "identify") {
    if (ctx.user_id.empty()) return Invalid("identify needs a userId");
    return Record("identify", "", "", "traits", payload_json, p, StateLocked(p), &ctx);
  }
  return Invalid("unknown event type (track, screen or identify)");
}

std::vector<Status> Client::RecordBuilt(std::vector<Json> events) {
  std::vector<Status> out(events.size());
  std::vector<std::pair<size_t, uint64_t>> tickets;
  if (closed_.load(std::memory_order_relaxed)) {
    for (auto& s : out) s = Status::Closed("the client is closed");
    return out;
  }
  {
    std::shared_lock<base::SharedMutex> l(consent_mu_);
    for (size_t i = 0; i < events.size(); ++i) {
      Json& ev = events[i];
      if (!ev.is_object()) {
        out[i] = Invalid("the event is not an object");
        continue;
      }
      std::string type = ev.value("type", std::string());
      std::string purpose = ev.value("purpose", std::string("analytics"));
      if (!wire::IsValidPurpose(purpose)) {
        out[i] = Invalid("invalid purpose name (1-32 bytes of a-z, 0-9, _ and -)");
        continue;
      }
      Consent state = StateLocked(purpose);
      if (state == Consent::kDenied) {
        stats_.dropped_consent.fetch_add(1, std::memory_order_relaxed);
        out[i] = Status::ConsentDenied("purpose '" + purpose + "' is denied; the event was dropped");
        continue;
      }
      if (type != "consent") {
        for (const char* key : {"properties", "traits"}) {
          auto it = ev.find(key);
          if (it != ev.end() && it->is_object()) masker_->ApplyToObject(&*it);
        }
        if (type == "screen" && ev.contains("name") && ev["name"].is_string()) {
          ev["name"] = masker_->MaskString(ev["name"].get<std::string>());
        }
      }
      NewEvent ne;
      ne.purpose = purpose;
      ne.created_ms = base::NowMs();
      ne.user_id = ev.value("userId", std::string());
      ne.anonymous_id = ev.value("anonymousId", std::string());
      ne.body = ev.dump(-1, ' ', false, Json::error_handler_t::replace);
      if (ne.body.size() > kMaxEventBytes) {
        out[i] = Invalid("the event is larger than 32 KiB");
        continue;
      }
      uint64_t ticket = 0;
      out[i] = Enqueue(std::move(ne), state == Consent::kGranted || IsBuiltInNecessary(purpose), &ticket);
      if (out[i].ok()) tickets.emplace_back(i, ticket);
    }
  }
  for (const auto& [i, ticket] : tickets) out[i] = WaitCommitted(ticket);
  return out;
}

std::map<std::string, Consent> Client::ConsentStates() {
  std::shared_lock<base::SharedMutex> l(consent_mu_);
  return consent_;
}

void Client::AddUnreportedEvicted(int64_t n) {
  if (n > 0 && uploader_) uploader_->unreported_evicted_add(n);
}

Status Client::Reset() {
  if (closed_.load()) return Status::Closed("the client is closed");
  std::unique_lock<base::SharedMutex> cl(consent_mu_);
  std::lock_guard<std::mutex> s(state_mu_);
  previous_anonymous_ids_.insert(anonymous_id_);
  anonymous_id_ = base::NewUuidV4();
  user_id_.clear();
  session_id_ = base::NewUuidV4();
  RefreshContextLocked();
  Json prev = Json::array();
  for (const auto& a : previous_anonymous_ids_) prev.push_back(a);
  Status st = buffer_->PutMeta(kMetaAnon, anonymous_id_);
  if (st.ok()) st = buffer_->PutMeta(kMetaUser, "");
  if (st.ok()) st = buffer_->PutMeta(kMetaPrevAnon, prev.dump());
  if (!st.ok()) stats_.SetLastError(st.message());
  return st;
}

Status Client::SetConsent(std::string_view purpose_sv, Consent state) {
  if (closed_.load()) return Status::Closed("the client is closed");
  std::string purpose(purpose_sv);
  if (!wire::IsValidPurpose(purpose)) return Invalid("invalid purpose name (1-32 bytes of a-z, 0-9, _ and -)");
  if (purpose == "necessary" && state != Consent::kGranted) return Invalid("'necessary' cannot be withdrawn");
  std::unique_lock<base::SharedMutex> cl(consent_mu_);
  // Everything already accepted must be in the buffer before a purge, so that nothing of a denied purpose survives.
  FERRY_RETURN_IF_ERROR(Drain(base::MonotonicMs() + 10000));
  Consent previous = StateLocked(purpose);
  int64_t now = base::NowMs();
  consent_[purpose] = state;
  NewEvent record;
  record.purpose = "necessary";
  record.created_ms = now;
  {
    std::lock_guard<std::mutex> s(state_mu_);
    RefreshContextLocked();
    record.user_id = user_id_;
    record.anonymous_id = anonymous_id_;
    Json props = {{"purpose", purpose}, {"state", ConsentName(state)}, {"previous", ConsentName(previous)}};
    Json ev = {{"messageId", base::NewUuidV4()},        {"type", "consent"},      {"anonymousId", anonymous_id_},
               {"timestamp", base::FormatIso8601(now)}, {"purpose", "necessary"}, {"properties", props}};
    if (!user_id_.empty()) ev["userId"] = user_id_;
    ev["context"] = Json::parse(*TouchSessionLocked(now), nullptr, false);
    record.body = ev.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  ConsentRow row{state, true, now};
  auto purged = buffer_->SetConsent(purpose, row, state == Consent::kDenied, &record);
  if (!purged.ok()) {
    consent_[purpose] = previous;
    std::lock_guard<std::mutex> s(state_mu_);
    RefreshContextLocked();
    stats_.storage_errors++;
    stats_.SetLastError(purged.status().message());
    return purged.status();
  }
  stats_.tracked++;
  if (purged.value() > 0) {
    stats_.purged_consent.fetch_add(purged.value());
    log_.Info("purpose '" + purpose + "' denied: purged " + std::to_string(purged.value()) + " buffered events");
  }
  cl.unlock();
  uploader_->Notify(state == Consent::kGranted ? (1 << 20) : 1);
  return Status::Ok();
}

Consent Client::GetConsent(std::string_view purpose) {
  std::shared_lock<base::SharedMutex> l(consent_mu_);
  return StateLocked(std::string(purpose));
}

Status Client::Flush(uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  int64_t deadline = base::MonotonicMs() + timeout_ms;
  FERRY_RETURN_IF_ERROR(Drain(deadline));
  if (opts_.endpoint.empty()) return Status::Network("no endpoint is configured");
  FERRY_RETURN_IF_ERROR(uploader_->DeliverForgets(deadline));
  std::set<std::string> purposes = SendablePurposes();
  auto target = buffer_->MaxSeq(purposes);
  if (!target.ok()) return target.status();
  return uploader_->Flush(purposes, target.value(), deadline);
}

Status Client::Forget(uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  int64_t deadline = base::MonotonicMs() + timeout_ms;
  {
    std::unique_lock<base::SharedMutex> cl(consent_mu_);
    Status d = Drain(deadline);
    if (!d.ok() && d.code() != base::Code::kTimeout) return d;
    std::lock_guard<std::mutex> s(state_mu_);
    Json ids = Json::array();
    for (const auto& a : previous_anonymous_ids_) ids.push_back(a);
    ids.push_back(anonymous_id_);
    Json req = {{"anonymousIds", ids}};
    if (!user_id_.empty()) req["userId"] = user_id_;
    FERRY_RETURN_IF_ERROR(buffer_->AddOutbox("forget", req.dump()));
    auto wiped = buffer_->DeleteAllEvents();
    if (!wiped.ok()) return wiped.status();
    previous_anonymous_ids_.clear();
    user_id_.clear();
    anonymous_id_ = base::NewUuidV4();
    session_id_ = base::NewUuidV4();
    RefreshContextLocked();
    FERRY_RETURN_IF_ERROR(buffer_->PutMeta(kMetaAnon, anonymous_id_));
    FERRY_RETURN_IF_ERROR(buffer_->PutMeta(kMetaUser, ""));
    FERRY_RETURN_IF_ERROR(buffer_->PutMeta(kMetaPrevAnon, "[]"));
    log_.Info("forget: wiped " + std::to_string(wiped.value()) + " buffered events and rotated the anonymousId");
  }
  if (opts_.endpoint.empty()) return Status::Network("no endpoint is configured; the erasure request stays queued");
  return uploader_->DeliverForgets(deadline);
}

Result<std::string> Client::ExportLocal() {
  if (closed_.load()) return Status::Closed("the client is closed");
  FERRY_RETURN_IF_ERROR(Drain(base::MonotonicMs() + 10000));
  Json out = Json::object();
  std::set<std::string> anon;
  std::string uid;
  {
    std::shared_lock<base::SharedMutex> cl(consent_mu_);
    std::lock_guard<std::mutex> s(state_mu_);
    anon = previous_anonymous_ids_;
    anon.insert(anonymous_id_);
    uid = user_id_;
    out["anonymousId"] = anonymous_id_;
    out["previousAnonymousIds"] = previous_anonymous_ids_;
    out["userId"] = user_id_.empty() ? Json(nullptr) : Json(user_id_);
    Json consent = Json::object();
    for (const auto& [p, st] : consent_) consent[p] = ConsentName(st);
    out["consent"] = consent;
  }
  auto rows = buffer_->EventsFor(uid, anon);
  if (!rows.ok()) return rows.status();
  Json events = Json::array();
  for (const auto& body : rows.value()) {
    Json e = Json::parse(body, nullptr, false);
    if (!e.is_discarded()) events.push_back(std::move(e));
  }
  out["events"] = std::move(events);
  out["exportedAt"] = base::FormatIso8601(base::NowMs());
  return out.dump(2, ' ', false, Json::error_handler_t::replace);
}

std::string Client::StatsJson() {
  auto counts = buffer_->Counts();
  std::set<std::string> sendable = SendablePurposes();
  int64_t queued = 0, pending = 0, denied_buffered = 0;
  {
    std::shared_lock<base::SharedMutex> l(consent_mu_);
    for (const auto& [purpose, c] : counts) {
      if (sendable.count(purpose)) {
        queued += c.events;
      } else if (StateLocked(purpose) == Consent::kDenied) {
        denied_buffered += c.events;
      } else {
        pending += c.events;
      }
    }
  }
  size_t uncommitted;
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    uncommitted = queue_.size();
  }
  Json j = {
      {"queued", queued},
      {"pending_consent", pending},
      {"uncommitted", uncommitted},
      {"tracked", stats_.tracked.load()},
      {"sent", stats_.sent.load()},
      {"duplicate", stats_.duplicate.load()},
      {"suppressed", stats_.suppressed.load()},
      {"dropped_consent", stats_.dropped_consent.load()},
      {"purged_consent", stats_.purged_consent.load()},
      {"evicted", stats_.evicted.load()},
      {"rejected", stats_.rejected.load()},
      {"invalid", stats_.invalid.load()},
      {"retries", stats_.retries.load()},
      {"batches", stats_.batches.load()},
      {"storage_errors", stats_.storage_errors.load()},
      {"forgets_sent", stats_.forgets_sent.load()},
      {"storage_bytes", buffer_->TotalBytes()},
      {"file_bytes", platform::DatabaseBytesOnDisk(opts_.storage_path)},
      {"auth_failed", uploader_->auth_failed()},
      {"last_error", stats_.LastError()},
  };
  (void)denied_buffered;
  return j.dump();
}

}  // namespace ferry::core
