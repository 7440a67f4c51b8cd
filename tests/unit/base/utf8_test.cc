// IsValidUtf8: its ASCII answer (words, the last one overlapping; short texts or-ed) must never hide a bad byte.
#include "lib/base/utf8.h"

#include <string>

#include <gtest/gtest.h>

namespace ferry::base {
namespace {

TEST(Utf8, ABadOrMultiByteSequenceIsFoundAtEveryOffset) {
  for (size_t len = 0; len <= 40; ++len) {
    std::string ascii(len, 'a');
    ASSERT_TRUE(IsValidUtf8(ascii)) << len;
    for (size_t at = 0; at < len; ++at) {
      std::string bad = ascii;
      bad[at] = '\xff';
      ASSERT_FALSE(IsValidUtf8(bad)) << "0xff at " << at << " of " << len;
      bad[at] = '\x80';  // a continuation byte alone
      ASSERT_FALSE(IsValidUtf8(bad)) << "0x80 at " << at << " of " << len;
      if (at + 2 <= len) {
        std::string two = ascii;
        two[at] = '\xc3';  // é
        two[at + 1] = '\xa9';
        ASSERT_TRUE(IsValidUtf8(two)) << "U+00E9 at " << at << " of " << len;
        two[at + 1] = 'a';  // a lead byte without its continuation
        ASSERT_FALSE(IsValidUtf8(two)) << "lone lead at " << at << " of " << len;
      }
    }
  }
}

TEST(Utf8, RefusesOverlongsSurrogatesAndBeyondTheLastCodePoint) {
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80 and more ASCII after it"));
}

}  // namespace
}  // namespace ferry::base
