// The event schema of docs/PROTOCOL.md (v1): limits and validation shared by the SDK, the agent and the collector.
#ifndef FERRY_LIB_WIRE_EVENT_H_
#define FERRY_LIB_WIRE_EVENT_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lib/base/utf8.h"

namespace ferry::wire {

using Json = nlohmann::json;

// docs/PROTOCOL.md limits (the collector makes them configurable).
struct Limits {
  size_t max_compressed_bytes = 1 << 20;    // 1 MiB
  size_t max_decompressed_bytes = 5 << 20;  // 5 MiB
  size_t max_event_bytes = 32 << 10;        // 32 KiB, one serialised event
  size_t max_batch_events = 1000;
  size_t max_name_bytes = 200;  // event/screen names, ids
  size_t max_depth = 32;        // nesting of properties/traits/context
};

// Event types.
inline constexpr std::string_view kTrack = "track";
inline constexpr std::string_view kIdentify = "identify";
inline constexpr std::string_view kScreen = "screen";
inline constexpr std::string_view kAlias = "alias";
inline constexpr std::string_view kConsent = "consent";

// Checks one event against docs/PROTOCOL.md: messageId (1-64 chars), type, event (track) / name (screen), userId and/or
// anonymousId, previousId (ids and names follow CheckIdText: no control characters), timestamp (ISO 8601), purpose
// (lowercase [a-z0-9_-], 1-32), properties/traits/context objects, a consent event's {"purpose","state","previous"},
// nesting depth and serialised size. Returns "" when valid, else a short machine-friendly reason such as "missing
// messageId", "event too large" or "invalid userId: control character". limits.max_event_bytes == SIZE_MAX skips the
// size check (and its serialisation): for callers that serialise the event anyway and check the size of what they
// store.
std::string ValidateEvent(const Json& ev, const Limits& limits = Limits());

// Valid purpose name: 1-32 bytes of [a-z0-9_-].
bool IsValidPurpose(std::string_view p);

// The one rule for ids (userId, anonymousId, previousId, messageId) and names (a track's event, a screen's name, a
// purpose), the same at the SDK, the agent and the collector: 1 to max_bytes bytes of valid UTF-8 holding no control
// character (U+0000-U+001F, U+007F-U+009F: NUL, line breaks, escape sequences). Returns "" when `s` passes, else why
// not: "empty", "too long", "not UTF-8" or "control character". (A messageId is also at most 64 characters:
// ValidateEvent checks that.)
std::string_view CheckIdText(std::string_view s, size_t max_bytes);
inline bool IsValidIdText(std::string_view s, size_t max_bytes) { return CheckIdText(s, max_bytes).empty(); }

// Valid UTF-8 (no overlongs, no surrogates).
inline bool IsValidUtf8(std::string_view s) { return base::IsValidUtf8(s); }

// Depth of nested objects/arrays (a scalar is 0, {} is 1). Iterative: safe on any depth.
size_t JsonDepth(const Json& j);

// Deepest nesting of '{'/'[' in raw JSON text, strings skipped; computed before parsing so that a hostile document
// (a million '[') is refused before it is built in memory. Stops counting (returns early) once above `stop_above`.
size_t RawJsonDepth(std::string_view text, size_t stop_above = SIZE_MAX);

}  // namespace ferry::wire

#endif  // FERRY_LIB_WIRE_EVENT_H_
