// The ingest path of POST /v1/batch as pure functions: decode, parse, validate and prepare a batch for the store,
// then format the answer. The HTTP handler and the fuzzer (tests/fuzz/fuzz_batch.cc) call exactly this code.
#ifndef FERRY_COLLECTOR_INGEST_INGEST_H_
#define FERRY_COLLECTOR_INGEST_INGEST_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "collector/store/records.h"
#include "lib/wire/codec.h"
#include "lib/wire/event.h"

namespace ferry::collector {

// Event times are kept within a window around the time the collector received them (docs/PROTOCOL.md): an event
// whose timestamp (after the clock-skew correction) lies further back than max_past_ms or further ahead than
// max_future_ms is clamped to the window's edge and flagged ("timestampClamped": "past" or "future"), and the device's
// own value is kept as originalTimestamp. So every stored time is one Ferry's parser reads back, retention's cut on
// the event time can lag its cut on the received time by max_future_ms at most, and no device clock decides how long
// an event is kept. <= 0 turns that side's bound off.
struct TimeWindow {
  int64_t max_past_ms = 400LL * 24 * 3600 * 1000;  // 400 days: longer than the default retention (395 days)
  int64_t max_future_ms = 10LL * 60 * 1000;        // 10 minutes
};

struct Rejection {
  size_t index = 0;
  std::string message_id;  // "" when the event had no string messageId
  std::string reason;
};

// What ParseBatch made of a request body.
struct ParsedBatch {
  int status = 200;                 // 200, or 400 (cannot be decoded/parsed) / 413 (too large) / 415 (unknown encoding)
  std::string error;                // a short reason when status != 200
  std::vector<StoredEvent> events;  // the valid events, in batch order
  std::vector<Rejection> rejected;
  std::map<std::string, int64_t> dropped;  // the batch's "dropped" counters (non-negative integers only)
  bool skew_corrected = false;             // sentAt parsed: timestamps were shifted by receivedAt - sentAt
  int64_t skew_ms = 0;
  size_t clamped = 0;  // events whose timestamp was clamped into the TimeWindow
};

// Decodes `body` (max limits.max_decompressed_bytes out), parses the JSON envelope {"sentAt","batch","dropped"}
// (wire::ParseJson, the body limits), validates every event (wire::ValidateEvent) and prepares the valid ones:
// receivedAt set, timestamp corrected by the client's clock skew and kept within `window` (the original kept as
// originalTimestamp). With `insight_fields` (the collector runs the insight) every track and screen event also gets
// StoredEvent::insight (collector/ingest/insight_fields.h). Never throws; any input is safe.
// Most batches take one SAX pass that builds no document (collector/ingest/batch_stream.h); the others (anything
// refused, rejected or unusual, and consent events) are read through the document as ParseBatchWithDocument reads them,
// and both give the same result for the same body.
ParsedBatch ParseBatch(wire::Encoding enc, std::string_view body, const wire::Limits& limits, int64_t received_ms,
                       const TimeWindow& window = TimeWindow(), bool insight_fields = false);

// ParseBatch through a nlohmann document for every batch: what ParseBatch falls back to, and what the tests and the
// fuzzer compare the single pass with.
ParsedBatch ParseBatchWithDocument(wire::Encoding enc, std::string_view body, const wire::Limits& limits,
                                   int64_t received_ms, const TimeWindow& window = TimeWindow(),
                                   bool insight_fields = false);

// Where an event sent at ts_ms lands: shifted by the skew when skew_corrected, then kept within `window` and the
// storable years; *clamped is "past", "future" or null.
int64_t PlaceEventTime(int64_t ts_ms, bool skew_corrected, int64_t skew_ms, int64_t received_ms,
                       const TimeWindow& window, const char** clamped);

// The 200 answer: {"accepted","duplicate","suppressed","rejected":[{"index","messageId","reason"}]}.
std::string BatchAnswer(int64_t accepted, int64_t duplicate, int64_t suppressed,
                        const std::vector<Rejection>& rejected);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_INGEST_INGEST_H_
