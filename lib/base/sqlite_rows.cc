#include "lib/base/sqlite_rows.h"

#include <limits>
#include <new>
#include <utility>

namespace ferry::base {

namespace {

// The virtual table and its cursor. SQLite calls these only from statements of the one connection, on its thread.
struct Table {
  sqlite3_vtab base;  // first: SQLite sees a sqlite3_vtab*
  MemoryRows* rows;
};
struct Cursor {
  sqlite3_vtab_cursor base;  // first
  MemoryRows* rows;
  size_t row;
};

int Connect(sqlite3* db, void* aux, int, const char* const*, sqlite3_vtab** out, char**) {
  auto* rows = static_cast<MemoryRows*>(aux);
  int rc = sqlite3_declare_vtab(db, rows->schema().c_str());
  if (rc != SQLITE_OK) return rc;
  auto* t = new (std::nothrow) Table{};
  if (t == nullptr) return SQLITE_NOMEM;
  t->rows = rows;
  *out = &t->base;
  return SQLITE_OK;
}

int BestIndex(sqlite3_vtab* vt, sqlite3_index_info* info) {
  // The rows in the order given (rowid 0, 1, ...), from the first or from the one a "rowid >= ?" or "rowid > ?" names
  // (idxNum 1 or 2: a statement resumed after a row stopped it reads on from there). SQLite checks every constraint
  // itself, and "ORDER BY rowid" is that order already.
  const auto* t = reinterpret_cast<Table*>(vt);
  info->idxNum = 0;
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (!c.usable || c.iColumn >= 0) continue;
    if (c.op == SQLITE_INDEX_CONSTRAINT_GE || c.op == SQLITE_INDEX_CONSTRAINT_GT) {
      info->idxNum = c.op == SQLITE_INDEX_CONSTRAINT_GE ? 1 : 2;
      info->aConstraintUsage[i].argvIndex = 1;  // not omitted: SQLite checks it too (see Filter)
      break;
    }
  }
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn < 0 && info->aOrderBy[0].desc == 0) info->orderByConsumed = 1;
  info->estimatedRows = static_cast<sqlite3_int64>(t->rows->rows());
  info->estimatedCost = static_cast<double>(t->rows->rows()) + (info->idxNum == 0 ? 1 : 0);
  return SQLITE_OK;
}

int Disconnect(sqlite3_vtab* vt) {
  delete reinterpret_cast<Table*>(vt);
  return SQLITE_OK;
}

int Open(sqlite3_vtab* vt, sqlite3_vtab_cursor** out) {
  auto* c = new (std::nothrow) Cursor{};
  if (c == nullptr) return SQLITE_NOMEM;
  c->rows = reinterpret_cast<Table*>(vt)->rows;
  *out = &c->base;
  return SQLITE_OK;
}

int Close(sqlite3_vtab_cursor* cur) {
  delete reinterpret_cast<Cursor*>(cur);
  return SQLITE_OK;
}

int Filter(sqlite3_vtab_cursor* cur, int idx_num, const char*, int argc, sqlite3_value** argv) {
  auto* c = reinterpret_cast<Cursor*>(cur);
  c->row = 0;
  // Only an integer bound skips rows; SQLite checks the constraint on every row read (not omitted), so any other
  // bound (NULL, text, a real) just reads from the first row.
  if (idx_num != 0 && argc == 1 && sqlite3_value_type(argv[0]) == SQLITE_INTEGER) {
    const sqlite3_int64 v = sqlite3_value_int64(argv[0]);
    const auto n = static_cast<sqlite3_int64>(c->rows->rows());
    const sqlite3_int64 first = idx_num == 1 ? v : (v >= n ? n : v + 1);
    c->row = static_cast<size_t>(first < 0 ? 0 : (first > n ? n : first));
  }
  return SQLITE_OK;
}

int Next(sqlite3_vtab_cursor* cur) {
  ++reinterpret_cast<Cursor*>(cur)->row;
  return SQLITE_OK;
}

