// Files: directories, key files (raw and hex), moving corrupt databases aside, sizes on disk.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "platform/platform.h"
#include "tests/unit/platform/test_dir.h"

namespace ferry::platform {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return static_cast<mode_t>(-1);
  return st.st_mode & 07777;
}

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

TEST(DirNameTest, SplitsLikePosixDirname) {
  EXPECT_EQ(DirName("a/b/c.db"), "a/b");
  EXPECT_EQ(DirName("/var/lib/ferry/buffer.db"), "/var/lib/ferry");
  EXPECT_EQ(DirName("buffer.db"), ".");
  EXPECT_EQ(DirName("/buffer.db"), "/");
  EXPECT_EQ(DirName("/"), "/");
  EXPECT_EQ(DirName("a/b/"), "a");
  EXPECT_EQ(DirName("a//b"), "a");
  EXPECT_EQ(DirName(""), ".");
}

TEST(EnsureDirTest, CreatesParentsWithMode0700AndIsIdempotent) {
  TempDir t;
  std::string deep = t / "x/y/z";
  ASSERT_TRUE(EnsureDir(deep).ok());
  EXPECT_TRUE(std::filesystem::is_directory(deep));
  EXPECT_EQ(ModeOf(t / "x"), 0700u);
  EXPECT_EQ(ModeOf(deep), 0700u);
  EXPECT_TRUE(EnsureDir(deep).ok());
  EXPECT_TRUE(EnsureDir(deep + "/").ok());
}

TEST(EnsureDirTest, FailsWhenAFileIsInTheWay) {
  TempDir t;
  WriteFile(t / "file", "x");
  base::Status st = EnsureDir(t / "file/sub");
  EXPECT_EQ(st.code(), base::Code::kStorage);
  EXPECT_NE(st.message().find("file"), std::string::npos) << st.message();
}

TEST(KeyFileTest, CreatesA32ByteKeyWithMode0600) {
  TempDir t;
  std::string path = t / "keys/buffer.key";  // parent does not exist yet
  auto key = LoadOrCreateKey(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->size(), 32u);
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(t / "keys"), 0700u);
  std::string on_disk = ReadFile(path);
  ASSERT_EQ(on_disk.size(), 32u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(key->data()), key->size()), on_disk);
  // No temp file is left behind.
  EXPECT_EQ(Listing(t / "keys"), std::set<std::string>{"buffer.key"});
  // Not all zeros (a CSPRNG gives 32 zero bytes with probability 2^-256).
  EXPECT_NE(on_disk, std::string(32, '\0'));
}

TEST(KeyFileTest, SecondLoadReturnsTheSameKey) {
  TempDir t;
  std::string path = t / "buffer.key";
  auto first = LoadOrCreateKey(path);
  ASSERT_TRUE(first.ok());
  auto second = LoadOrCreateKey(path);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(first->ToHex(), second->ToHex());
}

TEST(KeyFileTest, DifferentFilesGetDifferentKeys) {
  TempDir t;
  auto a = LoadOrCreateKey(t / "a.key");
  auto b = LoadOrCreateKey(t / "b.key");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->ToHex(), b->ToHex());
}

TEST(KeyFileTest, HonoursTheRequestedLength) {
  TempDir t;
  auto key = LoadOrCreateKey(t / "k", 64);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->size(), 64u);
  EXPECT_EQ(ReadFile(t / "k").size(), 64u);
  // The same file asked for with another length is refused, not truncated.
  auto other = LoadOrCreateKey(t / "k", 32);
  EXPECT_EQ(other.status().code(), base::Code::kStorage);
}

TEST(KeyFileTest, RefusesGroupOrOtherPermissions) {
  TempDir t;
  std::string path = t / "buffer.key";
  ASSERT_TRUE(LoadOrCreateKey(path).ok());
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    auto key = LoadOrCreateKey(path);
    EXPECT_FALSE(key.ok()) << std::oct << mode;
    EXPECT_EQ(key.status().code(), base::Code::kStorage);
    EXPECT_NE(key.status().message().find("mode"), std::string::npos) << key.status().message();
  }
  ASSERT_EQ(chmod(path.c_str(), 0400), 0);  // owner-only read is fine
  EXPECT_TRUE(LoadOrCreateKey(path).ok());
}

