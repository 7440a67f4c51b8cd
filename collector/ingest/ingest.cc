#include "collector/ingest/ingest.h"

#include <utility>

#include "collector/ingest/batch_stream.h"
#include "collector/ingest/insight_fields.h"
#include "lib/base/time.h"
#include "lib/wire/json_body.h"

namespace ferry::collector {

namespace {

using wire::Json;

std::string StringOr(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

constexpr int64_t kFirstStorableMs = -62167219200000LL;  // 0000-01-01T00:00:00.000Z
constexpr int64_t kLastStorableMs = 253402300799999LL;   // 9999-12-31T23:59:59.999Z

}  // namespace

int64_t PlaceEventTime(int64_t ts_ms, bool skew_corrected, int64_t skew_ms, int64_t received_ms,
                       const TimeWindow& window, const char** clamped) {
  int64_t ms = skew_corrected ? ts_ms + skew_ms : ts_ms;
  *clamped = nullptr;
  // The device's clock never decides where an event lands in time: outside the window it is clamped and flagged.
  if (window.max_past_ms > 0 && ms < received_ms - window.max_past_ms) {
    ms = received_ms - window.max_past_ms;
    *clamped = "past";
  } else if (window.max_future_ms > 0 && ms > received_ms + window.max_future_ms) {
    ms = received_ms + window.max_future_ms;
    *clamped = "future";
  }
  // Whatever the window, a stored time is one Ferry's parser reads back (years 0000-9999).
  if (ms < kFirstStorableMs) {
    ms = kFirstStorableMs;
    *clamped = "past";
  } else if (ms > kLastStorableMs) {
    ms = kLastStorableMs;
    *clamped = "future";
  }
  return ms;
}

namespace {

// Decodes the body into *text when it is not identity (or too large for it): *body then points at *text.
bool DecodeBody(wire::Encoding enc, std::string_view* body, const wire::Limits& limits, std::string* text,
                ParsedBatch* out) {
  if (enc == wire::Encoding::kIdentity && body->size() <= limits.max_decompressed_bytes) return true;
  switch (wire::Decode(enc, *body, limits.max_decompressed_bytes, text)) {
    case wire::DecodeResult::kOk: *body = *text; return true;
    case wire::DecodeResult::kTooLarge:
      out->status = 413;
      out->error = "decoded body too large";
      return false;
    case wire::DecodeResult::kCorrupt:
      out->status = 400;
      out->error = "body cannot be decoded";
      return false;
    case wire::DecodeResult::kUnknownEncoding:
      out->status = 415;
      out->error = "unsupported content encoding";
      return false;
  }
  return true;
}

// `body` is the decoded text (in *text when it was decoded), freed once the document is built.
ParsedBatch ParseDecoded(std::string_view body, std::string* text, const wire::Limits& limits, int64_t received_ms,
                         const TimeWindow& window, bool insight_fields) {
  ParsedBatch out;
  auto fail = [&out](int status, std::string error) {
    out.status = status;
    out.error = std::move(error);
    out.events.clear();
    out.rejected.clear();
    return out;
  };

  // The one body parser: hostile nesting is refused before anything is built (events deeper than their own limit are
  // rejected one by one below).
  auto parsed = wire::ParseJson(body, wire::BodyLimits(limits));
  body = {};
  text->clear();
  text->shrink_to_fit();
  if (!parsed.ok()) {
    return fail(parsed.status().code() == base::Code::kResourceExhausted ? 413 : 400, parsed.status().message());
  }
  Json doc = std::move(parsed).value();
  if (!doc.is_object()) return fail(400, "body is not a JSON object");
  auto batch_it = doc.find("batch");
  if (batch_it == doc.end() || !batch_it->is_array()) return fail(400, "missing batch array");
  Json& batch = *batch_it;
  if (batch.size() > limits.max_batch_events) return fail(413, "too many events in the batch");

  auto sent = doc.find("sentAt");
  if (sent != doc.end() && sent->is_string()) {
    if (auto sent_ms = base::ParseIso8601(sent->get_ref<const std::string&>())) {
      out.skew_corrected = true;
      out.skew_ms = received_ms - *sent_ms;
    }
  }

  auto dropped = doc.find("dropped");
  if (dropped != doc.end() && dropped->is_object()) {
    for (const auto& [k, v] : dropped->items()) {
      if (out.dropped.size() >= 32 || k.empty() || k.size() > 64) break;
      if (v.is_number_unsigned() && v.get<uint64_t>() <= (uint64_t{1} << 53)) {
        out.dropped[k] = static_cast<int64_t>(v.get<uint64_t>());
      } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
        out.dropped[k] = v.get<int64_t>();
      }
    }
  }

