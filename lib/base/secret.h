// SecretBytes: key material that is wiped with sodium_memzero when it goes away.
#ifndef FERRY_LIB_BASE_SECRET_H_
#define FERRY_LIB_BASE_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry::base {

// Makes sure sodium_init() ran once in this process (thread-safe). Returns false if libsodium cannot start.
bool EnsureSodium();

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n) : bytes_(n, 0) {}
  SecretBytes(const uint8_t* p, size_t n) : bytes_(p, p + n) {}
  ~SecretBytes() { Wipe(); }
  SecretBytes(const SecretBytes& o) : bytes_(o.bytes_) {}
  SecretBytes& operator=(const SecretBytes& o) {
    if (this != &o) {
      Wipe();
      bytes_ = o.bytes_;
    }
    return *this;
  }
  SecretBytes(SecretBytes&& o) noexcept : bytes_(std::move(o.bytes_)) { o.bytes_.clear(); }
  SecretBytes& operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
      Wipe();
      bytes_ = std::move(o.bytes_);
      o.bytes_.clear();
    }
    return *this;
  }

  // n random bytes from libsodium's CSPRNG.
  static SecretBytes Random(size_t n);
  // Parses lowercase or uppercase hex; empty result on bad input.
  static SecretBytes FromHex(const std::string& hex);

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  // Lowercase hex. The caller owns a copy of the secret: keep it short-lived and wipe it (WipeString).
  std::string ToHex() const;
  void Wipe();

 private:
  std::vector<uint8_t> bytes_;
};

// Overwrites a string's buffer with zeros (sodium_memzero) and clears it.
void WipeString(std::string& s);

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_SECRET_H_
