// The purpose and processing registry (issue 13) through a real ferry-collector over TLS and the real ferryctl, on
// both stores: set and show a registry, refuse a wrong one, role checks, the records of processing and the inputs of
// an impact assessment in HTML (self-contained, escaped), Markdown and JSON, and the audit entries it leaves.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/integration/store_collector.h"
#include "tests/unit/core/test_util.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
std::string Q(const std::string& s) { return ShellQuote(s); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const char* kHostile = "<script>alert(\"x\")</script> & 'quotes' | *stars*";

json Registry() {
  return {{"controller", {{"name", "Shop GmbH"}, {"contact", "privacy@shop.example"}, {"dpo", "DPO Office"}}},
          {"source", "collected from the person's devices by the Ferry SDK"},
          {"securityMeasures", "encryption at rest (SQLCipher), TLS, hashed credentials"},
          {"purposes",
           {{{"id", "ads"},
             {"name", "Advertising"},
             {"description", std::string("Personalised offers ") + kHostile},
             {"legalBasis", "consent"},
             {"dataCategories", {"device identifiers", "usage events"}},
             {"dataSubjects", {"app users"}},
             {"retentionDays", 7},
             {"recipients", {"Ad partner Ltd"}},
             {"transfers", {{{"destination", "United States"}, {"safeguard", "standard contractual clauses"}}}},
             {"withdrawalEffect", "advertising events stop at once; those stored are erased within 7 days"},
             {"necessity", "offers need recent interests"},
             {"risks", {"profiling beyond expectations"}},
             {"measures", {"pseudonymous ids only"}},
             {"sensitive", false}},
            {{"id", "analytics"},
             {"name", "产品分析"},
             {"description", "Product analytics"},
             {"legalBasis", "legitimate_interests"},
             {"dataCategories", {"usage events"}},
             {"retentionDays", 400}}}}};
}

class RegistryTest : public StoreCollectorTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StoreCollectorTest::SetUp());
    if (IsSkipped()) return;
    operator_ = Token("operator", "operator");
    analyst_ = Token("analyst", "analyst");
    ASSERT_FALSE(operator_.empty() || analyst_.empty());
  }
  std::string WriteRegistry(const json& doc) {
    std::string path = dir_.File("registry.json");
    std::ofstream(path) << doc.dump(2);
    return path;
  }

  TempDir dir_;
  std::string operator_, analyst_;
};

