#include "collector/insight/clickhouse_engine.h"

#include <algorithm>
#include <charconv>

#include "collector/insight/normalize.h"

namespace ferry::insight {

using base::Result;
using base::Status;

namespace {

int64_t ToInt(const std::string& s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string N(int64_t v) { return std::to_string(v); }

bool ValidIdent(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Column lists, in the order the TSV rows are written.
const char* const kEventColumns =
    "project, person, user_id, anonymous_id, message_id, type, name, purpose, ts_ms, received_ms, day, session, "
    "channel, source, campaign, props";
const char* const kHitColumns = "project, person, user_id, anonymous_id, leaf, message_id, day, value_cents";
const char* const kTraitColumns = "project, person, user_id, anonymous_id, key, value, ts_ms, day, message_id";

void Field(std::string* out, std::string_view v, bool last = false) {
  AppendTsv(out, v);
  *out += last ? '\n' : '\t';
}
void Field(std::string* out, int64_t v, bool last = false) {
  *out += std::to_string(v);
  *out += last ? '\n' : '\t';
}

bool Matches(const std::set<std::string>& ids, const std::string& a, const std::string& b, const std::string& c) {
  return ids.count(a) > 0 || (!b.empty() && ids.count(b) > 0) || (!c.empty() && ids.count(c) > 0);
}

// Removes the rows of `project` naming one of `ids`; returns how many rows went.
size_t Purge(WriteBatch* b, const std::string& project, const std::set<std::string>& ids) {
  size_t before = b->rows();
  auto ev = [&](const ActivityRow& r) {
    return r.project == project && Matches(ids, r.person, r.user_id, r.anonymous_id);
  };
  auto hit = [&](const HitRow& r) { return r.project == project && Matches(ids, r.person, r.user_id, r.anonymous_id); };
  auto tr = [&](const TraitRow& r) {
    return r.project == project && Matches(ids, r.person, r.user_id, r.anonymous_id);
  };
  b->events.erase(std::remove_if(b->events.begin(), b->events.end(), ev), b->events.end());
  b->hits.erase(std::remove_if(b->hits.begin(), b->hits.end(), hit), b->hits.end());
  b->traits.erase(std::remove_if(b->traits.begin(), b->traits.end(), tr), b->traits.end());
  return before - b->rows();
}

std::string SplitColumns(Split s) {
  bool src = s == Split::kSource || s == Split::kSourceCampaign;
  bool camp = s == Split::kCampaign || s == Split::kSourceCampaign;
  return std::string(src ? "src" : "''") + " AS s, " + (camp ? "camp" : "''") + " AS c";
}

}  // namespace

ClickHouseEngine::ClickHouseEngine(ClickHouseOptions o) : opts_(std::move(o)) {
  urls_ = opts_.urls;
  db_ = opts_.database;
  clock_ = opts_.clock != nullptr ? opts_.clock : base::SystemClock();
}

Result<std::unique_ptr<ClickHouseEngine>> ClickHouseEngine::Open(ClickHouseOptions options) {
  if (options.urls.empty()) return Status::InvalidArgument("clickhouse: at least one URL");
  if (!ValidIdent(options.database)) return Status::InvalidArgument("clickhouse: database must be [A-Za-z0-9_]");
  if (options.urls.size() > 1 && !ValidIdent(options.cluster)) {
    return Status::InvalidArgument("clickhouse: several shards need the cluster name ([A-Za-z0-9_])");
  }
  if (options.batch_rows == 0) options.batch_rows = 1;
  std::unique_ptr<ClickHouseEngine> e(new ClickHouseEngine(std::move(options)));
  for (const std::string& url : e->urls_) {
    e->clients_.push_back(
        std::make_unique<ClickHouseClient>(url, e->opts_.user, e->opts_.password, e->opts_.query_timeout_ms));
  }
  e->opts_.password.Wipe();
  FERRY_RETURN_IF_ERROR(e->CreateSchema());
  // Erasures a previous run left in progress: excluded again, and their mutations submitted again (the process may
  // have stopped between recording an erasure and submitting it; deleting twice is harmless).
  std::map<std::string, std::vector<std::string>> loaded;
  FERRY_RETURN_IF_ERROR(
      e->client().Select("SELECT project, id FROM " + e->Table("erasures"), [&](const std::vector<std::string>& f) {
        if (f.size() == 2) loaded[f[0]].push_back(f[1]);
        return true;
      }));
  for (auto& [project, ids] : loaded) {
    e->erasing_[project].insert(ids.begin(), ids.end());
    e->unsubmitted_.emplace_back(project, ids);
  }
  e->restriction_version_ = e->clock_->NowMs() * 1000;
  e->sender_ = std::thread([p = e.get()] { p->SenderLoop(); });
  return e;
}

ClickHouseEngine::~ClickHouseEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (sender_.joinable()) sender_.join();
}

Settings ClickHouseEngine::QuerySettings() const {
  return {{"max_query_size", "268435456"}, {"max_ast_elements", "10000000"}, {"max_expanded_ast_elements", "10000000"}};
}

Status ClickHouseEngine::CreateSchema() {
  const bool dist = urls_.size() > 1;
  const std::string rmt = " ENGINE = ReplacingMergeTree() ORDER BY ";
  const std::string events_cols =
      "(project String, person String, user_id String, anonymous_id String, message_id String, type String, "
      "name String, purpose String, ts_ms Int64, received_ms Int64, day Int32, session String, channel String, "
      "source String, campaign String, props String)";
  const std::string hits_cols =
      "(project String, person String, user_id String, anonymous_id String, leaf String, message_id String, "
      "day Int32, value_cents Int64)";
  const std::string traits_cols =
      "(project String, person String, user_id String, anonymous_id String, key String, value String, "
      "ts_ms Int64, day Int32, message_id String)";
  for (auto& c : clients_) {
    FERRY_RETURN_IF_ERROR(c->Exec("CREATE DATABASE IF NOT EXISTS " + db_));
    FERRY_RETURN_IF_ERROR(c->Exec("CREATE TABLE IF NOT EXISTS " + LocalTable("events") + " " + events_cols + rmt +
                                  "(project, person, message_id)"));
    FERRY_RETURN_IF_ERROR(c->Exec("CREATE TABLE IF NOT EXISTS " + LocalTable("hits") + " " + hits_cols + rmt +
                                  "(project, leaf, person, message_id)"));
    FERRY_RETURN_IF_ERROR(c->Exec("CREATE TABLE IF NOT EXISTS " + LocalTable("traits") + " " + traits_cols + rmt +
                                  "(project, person, key, message_id)"));
  }
  ClickHouseClient& q = client();
  if (dist) {
    for (const char* t : {"events", "hits", "traits"}) {
      FERRY_RETURN_IF_ERROR(q.Exec("CREATE TABLE IF NOT EXISTS " + Table(t) + " AS " + LocalTable(t) +
                                   " ENGINE = Distributed(" + opts_.cluster + ", " + db_ + ", " + t +
                                   "_local, sipHash64(person))"));
    }
  }
  FERRY_RETURN_IF_ERROR(q.Exec("CREATE TABLE IF NOT EXISTS " + Table("restrictions") +
                               " (project String, id String, restricted UInt8, version UInt64)"
                               " ENGINE = ReplacingMergeTree(version) ORDER BY (project, id)"));
  FERRY_RETURN_IF_ERROR(
      q.Exec("CREATE TABLE IF NOT EXISTS " + Table("erasures") +
             " (project String, id String, at_ms Int64) ENGINE = MergeTree() ORDER BY (project, id)"));
  FERRY_RETURN_IF_ERROR(q.Exec("CREATE TABLE IF NOT EXISTS " + Table("leaves") +
                               " (leaf String, spec String) ENGINE = ReplacingMergeTree() ORDER BY leaf"));
  return Status::Ok();
}

// ---- The sink ----

Status ClickHouseEngine::Write(WriteBatch batch) {
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    for (const auto& [project, ids] : erasing_) Purge(&batch, project, ids);  // being erased: never inserted again
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (queued_rows_ + batch.rows() > opts_.max_queue_rows) {
    return Status::Unavailable("clickhouse sink: queue full (" + std::to_string(queued_rows_) + " rows)");
  }
  if (queue_.empty()) oldest_ms_ = clock_->MonotonicMs();
  queued_rows_ += batch.rows();
  stats_.queued_rows = static_cast<int64_t>(queued_rows_);
  queue_.push_back(std::move(batch));
  if (queued_rows_ >= opts_.batch_rows) cv_.notify_all();
  return Status::Ok();
}

Status ClickHouseEngine::Flush(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  flush_wanted_ = true;
  cv_.notify_all();
  bool done = clock_->WaitFor(lock, idle_cv_, timeout_ms, [&] { return queue_.empty() && !busy_; });
  if (!done) return Status::Timeout("clickhouse sink: " + std::to_string(queued_rows_) + " rows not yet sent");
  return Status::Ok();
}

Status ClickHouseEngine::SendInflight() {
  const bool dist = urls_.size() > 1;
  Settings s;
  if (dist) s.emplace_back("insert_distributed_sync", "1");
  ClickHouseClient& c = client();
  if (!inflight_parts_done_[0] && !inflight_.events.empty()) {
    std::string tsv;
    tsv.reserve(inflight_.events.size() * 320);
    for (const ActivityRow& a : inflight_.events) {
      Field(&tsv, a.project);
      Field(&tsv, a.person);
      Field(&tsv, a.user_id);
      Field(&tsv, a.anonymous_id);
      Field(&tsv, a.message_id);
      Field(&tsv, a.type);
      Field(&tsv, a.name);
      Field(&tsv, a.purpose);
      Field(&tsv, a.ts_ms);
      Field(&tsv, a.received_ms);
      Field(&tsv, static_cast<int64_t>(a.day));
      Field(&tsv, a.session);
      Field(&tsv, a.channel);
      Field(&tsv, a.source);
      Field(&tsv, a.campaign);
      Field(&tsv, a.props, true);
    }
    FERRY_RETURN_IF_ERROR(c.Insert(Table("events") + " (" + kEventColumns + ")", tsv, s));
  }
  inflight_parts_done_[0] = true;
  if (!inflight_parts_done_[1] && !inflight_.hits.empty()) {
    std::string tsv;
    for (const HitRow& h : inflight_.hits) {
      Field(&tsv, h.project);
      Field(&tsv, h.person);
      Field(&tsv, h.user_id);
      Field(&tsv, h.anonymous_id);
      Field(&tsv, h.leaf);
      Field(&tsv, h.message_id);
      Field(&tsv, static_cast<int64_t>(h.day));
      Field(&tsv, h.value_cents, true);
    }
    FERRY_RETURN_IF_ERROR(c.Insert(Table("hits") + " (" + kHitColumns + ")", tsv, s));
  }
  inflight_parts_done_[1] = true;
  if (!inflight_parts_done_[2] && !inflight_.traits.empty()) {
    std::string tsv;
    for (const TraitRow& t : inflight_.traits) {
      Field(&tsv, t.project);
      Field(&tsv, t.person);
      Field(&tsv, t.user_id);
      Field(&tsv, t.anonymous_id);
      Field(&tsv, t.key);
      Field(&tsv, t.value);
      Field(&tsv, t.ts_ms);
      Field(&tsv, static_cast<int64_t>(t.day));
      Field(&tsv, t.message_id, true);
    }
    FERRY_RETURN_IF_ERROR(c.Insert(Table("traits") + " (" + kTraitColumns + ")", tsv, s));
  }
  inflight_parts_done_[2] = true;
  return Status::Ok();
}

void ClickHouseEngine::SenderLoop() {
  int64_t backoff = opts_.retry_min_ms;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (stop_) return;
        if (!queue_.empty() && (queued_rows_ >= opts_.batch_rows || flush_wanted_ ||
                                clock_->MonotonicMs() - oldest_ms_ >= opts_.flush_interval_ms)) {
          break;
        }
        int64_t deadline = queue_.empty() ? clock_->MonotonicMs() + 1000 : oldest_ms_ + opts_.flush_interval_ms;
        clock_->WaitUntil(lock, cv_, deadline, [&] {
          return stop_ || (!queue_.empty() && (queued_rows_ >= opts_.batch_rows || flush_wanted_));
        });
      }
    }
    {
      std::lock_guard<std::mutex> send(send_mu_);
      std::lock_guard<std::mutex> lock(mu_);
      inflight_ = WriteBatch();
      for (bool& d : inflight_parts_done_) d = false;
      while (!queue_.empty() &&
             (inflight_.rows() == 0 || inflight_.rows() + queue_.front().rows() <= opts_.batch_rows)) {
        WriteBatch& b = queue_.front();
        queued_rows_ -= b.rows();
        auto move_all = [](auto& to, auto& from) {
          to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
        };
        move_all(inflight_.events, b.events);
        move_all(inflight_.hits, b.hits);
        move_all(inflight_.traits, b.traits);
        inflight_.max_seq = std::max(inflight_.max_seq, b.max_seq);
        queue_.pop_front();
      }
      if (!queue_.empty()) oldest_ms_ = clock_->MonotonicMs();
      stats_.queued_rows = static_cast<int64_t>(queued_rows_);
      busy_ = true;
    }
    for (;;) {
      Status st;
      {
        std::lock_guard<std::mutex> send(send_mu_);
        st = SendInflight();
        if (st.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          stats_.events_written += static_cast<int64_t>(inflight_.events.size());
          stats_.hits_written += static_cast<int64_t>(inflight_.hits.size());
          stats_.traits_written += static_cast<int64_t>(inflight_.traits.size());
          stats_.acked_seq = std::max(stats_.acked_seq, inflight_.max_seq);
          ++stats_.batches_sent;
          inflight_ = WriteBatch();
        }
      }
      if (st.ok()) {
        backoff = opts_.retry_min_ms;
        break;
      }
      opts_.log.Warn("clickhouse sink: " + st.ToString() + "; retrying in " + std::to_string(backoff) + " ms");
      std::unique_lock<std::mutex> lock(mu_);
      ++stats_.send_failures;
      clock_->WaitFor(lock, cv_, backoff, [&] { return stop_; });
      if (stop_) return;
      backoff = std::min(backoff * 2, opts_.retry_max_ms);
    }
    std::lock_guard<std::mutex> lock(mu_);
    busy_ = false;
    if (queue_.empty()) flush_wanted_ = false;
    idle_cv_.notify_all();
  }
}

