// A copy a person can read (issue 13) through a real ferry-collector over TLS and the real ferryctl, on both stores:
// a subject with 10,000 events exported as JSON (valid against docs/schema/export.schema.json), as a self-contained
// HTML copy in English and Simplified Chinese whose cover carries art. 15(1) from the registry, and as a CSV of
// events.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/base/time.h"
#include "tests/integration/store_collector.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
std::string Q(const std::string& s) { return ShellQuote(s); }

constexpr int kEvents = 10000;
const char* kHostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
const char* kFormula = "=HYPERLINK(\"http://evil.example\",\"x\")";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

std::string Iso(int64_t ms) { return base::FormatIso8601(ms); }

class CopyTest : public StoreCollectorTest {
 protected:
  // The subject u-10k: an identify, a consent and kEvents - 2 tracks (two of them hostile), in batches of 1,000.
  void Seed() {
    int64_t t0 = base::NowMs() - 3600 * 1000;
    json batch = json::array();
    auto send = [&] {
      auto r = testsupport::HttpRequest("POST", col_->batch_url(), json{{"batch", batch}}.dump(),
                                        {"Authorization: Bearer " + key_, "Content-Type: application/json"},
                                        col_->ca_file());
      ASSERT_EQ(r.status, 200) << r.body;
      ASSERT_EQ(json::parse(r.body)["accepted"], batch.size()) << r.body;
      batch = json::array();
    };
    for (int i = 0; i < kEvents; ++i) {
      json e = {{"messageId", "m-" + std::to_string(i)},
                {"userId", "u-10k"},
                {"anonymousId", "dev-10k"},
                {"timestamp", Iso(t0 + i)},
                {"purpose", i % 2 == 0 ? "analytics" : "ads"}};
      if (i == 0) {
        e["type"] = "identify";
        e["traits"] = {{"name", "李雷"}, {"plan", "pro"}};
      } else if (i == 1) {
        e["type"] = "consent";
        e["properties"] = {{"purpose", "ads"}, {"state", "granted"}};
      } else {
        e["type"] = "track";
        e["event"] = i == 2 ? kHostile : i == 3 ? kFormula : "Viewed Item";
        e["properties"] = {{"item", "sku-" + std::to_string(i)}, {"note", i == 2 ? kHostile : "中文, \"quoted\""}};
      }
      batch.push_back(std::move(e));
      if (batch.size() == 1000) {
        send();
        if (HasFatalFailure()) return;
      }
    }
    if (!batch.empty()) send();
  }

  TempDir dir_;
};

