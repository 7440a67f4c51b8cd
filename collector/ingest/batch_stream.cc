#include "collector/ingest/batch_stream.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <rapidjson/reader.h>

#include "lib/base/json_number.h"
#include "lib/base/json_text.h"
#include "lib/base/time.h"
#include "lib/base/utf8.h"
#include "lib/wire/json_body.h"

namespace ferry::collector {

namespace {

// The members of an event the pass reads (everything else is only written).
enum EventMember : uint8_t {
  kMessageId,
  kType,
  kEvent,
  kName,
  kUserId,
  kAnonymousId,
  kTimestamp,
  kPurpose,
  kProperties,
  kTraits,
  kContext,
  kConsentReceipt,
  kDeviceSeq,
  kPreviousId,
  kReceivedAt,
  kOriginalTimestamp,
  kTimestampClamped,
  kKeyCount,
  kOtherKey = kKeyCount,
};

constexpr std::array<std::string_view, kKeyCount> kKeyNames = {
    "messageId",       "type",        "event",      "name",
    "userId",          "anonymousId", "timestamp",  "purpose",
    "properties",      "traits",      "context",    "consentReceipt",
    "deviceSeq",       "previousId",  "receivedAt", "originalTimestamp",
    "timestampClamped"};

EventMember EventKey(std::string_view k) {
  for (size_t i = 0; i < kKeyNames.size(); ++i) {
    if (kKeyNames[i] == k) return static_cast<EventMember>(i);
  }
  return kOtherKey;
}

enum class Kind : uint8_t { kAbsent, kNull, kString, kInt, kUint, kFloat, kBool, kObject, kArray };

struct Field {
  Kind kind = Kind::kAbsent;
  std::string s;
  int64_t i = 0;
  uint64_t u = 0;
  size_t depth = 0;  // a container's JsonDepth
};

// What a container is, for what the pass reads from it.
enum class Tag : uint8_t {
  kEnvelope,
  kBatch,
  kDropped,
  kEvent,
  kProperties,
  kTraits,
  kContext,
  kApp,
  kCampaign,
  kOther
};

struct Frame {
  bool object = false;
  Tag tag = Tag::kOther;
  size_t text_start = 0;     // where the container's text begins in buf_ (inside an event)
  size_t members_begin = 0;  // its members in members_ (objects)
  size_t count = 0;          // members or elements so far
};

// One member of an object inside an event: its raw key (a view of the text the reader decodes in place, or of a
// literal) and its text `"key":value` (in buf_).
struct Member {
  std::string_view key_text;
  size_t entry_off = 0, val_off = 0, entry_end = 0;
  EventMember key = kOtherKey;  // at the event's own level
  bool dead = false;            // replaced by the collector's value
};

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

class BatchSax {
 public:
  BatchSax(const wire::Limits& limits, int64_t received_ms, const TimeWindow& window, bool insight_fields,
           ParsedBatch* out)
      : limits_(limits),
        max_depth_(wire::BodyLimits(limits).max_depth),
        received_ms_(received_ms),
        window_(window),
        insight_fields_(insight_fields),
        received_iso_(base::FormatIso8601(received_ms)),
        out_(out) {}

  // After a successful parse: the envelope's own checks. False declines the batch.
  bool Finish() {
    if (declined_ || !batch_seen_) return false;
    std::sort(dropped_.begin(), dropped_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 0; i + 1 < dropped_.size(); ++i) {
      if (dropped_[i].first == dropped_[i + 1].first) return false;
    }
    // As the document path reads them: in key order, stopping at the first key out of bounds.
    for (const auto& [k, v] : dropped_) {
      if (out_->dropped.size() >= 32 || k.empty() || k.size() > 64) break;
      if (v.kind == Kind::kUint && v.u <= (uint64_t{1} << 53)) {
        out_->dropped[k] = static_cast<int64_t>(v.u);
      } else if ((v.kind == Kind::kUint && static_cast<int64_t>(v.u) >= 0) || (v.kind == Kind::kInt && v.i >= 0)) {
        out_->dropped[k] = v.kind == Kind::kUint ? static_cast<int64_t>(v.u) : v.i;
      }
    }
    return true;
  }

