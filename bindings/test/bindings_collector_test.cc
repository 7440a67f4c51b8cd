// The C ABI's later functions through each binding, against a real ferry-collector over TLS on loopback (public
// intake on) and the real ferryctl: the privacy notice and its language, the data directory, the session timeout,
// re-consent narrowed to changed purposes, a minor and a guardian's grant, a request filed from the device (its
// state read, the copy fetched once after an officer approved it with ferryctl), a verification code for the
// self-service page, a receipt kept when the collector cannot be reached, and a reset of an unreadable buffer.
// C++ (ferry.hpp) runs here; Python (pytest, bindings/python/collector_tests) and Java (io.ferry.DeviceTest) run as
// child processes given the collector's address, write key, CA, an officer's token and ferryctl. Here we then check
// what the collector holds: the consent records name the notice and its language, the minor's mark and the
// guardian's grant are on record.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "ferry/ferry.hpp"
#include "tests/support/collector_process.h"

namespace {

using ferry::testsupport::CollectorProcess;
using nlohmann::json;

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

class BindingsCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-bindings-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ferry::testsupport::CollectorOptions o;
    o.project = "shop";
    o.extra_args = {"--public-requests", "on"};
    std::string err;
    col_ = CollectorProcess::Start(o, &err);
    ASSERT_NE(col_, nullptr) << err;
    token_ = col_->CreateAdminToken("compliance", "officer");
    ASSERT_FALSE(token_.empty());
  }
  void TearDown() override {
    col_.reset();
    if (!dir_.empty()) {
      std::string out;
      ferry::testsupport::RunCommand("rm -rf " + Quote(dir_), &out);
    }
  }

  // `ferryctl --json ARGS` against the collector as the officer.
  json Ctl(const std::string& args) {
    std::string out;
    int rc = ferry::testsupport::RunCommand(Quote(ferry::testsupport::FerryctlBinary()) + " --url " +
                                                Quote(col_->url()) + " --token " + Quote(token_) + " --ca-file " +
                                                Quote(col_->ca_file()) + " --json " + args + " 2>&1",
                                            &out);
    EXPECT_EQ(rc, 0) << args << ": " << out;
    json doc = json::parse(out, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << args << ": " << out;
    return doc;
  }

  // The environment a binding's child process gets: where the collector is and how to act as its officer.
  std::string ChildEnv(const std::string& user) const {
    return "FERRY_TEST_URL=" + Quote(col_->url()) + " FERRY_TEST_WRITE_KEY=" + Quote(col_->write_key()) +
           " FERRY_TEST_CA=" + Quote(col_->ca_file()) + " FERRY_TEST_TOKEN=" + Quote(token_) +
           " FERRY_TEST_FERRYCTL=" + Quote(ferry::testsupport::FerryctlBinary()) + " FERRY_TEST_DIR=" + Quote(dir_) +
           " FERRY_TEST_USER=" + Quote(user) + " ";
  }

  // What the collector holds about `user`: the consent records carry the notice and its language, the minor's mark
  // and the guardian's grant of marketing are on record, and the event the guardian's grant admitted arrived.
  void ExpectRecordsAtCollector(const std::string& user) {
    auto r = ferry::testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/" + user + "/export", "",
                                             {"Authorization: Bearer " + token_}, col_->ca_file());
    ASSERT_EQ(r.status, 200) << r.body;
    json doc = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << r.body;
    ASSERT_EQ(doc["projects"].size(), 1u) << r.body;
    const json& p = doc["projects"][0];
    ASSERT_TRUE(p["consentHistory"].is_array()) << p.dump();
    bool explicit_grant = false, minor_mark = false;
    std::string guardian_message;
    for (const json& c : p["consentHistory"]) {
      // Every record made under this run's options names the notice and the language it was shown in.
      if (c.value("noticeVersion", "") == "2026-11") {
        EXPECT_EQ(c["noticeId"], "privacy-notice") << c.dump();
        EXPECT_EQ(c["language"], "de-CH") << c.dump();
      }
      const std::string method = c.value("method", "");
      if (method == "explicit" && c["purpose"] == "marketing" && c["state"] == "granted") {
        explicit_grant = true;
        EXPECT_EQ(c["noticeVersion"], "2026-11") << c.dump();
        EXPECT_EQ(c["language"], "de-CH") << c.dump();
      }
      if (method == "minor" && c["purpose"] == "necessary") minor_mark = true;
      if (method == "guardian" && c["purpose"] == "marketing" && c["state"] == "granted") {
        guardian_message = c.value("messageId", "");
        EXPECT_EQ(c["noticeId"], "privacy-notice") << c.dump();
      }
    }
    EXPECT_TRUE(explicit_grant) << p["consentHistory"].dump();
    EXPECT_TRUE(minor_mark) << p["consentHistory"].dump();
    ASSERT_FALSE(guardian_message.empty()) << p["consentHistory"].dump();
    std::set<std::string> names;
    bool guardian_says_minor = false;
    for (const json& e : p["events"]) {
      names.insert(e.value("event", ""));
      // The guardian's record went out while the user was marked: it says so on the wire.
      if (e.value("messageId", "") == guardian_message && e.contains("properties")) {
        guardian_says_minor = e["properties"].value("minor", false);
      }
    }
    EXPECT_TRUE(guardian_says_minor) << p["events"].dump();
    EXPECT_EQ(names.count("Viewed"), 1u) << p["events"].dump();
    // The device's access request was delivered to it.
    bool delivered = false;
    json requests = Ctl("requests");
    for (const json& q : requests["requests"]) {
      if (q["source"] == "device" && q["state"] == "completed" && q["delivered"].is_object() &&
          q["delivered"]["by"] == "device") {
        delivered = true;
      }
    }
    EXPECT_TRUE(delivered) << requests.dump();
  }

  void RunChild(const std::string& cmd) {
    std::string out;
    int rc = ferry::testsupport::RunCommand(cmd + " 2>&1", &out);
    std::printf("%s", out.c_str());  // what the binding's side saw, for the log
    ASSERT_EQ(rc, 0) << out;
  }

  std::string dir_, token_;
  std::unique_ptr<CollectorProcess> col_;
};

