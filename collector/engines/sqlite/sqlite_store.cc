// The embedded store's key file, and opening a SqliteStore in a data directory.
#include "collector/engines/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include "platform/platform.h"

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
  // Through the platform's key files: no group/other permissions, no symbolic link, created atomically.
  platform::KeyFileOptions o;
  o.len = 32;
  o.hex = true;
  o.create = key_file.empty();  // an operator's --key-file is never made up
  return platform::LoadOrCreateKey(key_file.empty() ? data_dir + "/collector.key" : key_file, o);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& data_dir, const std::string& key_file,
                                                       base::Clock* clock, const SqliteStoreOptions& options) {
  FERRY_RETURN_IF_ERROR(MakeDir(data_dir));
  auto key = LoadOrCreateStoreKey(data_dir, key_file);
  if (!key.ok()) return key.status();
  return OpenFile(data_dir + "/collector.db", *key, clock, options);
}

}  // namespace ferry::collector
