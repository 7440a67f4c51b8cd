#include "lib/wire/codec.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <memory>
#include <string>

#include "tests/support/gzip.h"

namespace ferry::wire {
namespace {

using testsupport::Gzip;

// Streams `total` zero bytes through a zstd compressor without ever holding them: a decompression bomb.
std::string ZstdBomb(size_t total) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 19);
  std::string zeros(1 << 20, '\0');
  std::string out;
  char buf[1 << 16];
  size_t left = total;
  while (left > 0) {
    size_t n = std::min(left, zeros.size());
    left -= n;
    ZSTD_inBuffer ib{zeros.data(), n, 0};
    ZSTD_EndDirective mode = left == 0 ? ZSTD_e_end : ZSTD_e_continue;
    size_t rem;
    do {
      ZSTD_outBuffer ob{buf, sizeof buf, 0};
      rem = ZSTD_compressStream2(cctx.get(), &ob, &ib, mode);
      out.append(buf, ob.pos);
    } while (mode == ZSTD_e_end ? rem != 0 : ib.pos < ib.size);
  }
  return out;
}

TEST(Encoding, Parse) {
  EXPECT_EQ(ParseEncoding(""), Encoding::kIdentity);
  EXPECT_EQ(ParseEncoding("identity"), Encoding::kIdentity);
  EXPECT_EQ(ParseEncoding("ZSTD"), Encoding::kZstd);
  EXPECT_EQ(ParseEncoding(" gzip "), Encoding::kGzip);
  EXPECT_EQ(ParseEncoding("br"), Encoding::kUnknown);
  EXPECT_EQ(ParseEncoding("deflate"), Encoding::kUnknown);
}

TEST(Codec, ZstdRoundTrip) {
  std::string in;
  for (int i = 0; i < 20000; ++i) in += "{\"messageId\":\"" + std::to_string(i) + "\"},";
  std::string z = ZstdCompress(in, 3);
  ASSERT_FALSE(z.empty());
  EXPECT_LT(z.size(), in.size() / 4);
  std::string out;
  ASSERT_EQ(Decode(Encoding::kZstd, z, in.size(), &out), DecodeResult::kOk);
  EXPECT_EQ(out, in);
  // One byte less room than needed.
  EXPECT_EQ(Decode(Encoding::kZstd, z, in.size() - 1, &out), DecodeResult::kTooLarge);
}

TEST(Codec, ZstdCompressorGivesTheSameFramesAcrossCalls) {
  ZstdCompressor z;
  std::string big;
  for (int i = 0; i < 5000; ++i) big += "{\"event\":\"Product Viewed\",\"i\":" + std::to_string(i) + "},";
  // Large, small, empty and large again: the kept context and buffer give what a fresh context gives.
  for (const std::string& in : {big, std::string("tiny"), std::string(), big.substr(0, 70000), big}) {
    for (int level : {1, 3, 9}) {
      std::string c = z.Compress(in, level);
      EXPECT_EQ(c, ZstdCompress(in, level));
      std::string out;
      ASSERT_EQ(Decode(Encoding::kZstd, c, in.size() + 1, &out), DecodeResult::kOk);
      EXPECT_EQ(out, in);
    }
  }
}

TEST(Codec, ZstdConcatenatedFramesAndEmptyPayload) {
  std::string z = ZstdCompress("hello ") + ZstdCompress("world");
  std::string out;
  ASSERT_EQ(Decode(Encoding::kZstd, z, 100, &out), DecodeResult::kOk);
  EXPECT_EQ(out, "hello world");
  ASSERT_EQ(Decode(Encoding::kZstd, ZstdCompress(""), 100, &out), DecodeResult::kOk);
  EXPECT_EQ(out, "");
}

TEST(Codec, ZstdCorruptAndTruncated) {
  std::string z = ZstdCompress(std::string(100000, 'a') + "tail", 3);
  std::string out;
  EXPECT_EQ(Decode(Encoding::kZstd, z.substr(0, z.size() - 3), 1 << 20, &out), DecodeResult::kCorrupt);
  EXPECT_EQ(Decode(Encoding::kZstd, "not zstd at all", 1 << 20, &out), DecodeResult::kCorrupt);
  EXPECT_EQ(Decode(Encoding::kZstd, "", 1 << 20, &out), DecodeResult::kCorrupt);
  EXPECT_EQ(Decode(Encoding::kZstd, z + "junk", 1 << 20, &out), DecodeResult::kCorrupt);
}

