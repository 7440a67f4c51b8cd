#include "lib/base/ids.h"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

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
  const std::string d = NewUuidV7(1796083200000);
  EXPECT_EQ(d.substr(0, 15), "01a22ee6-b000-7");
  EXPECT_NE(d, a);
}

TEST(Ids, IdsStayUniqueAcrossTheStreamsKeys) {
  // 60,000 ids of one millisecond draw 600,000 random bytes: ~146 blocks of the thread's stream, each under the key
  // the block before it gave, and two keys from the kernel.
  std::set<std::string> seen;
  for (int i = 0; i < 60000; ++i) {
    std::string id;
    AppendUuidV7(&id, 5);
    ASSERT_TRUE(seen.insert(id.substr(14)).second) << i;
  }
}

TEST(Ids, AChildAfterForkDrawsOtherIds) {
  std::string first;
  AppendUuidV7(&first, 5);  // the parent's stream is under way
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string ids;
    for (int i = 0; i < 50; ++i) AppendUuidV7(&ids, 5);
    ssize_t w = write(fds[1], ids.data(), ids.size());
    _exit(w == static_cast<ssize_t>(ids.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::string child(50 * 36, '\0');
  size_t got = 0;
  while (got < child.size()) {
    ssize_t r = read(fds[0], child.data() + got, child.size() - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(got, child.size());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::set<std::string> parent;
  for (int i = 0; i < 50; ++i) {
    std::string id;
    AppendUuidV7(&id, 5);
    parent.insert(id);
  }
  for (int i = 0; i < 50; ++i) EXPECT_EQ(parent.count(child.substr(36 * i, 36)), 0u) << "the same id in both";
}

TEST(Ids, UuidV4IsStillVersion4) {
  std::string v4 = NewUuidV4();
  ASSERT_EQ(v4.size(), 36u);
  EXPECT_EQ(v4[14], '4');
}

}  // namespace
}  // namespace ferry::base
