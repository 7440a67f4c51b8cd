// PiiMasker: each detector and action with exact outputs, path rules, the allow list, drop, invalid rules, hashing.
#include "sdk/pii/pii.h"

#include <sodium.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace ferry::pii {
namespace {

using nlohmann::json;

base::SecretBytes Key(uint8_t start = 0) {
  uint8_t k[32];
  for (int i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(start + i);
  return base::SecretBytes(k, 32);
}

std::shared_ptr<const PiiMasker> Masker(const std::string& rules, const base::SecretBytes& key = Key()) {
  auto r = PiiMasker::Create(rules, key);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : nullptr;
}

std::string Detectors(const std::string& action) {
  return R"({"detectors": {"email": ")" + action + R"(", "phone": ")" + action + R"(", "cn_id": ")" + action +
         R"(", "card": ")" + action + R"(", "ip": ")" + action + R"("}})";
}

// Keyed BLAKE2b-128 computed here with libsodium directly, for comparing pseudonyms.
std::string ExpectedHash(const std::string& data, const base::SecretBytes& key = Key()) {
  EXPECT_TRUE(base::EnsureSodium());
  unsigned char h[16];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(data.data()), data.size(), key.data(),
                     key.size());
  char hex[33];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return std::string("h:") + hex;
}

// ----------------------------------------------------------------------------------------------------- redact

TEST(PiiRedact, Email) {
  auto m = Masker("");
  EXPECT_EQ(m->MaskString("contact zhang.san@example.cn now"), "contact [email] now");
  EXPECT_EQ(m->MaskString("a.b-c+tag@sub.example.co.uk"), "[email]");
  EXPECT_EQ(m->MaskString("发邮件到zhang.san@example.cn。谢谢"), "发邮件到[email]。谢谢");
  EXPECT_EQ(m->MaskString("mail@x.c"), "mail@x.c");  // one-letter TLD
  EXPECT_EQ(m->MaskString("root@localhost"), "root@localhost");
  EXPECT_EQ(m->MaskString("@handle"), "@handle");
  EXPECT_EQ(m->MaskString("trailing dot a@b.com."), "trailing dot [email].");
}

TEST(PiiRedact, ChinaMobile) {
  auto m = Masker("");
  for (const char* s : {"13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+8613812345678",
                        "+86-138-1234-5678", "86 13812345678", "8613812345678", "0086 138 1234 5678", "19912345678"}) {
    EXPECT_EQ(m->MaskString(s), "[phone]") << s;
  }
  EXPECT_EQ(m->MaskString("请联系13812345678或发邮件到zhang.san@example.cn"), "请联系[phone]或发邮件到[email]");
  EXPECT_EQ(m->MaskString("电话:13812345678."), "电话:[phone].");
}

TEST(PiiRedact, ChinaMobileBoundaries) {
  auto m = Masker("");
  EXPECT_EQ(m->MaskString("12812345678"), "12812345678");                  // second digit 2: not a mobile prefix
  EXPECT_EQ(m->MaskString("138123456789"), "138123456789");                // 12 digits
  EXPECT_EQ(m->MaskString("订单113812345678901"), "订单113812345678901");  // inside a longer run
  EXPECT_EQ(m->MaskString("id13812345678"), "id13812345678");              // glued to letters
  EXPECT_EQ(m->MaskString("13812345678x"), "13812345678x");
  EXPECT_EQ(m->MaskString("138-1234-5678-9999"), "138-1234-5678-9999");  // part of a longer dashed number
  EXPECT_EQ(m->MaskString("1.13812345678"), "1.13812345678");            // decimals
}

TEST(PiiRedact, E164) {
  auto m = Masker("");
  EXPECT_EQ(m->MaskString("+1 415 555 2671"), "[phone]");
  EXPECT_EQ(m->MaskString("tel +44 20 7946 0958."), "tel [phone].");
  EXPECT_EQ(m->MaskString("+4930123456"), "[phone]");
  EXPECT_EQ(m->MaskString("+1234567"), "+1234567");                    // 7 digits
  EXPECT_EQ(m->MaskString("+1234567890123456"), "+1234567890123456");  // 16 digits
  EXPECT_EQ(m->MaskString("2026-01-15T10:30:00+08:00"), "2026-01-15T10:30:00+08:00");
}