  // ---- RapidJSON SAX interface (kParseNumbersAsStringsFlag: numbers come as their text) ------------------------
  bool Null() { return null(); }
  bool Bool(bool v) { return boolean(v); }
  bool Int(int) { return Decline(); }  // not called: numbers come as RawNumber
  bool Uint(unsigned) { return Decline(); }
  bool Int64(int64_t) { return Decline(); }
  bool Uint64(uint64_t) { return Decline(); }
  bool Double(double) { return Decline(); }
  // A number as nlohmann's parser reads it (base::ReadJsonNumber); beyond a double's range the document path refuses.
  bool RawNumber(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    const base::JsonNumber v = base::ReadJsonNumber(std::string_view(s, n));
    switch (v.kind) {
      case base::JsonNumber::Kind::kInteger: return Integer(v.i);
      case base::JsonNumber::Kind::kUnsigned: return Integer(v.u);
      case base::JsonNumber::Kind::kFloat: return number_float(v.d);
      case base::JsonNumber::Kind::kRefused: break;
    }
    return Decline();
  }
  // Strings and keys decoded; RapidJSON 1.1 lets raw bytes that are not UTF-8 and a lone low surrogate (\udc00)
  // through, which nlohmann refuses: the document path decides those.
  bool String(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    std::string_view v(s, n);
    if (!base::IsValidUtf8(v)) return Decline();
    return string(v);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    std::string_view k(s, n);
    if (!base::IsValidUtf8(k)) return Decline();
    return key(k);
  }
  bool StartObject() { return Start(true); }
  bool EndObject(rapidjson::SizeType /*members*/) { return End(); }
  bool StartArray() { return Start(false); }
  bool EndArray(rapidjson::SizeType /*elements*/) { return End(); }

 private:
  bool null() {
    Field* f = ScalarField();
    if (f != nullptr) f->kind = Kind::kNull;
    return Scalar("null");
  }
  bool boolean(bool v) {
    Field* f = ScalarField();
    if (f != nullptr) f->kind = Kind::kBool;
    return Scalar(v ? "true" : "false");
  }
  bool number_float(double v) {
    if (Field* f = ScalarField()) f->kind = Kind::kFloat;
    // As nlohmann's dump prints a number (the parser refuses what is not finite).
    if (!std::isfinite(v)) return Scalar("null");
    std::array<char, 64> b{};
    char* end = nlohmann::detail::to_chars(b.data(), b.data() + b.size(), v);
    return Scalar(std::string_view(b.data(), static_cast<size_t>(end - b.data())));
  }
  bool string(std::string_view v) {
    if (Field* f = ScalarField()) {
      f->kind = Kind::kString;
      f->s.assign(v);
    } else if (in_event_) {
      ReadNestedString(v);
    }
    if (in_event_) {
      BeforeValue();
      base::AppendJsonString(&buf_, v);
      return AfterValue();
    }
    if (frames_.size() == 1 && pending_key_ == "sentAt") {
      // The skew must be known before the first event: found first in the text, or by the scan before the pass.
      if (prescanned_) {
        if (!sent_at_ || *sent_at_ != v) return Decline();
      } else {
        if (batch_seen_) return Decline();
        SetSentAt(v);
      }
    }
    return EnvelopeScalar();
  }
  bool key(std::string_view k) {
    Frame& fr = frames_.back();
    ++fr.count;
    if (in_event_) {
      Member& m = BeginMember(k);
      if (fr.tag == Tag::kEvent) {
        m.key = EventKey(k);
        current_key_ = m.key;
      }
      pending_key_ = k;
      return true;
    }
    pending_key_ = k;
    if (fr.tag == Tag::kEnvelope) {
      // The envelope's members the document path reads: each once (a second one would change which one counts).
      int* seen = k == "batch" ? &seen_batch_ : k == "sentAt" ? &seen_sent_ : k == "dropped" ? &seen_dropped_ : nullptr;
      if (seen != nullptr && ++*seen > 1) return Decline();
    } else if (fr.tag == Tag::kDropped) {
      dropped_.emplace_back(k, DroppedValue());
    }
    return true;
  }

