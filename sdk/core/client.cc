#include "sdk/core/client.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "lib/base/digest.h"
#include "lib/base/ids.h"
#include "lib/base/json_text.h"
#include "lib/base/secret.h"
#include "lib/base/time.h"
#include "lib/wire/event.h"
#include "platform/platform.h"

namespace ferry::core {

using base::Status;
using Json = nlohmann::json;

namespace {

constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxEventBytes = 32 << 10;
constexpr size_t kMaxDepth = 32;
constexpr int64_t kDrainForChangeMs = 10000;  // a consent change or an export waits this long for queued events

const char* const kMetaAnon = "anonymous_id";
const char* const kMetaUser = "user_id";
const char* const kMetaPrevAnon = "previous_anonymous_ids";
const char* const kMetaHashKey = "pii_hash_key";
const char* const kMetaSeqReserved = "device_seq_reserved";
const char* const kMetaMinor = "minor";  // "1" while the user is marked as a minor (ferry_set_minor)
constexpr int64_t kSeqBlock = 16384;     // sequence numbers reserved per write of kMetaSeqReserved

// Batch requests the built-in transport keeps in flight (one libcurl handle each): while the collector answers some,
// the uploader reads, compresses and sends the next.
constexpr int kBuiltinRequestsInFlight = 3;
}  // namespace

Client::Client(ClientOptions opts) : opts_(std::move(opts)), clock_(opts_.clock), log_(opts_.logger) {}

Client::~Client() {
  if (!closed_.exchange(true)) {
    if (writer_) writer_->Stop();
    if (uploader_) uploader_->Stop();
  }
}

base::Result<std::unique_ptr<Client>> Client::Open(ClientOptions opts) {
  if (!base::EnsureSodium()) return Status::Internal("libsodium could not start");
  if (opts.clock == nullptr) return Status::InvalidArgument("no clock");
  std::unique_ptr<Client> c(new Client(std::move(opts)));
  Status s = c->Init();
  if (!s.ok()) {
    c->log_.Error("ferry_open failed: " + s.ToString());
    return s;
  }
  return c;
}

Status Client::Init() {
  // The transport first: a build without one of its own (FERRY_TRANSPORT=none) refuses an endpoint that has no app
  // transport before any file is touched.
  std::unique_ptr<platform::HttpTransport> transport = std::move(opts_.transport);
  // The built-in transport comes kBuiltinRequestsInFlight times, for as many batch requests in flight
  // (Uploader::AddTransport); an app's transport is called for one request at a time.
  std::vector<std::unique_ptr<platform::HttpTransport>> more;
  if (!transport && !opts_.endpoint.empty()) {
    platform::CurlTransportOptions copts;
    copts.ca_file = opts_.ca_file;
    copts.pinned_public_key = opts_.pinned_public_key;
    auto builtin = platform::NewBuiltinTransport(copts);
    if (!builtin.ok()) return builtin.status();
    transport = std::move(builtin).value();
    for (int i = 1; i < kBuiltinRequestsInFlight; ++i) {
      auto another = platform::NewBuiltinTransport(copts);
      if (!another.ok()) break;
      more.push_back(std::move(another).value());
    }
  }
  FERRY_RETURN_IF_ERROR(OpenBuffer());
  FERRY_RETURN_IF_ERROR(OpenMasker());
  FERRY_RETURN_IF_ERROR(LoadState());

  uploader_ = std::make_unique<Uploader>(
      opts_, buffer_.get(), &stats_, log_, [this] { return consent_.SendablePurposes(); }, std::move(transport));
  uploader_->SetGrantReceipts([this] { return consent_.GrantReceipts(); });
  uploader_->SetPassHook([this] { SweepHeld(); });
  SweepHeld();
  uploader_->SetBatchSource(
      [this](size_t max_events, size_t max_bytes, int64_t after_seq, std::map<std::string, std::string>* receipts) {
        ConsentGate::SharedHold hold = consent_.Shared();
        *receipts = consent_.GrantReceiptsLocked();
        return buffer_->NextBatch(consent_.SendablePurposesLocked(), max_events, max_bytes, after_seq);
      });
  for (auto& t : more) uploader_->AddTransport(std::move(t));
  writer_ = std::make_unique<Writer>(opts_, buffer_.get(), uploader_.get(), &stats_, log_);
  writer_->Start();
  uploader_->Start();
  writer_->Evict(true);
  log_.Info("ferry opened " + opts_.storage_path + " (" + std::to_string(buffer_->TotalBytes()) + " bytes buffered)");
  return Status::Ok();
}

std::string Client::DefaultStoragePath(const std::string& app_name, const std::string& data_dir) {
  std::string app = app_name.empty() ? platform::ReadDeviceInfo().process_name : app_name;
  // A file name from the app's name: [A-Za-z0-9._-] kept, anything else '_', no leading dot, at most 64 bytes; when
  // that changed the name, a short digest of the name keeps two such apps apart.
  std::string safe;
  for (char ch : app) {
    bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                ch == '_' || ch == '-';
    safe.push_back(keep ? ch : '_');
  }
  while (!safe.empty() && safe.front() == '.') safe.erase(safe.begin());
  if (safe.size() > 64) safe.resize(64);
  if (safe != app || safe.empty()) {
    safe += (safe.empty() ? "app-" : "-") + base::Blake2b256Hex(app).substr(0, 8);
  }
  return data_dir + "/ferry/" + safe + "/buffer.db";
}

Status Client::OpenBuffer() {
  if (opts_.data_dir.empty()) opts_.data_dir = platform::DefaultDataDir();
  if (opts_.storage_path.empty()) {
    opts_.storage_path = DefaultStoragePath(opts_.app_name, opts_.data_dir);
    std::string old_shared = opts_.data_dir + "/ferry/buffer.db";
    struct stat st {};
    if (stat(old_shared.c_str(), &st) == 0) {
      log_.Warn("a buffer at the former shared default path " + old_shared +
                " is no longer used; this app's buffer is " + opts_.storage_path +
                " (set the storage path to keep using the old file)");
    }
  }
  FERRY_RETURN_IF_ERROR(platform::EnsureDir(platform::DirName(opts_.storage_path)));
  base::SecretBytes key;
  if (!opts_.encryption_key.empty()) {
    key = opts_.encryption_key;
  } else if (opts_.key_store) {
    // The app's secret store (Keystore, Keychain): no key file beside the buffer; one left by an earlier version is
    // moved into the store.
    auto k =
        platform::LoadOrCreateStoredKey(*opts_.key_store, platform::KeyStoreNameFor(opts_.storage_path, opts_.data_dir),
                                        32, opts_.storage_path + ".key");
    if (!k.ok()) return k.status();
    key = std::move(k).value();
  } else {
    auto k = platform::LoadOrCreateKey(opts_.storage_path + ".key", 32);
    if (!k.ok()) return k.status();
    key = std::move(k).value();
  }
  opts_.key_store.reset();  // needed at open only: the app's free_user runs now
  opts_.encryption_key.Wipe();
  BufferOpenOptions bo;
  bo.unreadable = opts_.reset_unreadable_buffer ? UnreadablePolicy::kReset : UnreadablePolicy::kFail;
  bo.sync_commits = opts_.durability == Durability::kSync;
  BufferOpenReport report;
  auto buffer = Buffer::Open(opts_.storage_path, key, log_, bo, &report);
  key.Wipe();
  if (!buffer.ok()) return buffer.status();
  buffer_ = std::move(buffer).value();
  if (report.reset) {
    stats_.buffer_resets.fetch_add(1);
    stats_.SetLastError("the buffer could not be read (" + report.reason + "); it was reset, the old file is " +
                        report.set_aside);
  }
  if (report.salvaged) {
    stats_.salvaged.fetch_add(report.salvaged_events);
    stats_.SetLastError("the buffer was damaged (" + report.reason + "); " + std::to_string(report.salvaged_events) +
                        " events were salvaged, the old file is " + report.set_aside);
  }
  return Status::Ok();
}

Status Client::OpenMasker() {
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
  return Status::Ok();
}

Status Client::LoadState() {
  ConsentGate::ExclusiveHold cl = consent_.Exclusive();
  std::lock_guard<std::mutex> s(state_mu_);
  // Consent: what is recorded, then the app's defaults for purposes the user never chose (recorded as consent records
  // of method "default" when they are first applied or change, RecordDefaultsLocked). Once the recorded consent was
  // lost (a reset or unsalvageable buffer), a purpose may have been denied: the defaults are not applied and every
  // purpose the app has not set since stays denied.
  consent_lost_ = buffer_->GetMeta(Buffer::kMetaConsentLost).has_value();
  std::map<std::string, ConsentRow> rows = buffer_->LoadConsent();
  std::map<std::string, Consent> states;
  for (const auto& [purpose, row] : rows) {
    if (row.explicit_choice || !consent_lost_) {
      states[purpose] = row.state;
      consent_.SetReceiptLocked(purpose, row.receipt);
      std::string method = row.method;
      if (method.empty()) method = row.explicit_choice ? kMethodExplicit : kMethodDefault;  // a schema < 4 buffer
      consent_.SetMethodLocked(purpose, std::move(method));
    }
  }
  consent_.LoadLocked(std::move(states));
  consent_.SetMinorLocked(buffer_->GetMeta(kMetaMinor).value_or("") == "1");
  if (consent_lost_) {
    consent_.SetFallbackLocked(Consent::kDenied);
    log_.Warn("the buffer's recorded consent was lost; every purpose is denied until the app sets it again");
  }

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
  last_activity_ms_ = clock_->NowMs();
  RefreshContextLocked();

  // The device's sequence: past every number reserved before (a crash skips the rest of a block, never repeats).
  int64_t reserved = 0;
  if (auto r = buffer_->GetMeta(kMetaSeqReserved)) {
    auto [end, ec] = std::from_chars(r->data(), r->data() + r->size(), reserved);
    if (ec != std::errc() || end != r->data() + r->size() || reserved < 0) reserved = 0;
  }
  next_seq_ = reserved + 1;
  seq_reserved_ = reserved;
  if (!consent_lost_) {
    FERRY_RETURN_IF_ERROR(RecordNoticeChangesLocked(&rows));
    FERRY_RETURN_IF_ERROR(RecordDefaultsLocked(&rows));
  }
  return Status::Ok();
}

ConsentRow Client::MakeRow(Consent state, bool is_explicit, int64_t now, const std::string& receipt,
                           const char* method) const {
  ConsentRow row;
  row.state = state;
  row.explicit_choice = is_explicit;
  row.updated_ms = now;
  row.receipt = receipt;
  row.method = method;
  row.notice_version = opts_.notice_version;
  return row;
}

Status Client::RecordNoticeChangesLocked(std::map<std::string, ConsentRow>* rows) {
  const std::string& version = opts_.notice_version;
  if (version.empty()) return Status::Ok();
  const std::set<std::string>& changed = opts_.notice_changed_purposes;
  for (auto& entry : *rows) {
    const std::string& purpose = entry.first;
    ConsentRow& row = entry.second;
    // A person's grant (explicit or a guardian's) made under another notice version; a default follows the app's
    // default (RecordDefaultsLocked), a denial or a pending state needs no new consent.
    if (purpose == kNecessary || !row.explicit_choice || row.state != Consent::kGranted ||
        row.notice_version == version) {
      continue;
    }
    if (!changed.empty() && !changed.count(purpose)) {
      // The app says this purpose's terms did not change with this version: the grant carries over (no record: the
      // grant on record is still the one in force).
      row.notice_version = version;
      auto kept = buffer_->SetConsent(purpose, row, false, nullptr);
      if (!kept.ok()) return StorageError(kept.status());
      log_.Info("notice version " + version + ": the grant of '" + purpose +
                "' carries over (its terms did not change)");
      continue;
    }
    int64_t now = clock_->NowMs();
    consent_.SetLocked(purpose, Consent::kPending);
    consent_.SetMethodLocked(purpose, kMethodNoticeChange);
    RefreshContextLocked();
    NewEvent record;
    std::string receipt;
    FERRY_RETURN_IF_ERROR(ConsentRecordLocked(purpose, Consent::kPending, Consent::kGranted, kMethodNoticeChange, now,
                                              &record, &receipt));
    ConsentRow fallback = MakeRow(Consent::kPending, true, now, receipt, kMethodNoticeChange);
    auto recorded = buffer_->SetConsent(purpose, fallback, false, &record);
    if (!recorded.ok()) return StorageError(recorded.status());
    consent_.SetReceiptLocked(purpose, receipt);
    log_.Info("notice version " + version + " (the grant of '" + purpose + "' was made under " +
              (row.notice_version.empty() ? std::string("no known version") : row.notice_version) + "): '" + purpose +
              "' is pending again until the user chooses");
    row = fallback;
  }
  return Status::Ok();
}

Status Client::NextSeqLocked(int64_t* seq) {
  if (next_seq_ > seq_reserved_) {
    int64_t reserve = next_seq_ + kSeqBlock - 1;
    Status ps = buffer_->PutMeta(kMetaSeqReserved, std::to_string(reserve));
    if (!ps.ok()) return StorageError(ps);
    seq_reserved_ = reserve;
  }
  *seq = next_seq_++;
  return Status::Ok();
}

Status Client::RecordDefaultsLocked(std::map<std::string, ConsentRow>* rows) {
  std::map<std::string, Consent> defaults = opts_.default_consent;
  defaults.erase(kNecessary);
  // purpose -> (state to record, method)
  std::map<std::string, std::pair<Consent, const char*>> changes;
  for (const auto& [purpose, row] : *rows) {
    if (purpose == kNecessary) continue;
    if (row.explicit_choice) {
      if (row.receipt.empty()) changes[purpose] = {row.state, "explicit"};  // a buffer from before receipts
    } else if (!defaults.count(purpose) && row.state != Consent::kPending) {
      changes[purpose] = {Consent::kPending, "default"};  // the app no longer sets this default
    }
  }
  for (const auto& [purpose, state] : defaults) {
    auto it = rows->find(purpose);
    if (it != rows->end() && it->second.explicit_choice) continue;
    // A purpose with no state yet is pending: a pending default changes nothing and admits nothing, so it is not
    // recorded (nor is a pending state kept without a receipt).
    Consent current = it == rows->end() ? Consent::kPending : it->second.state;
    bool unreceipted = it != rows->end() && it->second.receipt.empty() && state != Consent::kPending;
    // A default in force under another notice version than the app declares now is recorded again under this one.
    bool renoticed = it != rows->end() && state != Consent::kPending && !opts_.notice_version.empty() &&
                     it->second.notice_version != opts_.notice_version;
    if (current != state || unreceipted || renoticed) changes[purpose] = {state, "default"};
  }
  for (const auto& [purpose, change] : changes) {
    const auto& [state, method] = change;
    auto it = rows->find(purpose);
    Consent previous = it == rows->end() ? Consent::kPending : it->second.state;
    bool is_explicit = it != rows->end() && it->second.explicit_choice;
    int64_t now = clock_->NowMs();
    consent_.SetLocked(purpose, state);
    consent_.SetMethodLocked(purpose, method);
    RefreshContextLocked();
    NewEvent record;
    std::string receipt;
    FERRY_RETURN_IF_ERROR(ConsentRecordLocked(purpose, state, previous, method, now, &record, &receipt));
    ConsentRow row = MakeRow(state, is_explicit, now, receipt, method);
    auto purged = buffer_->SetConsent(purpose, row, state == Consent::kDenied && previous != Consent::kDenied, &record);
    if (!purged.ok()) return StorageError(purged.status());
    consent_.SetReceiptLocked(purpose, receipt);
    (*rows)[purpose] = row;
    log_.Info("consent for '" + purpose + "' recorded as " + ConsentName(state) + " (" + method + ")");
  }
  return Status::Ok();
}

Status Client::Close(uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  int64_t deadline = clock_->MonotonicMs() + timeout_ms;
  Status flushed = opts_.endpoint.empty() ? Status::Ok() : Flush(timeout_ms);
  Status drained = writer_->Drain(deadline + 1000);
  closed_.store(true);
  writer_->Stop();
  uploader_->Stop();
  if (!drained.ok()) return drained;
  if (!flushed.ok() && flushed.code() == base::Code::kTimeout) return flushed;
  return Status::Ok();
}

std::string Client::IdProblem(std::string_view key, std::string_view s) {
  std::string_view why = wire::CheckIdText(s, kMaxNameBytes);
  if (why.empty()) return {};
  if (why == "not UTF-8") return std::string(key) + " is not valid UTF-8";
  if (why == "control character") return std::string(key) + " holds a control character (U+0000-U+001F, U+007F-U+009F)";
  return std::string(key) + " must be 1-200 bytes";
}

Status Client::Invalid(const std::string& why) {
  stats_.invalid.fetch_add(1, std::memory_order_relaxed);
  stats_.SetLastError(why);
  log_.Warn(why);
  return Status::InvalidArgument(why);
}

Status Client::SensitiveRefused() {
  stats_.dropped_consent.fetch_add(1, std::memory_order_relaxed);
  return Status::ConsentDenied("purpose 'sensitive' is not granted; a sensitive event is never held, it was dropped");
}

Status Client::PendingDropped(const std::string& purpose) {
  stats_.dropped_pending.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> l(dropped_log_mu_);
    if (dropped_logged_.insert(purpose).second) {
      log_.Info("purpose '" + purpose +
                "' is pending and its events are not held (ferry_options_set_hold_pending): dropped; counted in "
                "dropped_pending");
    }
  }
  return Status::ConsentDenied("purpose '" + purpose +
                               "' is pending and its events are not held; the event was dropped");
}

