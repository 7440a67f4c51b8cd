// The bounded encoded-body reader of Ferry's HTTP servers (the agent's local API and the collector's ingest), written
// once: a request body is read through cpp-httplib's ContentReader up to a limit, then decoded (zstd, gzip or
// identity, lib/wire/codec) up to a second limit. Memory stays bounded by the limits whatever the request claims.
#ifndef FERRY_LIB_HTTPD_BODY_H_
#define FERRY_LIB_HTTPD_BODY_H_

#include <httplib.h>

#include <cstddef>
#include <string>

namespace ferry::httpd {

struct BodyLimits {
  size_t max_body_bytes = 1u << 20;     // as sent (cpp-httplib also refuses a larger Content-Length: set
                                        // Server::set_payload_max_length to the same value)
  size_t max_decoded_bytes = 5u << 20;  // after decoding
};

// What became of a body: read and decoded (status 200), or the answer to give.
struct BodyRead {
  int status = 200;    // 200; 400 unreadable or undecodable; 413 too large (as sent or decoded); 415 an unknown
                       // Content-Encoding
  std::string reason;  // for the error body, e.g. "decoded body too large"
  // The body was not read to its end: answer with "Connection: close", since the unread rest would otherwise be
  // taken for the next request on the connection.
  bool unread = false;
  bool ok() const { return status == 200; }
};

// Reads the request's body into *out, decoded by its Content-Encoding ("", identity, zstd or gzip; anything else is
// 415 before a byte is read). `res` is only read: cpp-httplib sets its status to 413 when Content-Length is above
// its payload limit. cpp-httplib inflates a body sent with "Content-Encoding: gzip" itself; the limit on that is
// max_decoded_bytes, counted as it arrives.
BodyRead ReadEncodedBody(const httplib::Request& req, const httplib::Response& res,
                         const httplib::ContentReader& reader, const BodyLimits& limits, std::string* out);

}  // namespace ferry::httpd

#endif  // FERRY_LIB_HTTPD_BODY_H_
