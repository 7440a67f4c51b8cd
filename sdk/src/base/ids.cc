#include "base/ids.h"

#include <sodium.h>

#include "base/secret.h"

namespace ferry::base {

std::string NewUuidV4() {
  EnsureSodium();
  unsigned char b[16];
  randombytes_buf(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 0xf];
  }
  return out;
}

std::string RandomHex(size_t n) {
  SecretBytes b = SecretBytes::Random(n);
  return b.ToHex();
}

}  // namespace ferry::base