int64_t ClickHouseEngine::acked_seq() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_.acked_seq;
}

EngineStats ClickHouseEngine::Stats() {
  EngineStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = stats_;
  }
  std::lock_guard<std::mutex> lock(ids_mu_);
  for (const auto& [p, ids] : erasing_) s.pending_erasures += static_cast<int64_t>(ids.size());
  return s;
}

// ---- Erasure, restriction, leaves ----

Status ClickHouseEngine::SubmitErasure(const std::string& project, const std::vector<std::string>& ids) {
  const std::string list = SqlList(ids);
  const std::string pred = " WHERE project = " + SqlQuote(project) + " AND (person IN " + list + " OR user_id IN " +
                           list + " OR anonymous_id IN " + list + ")";
  for (auto& c : clients_) {
    for (const char* t : {"events", "hits", "traits"}) {
      FERRY_RETURN_IF_ERROR(c->Exec("ALTER TABLE " + LocalTable(t) + " DELETE" + pred, QuerySettings()));
    }
  }
  return client().Exec(
      "ALTER TABLE " + Table("restrictions") + " DELETE WHERE project = " + SqlQuote(project) + " AND id IN " + list,
      QuerySettings());
}

Status ClickHouseEngine::Erase(const std::string& project, const std::vector<std::string>& ids_in) {
  std::vector<std::string> ids;
  for (const auto& id : ids_in) {
    if (!id.empty()) ids.push_back(id);
  }
  if (ids.empty()) return Status::Ok();
  std::set<std::string> idset(ids.begin(), ids.end());
  std::lock_guard<std::mutex> serial(erase_mu_);
  {
    // No batch is in flight while send_mu_ is held: the person's rows leave the queue and the batch, and from now
    // on Write drops them; the mutations submitted below then cover every row that reached ClickHouse.
    std::lock_guard<std::mutex> send(send_mu_);
    {
      std::lock_guard<std::mutex> lock(ids_mu_);
      erasing_[project].insert(idset.begin(), idset.end());
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (WriteBatch& b : queue_) queued_rows_ -= Purge(&b, project, idset);
    Purge(&inflight_, project, idset);
    stats_.queued_rows = static_cast<int64_t>(queued_rows_);
  }
  std::string tsv;
  const int64_t now = clock_->NowMs();
  for (const auto& id : ids) {
    Field(&tsv, project);
    Field(&tsv, id);
    Field(&tsv, now, true);
  }
  Status st = client().Insert(Table("erasures") + " (project, id, at_ms)", tsv);
  if (st.ok()) st = SubmitErasure(project, ids);
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(ids_mu_);
    unsubmitted_.emplace_back(project, ids);  // Maintain retries; the ids stay excluded meanwhile
    return st.Annotate("clickhouse erasure (excluded from answers; retried by Maintain)");
  }
  return Status::Ok();
}