TEST(PiiRedact, CnId) {
  auto m = Masker("");
  EXPECT_EQ(m->MaskString("身份证11010519491231002X"), "身份证[cn_id]");
  EXPECT_EQ(m->MaskString("11010519491231002x"), "[cn_id]");
  EXPECT_EQ(m->MaskString("id 110101200002297770 ok"), "id [cn_id] ok");  // 2000-02-29
  EXPECT_EQ(m->MaskString("110105194912310021"), "110105194912310021");   // wrong check digit
  EXPECT_EQ(m->MaskString("110105194913310021"), "110105194913310021");   // month 13, right check digit
  EXPECT_EQ(m->MaskString("11010119990229123X"), "11010119990229123X");   // 1999-02-29, right check digit
  EXPECT_EQ(m->MaskString("11010519491231002X1"), "11010519491231002X1");
}

TEST(PiiRedact, Card) {
  auto m = Masker("");
  for (const char* s :
       {"4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "3782 822463 10005",
        "6222 0200 0000 0000 000", "6217000000000000004", "4222222222222", "2223000048400011"}) {
    EXPECT_EQ(m->MaskString(s), "[card]") << s;
  }
  EXPECT_EQ(m->MaskString("卡号4111111111111111已绑定"), "卡号[card]已绑定");
  for (const char* s : {"4111111111111112", "4111 1111 1111 1112", "378282246310006", "62220200000000000000",
                        "1700000000004", "9111111111111111", "4111-1111 1111-1111", "4111111111111111-2"}) {
    EXPECT_EQ(m->MaskString(s), s) << s;
  }
}

TEST(PiiRedact, CardPrefixRule) {
  auto m = Masker("");
  // 13 digits passing Luhn: only a leading 4 makes a card; epoch-millisecond-like numbers stay.
  EXPECT_EQ(m->MaskString("4222222222222"), "[card]");
  EXPECT_EQ(m->MaskString("1700000000004"), "1700000000004");
  EXPECT_EQ(m->MaskString("5000000000005"), "5000000000005");
  // 16 digits passing Luhn with an industry identifier outside 2-6 (7 = petroleum, 1 = airlines).
  EXPECT_EQ(m->MaskString("7000000000000005"), "7000000000000005");
  EXPECT_EQ(m->MaskString("1000000000000008"), "1000000000000008");
}

TEST(PiiRedact, Ipv4) {
  auto m = Masker("");
  EXPECT_EQ(m->MaskString("192.168.1.1"), "[ip]");
  EXPECT_EQ(m->MaskString("from 10.0.0.255:8080"), "from [ip]:8080");
  EXPECT_EQ(m->MaskString("1.2.3.4"), "[ip]");
  EXPECT_EQ(m->MaskString("服务器192.168.1.100无法访问"), "服务器[ip]无法访问");
  for (const char* s : {"256.1.1.1", "1.2.3", "10.0.19045.2965", "1.2.3.4.5", "v1.2.3.4", "1.2.3.4a", "01.2.3.4567"}) {
    EXPECT_EQ(m->MaskString(s), s) << s;
  }
}