  struct DroppedValue {
    Kind kind = Kind::kAbsent;
    int64_t i = 0;
    uint64_t u = 0;
  };

  bool Decline() {
    declined_ = true;
    return false;
  }

  // An integer: read when it is an event's member or a dropped counter, written as nlohmann's dump writes it.
  template <typename T>
  bool Integer(T v) {
    auto read = [v](auto* x) {
      if constexpr (std::is_signed<T>::value) {
        x->kind = Kind::kInt;
        x->i = v;
      } else {
        x->kind = Kind::kUint;
        x->u = v;
      }
    };
    if (Field* f = ScalarField()) read(f);
    if (DroppedValue* d = DroppedField()) read(d);
    char b[24];
    auto r = std::to_chars(b, b + sizeof b, v);
    return Scalar(std::string_view(b, static_cast<size_t>(r.ptr - b)));
  }

  // The event-level field a scalar arriving now belongs to, or null.
  Field* ScalarField() {
    if (!in_event_ || frames_.back().tag != Tag::kEvent || current_key_ == kOtherKey) return nullptr;
    return &fields_[current_key_];
  }
  DroppedValue* DroppedField() {
    if (in_event_ || frames_.empty() || frames_.back().tag != Tag::kDropped || dropped_.empty()) return nullptr;
    return &dropped_.back().second;
  }

  // Strings the insight reads from the context (sessionId, channel, app.name, campaign.source, campaign.name).
  void ReadNestedString(std::string_view v) {
    if (!in_event_ || !insight_fields_) return;
    switch (frames_.back().tag) {
      case Tag::kContext:
        if (pending_key_ == "sessionId") session_id_ = v;
        if (pending_key_ == "channel") channel_ = v;
        break;
      case Tag::kApp:
        if (pending_key_ == "name") app_name_ = v;
        break;
      case Tag::kCampaign:
        if (pending_key_ == "source") campaign_source_ = v;
        if (pending_key_ == "name") campaign_name_ = v;
        break;
      default: break;
    }
  }

  // A scalar outside every event: the envelope's sentAt, the dropped counters, or ignored. Inside the batch array
  // only objects are events the pass takes.
  bool EnvelopeScalar() {
    if (frames_.empty()) return Decline();  // the body is not an object
    const Frame& fr = frames_.back();
    if (fr.tag == Tag::kBatch) return Decline();
    if (fr.tag == Tag::kEnvelope && pending_key_ == "batch") return Decline();  // batch is not an array
    return true;
  }

  bool Scalar(std::string_view text) {
    if (!in_event_) return EnvelopeScalar();
    if (!BeforeValue()) return false;
    buf_.append(text);
    return AfterValue();
  }

  // Inside an event: the comma between array elements.
  bool BeforeValue() {
    Frame& fr = frames_.back();
    if (!fr.object) {
      if (fr.count++ > 0) buf_.push_back(',');
    }
    return true;
  }
  bool AfterValue() {
    Frame& fr = frames_.back();
    if (fr.object) members_.back().entry_end = buf_.size();
    return true;
  }

