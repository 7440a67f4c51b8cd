#include "lib/httpd/body.h"

#include <algorithm>
#include <utility>

#include "lib/wire/codec.h"

namespace ferry::httpd {

namespace {

BodyRead Refuse(int status, std::string reason, bool unread) {
  BodyRead r;
  r.status = status;
  r.reason = std::move(reason);
  r.unread = unread;
  return r;
}

}  // namespace

BodyRead ReadEncodedBody(const httplib::Request& req, const httplib::Response& res,
                         const httplib::ContentReader& reader, const BodyLimits& limits, std::string* out) {
  out->clear();
  std::string header = req.get_header_value("Content-Encoding");
  wire::Encoding enc = wire::ParseEncoding(header);
  if (enc == wire::Encoding::kUnknown) {
    return Refuse(415, "unsupported content encoding: use zstd, gzip or identity", true);
  }
  // cpp-httplib inflates gzip itself when the header says exactly "gzip" (its comparison); any other spelling that
  // ParseEncoding accepts arrives as sent and is decoded below.
  bool inflated = header == "gzip";
  size_t limit = inflated ? limits.max_decoded_bytes : limits.max_body_bytes;
  std::string raw;
  bool too_large = false;
  bool read_ok = reader([&](const char* data, size_t len) {
    if (len > limit - std::min(limit, raw.size())) {
      too_large = true;
      return false;
    }
    raw.append(data, len);
    return true;
  });
  if (!read_ok) {
    if (too_large && inflated) return Refuse(413, "decoded body too large", true);
    if (too_large || res.status == 413) return Refuse(413, "body too large", true);
    return Refuse(400, "body cannot be read or decoded", true);
  }
  if (inflated) {
    *out = std::move(raw);
    return BodyRead();
  }
  return DecodeBody(header, std::move(raw), limits, out);
}

}  // namespace ferry::httpd