TEST(PiiRedact, Ipv6) {
  auto m = Masker("");
  for (const char* s :
       {"2001:db8::1", "::1", "fe80::1", "::ffff:192.168.1.1", "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "FE80::ABCD:1", "1:2:3:4:5:6:7:8", "fe80::", "64:ff9b::192.0.2.33"}) {
    EXPECT_EQ(m->MaskString(s), "[ip]") << s;
  }
  EXPECT_EQ(m->MaskString("[2001:db8::1]:443"), "[[ip]]:443");
  EXPECT_EQ(m->MaskString("fe80::1%eth0"), "[ip]%eth0");
  for (const char* s : {"12:30:45", "00:1a:2b:3c:4d:5e", "1:2:3:4:5:6:7:8:9", "1::2::3", "std::string", "ratio 3:2",
                        "12345::1", "::", "2026-01-15T10:30:00Z"}) {
    EXPECT_EQ(m->MaskString(s), s) << s;
  }
}

TEST(PiiRedact, NoPiiFastPathReturnsInput) {
  auto m = Masker("");
  EXPECT_EQ(m->MaskString(""), "");
  EXPECT_EQ(m->MaskString("Checkout Completed"), "Checkout Completed");
  EXPECT_EQ(m->MaskString("首页 - 推荐"), "首页 - 推荐");
  PiiReport rep;
  EXPECT_EQ(m->MaskString("ORD-2026-000123", &rep), "ORD-2026-000123");
  EXPECT_EQ(rep.values_masked, 0u);
}

TEST(PiiRedact, SeveralInOneStringAndReportCounts) {
  auto m = Masker("");
  PiiReport rep;
  EXPECT_EQ(m->MaskString("a@b.cn 13812345678 1.2.3.4 4111111111111111 11010519491231002X", &rep),
            "[email] [phone] [ip] [card] [cn_id]");
  EXPECT_EQ(rep.values_masked, 5u);
  EXPECT_EQ(m->MaskString("13812345678@qq.com"), "[email]");  // the email wins over the phone inside it
}

TEST(PiiRedact, MultiByteNeverSplit) {
  auto m = Masker("");
  std::string in = "é13812345678ü张three@x.io三";
  std::string out = m->MaskString(in);
  EXPECT_EQ(out, "é[phone]ü张[email]三");
  json j = out;
  EXPECT_NO_THROW((void)j.dump());
}

// ----------------------------------------------------------------------------------------------------- mask

TEST(PiiMask, EachDetector) {
  auto m = Masker(Detectors("mask"));
  EXPECT_EQ(m->MaskString("13812345678"), "138****5678");
  EXPECT_EQ(m->MaskString("138 1234 5678"), "138****5678");
  EXPECT_EQ(m->MaskString("+86 138-1234-5678"), "+86 138****5678");
  EXPECT_EQ(m->MaskString("+1 415 555 2671"), "+14*****2671");
  EXPECT_EQ(m->MaskString("alice@example.com"), "a***@example.com");
  EXPECT_EQ(m->MaskString("邮箱zhang.san@example.cn"), "邮箱z***@example.cn");
  EXPECT_EQ(m->MaskString("4111 1111 1111 1111"), "************1111");
  EXPECT_EQ(m->MaskString("378282246310005"), "***********0005");
  EXPECT_EQ(m->MaskString("11010519491231002X"), "110105********002X");
  EXPECT_EQ(m->MaskString("192.168.1.100"), "192.168.*.*");
  EXPECT_EQ(m->MaskString("2001:0DB8:85a3::1"), "2001:db8:*");
  EXPECT_EQ(m->MaskString("::1"), "0:0:*");
  EXPECT_EQ(m->MaskString("fe80::1"), "fe80:0:*");
}

// ----------------------------------------------------------------------------------------------------- hash

TEST(PiiHash, KnownVector) {
  // BLAKE2b, 16-byte digest, key = bytes 0..31, computed independently (Python hashlib.blake2b).
  auto m = Masker(Detectors("hash"));
  EXPECT_EQ(m->MaskString("13812345678"), "h:3d075be3f8d3d1ddf82277440f818623");
  EXPECT_EQ(m->MaskString("zhang.san@example.cn"), "h:25ebfc685cfd8d325a632588a2feab6b");
  EXPECT_EQ(m->MaskString("4111 1111 1111 1111"), "h:7b4975138d271f61129a7232976368be");
}

TEST(PiiHash, NormalisedAndStable) {
  auto m = Masker(Detectors("hash"));
  std::string h = ExpectedHash("13812345678");
  for (const char* s : {"13812345678", "138 1234 5678", "+86 138-1234-5678", "8613812345678"}) {
    EXPECT_EQ(m->MaskString(s), h) << s;
  }
  EXPECT_EQ(m->MaskString("Zhang.San@Example.CN"), ExpectedHash("zhang.san@example.cn"));
  EXPECT_EQ(m->MaskString("11010519491231002x"), ExpectedHash("11010519491231002X"));
  EXPECT_EQ(m->MaskString("5500-0000-0000-0004"), ExpectedHash("5500000000000004"));
  EXPECT_EQ(m->MaskString("+1 415 555 2671"), ExpectedHash("+14155552671"));
  EXPECT_EQ(m->MaskString("FE80::1"), ExpectedHash("fe80::1"));
  EXPECT_EQ(m->MaskString("ip 10.1.2.3 x"), "ip " + ExpectedHash("10.1.2.3") + " x");
  // Same masker, same answer; a second masker with the same key, same answer.
  EXPECT_EQ(m->MaskString("13812345678"), Masker(Detectors("hash"))->MaskString("13812345678"));
}

TEST(PiiHash, KeyChangesPseudonym) {
  auto a = Masker(Detectors("hash"), Key(0));
  auto b = Masker(Detectors("hash"), Key(100));
  EXPECT_NE(a->MaskString("13812345678"), b->MaskString("13812345678"));
  EXPECT_EQ(b->MaskString("13812345678"), ExpectedHash("13812345678", Key(100)));
}

TEST(PiiHash, RulesKeyOverridesFallback) {
  std::string hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  auto m = Masker(R"({"detectors": {"phone": "hash"}, "hash_key": ")" + hex + R"("})", Key(7));
  // Computed independently (Python hashlib.blake2b with that key).
  EXPECT_EQ(m->MaskString("13812345678"), "h:06cb4a6af7f8e96fe0aca20f80eb34a7");
  // With rules carrying a key, the fallback may be absent.
  auto r = PiiMasker::Create(R"({"hash_key": ")" + hex + R"("})", base::SecretBytes());
  EXPECT_TRUE(r.ok());
}

// ----------------------------------------------------------------------------------------------------- off / drop

TEST(PiiDetectors, OffLeavesThatKindAlone) {
  auto m = Masker(R"({"detectors": {"ip": "off", "email": "off"}})");
  EXPECT_EQ(m->MaskString("a@b.cn 1.2.3.4 ::1 13812345678"), "a@b.cn 1.2.3.4 ::1 [phone]");
  auto none = Masker(R"({"detectors": {"email": "off", "phone": "off", "cn_id": "off", "card": "off", "ip": "off"}})");
  EXPECT_EQ(none->MaskString("a@b.cn 13812345678"), "a@b.cn 13812345678");
}

TEST(PiiDetectors, DropRemovesTheHoldingKey) {
  auto m = Masker(R"({"detectors": {"phone": "drop"}})");
  json obj = json::parse(R"({"note": "call 13812345678 please", "plain": "hello", "mail": "a@b.cn",
                             "contacts": ["x", "13812345678"],
                             "items": [{"tel": "+86 138 1234 5678", "sku": "A1"}]})");
  PiiReport rep = m->ApplyToObject(&obj);
  json want = json::parse(R"({"plain": "hello", "mail": "[email]", "items": [{"sku": "A1"}]})");
  EXPECT_EQ(obj, want);
  EXPECT_EQ(rep.keys_dropped, 3u);
  EXPECT_EQ(rep.values_masked, 1u);
  // MaskString has no key to drop: it redacts.
  EXPECT_EQ(m->MaskString("call 13812345678"), "call [phone]");
}