void Client::SweepHeld() {
  ConsentGate::SharedHold hold = consent_.Shared();
  SweepHeldLocked();
}

void Client::SweepHeldLocked() {
  int64_t now = clock_->NowMs();
  for (const auto& entry : buffer_->Counts()) {
    const std::string& purpose = entry.first;
    if (entry.second.events == 0 || purpose == kNecessary || consent_.StateLocked(purpose) != Consent::kPending) {
      continue;
    }
    // Not held (and "sensitive", never held): every buffered event of the purpose goes; held: those past the hold.
    auto it = opts_.hold_pending.find(purpose);
    bool held = it != opts_.hold_pending.end() && purpose != kSensitive;
    int64_t cutoff = held ? now - static_cast<int64_t>(it->second) : std::numeric_limits<int64_t>::max();
    auto n = buffer_->DeleteOlder(purpose, cutoff);
    if (!n.ok()) {
      stats_.SetLastError("dropping held events failed: " + n.status().message());
      log_.Error("dropping held events of '" + purpose + "' failed: " + n.status().message());
      continue;
    }
    if (n.value() > 0) {
      stats_.dropped_pending.fetch_add(n.value(), std::memory_order_relaxed);
      log_.Info("purpose '" + purpose + "' is pending: dropped " + std::to_string(n.value()) + " buffered events (" +
                (held ? "held longer than its hold" : "its events are not held") + "); counted in dropped_pending");
    }
  }
}

