// PiiMasker::MaskObjectText (the single pass of the track path) against ApplyToObject (the walker on the parsed
// object): the same masked object for every rule set, every corpus line and thousands of generated objects; the same
// verdict as nlohmann's parse on bad input; numbers and strings written as nlohmann's dump writes them.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sdk/pii/pii.h"

namespace ferry::pii {
namespace {

using nlohmann::json;

base::SecretBytes Key() {
  uint8_t k[32];
  for (int i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(i + 7);
  return base::SecretBytes(k, 32);
}

std::shared_ptr<const PiiMasker> Masker(const std::string& rules) {
  auto r = PiiMasker::Create(rules, Key());
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : nullptr;
}

// The rule sets: defaults, every detector action, path rules of every action (anchored, any depth, "*"), allow lists.
const std::vector<std::string>& RuleSets() {
  static const std::vector<std::string> sets = {
      "",
      R"({"detectors": {"email": "mask", "phone": "hash", "ip": "off", "card": "drop", "cn_id": "redact"}})",
      R"({"detectors": {"email": "drop", "phone": "drop"}})",
      R"({"detectors": {"email": "off", "phone": "off", "cn_id": "off", "card": "off", "ip": "off"}})",
      R"({"paths": {"user.phone": "hash", "address": "redact", "*.note": "mask", "items.sku": "hash",
                    "user": "mask", "user.name": "off", "*.token": "off", "meta.*": "redact"}})",
      R"({"paths": {"items": "drop", "*.email": "hash", "a.b": "mask"}, "detectors": {"phone": "drop"}})",
      R"({"allow": ["plan", "price", "user.*", "items.sku", "a.b.c"]})",
      R"({"allow": []})",
      R"({"allow": ["*.email", "user", "items"], "paths": {"user.phone": "hash", "items": "redact"},
          "detectors": {"email": "mask"}})",
      R"({"allow": ["items.sku", "a"], "paths": {"a": "drop", "items": "mask"}})",
  };
  return sets;
}

// Masks text both ways and expects the same object.
void ExpectSame(const PiiMasker& m, const std::string& rules, const std::string& text) {
  json parsed = json::parse(text, nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << text;
  json walked = parsed;
  m.ApplyToObject(&walked);
  std::string out = "prefix:";
  ObjectTextOutcome o = m.MaskObjectText(text, 32, &out);
  if (o == ObjectTextOutcome::kRepeatedKey) {
    EXPECT_EQ(out, "prefix:");
    return;
  }
  ASSERT_EQ(o, ObjectTextOutcome::kOk) << text;
  ASSERT_EQ(out.rfind("prefix:", 0), 0u);
  std::string mine = out.substr(7);
  json streamed = json::parse(mine, nullptr, false);
  ASSERT_FALSE(streamed.is_discarded()) << "not JSON: " << mine << "\nrules " << rules << "\ninput " << text;
  EXPECT_EQ(streamed, walked) << "rules " << rules << "\ninput  " << text << "\nstream " << mine << "\nwalker "
                              << walked.dump();
  // Written as nlohmann writes it: the same bytes once the keys are in the same order.
  EXPECT_EQ(streamed.dump(), walked.dump());
}

TEST(PiiStream, ExamplesUnderEveryRuleSet) {
  const std::vector<std::string> inputs = {
      R"({})",
      R"({"sku":"SKU-07919","name":"Running Shoes 1","category":"shoes/running","currency":"EUR","list":"search results","price":6.37,"quantity":2})",
      R"({"email":"a.b@example.com","phone":"+86 138 1234 5678","ip":"192.168.1.20","card":"4111 1111 1111 1111"})",
      R"({"user":{"name":"Zhang San","phone":"13812345678","email":"z@example.cn","age":33,"vip":true,"x":null}})",
      R"({"items":[{"sku":"a1","email":"x@y.com"},{"sku":7,"n":[1,2,"13812345678"]}],"plan":"pro","price":1e2})",
      R"({"password":"p","token":"t","secret":"s","a":{"password":"p2","b":{"c":"c@d.com","token":[1]}}})",
      R"({"note":"call 13812345678","meta":{"k":"v","l":[1,2]},"address":{"street":"x"},"list":[[["a@b.com"]]]})",
      R"({"a":{"b":[1,"two",{"c":3}],"d":"e"},"plan":null,"price":-0.5,"big":18446744073709551615,"neg":-9})",
      R"({"esc":"line\nbreak \"quoted\" back\\slash \u0001 \u00e9 \ud83d\ude00 / \/","k\"ey":"v","k\u00e9":"x"})",
      R"({"float":1.0,"exp":1.5e-7,"huge":1e300,"int":12345678901234567890123,"zero":-0,"f":0.1})",
      R"({"items":["13812345678","plain"],"x":[{"email":"q@w.io"}],"y":[[],{}],"z":[null,true,false]})",
      R"({"a":{"b":{"c":"13812345678","d":"ok"}},"user":[{"phone":"13812345678"},{"name":"n"}]})",
      " { \"spaced\" : [ 1 , 2 ] ,\n\t\"k\" : \"v\" } ",
  };
  for (const std::string& rules : RuleSets()) {
    auto m = Masker(rules);
    ASSERT_NE(m, nullptr);
    for (const std::string& in : inputs) ExpectSame(*m, rules, in);
  }
}

