// POSIX files, shared by Linux, Android and Apple: directories, key files (the file-based secret store), moving
// corrupt files aside, locks and the disk reserve. Only POSIX.1-2008 calls plus flock() (Linux, bionic, Darwin);
// nothing Linux-only: the atomic create of a key file is link() (see CreateKeyFile), not renameat2().
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "lib/base/ids.h"
#include "lib/base/time.h"
#include "platform/platform.h"

namespace ferry::platform {
namespace {

std::string Errno(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::strerror(err);
}

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Hands the descriptor over; the object no longer closes it.
  void Release() { fd_ = -1; }
  // Closes now and reports the error close() gave.
  int Close() {
    int rc = fd_ >= 0 ? close(fd_) : 0;
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

bool ReadFull(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Makes a rename or link durable: fsync the directory that holds `path`.
void SyncDirOf(const std::string& path) {
  int fd = open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

// link() failed because the file system has no hard links (or refuses them to this process).
bool NoHardLinks(int err) {
  if (err == EPERM || err == ENOTSUP || err == EMLINK) return true;
#if EOPNOTSUPP != ENOTSUP
  if (err == EOPNOTSUPP) return true;
#endif
  return false;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Reads an existing key file. ENOENT is passed back through *missing so the caller can create one.
base::Result<base::SecretBytes> ReadKeyFile(const std::string& path, const KeyFileOptions& o, bool* missing) {
  *missing = false;
  int raw = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) {
      *missing = true;
      return base::Status::NotFound("key file absent: " + path);
    }
    if (errno == ELOOP) return base::Status::Storage("key file is a symbolic link, refused: " + path);
    return base::Status::Storage(Errno("cannot open key file", path, errno));
  }
  Fd fd(raw);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return base::Status::Storage(Errno("cannot stat key file", path, errno));
  if (!S_ISREG(st.st_mode)) return base::Status::Storage("key file is not a regular file: " + path);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return base::Status::Storage("key file " + path + " has mode " + mode +
                                 "; group/other permissions are refused (chmod 600)");
  }
  // Hex: 2*len characters and a little whitespace (a newline, an editor's CRLF).
  uint64_t size = static_cast<uint64_t>(st.st_size);
  bool fits = size == o.len || (o.hex && size >= 2 * o.len && size <= 2 * o.len + 8);
  if (!fits) {
    return base::Status::Storage("key file " + path + " holds " + std::to_string(st.st_size) + " bytes, expected " +
                                 std::to_string(o.len) +
                                 (o.hex ? " raw bytes or " + std::to_string(2 * o.len) + " hex characters" : ""));
  }
  std::string content(static_cast<size_t>(size), '\0');
  if (!ReadFull(fd.get(), reinterpret_cast<uint8_t*>(content.data()), content.size())) {
    int err = errno;
    base::WipeString(content);
    return base::Status::Storage(Errno("cannot read key file", path, err));
  }
  base::SecretBytes key = size == o.len ? base::SecretBytes(reinterpret_cast<const uint8_t*>(content.data()), o.len)
                                        : KeyFromBytes(content, o.len);
  base::WipeString(content);
  if (key.size() != o.len) {
    return base::Status::Storage("key file " + path + " must hold " + std::to_string(o.len) + " raw bytes or " +
                                 std::to_string(2 * o.len) + " hex characters");
  }
  return key;
}

// Creates `file` (O_EXCL, mode 0600, no symbolic link) holding a fresh random key (hex or raw, as `o` says), fsync'd.
// *exists is set when the name was already taken (nothing written then). A failed write removes the file.
base::Status WriteFreshKeyFile(const std::string& file, const KeyFileOptions& o, bool* exists) {
  *exists = false;
  int raw = open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0 && errno == EEXIST) {
    *exists = true;
    return base::Status::Ok();
  }
  if (raw < 0) return base::Status::Storage(Errno("cannot create key file", file, errno));
  Fd fd(raw);
  base::SecretBytes key(o.len);
  randombytes_buf(key.data(), o.len);
  std::string hex;
  if (o.hex) hex = key.ToHex() + "\n";
  const uint8_t* bytes = o.hex ? reinterpret_cast<const uint8_t*>(hex.data()) : key.data();
  size_t n = o.hex ? hex.size() : o.len;
  bool ok = fchmod(fd.get(), 0600) == 0 && WriteFull(fd.get(), bytes, n) && fsync(fd.get()) == 0;
  int err = errno;
  key.Wipe();
  base::WipeString(hex);
  if (fd.Close() != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    unlink(file.c_str());
    return base::Status::Storage(Errno("cannot write key file", file, err));
  }
  return base::Status::Ok();
}

// Creates the key file under its own name with O_EXCL (for file systems without hard links).
base::Status CreateKeyFileInPlace(const std::string& path, const KeyFileOptions& o) {
  bool exists = false;
  FERRY_RETURN_IF_ERROR(WriteFreshKeyFile(path, o, &exists));
  if (!exists) SyncDirOf(path);
  return base::Status::Ok();  // exists: another process won the race; its key is the one to use
}

// Writes a fresh random key to a temp file beside `path` (O_EXCL, 0600, fsync'd) and moves it into place without
// replacing a key another process put there first. A crash leaves at most a stray temp file, never a half key.
base::Status CreateKeyFile(const std::string& path, const KeyFileOptions& o) {
  std::string tmp = path + ".tmp-" + base::RandomHex(8);
  bool exists = false;
  FERRY_RETURN_IF_ERROR(WriteFreshKeyFile(tmp, o, &exists));
  if (exists) return base::Status::Storage("cannot create key file " + tmp + ": it exists");
  // Atomic "create if absent": link() the complete temp file to the name, then drop the temp name. link() fails
  // with EEXIST when the name exists, atomically, on every POSIX system (Linux, Android's bionic at every API level,
  // Darwin) and file system with hard links, so a key another process put there first is never replaced, and the
  // name never shows a half-written key (the content was fsync'd before the link). renameat2(RENAME_NOREPLACE)
  // would do the same but is Linux-only (bionic has it from API 30; Darwin has renamex_np instead).
  int rc = link(tmp.c_str(), path.c_str());
  int err = errno;
  unlink(tmp.c_str());
  if (rc != 0 && err == EEXIST) return base::Status::Ok();  // another process won the race; its key is the one to use
  if (rc != 0 && NoHardLinks(err)) {
    // A file system without hard links (FAT on removable storage, some FUSE mounts): create the name itself with
    // O_EXCL (still never replacing another process's key). A crash while writing leaves a file of the wrong size,
    // which ReadKeyFile refuses (kStorage, named) rather than use a partial key.
    return CreateKeyFileInPlace(path, o);
  }
  if (rc != 0) return base::Status::Storage(Errno("cannot move key file into place", path, err));
  SyncDirOf(path);
  return base::Status::Ok();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

}  // namespace

std::string DirName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  while (slash > 0 && p[slash - 1] == '/') --slash;
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

base::Status EnsureDir(const std::string& dir) {
  if (dir.empty()) return base::Status::InvalidArgument("empty directory name");
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string part = dir.substr(0, pos);
    if (part.empty() || part.back() == '/') continue;
    if (mkdir(part.c_str(), 0700) == 0) continue;
    int err = errno;
    struct stat st {};
    if (err == EEXIST && stat(part.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    if (err == EEXIST) return base::Status::Storage("not a directory: " + part);
    return base::Status::Storage(Errno("cannot create directory", part, err));
  }
  return base::Status::Ok();
}

base::SecretBytes KeyFromBytes(std::string_view content, size_t len) {
  if (content.size() == len) return base::SecretBytes(reinterpret_cast<const uint8_t*>(content.data()), len);
  while (!content.empty() && IsSpace(content.back())) content.remove_suffix(1);
  while (!content.empty() && IsSpace(content.front())) content.remove_prefix(1);
  if (content.size() != 2 * len) return base::SecretBytes();
  std::string hex(content);
  base::SecretBytes key = base::SecretBytes::FromHex(hex);
  base::WipeString(hex);
  return key;
}

base::Result<base::SecretBytes> LoadOrCreateKey(const std::string& key_path, const KeyFileOptions& options) {
  if (key_path.empty() || options.len == 0) {
    return base::Status::InvalidArgument("empty key path or zero key length");
  }
  if (!base::EnsureSodium()) return base::Status::Internal("libsodium failed to start");
  bool missing = false;
  auto existing = ReadKeyFile(key_path, options, &missing);
  if (!missing || !options.create) return existing;
  FERRY_RETURN_IF_ERROR(EnsureDir(DirName(key_path)));
  FERRY_RETURN_IF_ERROR(CreateKeyFile(key_path, options));
  auto created = ReadKeyFile(key_path, options, &missing);
  if (missing) return base::Status::Storage("key file vanished after creation: " + key_path);
  return created;
}

base::Result<base::SecretBytes> LoadOrCreateKey(const std::string& key_path, size_t len) {
  KeyFileOptions o;
  o.len = len;
  return LoadOrCreateKey(key_path, o);
}

base::Result<std::string> MoveAside(const std::string& path, const std::string& tag) {
  if (!Exists(path)) return base::Status::Storage("nothing to move aside: " + path + " does not exist");
  std::string base_name = path + "." + tag + "-" + std::to_string(base::NowMs());
  std::string target = base_name;
  for (int i = 1; Exists(target) || Exists(target + "-wal") || Exists(target + "-shm"); ++i) {
    target = base_name + "-" + std::to_string(i);
  }
  // Companions first: a database must never be found next to a stranger's WAL.
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string from = path + suffix;
    if (rename(from.c_str(), (target + suffix).c_str()) != 0 && errno != ENOENT) {
      return base::Status::Storage(Errno("cannot move aside", from, errno));
    }
  }
  if (rename(path.c_str(), target.c_str()) != 0) {
    return base::Status::Storage(Errno("cannot move aside", path, errno));
  }
  SyncDirOf(path);
  return target;
}

namespace {

class FlockLock final : public FileLock {
 public:
  explicit FlockLock(int fd) : fd_(fd) {}
  ~FlockLock() override { close(fd_); }  // closing the last descriptor releases the lock

