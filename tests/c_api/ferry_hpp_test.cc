// Tests of ferry.hpp (the header-only C++ wrapper) against the real libferry.so and a real encrypted buffer.
#include "ferry/ferry.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace {

using namespace std::string_view_literals;
using Json = nlohmann::json;

static_assert(!std::is_copy_constructible_v<ferry::Client>);
static_assert(std::is_nothrow_move_constructible_v<ferry::Client>);
static_assert(!std::is_copy_constructible_v<ferry::Options>);
static_assert(std::is_nothrow_move_constructible_v<ferry::Options>);

constexpr std::uint8_t kKey[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6,
                                   7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2};

class FerryHppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry_hpp_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    db_ = (dir_ / "buffer.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  ferry::Options BaseOptions() {
    ferry::Options o;
    o.SetStoragePath(db_)
        .SetEncryptionKey(kKey, sizeof kKey)
        .SetDefaultConsent("analytics", ferry::Consent::kGranted)
        .SetApp("ferry_hpp_test", "1.0");
    return o;
  }

  static Json Stats(const ferry::Client& c) {
    std::string s;
    EXPECT_TRUE(c.StatsJson(&s).ok());
    Json j = Json::parse(s, nullptr, false);
    EXPECT_TRUE(j.is_object()) << s;
    return j;
  }
  static int64_t Invalid(const ferry::Client& c) {
    Json j = Stats(c);
    return j.contains("invalid") && j["invalid"].is_number_integer() ? j["invalid"].get<int64_t>() : -1;
  }
  static std::string Export(const ferry::Client& c) {
    std::string s;
    EXPECT_TRUE(c.ExportLocal(&s).ok());
    return s;
  }

  std::filesystem::path dir_;
  std::string db_;
};

TEST(FerryHppStatus, WrapsTheCStatus) {
  ferry::Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.code(), FERRY_OK);
  ferry::Status denied(FERRY_ERR_CONSENT_DENIED);
  EXPECT_FALSE(denied.ok());
  EXPECT_EQ(denied.code(), FERRY_ERR_CONSENT_DENIED);
  EXPECT_STREQ(denied.str(), ferry_status_str(FERRY_ERR_CONSENT_DENIED));
  EXPECT_TRUE(denied == FERRY_ERR_CONSENT_DENIED);
  EXPECT_TRUE(denied != ok);
  EXPECT_STREQ(ferry::Version(), ferry_version());
}