TEST(PiiStream, CorpusLinesUnderEveryRuleSet) {
  std::ifstream f(std::string(FERRY_PII_DATA_DIR) + "/pii_corpus.txt");
  ASSERT_TRUE(f.good());
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string plain;
    // The markers removed ("{{det:text}}" -> text).
    for (size_t p = 0; p < line.size();) {
      size_t open = line.find("{{", p);
      if (open == std::string::npos) {
        plain += line.substr(p);
        break;
      }
      size_t colon = line.find(':', open), close = line.find("}}", open);
      ASSERT_TRUE(colon != std::string::npos && close != std::string::npos);
      plain += line.substr(p, open - p) + line.substr(colon + 1, close - colon - 1);
      p = close + 2;
    }
    lines.push_back(plain);
  }
  ASSERT_GT(lines.size(), 50u);
  for (const std::string& rules : RuleSets()) {
    auto m = Masker(rules);
    ASSERT_NE(m, nullptr);
    for (const std::string& l : lines) {
      json obj = {{"text", l}, {"user", {{"note", l}, {"phone", l}}}, {"items", {l, {{"sku", l}}}}};
      ExpectSame(*m, rules, obj.dump());
    }
  }
}

// Random objects from a vocabulary of keys the rules name and values the detectors catch.
json RandomValue(std::mt19937* rng, int depth) {
  static const char* const kStrings[] = {
      "plain", "a.b@example.com", "13812345678",      "192.168.0.1", "4111111111111111", "11010519491231002X",
      "",      "x\ny\"z",         "+44 20 7946 0958", "2001:db8::1", "中文 13912345678", "é"};
  int kind = static_cast<int>((*rng)() % (depth > 3 ? 6 : 8));
  switch (kind) {
    case 0: return nullptr;
    case 1: return ((*rng)() & 1) != 0;
    case 2: return static_cast<int64_t>((*rng)() % 2000) - 1000;
    case 3: return static_cast<double>((*rng)() % 100000) / 100;
    case 4:
    case 5: return kStrings[(*rng)() % (sizeof kStrings / sizeof *kStrings)];
    case 6: {
      json a = json::array();
      int n = static_cast<int>((*rng)() % 4);
      for (int i = 0; i < n; ++i) a.push_back(RandomValue(rng, depth + 1));
      return a;
    }
    default: {
      static const char* const kKeys[] = {"user",  "phone", "email", "items",   "sku",      "password",
                                          "token", "note",  "meta",  "a",       "b",        "c",
                                          "plan",  "Price", "name",  "address", "PASSWORD", "k"};
      json o = json::object();
      int n = static_cast<int>((*rng)() % 5);
      for (int i = 0; i < n; ++i) o[kKeys[(*rng)() % (sizeof kKeys / sizeof *kKeys)]] = RandomValue(rng, depth + 1);
      return o;
    }
  }
}

