#include "lib/wire/json_body.h"

namespace ferry::wire {

JsonLimits BodyLimits(const Limits& limits) {
  return JsonLimits{limits.max_decompressed_bytes, limits.max_depth + kBodyDepthAboveEvent};
}

base::Result<Json> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) return base::Status::ResourceExhausted("body too large");
  // A raw NUL byte is never valid JSON, but nlohmann's lexer takes it for the end of the input: without this check
  // "{...}\0anything" would parse as the text before the NUL while every other reader of the body sees all of it.
  if (text.find('\0') != std::string_view::npos) return base::Status::InvalidArgument("body is not valid JSON");
  if (RawJsonDepth(text, limits.max_depth) > limits.max_depth) {
    return base::Status::InvalidArgument("JSON nested too deeply");
  }
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return base::Status::InvalidArgument("body is not valid JSON");
  return doc;
}

}  // namespace ferry::wire