// ----------------------------------------------------------------------------------------------------- objects

TEST(PiiObject, NestedObjectsAndArrays) {
  auto m = Masker("");
  json obj = json::parse(R"({
    "plan": "pro", "price": 12.5, "count": 3, "ok": true, "nothing": null,
    "user": {"email": "zhang@example.com", "tags": ["vip", "13812345678", ["deep 1.2.3.4"]]},
    "list": [{"ip": "10.0.0.1"}, 4111111111111111, "card 4111111111111111"]
  })");
  PiiReport rep = m->ApplyToObject(&obj);
  json want = json::parse(R"({
    "plan": "pro", "price": 12.5, "count": 3, "ok": true, "nothing": null,
    "user": {"email": "[email]", "tags": ["vip", "[phone]", ["deep [ip]"]]},
    "list": [{"ip": "[ip]"}, 4111111111111111, "card [card]"]
  })");
  EXPECT_EQ(obj, want);  // numbers are not strings: detectors leave them
  EXPECT_EQ(rep.values_masked, 5u);
  EXPECT_EQ(rep.keys_dropped, 0u);
}

TEST(PiiObject, NotAnObjectIsLeftAlone) {
  auto m = Masker("");
  json arr = json::array({"13812345678"});
  EXPECT_EQ(m->ApplyToObject(&arr).values_masked, 0u);
  EXPECT_EQ(arr, json::array({"13812345678"}));
  EXPECT_EQ(m->ApplyToObject(nullptr).values_masked, 0u);
}

