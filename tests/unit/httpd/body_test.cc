// lib/httpd: ReadEncodedBody behind a real cpp-httplib server on loopback, fed by a real cpp-httplib client: every
// encoding, both limits (as sent and decoded), bodies with and without Content-Length, and what cannot be decoded.
#include "lib/httpd/body.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "lib/wire/codec.h"
#include "tests/support/gzip.h"

namespace ferry::httpd {
namespace {

using testsupport::Gzip;
using Json = nlohmann::json;

// A server whose one route answers with what ReadEncodedBody made of the request: {"status", "reason", "unread",
// "body"} (the body as read and decoded).
class BodyServer : public ::testing::Test {
 protected:
  static constexpr size_t kMaxBody = 4096;
  static constexpr size_t kMaxDecoded = 64 * 1024;

  void SetUp() override {
    svr_.set_payload_max_length(kMaxBody);
    svr_.Post("/read", [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      std::string body;
      BodyRead r = ReadEncodedBody(req, res, reader, {kMaxBody, kMaxDecoded}, &body);
      Json j = {{"status", r.status}, {"reason", r.reason}, {"unread", r.unread}, {"body", body}};
      res.status = 200;
      res.set_content(j.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
  }
  void TearDown() override {
    svr_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // Posts `body` with Content-Length and the given Content-Encoding ("" = none).
  Json Post(const std::string& body, const std::string& encoding) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h;
    if (!encoding.empty()) h.emplace("Content-Encoding", encoding);
    auto r = c.Post("/read", h, body, "application/json");
    if (!r) return Json();
    if (r->status != 200) return Json{{"status", r->status}, {"reason", "answered by cpp-httplib"}};
    return Json::parse(r->body, nullptr, false);
  }
  // Posts `body` chunked (no Content-Length).
  Json PostChunked(const std::string& body, const std::string& encoding) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h;
    if (!encoding.empty()) h.emplace("Content-Encoding", encoding);
    auto r = c.Post(
        "/read", h,
        [&body](size_t offset, httplib::DataSink& sink) {
          if (offset < body.size()) {
            sink.write(body.data() + offset, std::min<size_t>(1024, body.size() - offset));
          } else {
            sink.done();
          }
          return true;
        },
        "application/json");
    if (!r) return Json();
    return Json::parse(r->body, nullptr, false);
  }

  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(BodyServer, EveryEncodingIsReadAndDecoded) {
  const std::string text = R"({"batch":[{"event":"x"}]})";
  for (const auto& [body, encoding] : {std::pair<std::string, std::string>{text, ""},
                                       {text, "identity"},
                                       {wire::ZstdCompress(text), "zstd"},
                                       {wire::ZstdCompress(text), "ZSTD"},
                                       {Gzip(text), "gzip"},  // inflated by cpp-httplib
                                       {Gzip(text), "GZIP"},  // passed as sent by cpp-httplib, inflated here
                                       {Gzip(text), "x-gzip"}}) {
    Json r = Post(body, encoding);
    EXPECT_EQ(r.value("status", 0), 200) << encoding << ": " << r.dump();
    EXPECT_EQ(r.value("body", ""), text) << encoding;
    EXPECT_EQ(r.value("reason", "?"), "") << encoding;
  }
  Json r = PostChunked(wire::ZstdCompress(text), "zstd");
  EXPECT_EQ(r.value("status", 0), 200) << r.dump();
  EXPECT_EQ(r.value("body", ""), text);
}

TEST_F(BodyServer, AnUnknownEncodingIsRefusedBeforeTheBodyIsRead) {
  for (const char* encoding : {"compress", "br", "deflate", "zstd, gzip"}) {
    Json r = Post("xx", encoding);
    EXPECT_EQ(r.value("status", 0), 415) << encoding << ": " << r.dump();
    EXPECT_EQ(r.value("reason", ""), "unsupported content encoding: use zstd, gzip or identity") << encoding;
    EXPECT_TRUE(r.value("unread", false)) << encoding;
  }
}

TEST_F(BodyServer, TheLimitAsSentHoldsWithAndWithoutContentLength) {
  std::string big = "{\"p\": \"" + std::string(kMaxBody, 'a') + "\"}";
  // With Content-Length above the limit cpp-httplib refuses to read it (413 in the response it hands over).
  Json r = Post(big, "");
  EXPECT_EQ(r.value("status", 0), 413) << r.dump();
  EXPECT_EQ(r.value("reason", ""), "body too large");
  EXPECT_TRUE(r.value("unread", false));
  // Chunked, no Content-Length: counted as it arrives.
  r = PostChunked(big, "");
  EXPECT_EQ(r.value("status", 0), 413) << r.dump();
  EXPECT_EQ(r.value("reason", ""), "body too large");
  EXPECT_TRUE(r.value("unread", false));
  // Just at the limit is fine.
  std::string exact(kMaxBody, ' ');
  r = Post(exact, "");
  EXPECT_EQ(r.value("status", 0), 200) << r.dump();
  EXPECT_EQ(r.value("body", "").size(), kMaxBody);
}

TEST_F(BodyServer, DecompressionBombsStopAtTheDecodedLimit) {
  std::string huge = "{\"p\": \"" + std::string(kMaxDecoded * 16, 'a') + "\"}";
  std::string zstd = wire::ZstdCompress(huge);
  std::string gzip = Gzip(huge);
  ASSERT_LT(zstd.size(), kMaxBody);
  ASSERT_LT(gzip.size(), kMaxBody);
  // zstd: read whole (small as sent), then decoding stops at the limit.
  Json r = Post(zstd, "zstd");
  EXPECT_EQ(r.value("status", 0), 413) << r.dump();
  EXPECT_EQ(r.value("reason", ""), "decoded body too large");
  EXPECT_FALSE(r.value("unread", true));
  EXPECT_EQ(r.value("body", "?"), "");
  // gzip inflated by cpp-httplib: stopped while it arrives.
  r = Post(gzip, "gzip");
  EXPECT_EQ(r.value("status", 0), 413) << r.dump();
  EXPECT_EQ(r.value("reason", ""), "decoded body too large");
  EXPECT_TRUE(r.value("unread", false));
  // gzip decoded here.
  r = Post(gzip, "GZIP");
  EXPECT_EQ(r.value("status", 0), 413) << r.dump();
  EXPECT_EQ(r.value("reason", ""), "decoded body too large");
}

TEST_F(BodyServer, WhatCannotBeDecodedIs400) {
  Json r = Post("not zstd at all", "zstd");
  EXPECT_EQ(r.value("status", 0), 400) << r.dump();
  EXPECT_EQ(r.value("reason", ""), "body cannot be decoded");
  EXPECT_FALSE(r.value("unread", true));
  r = Post("not gzip at all", "GZIP");
  EXPECT_EQ(r.value("status", 0), 400) << r.dump();
  EXPECT_EQ(r.value("reason", ""), "body cannot be decoded");
  // Inflated by cpp-httplib: the failure shows while reading.
  r = Post("not gzip at all", "gzip");
  EXPECT_EQ(r.value("status", 0), 400) << r.dump();
  EXPECT_EQ(r.value("reason", ""), "body cannot be read or decoded");
  EXPECT_TRUE(r.value("unread", false));
  // A gzip stream cut short.
  std::string cut = Gzip(std::string(1000, 'x'));
  cut.resize(cut.size() - 6);
  r = Post(cut, "GZIP");
  EXPECT_EQ(r.value("status", 0), 400) << r.dump();
}

}  // namespace
}  // namespace ferry::httpd
