#include "lib/base/digest.h"

#include <gtest/gtest.h>

namespace ferry::base {
namespace {

TEST(Digest, HexIsLowercaseTwoCharactersPerByte) {
  EXPECT_EQ(Hex(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(Hex(""), "");
  std::string out = "x:";
  AppendHex("\x10", 1, &out);
  EXPECT_EQ(out, "x:10");
}

TEST(Digest, Blake2b256KnownAnswers) {
  // BLAKE2b-256 of the empty string (RFC 7693 parameters, 32-byte output).
  EXPECT_EQ(Blake2b256Hex(""), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(Blake2b256("abc").size(), 32u);
  // Keyed differs from unkeyed, and from another key.
  std::string k1(32, 'a'), k2(32, 'b');
  EXPECT_NE(Blake2b256Hex("id", k1), Blake2b256Hex("id"));
  EXPECT_NE(Blake2b256Hex("id", k1), Blake2b256Hex("id", k2));
  EXPECT_EQ(Blake2b256Hex("id", k1), Blake2b256Hex("id", k1));
}

}  // namespace
}  // namespace ferry::base
