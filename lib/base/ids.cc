#include "lib/base/ids.h"

#include <pthread.h>
#include <sodium.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "lib/base/secret.h"

namespace ferry::base {

namespace {

// Bumped in the child of every fork(): a thread's pool from before the fork is then discarded.
std::atomic<uint64_t> g_fork_generation{1};

void OnForkChild() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

// A thread's random bytes: a ChaCha20 stream (libsodium's randombytes_buf_deterministic) under a key from the
// kernel's CSPRNG, with fast key erasure: each 4 KiB block of the stream begins with the key of the next block, and
// the key that made it is overwritten. The kernel gives a new key every kRefillsPerKernelKey blocks (256 KiB) and in
// a child after fork(). (randombytes_buf took 4 KiB from the kernel each time: a getrandom call every 409 message
// ids, 4 % of ferry_track.) Bytes handed out are wiped from the block.
constexpr unsigned kRefillsPerKernelKey = 64;

struct RandomPool {
  unsigned char key[randombytes_SEEDBYTES];
  unsigned char block[randombytes_SEEDBYTES + 4096];  // the next key, then the bytes handed out
  size_t pos = sizeof(block);
  uint64_t generation = 0;
  unsigned refills = 0;  // blocks since the kernel's key
  ~RandomPool() {
    sodium_memzero(key, sizeof key);
    sodium_memzero(block, sizeof block);
  }

  void Refill(uint64_t gen) {
    if (generation != gen || refills == 0 || refills >= kRefillsPerKernelKey) {
      randombytes_buf(key, sizeof key);
      generation = gen;
      refills = 0;
    }
    randombytes_buf_deterministic(block, sizeof block, key);
    std::memcpy(key, block, sizeof key);
    sodium_memzero(block, sizeof key);
    pos = sizeof key;
    ++refills;
  }

  void Take(unsigned char* out, size_t n) {
    uint64_t gen = g_fork_generation.load(std::memory_order_relaxed);
    if (generation != gen || pos + n > sizeof(block)) Refill(gen);
    std::memcpy(out, block + pos, n);
    sodium_memzero(block + pos, n);
    pos += n;
  }
};

}  // namespace

namespace {

// The calling thread's pool. The set-up runs once (a function-local static: after it, one load per call;
// std::call_once wrote two thread_locals of libstdc++ at every call). The pool is on the heap behind a thread_local
// pointer, read once per call: a thread_local pool's address was recomputed (__tls_get_addr in a shared library) at
// each of its uses.
RandomPool& Pool() {
  static const bool ready = [] {
    EnsureSodium();
    pthread_atfork(nullptr, nullptr, &OnForkChild);
    return true;
  }();
  (void)ready;
  thread_local std::unique_ptr<RandomPool> pool;
  if (!pool) pool = std::make_unique<RandomPool>();
  return *pool;
}

// The two hex digits of every byte value.
struct HexPairs {
  char pairs[512];
  constexpr HexPairs() : pairs() {
    const char* hex = "0123456789abcdef";
    for (int i = 0; i < 256; ++i) {
      pairs[2 * i] = hex[i >> 4];
      pairs[2 * i + 1] = hex[i & 0xf];
    }
  }
};
constexpr HexPairs kHexPairs;

char* WriteHex(const unsigned char (&b)[16], char* dst) {
  // 8-4-4-4-12 hex digits.
  auto pair = [&dst, &b](int i) {
    std::memcpy(dst, kHexPairs.pairs + 2 * b[i], 2);
    dst += 2;
  };
  for (int i = 0; i < 4; ++i) pair(i);
  *dst++ = '-';
  pair(4);
  pair(5);
  *dst++ = '-';
  pair(6);
  pair(7);
  *dst++ = '-';
  pair(8);
  pair(9);
  *dst++ = '-';
  for (int i = 10; i < 16; ++i) pair(i);
  return dst;
}

void AppendHex(const unsigned char (&b)[16], std::string* out) {
  char buf[kUuidChars];
  WriteHex(b, buf);
  out->append(buf, sizeof buf);
}

}  // namespace

void AppendUuidV4(std::string* out) {
  unsigned char b[16];
  Pool().Take(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  AppendHex(b, out);
}

char* WriteUuidV7(char* dst, int64_t unix_ms) {
  unsigned char b[16];
  Pool().Take(b + 6, 10);
  const uint64_t ms = static_cast<uint64_t>(unix_ms < 0 ? 0 : unix_ms) & 0xffffffffffffULL;
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x70);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  return WriteHex(b, dst);
}

void AppendUuidV7(std::string* out, int64_t unix_ms) {
  char buf[kUuidChars];
  WriteUuidV7(buf, unix_ms);
  out->append(buf, sizeof buf);
}

std::string NewUuidV7(int64_t unix_ms) {
  std::string out;
  AppendUuidV7(&out, unix_ms);
  return out;
}

std::string NewUuidV4() {
  std::string out;
  out.reserve(36);
  AppendUuidV4(&out);
  return out;
}

std::string RandomHex(size_t n) {
  SecretBytes b = SecretBytes::Random(n);
  return b.ToHex();
}

}  // namespace ferry::base