  bool Start(bool object) {
    if (frames_.size() + 1 > max_depth_) return Decline();  // the document path refuses it: "nested too deeply"
    Frame f;
    f.object = object;
    if (frames_.empty()) {
      if (!object) return Decline();
      f.tag = Tag::kEnvelope;
      frames_.push_back(f);
      return true;
    }
    const Frame& parent = frames_.back();
    if (!in_event_) {
      if (parent.tag == Tag::kBatch) {
        if (!object) return Decline();
        if (++events_seen_ > limits_.max_batch_events) return Decline();
        return StartEvent();
      }
      if (parent.tag == Tag::kEnvelope && pending_key_ == "batch") {
        if (object) return Decline();
        batch_seen_ = true;
        f.tag = Tag::kBatch;
      } else if (parent.tag == Tag::kEnvelope && pending_key_ == "dropped" && object) {
        f.tag = Tag::kDropped;
      }
      frames_.push_back(f);
      return true;
    }
    // Inside an event.
    BeforeValue();
    if (parent.tag == Tag::kEvent && current_key_ != kOtherKey) {
      fields_[current_key_].kind = object ? Kind::kObject : Kind::kArray;
    }
    if (object && parent.object) {
      if (parent.tag == Tag::kEvent) {
        if (current_key_ == kProperties) f.tag = Tag::kProperties;
        if (current_key_ == kTraits) f.tag = Tag::kTraits;
        if (current_key_ == kContext) f.tag = Tag::kContext;
      } else if (parent.tag == Tag::kContext) {
        if (pending_key_ == "app") f.tag = Tag::kApp;
        if (pending_key_ == "campaign") f.tag = Tag::kCampaign;
      }
    }
    f.text_start = buf_.size();
    f.members_begin = members_.size();
    buf_.push_back(object ? '{' : '[');
    frames_.push_back(f);
    // Depths as JsonDepth counts them: the event's own, and that of the event's member being read.
    size_t rel = frames_.size() - 1 - event_level_;  // 1 for a member of the event
    if (rel + 1 > event_depth_) event_depth_ = rel + 1;
    if (current_key_ != kOtherKey && rel > fields_[current_key_].depth) {
      fields_[current_key_].depth = rel;
    }
    return true;
  }

  bool StartEvent() {
    in_event_ = true;
    buf_.clear();
    members_.clear();
    for (Field& f : fields_) {
      f.kind = Kind::kAbsent;
      f.depth = 0;
    }
    current_key_ = kOtherKey;
    event_depth_ = 1;
    props_flat_.assign("{}");
    traits_.clear();
    session_id_.clear();
    channel_.clear();
    app_name_.clear();
    campaign_source_.clear();
    campaign_name_.clear();
    Frame f;
    f.object = true;
    f.tag = Tag::kEvent;
    f.text_start = 0;
    f.members_begin = 0;
    buf_.push_back('{');
    frames_.push_back(f);
    event_level_ = frames_.size() - 1;
    return true;
  }

  // The object's members in key order (as std::map orders them), `dup` set when a key comes twice.
  void SortedMembers(size_t begin, bool* dup) {
    order_.clear();
    for (size_t i = begin; i < members_.size(); ++i) {
      if (!members_[i].dead) order_.push_back(i);
    }
    if (order_.size() <= 32) {
      InsertionSort(1);  // stable, and no allocation for the small objects events are made of
    } else {
      std::stable_sort(order_.begin(), order_.end(), [this](size_t a, size_t b) { return KeyLess(a, b); });
    }
    *dup = HasRepeatedKey();
  }
  // After SortedMembers(0, ...) and AddMember: the same order with the dead members left out and the members from
  // `added` on put in their places (the sorted part is not sorted again).
  void ResortAfterAdding(size_t added, bool* dup) {
    size_t n = 0;
    for (size_t m : order_) {
      if (!members_[m].dead) order_[n++] = m;
    }
    order_.resize(n);
    for (size_t i = added; i < members_.size(); ++i) order_.push_back(i);
    InsertionSort(n == 0 ? 1 : n);
    *dup = HasRepeatedKey();
  }
  // Insertion sort of order_, whose elements before `sorted` are in order already.
  void InsertionSort(size_t sorted) {
    for (size_t i = sorted; i < order_.size(); ++i) {
      size_t v = order_[i];
      size_t j = i;
      for (; j > 0 && KeyLess(v, order_[j - 1]); --j) order_[j] = order_[j - 1];
      order_[j] = v;
    }
  }
  bool HasRepeatedKey() const {
    for (size_t i = 0; i + 1 < order_.size(); ++i) {
      if (KeyOf(order_[i]) == KeyOf(order_[i + 1])) return true;
    }
    return false;
  }
  // Byte order of the keys, as std::string orders them: the first bytes decide most pairs without a memcmp call.
  bool KeyLess(size_t a, size_t b) const {
    const Member& x = members_[a];
    const Member& y = members_[b];
    if (!x.key_text.empty() && !y.key_text.empty()) {
      const auto cx = static_cast<unsigned char>(x.key_text[0]);
      const auto cy = static_cast<unsigned char>(y.key_text[0]);
      if (cx != cy) return cx < cy;
    }
    return KeyOf(a) < KeyOf(b);
  }
  std::string_view KeyOf(size_t m) const { return members_[m].key_text; }
  std::string_view EntryOf(size_t m) const {
    const Member& x = members_[m];
    return std::string_view(buf_).substr(x.entry_off, x.entry_end - x.entry_off);
  }

