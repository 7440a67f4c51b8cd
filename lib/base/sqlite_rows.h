// Rows held in memory that SQL reads as a table: one "INSERT INTO t(...) SELECT ... FROM <name>" stores them all.
//
// Why: on SQLCipher 3.4.1 a statement stepped once per row pays the statement's own set-up and tear-down for every
// row, and an AUTOINCREMENT table reads and rewrites sqlite_sequence for every statement. One statement over a
// commit's rows pays them once. (SQLite 3.15.2's multi-row VALUES is slower per row than single-row inserts, so it is
// no substitute.) docs/PERFORMANCE.md has the figures.
//
// Inside a transaction that is rolled back on any failure, write "INSERT OR FAIL": with the default conflict
// resolution (ABORT) a statement that may write several rows keeps a statement journal to undo itself alone, and
// SQLCipher encrypts every page copied into it.
//
// The rows are read in the order given; their rowids are 0, 1, ... in that order. "WHERE rowid >= ?" (or ">") starts
// the read at that row instead of the first: a statement that stopped at a row (a conflict under OR FAIL keeps the
// rows before it) can be run again from the row after it, without reading the ones before again.
//
// The table is an eponymous-only virtual table (SQLite 3.9+): it cannot be created in a schema, it exists on the one
// connection it was registered on, and it reads the rows given since the last Clear(). The values are views: the bytes
// of a text or blob must stay alive and unchanged until the statement that reads them has run.
#ifndef FERRY_LIB_BASE_SQLITE_ROWS_H_
#define FERRY_LIB_BASE_SQLITE_ROWS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/sqlite.h"
#include "lib/base/status.h"

namespace ferry::base {

class MemoryRows {
 public:
  // Registers a table named `name` with these columns (plain identifiers) on db's connection. The connection reads
  // the returned object whenever a statement reads the table, so it must outlive every such statement; closing the
  // connection does not touch it. Not thread-safe: the connection's owner uses it.
  static Result<std::unique_ptr<MemoryRows>> Register(Db& db, const std::string& name,
                                                      const std::vector<std::string>& columns);

  // Starts a row; its columns are NULL until set.
  void AddRow();
  void SetInt(size_t col, int64_t v);
  void SetText(size_t col, std::string_view v);  // a view: see above
  void SetBlob(size_t col, std::string_view v);  // a view: see above
  void SetNull(size_t col);
  // Forgets every row (keeps the memory for the next ones).
  void Clear();

  size_t rows() const { return columns_ == 0 ? 0 : values_.size() / columns_; }
  size_t columns() const { return columns_; }

  struct Value {
    enum Kind : uint8_t { kNull, kInt, kText, kBlob };
    Kind kind = kNull;
    int64_t i = 0;
    const char* p = nullptr;
    size_t n = 0;
  };
  const Value& at(size_t row, size_t col) const { return values_[row * columns_ + col]; }

  MemoryRows(size_t columns, std::string schema) : columns_(columns), schema_(std::move(schema)) {}
  const std::string& schema() const { return schema_; }  // the CREATE TABLE the virtual table declares

 private:
  Value& Last(size_t col) { return values_[values_.size() - columns_ + col]; }

  size_t columns_;
  std::string schema_;
  std::vector<Value> values_;  // row-major
};

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_SQLITE_ROWS_H_
