// The embedded engine's export: a subject's consent records and events, read a page at a time through the per-id
// indexes and handed over without the engine's mutex, so a slow reader never holds up ingest and a subject with a
// million events needs no more memory than a page.
#include "collector/engines/sqlite/sqlite_engine.h"

#include <algorithm>
#include <deque>

#include "collector/engines/sqlite/body_codec.h"
#include "collector/store/columns.h"

namespace ferry::collector::sqlite {

using base::Status;

namespace {

constexpr int64_t kPage = 512;  // rows read per lock hold

// Merges the rowids of one table's rows that match any of several (column, id) pairs, in rowid order without
// repeats, reading each pair's rowids a page at a time through its index. Each call of Next() runs with the
// store's mutex held; nothing is kept between calls but rowids.
class RowidMerger {
 public:
  RowidMerger(std::string table, int64_t project_id) : table_(std::move(table)), project_id_(project_id) {}
  void Add(const char* column, const std::string& id) { sources_.push_back({column, id, {}, 0, false}); }

  // Up to `n` next rowids (fewer only at the end).
  Status Next(base::Db& db, size_t n, std::vector<int64_t>* out) {
    out->clear();
    while (out->size() < n) {
      Source* best = nullptr;
      for (Source& s : sources_) {
        FERRY_RETURN_IF_ERROR(Fill(db, s));
        if (!s.buf.empty() && (best == nullptr || s.buf.front() < best->buf.front())) best = &s;
      }
      if (best == nullptr) break;
      int64_t rowid = best->buf.front();
      best->buf.pop_front();
      if (rowid <= last_) continue;  // the same row through another id
      last_ = rowid;
      out->push_back(rowid);
    }
    return Status::Ok();
  }

 private:
  struct Source {
    const char* column;
    std::string id;
    std::deque<int64_t> buf;
    int64_t after;
    bool done;
  };
  Status Fill(base::Db& db, Source& s) {
    if (!s.buf.empty() || s.done) return Status::Ok();
    // The index is named: with `id > ?` and ORDER BY id the planner would otherwise walk the whole table by rowid.
    std::string index = (table_ == "events" ? std::string("events_by_") : std::string("consent_by_")) +
                        (std::string(s.column) == "user_id" ? "user" : "anon");
    auto st = db.Prepare("SELECT id FROM " + table_ + " INDEXED BY " + index + " WHERE project_id = ?1 AND " +
                         s.column + " = ?2 AND " + s.column + " IS NOT NULL AND id > ?3 ORDER BY id LIMIT ?4;");
    if (!st.ok()) return st.status();
    st->Bind(1, project_id_).Bind(2, s.id).Bind(3, std::max(s.after, last_)).Bind(4, kPage);
    int64_t got = 0;
    while (st->Step()) {
      s.after = st->Int(0);
      s.buf.push_back(s.after);
      ++got;
    }
    FERRY_RETURN_IF_ERROR(st->status());
    if (got < kPage) s.done = true;
    return Status::Ok();
  }

  std::string table_;
  int64_t project_id_;
  std::vector<Source> sources_;
  int64_t last_ = 0;
};

// Reads the rows of `rowids` from `table` into `page` (columns kEventColumns or kConsentColumns).
template <typename T, typename Make>
Status ReadRows(base::Db& db, const char* table, const char* columns, const std::vector<int64_t>& rowids,
                std::vector<T>* page, Make make) {
  auto st = db.Prepare(std::string("SELECT ") + columns + " FROM " + table + " WHERE id = ?1;");
  if (!st.ok()) return st.status();
  for (int64_t id : rowids) {
    st->Bind(1, id);
    if (st->Step()) {
      base::Result<T> row = make(*st);
      if (!row.ok()) return row.status();
      page->push_back(std::move(row).value());
    }
    FERRY_RETURN_IF_ERROR(st->status());
    st->Reset();
  }
  return Status::Ok();
}

// Pages through one table's rows of the subject and hands each page over with the lock released.
template <typename T, typename Make, typename Give>
Status Stream(base::Db& db, std::unique_lock<std::mutex>& lock, const char* table, const char* columns,
              RowidMerger& merger, Make make, Give give) {
  std::vector<int64_t> rowids;
  for (;;) {
    std::vector<T> page;
    FERRY_RETURN_IF_ERROR(merger.Next(db, kPage, &rowids));
    FERRY_RETURN_IF_ERROR(ReadRows(db, table, columns, rowids, &page, make));
    lock.unlock();
    bool go_on = std::all_of(page.begin(), page.end(), give);
    lock.lock();
    if (!go_on) return Status::Closed("the reader stopped");
    if (rowids.size() < static_cast<size_t>(kPage)) return Status::Ok();
  }
}

}  // namespace

Status StreamSubjectRows(base::Db& db, std::unique_lock<std::mutex>& lock, int64_t project_id,
                         const std::string& project, const std::vector<std::string>& ids, RowSink& sink) {
  RowidMerger consent("consent_ledger", project_id);
  RowidMerger events("events", project_id);
  for (const auto& id : ids) {
    consent.Add("user_id", id);
    consent.Add("anonymous_id", id);
    events.Add("user_id", id);
    events.Add("anonymous_id", id);
  }
  FERRY_RETURN_IF_ERROR(Stream<ConsentRecord>(
      db, lock, "consent_ledger", kConsentColumns, consent,
      [](const base::Stmt& st) -> base::Result<ConsentRecord> { return ConsentFromRow(st); },
      [&](const ConsentRecord& c) { return sink.Consent(c); }));
  return Stream<EventRow>(
      db, lock, "events", kEventColumns, events, [&](const base::Stmt& st) { return ReadEventRow(st, project); },

      [&](const EventRow& e) { return sink.Event(e); });
}

}  // namespace ferry::collector::sqlite
