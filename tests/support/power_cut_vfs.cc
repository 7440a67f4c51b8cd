#include "tests/support/power_cut_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ferry::testsupport {
namespace {

// What one write or truncate replaced inside the part of the file that was synced.
struct Undo {
  sqlite3_int64 offset;
  std::string old;
};

// A file's state since its last sync.
struct FileState {
  sqlite3_int64 synced_size = 0;
  std::vector<Undo> undo;  // in the order the changes happened
};

struct State {
  std::mutex mu;
  sqlite3_vfs* real = nullptr;
  sqlite3_vfs vfs{};
  bool cut = false;                        // guarded by mu
  std::map<std::string, FileState> files;  // by the path SQLite opened; guarded by mu
  size_t opened = 0;                       // guarded by mu
  size_t syncs = 0;                        // guarded by mu
};

State& S() {
  static State s;
  return s;
}

// The file SQLite holds: ours, followed by the real VFS's.
struct File {
  sqlite3_file base;
  std::string* path;  // nullptr: a temporary file, not followed
  sqlite3_file* real;
};
constexpr size_t kRealOffset = (sizeof(File) + 15) & ~size_t{15};

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }

sqlite3_int64 RealSize(sqlite3_file* real) {
  sqlite3_int64 size = 0;
  if (real->pMethods->xFileSize(real, &size) != SQLITE_OK) return 0;
  return size;
}

// Remembers what [offset, offset + n) holds now, where it lies inside the synced part. Caller holds mu.
void Remember(FileState& st, sqlite3_file* real, sqlite3_int64 offset, sqlite3_int64 n) {
  if (offset >= st.synced_size || n <= 0) return;
  n = std::min(n, st.synced_size - offset);
  Undo u{offset, std::string(static_cast<size_t>(n), '\0')};
  // A short read (the file was truncated earlier) leaves zeros; that truncate's own entry restores the bytes.
  (void)real->pMethods->xRead(real, u.old.data(), static_cast<int>(n), offset);
  st.undo.push_back(std::move(u));
}

int Close(sqlite3_file* f) {
  auto* file = reinterpret_cast<File*>(f);
  int rc = file->real->pMethods->xClose(file->real);
  delete file->path;
  file->path = nullptr;
  return rc;
}

int Read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 offset) {
  return Real(f)->pMethods->xRead(Real(f), buf, amt, offset);
}

int Write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 offset) {
  auto* file = reinterpret_cast<File*>(f);
  std::lock_guard<std::mutex> l(S().mu);
  if (S().cut) return SQLITE_OK;
  if (file->path != nullptr) Remember(S().files[*file->path], file->real, offset, amt);
  return file->real->pMethods->xWrite(file->real, buf, amt, offset);
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  auto* file = reinterpret_cast<File*>(f);
  std::lock_guard<std::mutex> l(S().mu);
  if (S().cut) return SQLITE_OK;
  if (file->path != nullptr) Remember(S().files[*file->path], file->real, size, RealSize(file->real) - size);
  return file->real->pMethods->xTruncate(file->real, size);
}

int Sync(sqlite3_file* f, int flags) {
  auto* file = reinterpret_cast<File*>(f);
  std::lock_guard<std::mutex> l(S().mu);
  if (S().cut) return SQLITE_OK;
  int rc = file->real->pMethods->xSync(file->real, flags);
  if (rc == SQLITE_OK && file->path != nullptr) {
    FileState& st = S().files[*file->path];
    st.undo.clear();
    st.synced_size = RealSize(file->real);
    S().syncs++;
  }
  return rc;
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) { return Real(f)->pMethods->xFileSize(Real(f), size); }
int Lock(sqlite3_file* f, int lock) { return Real(f)->pMethods->xLock(Real(f), lock); }
int Unlock(sqlite3_file* f, int lock) { return Real(f)->pMethods->xUnlock(Real(f), lock); }
int CheckReservedLock(sqlite3_file* f, int* out) { return Real(f)->pMethods->xCheckReservedLock(Real(f), out); }
int FileControl(sqlite3_file* f, int op, void* arg) { return Real(f)->pMethods->xFileControl(Real(f), op, arg); }
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); }
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int delete_flag) { return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag); }