ferry::Options DeviceOptions(const CollectorProcess& col, const std::string& data_dir) {
  ferry::Options o;
  o.SetEndpoint(col.url())
      .SetWriteKey(col.write_key())
      .SetCaFile(col.ca_file())
      .SetFlushIntervalMs(3600000)
      .SetDataDir(data_dir)
      .SetApp("bindings-test", "1.0")
      .SetDefaultConsent("analytics", ferry::Consent::kGranted)
      .SetSessionTimeoutMs(60000)
      .SetResetUnreadableBuffer(false);
  return o;
}

json Parse(const std::string& s) { return json::parse(s, nullptr, false); }

json Stats(const ferry::Client& c) {
  std::string s;
  EXPECT_TRUE(c.StatsJson(&s).ok());
  return Parse(s);
}

TEST_F(BindingsCollectorTest, Cpp) {
  const std::string data = dir_ + "/cpp-data", user = "cpp-user";
  {
    ferry::Client c;
    ferry::Options o = DeviceOptions(*col_, data);
    o.SetNotice("privacy-notice", "2026-11").SetConsentLanguage("de-CH").SetNoticeChangedPurposes("marketing");
    ASSERT_TRUE(o.status().ok()) << o.status().str();
    ASSERT_TRUE(ferry::Client::Open(o, &c).ok());
    // The buffer lies in the data directory given.
    EXPECT_TRUE(Exists(data + "/ferry/bindings-test/buffer.db"));

    ASSERT_TRUE(c.Identify(user).ok());
    ASSERT_TRUE(c.SetConsent("marketing", ferry::Consent::kGranted).ok());
    EXPECT_EQ(c.GetConsent("marketing"), ferry::Consent::kGranted);
    EXPECT_EQ(Stats(c)["minor"], false);
    ASSERT_TRUE(c.SetMinor(true).ok());
    EXPECT_EQ(Stats(c)["minor"], true);
    EXPECT_EQ(c.GetConsent("marketing"), ferry::Consent::kPending);  // a minor's own grant admits nothing
    EXPECT_EQ(c.Track("Viewed", {}, "marketing").code(), FERRY_ERR_CONSENT_DENIED);
    ASSERT_TRUE(c.SetConsentGuardian("marketing", ferry::Consent::kGranted).ok());
    EXPECT_EQ(c.GetConsent("marketing"), ferry::Consent::kGranted);
    EXPECT_EQ(c.SetConsentGuardian("necessary", ferry::Consent::kDenied).code(), FERRY_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(c.SetConsentGuardian(std::string_view("mark\0eting", 10), ferry::Consent::kGranted).code(),
              FERRY_ERR_INVALID_ARGUMENT);
    ASSERT_TRUE(c.Track("Viewed", {}, "marketing").ok());
    ASSERT_TRUE(c.Flush(20000).ok());

    // A request filed from the device: registered, awaiting the officer; no copy before approval.
    std::string text;
    ferry::Status s = c.Request("access", 20000, &text);
    ASSERT_TRUE(s.ok()) << s.str() << " " << text;
    json receipt = Parse(text);
    ASSERT_TRUE(receipt["reference"].is_string()) << text;
    EXPECT_EQ(receipt["kind"], "access");
    EXPECT_EQ(receipt["state"], "awaiting_verification");
    const std::string handle = receipt["receipt"], reference = receipt["reference"];
    ASSERT_TRUE(c.RequestStatus(handle, 20000, &text).ok());
    json status = Parse(text);
    EXPECT_EQ(status["state"], "awaiting_verification") << text;
    EXPECT_EQ(status["copyReady"], false) << text;
    text = "untouched";
    ASSERT_TRUE(c.RequestCopy(handle, 20000, &text).ok());
    EXPECT_EQ(text, "");  // not ready: empty

    Ctl("requests approve " + reference + " --method app-login");
    ASSERT_TRUE(c.RequestStatus(handle, 20000, &text).ok());
    EXPECT_EQ(Parse(text)["copyReady"], true) << text;
    ASSERT_TRUE(c.RequestCopy(handle, 20000, &text).ok());
    json copy = Parse(text);
    ASSERT_TRUE(copy.is_object()) << text;
    EXPECT_EQ(copy["format"], "ferry-subject-export/1");
    ASSERT_TRUE(c.RequestStatus(handle, 20000, &text).ok());
    EXPECT_EQ(Parse(text)["state"], "completed") << text;
    EXPECT_EQ(Parse(text)["delivered"], true) << text;

    // A code for the self-service page.
    ASSERT_TRUE(c.RequestVerificationCode(20000, &text).ok());
    json code = Parse(text);
    ASSERT_TRUE(code["code"].is_string()) << text;
    EXPECT_EQ(code["code"].get<std::string>().size(), 8u) << text;
    EXPECT_TRUE(code["expiresAt"].is_string()) << text;

    // The app's mistakes.
    text = "untouched";
    EXPECT_EQ(c.Request("Not A Kind", 1000, &text).code(), FERRY_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(c.RequestStatus("no-such-receipt", 1000, &text).code(), FERRY_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(text, "untouched");
    ASSERT_TRUE(c.Close(20000).ok());
    EXPECT_EQ(c.Request("access", 1000, &text).code(), FERRY_ERR_CLOSED);
    EXPECT_EQ(c.SetMinor(false).code(), FERRY_ERR_CLOSED);
  }
  ExpectRecordsAtCollector(user);

  {
    // A new notice version whose changes concern analytics only: the guardian's marketing grant stands.
    ferry::Client c;
    ferry::Options o = DeviceOptions(*col_, data);
    o.SetNotice("privacy-notice", "2026-12").SetConsentLanguage("de-CH").SetNoticeChangedPurposes("analytics");
    ASSERT_TRUE(ferry::Client::Open(o, &c).ok());
    EXPECT_EQ(c.GetConsent("marketing"), ferry::Consent::kGranted);
    EXPECT_EQ(Stats(c)["minor"], true);  // persisted
  }
  EXPECT_EQ(ferry::Options().SetNoticeChangedPurposes("").status().code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry::Options().SetNotice("n", std::string_view("v\0x", 3)).status().code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry::Options().SetConsentLanguage("").status().code(), FERRY_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ferry::Options().SetSessionTimeoutMs(10).status().code(), FERRY_ERR_INVALID_ARGUMENT);

  {
    // The collector cannot be reached: the request stays queued, and its receipt is given all the same.
    ferry::Client c;
    ASSERT_TRUE(ferry::Client::Open(ferry::Options()
                                        .SetEndpoint("http://127.0.0.1:1")
                                        .SetWriteKey("fw_unreachable")
                                        .SetStoragePath(dir_ + "/offline.db")
                                        .SetFlushIntervalMs(3600000),
                                    &c)
                    .ok());
    std::string text;
    ferry::Status s = c.Request("access", 2000, &text);
    EXPECT_TRUE(s.code() == FERRY_ERR_TIMEOUT || s.code() == FERRY_ERR_NETWORK) << s.str();
    json receipt = Parse(text);
    ASSERT_TRUE(receipt.is_object()) << text;
    EXPECT_EQ(receipt["state"], "queued") << text;
    EXPECT_TRUE(receipt["reference"].is_null()) << text;
    ASSERT_TRUE(c.RequestStatus(receipt["receipt"].get<std::string>(), 2000, &text).ok());
    EXPECT_EQ(Parse(text)["state"], "queued") << text;
    (void)c.Close(0);
  }

  {
    // A key that cannot read the buffer: refused by default, reset on request.
    const std::uint8_t wrong[32] = {7};
    ferry::Client c;
    ferry::Options o = DeviceOptions(*col_, data);
    o.SetEncryptionKey(wrong, sizeof wrong);
    EXPECT_EQ(ferry::Client::Open(o, &c).code(), FERRY_ERR_BUFFER_UNREADABLE);
    ferry::Options r = DeviceOptions(*col_, data);
    r.SetEncryptionKey(wrong, sizeof wrong).SetResetUnreadableBuffer(true);
    ASSERT_TRUE(ferry::Client::Open(r, &c).ok());
    EXPECT_EQ(Stats(c)["buffer_resets"], 1);
    EXPECT_EQ(c.GetConsent("marketing"), ferry::Consent::kDenied);
  }
}

#ifdef FERRY_PYTHON
TEST_F(BindingsCollectorTest, Python) {
  RunChild(ChildEnv("py-user") + "FERRY_LIBRARY=" + Quote(FERRY_LIBRARY_FILE) +
           " PYTHONPATH=" + Quote(FERRY_PYTHON_DIR) + " PYTHONDONTWRITEBYTECODE=1 " + Quote(FERRY_PYTHON) +
           " -m pytest -q -p no:cacheprovider " + Quote(std::string(FERRY_PYTHON_DIR) + "/collector_tests"));
  ExpectRecordsAtCollector("py-user");
}
#endif

#ifdef FERRY_JAVA
TEST_F(BindingsCollectorTest, Java) {
  RunChild(ChildEnv("java-user") + Quote(FERRY_JAVA) + " -Xcheck:jni -Djava.library.path=" + Quote(FERRY_JNI_DIR) +
           " -cp " + Quote(FERRY_JAVA_CLASSPATH) + " io.ferry.DeviceTest");
  ExpectRecordsAtCollector("java-user");
}
#endif

}  // namespace