  bool End() {
    Frame fr = frames_.back();
    if (!in_event_) {
      frames_.pop_back();
      return true;
    }
    if (fr.tag == Tag::kEvent) return EndEvent();
    if (!fr.object) {
      buf_.push_back(']');
    } else {
      bool dup = false;
      SortedMembers(fr.members_begin, &dup);
      if (dup) return Decline();
      tmp_.assign("{");
      for (size_t k = 0; k < order_.size(); ++k) {
        if (k > 0) tmp_.push_back(',');
        tmp_.append(EntryOf(order_[k]));
      }
      tmp_.push_back('}');
      if (fr.tag == Tag::kProperties && insight_fields_) {
        // The top-level string, number and boolean properties whose keys hold neither '"' nor '\' (insight_fields.h).
        props_flat_.assign("{");
        bool first = true;
        for (size_t m : order_) {
          char c = buf_[members_[m].val_off];
          if (c == 'n' || c == '{' || c == '[') continue;
          std::string_view k = KeyOf(m);
          if (k.find('"') != std::string_view::npos || k.find('\\') != std::string_view::npos) continue;
          if (!first) props_flat_.push_back(',');
          first = false;
          props_flat_.append(EntryOf(m));
        }
        props_flat_.push_back('}');
      }
      if (fr.tag == Tag::kTraits && !order_.empty()) traits_ = tmp_;
      members_.resize(fr.members_begin);
      buf_.resize(fr.text_start);
      buf_.append(tmp_);
    }
    frames_.pop_back();
    return AfterValue();
  }

  static bool CheckString(const Field& f, size_t max, bool required) {
    if (f.kind == Kind::kAbsent || f.kind == Kind::kNull) return !required;
    return f.kind == Kind::kString && wire::CheckIdText(f.s, max).empty();
  }

