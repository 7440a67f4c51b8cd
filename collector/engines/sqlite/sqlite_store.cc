// The embedded store's key file, and opening a SqliteStore in a data directory.
#include "collector/engines/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace ferry::collector {

using base::Result;
using base::SecretBytes;
using base::Status;

namespace {

Status MakeDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  return Status::Storage("cannot create " + dir + ": " + std::strerror(errno));
}

}  // namespace

Result<SecretBytes> LoadOrCreateStoreKey(const std::string& data_dir, const std::string& key_file) {
  if (!base::EnsureSodium()) return Status::Internal("libsodium failed to start");
  std::string path = key_file.empty() ? data_dir + "/collector.key" : key_file;
  if (key_file.empty()) {
    FERRY_RETURN_IF_ERROR(MakeDir(data_dir));
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      SecretBytes key = SecretBytes::Random(32);
      std::string hex = key.ToHex() + "\n";
      bool ok = write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && fsync(fd) == 0;
      base::WipeString(hex);
      close(fd);
      if (!ok) {
        unlink(path.c_str());
        return Status::Storage("cannot write " + path);
      }
      return key;
    }
    if (errno != EEXIST) return Status::Storage("cannot create " + path + ": " + std::strerror(errno));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Storage("cannot read key file " + path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SecretBytes key;
  if (content.size() == 32) {
    key = SecretBytes(reinterpret_cast<const uint8_t*>(content.data()), 32);
  } else {
    std::string hex = content;
    while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' ')) hex.pop_back();
    if (hex.size() == 64) key = SecretBytes::FromHex(hex);
    base::WipeString(hex);
  }
  base::WipeString(content);
  if (key.size() != 32) return Status::InvalidArgument("key file " + path + " must hold 64 hex characters");
  return key;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& data_dir, const std::string& key_file,
                                                       base::Clock* clock) {
  FERRY_RETURN_IF_ERROR(MakeDir(data_dir));
  auto key = LoadOrCreateStoreKey(data_dir, key_file);
  if (!key.ok()) return key.status();
  return OpenFile(data_dir + "/collector.db", *key, clock);
}

}  // namespace ferry::collector
