// The one JSON parser for request bodies that come from outside: the collector's ingest batches and admin bodies, and
// (next) the agent's API bodies. Size and nesting are checked on the raw text before anything is built, so that a
// hostile document (a million '[') costs one scan and never a deep recursion later (when it is printed, compared or
// destroyed).
#ifndef FERRY_LIB_WIRE_JSON_BODY_H_
#define FERRY_LIB_WIRE_JSON_BODY_H_

#include <cstddef>
#include <string_view>

#include "lib/base/status.h"
#include "lib/wire/event.h"

namespace ferry::wire {

struct JsonLimits {
  size_t max_bytes = 5 << 20;  // text longer than this is refused
  size_t max_depth = 43;       // nesting of objects and arrays ({} is 1)
};

// Nesting a body may add above an event's own limit (Limits::max_depth): the envelope ({"batch": [ {event} ]}) and
// some slack, so that an event one level too deep is rejected alone (with a reason) rather than failing its batch.
inline constexpr size_t kBodyDepthAboveEvent = 11;

// The limits of a request body, the same for every route: decoded size Limits::max_decompressed_bytes (5 MiB), depth
// Limits::max_depth + kBodyDepthAboveEvent (43).
JsonLimits BodyLimits(const Limits& limits = Limits());

// Parses `text` as one JSON value within `limits`. Errors: ResourceExhausted "body too large" (413), InvalidArgument
// "JSON nested too deeply" or "body is not valid JSON" (400). Never throws.
base::Result<Json> ParseJson(std::string_view text, const JsonLimits& limits);

}  // namespace ferry::wire

#endif  // FERRY_LIB_WIRE_JSON_BODY_H_
