// The embedded engine's parts (internal to collector/engines/sqlite/): one SQLCipher connection behind a mutex.
//   sqlite_engine.cc  the engine: opening, the schema and its migrations, transactions, ingest, retention, scans
//   sqlite_txn.cc     the primitive reads and writes of one transaction (EngineTxn)
//   sqlite_export.cc  streaming a subject's rows page by page (the export)
//   sqlite_store.cc   the key file
#ifndef FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_ENGINE_H_
#define FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_ENGINE_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "collector/store/engine.h"
#include "lib/base/sqlite.h"

namespace ferry::collector::sqlite {

// The primitives of one transaction on `db`; the caller holds the engine's mutex while it uses them.
std::unique_ptr<EngineTxn> NewTxn(base::Db& db);

// Reads the consent records and then the events held under `ids` a page at a time (a k-way merge of the per-id
// indexes in rowid order) and hands each page to `sink` with `lock` (the engine's mutex, held on entry and on return)
// released. Closed when the sink stopped.
base::Status StreamSubjectRows(base::Db& db, std::unique_lock<std::mutex>& lock, int64_t project_id,
                               const std::string& project, const std::vector<std::string>& ids, RowSink& sink);

}  // namespace ferry::collector::sqlite

#endif  // FERRY_COLLECTOR_ENGINES_SQLITE_SQLITE_ENGINE_H_