  // wire::ValidateEvent's rules on what the pass read (its `limits.max_event_bytes == SIZE_MAX`: the size is checked
  // on the stored form). A consent event is the document path's.
  bool Valid() const {
    const Field& mid = fields_[kMessageId];
    if (mid.kind != Kind::kString || !wire::CheckIdText(mid.s, SIZE_MAX).empty() || CodePoints(mid.s) > 64) {
      return false;
    }
    const Field& ty = fields_[kType];
    if (ty.kind != Kind::kString) return false;
    const std::string& type = ty.s;
    if (type != wire::kTrack && type != wire::kIdentify && type != wire::kScreen && type != wire::kAlias) return false;
    if (type == wire::kTrack && !CheckString(fields_[kEvent], limits_.max_name_bytes, true)) return false;
    if (type == wire::kScreen && !CheckString(fields_[kName], limits_.max_name_bytes, true)) return false;
    if (!CheckString(fields_[kUserId], limits_.max_name_bytes, false)) return false;
    if (!CheckString(fields_[kAnonymousId], limits_.max_name_bytes, false)) return false;
    if (fields_[kUserId].kind != Kind::kString && fields_[kAnonymousId].kind != Kind::kString) return false;
    const Field& ts = fields_[kTimestamp];
    if (ts.kind != Kind::kString || !base::ParseIso8601(ts.s)) return false;
    const Field& pu = fields_[kPurpose];
    if (pu.kind != Kind::kString || !wire::IsValidPurpose(pu.s)) return false;
    for (EventMember k : {kProperties, kTraits, kContext}) {
      const Field& f = fields_[k];
      if (f.kind == Kind::kAbsent || f.kind == Kind::kNull) continue;
      if (f.kind != Kind::kObject || f.depth > limits_.max_depth) return false;
    }
    if (!CheckString(fields_[kConsentReceipt], limits_.max_name_bytes, false)) return false;
    const Field& ds = fields_[kDeviceSeq];
    if (ds.kind != Kind::kAbsent && ds.kind != Kind::kNull) {
      const bool positive =
          (ds.kind == Kind::kInt && ds.i > 0) || (ds.kind == Kind::kUint && static_cast<int64_t>(ds.u) > 0);
      if (!positive) return false;
    }
    if (type == wire::kAlias) {
      if (!CheckString(fields_[kPreviousId], limits_.max_name_bytes, true)) return false;
      if (fields_[kUserId].kind != Kind::kString) return false;
    }
    return event_depth_ <= limits_.max_depth + 1;
  }

  const std::string& StringOr(EventMember k) const {
    static const std::string kEmpty;
    return fields_[k].kind == Kind::kString ? fields_[k].s : kEmpty;
  }

  // A member of an object inside the event: its key kept raw and written as `"key":`; its value comes next.
  Member& BeginMember(std::string_view key) {
    Member m;
    m.key_text = key;
    m.entry_off = buf_.size();
    base::AppendJsonString(&buf_, key);
    buf_.push_back(':');
    m.val_off = buf_.size();
    members_.push_back(m);
    return members_.back();
  }

  // A member the collector adds to the stored event.
  void AddMember(std::string_view key, std::string_view value) {
    BeginMember(key);
    base::AppendJsonString(&buf_, value);
    members_.back().entry_end = buf_.size();
  }

