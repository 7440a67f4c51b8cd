#include "lib/wire/json_body.h"

namespace ferry::wire {

JsonLimits BodyLimits(const Limits& limits) {
  return JsonLimits{limits.max_decompressed_bytes, limits.max_depth + kBodyDepthAboveEvent};
}

base::Result<Json> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) return base::Status::ResourceExhausted("body too large");
  if (RawJsonDepth(text, limits.max_depth) > limits.max_depth) {
    return base::Status::InvalidArgument("JSON nested too deeply");
  }
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return base::Status::InvalidArgument("body is not valid JSON");
  return doc;
}

}  // namespace ferry::wire