TEST(KeyFileTest, RefusesAFileOfTheWrongSize) {
  TempDir t;
  std::string path = t / "buffer.key";
  WriteFile(path, std::string(16, 'k'));
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  auto key = LoadOrCreateKey(path);
  EXPECT_EQ(key.status().code(), base::Code::kStorage);
  EXPECT_NE(key.status().message().find("16 bytes"), std::string::npos) << key.status().message();
  // The refused file is left untouched: losing a key would lose the buffer.
  EXPECT_EQ(ReadFile(path), std::string(16, 'k'));

  WriteFile(path, "");
  EXPECT_EQ(LoadOrCreateKey(path).status().code(), base::Code::kStorage);
}

TEST(KeyFileTest, RefusesASymlinkAndADirectory) {
  TempDir t;
  ASSERT_TRUE(LoadOrCreateKey(t / "real.key").ok());
  ASSERT_EQ(symlink((t / "real.key").c_str(), (t / "link.key").c_str()), 0);
  EXPECT_EQ(LoadOrCreateKey(t / "link.key").status().code(), base::Code::kStorage);
  ASSERT_TRUE(EnsureDir(t / "dir.key").ok());
  EXPECT_EQ(LoadOrCreateKey(t / "dir.key").status().code(), base::Code::kStorage);
}

TEST(KeyFileTest, IgnoresAStrayTempFileFromACrash) {
  TempDir t;
  std::string path = t / "buffer.key";
  WriteFile(path + ".tmp-0011223344556677", "half a ke");
  auto key = LoadOrCreateKey(path);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(ReadFile(path).size(), 32u);
}

TEST(KeyFileTest, FailsWhenTheDirectoryCannotBeCreated) {
  TempDir t;
  WriteFile(t / "blocker", "x");
  auto key = LoadOrCreateKey(t / "blocker/buffer.key");
  EXPECT_EQ(key.status().code(), base::Code::kStorage);
}

// The collector's store key: 64 hex characters and a newline, or 32 raw bytes; an operator's file is never created.
KeyFileOptions HexKey(bool create = true) {
  KeyFileOptions o;
  o.hex = true;
  o.create = create;
  return o;
}

TEST(KeyFileTest, HexKeyFilesAreCreatedAsHexWithMode0600) {
  TempDir t;
  std::string path = t / "data/collector.key";
  auto key = LoadOrCreateKey(path, HexKey());
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->size(), 32u);
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ReadFile(path), key->ToHex() + "\n");
  EXPECT_EQ(Listing(t / "data"), std::set<std::string>{"collector.key"});
  auto again = LoadOrCreateKey(path, HexKey());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToHex(), key->ToHex());
}

TEST(KeyFileTest, HexKeyFilesReadHexAndRawFilesWrittenBefore) {
  TempDir t;
  std::string hex(64, 'a');
  for (const std::string& content : {hex, hex + "\n", hex + "\r\n", "  " + hex + " \n", std::string(32, '\xaa')}) {
    std::string path = t / "k";
    WriteFile(path, content);
    ASSERT_EQ(chmod(path.c_str(), 0600), 0);
    auto key = LoadOrCreateKey(path, HexKey(false));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->ToHex(), hex);
  }
  // A raw-only key file does not take hex.
  EXPECT_EQ(LoadOrCreateKey(t / "k", 32).ok(), true);  // 32 raw bytes, as last written
  WriteFile(t / "k", hex);
  EXPECT_EQ(LoadOrCreateKey(t / "k", 32).status().code(), base::Code::kStorage);
}

TEST(KeyFileTest, HexKeyFilesRefuseWhatIsNotAKey) {
  TempDir t;
  std::string path = t / "k";
  for (const std::string& content :
       {std::string("short"), std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'g'),
        std::string(62, 'a') + " a", std::string(64, 'a') + std::string(20, '\n'), std::string()}) {
    WriteFile(path, content);
    ASSERT_EQ(chmod(path.c_str(), 0600), 0);
    auto key = LoadOrCreateKey(path, HexKey());
    EXPECT_EQ(key.status().code(), base::Code::kStorage) << content;
    EXPECT_EQ(ReadFile(path), content) << "a refused key file is left as it is";
  }
}

