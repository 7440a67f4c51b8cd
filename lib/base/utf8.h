// UTF-8 validation, shared by the wire schema (lib/wire) and the PII engine's single pass (sdk/pii).
#ifndef FERRY_LIB_BASE_UTF8_H_
#define FERRY_LIB_BASE_UTF8_H_

#include <string_view>

namespace ferry::base {

// Valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_UTF8_H_