Result<int64_t> ClickHouseEngine::PendingMutations() {
  int64_t total = 0;
  for (auto& c : clients_) {
    Status st = c->Select("SELECT count() FROM system.mutations WHERE database = " + SqlQuote(db_) +
                              " AND is_done = 0 AND table != 'erasures'",
                          [&](const std::vector<std::string>& f) {
                            total += ToInt(f[0]);
                            return true;
                          });
    FERRY_RETURN_IF_ERROR(st);
  }
  return total;
}

Status ClickHouseEngine::Maintain() {
  std::lock_guard<std::mutex> serial(erase_mu_);
  std::vector<std::pair<std::string, std::vector<std::string>>> retry;
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    retry.swap(unsubmitted_);
  }
  for (size_t i = 0; i < retry.size(); ++i) {
    Status st = SubmitErasure(retry[i].first, retry[i].second);
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(ids_mu_);
      unsubmitted_.insert(unsubmitted_.end(), retry.begin() + static_cast<long>(i), retry.end());
      return st;
    }
  }
  std::map<std::string, std::set<std::string>> done;
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    done = erasing_;
  }
  if (done.empty()) return Status::Ok();
  auto pending = PendingMutations();
  if (!pending.ok()) return pending.status();
  if (pending.value() > 0) return Status::Ok();
  for (const auto& [project, ids] : done) {
    FERRY_RETURN_IF_ERROR(client().Exec("ALTER TABLE " + Table("erasures") +
                                            " DELETE WHERE project = " + SqlQuote(project) + " AND id IN " +
                                            SqlList(std::vector<std::string>(ids.begin(), ids.end())),
                                        QuerySettings()));
  }
  std::lock_guard<std::mutex> lock(ids_mu_);
  for (const auto& [project, ids] : done) {
    auto& cur = erasing_[project];
    for (const auto& id : ids) cur.erase(id);
    if (cur.empty()) erasing_.erase(project);
  }
  return Status::Ok();
}