// A frame states its content size in its header (every Ferry client's does) and is decoded in one call into output
// of that size. A stated size above the limit is refused before any work; a false one is found out and refused.
TEST(Codec, ZstdAFrameThatStatesItsSizeIsHeldToIt) {
  // Magic, a header with a 4-byte content size and a single segment, the size 1 MiB, then one raw block of 5 bytes.
  const std::string claims_1mib = std::string("\x28\xB5\x2F\xFD\xA0\x00\x00\x10\x00\x29\x00\x00", 12) + "hello";
  std::string out = "left over";
  EXPECT_EQ(Decode(Encoding::kZstd, claims_1mib, 64 << 10, &out), DecodeResult::kTooLarge);
  EXPECT_TRUE(out.empty());
  EXPECT_LT(out.capacity(), size_t{64} << 10);  // refused on the header: nothing was allocated for it
  EXPECT_EQ(Decode(Encoding::kZstd, claims_1mib, 2 << 20, &out), DecodeResult::kCorrupt);
  EXPECT_TRUE(out.empty());
  // The same block with its true size decodes; so does a frame stating a size smaller than its content, no more
  // than a larger one.
  std::string truthful = claims_1mib;
  truthful.replace(5, 4, std::string("\x05\x00\x00\x00", 4));
  ASSERT_EQ(Decode(Encoding::kZstd, truthful, 100, &out), DecodeResult::kOk);
  EXPECT_EQ(out, "hello");
  std::string smaller = claims_1mib;
  smaller.replace(5, 4, std::string("\x03\x00\x00\x00", 4));
  EXPECT_EQ(Decode(Encoding::kZstd, smaller, 100, &out), DecodeResult::kCorrupt);
  EXPECT_TRUE(out.empty());
  // A real frame, decoded exactly at its size and refused one byte under it.
  std::string in(300000, 'x');
  for (size_t i = 0; i < in.size(); i += 7) in[i] = static_cast<char>('a' + i % 26);
  std::string z = ZstdCompress(in, 3);
  ASSERT_EQ(Decode(Encoding::kZstd, z, in.size(), &out), DecodeResult::kOk);
  EXPECT_EQ(out, in);
  EXPECT_EQ(Decode(Encoding::kZstd, z, in.size() - 1, &out), DecodeResult::kTooLarge);
}

TEST(Codec, ZstdBombStopsAtLimit) {
  std::string bomb = ZstdBomb(size_t{1} << 30);  // 1 GiB of zeros
  EXPECT_LT(bomb.size(), size_t{1} << 20);       // fits under the compressed limit
  std::string out;
  EXPECT_EQ(Decode(Encoding::kZstd, bomb, 5 << 20, &out), DecodeResult::kTooLarge);
  EXPECT_LE(out.size(), size_t{5} << 20);
  EXPECT_LE(out.capacity(), size_t{16} << 20);  // memory bounded by the limit, not by the claim
}

TEST(Codec, GzipRoundTripLimitsAndCorruption) {
  std::string in(300000, 'q');
  for (size_t i = 0; i < in.size(); i += 7) in[i] = static_cast<char>('a' + i % 26);
  std::string gz = Gzip(in);
  std::string out;
  ASSERT_EQ(Decode(Encoding::kGzip, gz, in.size(), &out), DecodeResult::kOk);
  EXPECT_EQ(out, in);
  EXPECT_EQ(Decode(Encoding::kGzip, gz, in.size() - 1, &out), DecodeResult::kTooLarge);
  EXPECT_EQ(Decode(Encoding::kGzip, gz.substr(0, gz.size() / 2), in.size(), &out), DecodeResult::kCorrupt);
  EXPECT_EQ(Decode(Encoding::kGzip, "plain text", in.size(), &out), DecodeResult::kCorrupt);
  std::string two = Gzip("ab") + Gzip("cd");
  ASSERT_EQ(Decode(Encoding::kGzip, two, 10, &out), DecodeResult::kOk);
  EXPECT_EQ(out, "abcd");
  // A gzip bomb: 200 MiB of zeros in a small member, refused at 5 MiB.
  std::string zeros(200 << 20, '\0');
  std::string bomb = Gzip(zeros);
  zeros.clear();
  zeros.shrink_to_fit();
  EXPECT_EQ(Decode(Encoding::kGzip, bomb, 5 << 20, &out), DecodeResult::kTooLarge);
  EXPECT_LE(out.size(), size_t{5} << 20);
}

TEST(Codec, IdentityAndUnknown) {
  std::string out;
  EXPECT_EQ(Decode(Encoding::kIdentity, "abc", 3, &out), DecodeResult::kOk);
  EXPECT_EQ(out, "abc");
  EXPECT_EQ(Decode(Encoding::kIdentity, "abcd", 3, &out), DecodeResult::kTooLarge);
  EXPECT_EQ(Decode(Encoding::kUnknown, "abc", 3, &out), DecodeResult::kUnknownEncoding);
}

}  // namespace
}  // namespace ferry::wire
