#include "lib/base/ids.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace ferry::base {
namespace {

TEST(Ids, UuidV7CarriesTheTimeVersionAndVariantAndSortsByTime) {
  // 1796083200000 ms = 0x01a22ee6b000.
  std::string a;
  AppendUuidV7(&a, 1796083200000);
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a.substr(0, 13), "01a22ee6-b000");
  EXPECT_EQ(a[14], '7');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
  for (size_t i : {8u, 13u, 18u, 23u}) EXPECT_EQ(a[i], '-');
  std::set<std::string> seen;
  std::string prev;
  for (int64_t ms = 1796083200000; ms < 1796083200000 + 2000; ++ms) {
    std::string id;
    AppendUuidV7(&id, ms);
    EXPECT_TRUE(seen.insert(id).second);
    EXPECT_LT(prev, id);  // a later millisecond sorts after
    prev = id;
  }
  std::string b, c;
  AppendUuidV7(&b, 5);
  AppendUuidV7(&c, 5);
  EXPECT_NE(b, c);  // the same millisecond: random bits apart
  EXPECT_EQ(b.substr(0, 13), "00000000-0005");
}

TEST(Ids, UuidV4IsStillVersion4) {
  std::string v4 = NewUuidV4();
  ASSERT_EQ(v4.size(), 36u);
  EXPECT_EQ(v4[14], '4');
}

}  // namespace
}  // namespace ferry::base