Status Client::StorageError(const Status& s) {
  stats_.storage_errors++;
  stats_.SetLastError(s.message());
  return s;
}

void Client::RefreshContextLocked() {
  context_json_ = std::make_shared<const std::string>(BuildContextJson(facts_, session_id_, consent_.StatesLocked()));
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
  ConsentGate::SharedHold hold = consent_.Shared();
  return Record("track", "event", event, "properties", properties_json, p, consent_.StateLocked(p));
}

Status Client::Screen(std::string_view name, const char* properties_json) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Closed("the client is closed");
  ConsentGate::SharedHold hold = consent_.Shared();
  return Record("screen", "name", name, "properties", properties_json, "analytics", consent_.StateLocked("analytics"));
}

Status Client::Identify(std::string_view user_id, const char* traits_json) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Closed("the client is closed");
  if (std::string why = IdProblem("userId", user_id); !why.empty()) return Invalid(why);
  ConsentGate::SharedHold hold = consent_.Shared();
  {
    std::lock_guard<std::mutex> s(state_mu_);
    if (user_id_ != user_id) {
      user_id_ = std::string(user_id);
      Status ps = buffer_->PutMeta(kMetaUser, user_id_);
      if (!ps.ok()) return StorageError(ps);
    }
  }
  return Record("identify", "", "", "traits", traits_json, "analytics", consent_.StateLocked("analytics"));
}

