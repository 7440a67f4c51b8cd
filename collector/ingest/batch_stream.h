// The single pass of POST /v1/batch (issue 16): one SAX pass over the decoded body (RapidJSON's reader, which reads
// in about a third of the time nlohmann's SAX lexer takes; no document) that validates every event, reads what
// ingest and the gates need, and writes each event's stored form as it goes. It takes the batches that are well formed
// throughout (every event valid and within its size, no key twice in one object, no consent event) and declines the
// rest, which ParseBatch then reads through the document (ParseBatchWithDocument): so every refusal, every rejection
// reason and every unusual event keeps the one code that has always made them. What it makes is what the document path
// makes, byte for byte: each object's members sorted by key, no spaces, strings escaped and numbers printed as
// nlohmann's dump prints them (tests/unit/collector/ingest_stream_test.cc and the fuzzer fuzz_batch compare the two on
// the same bodies).
#ifndef FERRY_COLLECTOR_INGEST_BATCH_STREAM_H_
#define FERRY_COLLECTOR_INGEST_BATCH_STREAM_H_

#include <cstdint>
#include <string_view>

#include "collector/ingest/ingest.h"

namespace ferry::collector {

// `text` is the decoded body. Returns true with *out filled (status 200) when the single pass took the batch; false
// (*out untouched) when the batch must go through the document.
bool ParseBatchStreaming(std::string_view text, const wire::Limits& limits, int64_t received_ms,
                         const TimeWindow& window, bool insight_fields, ParsedBatch* out);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_INGEST_BATCH_STREAM_H_
