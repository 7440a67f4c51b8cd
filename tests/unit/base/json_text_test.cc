// AppendJsonString against nlohmann's dump, byte for byte: every byte that needs an escape at every offset of the
// eight-byte words, and random valid UTF-8.
#include "lib/base/json_text.h"

#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ferry::base {
namespace {

std::string Nlohmann(const std::string& s) { return nlohmann::json(s).dump(); }

// Both writers: AppendJsonString, and WriteJsonString into a buffer of JsonStringBound bytes (they must agree).
std::string Ours(const std::string& s) {
  std::string out = "x";  // appends: what was there stays
  AppendJsonString(&out, s);
  EXPECT_EQ(out[0], 'x');
  std::string buf(JsonStringBound(s.size()), '\0');
  char* end = WriteJsonString(buf.data(), s);
  EXPECT_LE(static_cast<size_t>(end - buf.data()), buf.size());
  EXPECT_EQ(std::string(buf.data(), end), out.substr(1));
  return out.substr(1);
}

TEST(JsonText, EveryEscapedByteAtEveryOffset) {
  for (int c = 0; c < 0x80; ++c) {
    for (size_t len = 1; len <= 24; ++len) {
      for (size_t at = 0; at < len; ++at) {
        std::string s(len, 'a');
        s[at] = static_cast<char>(c);
        ASSERT_EQ(Ours(s), Nlohmann(s)) << "byte " << c << " at " << at << " of " << len;
      }
    }
  }
  EXPECT_EQ(Ours(""), "\"\"");
  EXPECT_EQ(Ours("\"\\\n\x01\x1f\x7f"), R"("\"\\\n\u0001\u001f)"
                                        "\x7f\"");
}

TEST(JsonText, EmptyAndAllEscapedStringsFitTheBound) {
  EXPECT_EQ(Ours(std::string()), "\"\"");
  char empty_view_end[2] = {};
  EXPECT_EQ(WriteJsonString(empty_view_end, std::string_view()), empty_view_end + 2);
  for (size_t len = 1; len <= 20; ++len) {
    ASSERT_EQ(Ours(std::string(len, '\x01')), Nlohmann(std::string(len, '\x01')));  // six bytes each: the bound
  }
}

// A string that lies in the output itself (the output may move as it grows): the same literal as from a copy.
TEST(JsonText, AppendsAStringThatLiesInTheOutput) {
  for (size_t len : {0, 1, 7, 8, 15, 16, 100, 1000}) {
    std::string out(len, 'k');
    out.shrink_to_fit();
    const std::string copy = out;
    AppendJsonString(&out, std::string_view(out));
    EXPECT_EQ(out, copy + Nlohmann(copy)) << len;
    std::string escaped = std::string(len, 'q') + "\"\n";
    const std::string ecopy = escaped;
    AppendJsonString(&escaped, std::string_view(escaped));
    EXPECT_EQ(escaped, ecopy + Nlohmann(ecopy)) << len;
  }
}

TEST(JsonText, RandomUtf8) {
  std::mt19937 rng(7);
  const char* const pieces[] = {"a",
                                "Z",
                                " ",
                                "\"",
                                "\\",
                                "\n",
                                "\t",
                                "\x01",
                                "\x1f",
                                "/",
                                "\xc3\xa9",
                                "\xe4\xb8\xad",
                                "\xf0\x9f\x98\x80",
                                "\x7f",
                                "0123456789abcdef"};
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) s += pieces[rng() % (sizeof pieces / sizeof pieces[0])];
    ASSERT_EQ(Ours(s), Nlohmann(s)) << s;
  }
}

TEST(JsonText, TheWordTestFindsExactlyTheBytesThatNeedAnEscape) {
  for (int c = 0; c < 256; ++c) {
    for (int at = 0; at < 8; ++at) {
      unsigned char bytes[8] = {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'};
      bytes[at] = static_cast<unsigned char>(c);
      uint64_t w;
      std::memcpy(&w, bytes, 8);
      bool needs = c < 0x20 || c == '"' || c == '\\';
      ASSERT_EQ(AnyByteNeedsEscape(w), needs) << "byte " << c << " at " << at;
    }
  }
}

}  // namespace
}  // namespace ferry::base