TEST(FerryHppOptions, KeepsTheFirstFailedStatusAndOpenRefusesIt) {
  ferry::Options o;
  EXPECT_TRUE(o.status().ok());
  o.SetBatchSize(10).SetBatchSize(0).SetEndpoint("ftp://nope").SetFlushIntervalMs(5000);
  EXPECT_EQ(o.status().code(), FERRY_ERR_INVALID_ARGUMENT);  // the first failure is kept, later setters still run

  ferry::Options o2;
  o2.SetEncryptionKey(kKey, 31);
  EXPECT_EQ(o2.status().code(), FERRY_ERR_INVALID_ARGUMENT);
  ferry::Client c;
  EXPECT_EQ(ferry::Client::Open(std::move(o2), &c).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_FALSE(c.is_open());
}

TEST(FerryHppOptions, EmbeddedNulIsRefusedBySetters) {
  ferry::Options o;
  o.SetWriteKey("key\0suffix"sv);
  EXPECT_EQ(o.status().code(), FERRY_ERR_INVALID_ARGUMENT);
  ferry::Options o2;
  o2.SetApp("app", "1.0\0evil"sv);
  EXPECT_EQ(o2.status().code(), FERRY_ERR_INVALID_ARGUMENT);
  ferry::Options o3;
  o3.SetStoragePath("/tmp/a\0b"sv);
  EXPECT_EQ(o3.status().code(), FERRY_ERR_INVALID_ARGUMENT);
  ferry::Options o4;
  o4.SetDataDir("/tmp/a\0b"sv);
  EXPECT_EQ(o4.status().code(), FERRY_ERR_INVALID_ARGUMENT);
  ferry::Options o5;
  o5.SetDataDir("relative/dir");
  EXPECT_EQ(o5.status().code(), FERRY_ERR_INVALID_ARGUMENT);
  ferry::Options o6;
  o6.SetDataDir("/var/lib/app");
  EXPECT_TRUE(o6.status().ok());
  ferry::Options o7;
  o7.SetHoldPending("sensitive", 60000);  // never held
  EXPECT_EQ(o7.status().code(), FERRY_ERR_INVALID_ARGUMENT);
}

TEST_F(FerryHppTest, OpensTracksAndMasks) {
  ferry::Client c;
  ferry::Options o = BaseOptions();
  o.SetHoldPending("marketing", 24 * 3600 * 1000);  // pending marketing is held (opt-in, issue 12)
  ASSERT_TRUE(o.status().ok());
  ASSERT_TRUE(ferry::Client::Open(std::move(o), &c).ok());
  ASSERT_TRUE(c.is_open());
  EXPECT_TRUE(c.Track("signup", R"({"email":"carol@example.com","plan":"pro"})").ok());
  EXPECT_TRUE(c.Track("promo", {}, "marketing").ok());                                       // pending consent, held
  EXPECT_EQ(c.Track("suggestion", {}, "personalization").code(), FERRY_ERR_CONSENT_DENIED);  // pending, not held
  EXPECT_TRUE(c.Screen("Home").ok());
  EXPECT_TRUE(c.Identify("user-7", R"({"tier":"gold"})").ok());
  EXPECT_EQ(c.GetConsent("analytics"), ferry::Consent::kGranted);
  EXPECT_EQ(c.GetConsent("marketing"), ferry::Consent::kPending);

  // A std::string_view that is not NUL-terminated must be passed by its length only.
  std::string buf = "clicked_button_EXTRA";
  EXPECT_TRUE(c.Track(std::string_view(buf).substr(0, 14)).ok());
  // Longer than the wrapper's stack buffer: goes through the heap copy.
  std::string long_props = R"({"text":")" + std::string(1000, 'x') + R"("})";
  EXPECT_TRUE(c.Track("long_props", long_props).ok());

  std::string exported = Export(c);
  EXPECT_NE(exported.find("\"clicked_button\""), std::string::npos);
  EXPECT_EQ(exported.find("clicked_button_EXTRA"), std::string::npos);
  EXPECT_NE(exported.find("[email]"), std::string::npos);
  EXPECT_EQ(exported.find("carol@example.com"), std::string::npos);
  EXPECT_NE(exported.find("user-7"), std::string::npos);
  Json st = Stats(c);
  EXPECT_EQ(st["pending_consent"], 1);

  EXPECT_TRUE(c.SetConsent("marketing", ferry::Consent::kDenied).ok());
  EXPECT_EQ(c.Track("promo2", {}, "marketing").code(), FERRY_ERR_CONSENT_DENIED);
  EXPECT_TRUE(c.Reset().ok());
  EXPECT_EQ(c.Flush(100).code(), FERRY_ERR_NETWORK);  // no endpoint configured
  ferry::Status closed = c.Close(100);
  EXPECT_TRUE(closed.ok() || closed.code() == FERRY_ERR_TIMEOUT) << closed.str();
  EXPECT_FALSE(c.is_open());
  EXPECT_EQ(c.Track("after_close").code(), FERRY_ERR_CLOSED);
  EXPECT_EQ(c.Close(100).code(), FERRY_ERR_CLOSED);
}

TEST_F(FerryHppTest, EmbeddedNulIsRefusedThroughTheAbiAndCounted) {
  ferry::Client c;
  ASSERT_TRUE(ferry::Client::Open(BaseOptions(), &c).ok());
  ASSERT_EQ(Invalid(c), 0);

  EXPECT_EQ(c.Track("evil\0event"sv).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 1);
  EXPECT_EQ(c.Track("ok_name", R"({"a":"b\0c"})"sv).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 2);
  EXPECT_EQ(c.Track("ok_name", {}, "analytics\0x"sv).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 3);
  EXPECT_EQ(c.Screen("Home\0Secret"sv).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 4);
  EXPECT_EQ(c.Screen("Home", "{}\0"sv).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 5);
  EXPECT_EQ(c.Identify("user\0admin"sv).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 6);
  EXPECT_EQ(c.Identify("user", "{}\0"sv).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 7);
  EXPECT_EQ(c.SetConsent("marketing\0"sv, ferry::Consent::kGranted).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 8);
  EXPECT_EQ(c.GetConsent("marketing"), ferry::Consent::kPending);  // not granted by the refused call
  EXPECT_EQ(c.GetConsent("analytics\0x"sv), ferry::Consent::kPending);

  // Nothing of the refused calls reached the buffer, and the last error names the refusal.
  std::string exported = Export(c);
  EXPECT_EQ(exported.find("evil"), std::string::npos);
  EXPECT_EQ(exported.find("ok_name"), std::string::npos);
  EXPECT_EQ(exported.find("admin"), std::string::npos);
  Json st = Stats(c);
  EXPECT_EQ(st["tracked"], 0);
  EXPECT_NE(st["last_error"].get<std::string>(), "");

  // An ordinary invalid input still counts the same way.
  EXPECT_EQ(c.Track("").code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 9);
  EXPECT_EQ(c.StatsJson(nullptr).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 10);
}

TEST_F(FerryHppTest, MoveAndDestructorClose) {
  {
    ferry::Client a;
    ASSERT_TRUE(ferry::Client::Open(BaseOptions(), &a).ok());
    EXPECT_TRUE(a.Track("before_move").ok());
    ferry::Client b(std::move(a));
    EXPECT_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move): moved-from state is specified
    EXPECT_EQ(a.Track("x").code(), FERRY_ERR_CLOSED);
    EXPECT_TRUE(b.is_open());
    EXPECT_TRUE(b.Track("after_move").ok());
    ferry::Client d;
    d = std::move(b);
    EXPECT_TRUE(d.Track("after_assign").ok());
  }  // d's destructor closes the client, committing what it accepted

  // Reopening the same buffer proves the destructor closed it (and released the file) and kept the events.
  ferry::Client again;
  ASSERT_TRUE(ferry::Client::Open(BaseOptions(), &again).ok());
  std::string exported = Export(again);
  EXPECT_NE(exported.find("before_move"), std::string::npos);
  EXPECT_NE(exported.find("after_move"), std::string::npos);
  EXPECT_NE(exported.find("after_assign"), std::string::npos);

  // Opening into a Client that is already open closes the old one first.
  ASSERT_TRUE(ferry::Client::Open(BaseOptions(), &again).ok());
  EXPECT_TRUE(again.is_open());
  EXPECT_NE(Export(again).find("after_assign"), std::string::npos);
}

