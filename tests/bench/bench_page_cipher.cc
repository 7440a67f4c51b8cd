// SQLCipher's page encryption with its own OpenSSL provider ("sqlcipher") and with lib/cipher's contexts kept per
// connection ("ferry"), on real files: a commit of 1,000 rows of ~330 bytes (every page encrypted into the WAL), and
// a cold read of 20,000 rows (every page decrypted and its HMAC checked). Run with --benchmark_repetitions and
// --benchmark_enable_random_interleaving so that both providers share the machine's noise; Google Benchmark prints
// the load average in its header.
#include <stdlib.h>

#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>

#include "lib/base/sqlite.h"
#include "lib/cipher/page_cipher.h"

namespace {

using ferry::base::Db;
using ferry::base::SecretBytes;

enum Provider : int64_t { kSqlcipher = 0, kFerry = 1 };

void Use(benchmark::State& state, Provider p) {
  if (p == kFerry) {
    ferry::base::Status s = ferry::cipher::InstallPageCipher();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  } else {
    ferry::cipher::RemovePageCipherForTesting();
  }
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/ferry-bench-cipher-XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string RowText(int64_t i) { return "row " + std::to_string(i) + " " + std::string(300 + i % 97, 'a' + i % 26); }

bool Insert(Db& db, int64_t from, int64_t n) {
  if (!db.Exec("BEGIN;").ok()) return false;
  auto st = db.Prepare("INSERT INTO t(id, v) VALUES(?, ?);");
  if (!st.ok()) return false;
  for (int64_t i = from; i < from + n; ++i) {
    st->Bind(1, i).Bind(2, RowText(i));
    if (!st->Run().ok()) return false;
    st->Reset();
  }
  return db.Exec("COMMIT;").ok();
}

Db MustOpen(benchmark::State& state, const std::string& path, const SecretBytes& key) {
  auto db = Db::OpenEncrypted(path, key);
  if (!db.ok()) {
    state.SkipWithError(db.status().ToString().c_str());
    return Db();
  }
  return std::move(db).value();
}

// One commit of 1,000 rows per iteration; a checkpoint every 20 commits keeps the WAL short, outside the timing.
void BM_Commit(benchmark::State& state) {
  Use(state, static_cast<Provider>(state.range(0)));
  TempDir dir;
  SecretBytes key = SecretBytes::Random(32);
  Db db = MustOpen(state, dir.path() + "/c.db", key);
  if (!db || !db.Exec("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);").ok()) {
    state.SkipWithError("cannot set up the table");
    return;
  }
  constexpr int64_t kRows = 1000;
  int64_t next = 0;
  for (auto _ : state) {
    if (!Insert(db, next, kRows)) {
      state.SkipWithError("insert failed");
      break;
    }
    next += kRows;
    if (next % (20 * kRows) == 0) {
      state.PauseTiming();
      (void)db.Exec("PRAGMA wal_checkpoint(TRUNCATE);");
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(next);
  state.SetLabel(state.range(0) == kFerry ? "ferry" : "sqlcipher");
}

// A fresh connection reads 20,000 rows: every page of the table decrypted (and its HMAC checked) once.
void BM_ColdRead(benchmark::State& state) {
  Use(state, static_cast<Provider>(state.range(0)));
  TempDir dir;
  SecretBytes key = SecretBytes::Random(32);
  const std::string path = dir.path() + "/r.db";
  constexpr int64_t kRows = 20000;
  {
    Db db = MustOpen(state, path, key);
    if (!db || !db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);").ok() || !Insert(db, 0, kRows)) {
      state.SkipWithError("cannot write the table");
      return;
    }
  }
  for (auto _ : state) {
    Db db = MustOpen(state, path, key);
    auto st = db.Prepare("SELECT sum(length(v)) FROM t;");
    if (!st.ok() || !st->Step()) {
      state.SkipWithError("read failed");
      break;
    }
    benchmark::DoNotOptimize(st->Int(0));
  }
  state.SetItemsProcessed(state.iterations() * kRows);
  state.SetLabel(state.range(0) == kFerry ? "ferry" : "sqlcipher");
}

BENCHMARK(BM_Commit)->Arg(kSqlcipher)->Arg(kFerry)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ColdRead)->Arg(kSqlcipher)->Arg(kFerry)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