TEST(PiiPaths, DefaultDropsAtAnyDepth) {
  auto m = Masker("");
  json obj = json::parse(R"({"password": "p", "Token": "t", "a": {"secret": 1, "b": {"PASSWORD": {"x": 1}}},
                             "list": [{"token": "t", "keep": "k"}], "passwords": "not matched"})");
  PiiReport rep = m->ApplyToObject(&obj);
  EXPECT_EQ(obj, json::parse(R"({"a": {"b": {}}, "list": [{"keep": "k"}], "passwords": "not matched"})"));
  EXPECT_EQ(rep.keys_dropped, 5u);
}

TEST(PiiPaths, UserPathsKeepDefaultDropsUnlessOverridden) {
  auto m = Masker(R"({"paths": {"user.phone": "hash", "address": "redact", "*.token": "off"}})");
  json obj = json::parse(R"({"user": {"phone": "13812345678", "password": "x", "name": "Li"},
                             "address": {"city": "Beijing", "zip": 100000}, "token": "abc 13812345678",
                             "secret": "s"})");
  PiiReport rep = m->ApplyToObject(&obj);
  json want = {{"user", {{"phone", ExpectedHash("13812345678")}, {"name", "Li"}}},
               {"address", "[redacted]"},
               {"token", "abc [phone]"}};  // default drop switched off: kept, still scanned
  EXPECT_EQ(obj, want);
  EXPECT_EQ(rep.keys_dropped, 2u);
  EXPECT_EQ(rep.values_masked, 3u);
}

TEST(PiiPaths, PathMaskKeepsFirstAndLastCharacter) {
  auto m = Masker(R"({"paths": {"name": "mask", "cn": "mask", "short": "mask", "num": "mask", "phone": "mask",
                                 "one": "mask"}})");
  json obj = {{"name", "zhangsan"}, {"cn", "张三丰"},         {"short", "ab"},
              {"num", 12345},       {"phone", "13812345678"}, {"one", "张"}};
  m->ApplyToObject(&obj);
  json want = {{"name", "z******n"}, {"cn", "张*丰"},          {"short", "**"},
               {"num", "1***5"},     {"phone", "1*********8"}, {"one", "*"}};
  EXPECT_EQ(obj, want);
}

TEST(PiiPaths, HashAndMaskOnContainersReachEveryLeaf) {
  auto m = Masker(R"({"paths": {"user": "hash", "user.city": "off", "profile": "mask"}})");
  json obj = json::parse(R"({"user": {"id": 42, "name": "Li", "city": "Beijing 13812345678", "password": "p",
                                      "emails": ["a@b.cn"]},
                             "profile": {"nick": "abcde", "flags": [true, null]}})");
  m->ApplyToObject(&obj);
  json want = {{"user",
                {{"id", ExpectedHash("42")},
                 {"name", ExpectedHash("Li")},
                 {"city", "Beijing [phone]"},
                 {"emails", {ExpectedHash("a@b.cn")}}}},
               {"profile", {{"nick", "a***e"}, {"flags", {"t**e", nullptr}}}}};
  EXPECT_EQ(obj, want);
}

TEST(PiiPaths, WildcardIsOneSegmentExceptLeading) {
  auto m = Masker(R"({"paths": {"a.*.c": "redact", "*": "mask", "*.x.y": "drop"}})");
  json obj = json::parse(R"({"a": {"b": {"c": "ccc", "d": "ddd"}, "c": "eee"}, "top": "value",
                             "x": {"y": 1, "z": "zzz"}, "deep": {"x": {"y": 1, "q": "qqq"}}})");
  m->ApplyToObject(&obj);
  // "*" alone is one top-level key: every top-level value is masked leaf by leaf, unless a more specific rule
  // matches below it ("a.*.c"; "*.x.y" at any depth).
  json want = json::parse(R"({"a": {"b": {"c": "[redacted]", "d": "d*d"}, "c": "e*e"}, "top": "v***e",
                              "x": {"z": "z*z"}, "deep": {"x": {"q": "q*q"}}})");
  EXPECT_EQ(obj, want);
}

