// Bearer credentials as docs/PROTOCOL.md uses them (write keys, admin tokens, the agent's local token).
#ifndef FERRY_LIB_WIRE_AUTH_H_
#define FERRY_LIB_WIRE_AUTH_H_

#include <string>
#include <string_view>

namespace ferry::wire {

// The token of an "Authorization: Bearer <token>" header value (scheme case-insensitive, surrounding blanks
// trimmed); "" when the value is absent or another scheme.
std::string BearerToken(std::string_view authorization);

}  // namespace ferry::wire

#endif  // FERRY_LIB_WIRE_AUTH_H_