Status Client::Record(std::string_view type, std::string_view name_key, std::string_view name,
                      std::string_view payload_key, const char* payload_json, const std::string& purpose, Consent state,
                      const CallContext* call, uint64_t* ticket) {
  if (!name_key.empty()) {
    if (std::string why = IdProblem(name_key, name); !why.empty()) return Invalid(why);
  }
  if (state == Consent::kDenied) {
    stats_.dropped_consent.fetch_add(1, std::memory_order_relaxed);
    return Status::ConsentDenied("purpose '" + purpose + "' is denied; the event was dropped");
  }
  if (std::string_view(purpose) == kSensitive && state != Consent::kGranted) return SensitiveRefused();
  if (DropsPending(purpose, state)) return PendingDropped(purpose);
  // The stored properties/traits: validated and masked in one pass over the app's text (no DOM). An object that
  // repeats a key is parsed and walked instead, so the last of the repeated keys wins as it always did.
  thread_local std::string payload_text;
  payload_text.clear();
  switch (masker_->MaskObjectText(payload_json != nullptr ? payload_json : "{}", kMaxDepth, &payload_text)) {
    case pii::ObjectTextOutcome::kOk: break;
    case pii::ObjectTextOutcome::kNotJson:
      return Invalid(std::string(payload_key) + " is not valid JSON (or not UTF-8)");
    case pii::ObjectTextOutcome::kNotObject: return Invalid(std::string(payload_key) + " must be a JSON object");
    case pii::ObjectTextOutcome::kTooDeep: return Invalid(std::string(payload_key) + " nests deeper than 32");
    case pii::ObjectTextOutcome::kRepeatedKey: {
      Json payload = Json::parse(payload_json, nullptr, false);
      if (payload.is_discarded()) return Invalid(std::string(payload_key) + " is not valid JSON (or not UTF-8)");
      if (wire::JsonDepth(payload) > kMaxDepth) return Invalid(std::string(payload_key) + " nests deeper than 32");
      masker_->ApplyToObject(&payload);
      payload_text = payload.dump(-1, ' ', false, Json::error_handler_t::replace);
      break;
    }
  }
  std::string masked_name;
  if (type == "screen") masked_name = masker_->MaskString(name);

  int64_t now = clock_->NowMs();
  NewEvent ev;
  ev.purpose = purpose;
  ev.created_ms = now;
  std::shared_ptr<const std::string> ctx;
  int64_t seq = 0;
  {
    std::lock_guard<std::mutex> s(state_mu_);
    FERRY_RETURN_IF_ERROR(NextSeqLocked(&seq));
    ctx = TouchSessionLocked(now);
    bool own_ids = call != nullptr && (!call->user_id.empty() || !call->anonymous_id.empty());
    ev.user_id = own_ids ? call->user_id : user_id_;
    ev.anonymous_id = own_ids ? call->anonymous_id : anonymous_id_;
  }
  const std::string& receipt = consent_.ReceiptLocked(purpose);
  const bool with_receipt = state == Consent::kGranted && std::string_view(purpose) != kNecessary && !receipt.empty();
  const bool own_message_id = call != nullptr && !call->message_id.empty();
  const std::string_view shown_name = type == "screen" ? std::string_view(masked_name) : name;
  // The body is written through a pointer into one allocation of a size that bounds it (no check or growth per
  // piece), then cut to its length. A string of the app's is bounded by its length plus the quotes when it needs no
  // escape (as almost all do), by six bytes a byte otherwise.
  // Each string is checked once: plain[i] says it needs no escape (then it is copied between quotes as it is).
  enum Str { kMessageIdStr, kReceiptStr, kNameStr, kAnonStr, kUserStr, kStrs };
  const std::string_view strs[kStrs] = {own_message_id ? std::string_view(call->message_id) : std::string_view(),
                                        with_receipt ? std::string_view(receipt) : std::string_view(), shown_name,
                                        ev.anonymous_id, ev.user_id};
  bool plain[kStrs];
  for (int i = 0; i < kStrs; ++i) plain[i] = base::NeedsNoEscape(strs[i]);
  auto quoted = [&strs, &plain](Str i) {
    return plain[i] ? strs[i].size() + 2 : base::JsonStringBound(strs[i].size());
  };
  constexpr std::string_view kOpen = "{\"messageId\":";
  constexpr std::string_view kSeq = ",\"deviceSeq\":";
  constexpr std::string_view kReceipt = ",\"consentReceipt\":";
  constexpr std::string_view kType = ",\"type\":\"";
  constexpr std::string_view kNameOpen = ",\"";
  constexpr std::string_view kNameClose = "\":";
  constexpr std::string_view kAnon = ",\"anonymousId\":";
  constexpr std::string_view kUser = ",\"userId\":";
  constexpr std::string_view kTime = ",\"timestamp\":\"";
  constexpr std::string_view kPurpose = "\",\"purpose\":\"";
  constexpr std::string_view kPayloadOpen = "\",\"";
  constexpr std::string_view kPayloadClose = "\":";
  constexpr std::string_view kContext = ",\"context\":";
  constexpr size_t kFixed = kOpen.size() + kSeq.size() + kReceipt.size() + kType.size() + 1 + kNameOpen.size() +
                            kNameClose.size() + kAnon.size() + kUser.size() + kTime.size() + kPurpose.size() +
                            kPayloadOpen.size() + kPayloadClose.size() + kContext.size() + 1;
  const size_t bound = kFixed + (own_message_id ? quoted(kMessageIdStr) : base::kUuidChars + 2) + 20 +
                       (with_receipt ? quoted(kReceiptStr) : 4) + type.size() + name_key.size() + quoted(kNameStr) +
                       quoted(kAnonStr) + quoted(kUserStr) + base::kIso8601MaxChars + purpose.size() +
                       payload_key.size() + payload_text.size() + ctx->size();
  std::string& b = ev.body;
  b.resize(bound);
  char* w = b.data();
  auto raw = [&w](std::string_view v) {
    if (v.empty()) return;
    std::memcpy(w, v.data(), v.size());
    w += v.size();
  };
  auto str = [&w, &raw, &strs, &plain](Str i) {
    if (plain[i]) {  // copied between quotes as it is
      *w++ = '"';
      raw(strs[i]);
      *w++ = '"';
    } else {
      w = base::WriteJsonString(w, strs[i]);
    }
  };
  raw(kOpen);
  if (own_message_id) {
    str(kMessageIdStr);
  } else {
    *w++ = '"';
    w = base::WriteUuidV7(w, now);  // time-ordered: the collector's messageId index grows at its end
    *w++ = '"';
  }
  // The device's sequence number and the receipt of the consent record that admits the event (null while its purpose
  // is pending: the uploader names the grant that releases it, AdmitPendingEvent; "necessary" needs none).
  raw(kSeq);
  w = std::to_chars(w, w + 20, seq).ptr;
  raw(kReceipt);
  if (with_receipt) {
    str(kReceiptStr);
  } else {
    raw("null");
  }
  raw(kType);
  raw(type);
  *w++ = '"';
  if (!name_key.empty()) {
    raw(kNameOpen);
    raw(name_key);
    raw(kNameClose);
    str(kNameStr);
  }
  if (!ev.anonymous_id.empty()) {
    raw(kAnon);
    str(kAnonStr);
  }
  if (!ev.user_id.empty()) {
    raw(kUser);
    str(kUserStr);
  }
  raw(kTime);
  w = base::WriteIso8601(w, call != nullptr && call->timestamp_ms > 0 ? call->timestamp_ms : now);
  raw(kPurpose);
  raw(purpose);
  raw(kPayloadOpen);
  raw(payload_key);
  raw(kPayloadClose);
  raw(payload_text);
  raw(kContext);
  raw(*ctx);
  *w++ = '}';
  b.resize(static_cast<size_t>(w - b.data()));
  if (b.size() > kMaxEventBytes) return Invalid("the event is larger than 32 KiB");
  return writer_->Enqueue(std::move(ev), IsSendable(purpose, state), ticket);
}

