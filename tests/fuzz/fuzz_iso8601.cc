// libFuzzer target: ISO-8601 times as devices and officers send them (base::ParseIso8601: event timestamps, sentAt,
// receivedAt of a registered request). What parses formats back to a time that parses to the same instant, and the
// ingest window keeps a batch's times within years 0000-9999 whatever sentAt says.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "collector/ingest/ingest.h"
#include "lib/base/time.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  auto t = ferry::base::ParseIso8601(s);
  if (t) {
    std::string back = ferry::base::FormatIso8601(*t);
    auto again = ferry::base::ParseIso8601(back);
    if (!again || *again != *t) std::abort();
  }
  // The same text as sentAt and as an event's timestamp (split at the first '|', when there is one).
  size_t bar = s.find('|');
  std::string sent(s.substr(0, bar)), ts(bar == std::string_view::npos ? s : s.substr(bar + 1));
  ferry::wire::Json batch = {{"sentAt", sent},
                             {"batch",
                              {{{"messageId", "m-1"},
                                {"type", "track"},
                                {"event", "e"},
                                {"anonymousId", "a"},
                                {"timestamp", ts},
                                {"purpose", "analytics"}}}}};
  for (ferry::collector::TimeWindow w : {ferry::collector::TimeWindow(), ferry::collector::TimeWindow{0, 0}}) {
    ferry::collector::ParsedBatch p = ferry::collector::ParseBatch(
        ferry::wire::Encoding::kIdentity, batch.dump(-1, ' ', false, ferry::wire::Json::error_handler_t::replace),
        ferry::wire::Limits(), 1767225600000, w);
    for (const auto& e : p.events) {
      auto stored = ferry::wire::Json::parse(e.body, nullptr, false);
      if (stored.is_discarded()) std::abort();
      auto back = ferry::base::ParseIso8601(stored["timestamp"].get<std::string>());
      if (!back || *back != e.timestamp_ms) std::abort();
    }
  }
  return 0;
}
