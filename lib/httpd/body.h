// The bounded encoded-body reader for the HTTP servers still on cpp-httplib (the agent's local API): a request body
// is read through cpp-httplib's ContentReader up to a limit, then decoded by DecodeBody (lib/httpd/decode.h) up to a
// second limit. Memory stays bounded by the limits whatever the request claims. BodyLimits::max_body_bytes: set
// cpp-httplib's Server::set_payload_max_length to the same value, so a larger Content-Length is refused before it is
// read.
#ifndef FERRY_LIB_HTTPD_BODY_H_
#define FERRY_LIB_HTTPD_BODY_H_

#include <httplib.h>

#include <string>

#include "lib/httpd/decode.h"

namespace ferry::httpd {

// Reads the request's body into *out, decoded by its Content-Encoding ("", identity, zstd or gzip; anything else is
// 415 before a byte is read). `res` is only read: cpp-httplib sets its status to 413 when Content-Length is above
// its payload limit. cpp-httplib inflates a body sent with "Content-Encoding: gzip" itself; the limit on that is
// max_decoded_bytes, counted as it arrives.
BodyRead ReadEncodedBody(const httplib::Request& req, const httplib::Response& res,
                         const httplib::ContentReader& reader, const BodyLimits& limits, std::string* out);

}  // namespace ferry::httpd

#endif  // FERRY_LIB_HTTPD_BODY_H_
