// Random identifiers (libsodium CSPRNG).
#ifndef FERRY_LIB_BASE_IDS_H_
#define FERRY_LIB_BASE_IDS_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry::base {

// A random RFC 4122 version 4 UUID, lowercase: "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b".
// Drawn from a per-thread ChaCha20 stream (libsodium) keyed from the kernel's CSPRNG, with fast key erasure, and keyed
// anew every 256 KiB and in a child after fork(), so that parent and child never hand out the same id.
std::string NewUuidV4();
// Appends a new UUIDv4 (36 characters) to *out.
void AppendUuidV4(std::string* out);
// Appends a new RFC 9562 version 7 UUID (36 characters, lowercase): the 48-bit Unix time in ms `unix_ms`, then 74
// random bits (the same pool). Ids made later sort after earlier ones (within one millisecond, in any order), so a
// store's index on them grows at its end instead of at random pages.
void AppendUuidV7(std::string* out, int64_t unix_ms);
// The same as a new string: an event's messageId made at unix_ms.
std::string NewUuidV7(int64_t unix_ms);
// The same written at dst, which has room for kUuidChars; returns the end.
constexpr size_t kUuidChars = 36;
char* WriteUuidV7(char* dst, int64_t unix_ms);
// n random bytes as lowercase hex (2n characters).
std::string RandomHex(size_t n);

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_IDS_H_
