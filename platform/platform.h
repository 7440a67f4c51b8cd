// The OS boundary: app data directory, device facts, the secret store for the buffer key, and HTTP transports.
// Implementations: platform/posix/ (files, key files, locks: Linux, Android and Apple), platform/common/ (shared by
// all, compiled and tested here: locale tags, zone names, Android's package and no-backup directory, the key store
// logic), and one device file per OS, chosen in platform/CMakeLists.txt: platform/linux/ (built and tested here),
// platform/android/ and platform/apple/ (built only with those toolchains; not compiled here: docs/PLATFORMS.md).
// platform/transports/curl.cc is the libcurl transport (FERRY_TRANSPORT=curl), platform/transports/none.cc its
// absence (FERRY_TRANSPORT=none). Nothing outside platform/ talks to the OS for these concerns. platform/ depends on
// lib/base only; the adapter for the app's own HTTP stack (an ABI type) lives beside the ABI, in
// sdk/c_api/callback_transport.h.
#ifndef FERRY_PLATFORM_PLATFORM_H_
#define FERRY_PLATFORM_PLATFORM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/secret.h"
#include "lib/base/status.h"

namespace ferry::platform {

// Facts about the device for an event's context. No hardware identifiers (no MAC, serial or IMEI).
struct DeviceInfo {
  std::string os_name;       // "Linux", "Android", "iOS", "macOS" (and "tvOS", "watchOS", "visionOS")
  std::string os_version;    // Linux: distribution or kernel release, e.g. "Debian GNU/Linux 12 (bookworm)";
                             // Android: the release ("14"); Apple: the product version ("17.4")
  std::string device_model;  // Linux: DMI product name where readable; Android: "<manufacturer> <model>"; Apple:
                             // the machine identifier ("iPhone15,2", "MacBookPro18,1"); else ""
  std::string locale;        // BCP 47, e.g. "zh-CN"; "" if unknown. Linux: LC_ALL/LC_MESSAGES/LANG; Android: the
                             // system locale (persist.sys.locale, else ro.product.locale); Apple: CFLocaleCopyCurrent
  std::string timezone;      // IANA name, e.g. "Asia/Shanghai"; "" if unknown. Linux: TZ, /etc/timezone or
                             // /etc/localtime; Android: persist.sys.timezone, else TZ; Apple: CFTimeZoneCopySystem
  std::string process_name;  // the default app name. Linux: the executable's name (/proc/self/comm); Android: the
                             // process name, the app's package for an app ("com.example.app"); Apple: getprogname()
};

// Reads the device facts once (cheap enough to call at open).
DeviceInfo ReadDeviceInfo();

// The per-user application data directory. Linux: $XDG_DATA_HOME or $HOME/.local/share, else "/tmp". Android: the
// app's no-backup directory, /data/user/<user>/<package>/no_backup (left out of Auto Backup), the package from the
// process name; for a process that is not an app (no package name), $TMPDIR, else /data/local/tmp. An app moved to
// adoptable storage has its data elsewhere: the binding then gives Context.getNoBackupFilesDir() as the storage path.
// Apple: the user's Application Support directory (sysdir, the C form of NSSearchPathForDirectoriesInDomains), "~"
// being $HOME (the app's container on iOS), else the home directory from the user database; else "/tmp".
std::string DefaultDataDir();

// Creates a directory and its parents (mode 0700 for the ones it creates).
base::Status EnsureDir(const std::string& dir);

// The directory part of a path ("." if none).
std::string DirName(const std::string& path);

// Key files: the one place that reads and writes a key file, for the SDK's and the agent's buffer key and the
// collector's store key. Linux: a regular file with no group/other permissions (mode 0600 or 0400); a symbolic link,
// a directory, a file of the wrong size or one with group/other permissions is refused (kStorage, the reason in the
// message) and left untouched. A missing file is created atomically (written to a temporary file beside it, fsync'd,
// then moved into place without replacing a file another process put there first) with libsodium's CSPRNG, mode
// 0600, its directory created (0700) when missing.
struct KeyFileOptions {
  size_t len = 32;     // the key's length in bytes
  bool hex = false;    // the file may hold the key as 2*len hex characters (surrounding whitespace ignored) as well
                       // as len raw bytes; a file this creates holds hex and a newline. false: len raw bytes only
  bool create = true;  // false: a missing file is refused (kNotFound) instead of created
};
base::Result<base::SecretBytes> LoadOrCreateKey(const std::string& key_path, const KeyFileOptions& options);
// The buffer key: `len` raw bytes, created when missing.
base::Result<base::SecretBytes> LoadOrCreateKey(const std::string& key_path, size_t len = 32);

// A secret store the app or its binding provides for the buffer key (Android Keystore, the Apple Keychain), instead
// of a key file beside the buffer (which Android's Auto Backup or a device backup would copy with it). The C ABI's
// ferry_options_set_key_provider() adapts the app's callbacks to it (sdk/c_api/key_provider.h).
class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // Reads the key `name` (exactly `len` bytes) into *key, *found = true; *found = false when the store holds none.
  // Any other status: the store could not be read.
  virtual base::Status Load(const std::string& name, size_t len, base::SecretBytes* key, bool* found) = 0;
  // Keeps `key` under `name`; OK only once it is kept.
  virtual base::Status Store(const std::string& name, const base::SecretBytes& key) = 0;
};