std::vector<std::string> ClickHouseEngine::EngineExclusions(const std::string& project) {
  std::lock_guard<std::mutex> lock(ids_mu_);
  auto it = erasing_.find(project);
  if (it == erasing_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

Status ClickHouseEngine::SaveRestriction(const std::string& project, const std::vector<std::string>& ids,
                                         bool restricted) {
  std::string tsv;
  int64_t version;
  {
    std::lock_guard<std::mutex> lock(ids_mu_);
    restriction_version_ = std::max(restriction_version_ + 1, clock_->NowMs() * 1000);
    version = restriction_version_;
  }
  for (const auto& id : ids) {
    Field(&tsv, project);
    Field(&tsv, id);
    Field(&tsv, restricted ? 1 : 0);
    Field(&tsv, version, true);
  }
  return client().Insert(Table("restrictions") + " (project, id, restricted, version)", tsv);
}

Result<std::vector<std::pair<std::string, std::string>>> ClickHouseEngine::LoadRestrictions() {
  std::vector<std::pair<std::string, std::string>> out;
  Status st = client().Select(
      "SELECT project, id FROM " + Table("restrictions") + " FINAL WHERE restricted = 1 ORDER BY project, id",
      [&](const std::vector<std::string>& f) {
        if (f.size() == 2) out.emplace_back(f[0], f[1]);
        return true;
      });
  if (!st.ok()) return st;
  return out;
}

Status ClickHouseEngine::PurgeThrough(const std::string& project, int32_t last_day) {
  {
    // Rows still queued of those days leave the queue (the store no longer has them either).
    std::lock_guard<std::mutex> send(send_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    auto old = [&](const auto& r) { return r.project == project && r.day <= last_day; };
    auto drop = [&](WriteBatch& b) {
      size_t before = b.rows();
      b.events.erase(std::remove_if(b.events.begin(), b.events.end(), old), b.events.end());
      b.hits.erase(std::remove_if(b.hits.begin(), b.hits.end(), old), b.hits.end());
      b.traits.erase(std::remove_if(b.traits.begin(), b.traits.end(), old), b.traits.end());
      return before - b.rows();
    };
    for (WriteBatch& b : queue_) queued_rows_ -= drop(b);
    drop(inflight_);
    stats_.queued_rows = static_cast<int64_t>(queued_rows_);
  }
  const std::string pred =
      " DELETE WHERE project = " + SqlQuote(project) + " AND day <= " + std::to_string(static_cast<int64_t>(last_day));
  for (auto& c : clients_) {
    for (const char* t : {"events", "hits", "traits"}) {
      FERRY_RETURN_IF_ERROR(c->Exec("ALTER TABLE " + LocalTable(t) + pred, QuerySettings()));
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ClickHouseEngine::Projects() {
  std::vector<std::string> out;
  Status st =
      client().Select("SELECT DISTINCT project FROM " + Table("events"), [&](const std::vector<std::string>& f) {
        out.push_back(f[0]);
        return true;
      });
  if (!st.ok()) return st;
  return out;
}

Result<std::set<std::string>> ClickHouseEngine::LoadLeaves() {
  std::set<std::string> out;
  Status st = client().Select("SELECT leaf FROM " + Table("leaves"), [&](const std::vector<std::string>& f) {
    out.insert(f[0]);
    return true;
  });
  if (!st.ok()) return st;
  return out;
}

Status ClickHouseEngine::SaveLeaves(const std::vector<HitLeaf>& leaves) {
  if (leaves.empty()) return Status::Ok();
  std::string tsv;
  for (const HitLeaf& l : leaves) {
    Field(&tsv, l.id);
    Field(&tsv, l.canonical, true);
  }
  return client().Insert(Table("leaves") + " (leaf, spec)", tsv);
}

// ---- Questions ----

std::string ClickHouseEngine::ExclusionSql(const std::string& project, const Exclusion& ex) {
  std::vector<std::string> ids(ex.ids.begin(), ex.ids.end());
  for (auto& id : EngineExclusions(project)) ids.push_back(std::move(id));
  if (ids.empty()) return "";
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const std::string list = SqlList(ids);
  return " AND NOT (person IN " + list + " OR user_id IN " + list + " OR anonymous_id IN " + list + ")";
}

Status ClickHouseEngine::ScanEvents(const std::string& project, const std::set<std::string>& names,
                                    const std::set<std::string>& ids,
                                    const std::function<bool(const ActivityRow&)>& fn) {
  std::string sql = std::string("SELECT ") + kEventColumns + " FROM " + Table("events") + " FINAL WHERE 1";
  if (!project.empty()) sql += " AND project = " + SqlQuote(project);
  if (!names.empty()) sql += " AND name IN " + SqlList({names.begin(), names.end()});
  if (!ids.empty()) {
    std::string l = SqlList({ids.begin(), ids.end()});
    sql += " AND (person IN " + l + " OR user_id IN " + l + " OR anonymous_id IN " + l + ")";
  }
  ActivityRow a;
  return client().Select(
      sql,
      [&](const std::vector<std::string>& f) {
        if (f.size() != 16) return true;
        a.project = f[0];
        a.person = f[1];
        a.user_id = f[2];
        a.anonymous_id = f[3];
        a.message_id = f[4];
        a.type = f[5];
        a.name = f[6];
        a.purpose = f[7];
        a.ts_ms = ToInt(f[8]);
        a.received_ms = ToInt(f[9]);
        a.day = static_cast<int32_t>(ToInt(f[10]));
        a.session = f[11];
        a.channel = f[12];
        a.source = f[13];
        a.campaign = f[14];
        a.props = f[15];
        return fn(a);
      },
      QuerySettings());
}

namespace {

// Cents of the value property in the flat property text (docs/INSIGHT.md, "Money"; the same as CentsOf).
std::string CentsSql(const std::string& prop) {
  const std::string q = SqlQuote(prop);
  return "if(match(visitParamExtractRaw(props, " + q + "), '^-?[0-9]') AND abs(visitParamExtractFloat(props, " + q +
         ")) < 1e13, toInt64(floor(visitParamExtractFloat(props, " + q + ") * 100 + 0.5)), toInt64(0))";
}

}  // namespace

Result<std::vector<PersonFeatures>> ClickHouseEngine::Features(const std::string& project, const FeatureParams& p,
                                                               const PersonFilter& persons, const Exclusion& ex) {
  const std::string D = N(p.as_of_day), L = N(p.churn_window_days), W = N(p.rfm_window_days);
  const std::string recent = "day > " + D + " - " + L;
  const std::string prev = "day > " + D + " - 2 * " + L + " AND day <= " + D + " - " + L;
  const std::string inw = "day > " + D + " - " + W;
  const std::string V = "name = " + SqlQuote(p.value_event);
  const std::string I = "name = " + SqlQuote(p.invite_event);
  std::string where = " WHERE project = " + SqlQuote(project) + " AND day <= " + D + ExclusionSql(project, ex);
  if (!persons.empty()) where += " AND person IN " + SqlList(persons);
  const std::string inner =
      "SELECT person, min(ts_ms) AS first_ms, max(ts_ms) AS last_ms, min(day) AS first_day, max(day) AS last_day, "
      "count() AS events, uniqExact(day) AS active_days, uniqExactIf(session, session != '') AS sessions, "
      "argMin(source, (ts_ms, message_id)) AS src, argMin(campaign, (ts_ms, message_id)) AS camp, "
      "arrayStringConcat(arraySort(groupUniqArray(channel)), '\\x1F') AS channels, "
      "countIf(name = " +
      SqlQuote(p.activation_event) +
      ") AS activation_events, "
      "arraySort(groupUniqArray(day)) AS days, "
      "countIf(" +
      V + ") AS value_events, countIf(" + I +
      ") AS invite_events, "
      "uniqExact(intDiv(day + 3, 7)) AS active_weeks, "
      "uniqExactIf(day, " +
      recent + ") AS recent_days, uniqExactIf(day, " + prev +
      ") AS prev_days, "
      "uniqExactIf(session, session != '' AND " +
      recent +
      ") AS recent_sessions, "
      "uniqExactIf(session, session != '' AND " +
      prev +
      ") AS prev_sessions, "
      "countIf(" +
      V + " AND " + recent + ") AS recent_values, countIf(" + V + " AND " + prev +
      ") AS prev_values, "
      "countIf(" +
      inw + ") AS w_events, uniqExactIf(day, " + inw +
      ") AS w_days, "
      "uniqExactIf(session, session != '' AND " +
      inw +
      ") AS w_sessions, "
      "countIf(session != '' AND " +
      inw +
      ") AS w_session_events, "
      "countIf(" +
      V + " AND " + inw +
      ") AS w_values, "
      "sumIf(" +
      CentsSql(p.value_prop) + ", " + V + " AND " + inw +
      ") AS w_cents, "
      "countIf(" +
      I + " AND " + inw +
      ") AS w_invites, "
      "maxIf(day, " +
      V + " AND " + inw +
      ") AS w_last_value "
      "FROM " +
      Table("events") + " FINAL" + where + " GROUP BY person";
  const std::string sql =
      "SELECT person, first_ms, last_ms, first_day, last_day, events, active_days, sessions, src, camp, channels, "
      "activation_events, arrayCount(d -> d < first_day + " +
      N(p.activation_within_days) +
      ", days), "
      "value_events, invite_events, active_weeks, "
      "arrayFilter((d, g) -> g >= " +
      N(p.churned_days) +
      ", days, arrayDifference(days)) AS ret, "
      "if(length(ret) = 0, -1, ret[length(ret)]), "
      "recent_days, prev_days, recent_sessions, prev_sessions, recent_values, prev_values, "
      "w_events, w_days, w_sessions, w_session_events, w_values, w_cents, w_invites, "
      "if(w_values = 0, -1, w_last_value) "
      "FROM (" +
      inner + ") ORDER BY person";
  std::vector<PersonFeatures> out;
  Status st = client().Select(
      sql,
      [&](const std::vector<std::string>& f) {
        if (f.size() != 32) return true;
        PersonFeatures x;
        size_t i = 0;
        x.person = f[i++];
        x.first_ms = ToInt(f[i++]);
        x.last_ms = ToInt(f[i++]);
        x.first_day = static_cast<int32_t>(ToInt(f[i++]));
        x.last_day = static_cast<int32_t>(ToInt(f[i++]));
        x.events = ToInt(f[i++]);
        x.active_days = ToInt(f[i++]);
        x.sessions = ToInt(f[i++]);
        x.source = f[i++];
        x.campaign = f[i++];
        {
          const std::string& ch = f[i++];
          size_t start = 0;
          while (start <= ch.size() && !ch.empty()) {
            size_t sep = ch.find('\x1f', start);
            x.channels.push_back(ch.substr(start, sep == std::string::npos ? std::string::npos : sep - start));
            if (sep == std::string::npos) break;
            start = sep + 1;
          }
        }
        x.activation_events = ToInt(f[i++]);
        x.early_active_days = ToInt(f[i++]);
        x.value_events = ToInt(f[i++]);
        x.invite_events = ToInt(f[i++]);
        x.active_weeks = ToInt(f[i++]);
        ++i;  // ret (the array)
        x.last_return_day = static_cast<int32_t>(ToInt(f[i++]));
        x.recent_active_days = ToInt(f[i++]);
        x.prev_active_days = ToInt(f[i++]);
        x.recent_sessions = ToInt(f[i++]);
        x.prev_sessions = ToInt(f[i++]);
        x.recent_value_events = ToInt(f[i++]);
        x.prev_value_events = ToInt(f[i++]);
        x.w_events = ToInt(f[i++]);
        x.w_active_days = ToInt(f[i++]);
        x.w_sessions = ToInt(f[i++]);
        x.w_session_events = ToInt(f[i++]);
        x.w_value_events = ToInt(f[i++]);
        x.w_value_cents = ToInt(f[i++]);
        x.w_invites = ToInt(f[i++]);
        x.w_last_value_day = static_cast<int32_t>(ToInt(f[i++]));
        out.push_back(std::move(x));
        return true;
      },
      QuerySettings());
  if (!st.ok()) return st;
  return out;
}

Result<RfmThresholds> ClickHouseEngine::Thresholds(const std::string& project, const FeatureParams& p,
                                                   const Exclusion& ex) {
  const std::string D = N(p.as_of_day), W = N(p.rfm_window_days);
  const std::string V = "name = " + SqlQuote(p.value_event);
  const std::string per_person = "SELECT person, if(countIf(" + V + ") = 0, " + W + ", " + D + " - maxIf(day, " + V +
                                 ")) AS r, "
                                 "countIf(" +
                                 V + ") AS f, sumIf(" + CentsSql(p.value_prop) + ", " + V +
                                 ") AS m, uniqExact(day) AS a, "
                                 "uniqExactIf(session, session != '') AS ns, "
                                 "if(ns = 0, 0, intDiv(100 * countIf(session != ''), ns)) AS dp, "
                                 "countIf(name = " +
                                 SqlQuote(p.invite_event) +
                                 ") AS inv "
                                 "FROM " +
                                 Table("events") + " FINAL WHERE project = " + SqlQuote(project) + " AND day <= " + D +
                                 " AND day > " + D + " - " + W + ExclusionSql(project, ex) + " GROUP BY person";
  const std::string hi = "[1, 2, 3, 4]";
  auto up = [&](const char* a) {  // higher is better: v[ceil(sN/5) - 1] (1-based: [ceil(sN/5)])
    return std::string("arrayMap(s -> ") + a + "[intDiv(s * n + 4, 5)], " + hi + ")";
  };
  const std::string sql =
      "SELECT n, arrayMap(s -> ar[n - intDiv(s * n + 4, 5) + 1], " + hi + "), " + up("af") + ", " + up("am") + ", " +
      up("aa") + ", " + up("ad") + ", " + up("ai") +
      " FROM (SELECT count() AS n, arraySort(groupArray(r)) AS ar, arraySort(groupArray(f)) AS af, "
      "arraySort(groupArray(m)) AS am, arraySort(groupArray(a)) AS aa, arraySort(groupArray(dp)) AS ad, "
      "arraySort(groupArray(inv)) AS ai FROM (" +
      per_person +
      "))"
      // ClickHouse 18.16 drops subquery columns that only a lambda names: the WHERE names them.
      " WHERE length(ar) + length(af) + length(am) + length(aa) + length(ad) + length(ai) >= 0";
  RfmThresholds t;
  Status st = client().Select(
      sql,
      [&](const std::vector<std::string>& f) {
        if (f.size() != 7) return true;
        t.population = ToInt(f[0]);
        if (t.population == 0) return true;
        for (size_t m = 1; m < 7; ++m) {
          std::vector<int64_t> th;
          std::string s = f[m];  // "[1,2,3,4]"
          size_t i = 1;
          while (i < s.size()) {
            size_t j = s.find_first_of(",]", i);
            if (j == std::string::npos) break;
            th.push_back(ToInt(s.substr(i, j - i)));
            i = j + 1;
          }
          t.t.push_back(std::move(th));
        }
        return true;
      },
      QuerySettings());
  if (!st.ok()) return st;
  return t;
}

Result<std::vector<RetentionCountRow>> ClickHouseEngine::Retention(const RetentionQuery& q,
                                                                   const std::string& value_event,
                                                                   const Exclusion& ex) {
  auto period = [&](const std::string& day) {
    return q.granularity == Granularity::kDay ? day : "intDiv(" + day + " + 3, 7)";
  };
  std::string counts;
  for (int32_t k = 0; k < q.periods; ++k) counts += "countIf(has(ps, cohort + " + N(k) + ")), ";
  const std::string inner = "SELECT person, min(day) AS first_day, groupUniqArray(" + period("day") +
                            ") AS ps, "
                            "groupUniqArrayIf(" +
                            period("day") + ", name = " + SqlQuote(value_event) +
                            ") AS vps, "
                            "argMin(source, (ts_ms, message_id)) AS src, argMin(campaign, (ts_ms, message_id)) AS camp "
                            "FROM " +
                            Table("events") + " FINAL WHERE project = " + SqlQuote(q.project) +
                            " AND day <= " + N(q.as_of_day) + ExclusionSql(q.project, ex) + " GROUP BY person";
  const std::string sql = "SELECT cohort, s, c, count(), " + counts + "countIf(arrayExists(x -> x < cohort + " +
                          N(q.periods) + ", vps)) FROM (SELECT " + period("first_day") + " AS cohort, " +
                          SplitColumns(q.split) + ", ps, vps FROM (" + inner + ") WHERE first_day >= " + N(q.from_day) +
                          " AND first_day <= " + N(q.to_day) + ") GROUP BY cohort, s, c ORDER BY cohort, s, c";
  std::vector<RetentionCountRow> out;
  const size_t expect = 5 + static_cast<size_t>(q.periods);
  Status st = client().Select(
      sql,
      [&](const std::vector<std::string>& f) {
        if (f.size() != expect) return true;
        RetentionCountRow r;
        r.cohort = static_cast<int32_t>(ToInt(f[0]));
        r.source = f[1];
        r.campaign = f[2];
        r.size = ToInt(f[3]);
        for (int32_t k = 0; k < q.periods; ++k) r.counts.push_back(ToInt(f[4 + static_cast<size_t>(k)]));
        r.converted = ToInt(f[4 + static_cast<size_t>(q.periods)]);
        out.push_back(std::move(r));
        return true;
      },
      QuerySettings());
  if (!st.ok()) return st;
  return out;
}

Result<std::vector<FunnelRow>> ClickHouseEngine::Funnel(const FunnelQuery& q, const Exclusion& ex) {
  const size_t k = q.steps.size();
  const std::string excl = ExclusionSql(q.project, ex);
  std::string arrays;
  for (size_t j = 0; j < k; ++j) {
    std::string cond = "name = " + SqlQuote(q.steps[j]);
    if (j == 0) cond += " AND day >= " + N(q.from_day) + " AND day <= " + N(q.to_day);
    arrays += ", arraySort(groupArrayIf(ts_ms, " + cond + ")) AS a" + N(static_cast<int64_t>(j + 1));
  }
  const std::string per_person = "SELECT person" + arrays + " FROM " + Table("events") +
                                 " FINAL WHERE project = " + SqlQuote(q.project) + " AND day >= " + N(q.from_day) +
                                 " AND day <= " + N(q.as_of_day) + " AND name IN " + SqlList(q.steps) + excl +
                                 " GROUP BY person HAVING length(a1) > 0";
  // t_j: for each entering event, the earliest step-j time at or after the chain's step j-1 (0 = none).
  std::string chain = "person";
  for (size_t j = 2; j <= k; ++j) {
    const std::string J = N(static_cast<int64_t>(j)), P = N(static_cast<int64_t>(j - 1));
    if (j == 2) {
      chain += ", arrayMap(s -> arrayFirst(x -> x >= s, a2), a1) AS t2";
    } else {
      chain += ", arrayMap(p -> if(p = 0, toInt64(0), arrayFirst(x -> x >= p, a" + J + ")), t" + P + ") AS t" + J;
    }
    chain += ", arrayExists((s, p) -> p != 0 AND p - s <= " + N(q.window_seconds * 1000) + ", a1, t" + J + ") AS r" + J;
  }
  std::string sums;
  for (size_t j = 2; j <= k; ++j) sums += ", sum(r" + N(static_cast<int64_t>(j)) + ")";
  // ClickHouse 18.16 drops subquery columns that only a lambda names ("Unknown identifier"): the WHERE names them.
  std::string keep = "length(a1)";
  for (size_t j = 2; j <= k; ++j) keep += " + length(a" + N(static_cast<int64_t>(j)) + ")";
  std::string from = "(SELECT " + chain + " FROM (" + per_person + ") WHERE " + keep + " >= 0)";
  if (q.split != Split::kNone) {
    from +=
        " ANY LEFT JOIN (SELECT person, argMin(source, (ts_ms, message_id)) AS src, "
        "argMin(campaign, (ts_ms, message_id)) AS camp FROM " +
        Table("events") + " FINAL WHERE project = " + SqlQuote(q.project) + " AND day <= " + N(q.as_of_day) + excl +
        " GROUP BY person) USING person";
  }
  const std::string sql = "SELECT s, c, count()" + sums + " FROM (SELECT " + SplitColumns(q.split) +
                          (k > 1 ? std::string(", ") : std::string()) +
                          [&] {
                            std::string r;
                            for (size_t j = 2; j <= k; ++j) {
                              if (j > 2) r += ", ";
                              r += "r" + N(static_cast<int64_t>(j));
                            }
                            return r;
                          }() +
                          " FROM " + from + ") GROUP BY s, c ORDER BY s, c";
  std::vector<FunnelRow> out;
  Status st = client().Select(
      sql,
      [&](const std::vector<std::string>& f) {
        if (f.size() != 2 + k) return true;
        FunnelRow r;
        r.source = f[0];
        r.campaign = f[1];
        for (size_t j = 0; j < k; ++j) r.counts.push_back(ToInt(f[2 + j]));
        out.push_back(std::move(r));
        return true;
      },
      QuerySettings());
  if (!st.ok()) return st;
  return out;
}

Result<std::map<std::string, PersonLeafValues>> ClickHouseEngine::LeafValues(
    const std::string& project, int32_t as_of_day, const std::vector<HitLeaf>& leaves,
    const std::vector<LeafWindow>& windows, const PersonFilter& persons, const Exclusion& ex) {
  std::map<std::string, PersonLeafValues> out;
  if (leaves.empty()) return out;
  std::map<std::string, size_t> leaf_index;
  std::vector<std::string> ids;
  for (size_t i = 0; i < leaves.size(); ++i) {
    leaf_index[leaves[i].id] = i;
    ids.push_back(leaves[i].id);
  }
  std::set<int32_t> lengths;
  for (const auto& w : windows) lengths.insert(w.within_days);
  std::vector<int32_t> lens(lengths.begin(), lengths.end());
  std::string cols;
  for (int32_t w : lens) {
    if (w == 0) {
      cols += ", count(), sum(value_cents)";
    } else {
      std::string c = "day > " + N(as_of_day) + " - " + N(w);
      cols += ", countIf(" + c + "), sumIf(value_cents, " + c + ")";
    }
  }
  std::string sql = "SELECT person, leaf, max(day)" + cols + " FROM " + Table("hits") +
                    " FINAL WHERE project = " + SqlQuote(project) + " AND day <= " + N(as_of_day) + " AND leaf IN " +
                    SqlList(ids) + ExclusionSql(project, ex);
  if (!persons.empty()) sql += " AND person IN " + SqlList(persons);
  sql += " GROUP BY person, leaf";
  Status st = client().Select(
      sql,
      [&](const std::vector<std::string>& f) {
        if (f.size() != 3 + 2 * lens.size()) return true;
        auto li = leaf_index.find(f[1]);
        if (li == leaf_index.end()) return true;
        PersonLeafValues& v = out[f[0]];
        if (v.windows.empty()) {
          v.windows.assign(windows.size(), LeafValue{});
          v.last_day.assign(leaves.size(), -1);
        }
        v.last_day[li->second] = static_cast<int32_t>(ToInt(f[2]));
        for (size_t w = 0; w < windows.size(); ++w) {
          if (static_cast<size_t>(windows[w].leaf) != li->second) continue;
          size_t col = static_cast<size_t>(std::find(lens.begin(), lens.end(), windows[w].within_days) - lens.begin());
          v.windows[w].count = ToInt(f[3 + 2 * col]);
          v.windows[w].sum_cents = ToInt(f[4 + 2 * col]);
        }
        return true;
      },
      QuerySettings());
  if (!st.ok()) return st;
  return out;
}

Result<std::map<std::string, std::map<std::string, std::string>>> ClickHouseEngine::Traits(const std::string& project,
                                                                                           int32_t as_of_day,
                                                                                           const PersonFilter& persons,
                                                                                           const Exclusion& ex) {
  std::string sql = "SELECT person, key, argMax(value, (ts_ms, message_id)) FROM " + Table("traits") +
                    " FINAL WHERE project = " + SqlQuote(project) + " AND day <= " + N(as_of_day) +
                    ExclusionSql(project, ex);
  if (!persons.empty()) sql += " AND person IN " + SqlList(persons);
  sql += " GROUP BY person, key";
  std::map<std::string, std::map<std::string, std::string>> out;
  Status st = client().Select(
      sql,
      [&](const std::vector<std::string>& f) {
        if (f.size() == 3) out[f[0]][f[1]] = f[2];
        return true;
      },
      QuerySettings());
  if (!st.ok()) return st;
  return out;
}

Result<std::vector<KeyEventStat>> ClickHouseEngine::KeyEvents(const std::string& project, const std::string& person,
                                                              const std::vector<std::string>& names, int32_t as_of_day,
                                                              const Exclusion& ex) {
  std::map<std::string, KeyEventStat> by_name;
  for (const auto& n : names) by_name[n].name = n;
  if (!names.empty()) {
    std::string sql = "SELECT name, count(), max(ts_ms) FROM " + Table("events") +
                      " FINAL WHERE project = " + SqlQuote(project) + " AND person = " + SqlQuote(person) +
                      " AND day <= " + N(as_of_day) + " AND name IN " + SqlList(names) + ExclusionSql(project, ex) +
                      " GROUP BY name";
    Status st = client().Select(
        sql,
        [&](const std::vector<std::string>& f) {
          if (f.size() != 3) return true;
          auto& k = by_name[f[0]];
          k.count = ToInt(f[1]);
          k.last_ms = ToInt(f[2]);
          return true;
        },
        QuerySettings());
    if (!st.ok()) return st;
  }
  std::vector<KeyEventStat> out;
  for (const auto& n : names) out.push_back(by_name[n]);
  return out;
}

}  // namespace ferry::insight
