// ferry_httpd's internals shared by its translation units (no Boost here). Not for consumers: include httpd.h.
#ifndef FERRY_LIB_HTTPD_DETAIL_H_
#define FERRY_LIB_HTTPD_DETAIL_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/httpd/httpd.h"

namespace ferry::httpd::detail {

// Percent-decodes `s` ('+' becomes a space when plus_is_space). nullopt for a '%' not followed by two hex digits and
// for a NUL, encoded or raw.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space);

// Splits "a=1&b=x%20y" into decoded pairs ("a" -> "1", "b" -> "x y"); a name without '=' gets "". False on a bad
// escape or a NUL.
bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* out);

// 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104, from the textual address (inet_pton; names are never resolved).
bool IsLoopbackAddress(std::string_view addr);

// Whether the Host field value names one of localhost, 127.0.0.1, [::1] or `extra` (case-insensitive), with or
// without a ":port" (digits). Bracketed IPv6 literals are compared with their brackets.
bool HostAllowed(std::string_view host, const std::vector<std::string>& extra);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// RFC 7230 token characters (a field name), non-empty.
bool IsToken(std::string_view s);
// A field value a response may carry: no CR, LF or NUL (other controls but HTAB refused too).
bool IsFieldValue(std::string_view s);

// The reason phrase of a status ("Not Found"); "Unknown" for codes without one.
const char* ReasonPhrase(int status);

// How the body of an answer is framed.
enum class Framing { kLength, kChunked, kUntilClose };

// The status line and header block of `res` ("HTTP/1.1 200 OK\r\n...\r\n"). The server's own fields
// (Content-Length or Transfer-Encoding, Connection) are written from the arguments; the handler's fields of those
// names are left out, and fields with a bad name or value are dropped (counted in *dropped when not null).
std::string ResponseHead(const Response& res, int request_version, bool keep_alive, Framing framing,
                         size_t content_length, int* dropped);

// A complete short answer of the server's own (an error body from lib/wire/http_status.h) with "Connection: close"
// or not, and Retry-After when retry_after_s > 0.
std::string CannedAnswer(int status, std::string_view reason, bool close, int retry_after_s, bool head = false);

}  // namespace ferry::httpd::detail

#endif  // FERRY_LIB_HTTPD_DETAIL_H_
