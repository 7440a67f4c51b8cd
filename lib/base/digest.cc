#include "lib/base/digest.h"

#include <sodium.h>

namespace ferry::base {

void AppendHex(const void* bytes, size_t n, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(bytes);
  size_t at = out->size();
  out->resize(at + 2 * n);
  for (size_t i = 0; i < n; ++i) {
    (*out)[at + 2 * i] = kDigits[p[i] >> 4];
    (*out)[at + 2 * i + 1] = kDigits[p[i] & 0xf];
  }
}

std::string Hex(std::string_view bytes) {
  std::string out;
  AppendHex(bytes.data(), bytes.size(), &out);
  return out;
}

std::string Blake2b256(std::string_view data, std::string_view key) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                     key.empty() ? nullptr : reinterpret_cast<const unsigned char*>(key.data()), key.size());
  return std::string(reinterpret_cast<const char*>(h), sizeof h);
}

std::string Blake2b256Hex(std::string_view data, std::string_view key) { return Hex(Blake2b256(data, key)); }

}  // namespace ferry::base