  bool EndEvent() {
    frames_.pop_back();
    in_event_ = false;
    bool dup = false;
    SortedMembers(0, &dup);
    if (dup || !Valid()) return Decline();

    StoredEvent se;
    se.message_id = fields_[kMessageId].s;
    se.type = fields_[kType].s;
    se.user_id = StringOr(kUserId);
    se.anonymous_id = StringOr(kAnonymousId);
    if (se.type == wire::kTrack) se.name = StringOr(kEvent);
    if (se.type == wire::kScreen) se.name = StringOr(kName);
    se.purpose = fields_[kPurpose].s;
    const std::string& ts = fields_[kTimestamp].s;
    const int64_t ts_ms = base::ParseIso8601(ts).value_or(0);  // validated above
    se.received_ms = received_ms_;
    const char* clamped = nullptr;
    se.timestamp_ms = PlaceEventTime(ts_ms, skew_corrected_, skew_ms_, received_ms_, window_, &clamped);

    // The stored form: the client's members, with the collector's replacing theirs, as the document path sets them.
    const size_t client_members = members_.size();
    auto kill = [this, client_members](EventMember k) {
      for (size_t i = 0; i < client_members; ++i) {
        if (members_[i].key == k) members_[i].dead = true;
      }
    };
    if (se.timestamp_ms != ts_ms) {
      kill(kOriginalTimestamp);
      kill(kTimestamp);
      AddMember("originalTimestamp", ts);
      AddMember("timestamp", base::FormatIso8601(se.timestamp_ms));
    }
    if (clamped != nullptr) {
      kill(kTimestampClamped);
      AddMember("timestampClamped", clamped);
      ++out_->clamped;
    }
    kill(kReceivedAt);
    AddMember("receivedAt", received_iso_);
    ResortAfterAdding(client_members, &dup);
    if (dup) return Decline();
    size_t size = 2 + (order_.empty() ? 0 : order_.size() - 1);
    for (size_t m : order_) size += members_[m].entry_end - members_[m].entry_off;
    constexpr size_t kAddedBytes = 96;  // as the document path allows
    if (size > limits_.max_event_bytes + kAddedBytes) return Decline();
    se.body.reserve(size);
    se.body.push_back('{');
    for (size_t k = 0; k < order_.size(); ++k) {
      if (k > 0) se.body.push_back(',');
      se.body.append(EntryOf(order_[k]));
    }
    se.body.push_back('}');

    se.consent_receipt = StringOr(kConsentReceipt);
    const Field& ds = fields_[kDeviceSeq];
    if (ds.kind == Kind::kInt && ds.i > 0) se.device_seq = ds.i;
    if (ds.kind == Kind::kUint && static_cast<int64_t>(ds.u) > 0) se.device_seq = static_cast<int64_t>(ds.u);
    if (se.type == wire::kAlias) se.previous_id = StringOr(kPreviousId);
    if (se.type == wire::kIdentify) se.traits = traits_;
    if (insight_fields_ && (se.type == wire::kTrack || se.type == wire::kScreen)) {
      StoredEvent::InsightFields& f = se.insight;
      f.set = true;
      f.props = props_flat_;
      f.session_id = session_id_;
      f.channel = channel_;
      f.app_name = app_name_;
      f.campaign_source = campaign_source_;
      f.campaign_name = campaign_name_;
    }
    out_->events.push_back(std::move(se));
    return true;
  }

 public:
  // sentAt found by the scan before the pass (the body does not begin with it).
  void Prescanned(std::optional<std::string_view> sent_at) {
    prescanned_ = true;
    if (sent_at) {
      sent_at_ = std::string(*sent_at);
      SetSentAt(*sent_at_);
    }
  }

 private:
  void SetSentAt(std::string_view v) {
    if (auto sent_ms = base::ParseIso8601(v)) {
      skew_corrected_ = true;
      skew_ms_ = received_ms_ - *sent_ms;
      out_->skew_corrected = true;
      out_->skew_ms = skew_ms_;
    }
  }

  bool prescanned_ = false;
  std::optional<std::string> sent_at_;
  bool skew_corrected_ = false;
  int64_t skew_ms_ = 0;
  const wire::Limits& limits_;
  const size_t max_depth_;
  const int64_t received_ms_;
  const TimeWindow& window_;
  const bool insight_fields_;
  const std::string received_iso_;
  ParsedBatch* out_;

  bool declined_ = false;
  bool batch_seen_ = false;
  int seen_batch_ = 0, seen_sent_ = 0, seen_dropped_ = 0;
  size_t events_seen_ = 0;
  // The last key read: a view of the text the reader decodes in place, where it stays until the pass ends.
  std::string_view pending_key_;
  std::vector<Frame> frames_;
  std::vector<std::pair<std::string, DroppedValue>> dropped_;