TEST(KeyFileTest, HexKeyFilesRefuseModesAndSymlinksLikeRawOnes) {
  TempDir t;
  std::string path = t / "collector.key";
  WriteFile(path, std::string(64, 'b') + "\n");
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  auto key = LoadOrCreateKey(path, HexKey(false));
  EXPECT_EQ(key.status().code(), base::Code::kStorage);
  EXPECT_NE(key.status().message().find("mode 0644"), std::string::npos) << key.status().message();
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(LoadOrCreateKey(path, HexKey(false)).ok());
  ASSERT_EQ(symlink(path.c_str(), (t / "link.key").c_str()), 0);
  key = LoadOrCreateKey(t / "link.key", HexKey(false));
  EXPECT_EQ(key.status().code(), base::Code::kStorage);
  EXPECT_NE(key.status().message().find("symbolic link"), std::string::npos) << key.status().message();
  // A dangling link is not "missing": nothing is created through it.
  ASSERT_EQ(symlink((t / "nowhere.key").c_str(), (t / "dangling.key").c_str()), 0);
  EXPECT_EQ(LoadOrCreateKey(t / "dangling.key", HexKey(true)).status().code(), base::Code::kStorage);
  EXPECT_FALSE(std::filesystem::exists(t / "nowhere.key"));
}

TEST(KeyFileTest, AMissingFileIsNotCreatedWhenCreateIsOff) {
  TempDir t;
  auto key = LoadOrCreateKey(t / "operator.key", HexKey(false));
  EXPECT_EQ(key.status().code(), base::Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(t / "operator.key"));
}

TEST(KeyFromBytesTest, RawOrHexWithWhitespace) {
  std::string hex(64, 'c');
  EXPECT_EQ(KeyFromBytes(hex, 32).ToHex(), hex);
  EXPECT_EQ(KeyFromBytes("\t" + hex + "\r\n", 32).ToHex(), hex);
  EXPECT_EQ(KeyFromBytes(std::string(32, '\xcc'), 32).ToHex(), hex);
  EXPECT_TRUE(KeyFromBytes(std::string(63, 'c'), 32).empty());
  EXPECT_TRUE(KeyFromBytes(std::string(64, 'z'), 32).empty());
  EXPECT_TRUE(KeyFromBytes("", 32).empty());
}

TEST(MoveAsideTest, MovesTheDatabaseAndItsCompanions) {
  TempDir t;
  std::string db = t / "buffer.db";
  WriteFile(db, "main");
  WriteFile(db + "-wal", "wal");
  WriteFile(db + "-shm", "shm");
  auto moved = MoveAside(db);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->rfind(db + ".corrupt-", 0), 0u) << *moved;
  EXPECT_FALSE(std::filesystem::exists(db));
  EXPECT_FALSE(std::filesystem::exists(db + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(db + "-shm"));
  EXPECT_EQ(ReadFile(*moved), "main");
  EXPECT_EQ(ReadFile(*moved + "-wal"), "wal");
  EXPECT_EQ(ReadFile(*moved + "-shm"), "shm");
}

TEST(MoveAsideTest, WorksWithoutCompanionsAndNeverOverwrites) {
  TempDir t;
  std::string db = t / "buffer.db";
  std::set<std::string> names;
  for (int i = 0; i < 3; ++i) {  // three in a row, likely within the same millisecond
    WriteFile(db, "generation " + std::to_string(i));
    auto moved = MoveAside(db);
    ASSERT_TRUE(moved.ok()) << moved.status().ToString();
    EXPECT_EQ(ReadFile(*moved), "generation " + std::to_string(i));
    names.insert(*moved);
  }
  EXPECT_EQ(names.size(), 3u);
}

TEST(MoveAsideTest, FailsWhenThereIsNothingToMove) {
  TempDir t;
  auto moved = MoveAside(t / "absent.db");
  EXPECT_EQ(moved.status().code(), base::Code::kStorage);
}

TEST(DatabaseBytesOnDiskTest, CountsTheFileAndItsWal) {
  TempDir t;
  std::string db = t / "buffer.db";
  EXPECT_EQ(DatabaseBytesOnDisk(db), 0u);
  WriteFile(db, std::string(4096, 'a'));
  EXPECT_EQ(DatabaseBytesOnDisk(db), 4096u);
  WriteFile(db + "-wal", std::string(1000, 'w'));
  WriteFile(db + "-shm", std::string(32768, 's'));  // shared memory index: not data, not counted
  EXPECT_EQ(DatabaseBytesOnDisk(db), 5096u);
}

}  // namespace
}  // namespace ferry::platform