  const std::string received_iso = base::FormatIso8601(received_ms);
  // The size limit is checked on the stored form (serialised once, below) rather than on the event as sent.
  wire::Limits shape_limits = limits;
  shape_limits.max_event_bytes = SIZE_MAX;
  // Fields the collector adds (receivedAt, originalTimestamp) may take a stored event slightly over the limit.
  constexpr size_t kAddedBytes = 96;
  out.events.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    Json& ev = batch[i];
    std::string reason = wire::ValidateEvent(ev, shape_limits);
    if (!reason.empty()) {
      out.rejected.push_back({i, ev.is_object() ? StringOr(ev, "messageId") : std::string(), std::move(reason)});
      continue;
    }
    StoredEvent se;
    se.message_id = ev["messageId"].get<std::string>();
    se.type = ev["type"].get<std::string>();
    se.user_id = StringOr(ev, "userId");
    se.anonymous_id = StringOr(ev, "anonymousId");
    if (se.type == wire::kTrack) se.name = StringOr(ev, "event");
    if (se.type == wire::kScreen) se.name = StringOr(ev, "name");
    se.purpose = StringOr(ev, "purpose");
    std::string ts = ev["timestamp"].get<std::string>();
    int64_t ts_ms = base::ParseIso8601(ts).value_or(0);  // validated above
    se.received_ms = received_ms;
    const char* clamped = nullptr;
    se.timestamp_ms = PlaceEventTime(ts_ms, out.skew_corrected, out.skew_ms, received_ms, window, &clamped);
    if (se.timestamp_ms != ts_ms) {
      ev["originalTimestamp"] = ts;
      ev["timestamp"] = base::FormatIso8601(se.timestamp_ms);
    }
    if (clamped != nullptr) {
      ev["timestampClamped"] = clamped;
      ++out.clamped;
    }
    ev["receivedAt"] = received_iso;
    se.consent_receipt = StringOr(ev, "consentReceipt");
    if (auto ds = ev.find("deviceSeq"); ds != ev.end() && ds->is_number_integer() && ds->get<int64_t>() > 0) {
      se.device_seq = ds->get<int64_t>();
    }
    if (se.type == wire::kConsent) {
      const Json& p = ev["properties"];
      se.consent_purpose = StringOr(p, "purpose");
      se.consent_state = StringOr(p, "state");
      se.consent_previous = StringOr(p, "previous");
      se.consent_method = StringOr(p, "method");
      se.notice_id = StringOr(p, "noticeId");
      se.notice_version = StringOr(p, "noticeVersion");
      se.language = StringOr(p, "language");
      se.receipt_id = StringOr(p, "receiptId");
      auto seq = p.find("seq");
      if (seq != p.end() && seq->is_number_integer() && seq->get<int64_t>() > 0) se.consent_seq = seq->get<int64_t>();
      auto minor = p.find("minor");
      if (minor != p.end() && minor->is_boolean()) se.consent_minor = minor->get<bool>() ? 1 : 0;
    }
    if (se.type == wire::kAlias) se.previous_id = StringOr(ev, "previousId");
    if (se.type == wire::kIdentify) {
      auto t = ev.find("traits");
      if (t != ev.end() && t->is_object() && !t->empty()) {
        se.traits = t->dump(-1, ' ', false, Json::error_handler_t::replace);
      }
    }
    if (se.type == wire::kConsent) {
      // Where the consent was given: the device's description from the event's context (the anonymousId, kept on
      // the record, is the installation).
      auto c = ev.find("context");
      if (c != ev.end() && c->is_object()) {
        Json origin = Json::object();
        for (const char* k : {"device", "os", "app", "library", "sessionId"}) {
          auto it = c->find(k);
          if (it != c->end()) origin[k] = *it;
        }
        if (!origin.empty()) se.device = origin.dump(-1, ' ', false, Json::error_handler_t::replace);
      }
    }
    se.body = ev.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (se.body.size() > limits.max_event_bytes + kAddedBytes) {
      out.rejected.push_back({i, se.message_id, "event too large"});
      continue;
    }
    if (insight_fields) ReadInsightFields(ev, &se);
    out.events.push_back(std::move(se));
  }
  return out;
}

}  // namespace

ParsedBatch ParseBatch(wire::Encoding enc, std::string_view body, const wire::Limits& limits, int64_t received_ms,
                       const TimeWindow& window, bool insight_fields) {
  ParsedBatch out;
  std::string text;
  if (!DecodeBody(enc, &body, limits, &text, &out)) return out;
  if (ParseBatchStreaming(body, limits, received_ms, window, insight_fields, &out)) return out;
  return ParseDecoded(body, &text, limits, received_ms, window, insight_fields);
}

ParsedBatch ParseBatchWithDocument(wire::Encoding enc, std::string_view body, const wire::Limits& limits,
                                   int64_t received_ms, const TimeWindow& window, bool insight_fields) {
  ParsedBatch out;
  std::string text;
  if (!DecodeBody(enc, &body, limits, &text, &out)) return out;
  return ParseDecoded(body, &text, limits, received_ms, window, insight_fields);
}

std::string BatchAnswer(int64_t accepted, int64_t duplicate, int64_t suppressed,
                        const std::vector<Rejection>& rejected) {
  Json rej = Json::array();
  for (const Rejection& r : rejected) {
    rej.push_back({{"index", r.index}, {"messageId", r.message_id}, {"reason", r.reason}});
  }
  Json a = {{"accepted", accepted}, {"duplicate", duplicate}, {"suppressed", suppressed}, {"rejected", rej}};
  return a.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace ferry::collector
