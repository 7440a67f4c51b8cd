// lib/httpd: DecodeBody, the bounded decoding of a body read whole (both daemons' routes go through it): every
// encoding, both limits (as sent and decoded), decompression bombs, and what cannot be decoded.
#include "lib/httpd/decode.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "lib/wire/codec.h"
#include "tests/support/gzip.h"

namespace ferry::httpd {
namespace {

using testsupport::Gzip;

constexpr size_t kMaxBody = 4096;
constexpr size_t kMaxDecoded = 64 * 1024;

BodyRead Decode(const std::string& raw, const std::string& encoding, std::string* out) {
  return DecodeBody(encoding, raw, {kMaxBody, kMaxDecoded}, out);
}

TEST(DecodeBody, EveryEncodingIsDecoded) {
  const std::string text = R"({"batch":[{"event":"x"}]})";
  for (const auto& [raw, encoding] : {std::pair<std::string, std::string>{text, ""},
                                      {text, "identity"},
                                      {wire::ZstdCompress(text), "zstd"},
                                      {wire::ZstdCompress(text), "ZSTD"},
                                      {Gzip(text), "gzip"},
                                      {Gzip(text), "GZIP"},
                                      {Gzip(text), "x-gzip"}}) {
    std::string out;
    BodyRead r = Decode(raw, encoding, &out);
    EXPECT_EQ(r.status, 200) << encoding << ": " << r.reason;
    EXPECT_EQ(out, text) << encoding;
    EXPECT_EQ(r.reason, "") << encoding;
    EXPECT_TRUE(KnownEncoding(encoding)) << encoding;
  }
}

TEST(DecodeBody, AnUnknownEncodingIs415) {
  for (const char* encoding : {"compress", "br", "deflate", "zstd, gzip"}) {
    std::string out;
    BodyRead r = Decode("xx", encoding, &out);
    EXPECT_EQ(r.status, 415) << encoding;
    EXPECT_EQ(r.reason, "unsupported content encoding: use zstd, gzip or identity") << encoding;
    EXPECT_FALSE(KnownEncoding(encoding)) << encoding;
  }
}

TEST(DecodeBody, TheLimitAsSentHolds) {
  std::string out;
  BodyRead r = Decode("{\"p\": \"" + std::string(kMaxBody, 'a') + "\"}", "", &out);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.reason, "body too large");
  // Just at the limit is fine.
  r = Decode(std::string(kMaxBody, ' '), "", &out);
  EXPECT_EQ(r.status, 200) << r.reason;
  EXPECT_EQ(out.size(), kMaxBody);
}

TEST(DecodeBody, DecompressionBombsStopAtTheDecodedLimit) {
  std::string huge = "{\"p\": \"" + std::string(kMaxDecoded * 16, 'a') + "\"}";
  for (const auto& [raw, encoding] :
       {std::pair<std::string, std::string>{wire::ZstdCompress(huge), "zstd"}, {Gzip(huge), "gzip"}}) {
    ASSERT_LT(raw.size(), kMaxBody) << encoding;
    std::string out;
    BodyRead r = Decode(raw, encoding, &out);
    EXPECT_EQ(r.status, 413) << encoding;
    EXPECT_EQ(r.reason, "decoded body too large") << encoding;
    EXPECT_EQ(out, "") << encoding;
  }
}

TEST(DecodeBody, WhatCannotBeDecodedIs400) {
  std::string out;
  BodyRead r = Decode("not zstd at all", "zstd", &out);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.reason, "body cannot be decoded");
  r = Decode("not gzip at all", "gzip", &out);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.reason, "body cannot be decoded");
  // A gzip stream cut short (its trailer missing).
  std::string cut = Gzip(std::string(1000, 'x'));
  cut.resize(cut.size() - 6);
  r = Decode(cut, "gzip", &out);
  EXPECT_EQ(r.status, 400) << r.reason;
}

}  // namespace
}  // namespace ferry::httpd