TEST(PiiStream, GeneratedObjectsUnderEveryRuleSet) {
  std::mt19937 rng(16);
  for (const std::string& rules : RuleSets()) {
    auto m = Masker(rules);
    ASSERT_NE(m, nullptr);
    for (int i = 0; i < 1500; ++i) {
      json o = json::object();
      int n = 1 + static_cast<int>(rng() % 6);
      static const char* const kTop[] = {"user", "items", "note", "a", "plan", "email", "password", "meta", "x"};
      for (int k = 0; k < n; ++k) o[kTop[rng() % 9]] = RandomValue(&rng, 1);
      ExpectSame(*m, rules, o.dump());
    }
  }
}

TEST(PiiStream, RepeatedKeysAreLeftToTheWalker) {
  auto m = Masker("");
  std::string out = "x";
  EXPECT_EQ(m->MaskObjectText(R"({"a":"13812345678","a":"plain"})", 32, &out), ObjectTextOutcome::kRepeatedKey);
  EXPECT_EQ(out, "x");
  EXPECT_EQ(m->MaskObjectText(R"({"o":{"k":1,"k":2}})", 32, &out), ObjectTextOutcome::kRepeatedKey);
  // The same key in two objects is no repeat.
  out.clear();
  EXPECT_EQ(m->MaskObjectText(R"({"a":{"k":1},"b":{"k":"a@b.com"},"k":3})", 32, &out), ObjectTextOutcome::kOk);
  EXPECT_EQ(out, R"({"a":{"k":1},"b":{"k":"[email]"},"k":3})");
  // More keys than the single pass compares.
  json big = json::object();
  for (int i = 0; i < 65; ++i) big["k" + std::to_string(i)] = i;
  out.clear();
  EXPECT_EQ(m->MaskObjectText(big.dump(), 32, &out), ObjectTextOutcome::kRepeatedKey);
}

TEST(PiiStream, ADepthAboveTheReadersBoundIsTakenAsThatBound) {
  auto m = Masker("");
  auto nested = [](size_t depth) {
    return std::string(depth - 1, '[').insert(0, "{\"a\":") + std::string(depth - 1, ']') + "}";
  };
  std::string out;
  EXPECT_EQ(m->MaskObjectText(nested(64), 1000, &out), ObjectTextOutcome::kOk);
  EXPECT_EQ(m->MaskObjectText(nested(65), 1000, &out), ObjectTextOutcome::kTooDeep);
  EXPECT_EQ(m->MaskObjectText(nested(65), static_cast<size_t>(-1), &out), ObjectTextOutcome::kTooDeep);
}

