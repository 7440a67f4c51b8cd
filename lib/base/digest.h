// Hex encoding and BLAKE2b-256 (libsodium's crypto_generichash), written once for every part of Ferry.
#ifndef FERRY_LIB_BASE_DIGEST_H_
#define FERRY_LIB_BASE_DIGEST_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::base {

// Appends the lowercase hex form of n bytes to *out (2n characters).
void AppendHex(const void* bytes, size_t n, std::string* out);

// The lowercase hex form of bytes.
std::string Hex(std::string_view bytes);

// BLAKE2b-256 of data as 32 raw bytes; keyed (a MAC) when key is not empty (key: 16 to 64 bytes).
std::string Blake2b256(std::string_view data, std::string_view key = {});

// Hex(Blake2b256(data, key)): 64 hex characters.
std::string Blake2b256Hex(std::string_view data, std::string_view key = {});

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_DIGEST_H_