TEST(PiiPaths, KeysOfEveryLengthMeetTheirRules) {
  // Path lookups first refuse keys of a length no rule's last segment has: keys of 1-70 bytes, one rule for a key of
  // each length from 60 up (63 and more share the index's last bit), and keys of other lengths left alone.
  std::string paths;
  for (size_t n = 60; n <= 70; ++n)
    paths += (paths.empty() ? "" : ",") + ("\"*." + std::string(n, 'k') + "\":\"redact\"");
  auto m = Masker(R"({"paths": {)" + paths + "}}");
  json obj = json::object(), want = json::object();
  for (size_t n = 1; n <= 70; ++n) {  // (at most 64 keys an object: the single pass's limit)
    const char* lower = n <= 35 ? "a" : "b";
    const char* upper = n <= 35 ? "c" : "d";  // ASCII case does not matter
    obj[lower][std::string(n, 'k')] = "v";
    want[lower][std::string(n, 'k')] = n >= 60 ? "[redacted]" : "v";
    obj[upper][std::string(n, 'K')] = "v";
    want[upper][std::string(n, 'K')] = n >= 60 ? "[redacted]" : "v";
  }
  json walked = obj;
  m->ApplyToObject(&walked);
  EXPECT_EQ(walked, want);
  std::string streamed;
  ASSERT_EQ(m->MaskObjectText(obj.dump(), 32, &streamed), ObjectTextOutcome::kOk);
  EXPECT_EQ(json::parse(streamed), want);
}

TEST(PiiPaths, MostSpecificThenStrictest) {
  // "user.password" (2 literal segments) beats the default "*.password" drop.
  auto m = Masker(R"({"paths": {"user.password": "hash", "a.*": "mask", "*.b": "redact"}})");
  json obj = json::parse(R"({"user": {"password": "pw"}, "password": "top", "a": {"b": "bbbb", "c": "cccc"}})");
  m->ApplyToObject(&obj);
  // a.b: "a.*" and "*.b" have one literal each; redact is stricter than mask.
  json want =
      json::parse(R"({"user": {"password": ")" + ExpectedHash("pw") + R"("}, "a": {"b": "[redacted]", "c": "c**c"}})");
  EXPECT_EQ(obj, want);
}

TEST(PiiAllow, KeepsOnlyListedProperties) {
  auto m = Masker(R"({"allow": ["plan", "price", "user.*"]})");
  json obj = json::parse(R"({"plan": "pro", "price": 9.9, "other": "x", "deep": {"a": 1},
                             "user": {"name": "Li", "tel": "13812345678", "password": "p", "addr": {"c": "d"}}})");
  PiiReport rep = m->ApplyToObject(&obj);
  json want = json::parse(R"({"plan": "pro", "price": 9.9,
                              "user": {"name": "Li", "tel": "[phone]", "addr": {"c": "d"}}})");
  EXPECT_EQ(obj, want);
  EXPECT_EQ(rep.keys_dropped, 3u);  // other, deep, then the default drop of user.password
  EXPECT_EQ(rep.values_masked, 1u);
}

TEST(PiiAllow, NestedPathPrunesInside) {
  auto m = Masker(R"({"allow": ["user.name", "items.sku"]})");
  json obj = json::parse(R"({"user": {"name": "Li", "email": "a@b.cn"}, "x": 1,
                             "items": [{"sku": "A1", "price": 1}, {"sku": "B2"}]})");
  m->ApplyToObject(&obj);
  EXPECT_EQ(obj, json::parse(R"({"user": {"name": "Li"}, "items": [{"sku": "A1"}, {"sku": "B2"}]})"));
}

TEST(PiiAllow, EmptyListDropsEverything) {
  auto m = Masker(R"({"allow": []})");
  json obj = {{"a", 1}, {"b", "x"}};
  EXPECT_EQ(m->ApplyToObject(&obj).keys_dropped, 2u);
  EXPECT_EQ(obj, json::object());
}

// ----------------------------------------------------------------------------------------------------- rules

void ExpectInvalid(const std::string& rules, const std::string& reason_part, const base::SecretBytes& key = Key()) {
  auto r = PiiMasker::Create(rules, key);
  ASSERT_FALSE(r.ok()) << rules;
  EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument) << rules;
  EXPECT_NE(r.status().message().find(reason_part), std::string::npos)
      << rules << " -> " << r.status().message() << " (wanted \"" << reason_part << "\")";
}

