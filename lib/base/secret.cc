#include "lib/base/secret.h"

#include <sodium.h>

#include <mutex>

namespace ferry::base {

bool EnsureSodium() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = sodium_init() >= 0; });
  return ok;
}

SecretBytes SecretBytes::Random(size_t n) {
  EnsureSodium();
  SecretBytes s(n);
  randombytes_buf(s.data(), n);
  return s;
}

SecretBytes SecretBytes::FromHex(const std::string& hex) {
  EnsureSodium();
  SecretBytes s(hex.size() / 2);
  size_t out_len = 0;
  if (hex.size() % 2 != 0 ||
      sodium_hex2bin(s.data(), s.size(), hex.data(), hex.size(), nullptr, &out_len, nullptr) != 0 ||
      out_len != s.size()) {
    return SecretBytes();
  }
  return s;
}

std::string SecretBytes::ToHex() const {
  std::string out(bytes_.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes_.data(), bytes_.size());
  out.pop_back();
  return out;
}

void SecretBytes::Wipe() {
  if (!bytes_.empty()) sodium_memzero(bytes_.data(), bytes_.size());
}

void WipeString(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
  s.clear();
}

}  // namespace ferry::base
