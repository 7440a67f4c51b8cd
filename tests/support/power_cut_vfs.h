// A power cut under SQLite, for tests: a VFS over the default one that remembers, for every file, what each write and
// truncate since the file's last xSync replaced. Cut() makes every later write, sync, truncate and delete a no-op
// that succeeds (the machine is "off": whatever still runs writes nowhere); once the test has closed every connection,
// Revert() puts each file back as it was at its last successful xSync, which is what a disk holds after the power
// went: the operating system's cache is gone. Unsynced writes of a closed file are lost too (closing is not syncing).
//
// Reads pass through, so a store under test sees its own writes until the cut. Shared memory (the WAL index) passes
// through as well; SQLite rebuilds it from the WAL when the first connection opens the database again.
#ifndef FERRY_TESTS_SUPPORT_POWER_CUT_VFS_H_
#define FERRY_TESTS_SUPPORT_POWER_CUT_VFS_H_

#include <cstddef>
#include <string>

namespace ferry::testsupport {

// Installed as SQLite's default VFS for its lifetime (every sqlite3_open_v2 with a null VFS name in this process uses
// it); the previous default comes back when it is destroyed. One at a time.
class PowerCutVfs {
 public:
  PowerCutVfs();
  ~PowerCutVfs();
  PowerCutVfs(const PowerCutVfs&) = delete;
  PowerCutVfs& operator=(const PowerCutVfs&) = delete;

  // false when SQLite refused the VFS (the test cannot run).
  bool installed() const { return installed_; }
  // The power goes: nothing written from now on reaches a file.
  void Cut();
  // After every connection is closed: each file as of its last sync; writing works again. "" or what failed.
  std::string Revert();
  // Files opened through this VFS so far (a test checks its store really ran on it).
  size_t files_opened() const;
  // Syncs that reached the disk so far.
  size_t syncs() const;

 private:
  bool installed_ = false;
};

}  // namespace ferry::testsupport

#endif  // FERRY_TESTS_SUPPORT_POWER_CUT_VFS_H_
