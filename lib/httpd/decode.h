// The bounded decoding of a request body that has been read whole, written once for Ferry's HTTP servers (whatever
// carries the bytes): the body as sent is decoded by its Content-Encoding (zstd, gzip or identity, lib/wire/codec) up
// to a limit. Memory stays bounded by the limits whatever the request claims.
#ifndef FERRY_LIB_HTTPD_DECODE_H_
#define FERRY_LIB_HTTPD_DECODE_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::httpd {

struct BodyLimits {
  size_t max_body_bytes = 1u << 20;     // as sent
  size_t max_decoded_bytes = 5u << 20;  // after decoding
};

// What became of a body: read and decoded (status 200), or the answer to give.
struct BodyRead {
  int status = 200;    // 200; 400 unreadable or undecodable; 413 too large (as sent or decoded); 415 an unknown
                       // Content-Encoding
  std::string reason;  // for the error body, e.g. "decoded body too large"
  // The body was not read to its end (cpp-httplib's reader only): answer with "Connection: close", since the unread
  // rest would otherwise be taken for the next request on the connection.
  bool unread = false;
  bool ok() const { return status == 200; }
};

// Whether a Content-Encoding value is one DecodeBody knows ("", identity, zstd, gzip; case-insensitive).
bool KnownEncoding(std::string_view content_encoding);

// Decodes `raw` (the whole body as sent, at most limits.max_body_bytes: else 413) by `content_encoding` into *out, at
// most limits.max_decoded_bytes (else 413). An unknown encoding is 415, a body that does not decode (a cut frame, a
// gzip body without its trailer) 400.
BodyRead DecodeBody(std::string_view content_encoding, std::string raw, const BodyLimits& limits, std::string* out);

}  // namespace ferry::httpd

#endif  // FERRY_LIB_HTTPD_DECODE_H_
