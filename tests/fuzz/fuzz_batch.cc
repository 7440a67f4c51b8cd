// libFuzzer target: request bodies through the collector's ingest path (decode -> JSON parse -> validation ->
// preparation), exactly the code the POST /v1/batch handler runs (collector/ingest/ingest.h).
// Input: byte 0 picks the encoding (0 identity, 1 zstd as sent, 2 gzip as sent, 3 identity JSON compressed with zstd
// first so that the fuzzer reaches the JSON layer through the zstd decoder); bit 2 of byte 0 asks for the fields the
// insight reads (ParseBatch's insight_fields, as when the collector runs with --insight); the rest is the body.
// ParseBatch takes most batches in one SAX pass and the rest through a document: every input is also read through the
// document alone (ParseBatchWithDocument), and the two results must be the same, field by field.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "collector/ingest/ingest.h"
#include "lib/wire/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  ferry::wire::Limits limits;
  limits.max_decompressed_bytes = 1 << 20;  // keep iterations fast; the logic is the same
  ferry::wire::Encoding enc = ferry::wire::Encoding::kIdentity;
  std::string compressed;
  switch (data[0] % 4) {
    case 0: break;
    case 1: enc = ferry::wire::Encoding::kZstd; break;
    case 2: enc = ferry::wire::Encoding::kGzip; break;
    case 3:
      compressed = ferry::wire::ZstdCompress(body, 1);
      body = compressed;
      enc = ferry::wire::Encoding::kZstd;
      break;
  }
  const bool insight_fields = (data[0] & 4) != 0;
  ferry::collector::ParsedBatch p =
      ferry::collector::ParseBatch(enc, body, limits, 1767225600000, ferry::collector::TimeWindow(), insight_fields);
  const ferry::collector::ParsedBatch d = ferry::collector::ParseBatchWithDocument(
      enc, body, limits, 1767225600000, ferry::collector::TimeWindow(), insight_fields);
  if (p.status != d.status || p.error != d.error || p.skew_corrected != d.skew_corrected || p.skew_ms != d.skew_ms ||
      p.clamped != d.clamped || p.dropped != d.dropped || p.rejected.size() != d.rejected.size() ||
      p.events.size() != d.events.size()) {
    __builtin_trap();
  }
  for (size_t i = 0; i < p.rejected.size(); ++i) {
    const auto& a = p.rejected[i];
    const auto& b = d.rejected[i];
    if (a.index != b.index || a.message_id != b.message_id || a.reason != b.reason) __builtin_trap();
  }
  for (size_t i = 0; i < p.events.size(); ++i) {
    const auto& a = p.events[i];
    const auto& b = d.events[i];
    if (a.body != b.body || a.message_id != b.message_id || a.type != b.type || a.user_id != b.user_id ||
        a.anonymous_id != b.anonymous_id || a.name != b.name || a.purpose != b.purpose ||
        a.timestamp_ms != b.timestamp_ms || a.device_seq != b.device_seq || a.consent_receipt != b.consent_receipt ||
        a.previous_id != b.previous_id || a.traits != b.traits || a.device != b.device ||
        a.consent_purpose != b.consent_purpose || a.consent_state != b.consent_state ||
        a.insight.set != b.insight.set || a.insight.props != b.insight.props ||
        a.insight.session_id != b.insight.session_id || a.insight.channel != b.insight.channel ||
        a.insight.app_name != b.insight.app_name || a.insight.campaign_source != b.insight.campaign_source ||
        a.insight.campaign_name != b.insight.campaign_name) {
      __builtin_trap();
    }
  }
  if (p.status == 200) {
    // Everything prepared must be storable as-is and every answer must be valid JSON.
    for (const auto& e : p.events) {
      if (e.message_id.empty() || e.body.empty()) __builtin_trap();
      // The insight's fields for every track and screen event, the properties as a JSON object's text.
      const bool activity = e.type == "track" || e.type == "screen";
      if (e.insight.set != (insight_fields && activity)) __builtin_trap();
      if (e.insight.set && !nlohmann::json::parse(e.insight.props, nullptr, false).is_object()) __builtin_trap();
    }
    std::string answer = ferry::collector::BatchAnswer(static_cast<int64_t>(p.events.size()), 0, 0, p.rejected);
    if (nlohmann::json::parse(answer, nullptr, false).is_discarded()) __builtin_trap();
  }
  return 0;
}
