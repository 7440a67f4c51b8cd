// Writing JSON text by hand on hot paths (the SDK's track path), byte for byte as nlohmann's dump writes it.
#ifndef FERRY_LIB_BASE_JSON_TEXT_H_
#define FERRY_LIB_BASE_JSON_TEXT_H_

#include <string>
#include <string_view>

namespace ferry::base {

// Appends s (valid UTF-8) as a JSON string literal, escaped as nlohmann's dump escapes it (ensure_ascii off): '"',
// '\\', \b \t \n \f \r, other bytes below 0x20 as \u00xx; everything else as it is.
inline void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\f': out->append("\\f"); break;
      case '\r': out->append("\\r"); break;
      default: {
        static const char kHex[] = "0123456789abcdef";
        const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_JSON_TEXT_H_
