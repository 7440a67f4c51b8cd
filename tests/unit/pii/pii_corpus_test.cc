// Corpus tests: a file of realistic lines with every PII item marked (all caught, nothing else touched), and
// 10,000 generated ordinary values that the default rules must leave alone.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sdk/pii/pii.h"

namespace ferry::pii {
namespace {

base::SecretBytes Key() {
  uint8_t k[32];
  for (int i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(i);
  return base::SecretBytes(k, 32);
}

std::shared_ptr<const PiiMasker> Masker(const std::string& rules) {
  auto r = PiiMasker::Create(rules, Key());
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : nullptr;
}

struct Item {
  std::string det;
  std::string text;
};

struct Line {
  int number = 0;
  std::string input;     // markers removed
  std::string redacted;  // markers replaced by [det]
  std::vector<Item> items;
};

// Parses "{{det:text}}" markers.
bool ParseLine(const std::string& raw, Line* out) {
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t open = raw.find("{{", pos);
    if (open == std::string::npos) {
      out->input += raw.substr(pos);
      out->redacted += raw.substr(pos);
      break;
    }
    size_t close = raw.find("}}", open);
    size_t colon = raw.find(':', open);
    if (close == std::string::npos || colon == std::string::npos || colon > close) return false;
    out->input += raw.substr(pos, open - pos);
    out->redacted += raw.substr(pos, open - pos);
    Item it{raw.substr(open + 2, colon - open - 2), raw.substr(colon + 1, close - colon - 1)};
    out->input += it.text;
    out->redacted += "[" + it.det + "]";
    out->items.push_back(it);
    pos = close + 2;
  }
  return true;
}

std::vector<Line> LoadCorpus() {
  std::ifstream f(std::string(FERRY_PII_DATA_DIR) + "/pii_corpus.txt");
  EXPECT_TRUE(f.good()) << "cannot open the corpus";
  std::vector<Line> lines;
  std::string raw;
  int n = 0;
  while (std::getline(f, raw)) {
    ++n;
    if (raw.empty() || raw[0] == '#') continue;
    Line l;
    l.number = n;
    EXPECT_TRUE(ParseLine(raw, &l)) << "bad marker on line " << n;
    lines.push_back(std::move(l));
  }
  return lines;
}

std::string Digits(const std::string& s) {
  std::string d;
  for (char c : s) {
    if (c >= '0' && c <= '9') d.push_back(c);
  }
  return d;
}

// Independent checks of the corpus itself, so a typo in the file cannot make the test pass for the wrong reason.
bool TestLuhn(const std::string& d) {
  int sum = 0;
  for (size_t k = 0; k < d.size(); ++k) {
    int x = d[d.size() - 1 - k] - '0';
    if (k % 2 == 1) x = x * 2 > 9 ? x * 2 - 9 : x * 2;
    sum += x;
  }
  return sum % 10 == 0;
}

char TestIdCheck(const std::string& first17) {
  const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (int k = 0; k < 17; ++k) sum += (first17[k] - '0') * w[k];
  return "10X98765432"[sum % 11];
}

TEST(PiiCorpus, FileIsWellFormed) {
  auto lines = LoadCorpus();
  ASSERT_GT(lines.size(), 40u);
  std::set<std::string> dets;
  size_t items = 0;
  for (const auto& l : lines) {
    for (const auto& it : l.items) {
      ++items;
      dets.insert(it.det);
      if (it.det == "card") {
        std::string d = Digits(it.text);
        EXPECT_TRUE(TestLuhn(d)) << it.text;
        EXPECT_GE(d.size(), 13u);
        EXPECT_LE(d.size(), 19u);
      }
      if (it.det == "cn_id") {
        ASSERT_EQ(it.text.size(), 18u) << it.text;
        char c = it.text[17] == 'x' ? 'X' : it.text[17];
        EXPECT_EQ(TestIdCheck(it.text.substr(0, 17)), c) << it.text;
      }
    }
  }
  EXPECT_GT(items, 60u);
  EXPECT_EQ(dets, (std::set<std::string>{"card", "cn_id", "email", "ip", "phone"}));
}

TEST(PiiCorpus, EveryItemCaughtAndNothingElse) {
  auto m = Masker("");
  ASSERT_TRUE(m);
  int caught = 0;
  for (const auto& l : LoadCorpus()) {
    PiiReport rep;
    EXPECT_EQ(m->MaskString(l.input, &rep), l.redacted) << "corpus line " << l.number;
    EXPECT_EQ(rep.values_masked, l.items.size()) << "corpus line " << l.number;
    caught += static_cast<int>(rep.values_masked);
  }
  EXPECT_GT(caught, 60);
}

TEST(PiiCorpus, SameLinesInsideObjects) {
  auto m = Masker("");
  ASSERT_TRUE(m);
  nlohmann::json obj = nlohmann::json::object();
  nlohmann::json want = nlohmann::json::object();
  auto lines = LoadCorpus();
  for (const auto& l : lines) {
    std::string k = "line" + std::to_string(l.number);
    obj["nested"]["list"].push_back(l.input);
    want["nested"]["list"].push_back(l.redacted);
    obj[k] = l.input;
    want[k] = l.redacted;
  }
  m->ApplyToObject(&obj);
  EXPECT_EQ(obj, want);
  EXPECT_NO_THROW((void)obj.dump());  // still valid UTF-8
}

TEST(PiiCorpus, MaskNeverLeavesTheWholeItem) {
  auto m =
      Masker(R"({"detectors": {"email": "mask", "phone": "mask", "cn_id": "mask", "card": "mask", "ip": "mask"}})");
  ASSERT_TRUE(m);
  for (const auto& l : LoadCorpus()) {
    std::string out = m->MaskString(l.input);
    if (l.items.empty()) {
      EXPECT_EQ(out, l.input) << "line " << l.number;
    } else {
      EXPECT_NE(out, l.input) << "line " << l.number;
    }
    for (const auto& it : l.items) {
      EXPECT_EQ(out.find(it.text), std::string::npos) << it.text << " survived in: " << out;
      if (it.det != "ip" && it.det != "email") {
        std::string d = Digits(it.text);
        EXPECT_EQ(Digits(out).find(d), std::string::npos) << it.text << " digits survived in: " << out;
      }
    }
  }
}

TEST(PiiCorpus, HashNeverLeavesTheItem) {
  auto m =
      Masker(R"({"detectors": {"email": "hash", "phone": "hash", "cn_id": "hash", "card": "hash", "ip": "hash"}})");
  ASSERT_TRUE(m);
  for (const auto& l : LoadCorpus()) {
    std::string out = m->MaskString(l.input);
    size_t hashes = 0;
    for (size_t p = out.find("h:"); p != std::string::npos; p = out.find("h:", p + 2)) ++hashes;
    EXPECT_EQ(hashes, l.items.size()) << out;
    for (const auto& it : l.items) EXPECT_EQ(out.find(it.text), std::string::npos) << out;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 10,000 ordinary values, generated deterministically (raw mt19937 output is the same everywhere).

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  uint32_t U(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
  std::string Num(uint64_t lo, uint64_t hi) {
    uint64_t r = (static_cast<uint64_t>(rng_()) << 32) | rng_();
    return std::to_string(lo + r % (hi - lo + 1));
  }
  std::string Pad(uint64_t v, int width) {
    std::string s = std::to_string(v);
    return std::string(width > static_cast<int>(s.size()) ? width - s.size() : 0, '0') + s;
  }
  std::string Hex(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back("0123456789abcdef"[U(16)]);
    return s;
  }
  std::string Upper(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('A' + U(26)));
    return s;
  }

  std::string Value(int kind) {
    switch (kind) {
      case 0: return "ORD-" + Num(2019, 2030) + "-" + Pad(U(1000000), 6);
      case 1: {  // 20-digit order id
        std::string s = Num(1, 9);
        for (int i = 0; i < 19; ++i) s.push_back(static_cast<char>('0' + U(10)));
        return s;
      }
      case 2: return "¥" + std::to_string(U(10)) + "," + Pad(U(1000), 3) + "." + Pad(U(100), 2);
      case 3: return "$" + std::to_string(U(1000)) + "." + Pad(U(100), 2);
      case 4: {  // ISO 8601
        std::string s = Num(2000, 2030) + "-" + Pad(1 + U(12), 2) + "-" + Pad(1 + U(28), 2) + "T" + Pad(U(24), 2) +
                        ":" + Pad(U(60), 2) + ":" + Pad(U(60), 2);
        switch (U(3)) {
          case 0: return s + "Z";
          case 1: return s + "." + Pad(U(1000), 3) + "+08:00";
          default: return s + "." + Pad(U(1000), 3) + "Z";
        }
      }
      case 5: return Num(946684800000ull, 1893456000000ull);  // unix ms, 2000..2030 (13 digits)
      case 6: return Num(946684800ull, 1893456000ull);        // unix s
      case 7:                                                 // UUID v4
        return Hex(8) + "-" + Hex(4) + "-4" + Hex(3) + "-" + std::string(1, "89ab"[U(4)]) + Hex(3) + "-" + Hex(12);
      case 8:  // 3-part versions
        return std::to_string(U(30)) + "." + std::to_string(U(30)) + "." + std::to_string(U(300));
      case 9:  // 4-part versions with an out-of-range part, Windows-style
        return std::to_string(6 + U(6)) + "." + std::to_string(U(4)) + "." + Num(1000, 30000) + "." + Num(0, 9999);
      case 10: return "SKU-" + Upper(2) + Pad(U(100), 2) + "-" + Pad(U(10000), 4);
      case 11: return Num(2000, 2030) + "/" + Pad(1 + U(12), 2) + "/" + Pad(1 + U(28), 2);
      case 12: return Pad(1 + U(28), 2) + "." + Pad(1 + U(12), 2) + "." + Num(2000, 2030);
      case 13: return "PT" + std::to_string(U(24)) + "H" + std::to_string(U(60)) + "M";
      case 14: return Pad(U(24), 2) + ":" + Pad(U(60), 2) + ":" + Pad(U(60), 2);
      case 15: return std::to_string(U(100)) + "." + std::to_string(U(10)) + "%";
      case 16: return std::to_string(U(100000));
      case 17:  // semver with pre-release and build
        return std::to_string(U(10)) + "." + std::to_string(U(20)) + "." + std::to_string(U(50)) + "-beta." +
               std::to_string(U(10)) + "+build." + std::to_string(U(1000));
      case 18: return Hex(U(2) ? 40 : 64);  // sha1 / sha256
      case 19: return std::to_string(U(500)) + "ms";
      case 20: return "商品" + std::to_string(U(1000)) + "件，共¥" + std::to_string(U(100000)) + ".00";
      case 21: return "page " + std::to_string(U(100)) + " of " + std::to_string(100 + U(100));
      case 22: return "v" + std::to_string(U(5)) + "." + std::to_string(U(20)) + "." + std::to_string(U(20));
      case 23: return "#" + Hex(6);  // colour
      default: return "";
    }
  }

 private:
  std::mt19937 rng_;
};

constexpr int kKinds = 24;

TEST(PiiCorpus, TenThousandOrdinaryValuesUnchanged) {
  auto m = Masker("");
  ASSERT_TRUE(m);
  Gen g(20260115);
  int changed = 0;
  std::set<int> kinds;
  for (int i = 0; i < 10000; ++i) {
    int kind = i % kKinds;
    std::string v = g.Value(kind);
    ASSERT_FALSE(v.empty());
    kinds.insert(kind);
    std::string out = m->MaskString(v);
    if (out != v) {
      ++changed;
      ADD_FAILURE() << "kind " << kind << ": \"" << v << "\" became \"" << out << "\"";
    }
  }
  EXPECT_EQ(changed, 0);
  EXPECT_EQ(kinds.size(), static_cast<size_t>(kKinds));
}

TEST(PiiCorpus, OrdinaryValuesInsideAnObjectUnchanged) {
  auto m = Masker("");
  ASSERT_TRUE(m);
  Gen g(7);
  nlohmann::json obj = nlohmann::json::object();
  for (int i = 0; i < 2000; ++i) {
    std::string k = "k" + std::to_string(i);
    if (i % 3 == 0) {
      obj["arr"].push_back(g.Value(i % kKinds));
    } else {
      obj[k] = g.Value(i % kKinds);
    }
  }
  nlohmann::json before = obj;
  PiiReport rep = m->ApplyToObject(&obj);
  EXPECT_EQ(obj, before);
  EXPECT_EQ(rep.values_masked, 0u);
  EXPECT_EQ(rep.keys_dropped, 0u);
}

// Bare 13-digit epoch-millisecond numbers that pass Luhn are still not cards (no card starts with 1).
TEST(PiiCorpus, EpochMillisPassingLuhnAreNotCards) {
  auto m = Masker("");
  ASSERT_TRUE(m);
  int luhn_passing = 0;
  for (uint64_t t = 1700000000000ull; luhn_passing < 200; t += 7919) {
    std::string s = std::to_string(t);
    if (!TestLuhn(s)) continue;
    ++luhn_passing;
    EXPECT_EQ(m->MaskString(s), s);
    EXPECT_EQ(m->MaskString("ts=" + s + " ok"), "ts=" + s + " ok");
  }
}

}  // namespace
}  // namespace ferry::pii