 private:
  int fd_;
};

}  // namespace

// Opens (creating, 0600) a private regular file for reading and writing: no symbolic link, group/other permissions
// narrowed away. The descriptor goes to *out.
base::Status OpenPrivate(const std::string& path, int* out) {
  int raw = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) {
    if (errno == ELOOP) return base::Status::Storage("a symbolic link, refused: " + path);
    return base::Status::Storage(Errno("cannot open", path, errno));
  }
  Fd fd(raw);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return base::Status::Storage(Errno("cannot stat", path, errno));
  if (!S_ISREG(st.st_mode)) return base::Status::Storage("not a regular file: " + path);
  if ((st.st_mode & 077) != 0 && fchmod(fd.get(), 0600) != 0) {
    return base::Status::Storage(Errno("cannot narrow the mode of", path, errno));
  }
  *out = fd.get();
  fd.Release();
  return base::Status::Ok();
}

base::Result<std::unique_ptr<FileLock>> LockFile(const std::string& lock_path) {
  int raw = -1;
  FERRY_RETURN_IF_ERROR(OpenPrivate(lock_path, &raw));
  Fd fd(raw);
  int rc;
  do {
    rc = flock(fd.get(), LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EWOULDBLOCK) {
      return base::Status::Storage("in use: another process (or another client in this one) holds the lock " +
                                   lock_path);
    }
    return base::Status::Storage(Errno("cannot lock", lock_path, errno));
  }
  std::unique_ptr<FileLock> lock = std::make_unique<FlockLock>(fd.get());
  fd.Release();
  return lock;
}

base::Status EnsurePrivateFile(const std::string& path) {
  int raw = -1;
  FERRY_RETURN_IF_ERROR(OpenPrivate(path, &raw));
  close(raw);
  return base::Status::Ok();
}

base::Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int raw = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return base::Status::NotFound("absent: " + path);
    return base::Status::Storage(Errno("cannot open", path, errno));
  }
  Fd fd(raw);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return base::Status::Storage(Errno("cannot stat", path, errno));
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > max_bytes) {
    return base::Status::Storage("not a regular file of at most " + std::to_string(max_bytes) + " bytes: " + path);
  }
  std::string content(static_cast<size_t>(st.st_size), '\0');
  if (!ReadFull(fd.get(), reinterpret_cast<uint8_t*>(content.data()), content.size())) {
    return base::Status::Storage(Errno("cannot read", path, errno));
  }
  return content;
}