// The name a buffer's key has in a KeyStore: "ferry-buffer-key:" and the storage path relative to `data_dir` (the
// app's data directory: DefaultDataDir() unless the app gave one) when it lies below it (so the name survives an iOS
// app container that moves on update), else the path as given.
std::string KeyStoreNameFor(const std::string& storage_path, const std::string& data_dir);

// The buffer key from a KeyStore: the stored one; else, when `legacy_key_file` exists (a key file an earlier
// version made), its key moved into the store (stored, read back and compared, then the file removed); else a new
// random key (libsodium's CSPRNG) stored first. kStorage when the store fails to load or keep the key: nothing is
// created then, and a legacy key file stays where it is.
base::Result<base::SecretBytes> LoadOrCreateStoredKey(KeyStore& store, const std::string& name, size_t len,
                                                      const std::string& legacy_key_file);

// A key read from elsewhere (a systemd credential): `len` raw bytes, or 2*len hex characters with surrounding
// whitespace. Empty when `content` is neither.
base::SecretBytes KeyFromBytes(std::string_view content, size_t len);

// Moves a file aside to "<path>.<tag>-<epoch ms>" (tag "corrupt" for a damaged buffer, "unreadable" for one the key
// cannot open), with its -wal and -shm companions. Returns the new name.
base::Result<std::string> MoveAside(const std::string& path, const std::string& tag = "corrupt");

// An advisory lock held on a lock file for as long as the object lives (Linux: flock(LOCK_EX) on an open file
// description, so a second holder in the same process is refused as well; the kernel releases it when the process
// dies, kill -9 included).
class FileLock {
 public:
  virtual ~FileLock() = default;
};
// Takes the lock on `lock_path` without waiting, creating the file (mode 0600, no symbolic link) when missing.
// kStorage when another holder has it ("in use": the message names the file) or the file cannot be made.
base::Result<std::unique_ptr<FileLock>> LockFile(const std::string& lock_path);

// Makes `path` a private regular file: creates it empty with mode 0600 when missing, narrows the mode of an existing
// one to 0600 (owner read/write only). A symbolic link or a non-regular file is refused (kStorage).
base::Status EnsurePrivateFile(const std::string& path);

// A small file read whole (at most max_bytes; kStorage beyond); kNotFound when absent. No symbolic links.
base::Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);
// Replaces `path` atomically with `content` (a temporary file beside it, mode 0600, fsync'd, renamed over it).
base::Status WriteFileAtomic(const std::string& path, std::string_view content);

// A reserve of disk space: a private (0600) file of `bytes` bytes, allocated when missing or short (failures are
// returned and harmless). Releasing it (ReleaseReserve: the file is removed) gives the space back when the disk is
// full, so that a buffer can still be drained.
base::Status EnsureReserve(const std::string& path, uint64_t bytes);
// Removes the reserve file; true when there was one.
bool ReleaseReserve(const std::string& path);

// Size in bytes of a file plus its -wal companion; 0 when absent.
uint64_t DatabaseBytesOnDisk(const std::string& path);

// ---- HTTP ---------------------------------------------------------------------------------------------------------

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  uint32_t timeout_ms = 30000;
  // When set and it becomes true, the transport abandons the request as soon as it can (client closing).
  const std::atomic<bool>* cancel = nullptr;
};

struct HttpResponse {
  int status = 0;              // HTTP status; 0 when no answer arrived
  uint32_t retry_after_s = 0;  // Retry-After in seconds (delta-seconds or HTTP-date), 0 if absent
  std::string body;
  std::string error;  // why no answer arrived (network errors)
};