TEST_P(RegistryTest, SetShowRenderAndAudit) {
  int rc = -1;
  // Nothing registered yet.
  std::string out = Ctl("registry show --project shop", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("purposes 0"), std::string::npos) << out;

  // Wrong documents are refused, naming the problem; unknown projects are 404 (exit 4).
  json bad = Registry();
  bad["purposes"][1]["legalBasis"] = "because";
  out = Ctl("registry set --project shop -f " + Q(WriteRegistry(bad)), &rc);
  EXPECT_EQ(rc, 8) << out;
  EXPECT_NE(out.find("legalBasis"), std::string::npos) << out;
  bad = Registry();
  bad["purposes"][1]["id"] = "ads";
  out = Ctl("registry set --project shop -f " + Q(WriteRegistry(bad)), &rc);
  EXPECT_EQ(rc, 8) << out;
  EXPECT_NE(out.find("repeats"), std::string::npos) << out;
  bad = Registry();
  bad["purposes"][0].erase("withdrawalEffect");
  out = Ctl("registry set --project shop -f " + Q(WriteRegistry(bad)), &rc);
  EXPECT_EQ(rc, 8) << out;
  EXPECT_NE(out.find("withdrawalEffect"), std::string::npos) << out;
  bad = Registry();
  bad["purposes"][0]["retentionDays"] = 0;
  out = Ctl("registry set --project shop -f " + Q(WriteRegistry(bad)), &rc);
  EXPECT_EQ(rc, 8) << out;
  bad = Registry();
  bad["purposes"][0]["colour"] = "blue";
  out = Ctl("registry set --project shop -f " + Q(WriteRegistry(bad)), &rc);
  EXPECT_EQ(rc, 8) << out;
  EXPECT_NE(out.find("colour"), std::string::npos) << out;
  std::string good = WriteRegistry(Registry());
  out = Ctl("registry set --project nope -f " + Q(good), &rc);
  EXPECT_EQ(rc, 4) << out;

  // Roles: an operator reads but does not edit; an analyst does neither.
  out = Ctl("registry set --project shop -f " + Q(good), &rc, operator_);
  EXPECT_EQ(rc, 6) << out;
  out = Ctl("registry show --project shop", &rc, analyst_);
  EXPECT_EQ(rc, 6) << out;

  out = Ctl("registry set --project shop -f " + Q(good), &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("purposes 2"), std::string::npos) << out;
  out = Ctl("--json registry show --project shop", &rc, operator_);
  ASSERT_EQ(rc, 0) << out;
  json shown = json::parse(out, nullptr, false);
  ASSERT_TRUE(shown.is_object()) << out;
  EXPECT_EQ(shown["project"], "shop");
  EXPECT_TRUE(shown["updatedAt"].is_string());
  ASSERT_EQ(shown["registry"]["purposes"].size(), 2u);
  EXPECT_EQ(shown["registry"]["purposes"][0]["description"], std::string("Personalised offers ") + kHostile);
  EXPECT_EQ(shown["registry"]["purposes"][1]["name"], "产品分析");
  EXPECT_TRUE(shown["registry"]["purposes"][1]["recipients"].is_array());  // canonical: lists always present

  // Records of processing as JSON: the effective retention is the shorter of the purpose's and the project's (the
  // collector keeps events 395 days by default).
  out = Ctl("registry records --project shop --format json", &rc);
  ASSERT_EQ(rc, 0) << out;
  json records = json::parse(out, nullptr, false);
  ASSERT_TRUE(records.is_object()) << out;
  EXPECT_EQ(records["format"], "ferry-records-of-processing/1");
  EXPECT_EQ(records["controller"]["name"], "Shop GmbH");
  ASSERT_EQ(records["activities"].size(), 2u);
  EXPECT_EQ(records["activities"][0]["purpose"], "ads");
  EXPECT_EQ(records["activities"][0]["retentionDays"], 7);
  EXPECT_EQ(records["activities"][0]["transfers"][0]["destination"], "United States");
  EXPECT_EQ(records["activities"][1]["retentionDays"], 395);

  // As HTML: one self-contained page, every text escaped.
  std::string html_path = dir_.File("records.html");
  out = Ctl("registry records --project shop --format html -o " + Q(html_path), &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string html = ReadFile(html_path);
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u) << html.substr(0, 200);
  EXPECT_NE(html.find("Records of processing activities (GDPR art. 30)"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  EXPECT_NE(html.find("产品分析"), std::string::npos);
  EXPECT_NE(html.find("7 days"), std::string::npos);
  EXPECT_NE(html.find("United States (standard contractual clauses)"), std::string::npos);

  // As Markdown: headings per purpose, Markdown punctuation and HTML escaped.
  out = Ctl("registry records --project shop --format md", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("# Records of processing activities"), std::string::npos) << out;
  EXPECT_NE(out.find("## Purpose ads: Advertising"), std::string::npos) << out;
  EXPECT_NE(out.find("&lt;script&gt;"), std::string::npos) << out;
  EXPECT_NE(out.find("\\| \\*stars\\*"), std::string::npos) << out;
  EXPECT_EQ(out.find("<script"), std::string::npos) << out;

  // The inputs of an impact assessment: PIPL triggers and what is still missing.
  out = Ctl("registry impact --project shop --format json", &rc, operator_);
  ASSERT_EQ(rc, 0) << out;
  json impact = json::parse(out, nullptr, false);
  ASSERT_TRUE(impact.is_object()) << out;
  EXPECT_EQ(impact["format"], "ferry-impact-assessment-inputs/1");
  EXPECT_EQ(impact["piplTriggers"]["crossBorderTransfer"], json::array({"ads"}));
  EXPECT_EQ(impact["piplTriggers"]["providedToOthers"], json::array({"ads"}));
  EXPECT_EQ(impact["systematicDescription"].size(), 2u);
  std::string gaps = impact["gaps"].dump();
  EXPECT_NE(gaps.find("purpose analytics: no risks identified"), std::string::npos) << gaps;
  EXPECT_EQ(gaps.find("purpose ads"), std::string::npos) << gaps;
  out = Ctl("registry impact --project shop --format html", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("PIPL art. 55"), std::string::npos);
  EXPECT_EQ(out.find("<script"), std::string::npos);
  out = Ctl("registry impact --project shop --format pdf", &rc);
  EXPECT_EQ(rc, 2) << out;

  // Audited: the refused and the accepted edit, the renderings.
  auto audit = testsupport::HttpRequest("GET", col_->url() + "/v1/audit?limit=500", "",
                                        {"Authorization: Bearer " + token_}, col_->ca_file());
  ASSERT_EQ(audit.status, 200) << audit.body;
  json entries = json::parse(audit.body, nullptr, false);
  ASSERT_TRUE(entries.is_object()) << audit.body;
  int edits_ok = 0, edits_invalid = 0, records_ok = 0, impact_ok = 0;
  for (const auto& e : entries["entries"]) {
    std::string action = e.value("action", ""), result = e.value("result", "");
    if (action == "registry.edit" && result == "ok") {
      ++edits_ok;
      EXPECT_NE(e["detail"].get<std::string>().find("\"ads\""), std::string::npos);
    }
    if (action == "registry.edit" && result == "invalid") ++edits_invalid;
    if (action == "registry.records" && result == "ok") ++records_ok;
    if (action == "registry.impact" && result == "ok") ++impact_ok;
  }
  EXPECT_EQ(edits_ok, 1);
  EXPECT_EQ(edits_invalid, 5);
  EXPECT_EQ(records_ok, 3);
  EXPECT_EQ(impact_ok, 2);
}

INSTANTIATE_TEST_SUITE_P(Stores, RegistryTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ferry::testing