TEST(PiiRules, InvalidRulesRejectedWithReasons) {
  ExpectInvalid("{", "not valid JSON");
  ExpectInvalid("[1]", "must be a JSON object");
  ExpectInvalid(R"({"detector": {}})", "unknown key \"detector\"");
  ExpectInvalid(R"({"detectors": []})", "\"detectors\" must be an object");
  ExpectInvalid(R"({"detectors": {"passport": "redact"}})", "unknown detector \"passport\"");
  ExpectInvalid(R"({"detectors": {"email": "encrypt"}})", "detector \"email\" has an unknown action");
  ExpectInvalid(R"({"detectors": {"email": 1}})", "detector \"email\" has an unknown action");
  ExpectInvalid(R"({"paths": {"a": "blur"}})", "path \"a\" has an unknown action");
  ExpectInvalid(R"({"paths": {"a..b": "drop"}})", "empty segment");
  ExpectInvalid(R"({"paths": {"": "drop"}})", "empty path pattern");
  ExpectInvalid(R"({"paths": {"user*": "drop"}})", "whole segment");
  ExpectInvalid(R"({"paths": ["a"]})", "\"paths\" must be an object");
  ExpectInvalid(R"({"allow": "plan"})", "\"allow\" must be an array");
  ExpectInvalid(R"({"allow": [1]})", "entries must be strings");
  ExpectInvalid(R"({"hash_key": "abcd"})", "64 hex");
  ExpectInvalid(R"({"hash_key": ")" + std::string(64, 'z') + R"("})", "not valid hex");
  ExpectInvalid("", "no 32-byte hash key", base::SecretBytes(16));
  ExpectInvalid("", "no 32-byte hash key", base::SecretBytes());
}

TEST(PiiRules, EmptyAndBlankAndEmptyObjectMeanDefaults) {
  for (const char* rules : {"", "  \n", "{}"}) {
    auto m = Masker(rules);
    ASSERT_TRUE(m) << rules;
    json obj = {{"password", "x"}, {"t", "13812345678"}};
    m->ApplyToObject(&obj);
    EXPECT_EQ(obj, json({{"t", "[phone]"}})) << rules;
  }
}

// ----------------------------------------------------------------------------------------------------- robustness

// Random strings built from the characters the scanners care about, plus multi-byte text: every action must leave
// valid UTF-8 (nlohmann's dump throws on invalid UTF-8), and text without trigger characters must come back as is.
TEST(PiiRobustness, RandomInputsKeepUtf8) {
  const std::vector<std::string> pieces = {"0",   "1",  "3",  "4", "8",    "9",   "6",   "X",   "x",
                                           "a",   "f",  "@",  ":", "::",   ".",   "-",   " ",   "+",
                                           "+86", "86", "张", "é", "🙂", "com", "138", "1234"};
  std::mt19937 rng(42);
  for (const char* action : {"redact", "mask", "hash", "drop"}) {
    auto m = Masker(Detectors(action));
    for (int i = 0; i < 5000; ++i) {
      std::string in;
      int n = static_cast<int>(rng() % 40);
      for (int k = 0; k < n; ++k) in += pieces[rng() % pieces.size()];
      std::string out = m->MaskString(in);
      json j = out;
      EXPECT_NO_THROW((void)j.dump()) << in;
      json obj = {{"v", in}, {"a", json::array({in, in})}};
      m->ApplyToObject(&obj);
      EXPECT_NO_THROW((void)obj.dump()) << in;
    }
  }
}

// ----------------------------------------------------------------------------------------------------- threads

TEST(PiiThreads, ConstMethodsFromManyThreads) {
  auto m = Masker(R"({"detectors": {"phone": "hash", "email": "mask"}, "paths": {"user.id": "hash"}})");
  json proto = json::parse(R"({"user": {"id": 7, "mail": "a@b.cn"}, "note": "call 13812345678", "n": 1})");
  json expect = proto;
  m->ApplyToObject(&expect);
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        json o = proto;
        m->ApplyToObject(&o);
        if (o != expect) ++bad[t];
        if (m->MaskString("x 13812345678") != "x " + ExpectedHash("13812345678")) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace ferry::pii