// Sends one POST at a time: a transport is never called twice at once. An app's transport is called from the
// uploader thread only; the built-in one may also be called from the uploader's senders (more requests in flight,
// each on a transport of its own), one call at a time.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // OK when an HTTP answer arrived (whatever its status); kNetwork with the reason otherwise.
  virtual base::Status Post(const HttpRequest& req, HttpResponse* resp) = 0;
};

struct CurlTransportOptions {
  std::string ca_file;            // extra trust anchor (PEM); empty: the system store
  std::string pinned_public_key;  // "sha256//..."; empty: none
  uint32_t connect_timeout_ms = 10000;
};

// The transport this build uses for an endpoint when the app gives none of its own. FERRY_TRANSPORT=curl (the
// default): NewCurlTransport(opts). FERRY_TRANSPORT=none (libcurl is not linked): kFailedPrecondition, saying that
// the app's transport (ferry_options_set_transport) is required.
base::Result<std::unique_ptr<HttpTransport>> NewBuiltinTransport(const CurlTransportOptions& opts);

// libcurl (FERRY_TRANSPORT=curl builds only): one reused easy handle (keep-alive), HTTP/2 where offered, peer and host
// verification always on. A non-empty ca_file REPLACES the system CA bundle for this transport (CURLOPT_CAINFO): only
// servers whose chain ends in that file are trusted. That suits tests and private PKI; a public collector leaves
// ca_file empty. The response body is kept up to 1 MiB; the rest is dropped (resp->error says so) and the connection
// closed. Post() refuses URLs that IsAllowedEndpoint() rejects. Never returns null.
std::unique_ptr<HttpTransport> NewCurlTransport(const CurlTransportOptions& opts);

// The endpoint policy: https:// to any host; http:// only to loopback hosts (net::IsLoopbackHost: localhost,
// 127.0.0.0/8, [::1]; names are never resolved, so http://127.example.com is refused).
// Returns false (and why, when `why` is not null) for anything else, including other schemes and empty hosts.
bool IsAllowedEndpoint(const std::string& url, std::string* why);

// ---- Helpers exposed for tests ------------------------------------------------------------------------------------

// A locale name as a BCP 47 tag: POSIX ("zh_CN.UTF-8", "sr_RS@latin", "de": "zh-CN", "sr-Latn-RS", "de"), ICU and
// Apple ("zh-Hans_CN", "en_US_POSIX", "ja_JP@calendar=japanese": "zh-Hans-CN", "en-US", "ja-JP") and BCP 47 itself
// ("pt-BR", "en-US-u-fw-mon": "pt-BR", "en-US"). Language, script and region are kept; variants, extensions and
// keywords are left out. "C", "POSIX", "C.UTF-8" and malformed names give "".
std::string LocaleToBcp47(const std::string& locale_name);

// ---- Shared by the OS device files (platform/common/device_common.cc: compiled and tested on Linux) ---------------

// An IANA zone name as an OS reports it: letters, digits and "/_+-", at most 64 bytes, not absolute, no "..".
bool IsZoneName(const std::string& zone);

// "<manufacturer> <model>" without saying the maker twice: ("Google", "Pixel 8") -> "Google Pixel 8", ("OnePlus",
// "OnePlus 9") -> "OnePlus 9"; an empty part is left out.
std::string JoinMakerModel(const std::string& manufacturer, const std::string& model);

// An Android app's package from its process name ("com.example.app", or "com.example.app:sync" for a second
// process); "" when the name is not a package name (a native executable run from a shell).
std::string AndroidPackageFromProcessName(const std::string& process_name);

// An Android app's no-backup directory (Context.getNoBackupFilesDir() on internal storage) for the process's uid:
// "/data/user/<uid / 100000>/<package>/no_backup"; "" without a package.
std::string AndroidNoBackupDir(uint32_t uid, const std::string& package);

// A search path as Apple's sysdir gives it ("~/Library/Application Support") with "~" replaced by `home`; other
// paths as given; "" when it starts with "~" and `home` is empty.
std::string ExpandHome(const std::string& path, const std::string& home);

// A Retry-After header value (delta-seconds or an HTTP-date) as seconds from now_s (Unix seconds); 0 when the
// value is malformed or in the past. Capped at 2^32-1. Part of the libcurl transport (FERRY_TRANSPORT=curl).
uint32_t ParseRetryAfter(const std::string& value, int64_t now_s);

}  // namespace ferry::platform

#endif  // FERRY_PLATFORM_PLATFORM_H_
