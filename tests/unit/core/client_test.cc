// The client through the public C ABI: consent, masking, the encrypted buffer, identity, limits, bad input.
#include <sys/resource.h>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "ferry/ferry.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = dir_.File("buffer.db"); }
  void TearDown() override { Close(); }

  ferry_client* Open(ferry_options* o = nullptr) {
    Close();
    if (o == nullptr) o = BaseOptions(path_);
    EXPECT_EQ(ferry_open(o, &c_), FERRY_OK);
    return c_;
  }
  void Close() {
    if (c_ != nullptr) ferry_close(c_, 0);
    c_ = nullptr;
  }
  std::vector<json> Events(const std::string& type = "") {
    std::vector<json> out;
    json e = Export(c_);
    for (auto& ev : e["events"]) {
      if (type.empty() || ev["type"] == type) out.push_back(ev);
    }
    return out;
  }

  TempDir dir_;
  std::string path_;
  ferry_client* c_ = nullptr;
};

TEST_F(ClientTest, TrackMasksBeforeStoringAndExports) {
  Open();
  ASSERT_EQ(ferry_set_consent(c_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "Order Completed",
                        R"({"email":"zhang.san@example.cn","note":"call 13812345678","password":"hunter2",
                            "price":12.5,"items":3,"nested":{"token":"abc","ip":"192.168.1.20"}})",
                        nullptr),
            FERRY_OK);
  auto evs = Events("track");
  ASSERT_EQ(evs.size(), 1u);
  const json& p = evs[0]["properties"];
  EXPECT_EQ(p["email"], "[email]");
  EXPECT_EQ(p["note"], "call [phone]");
  EXPECT_FALSE(p.contains("password"));
  EXPECT_FALSE(p["nested"].contains("token"));
  EXPECT_EQ(p["nested"]["ip"], "[ip]");
  EXPECT_EQ(p["price"], 12.5);
  EXPECT_EQ(p["items"], 3);
  EXPECT_EQ(evs[0]["event"], "Order Completed");
  EXPECT_EQ(evs[0]["purpose"], "analytics");
  EXPECT_EQ(evs[0]["messageId"].get<std::string>().size(), 36u);
  EXPECT_EQ(evs[0]["context"]["library"]["name"], "ferry");
  EXPECT_EQ(evs[0]["context"]["app"]["name"], "ferry-tests");
  EXPECT_EQ(evs[0]["context"]["consent"]["analytics"], "granted");
  EXPECT_FALSE(evs[0]["context"]["sessionId"].get<std::string>().empty());
}

TEST_F(ClientTest, RepeatedKeysAreMaskedAndBadPropertiesRefused) {
  // A repeated key leaves the single pass for the parsed object (the last one wins), masked the same. A number beyond
  // a double's range and a lone surrogate are not JSON the collector would read: refused.
  Open();
  ASSERT_EQ(ferry_set_consent(c_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "Repeated", R"({"email":"a@b.com","email":"zhang.san@example.cn","n":1})", nullptr),
            FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "Plain", R"({"big":1e300,"note":"call 13812345678","price":1.50})", nullptr), FERRY_OK);
  EXPECT_EQ(ferry_track(c_, "Huge", R"({"huge":1e400})", nullptr), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_track(c_, "Bad", "{\"a\":\"\\udc00\"}", nullptr), FERRY_ERR_INVALID_ARGUMENT);
  auto evs = Events("track");
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0]["properties"], json::parse(R"({"email":"[email]","n":1})"));
  EXPECT_EQ(evs[1]["properties"], json::parse(R"({"big":1e300,"note":"call [phone]","price":1.5})"));
}

TEST_F(ClientTest, ScreenNamesAreMasked) {
  Open();
  ASSERT_EQ(ferry_screen(c_, "Profile of a@b.com", nullptr), FERRY_OK);
  auto evs = Events("screen");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0]["name"], "Profile of [email]");
}