TEST(PiiStream, BadInputGetsTheParsersVerdict) {
  auto m = Masker("");
  struct Case {
    std::string text;
    ObjectTextOutcome want;
  };
  std::string deep33, deep32;
  for (int i = 0; i < 32; ++i) deep33 += "{\"a\":";
  deep33 += "[1]";
  for (int i = 0; i < 32; ++i) deep33 += "}";
  for (int i = 0; i < 31; ++i) deep32 += "{\"a\":";
  deep32 += "[1]";
  for (int i = 0; i < 31; ++i) deep32 += "}";
  const std::vector<Case> cases = {
      {"", ObjectTextOutcome::kNotJson},
      {"{", ObjectTextOutcome::kNotJson},
      {R"({"a":1,})", ObjectTextOutcome::kNotJson},
      {R"({"a":"\ud800"})", ObjectTextOutcome::kNotJson},
      {R"({"a":"\udc00"})", ObjectTextOutcome::kNotJson},  // a lone low surrogate (the reader decodes it)
      {R"({"\udc00":1})", ObjectTextOutcome::kNotJson},
      {R"({"a":"\ud800\u0041"})", ObjectTextOutcome::kNotJson},
      {"{\"a\":\"x\x01y\"}", ObjectTextOutcome::kNotJson},  // a raw control character in a string
      // Raw control bytes in a long string (0x1A-0x1F: what RapidJSON 1.1's SSE2 string scan, once tried here,
      // copied as text), and outside any string.
      {"{\"a\":\"" + std::string(40, 'x') + "\x1e" + std::string(40, 'y') + "\"}", ObjectTextOutcome::kNotJson},
      {"{\"a\":\"" + std::string(33, 'x') + "\x1a\"}", ObjectTextOutcome::kNotJson},
      {"{\"a\":\"" + std::string(33, 'x') + "\x1f\"}", ObjectTextOutcome::kNotJson},
      {"{\"a\":1\x1c}", ObjectTextOutcome::kNotJson},
      {"{\"\xff\":1}", ObjectTextOutcome::kNotJson},
      {R"({"a":01})", ObjectTextOutcome::kNotJson},
      {R"({"a":1.})", ObjectTextOutcome::kNotJson},
      {R"({"a":.5})", ObjectTextOutcome::kNotJson},
      {R"({"a":NaN})", ObjectTextOutcome::kNotJson},
      {R"({"a":-})", ObjectTextOutcome::kNotJson},
      {R"({"a":tru})", ObjectTextOutcome::kNotJson},
      {R"({"a":1}{})", ObjectTextOutcome::kNotJson},
      {"{\"a\":\"\xff\"}", ObjectTextOutcome::kNotJson},
      {"{\"a\":\"\xc0\xaf\"}", ObjectTextOutcome::kNotJson},
      {R"({"a":1} x)", ObjectTextOutcome::kNotJson},
      {R"([1,2)", ObjectTextOutcome::kNotJson},
      {R"({"password":"x", "b": [1,})", ObjectTextOutcome::kNotJson},
      {R"([1,2])", ObjectTextOutcome::kNotObject},
      {R"("text")", ObjectTextOutcome::kNotObject},
      {"5", ObjectTextOutcome::kNotObject},
      {"null", ObjectTextOutcome::kNotObject},
      {deep33, ObjectTextOutcome::kTooDeep},
      {"{\"password\":" + deep33 + "}", ObjectTextOutcome::kTooDeep},
      {deep32, ObjectTextOutcome::kOk},
      // The pass stops at the first level deeper than 32, before it reads far enough to find the text is not JSON
      // (or, here, not an object), which bounds the reader's recursion.
      {std::string(100000, '[') + std::string(100000, ']'), ObjectTextOutcome::kTooDeep},
      {std::string(86, '[') + "0{\x89\x90\x9e" + "0", ObjectTextOutcome::kTooDeep},  // found by fuzz_pii
      {std::string(20, '[') + "0{", ObjectTextOutcome::kNotJson},
      {"{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}", ObjectTextOutcome::kTooDeep},
      {"{\"a\":" + std::string(100000, '['), ObjectTextOutcome::kTooDeep},
      {"{\"a\":" + std::string(30, '['), ObjectTextOutcome::kNotJson},
  };
  for (const Case& c : cases) {
    std::string out = "kept";
    EXPECT_EQ(m->MaskObjectText(c.text, 32, &out), c.want) << c.text.substr(0, 200);
    if (c.want != ObjectTextOutcome::kOk) {
      EXPECT_EQ(out, "kept") << "nothing is appended: " << c.text.substr(0, 200);
    }
    json parsed = json::parse(c.text, nullptr, false);
    if (c.want == ObjectTextOutcome::kNotJson) {
      EXPECT_TRUE(parsed.is_discarded()) << c.text.substr(0, 200);
    }
    if (c.want == ObjectTextOutcome::kNotObject) {
      EXPECT_FALSE(parsed.is_discarded() || parsed.is_object()) << c.text.substr(0, 200);
    }
  }
  // A NUL byte is refused wherever it is. (nlohmann's parse reads one as the end of the text: a C string's end. The
  // SDK's callers give C strings, where it cannot occur.)
  std::string out;
  EXPECT_EQ(m->MaskObjectText(std::string("{\"a\":1}\0", 8), 32, &out), ObjectTextOutcome::kNotJson);
  EXPECT_EQ(m->MaskObjectText(std::string("{\"a\":\"x\0y\"}", 11), 32, &out), ObjectTextOutcome::kNotJson);
}

