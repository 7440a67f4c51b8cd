#include "lib/httpd/decode.h"

#include <utility>

#include "lib/wire/codec.h"

namespace ferry::httpd {

namespace {

BodyRead Refuse(int status, std::string reason) {
  BodyRead r;
  r.status = status;
  r.reason = std::move(reason);
  return r;
}

}  // namespace

bool KnownEncoding(std::string_view content_encoding) {
  return wire::ParseEncoding(content_encoding) != wire::Encoding::kUnknown;
}

BodyRead DecodeBody(std::string_view content_encoding, std::string raw, const BodyLimits& limits, std::string* out) {
  out->clear();
  wire::Encoding enc = wire::ParseEncoding(content_encoding);
  if (enc == wire::Encoding::kUnknown) {
    return Refuse(415, "unsupported content encoding: use zstd, gzip or identity");
  }
  if (raw.size() > limits.max_body_bytes) return Refuse(413, "body too large");
  if (enc == wire::Encoding::kIdentity) {
    *out = std::move(raw);
    return BodyRead();
  }
  switch (wire::Decode(enc, raw, limits.max_decoded_bytes, out)) {
    case wire::DecodeResult::kOk: return BodyRead();
    case wire::DecodeResult::kTooLarge: out->clear(); return Refuse(413, "decoded body too large");
    default: out->clear(); return Refuse(400, "body cannot be decoded");
  }
}

}  // namespace ferry::httpd