Status Client::RecordAs(const CallContext& ctx, std::string_view type, std::string_view name, const char* payload_json,
                        const char* purpose, uint64_t* ticket) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Closed("the client is closed");
  auto id_ok = [](const std::string& id) { return id.empty() || wire::IsValidIdText(id, kMaxNameBytes); };
  if (!id_ok(ctx.user_id) || !id_ok(ctx.anonymous_id))
    return Invalid("userId/anonymousId must be 0-200 bytes of UTF-8 without control characters");
  if (ctx.message_id.size() > 64 || !(ctx.message_id.empty() || wire::IsValidIdText(ctx.message_id, 64)))
    return Invalid("messageId must be 1-64 chars");
  std::string p = type == "track" && purpose != nullptr ? purpose : "analytics";
  if (!wire::IsValidPurpose(p)) return Invalid("invalid purpose name (1-32 bytes of a-z, 0-9, _ and -)");
  if (type == "identify" && ctx.user_id.empty()) return Invalid("identify needs a userId");
  std::string_view name_key = type == "track" ? "event" : type == "screen" ? "name" : "";
  if (name_key.empty() && type != "identify") return Invalid("unknown event type (track, screen or identify)");
  std::string_view payload_key = type == "identify" ? "traits" : "properties";
  ConsentGate::SharedHold hold = consent_.Shared();
  return Record(type, name_key, type == "identify" ? "" : name, payload_key, payload_json, p, consent_.StateLocked(p),
                &ctx, ticket);
}

Status Client::WaitCommitted(uint64_t ticket) { return writer_->WaitCommitted(ticket); }

std::vector<Status> Client::RecordBuilt(std::vector<Json> events) {
  std::vector<Status> out(events.size());
  std::vector<std::pair<size_t, uint64_t>> tickets;
  if (closed_.load(std::memory_order_relaxed)) {
    for (auto& s : out) s = Status::Closed("the client is closed");
    return out;
  }
  {
    ConsentGate::SharedHold hold = consent_.Shared();
    for (size_t i = 0; i < events.size(); ++i) {
      uint64_t ticket = 0;
      out[i] = RecordOneBuilt(&events[i], &ticket);
      if (out[i].ok()) tickets.emplace_back(i, ticket);
    }
  }
  for (const auto& [i, ticket] : tickets) out[i] = writer_->WaitCommitted(ticket);
  return out;
}

Status Client::RecordOneBuilt(Json* ev, uint64_t* ticket) {
  if (!ev->is_object()) return Invalid("the event is not an object");
  std::string type = ev->value("type", std::string());
  std::string purpose = ev->value("purpose", std::string("analytics"));
  if (!wire::IsValidPurpose(purpose)) return Invalid("invalid purpose name (1-32 bytes of a-z, 0-9, _ and -)");
  Consent state = consent_.StateLocked(purpose);
  if (state == Consent::kDenied) {
    stats_.dropped_consent.fetch_add(1, std::memory_order_relaxed);
    return Status::ConsentDenied("purpose '" + purpose + "' is denied; the event was dropped");
  }
  if (purpose == kSensitive && state != Consent::kGranted && type != "consent") return SensitiveRefused();
  if (type != "consent" && DropsPending(purpose, state)) return PendingDropped(purpose);
  if (type != "consent") {
    for (const char* key : {"properties", "traits"}) {
      auto it = ev->find(key);
      if (it != ev->end() && it->is_object()) masker_->ApplyToObject(&*it);
    }
    if (type == "screen" && ev->contains("name") && (*ev)["name"].is_string()) {
      (*ev)["name"] = masker_->MaskString((*ev)["name"].get<std::string>());
    }
  }
  NewEvent ne;
  ne.purpose = purpose;
  ne.created_ms = clock_->NowMs();
  ne.user_id = ev->value("userId", std::string());
  ne.anonymous_id = ev->value("anonymousId", std::string());
  ne.body = ev->dump(-1, ' ', false, Json::error_handler_t::replace);
  if (ne.body.size() > kMaxEventBytes) return Invalid("the event is larger than 32 KiB");
  return writer_->Enqueue(std::move(ne), IsSendable(purpose, state), ticket);
}

