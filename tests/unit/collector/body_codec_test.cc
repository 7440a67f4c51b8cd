// The embedded store's stored form of an event body (collector/engines/sqlite/body_codec.h): what it shrinks, that
// it reads back byte for byte, and that a damaged one is refused with a status, not a crash.
#include "collector/engines/sqlite/body_codec.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ferry::collector::sqlite {
namespace {

// An event as the ingest path stores it from one of Ferry's SDKs (keys sorted, receivedAt added).
std::string SdkBody(int n) {
  return R"({"anonymousId":"8d2f6c1e-3b7a-4f0e-9c55-)" + std::to_string(100000000000 + n) +
         R"(","consentReceipt":"rc_4Jx9Qm2Lw8","context":{"app":{"name":"shop","version":"4.2.0"},)"
         R"("consent":{"analytics":"granted","marketing":"denied"},"library":{"name":"ferry","version":"1.0.0"},)"
         R"("locale":"de-DE","os":{"name":"Android","version":"14"},"sessionId":"s-71c2","timezone":"Europe/Berlin"},)"
         R"("deviceSeq":)" +
         std::to_string(n) + R"(,"event":"Product Viewed","messageId":"0193a1b2-7c3d-7e4f-8a9b-)" +
         std::to_string(200000000000 + n) + R"(","properties":{"currency":"EUR","price":)" +
         std::to_string(n % 90 + 10) + R"(.99,"sku":"SKU-)" + std::to_string(n * 7 % 9973) +
         R"("},"purpose":"analytics","receivedAt":"2026-12-04T18:40:12.345Z","timestamp":"2026-12-04T18:40:12.301Z",)"
         R"("type":"track"})";
}

TEST(BodyCodecTest, AnSdkEventIsStoredInLessThanHalfItsBytesAndReadsBackExactly) {
  for (int n = 0; n < 50; ++n) {
    const std::string json = SdkBody(n);
    std::string blob;
    ASSERT_TRUE(EncodeBody(json, &blob)) << json;
    EXPECT_EQ(static_cast<unsigned char>(blob[0]), kBodyFormatZstdDict1);
    EXPECT_LT(blob.size() * 2, json.size()) << "stored " << blob.size() << " bytes for " << json.size();
    auto back = DecodeBody(blob);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, json);
  }
}

TEST(BodyCodecTest, WhatZstdDoesNotShrinkStaysText) {
  std::string blob = "left over";
  EXPECT_FALSE(EncodeBody("{}", &blob));
  EXPECT_TRUE(blob.empty());
  // Random bytes: no match in the dictionary, no repetition.
  std::mt19937 rng(7);
  std::string noise;
  for (int i = 0; i < 600; ++i) noise.push_back(static_cast<char>('!' + rng() % 90));
  EXPECT_FALSE(EncodeBody(noise, &blob));
  // Past the largest body a reader accepts: never stored in a form it would refuse.
  EXPECT_FALSE(EncodeBody(std::string(kMaxStoredBodyBytes + 1, 'a'), &blob));
}

TEST(BodyCodecTest, ADamagedStoredBodyIsRefusedWithAStatus) {
  const std::string json = SdkBody(1);
  std::string blob;
  ASSERT_TRUE(EncodeBody(json, &blob));

  EXPECT_EQ(DecodeBody("").status().code(), base::Code::kCorruption);
  std::string other_format = blob;
  other_format[0] = 0x02;
  EXPECT_EQ(DecodeBody(other_format).status().code(), base::Code::kCorruption);
  EXPECT_EQ(DecodeBody(blob.substr(0, blob.size() / 2)).status().code(), base::Code::kCorruption);
  // Every single byte changed in turn: refused, or (where zstd cannot tell) some other text; never a crash.
  int refused = 0;
  for (size_t i = 1; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    auto r = DecodeBody(bad);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), base::Code::kCorruption);
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  // A frame that claims more than a body can be (a bomb in a damaged file) is refused before it is inflated.
  const std::string big(kMaxStoredBodyBytes + 1, 'x');
  std::string frame(ZSTD_compressBound(big.size()), '\0');
  size_t n = ZSTD_compress(frame.data(), frame.size(), big.data(), big.size(), 1);
  ASSERT_FALSE(ZSTD_isError(n));
  const std::string bomb = std::string(1, static_cast<char>(kBodyFormatZstdDict1)) + frame.substr(0, n);
  auto r = DecodeBody(bomb);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kCorruption);
}

// Request threads compress while the writer and readers decompress: each thread has its own contexts.
TEST(BodyCodecTest, ThreadsEncodeAndDecodeSideBySide) {
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &mismatches] {
      for (int n = 0; n < 500; ++n) {
        const std::string json = SdkBody(t * 1000 + n);
        std::string blob;
        auto back = EncodeBody(json, &blob) ? DecodeBody(blob) : base::Result<std::string>(json);
        if (!back.ok() || *back != json) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace ferry::collector::sqlite