TEST_F(ClientTest, DeniedPurposeIsNeverStored) {
  ferry_options* o = BaseOptions(path_);
  ASSERT_EQ(ferry_options_set_default_consent(o, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  Open(o);
  EXPECT_EQ(ferry_track(c_, "Campaign Opened SECRETMARKER", R"({"x":"VALUEMARKER"})", "marketing"),
            FERRY_ERR_CONSENT_DENIED);
  json s = Stats(c_);
  EXPECT_EQ(s["dropped_consent"], 1);
  EXPECT_EQ(s["queued"], 1);  // only the consent record of the default (marketing denied, issue 12)
  EXPECT_EQ(s["pending_consent"], 0);
  EXPECT_TRUE(Events("track").empty());
}

// BATCHED: the writer, once woken, gathers what arrives within a millisecond into one commit. Events ~0.1 ms apart
// (each would find the thread asleep and be a commit of its own) take at most about one commit a millisecond.
TEST_F(ClientTest, AStreamOfBatchedEventsSharesCommits) {
  ferry_options* o = BaseOptions(path_);
  ASSERT_EQ(ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  Open(o);
  ASSERT_TRUE(Eventually([&] { return Stats(c_)["uncommitted"] == 0; }));
  const int64_t before = Stats(c_)["commits"];
  constexpr int kEvents = 400;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_EQ(ferry_track(c_, "Tick", nullptr, nullptr), FERRY_OK);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  ASSERT_TRUE(Eventually([&] { return Stats(c_)["uncommitted"] == 0; }));
  const double elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  json st = Stats(c_);
  const int64_t commits = st["commits"].get<int64_t>() - before;
  EXPECT_GE(commits, 1);
  // Every commit gathered for a millisecond (none of these ends early: fewer than 256 queued, no flush).
  EXPECT_LE(static_cast<double>(commits), elapsed_ms + 2) << kEvents << " events in " << elapsed_ms << " ms";
  EXPECT_EQ(static_cast<int64_t>(Events("track").size()), kEvents);
}

TEST_F(ClientTest, PendingIsStoredButNotSendableUntilGranted) {
  ferry_options* o = BaseOptions(path_);
  ASSERT_EQ(ferry_options_set_hold_pending(o, "marketing", 24 * 3600 * 1000), FERRY_OK);  // opt in (issue 12)
  Open(o);
  // "marketing" was never configured: pending.
  EXPECT_EQ(ferry_get_consent(c_, "marketing"), FERRY_CONSENT_PENDING);
  ASSERT_EQ(ferry_track(c_, "Promo Seen", nullptr, "marketing"), FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "Promo Seen", nullptr, "marketing"), FERRY_OK);
  Events();  // drains the writer
  json s = Stats(c_);
  EXPECT_EQ(s["pending_consent"], 2);
  EXPECT_EQ(s["queued"], 0);
  ASSERT_EQ(ferry_set_consent(c_, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  s = Stats(c_);
  EXPECT_EQ(s["pending_consent"], 0);
  EXPECT_EQ(s["queued"], 3);  // two events + the consent record (necessary)
}

TEST_F(ClientTest, DenyingPurgesPendingEventsAndRecordsConsent) {
  ferry_options* o = BaseOptions(path_);
  ASSERT_EQ(ferry_options_set_hold_pending(o, "marketing", 24 * 3600 * 1000), FERRY_OK);  // opt in (issue 12)
  ASSERT_EQ(ferry_options_set_hold_pending(o, "analytics", 24 * 3600 * 1000), FERRY_OK);
  Open(o);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(ferry_track(c_, "Promo Seen", nullptr, "marketing"), FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "Page Viewed", nullptr, nullptr), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(c_, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  json s = Stats(c_);
  EXPECT_EQ(s["purged_consent"], 5);
  auto tracks = Events("track");
  ASSERT_EQ(tracks.size(), 1u);
  EXPECT_EQ(tracks[0]["event"], "Page Viewed");
  auto consent = Events("consent");
  ASSERT_EQ(consent.size(), 1u);
  EXPECT_EQ(consent[0]["purpose"], "necessary");
  EXPECT_EQ(consent[0]["properties"]["purpose"], "marketing");
  EXPECT_EQ(consent[0]["properties"]["state"], "denied");
  EXPECT_EQ(consent[0]["properties"]["previous"], "pending");
  EXPECT_EQ(ferry_track(c_, "Promo Seen", nullptr, "marketing"), FERRY_ERR_CONSENT_DENIED);
}

TEST_F(ClientTest, ConsentSurvivesRestart) {
  Open();
  ASSERT_EQ(ferry_set_consent(c_, "personalization", FERRY_CONSENT_GRANTED), FERRY_OK);
  ASSERT_EQ(ferry_set_consent(c_, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  Open();
  EXPECT_EQ(ferry_get_consent(c_, "personalization"), FERRY_CONSENT_GRANTED);
  EXPECT_EQ(ferry_get_consent(c_, "marketing"), FERRY_CONSENT_DENIED);
  EXPECT_EQ(ferry_get_consent(c_, "necessary"), FERRY_CONSENT_GRANTED);
  // A user's choice beats a default given later.
  ferry_options* o = BaseOptions(path_);
  ferry_options_set_default_consent(o, "marketing", FERRY_CONSENT_GRANTED);
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  Open(o);
  EXPECT_EQ(ferry_get_consent(c_, "marketing"), FERRY_CONSENT_DENIED);
  EXPECT_EQ(ferry_get_consent(c_, "analytics"), FERRY_CONSENT_GRANTED);
}

TEST_F(ClientTest, NecessaryAndSensitiveRules) {
  ferry_options* o = BaseOptions(path_);
  EXPECT_EQ(ferry_options_set_default_consent(o, "sensitive", FERRY_CONSENT_GRANTED), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_default_consent(o, "necessary", FERRY_CONSENT_DENIED), FERRY_ERR_INVALID_ARGUMENT);
  Open(o);
  EXPECT_EQ(ferry_get_consent(c_, "sensitive"), FERRY_CONSENT_PENDING);
  EXPECT_EQ(ferry_set_consent(c_, "necessary", FERRY_CONSENT_DENIED), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_set_consent(c_, "sensitive", FERRY_CONSENT_GRANTED), FERRY_OK);
  EXPECT_EQ(ferry_get_consent(c_, "sensitive"), FERRY_CONSENT_GRANTED);
}

// Issue 12: a sensitive event is refused while "sensitive" is not granted (pending included): never held on the device
// to be sent once granted, since consent must come before the processing (PIPL art. 29, GDPR art. 9).
TEST_F(ClientTest, SensitiveEventsAreRefusedWhileNotGrantedNeverHeld) {
  Open(BaseOptions(path_));
  ASSERT_EQ(ferry_get_consent(c_, "sensitive"), FERRY_CONSENT_PENDING);
  EXPECT_EQ(ferry_track(c_, "Glucose Logged", R"({"mg_dl":140})", "sensitive"), FERRY_ERR_CONSENT_DENIED);
  json s = Stats(c_);
  EXPECT_EQ(s["dropped_consent"], 1);
  EXPECT_EQ(s["pending_consent"], 0);
  EXPECT_TRUE(Events("track").empty());
  // Granting brings nothing back; what is tracked from then on is kept.
  ASSERT_EQ(ferry_set_consent(c_, "sensitive", FERRY_CONSENT_GRANTED), FERRY_OK);
  EXPECT_EQ(ferry_track(c_, "Glucose Logged", R"({"mg_dl":120})", "sensitive"), FERRY_OK);
  auto tracks = Events("track");
  ASSERT_EQ(tracks.size(), 1u);
  EXPECT_EQ(tracks[0]["properties"]["mg_dl"], 120);
  ASSERT_EQ(ferry_set_consent(c_, "sensitive", FERRY_CONSENT_DENIED), FERRY_OK);
  EXPECT_EQ(ferry_track(c_, "Glucose Logged", nullptr, "sensitive"), FERRY_ERR_CONSENT_DENIED);
  EXPECT_EQ(Stats(c_)["dropped_consent"], 2);
}

// Issue 12 item 7: an event of a pending purpose is dropped unless the app holds that purpose
// (ferry_options_set_hold_pending); "sensitive" and "necessary" cannot be held. Time-bound holds: clock_test.
TEST_F(ClientTest, HoldingAPendingPurposeIsOptInPerPurpose) {
  ferry_options* bad = BaseOptions(path_);
  EXPECT_EQ(ferry_options_set_hold_pending(nullptr, "marketing", 60000), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_hold_pending(bad, nullptr, 60000), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_hold_pending(bad, "sensitive", 60000), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_hold_pending(bad, "necessary", 60000), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_hold_pending(bad, "Bad Name", 60000), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_hold_pending(bad, "marketing", 999), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_hold_pending(bad, "marketing", 365ull * 24 * 3600 * 1000 + 1),
            FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_hold_pending(bad, "marketing", 365ull * 24 * 3600 * 1000), FERRY_OK);
  ferry_options_free(bad);

  ferry_options* o = BaseOptions(path_, 7, /*hold_analytics=*/false);
  ASSERT_EQ(ferry_options_set_hold_pending(o, "marketing", 24 * 3600 * 1000), FERRY_OK);
  Open(o);
  ASSERT_EQ(ferry_get_consent(c_, "marketing"), FERRY_CONSENT_PENDING);
  ASSERT_EQ(ferry_get_consent(c_, "personalization"), FERRY_CONSENT_PENDING);
  EXPECT_EQ(ferry_track(c_, "Promo Seen", nullptr, "marketing"), FERRY_OK);                        // held
  EXPECT_EQ(ferry_track(c_, "Suggestion", nullptr, "personalization"), FERRY_ERR_CONSENT_DENIED);  // not held
  EXPECT_EQ(ferry_screen(c_, "Home", nullptr), FERRY_ERR_CONSENT_DENIED);                          // analytics
  EXPECT_EQ(ferry_identify(c_, "u-1", nullptr), FERRY_ERR_CONSENT_DENIED);                         // analytics
  EXPECT_EQ(ferry_track(c_, "Glucose Logged", nullptr, "sensitive"), FERRY_ERR_CONSENT_DENIED);    // never held
  auto tracks = Events("track");
  ASSERT_EQ(tracks.size(), 1u);
  EXPECT_EQ(tracks[0]["event"], "Promo Seen");
  EXPECT_TRUE(Events("screen").empty());
  EXPECT_TRUE(Events("identify").empty());
  json s = Stats(c_);
  EXPECT_EQ(s["pending_consent"], 1);
  EXPECT_EQ(s["dropped_pending"], 3);
  EXPECT_EQ(s["dropped_consent"], 1);  // the sensitive one, as before
  // The held event is released by the grant (as PendingIsStoredButNotSendableUntilGranted shows).
  ASSERT_EQ(ferry_set_consent(c_, "marketing", FERRY_CONSENT_GRANTED), FERRY_OK);
  s = Stats(c_);
  EXPECT_EQ(s["pending_consent"], 0);
  EXPECT_EQ(s["queued"], 2);  // the event + the consent record
}

TEST_F(ClientTest, BadInputIsRefusedCountedAndStoresNothing) {
  Open();
  std::string long_name(201, 'a');
  std::string big = "{\"blob\":\"" + std::string(33 * 1024, 'x') + "\"}";
  std::string deep;
  for (int i = 0; i < 33; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 33; ++i) deep += "}";
  int refused = 0;
  auto expect_invalid = [&](ferry_status s) {
    EXPECT_EQ(s, FERRY_ERR_INVALID_ARGUMENT);
    refused++;
  };
  expect_invalid(ferry_track(c_, nullptr, nullptr, nullptr));
  expect_invalid(ferry_track(c_, "", nullptr, nullptr));
  expect_invalid(ferry_track(c_, long_name.c_str(), nullptr, nullptr));
  expect_invalid(ferry_track(c_, "bad \xc3\x28 utf8", nullptr, nullptr));
  expect_invalid(ferry_track(c_, "e", "{not json", nullptr));
  expect_invalid(ferry_track(c_, "e", "[1,2]", nullptr));
  expect_invalid(ferry_track(c_, "e", "\"str\"", nullptr));
  expect_invalid(ferry_track(c_, "e", "{\"k\":\"\xff\xfe\"}", nullptr));
  expect_invalid(ferry_track(c_, "e", big.c_str(), nullptr));
  expect_invalid(ferry_track(c_, "e", deep.c_str(), nullptr));
  expect_invalid(ferry_track(c_, "e", nullptr, "Bad Purpose"));
  expect_invalid(ferry_screen(c_, nullptr, nullptr));
  expect_invalid(ferry_identify(c_, "", nullptr));
  expect_invalid(ferry_identify(c_, "u1", "[]"));
  expect_invalid(ferry_set_consent(c_, nullptr, FERRY_CONSENT_GRANTED));
  expect_invalid(ferry_set_consent(c_, "x", static_cast<ferry_consent>(7)));
  EXPECT_EQ(ferry_track(nullptr, "e", nullptr, nullptr), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_stats_json(c_, nullptr), FERRY_ERR_INVALID_ARGUMENT);
  refused++;
  // 32 levels is the limit, and is fine.
  std::string ok_deep;
  for (int i = 0; i < 32; ++i) ok_deep += "{\"a\":";
  ok_deep += "1";
  for (int i = 0; i < 32; ++i) ok_deep += "}";
  EXPECT_EQ(ferry_track(c_, "e", ok_deep.c_str(), nullptr), FERRY_OK);
  json s = Stats(c_);
  EXPECT_EQ(s["invalid"], refused);
  EXPECT_EQ(Events("track").size(), 1u);
  EXPECT_EQ(Events("identify").size(), 0u);
}

TEST_F(ClientTest, BufferHoldsNoPlaintextAndNeedsTheKey) {
  Open();
  ferry_set_consent(c_, "analytics", FERRY_CONSENT_GRANTED);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(ferry_track(c_, "PlaintextEventMarker", R"({"city":"VALUEMARKERHANGZHOU"})", nullptr), FERRY_OK);
  }
  ASSERT_EQ(Events("track").size(), 50u);
  Close();
  std::string bytes = ReadAll(path_);
  ASSERT_GT(bytes.size(), 4096u);
  EXPECT_EQ(bytes.find("PlaintextEventMarker"), std::string::npos);
  EXPECT_EQ(bytes.find("VALUEMARKERHANGZHOU"), std::string::npos);
  EXPECT_EQ(bytes.find("SQLite format 3"), std::string::npos);
  EXPECT_EQ(bytes.find("analytics"), std::string::npos);

  // The wrong key: ferry_open says so, the file is left as it is, the log says why, nothing crashes.
  std::string before = ReadAll(path_);
  ferry_client* wrong = nullptr;
  EXPECT_EQ(ferry_open(BaseOptions(path_, /*key_seed=*/99), &wrong), FERRY_ERR_BUFFER_UNREADABLE);
  EXPECT_EQ(wrong, nullptr);
  EXPECT_EQ(ReadAll(path_), before);
  bool logged = false;
  for (const auto& l : LogLines()) logged |= l.find("nothing was changed") != std::string::npos;
  EXPECT_TRUE(logged);
  // The right key still reads everything.
  Open();
  EXPECT_EQ(Events("track").size(), 50u);
}

TEST_F(ClientTest, WrongKeyResetsOnlyWhenTheAppChoseItAndConsentStaysDenied) {
  ferry_options* o = BaseOptions(path_);
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  Open(o);
  ASSERT_EQ(ferry_set_consent(c_, "marketing", FERRY_CONSENT_DENIED), FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "before", nullptr, nullptr), FERRY_OK);
  EXPECT_EQ(Stats(c_)["buffer_resets"], 0);
  EXPECT_EQ(Stats(c_)["consent_reset"], false);
  Close();

  o = BaseOptions(path_, /*key_seed=*/99);
  ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
  ferry_options_set_default_consent(o, "marketing", FERRY_CONSENT_GRANTED);
  EXPECT_EQ(ferry_options_set_reset_unreadable_buffer(o, 2), FERRY_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(ferry_options_set_reset_unreadable_buffer(o, 1), FERRY_OK);
  Open(o);
  json st = Stats(c_);
  EXPECT_EQ(st["buffer_resets"], 1);
  EXPECT_EQ(st["consent_reset"], true);
  EXPECT_NE(st["last_error"].get<std::string>().find("reset"), std::string::npos);
  EXPECT_TRUE(Events("track").empty());
  bool aside = false;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    aside |= e.path().filename().string().rfind("buffer.db.unreadable-", 0) == 0;
  }
  EXPECT_TRUE(aside);
  // The denial is unknown now: no purpose turns pending or takes its default; each is denied until the app sets it.
  EXPECT_EQ(ferry_get_consent(c_, "marketing"), FERRY_CONSENT_DENIED);
  EXPECT_EQ(ferry_get_consent(c_, "analytics"), FERRY_CONSENT_DENIED);
  EXPECT_EQ(ferry_get_consent(c_, "necessary"), FERRY_CONSENT_GRANTED);
  EXPECT_EQ(ferry_track(c_, "refused", nullptr, nullptr), FERRY_ERR_CONSENT_DENIED);
  ASSERT_EQ(ferry_set_consent(c_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  EXPECT_EQ(ferry_track(c_, "after", nullptr, nullptr), FERRY_OK);
  Close();
  // It holds across restarts; the app's choice is kept.
  o = BaseOptions(path_, /*key_seed=*/99);
  ferry_options_set_default_consent(o, "marketing", FERRY_CONSENT_GRANTED);
  Open(o);
  EXPECT_EQ(ferry_get_consent(c_, "marketing"), FERRY_CONSENT_DENIED);
  EXPECT_EQ(ferry_get_consent(c_, "analytics"), FERRY_CONSENT_GRANTED);
  EXPECT_EQ(Stats(c_)["consent_reset"], true);
  EXPECT_EQ(Stats(c_)["buffer_resets"], 0);  // counted by the open that reset
}

TEST_F(ClientTest, AJunkFileIsReportedAndResetOnlyOnRequest) {
  {
    std::ofstream f(path_, std::ios::binary);
    std::string junk(8192, '\x5a');
    f << junk;
  }
  ferry_client* c = nullptr;
  EXPECT_EQ(ferry_open(BaseOptions(path_), &c), FERRY_ERR_BUFFER_UNREADABLE);
  EXPECT_EQ(ReadAll(path_), std::string(8192, '\x5a'));
  ferry_options* o = BaseOptions(path_);
  ferry_options_set_reset_unreadable_buffer(o, 1);
  Open(o);
  ASSERT_EQ(ferry_set_consent(c_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  EXPECT_EQ(ferry_track(c_, "after corruption", nullptr, nullptr), FERRY_OK);
  EXPECT_EQ(Events("track").size(), 1u);
}

TEST_F(ClientTest, ASecondClientOnTheBufferIsRefusedAndNothingMoves) {
  Open();
  ASSERT_EQ(ferry_track(c_, "first", nullptr, nullptr), FERRY_OK);
  for (uint8_t seed : {uint8_t{7}, uint8_t{99}}) {
    ferry_options* o = BaseOptions(path_, seed);
    ferry_options_set_reset_unreadable_buffer(o, 1);
    ferry_client* second = nullptr;
    EXPECT_EQ(ferry_open(o, &second), FERRY_ERR_STORAGE);
    EXPECT_EQ(second, nullptr);
  }
  bool logged = false;
  for (const auto& l : LogLines()) logged |= l.find("in use") != std::string::npos;
  EXPECT_TRUE(logged);
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    std::string name = e.path().filename().string();
    EXPECT_EQ(name.find(".corrupt-"), std::string::npos) << name;
    EXPECT_EQ(name.find(".unreadable-"), std::string::npos) << name;
  }
  ASSERT_EQ(ferry_track(c_, "second", nullptr, nullptr), FERRY_OK);
  EXPECT_EQ(Events("track").size(), 2u);
}

TEST_F(ClientTest, TwoAppsGetTwoBuffers) {
  std::string old_xdg = getenv("XDG_DATA_HOME") ? getenv("XDG_DATA_HOME") : "";
  setenv("XDG_DATA_HOME", dir_.path().c_str(), 1);
  auto open_app = [](const char* app, ferry_client** c) {
    ferry_options* o = ferry_options_new();
    ferry_options_set_app(o, app, "1.0");
    ferry_options_set_default_consent(o, "analytics", FERRY_CONSENT_GRANTED);
    return ferry_open(o, c);
  };
  ferry_client* a = nullptr;
  ferry_client* b = nullptr;
  ferry_client* odd = nullptr;
  ASSERT_EQ(open_app("shop", &a), FERRY_OK);
  ASSERT_EQ(open_app("news", &b), FERRY_OK);  // at the same time: no lock refusal, no shared file
  ASSERT_EQ(open_app("News App/β", &odd), FERRY_OK);
  ASSERT_EQ(ferry_track(a, "shop event", nullptr, nullptr), FERRY_OK);
  json sa = Stats(a), sb = Stats(b), so = Stats(odd);
  EXPECT_EQ(sa["storage_path"], dir_.path() + "/ferry/shop/buffer.db");
  EXPECT_EQ(sb["storage_path"], dir_.path() + "/ferry/news/buffer.db");
  std::string odd_path = so["storage_path"];
  EXPECT_EQ(odd_path.rfind(dir_.path() + "/ferry/News_App___-", 0), 0u) << odd_path;
  for (const std::string& p :
       {sa["storage_path"].get<std::string>(), sb["storage_path"].get<std::string>(), odd_path}) {
    EXPECT_TRUE(std::filesystem::exists(p)) << p;
    EXPECT_TRUE(std::filesystem::exists(p + ".key")) << p;
  }
  // Separate ids too.
  EXPECT_NE(Export(a)["anonymousId"], Export(b)["anonymousId"]);
  // Each buffer holds the consent record of its own default (issue 12), and only a's holds the event.
  EXPECT_EQ(Export(a)["events"].size(), 2u);
  EXPECT_EQ(Export(b)["events"].size(), 1u);
  ferry_close(a, 0);
  ferry_close(b, 0);
  ferry_close(odd, 0);
  if (old_xdg.empty()) {
    unsetenv("XDG_DATA_HOME");
  } else {
    setenv("XDG_DATA_HOME", old_xdg.c_str(), 1);
  }
}

TEST_F(ClientTest, ControlCharactersInIdsAndNamesAreRefused) {
  Open();
  json before = Stats(c_);
  EXPECT_EQ(ferry_track(c_, "bad\x01name", nullptr, nullptr), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_track(c_, "tab\tname", nullptr, nullptr), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_track(c_, "del\x7f", nullptr, nullptr), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_track(c_, "c1 \xc2\x85 next line", nullptr, nullptr), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_screen(c_, "screen\n", nullptr), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_identify(c_, "carol\x1fx", nullptr), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Stats(c_)["invalid"], before["invalid"].get<int64_t>() + 6);
  EXPECT_TRUE(Events().empty());
  EXPECT_EQ(ferry_identify(c_, "carol-ü", nullptr), FERRY_OK);  // non-ASCII text is fine
  EXPECT_EQ(ferry_track(c_, "Café ordered", nullptr, nullptr), FERRY_OK);
}

TEST_F(ClientTest, ADamagedBufferIsSalvagedAtOpen) {
  Open();
  for (int i = 0; i < 1500; ++i) {
    std::string props = "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(200, 'x') + "\"}";
    ASSERT_EQ(ferry_track(c_, "kept", props.c_str(), nullptr), FERRY_OK);
  }
  ASSERT_TRUE(Eventually([&] {
    json st = Stats(c_);
    return st["pending_consent"].get<int64_t>() + st["queued"].get<int64_t>() == 1500;
  }));
  Close();
  DamageMiddlePage(path_);
  Open();
  json st = Stats(c_);
  // Three damaged pages cost their rows: ~37 of these compressed events fill a leaf page.
  EXPECT_GE(st["salvaged"].get<int64_t>(), 1300);
  EXPECT_LT(st["salvaged"].get<int64_t>(), 1500);
  EXPECT_EQ(st["pending_consent"], st["salvaged"]);
  EXPECT_EQ(static_cast<int64_t>(Events("track").size()), st["salvaged"].get<int64_t>());
  EXPECT_EQ(st["buffer_resets"], 0);
}

TEST_F(ClientTest, PlatformKeyStoreKeepsTheKey) {
  ferry_options* o = ferry_options_new();
  ferry_options_set_storage_path(o, path_.c_str());
  ferry_options_set_hold_pending(o, "analytics", 24 * 3600 * 1000);  // pending analytics is held (issue 12 item 7)
  Open(o);
  ASSERT_EQ(ferry_track(c_, "kept", nullptr, nullptr), FERRY_OK);
  Close();
  struct stat st {};
  ASSERT_EQ(stat((path_ + ".key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  o = ferry_options_new();
  ferry_options_set_storage_path(o, path_.c_str());
  ferry_options_set_hold_pending(o, "analytics", 24 * 3600 * 1000);
  Open(o);
  EXPECT_EQ(Events("track").size(), 1u);
}

TEST_F(ClientTest, IdentityPersistsAndResetRotates) {
  Open();
  json e = Export(c_);
  std::string anon = e["anonymousId"];
  ASSERT_EQ(anon.size(), 36u);
  EXPECT_EQ(anon[14], '4');  // UUID version 4
  EXPECT_TRUE(e["userId"].is_null());
  ASSERT_EQ(ferry_identify(c_, "user-42", R"({"plan":"pro","email":"x@y.cn"})"), FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "After Login", nullptr, nullptr), FERRY_OK);
  Open();
  e = Export(c_);
  EXPECT_EQ(e["anonymousId"], anon);
  EXPECT_EQ(e["userId"], "user-42");
  auto ids = Events("identify");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0]["userId"], "user-42");
  EXPECT_EQ(ids[0]["traits"]["plan"], "pro");
  EXPECT_EQ(ids[0]["traits"]["email"], "[email]");
  auto tracks = Events("track");
  ASSERT_EQ(tracks.size(), 1u);
  EXPECT_EQ(tracks[0]["userId"], "user-42");
  ASSERT_EQ(ferry_reset(c_), FERRY_OK);
  e = Export(c_);
  EXPECT_NE(e["anonymousId"], anon);
  EXPECT_TRUE(e["userId"].is_null());
  EXPECT_EQ(e["previousAnonymousIds"][0], anon);
  ASSERT_EQ(ferry_track(c_, "After Logout", nullptr, nullptr), FERRY_OK);
  auto after = Events("track");
  EXPECT_FALSE(after.back().contains("userId"));
  EXPECT_EQ(after.back()["anonymousId"], e["anonymousId"]);
}

TEST_F(ClientTest, SizeLimitEvictsOldestNonNecessaryFirst) {
  ferry_options* o = BaseOptions(path_);
  ASSERT_EQ(ferry_options_set_max_storage_bytes(o, 64 * 1024), FERRY_OK);
  Open(o);
  ASSERT_EQ(ferry_set_consent(c_, "analytics", FERRY_CONSENT_GRANTED), FERRY_OK);
  std::string props = "{\"pad\":\"" + std::string(900, 'p') + "\",\"n\":";
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(ferry_track(c_, "Big", (props + std::to_string(i) + "}").c_str(), nullptr), FERRY_OK);
  }
  auto tracks = Events("track");
  json s = Stats(c_);
  EXPECT_GT(s["evicted"].get<int>(), 0);
  EXPECT_LE(s["storage_bytes"].get<int64_t>(), 64 * 1024);
  EXPECT_EQ(static_cast<int>(tracks.size()) + s["evicted"].get<int>(), 300)
      << "survivors " << tracks.size() << " evicted " << s["evicted"] << " first " << tracks.front()["properties"]["n"]
      << " log: " << [] {
           std::string all;
           for (auto& l : LogLines()) all += l + "\n";
           return all;
         }();
  // The newest survive; the consent record (necessary) survives.
  EXPECT_EQ(tracks.back()["properties"]["n"], 299);
  EXPECT_EQ(Events("consent").size(), 1u);
}

// The session timeout and the age limit are checked on a manual clock: clock_test.cc.

TEST_F(ClientTest, DiskFullGivesStorageErrorAndRecovers) {
  ferry_options* o = BaseOptions(path_);
  ferry_options_set_durability(o, FERRY_DURABILITY_SYNC);
  Open(o);
  ASSERT_EQ(ferry_track(c_, "before", nullptr, nullptr), FERRY_OK);
  // Simulate a full disk: no file may grow past its current size.
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit old {};
  getrlimit(RLIMIT_FSIZE, &old);
  struct rlimit lim = old;
  lim.rlim_cur = static_cast<rlim_t>(std::filesystem::file_size(path_ + "-wal") + 1);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  std::string pad = "{\"pad\":\"" + std::string(20000, 'z') + "\"}";
  ferry_status st = FERRY_OK;
  for (int i = 0; i < 50 && st == FERRY_OK; ++i) st = ferry_track(c_, "during", pad.c_str(), nullptr);
  EXPECT_EQ(st, FERRY_ERR_STORAGE);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  EXPECT_EQ(ferry_track(c_, "after", nullptr, nullptr), FERRY_OK);
  auto tracks = Events("track");
  ASSERT_GE(tracks.size(), 2u);
  EXPECT_EQ(tracks.front()["event"], "before");
  EXPECT_EQ(tracks.back()["event"], "after");
  EXPECT_GT(Stats(c_)["storage_errors"].get<int>(), 0);
}

TEST_F(ClientTest, FlushWithoutEndpointIsANetworkError) {
  Open();
  EXPECT_EQ(ferry_flush(c_, 100), FERRY_ERR_NETWORK);
}

TEST_F(ClientTest, OptionsRefuseBadValues) {
  ferry_options* o = ferry_options_new();
  EXPECT_EQ(ferry_options_set_endpoint(o, "http://collector.example.com"), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_endpoint(o, "ftp://x"), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_endpoint(o, "http://127.0.0.1:8080"), FERRY_OK);
  EXPECT_EQ(ferry_options_set_endpoint(o, "https://collect.example.com/"), FERRY_OK);
  uint8_t k[16] = {0};
  EXPECT_EQ(ferry_options_set_encryption_key(o, k, sizeof k), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_batch_size(o, 0), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_batch_size(o, 1001), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_flush_interval_ms(o, 5), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_max_storage_bytes(o, 100), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_pii_rules(o, "{bad"), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_pii_rules(o, R"({"detectors":{"email":"explode"}})"), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_write_key(o, "has space"), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry_options_set_durability(o, static_cast<ferry_durability>(5)), FERRY_ERR_INVALID_ARGUMENT);
  ferry_options_free(o);
  ferry_client* c = reinterpret_cast<ferry_client*>(0x1);
  EXPECT_EQ(ferry_open(nullptr, &c), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(c, nullptr);
}

TEST_F(ClientTest, CustomPiiRulesApply) {
  ferry_options* o = BaseOptions(path_);
  ASSERT_EQ(ferry_options_set_pii_rules(o, R"({"detectors":{"email":"hash"},"paths":{"user.phone":"drop"},
                       "hash_key":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"})"),
            FERRY_OK);
  Open(o);
  ASSERT_EQ(ferry_track(c_, "e", R"({"email":"a@b.com","user":{"phone":"13812345678","tier":"gold"}})", nullptr),
            FERRY_OK);
  ASSERT_EQ(ferry_track(c_, "e", R"({"email":"a@b.com"})", nullptr), FERRY_OK);
  auto tracks = Events("track");
  ASSERT_EQ(tracks.size(), 2u);
  std::string h = tracks[0]["properties"]["email"];
  EXPECT_EQ(h.rfind("h:", 0), 0u);
  EXPECT_EQ(tracks[1]["properties"]["email"], h);  // stable pseudonym
  EXPECT_FALSE(tracks[0]["properties"]["user"].contains("phone"));
  EXPECT_EQ(tracks[0]["properties"]["user"]["tier"], "gold");
}

}  // namespace
}  // namespace ferry::testing