TEST_F(FerryHppTest, OpenTakesChainedTemporaryAndNamedOptions) {
  ferry::Client c;
  ASSERT_TRUE(ferry::Client::Open(ferry::Options().SetStoragePath(db_).SetEncryptionKey(kKey, sizeof kKey), &c).ok());
  EXPECT_EQ(c.GetConsent("analytics"), ferry::Consent::kPending);  // no default consent given
  ferry::Status closed = c.Close(100);
  EXPECT_TRUE(closed.ok() || closed.code() == FERRY_ERR_TIMEOUT) << closed.str();
  ferry::Options named = BaseOptions();
  ASSERT_TRUE(ferry::Client::Open(named, &c).ok());
  EXPECT_EQ(c.GetConsent("analytics"), ferry::Consent::kGranted);
  EXPECT_EQ(named.status().code(), FERRY_ERR_CLOSED);  // consumed
  EXPECT_EQ(named.release(), nullptr);
}

TEST_F(FerryHppTest, NullOutPointersAreRefused) {
  EXPECT_EQ(ferry::Client::Open(BaseOptions(), nullptr).code(), FERRY_ERR_INVALID_ARGUMENT);
  ferry::Client c;
  ASSERT_TRUE(ferry::Client::Open(BaseOptions(), &c).ok());
  EXPECT_EQ(c.ExportLocal(nullptr).code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Invalid(c), 1);
}

}  // namespace