TEST_P(CopyTest, TenThousandEventsAsJsonHtmlInTwoLanguagesAndCsv) {
  ASSERT_NO_FATAL_FAILURE(Seed());
  json registry = {
      {"controller", {{"name", "Shop GmbH"}, {"contact", "privacy@shop.example"}}},
      {"source", "the Shop app on your phone"},
      {"purposes",
       {{{"id", "ads"},
         {"name", "Advertising"},
         {"description", "Offers that match what you looked at"},
         {"legalBasis", "consent"},
         {"dataCategories", {"usage events"}},
         {"retentionDays", 30},
         {"recipients", {"Ad partner Ltd"}},
         {"transfers", {{{"destination", "United States"}, {"safeguard", "standard contractual clauses"}}}},
         {"withdrawalEffect", "no more offers; stored advertising events are erased"}},
        {{"id", "analytics"},
         {"name", "Product analytics"},
         {"description", "Counting how the app is used"},
         {"legalBasis", "legitimate_interests"},
         {"dataCategories", {"usage events", "device identifiers"}},
         {"automatedDecisions", false}}}}};
  std::string reg_file = dir_.File("registry.json");
  std::ofstream(reg_file) << registry.dump();
  int rc = -1;
  std::string out = Ctl("registry set --project shop -f " + Q(reg_file), &rc);
  ASSERT_EQ(rc, 0) << out;

  // JSON: the published schema holds.
  std::string json_path = dir_.File("copy.json");
  out = Ctl("subject export u-10k -o " + Q(json_path), &rc);
  ASSERT_EQ(rc, 0) << out;
  json doc = json::parse(ReadFile(json_path), nullptr, false);
  ASSERT_TRUE(doc.is_object());
  ASSERT_EQ(doc["projects"].size(), 1u);
  EXPECT_EQ(doc["projects"][0]["events"].size(), static_cast<size_t>(kEvents));
  std::string schema = std::string(FERRY_SOURCE_DIR) + "/docs/schema/export.schema.json";
  std::string validated;
  rc = testsupport::RunCommand(
      "python3 -c 'import json,sys,jsonschema; s=json.load(open(sys.argv[1])); "
      "jsonschema.Draft202012Validator.check_schema(s); jsonschema.Draft202012Validator(s).validate(json.load("
      "open(sys.argv[2]))); print(\"valid\")' " +
          Q(schema) + " " + Q(json_path) + " 2>&1",
      &validated);
  EXPECT_EQ(rc, 0) << validated.substr(0, 2000);
  EXPECT_NE(validated.find("valid"), std::string::npos) << validated.substr(0, 2000);
  // The schema is not a sieve: a document without its format fails it.
  json broken = doc;
  broken.erase("format");
  broken["projects"][0]["events"][5].erase("messageId");
  std::string broken_path = dir_.File("broken.json");
  std::ofstream(broken_path) << broken.dump();
  rc = testsupport::RunCommand(
      "python3 -c 'import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[2])), "
      "json.load(open(sys.argv[1])))' " +
          Q(schema) + " " + Q(broken_path) + " >/dev/null 2>&1",
      &validated);
  EXPECT_NE(rc, 0);

  // HTML in English: the cover with art. 15(1) from the registry, every event a row, everything escaped.
  std::string html_path = dir_.File("copy.html");
  out = Ctl("subject export u-10k --format html -o " + Q(html_path), &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string html = ReadFile(html_path);
  EXPECT_EQ(html.rfind("<!doctype html>\n<html lang=\"en\">", 0), 0u) << html.substr(0, 200);
  EXPECT_NE(html.find("id=\"cover\""), std::string::npos);
  for (const char* text :
       {"A copy of your personal data", "What we do with your data (GDPR art. 15(1)", "Purposes and legal basis",
        "Advertising (ads): Offers that match what you looked at — legal basis: consent", "Ad partner Ltd",
        "United States (standard contractual clauses)", "ads: 30 days", "analytics: 395 days",
        "the Shop app on your phone", "Shop GmbH · privacy@shop.example", "Lodge a complaint with a supervisory",
        "track: 9998", "李雷", "Your rights"}) {
    EXPECT_NE(html.find(text), std::string::npos) << text;
  }
  EXPECT_EQ(Count(html, "<td class=\"props\">"), static_cast<size_t>(kEvents));
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"), std::string::npos);
  EXPECT_EQ(html.find("src="), html.find("src=x onerror"));  // only as escaped text
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(html.substr(html.size() - 15), "</body></html>\n");

  // HTML in Simplified Chinese.
  std::string zh_path = dir_.File("copy-zh.html");
  out = Ctl("subject export u-10k --format html --lang zh-CN -o " + Q(zh_path), &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string zh = ReadFile(zh_path);
  EXPECT_EQ(zh.rfind("<!doctype html>\n<html lang=\"zh-CN\">", 0), 0u);
  for (const char* text :
       {"您的个人信息副本", "我们如何处理您的个人信息", "处理目的及法律依据", "ads: 30 天", "您的权利", "接收方"}) {
    EXPECT_NE(zh.find(text), std::string::npos) << text;
  }
  EXPECT_EQ(Count(zh, "<td class=\"props\">"), static_cast<size_t>(kEvents));

  // CSV: a header and one line per event; a formula is not a formula.
  std::string csv_path = dir_.File("events.csv");
  out = Ctl("subject export u-10k --format csv -o " + Q(csv_path), &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string csv = ReadFile(csv_path);
  EXPECT_EQ(
      csv.rfind("\xEF\xBB\xBFproject,timestamp,receivedAt,type,name,purpose,messageId,userId,anonymousId,details\r\n",
                0),
      0u)
      << csv.substr(0, 200);
  EXPECT_EQ(Count(csv, "\r\n"), static_cast<size_t>(kEvents) + 1);
  EXPECT_NE(csv.find(",track,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",ads,m-3,u-10k,dev-10k,"),
            std::string::npos);
  EXPECT_NE(csv.find("shop,"), std::string::npos);
  EXPECT_NE(csv.find("\"{\"\"name\"\":\"\"李雷\"\",\"\"plan\"\":\"\"pro\"\"}\""), std::string::npos);

  // Wrong forms are refused before anything is registered.
  auto bad = testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/u-10k/export?format=pdf", "",
                                      {"Authorization: Bearer " + token_}, col_->ca_file());
  EXPECT_EQ(bad.status, 400) << bad.body;
  bad = testsupport::HttpRequest("GET", col_->url() + "/v1/subjects/u-10k/export?format=html&lang=fr", "",
                                 {"Authorization: Bearer " + token_}, col_->ca_file());
  EXPECT_EQ(bad.status, 400) << bad.body;
}

INSTANTIATE_TEST_SUITE_P(Stores, CopyTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