TEST(PiiStream, KeepsTheInputOrderAndNlohmannsNumberText) {
  auto m = Masker("");
  std::string out;
  ASSERT_EQ(m->MaskObjectText(R"({"z":1.50,"a":1E2,"m":"x@example.com","b":-0,"c":true})", 32, &out),
            ObjectTextOutcome::kOk);
  EXPECT_EQ(out, R"({"z":1.5,"a":100.0,"m":"[email]","b":0,"c":true})");

  // Each number as nlohmann's parse and dump give it: 64-bit integers as they are, anything larger or with a
  // fraction or exponent as the double; texts longer than a small buffer too. Beyond a double's range: refused, as
  // nlohmann's parse refuses it.
  const std::string numbers =
      R"({"max":18446744073709551615,"over":18446744073709551616,"min":-9223372036854775808,)"
      R"("under":-9223372036854775809,"e":1.5e-7,"big":1e300,"inf":1e400,"tiny":1e-400,"neg0":-0.0,)"
      R"("long":0.)" +
      std::string(300, '1') + R"(,"longint":)" + std::string(300, '7') + "}";
  out.clear();
  EXPECT_EQ(m->MaskObjectText(numbers, 32, &out), ObjectTextOutcome::kNotJson);  // 1e400
  EXPECT_TRUE(json::parse(numbers, nullptr, false).is_discarded());
  for (const char* huge : {R"({"a":-1e400})", R"({"a":1234567890123456789e300})", R"({"a":[1e99999999999]})"}) {
    EXPECT_EQ(m->MaskObjectText(huge, 32, &out), ObjectTextOutcome::kNotJson) << huge;
    EXPECT_TRUE(json::parse(huge, nullptr, false).is_discarded()) << huge;
  }
  out.clear();
  std::string finite = numbers;
  finite.replace(finite.find("1e400"), 5, "1e308");
  ASSERT_EQ(m->MaskObjectText(finite, 32, &out), ObjectTextOutcome::kOk);
  nlohmann::ordered_json want = nlohmann::ordered_json::parse(finite);  // the input's key order, as the pass keeps it
  EXPECT_EQ(out, want.dump(-1, ' ', false, json::error_handler_t::replace));
  EXPECT_EQ(json::parse(out)["max"].get<uint64_t>(), 18446744073709551615u);
}

TEST(PiiStream, NumbersReadAsNlohmannReadsThem) {
  // Random doubles written in several forms (shortest round trip, fixed, exponent, few digits, subnormal): the single
  // pass reads each as nlohmann's parser does (strtod, or from_chars where the library has it) and writes the same
  // text as nlohmann's dump.
  auto m = Masker("");
  std::mt19937_64 rng(20261202);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const char* const forms[] = {"%.17g", "%.3f", "%.15e", "%g", "%.2f", "%.1e"};
  for (int i = 0; i < 20000; ++i) {
    double mag = std::pow(10.0, unit(rng) * 40 - 20);
    if (i % 97 == 0) mag = std::pow(10.0, -300 - unit(rng) * 20);  // near and below the smallest normal
    double v = (rng() & 1 ? -1 : 1) * unit(rng) * mag;
    char num[64];
    std::snprintf(num, sizeof num, forms[i % 6], v);
    std::string text = std::string(R"({"n":)") + num + "}";
    std::string out;
    ASSERT_EQ(m->MaskObjectText(text, 32, &out), ObjectTextOutcome::kOk) << text;
    EXPECT_EQ(out, json::parse(text).dump()) << text;
  }
}

TEST(PiiStream, ALargeTextIsMaskedLikeASmallOne) {
  // Texts above 16 KiB are read by a reader of their own (none is kept): the same masking.
  auto m = Masker("");
  json big = json::object();
  for (int i = 0; i < 60; ++i) big["k" + std::to_string(i)] = std::string(400, 'x') + " a.b@example.com";
  std::string text = big.dump();
  ASSERT_GT(text.size(), 16u * 1024);
  for (int round = 0; round < 2; ++round) {
    std::string out;
    ASSERT_EQ(m->MaskObjectText(text, 32, &out), ObjectTextOutcome::kOk);
    json got = json::parse(out);
    EXPECT_EQ(got.size(), 60u);
    EXPECT_EQ(got["k7"], std::string(400, 'x') + " [email]");
    std::string small;
    ASSERT_EQ(m->MaskObjectText(R"({"e":"q@w.io"})", 32, &small), ObjectTextOutcome::kOk);
    EXPECT_EQ(small, R"({"e":"[email]"})");
  }
}

}  // namespace
}  // namespace ferry::pii