// Version 2: no xFetch, so SQLite reads through xRead (never a memory map of a file this VFS may rewrite).
const sqlite3_io_methods kMethods = {2,
                                     Close,
                                     Read,
                                     Write,
                                     Truncate,
                                     Sync,
                                     FileSize,
                                     Lock,
                                     Unlock,
                                     CheckReservedLock,
                                     FileControl,
                                     SectorSize,
                                     DeviceCharacteristics,
                                     ShmMap,
                                     ShmLock,
                                     ShmBarrier,
                                     ShmUnmap,
                                     nullptr,
                                     nullptr};

int Open(sqlite3_vfs*, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  auto* file = reinterpret_cast<File*>(f);
  file->base.pMethods = nullptr;
  file->path = nullptr;
  file->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kRealOffset);
  sqlite3_vfs* real = S().real;
  int rc = real->xOpen(real, name, file->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (name != nullptr) {
    file->path = new std::string(name);
    std::lock_guard<std::mutex> l(S().mu);
    S().opened++;
    auto it = S().files.find(name);
    if (it == S().files.end()) S().files[name].synced_size = RealSize(file->real);
  }
  file->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  std::lock_guard<std::mutex> l(S().mu);
  if (S().cut) return SQLITE_OK;
  int rc = S().real->xDelete(S().real, name, sync_dir);
  if (rc == SQLITE_OK) S().files.erase(name);
  return rc;
}

}  // namespace

PowerCutVfs::PowerCutVfs() {
  State& s = S();
  s.real = sqlite3_vfs_find(nullptr);
  if (s.real == nullptr) return;
  // Everything else (full paths, access, randomness, time) is the real VFS's, with its pAppData.
  s.vfs = *s.real;
  s.vfs.pNext = nullptr;
  s.vfs.zName = "ferry-power-cut";
  s.vfs.szOsFile = static_cast<int>(kRealOffset) + s.real->szOsFile;
  s.vfs.xOpen = Open;
  s.vfs.xDelete = Delete;
  {
    std::lock_guard<std::mutex> l(s.mu);
    s.cut = false;
    s.files.clear();
    s.opened = 0;
    s.syncs = 0;
  }
  installed_ = sqlite3_vfs_register(&s.vfs, 1) == SQLITE_OK;
}

PowerCutVfs::~PowerCutVfs() {
  if (!installed_) return;
  sqlite3_vfs_unregister(&S().vfs);
  sqlite3_vfs_register(S().real, 1);  // the default again
}

void PowerCutVfs::Cut() {
  std::lock_guard<std::mutex> l(S().mu);
  S().cut = true;
}

std::string PowerCutVfs::Revert() {
  std::lock_guard<std::mutex> l(S().mu);
  std::string error;
  for (auto& [path, st] : S().files) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      error += path + ": " + std::strerror(errno) + "; ";
      continue;
    }
    if (::ftruncate(fd, st.synced_size) != 0) error += path + ": truncate failed; ";
    for (auto it = st.undo.rbegin(); it != st.undo.rend(); ++it) {
      if (::pwrite(fd, it->old.data(), it->old.size(), it->offset) != static_cast<ssize_t>(it->old.size())) {
        error += path + ": write failed; ";
      }
    }
    ::close(fd);
  }
  S().files.clear();
  S().cut = false;
  return error;
}

size_t PowerCutVfs::files_opened() const {
  std::lock_guard<std::mutex> l(S().mu);
  return S().opened;
}

size_t PowerCutVfs::syncs() const {
  std::lock_guard<std::mutex> l(S().mu);
  return S().syncs;
}

}  // namespace ferry::testsupport
