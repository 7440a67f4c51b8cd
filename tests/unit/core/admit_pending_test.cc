// Uploader::AdmitPendingEvent: an event the client made while its purpose was pending is sent naming the grant that
// released it; nothing else in a body is touched.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "sdk/core/uploader.h"

namespace ferry::core {
namespace {

TEST(AdmitPendingEvent, NamesTheGrantOnlyWhereTheClientLeftItOpen) {
  const std::string receipt = "0b6f3c1e-6f57-4a0e-9d7e-2f3a4b5c6d7e";
  std::string body =
      R"({"messageId":"m-1","deviceSeq":12,"consentReceipt":null,"type":"track","event":"A","properties":{}})";
  ASSERT_TRUE(Uploader::AdmitPendingEvent(&body, receipt));
  nlohmann::json j = nlohmann::json::parse(body);
  EXPECT_EQ(j["consentReceipt"], receipt);
  EXPECT_EQ(j["deviceSeq"], 12);
  EXPECT_EQ(j["event"], "A");

  // A caller's messageId with escaped quotes and backslashes is skipped as a string.
  std::string escaped = R"({"messageId":"a\"b\\","deviceSeq":3,"consentReceipt":null,"type":"track"})";
  ASSERT_TRUE(Uploader::AdmitPendingEvent(&escaped, receipt));
  EXPECT_EQ(nlohmann::json::parse(escaped)["consentReceipt"], receipt);

  // Already admitted, built elsewhere (a forwarded event), or the words only inside a property: left as they are.
  for (std::string other : {
           std::string(R"({"messageId":"m","deviceSeq":3,"consentReceipt":"r-0","type":"track"})"),
           std::string(R"({"anonymousId":"x","consentReceipt":null,"messageId":"m"})"),
           std::string(R"({"messageId":"m","type":"track","properties":{"x":",\"consentReceipt\":null"}})"),
       }) {
    std::string before = other;
    EXPECT_FALSE(Uploader::AdmitPendingEvent(&other, receipt)) << before;
    EXPECT_EQ(other, before);
  }
  std::string no_receipt = R"({"messageId":"m","deviceSeq":3,"consentReceipt":null})";
  EXPECT_FALSE(Uploader::AdmitPendingEvent(&no_receipt, ""));
}

}  // namespace
}  // namespace ferry::core