  // The event being read.
  bool in_event_ = false;
  size_t event_level_ = 0;  // its index in frames_
  EventMember current_key_ = kOtherKey;
  size_t event_depth_ = 0;
  std::array<Field, kKeyCount> fields_;
  std::string buf_, tmp_;
  std::vector<Member> members_;
  std::vector<size_t> order_;
  std::string props_flat_, traits_;
  std::string session_id_, channel_, app_name_, campaign_source_, campaign_name_;
};

// The envelope's sentAt as written (between its quotes), found by a scan of the raw text for a key "sentAt" at the
// envelope's level: for bodies that do not begin with it (nlohmann's dump puts it after the batch). False when the
// scan cannot tell (an escaped key or value at that level, an unterminated string): the batch goes to the document.
bool ScanSentAt(std::string_view t, std::optional<std::string_view>* value) {
  size_t depth = 0;
  bool expect_key = false;
  auto skip_ws = [&t](size_t i) {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
    return i;
  };
  // [i] is a '"': the end of the string (its closing quote), npos when unterminated; *escaped when it holds a '\\'.
  auto string_end = [&t](size_t i, bool* escaped) {
    *escaped = false;
    for (size_t j = i + 1; j < t.size(); ++j) {
      if (t[j] == '\\') {
        *escaped = true;
        ++j;
      } else if (t[j] == '"') {
        return j;
      }
    }
    return std::string_view::npos;
  };
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c == '"') {
      bool escaped = false;
      size_t end = string_end(i, &escaped);
      if (end == std::string_view::npos) return false;
      if (depth == 1 && expect_key) {
        expect_key = false;
        if (escaped) return false;
        if (t.substr(i + 1, end - i - 1) == "sentAt") {
          size_t k = skip_ws(end + 1);
          if (k >= t.size() || t[k] != ':') return false;
          k = skip_ws(k + 1);
          if (k < t.size() && t[k] == '"') {
            size_t vend = string_end(k, &escaped);
            if (vend == std::string_view::npos || escaped) return false;
            *value = t.substr(k + 1, vend - k - 1);
          }
          return true;
        }
      }
      i = end;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
      expect_key = depth == 1 && c == '{';
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
    } else if (c == ',' && depth == 1) {
      expect_key = true;
    }
  }
  return true;
}

}  // namespace

// The deepest body limit read recursively (Limits::max_depth 32 gives 43).
constexpr size_t kMaxDepthRecursive = 128;

bool ParseBatchStreaming(std::string_view text, const wire::Limits& limits, int64_t received_ms,
                         const TimeWindow& window, bool insight_fields, ParsedBatch* out) {
  if (text.size() > wire::BodyLimits(limits).max_bytes) return false;
  // RapidJSON's stream ends the input at a NUL byte: a body holding one goes to the document path, which refuses it.
  if (text.find('\0') != std::string_view::npos) return false;
  ParsedBatch p;
  // Room for the events at once (a StoredEvent is some thirty strings, each moved again at every regrowth): an
  // event the SDKs send is 300-800 bytes of text, so one per 256 bytes is rarely short, and bounded by the batch limit.
  // (Counting the "messageId" keys instead cost a fifth of the pass: '"' is everywhere in JSON.)
  p.events.reserve(std::min(limits.max_batch_events, text.size() / 256 + 1));
  BatchSax sax(limits, received_ms, window, insight_fields, &p);
  constexpr std::string_view kSentAtFirst = "{\"sentAt\":";
  if (text.substr(0, kSentAtFirst.size()) != kSentAtFirst) {
    std::optional<std::string_view> sent_at;
    if (!ScanSentAt(text, &sent_at)) return false;
    sax.Prescanned(sent_at);
  }
  // Read in place: RapidJSON decodes each string over its own text in a copy of the body, where it used to push every
  // byte onto its stack (the body stays unchanged for the document path, which takes a batch the pass declines).
  std::string copy(text);
  rapidjson::InsituStringStream in(copy.data());  // NUL-terminated: the copy's own end
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::Reader reader;
  // Recursive, as Start declines the first level deeper than the limit (the reader then stops): under the usual
  // limits a few dozen frames of the call stack. A limit set higher reads iteratively, on the reader's heap stack.
  const bool read = wire::BodyLimits(limits).max_depth <= kMaxDepthRecursive
                        ? !reader.Parse<kFlags>(in, sax).IsError()
                        : !reader.Parse<kFlags | rapidjson::kParseIterativeFlag>(in, sax).IsError();
  if (!read || !sax.Finish()) return false;
  *out = std::move(p);
  return true;
}

}  // namespace ferry::collector