std::map<std::string, Consent> Client::ConsentStates() { return consent_.States(); }

void Client::AddUnreportedEvicted(int64_t n) {
  if (n > 0 && uploader_) uploader_->unreported_evicted_add(n);
}

Status Client::Reset() {
  if (closed_.load()) return Status::Closed("the client is closed");
  ConsentGate::ExclusiveHold cl = consent_.Exclusive();
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

Status Client::ConsentRecordLocked(const std::string& purpose, Consent state, Consent previous, const char* method,
                                   int64_t now, NewEvent* record, std::string* receipt) {
  int64_t seq = 0;
  FERRY_RETURN_IF_ERROR(NextSeqLocked(&seq));
  *receipt = base::NewUuidV4();
  record->purpose = kNecessary;
  record->created_ms = now;
  record->user_id = user_id_;
  record->anonymous_id = anonymous_id_;
  const std::string& language = opts_.consent_language.empty() ? facts_.device.locale : opts_.consent_language;
  Json props = {{"purpose", purpose},
                {"state", ConsentName(state)},
                {"previous", ConsentName(previous)},
                {"method", method},
                {"seq", seq},
                {"receiptId", *receipt},
                {"noticeId", nullptr},
                {"noticeVersion", nullptr},
                {"language", nullptr},
                {"minor", consent_.MinorLocked()}};
  if (!opts_.notice_id.empty()) props["noticeId"] = opts_.notice_id;
  if (!opts_.notice_version.empty()) props["noticeVersion"] = opts_.notice_version;
  if (!language.empty()) props["language"] = language;
  Json ev = {{"messageId", base::NewUuidV7(now)},  // time-ordered, as every event's
             {"type", "consent"},
             {"anonymousId", anonymous_id_},
             {"timestamp", base::FormatIso8601(now)},
             {"purpose", kNecessary},
             {"properties", props},
             {"deviceSeq", seq}};
  if (!user_id_.empty()) ev["userId"] = user_id_;
  ev["context"] = Json::parse(*TouchSessionLocked(now), nullptr, false);
  record->body = ev.dump(-1, ' ', false, Json::error_handler_t::replace);
  return Status::Ok();
}

Status Client::SetConsent(std::string_view purpose_sv, Consent state) {
  return SetConsentAs(purpose_sv, state, kMethodExplicit);
}

Status Client::SetConsentAs(std::string_view purpose_sv, Consent state, const char* method) {
  if (closed_.load()) return Status::Closed("the client is closed");
  std::string purpose(purpose_sv);
  if (!wire::IsValidPurpose(purpose)) return Invalid("invalid purpose name (1-32 bytes of a-z, 0-9, _ and -)");
  if (purpose == kNecessary && state != Consent::kGranted) return Invalid("'necessary' cannot be withdrawn");
  ConsentGate::ExclusiveHold cl = consent_.Exclusive();
  // Everything already accepted must be in the buffer before a purge, so that nothing of a denied purpose survives.
  FERRY_RETURN_IF_ERROR(writer_->Drain(clock_->MonotonicMs() + kDrainForChangeMs));
  if (state == Consent::kGranted) SweepHeldLocked();  // held too long: dropped, not released
  Consent previous = consent_.RecordedLocked(purpose);
  const std::string previous_method = consent_.MethodLocked(purpose);
  int64_t now = clock_->NowMs();
  consent_.SetLocked(purpose, state);
  consent_.SetMethodLocked(purpose, method);
  NewEvent record;
  std::string receipt;
  Status made;
  {
    std::lock_guard<std::mutex> s(state_mu_);
    RefreshContextLocked();
    made = ConsentRecordLocked(purpose, state, previous, method, now, &record, &receipt);
  }
  ConsentRow row = MakeRow(state, true, now, receipt, method);
  base::Result<int64_t> purged =
      made.ok() ? buffer_->SetConsent(purpose, row, state == Consent::kDenied, &record) : base::Result<int64_t>(made);
  if (!purged.ok()) {
    consent_.SetLocked(purpose, previous);
    consent_.SetMethodLocked(purpose, previous_method);
    std::lock_guard<std::mutex> s(state_mu_);
    RefreshContextLocked();
    return made.ok() ? StorageError(purged.status()) : made;
  }
  consent_.SetReceiptLocked(purpose, receipt);
  stats_.tracked++;
  if (purged.value() > 0) {
    stats_.purged_consent.fetch_add(purged.value());
    log_.Info("purpose '" + purpose + "' denied: purged " + std::to_string(purged.value()) + " buffered events");
  }
  cl.unlock();
  uploader_->Notify(state == Consent::kGranted ? (1 << 20) : 1);
  return Status::Ok();
}

Status Client::SetConsentGuardian(std::string_view purpose, Consent state) {
  return SetConsentAs(purpose, state, kMethodGuardian);
}

Status Client::SetMinor(bool minor) {
  if (closed_.load()) return Status::Closed("the client is closed");
  ConsentGate::ExclusiveHold cl = consent_.Exclusive();
  if (consent_.MinorLocked() == minor) return Status::Ok();  // unchanged: nothing to record
  // Everything accepted before the mark is in the buffer first (made and admitted under the state before it).
  FERRY_RETURN_IF_ERROR(writer_->Drain(clock_->MonotonicMs() + kDrainForChangeMs));
  Status kept = buffer_->PutMeta(kMetaMinor, minor ? "1" : "0");
  if (!kept.ok()) return StorageError(kept);
  consent_.SetMinorLocked(minor);
  std::lock_guard<std::mutex> s(state_mu_);
  RefreshContextLocked();
  // The mark itself: a record of "necessary" (granted, unchanged) with method "minor" and the flag (docs/PROTOCOL.md).
  int64_t now = clock_->NowMs();
  NewEvent mark;
  std::string mark_receipt;
  FERRY_RETURN_IF_ERROR(
      ConsentRecordLocked(kNecessary, Consent::kGranted, Consent::kGranted, kMethodMinor, now, &mark, &mark_receipt));
  // A grant that is not a guardian's goes back to pending when the user is marked, on record (method "minor").
  std::vector<std::pair<std::string, NewEvent>> fallbacks;
  std::vector<std::string> receipts;
  if (minor) {
    for (const auto& [purpose, state] : consent_.StatesLocked()) {
      if (purpose == kNecessary || consent_.RecordedLocked(purpose) != Consent::kGranted ||
          consent_.MethodLocked(purpose) == kMethodGuardian) {
        continue;
      }
      (void)state;
      NewEvent record;
      std::string receipt;
      FERRY_RETURN_IF_ERROR(
          ConsentRecordLocked(purpose, Consent::kPending, Consent::kGranted, kMethodMinor, now, &record, &receipt));
      fallbacks.emplace_back(purpose, std::move(record));
      receipts.push_back(std::move(receipt));
    }
  }
  auto appended =
      buffer_->SetConsent(kNecessary, MakeRow(Consent::kGranted, false, now, mark_receipt, kMethodMinor), false, &mark);
  if (!appended.ok()) return StorageError(appended.status());
  for (size_t i = 0; i < fallbacks.size(); ++i) {
    const std::string& purpose = fallbacks[i].first;
    auto recorded = buffer_->SetConsent(purpose, MakeRow(Consent::kPending, true, now, receipts[i], kMethodMinor),
                                        false, &fallbacks[i].second);
    if (!recorded.ok()) return StorageError(recorded.status());
    consent_.SetLocked(purpose, Consent::kPending);
    consent_.SetMethodLocked(purpose, kMethodMinor);
    consent_.SetReceiptLocked(purpose, receipts[i]);
    log_.Info("the user is a minor: the grant of '" + purpose + "' waits for a guardian (pending, recorded)");
  }
  RefreshContextLocked();
  stats_.tracked.fetch_add(1 + static_cast<int64_t>(fallbacks.size()), std::memory_order_relaxed);
  log_.Info(minor ? "the user is marked as a minor: only a guardian's grant admits events"
                  : "the user is no longer marked as a minor");
  uploader_->Notify(1);
  return Status::Ok();
}

bool Client::IsMinor() {
  ConsentGate::SharedHold hold = consent_.Shared();
  return consent_.MinorLocked();
}

Consent Client::GetConsent(std::string_view purpose) { return consent_.State(std::string(purpose)); }

Status Client::Flush(uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  int64_t deadline = clock_->MonotonicMs() + timeout_ms;
  FERRY_RETURN_IF_ERROR(writer_->Drain(deadline));
  if (opts_.endpoint.empty()) return Status::Network("no endpoint is configured");
  FERRY_RETURN_IF_ERROR(uploader_->DeliverForgets(deadline));
  std::set<std::string> purposes = consent_.SendablePurposes();
  auto target = buffer_->MaxSeq(purposes);
  if (!target.ok()) return target.status();
  return uploader_->Flush(purposes, target.value(), deadline);
}

Status Client::Forget(uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  int64_t deadline = clock_->MonotonicMs() + timeout_ms;
  {
    ConsentGate::ExclusiveHold cl = consent_.Exclusive();
    Status d = writer_->Drain(deadline);
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

namespace {

constexpr const char* kMetaRequest = "request:";  // + receipt: {kind, claim, reference, state[, error]}

void WipeClaim(Json* meta) {
  if (!meta->is_object() || !(*meta)["claim"].is_string()) return;
  std::string& c = (*meta)["claim"].get_ref<std::string&>();
  sodium_memzero(c.data(), c.size());
}

// A receipt as the app sees it: never the claim.
Json ReceiptJson(const std::string& receipt, const Json& meta) {
  Json out = {{"receipt", receipt},
              {"kind", meta.value("kind", "")},
              {"reference", meta.contains("reference") ? meta["reference"] : Json(nullptr)},
              {"state", meta.value("state", "queued")}};
  if (meta.contains("error")) out["error"] = meta["error"];
  return out;
}

}  // namespace

Status Client::Request(std::string_view kind, uint32_t timeout_ms, std::string* receipt_json) {
  if (closed_.load()) return Status::Closed("the client is closed");
  if (kind.empty() || kind.size() > 32 || kind.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != kind.npos) {
    return Invalid("request kind must be 1-32 lowercase letters or '_' (access, erasure, ...)");
  }
  const int64_t deadline = clock_->MonotonicMs() + timeout_ms;
  // Events first: the collector registers the request only for ids it has seen on this device's events.
  Status drained = writer_->Drain(deadline);
  if (!drained.ok() && drained.code() != base::Code::kTimeout) return drained;
  const std::string receipt = base::NewUuidV4();
  std::string claim = base::RandomHex(32);
  Json ids = Json::array();
  {
    std::lock_guard<std::mutex> s(state_mu_);
    ids.push_back(anonymous_id_);
    for (const auto& a : previous_anonymous_ids_) ids.push_back(a);
  }
  Json meta = {{"kind", kind}, {"claim", claim}, {"reference", nullptr}, {"state", "queued"}};
  std::string meta_text = meta.dump(),
              item_text =
                  Json{{"receipt", receipt}, {"request", {{"kind", kind}, {"anonymousIds", ids}, {"claim", claim}}}}
                      .dump();
  Status kept = buffer_->PutMeta(kMetaRequest + receipt, meta_text);
  if (kept.ok()) kept = buffer_->AddOutbox("request", item_text);
  sodium_memzero(claim.data(), claim.size());
  sodium_memzero(meta_text.data(), meta_text.size());
  sodium_memzero(item_text.data(), item_text.size());
  if (!kept.ok()) return StorageError(kept);
  Status sent = opts_.endpoint.empty() ? Status::Network("no endpoint is configured; the request stays queued")
                                       : uploader_->DeliverRequests(deadline);
  auto now = buffer_->GetMeta(kMetaRequest + receipt);
  Json state = now ? Json::parse(*now, nullptr, false) : Json::object();
  if (!state.is_object()) state = Json::object();
  *receipt_json = ReceiptJson(receipt, state).dump();
  if (sent.ok() && state.value("state", "") == "refused") {
    return Status::Network("the collector refused the request: " + state.value("error", std::string()));
  }
  return sent;
}

base::Result<Json> Client::RequestState(const std::string& receipt, int64_t deadline, Json* meta) {
  auto kept = buffer_->GetMeta(kMetaRequest + receipt);
  if (!kept) return Status::NotFound("no request has this receipt");
  *meta = Json::parse(*kept, nullptr, false);
  if (!meta->is_object() || !(*meta)["claim"].is_string())
    return Status::Corruption("the request's record is unreadable");
  if (!(*meta)["reference"].is_string()) return ReceiptJson(receipt, *meta);
  const std::string reference = (*meta)["reference"].get<std::string>();
  std::string body = Json{{"claim", (*meta)["claim"]}}.dump();
  platform::HttpResponse resp;
  Status net = uploader_->Call("/v1/device/requests/" + reference + "/status", body, deadline, &resp);
  sodium_memzero(body.data(), body.size());
  if (!net.ok()) return net;
  Json ans = Json::parse(resp.body, nullptr, false);
  if (resp.status != 200 || !ans.is_object()) {
    return Status::Network("the collector answered " + std::to_string(resp.status) + ": " + resp.body.substr(0, 200));
  }
  if (ans["state"].is_string() && ans["state"] != (*meta)["state"]) {
    (*meta)["state"] = ans["state"];
    (void)buffer_->PutMeta(kMetaRequest + receipt, meta->dump());
  }
  ans["receipt"] = receipt;
  return ans;
}

base::Result<std::string> Client::RequestStatus(std::string_view receipt, uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  Json meta;
  auto st = RequestState(std::string(receipt), clock_->MonotonicMs() + timeout_ms, &meta);
  if (meta.is_object() && meta.contains("claim")) WipeClaim(&meta);
  if (!st.ok()) return st.status();
  return st->dump();
}

base::Result<std::string> Client::RequestCopy(std::string_view receipt, uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  const int64_t deadline = clock_->MonotonicMs() + timeout_ms;
  Json meta;
  auto st = RequestState(std::string(receipt), deadline, &meta);
  std::string claim = meta.is_object() && meta["claim"].is_string() ? meta["claim"].get<std::string>() : "";
  if (meta.is_object() && meta["claim"].is_string()) WipeClaim(&meta);
  auto done = [&](base::Result<std::string> r) {
    sodium_memzero(claim.data(), claim.size());
    return r;
  };
  if (!st.ok()) return done(st.status());
  if (!st->value("copyReady", false)) return done(std::string());
  std::string body = Json{{"claim", claim}}.dump();
  platform::HttpResponse resp;
  Status net =
      uploader_->Call("/v1/device/requests/" + st->value("reference", "") + "/copy-link", body, deadline, &resp);
  sodium_memzero(body.data(), body.size());
  if (!net.ok()) return done(net);
  Json link = Json::parse(resp.body, nullptr, false);
  if (resp.status != 201 || !link.is_object() || !link["url"].is_string()) {
    return done(Status::Network("the collector gave no link (" + std::to_string(resp.status) + ")"));
  }
  std::string url = link["url"].get<std::string>();
  platform::HttpResponse copy;
  net = uploader_->Call(url, "", deadline, &copy);
  sodium_memzero(url.data(), url.size());
  if (!net.ok()) return done(net);
  if (copy.status != 200 || !copy.error.empty()) {
    return done(Status::Network("the copy did not arrive whole (" + std::to_string(copy.status) + ")" +
                                (copy.error.empty() ? "" : ": " + copy.error)));
  }
  log_.Info("the copy of request " + st->value("reference", "") + " arrived through its one-time link");
  return done(std::move(copy.body));
}

base::Result<std::string> Client::VerificationCode(uint32_t timeout_ms) {
  if (closed_.load()) return Status::Closed("the client is closed");
  const int64_t deadline = clock_->MonotonicMs() + timeout_ms;
  // Events first: the collector binds the code only to an id it has seen on this device's events.
  FERRY_RETURN_IF_ERROR(Flush(timeout_ms));
  Json ids = Json::array();
  {
    std::lock_guard<std::mutex> s(state_mu_);
    ids.push_back(anonymous_id_);
    for (const auto& a : previous_anonymous_ids_) ids.push_back(a);
  }
  platform::HttpResponse resp;
  Status net = uploader_->Call("/v1/device/verification-code", Json{{"anonymousIds", ids}}.dump(), deadline, &resp);
  if (!net.ok()) return net;
  Json ans = Json::parse(resp.body, nullptr, false);
  if (resp.status != 201 || !ans.is_object() || !ans["code"].is_string()) {
    sodium_memzero(resp.body.data(), resp.body.size());
    return Status::Network("the collector gave no code (" + std::to_string(resp.status) + ")");
  }
  std::string out = Json{{"code", ans["code"]}, {"expiresAt", ans.value("expiresAt", Json(nullptr))}}.dump();
  sodium_memzero(resp.body.data(), resp.body.size());
  return out;
}

base::Result<std::string> Client::ExportLocal() {
  if (closed_.load()) return Status::Closed("the client is closed");
  FERRY_RETURN_IF_ERROR(writer_->Drain(clock_->MonotonicMs() + kDrainForChangeMs));
  Json out = Json::object();
  std::set<std::string> anon;
  std::string uid;
  {
    ConsentGate::SharedHold hold = consent_.Shared();
    std::lock_guard<std::mutex> s(state_mu_);
    anon = previous_anonymous_ids_;
    anon.insert(anonymous_id_);
    uid = user_id_;
    out["anonymousId"] = anonymous_id_;
    out["previousAnonymousIds"] = previous_anonymous_ids_;
    out["userId"] = user_id_.empty() ? Json(nullptr) : Json(user_id_);
    Json consent = Json::object();
    for (const auto& [p, st] : consent_.StatesLocked()) consent[p] = ConsentName(st);
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
  out["exportedAt"] = base::FormatIso8601(clock_->NowMs());
  return out.dump(2, ' ', false, Json::error_handler_t::replace);
}

std::string Client::StatsJson() {
  auto counts = buffer_->Counts();
  std::set<std::string> sendable = consent_.SendablePurposes();
  int64_t queued = 0, pending = 0;
  {
    ConsentGate::SharedHold hold = consent_.Shared();
    for (const auto& [purpose, c] : counts) {
      if (sendable.count(purpose)) {
        queued += c.events;
      } else if (consent_.StateLocked(purpose) != Consent::kDenied) {
        pending += c.events;  // (events of a denied purpose are purged; any left are neither)
      }
    }
  }
  Json j = {
      {"queued", queued},
      {"pending_consent", pending},
      {"uncommitted", writer_->Queued()},
      {"storage_bytes", buffer_->TotalBytes()},
      {"file_bytes", platform::DatabaseBytesOnDisk(opts_.storage_path)},
      {"auth_failed", uploader_->auth_failed()},
      {"last_error", stats_.LastError()},
      {"consent_reset", consent_lost_},
      {"minor", IsMinor()},
      {"storage_path", opts_.storage_path},
  };
  stats_.ForEachCounter([&](const char* name, int64_t value) { j[name] = value; });
  return j.dump();
}

}  // namespace ferry::core
