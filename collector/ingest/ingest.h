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
};

// Decodes `body` (max limits.max_decompressed_bytes out), parses the JSON envelope {"sentAt","batch","dropped"},
// validates every event (wire::ValidateEvent) and prepares the valid ones: receivedAt set, timestamp corrected by
// the client's clock skew (the original kept as originalTimestamp). Never throws; any input is safe.
ParsedBatch ParseBatch(wire::Encoding enc, std::string_view body, const wire::Limits& limits, int64_t received_ms);

// The 200 answer: {"accepted","duplicate","suppressed","rejected":[{"index","messageId","reason"}]}.
std::string BatchAnswer(int64_t accepted, int64_t duplicate, int64_t suppressed,
                        const std::vector<Rejection>& rejected);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_INGEST_INGEST_H_
