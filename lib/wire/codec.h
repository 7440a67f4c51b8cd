// The batch codec: zstd (what the SDK sends), gzip or identity, with hard output limits (no decompression bombs).
#ifndef FERRY_LIB_WIRE_CODEC_H_
#define FERRY_LIB_WIRE_CODEC_H_

#include <memory>
#include <string>
#include <string_view>

#include "lib/base/status.h"

namespace ferry::wire {

enum class Encoding { kIdentity, kZstd, kGzip, kUnknown };

// From a Content-Encoding header value ("", "identity", "zstd", "gzip"; case-insensitive).
Encoding ParseEncoding(std::string_view header);

// zstd-compresses (level 1-19; the SDK uses 3).
std::string ZstdCompress(std::string_view in, int level = 3);

// The same output as ZstdCompress, from one compression context and one output buffer kept across calls (no context
// allocated, cleared and freed per call). Not thread-safe: one per thread.
class ZstdCompressor {
 public:
  ZstdCompressor();
  ~ZstdCompressor();
  ZstdCompressor(const ZstdCompressor&) = delete;
  ZstdCompressor& operator=(const ZstdCompressor&) = delete;
  // Empty on failure.
  std::string Compress(std::string_view in, int level = 3);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class DecodeResult { kOk, kTooLarge, kCorrupt, kUnknownEncoding };

// Decodes into *out, stopping as soon as the output would exceed max_out (kTooLarge: the caller answers 413).
// Streaming: memory stays bounded by max_out whatever the input claims.
DecodeResult Decode(Encoding enc, std::string_view in, size_t max_out, std::string* out);

}  // namespace ferry::wire

#endif  // FERRY_LIB_WIRE_CODEC_H_