int Eof(sqlite3_vtab_cursor* cur) {
  const auto* c = reinterpret_cast<Cursor*>(cur);
  return c->row >= c->rows->rows() ? 1 : 0;
}

int Column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int col) {
  const auto* c = reinterpret_cast<Cursor*>(cur);
  if (col < 0 || static_cast<size_t>(col) >= c->rows->columns()) {
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  const MemoryRows::Value& v = c->rows->at(c->row, static_cast<size_t>(col));
  if (v.n > static_cast<size_t>(std::numeric_limits<int>::max())) {
    sqlite3_result_error_toobig(ctx);
    return SQLITE_TOOBIG;
  }
  switch (v.kind) {
    case MemoryRows::Value::kInt: sqlite3_result_int64(ctx, v.i); break;
    // SQLITE_STATIC: the caller keeps the bytes until the statement has run (sqlite_rows.h); SQLite copies what it
    // stores.
    case MemoryRows::Value::kText: sqlite3_result_text(ctx, v.p, static_cast<int>(v.n), SQLITE_STATIC); break;
    case MemoryRows::Value::kBlob: sqlite3_result_blob(ctx, v.p, static_cast<int>(v.n), SQLITE_STATIC); break;
    case MemoryRows::Value::kNull: sqlite3_result_null(ctx); break;
  }
  return SQLITE_OK;
}

int Rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* out) {
  *out = static_cast<sqlite3_int64>(reinterpret_cast<Cursor*>(cur)->row);
  return SQLITE_OK;
}

sqlite3_module MakeModule() {
  sqlite3_module m{};  // every method not set here is absent
  m.iVersion = 0;
  m.xCreate = nullptr;  // eponymous-only: no schema can hold a table of this module
  m.xConnect = Connect;
  m.xBestIndex = BestIndex;
  m.xDisconnect = Disconnect;
  m.xDestroy = Disconnect;
  m.xOpen = Open;
  m.xClose = Close;
  m.xFilter = Filter;
  m.xNext = Next;
  m.xEof = Eof;
  m.xColumn = Column;
  m.xRowid = Rowid;  // read-only: no xUpdate
  return m;
}

const sqlite3_module kModule = MakeModule();

}  // namespace

Result<std::unique_ptr<MemoryRows>> MemoryRows::Register(Db& db, const std::string& name,
                                                         const std::vector<std::string>& columns) {
  if (columns.empty()) return Status::InvalidArgument("a table of rows in memory needs a column");
  std::string schema = "CREATE TABLE x(";
  for (size_t i = 0; i < columns.size(); ++i) schema += (i == 0 ? "\"" : ", \"") + columns[i] + "\"";
  schema += ")";
  auto rows = std::make_unique<MemoryRows>(columns.size(), std::move(schema));
  // No destructor for the module's data: the caller owns the rows (sqlite_rows.h).
  if (sqlite3_create_module(db.get(), name.c_str(), &kModule, rows.get()) != SQLITE_OK)
    return Status::Storage("cannot register the table " + name + ": " + db.ErrMsg());
  return rows;
}

void MemoryRows::AddRow() { values_.resize(values_.size() + columns_); }

void MemoryRows::SetInt(size_t col, int64_t v) {
  Value& x = Last(col);
  x.kind = Value::kInt;
  x.i = v;
}

void MemoryRows::SetText(size_t col, std::string_view v) {
  Value& x = Last(col);
  x.kind = Value::kText;
  x.p = v.data() == nullptr ? "" : v.data();
  x.n = v.size();
}

void MemoryRows::SetBlob(size_t col, std::string_view v) {
  Value& x = Last(col);
  x.kind = Value::kBlob;
  x.p = v.data() == nullptr ? "" : v.data();
  x.n = v.size();
}

void MemoryRows::SetNull(size_t col) { Last(col) = Value{}; }

void MemoryRows::Clear() { values_.clear(); }

}  // namespace ferry::base