base::Status WriteFileAtomic(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp-" + base::RandomHex(8);
  int raw = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return base::Status::Storage(Errno("cannot create", tmp, errno));
  Fd fd(raw);
  bool ok =
      WriteFull(fd.get(), reinterpret_cast<const uint8_t*>(content.data()), content.size()) && fsync(fd.get()) == 0;
  int err = errno;
  if (fd.Close() != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    unlink(tmp.c_str());
    return base::Status::Storage(Errno("cannot write", path, err));
  }
  SyncDirOf(path);
  return base::Status::Ok();
}

namespace {

// Allocates `bytes` bytes of disk for the file (not a sparse file): 0 or an errno value.
int Preallocate(int fd, uint64_t bytes) {
#if defined(__APPLE__)
  // Darwin has no posix_fallocate: F_PREALLOCATE reserves the blocks, ftruncate sets the size.
  fstore_t store{};
  store.fst_flags = F_ALLOCATEALL;
  store.fst_posmode = F_PEOFPOSMODE;
  store.fst_offset = 0;
  store.fst_length = static_cast<off_t>(bytes);
  if (fcntl(fd, F_PREALLOCATE, &store) != 0) return errno;
  return ftruncate(fd, static_cast<off_t>(bytes)) == 0 ? 0 : errno;
#else
  return posix_fallocate(fd, 0, static_cast<off_t>(bytes));
#endif
}

}  // namespace

base::Status EnsureReserve(const std::string& path, uint64_t bytes) {
  int raw = -1;
  FERRY_RETURN_IF_ERROR(OpenPrivate(path, &raw));
  Fd fd(raw);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return base::Status::Storage(Errno("cannot stat", path, errno));
  if (static_cast<uint64_t>(st.st_size) >= bytes && static_cast<uint64_t>(st.st_blocks) * 512 >= bytes) {
    return base::Status::Ok();
  }
  int rc = Preallocate(fd.get(), bytes);
  if (rc != 0) {
    (void)ftruncate(fd.get(), 0);  // a short reserve holds nothing back; leave none rather than a sparse one
    return base::Status::Storage(Errno("cannot allocate reserve", path, rc));
  }
  return base::Status::Ok();
}

bool ReleaseReserve(const std::string& path) { return unlink(path.c_str()) == 0; }

uint64_t DatabaseBytesOnDisk(const std::string& path) {
  uint64_t total = 0;
  for (const std::string& p : {path, path + "-wal"}) {
    struct stat st {};
    if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += static_cast<uint64_t>(st.st_size);
  }
  return total;
}

}  // namespace ferry::platform
