#include "collector/insight/embedded_engine.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "collector/insight/normalize.h"
#include "collector/insight/scoring.h"

namespace ferry::insight {

using base::Result;
using base::Status;

namespace {

constexpr int64_t kSchemaVersion = 1;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  project TEXT NOT NULL, person TEXT NOT NULL, ts_ms INTEGER NOT NULL, message_id TEXT NOT NULL,
  user_id TEXT NOT NULL, anonymous_id TEXT NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL, purpose TEXT NOT NULL,
  day INTEGER NOT NULL, received_ms INTEGER NOT NULL, session TEXT NOT NULL, channel TEXT NOT NULL,
  source TEXT NOT NULL, campaign TEXT NOT NULL, props TEXT NOT NULL,
  PRIMARY KEY(project, person, ts_ms, message_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS events_by_message ON events(project, message_id);
CREATE INDEX IF NOT EXISTS events_by_user ON events(project, user_id);
CREATE INDEX IF NOT EXISTS events_by_anonymous ON events(project, anonymous_id);
CREATE TABLE IF NOT EXISTS hits(
  project TEXT NOT NULL, leaf TEXT NOT NULL, person TEXT NOT NULL, message_id TEXT NOT NULL,
  day INTEGER NOT NULL, value_cents INTEGER NOT NULL, user_id TEXT NOT NULL, anonymous_id TEXT NOT NULL,
  PRIMARY KEY(project, leaf, person, message_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hits_by_person ON hits(project, person);
CREATE TABLE IF NOT EXISTS traits(
  project TEXT NOT NULL, person TEXT NOT NULL, key TEXT NOT NULL, message_id TEXT NOT NULL,
  value TEXT NOT NULL, ts_ms INTEGER NOT NULL, day INTEGER NOT NULL, user_id TEXT NOT NULL,
  anonymous_id TEXT NOT NULL,
  PRIMARY KEY(project, person, key, message_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS restrictions(project TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY(project, id))
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leaves(leaf TEXT PRIMARY KEY, spec TEXT NOT NULL) WITHOUT ROWID;
)sql";

Status Pragmas(base::Db& db) {
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA secure_delete = ON;"));
  FERRY_RETURN_IF_ERROR(db.Exec("PRAGMA temp_store = MEMORY;"));
  return db.Exec("PRAGMA cache_size = -65536;");  // 64 MiB
}

int32_t Period(Granularity g, int32_t day) { return g == Granularity::kDay ? day : WeekOf(day); }

}  // namespace

Result<std::unique_ptr<EmbeddedEngine>> EmbeddedEngine::Open(const std::string& path, const base::SecretBytes& key) {
  std::unique_ptr<EmbeddedEngine> e(new EmbeddedEngine());
  auto w = base::Db::OpenEncrypted(path, key);
  if (!w.ok()) return w.status().Annotate("insight store " + path);
  e->writer_ = std::move(w.value());
  FERRY_RETURN_IF_ERROR(e->Init());
  auto r = base::Db::OpenEncrypted(path, key);
  if (!r.ok()) return r.status().Annotate("insight store " + path);
  e->reader_ = std::move(r.value());
  FERRY_RETURN_IF_ERROR(Pragmas(e->reader_));
  return e;
}

EmbeddedEngine::~EmbeddedEngine() = default;

Status EmbeddedEngine::Init() {
  FERRY_RETURN_IF_ERROR(Pragmas(writer_));
  int64_t v = writer_.UserVersion();
  if (v > kSchemaVersion) {
    return Status::FailedPrecondition("insight store schema " + std::to_string(v) + " is newer than this build");
  }
  FERRY_RETURN_IF_ERROR(writer_.Exec(kSchema));
  FERRY_RETURN_IF_ERROR(writer_.SetUserVersion(kSchemaVersion));
  auto a = writer_.Prepare(
      "INSERT OR IGNORE INTO events(project, person, ts_ms, message_id, user_id, anonymous_id, type, name, purpose, "
      "day, received_ms, session, channel, source, campaign, props) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
  if (!a.ok()) return a.status();
  ins_event_ = std::move(a.value());
  auto b = writer_.Prepare(
      "INSERT OR IGNORE INTO hits(project, leaf, person, message_id, day, value_cents, user_id, anonymous_id) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!b.ok()) return b.status();
  ins_hit_ = std::move(b.value());
  auto c = writer_.Prepare(
      "INSERT OR IGNORE INTO traits(project, person, key, message_id, value, ts_ms, day, user_id, anonymous_id) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!c.ok()) return c.status();
  ins_trait_ = std::move(c.value());
  return Status::Ok();
}

Status EmbeddedEngine::Write(WriteBatch batch) {
  if (batch.rows() == 0) return Status::Ok();
  int64_t ne = 0, nh = 0, nt = 0;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    base::Transaction tx(writer_);
    FERRY_RETURN_IF_ERROR(tx.begin_status());
    for (const ActivityRow& a : batch.events) {
      ins_event_.Bind(1, a.project).Bind(2, a.person).Bind(3, a.ts_ms).Bind(4, a.message_id);
      ins_event_.Bind(5, a.user_id).Bind(6, a.anonymous_id).Bind(7, a.type).Bind(8, a.name).Bind(9, a.purpose);
      ins_event_.Bind(10, static_cast<int64_t>(a.day)).Bind(11, a.received_ms).Bind(12, a.session);
      ins_event_.Bind(13, a.channel).Bind(14, a.source).Bind(15, a.campaign).Bind(16, a.props);
      FERRY_RETURN_IF_ERROR(ins_event_.Run());
      ne += writer_.Changes();
    }
    for (const HitRow& h : batch.hits) {
      ins_hit_.Bind(1, h.project).Bind(2, h.leaf).Bind(3, h.person).Bind(4, h.message_id);
      ins_hit_.Bind(5, static_cast<int64_t>(h.day)).Bind(6, h.value_cents).Bind(7, h.user_id).Bind(8, h.anonymous_id);
      FERRY_RETURN_IF_ERROR(ins_hit_.Run());
      nh += writer_.Changes();
    }
    for (const TraitRow& t : batch.traits) {
      ins_trait_.Bind(1, t.project).Bind(2, t.person).Bind(3, t.key).Bind(4, t.message_id).Bind(5, t.value);
      ins_trait_.Bind(6, t.ts_ms).Bind(7, static_cast<int64_t>(t.day)).Bind(8, t.user_id).Bind(9, t.anonymous_id);
      FERRY_RETURN_IF_ERROR(ins_trait_.Run());
      nt += writer_.Changes();
    }
    FERRY_RETURN_IF_ERROR(tx.Commit());
  }
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.events_written += ne;
  stats_.hits_written += nh;
  stats_.traits_written += nt;
  stats_.acked_seq = std::max(stats_.acked_seq, batch.max_seq);
  return Status::Ok();
}

Status EmbeddedEngine::Flush(int64_t) { return Status::Ok(); }

Status EmbeddedEngine::Erase(const std::string& project, const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> lock(write_mu_);
  base::Transaction tx(writer_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  static const char* const kDeletes[] = {
      "DELETE FROM events WHERE project = ?1 AND person = ?2",
      "DELETE FROM events WHERE project = ?1 AND user_id = ?2",
      "DELETE FROM events WHERE project = ?1 AND anonymous_id = ?2",
      "DELETE FROM hits WHERE project = ?1 AND (person = ?2 OR user_id = ?2 OR anonymous_id = ?2)",
      "DELETE FROM traits WHERE project = ?1 AND (person = ?2 OR user_id = ?2 OR anonymous_id = ?2)",
      "DELETE FROM restrictions WHERE project = ?1 AND id = ?2",
  };
  for (const char* sql : kDeletes) {
    auto st = writer_.Prepare(sql);
    if (!st.ok()) return st.status();
    for (const std::string& id : ids) {
      if (id.empty()) continue;
      st->Bind(1, project).Bind(2, id);
      FERRY_RETURN_IF_ERROR(st->Run());
    }
  }
  return tx.Commit();
}

Status EmbeddedEngine::SaveRestriction(const std::string& project, const std::vector<std::string>& ids,
                                       bool restricted) {
  std::lock_guard<std::mutex> lock(write_mu_);
  base::Transaction tx(writer_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto st = writer_.Prepare(restricted ? "INSERT OR IGNORE INTO restrictions(project, id) VALUES(?1, ?2)"
                                       : "DELETE FROM restrictions WHERE project = ?1 AND id = ?2");
  if (!st.ok()) return st.status();
  for (const std::string& id : ids) {
    st->Bind(1, project).Bind(2, id);
    FERRY_RETURN_IF_ERROR(st->Run());
  }
  return tx.Commit();
}

Result<std::vector<std::pair<std::string, std::string>>> EmbeddedEngine::LoadRestrictions() {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto st = reader_.Prepare("SELECT project, id FROM restrictions");
  if (!st.ok()) return st.status();
  std::vector<std::pair<std::string, std::string>> out;
  while (st->Step()) out.emplace_back(st->Text(0), st->Text(1));
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

Status EmbeddedEngine::PurgeThrough(const std::string& project, int32_t last_day) {
  std::lock_guard<std::mutex> lock(write_mu_);
  base::Transaction tx(writer_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  for (const char* sql :
       {"DELETE FROM events WHERE project = ?1 AND day <= ?2", "DELETE FROM hits WHERE project = ?1 AND day <= ?2",
        "DELETE FROM traits WHERE project = ?1 AND day <= ?2"}) {
    auto st = writer_.Prepare(sql);
    if (!st.ok()) return st.status();
    st->Bind(1, project).Bind(2, static_cast<int64_t>(last_day));
    FERRY_RETURN_IF_ERROR(st->Run());
  }
  return tx.Commit();
}

Result<std::vector<std::string>> EmbeddedEngine::Projects() {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto st = reader_.Prepare("SELECT DISTINCT project FROM events UNION SELECT DISTINCT project FROM traits");
  if (!st.ok()) return st.status();
  std::vector<std::string> out;
  while (st->Step()) out.push_back(st->Text(0));
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

Result<std::set<std::string>> EmbeddedEngine::LoadLeaves() {
  std::lock_guard<std::mutex> lock(read_mu_);
  auto st = reader_.Prepare("SELECT leaf FROM leaves");
  if (!st.ok()) return st.status();
  std::set<std::string> out;
  while (st->Step()) out.insert(st->Text(0));
  FERRY_RETURN_IF_ERROR(st->status());
  return out;
}

Status EmbeddedEngine::SaveLeaves(const std::vector<HitLeaf>& leaves) {
  std::lock_guard<std::mutex> lock(write_mu_);
  base::Transaction tx(writer_);
  FERRY_RETURN_IF_ERROR(tx.begin_status());
  auto st = writer_.Prepare("INSERT OR REPLACE INTO leaves(leaf, spec) VALUES(?1, ?2)");
  if (!st.ok()) return st.status();
  for (const HitLeaf& l : leaves) {
    st->Bind(1, l.id).Bind(2, l.canonical);
    FERRY_RETURN_IF_ERROR(st->Run());
  }
  return tx.Commit();
}

EngineStats EmbeddedEngine::Stats() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

namespace {

// Column order of every activity-row SELECT below.
constexpr const char* kRowColumns =
    "project, person, ts_ms, message_id, user_id, anonymous_id, type, name, purpose, day, received_ms, session, "
    "channel, source, campaign";

void ReadRow(base::Stmt& st, ActivityRow* a) {
  a->project = st.Text(0);
  a->person = st.Text(1);
  a->ts_ms = st.Int(2);
  a->message_id = st.Text(3);
  a->user_id = st.Text(4);
  a->anonymous_id = st.Text(5);
  a->type = st.Text(6);
  a->name = st.Text(7);
  a->purpose = st.Text(8);
  a->day = static_cast<int32_t>(st.Int(9));
  a->received_ms = st.Int(10);
  a->session = st.Text(11);
  a->channel = st.Text(12);
  a->source = st.Text(13);
  a->campaign = st.Text(14);
  a->props = st.Text(15);
}

}  // namespace

Status EmbeddedEngine::ScanEvents(const std::string& project, const std::set<std::string>& names,
                                  const std::set<std::string>& ids, const std::function<bool(const ActivityRow&)>& fn) {
  std::lock_guard<std::mutex> lock(read_mu_);
  std::string base = std::string("SELECT ") + kRowColumns + ", props FROM events";
  std::vector<std::string> sqls;
  if (ids.empty()) {
    sqls.push_back(base + (project.empty() ? "" : " WHERE project = ?1"));
  } else {
    for (const char* col : {"person", "user_id", "anonymous_id"}) {
      sqls.push_back(base + " WHERE " + (project.empty() ? "" : "project = ?1 AND ") + col + " = ?2");
    }
  }
  std::set<std::pair<std::string, std::string>> seen;  // (project, messageId) when several predicates run
  for (const std::string& sql : sqls) {
    auto st = reader_.Prepare(sql);
    if (!st.ok()) return st.status();
    std::vector<std::string> keys =
        ids.empty() ? std::vector<std::string>{""} : std::vector<std::string>(ids.begin(), ids.end());
    for (const std::string& id : keys) {
      if (!project.empty()) st->Bind(1, project);
      if (!ids.empty()) st->Bind(2, id);
      ActivityRow a;
      while (st->Step()) {
        ReadRow(*st, &a);
        if (!names.empty() && names.count(a.name) == 0) continue;
        if (!ids.empty() && !seen.insert({a.project, a.message_id}).second) continue;
        if (!fn(a)) {
          st->Reset();
          return Status::Ok();
        }
      }
      FERRY_RETURN_IF_ERROR(st->status());
      st->Reset();
    }
  }
  return Status::Ok();
}

Status EmbeddedEngine::ScanOrdered(const std::string& project, int32_t from_day, int32_t as_of_day,
                                   const std::string& person, const std::string& props_of, const Exclusion& ex,
                                   const std::function<void(ActivityRow&&)>& fn) {
  std::string sql = std::string("SELECT ") + kRowColumns +
                    ", CASE WHEN ?4 = '*' OR name = ?4 THEN props ELSE '' END FROM events WHERE project = ?1"
                    " AND day <= ?2 AND day >= ?3" +
                    (person.empty() ? "" : " AND person = ?5") + " ORDER BY person, ts_ms, message_id";
  auto st = reader_.Prepare(sql);
  if (!st.ok()) return st.status();
  st->Bind(1, project).Bind(2, static_cast<int64_t>(as_of_day)).Bind(3, static_cast<int64_t>(from_day));
  st->Bind(4, props_of);
  if (!person.empty()) st->Bind(5, person);
  while (st->Step()) {
    ActivityRow a;
    ReadRow(*st, &a);
    if (ex.Excludes(a.person, a.user_id, a.anonymous_id)) continue;
    fn(std::move(a));
  }
  return st->status();
}

Result<std::vector<PersonFeatures>> EmbeddedEngine::Features(const std::string& project, const FeatureParams& p,
                                                             const PersonFilter& persons, const Exclusion& ex) {
  std::lock_guard<std::mutex> lock(read_mu_);
  std::vector<PersonFeatures> out;
  std::vector<ActivityRow> rows;
  auto fold = [&]() {
    if (rows.empty()) return;
    std::vector<const ActivityRow*> ptrs;
    ptrs.reserve(rows.size());
    for (const auto& r : rows) ptrs.push_back(&r);
    PersonFeatures f;
    if (FoldFeatures(ptrs, p, &f)) out.push_back(std::move(f));
    rows.clear();
  };
  auto on_row = [&](ActivityRow&& a) {
    if (!rows.empty() && rows.back().person != a.person) fold();
    rows.push_back(std::move(a));
  };
  if (persons.empty()) {
    FERRY_RETURN_IF_ERROR(ScanOrdered(project, INT32_MIN, p.as_of_day, "", p.value_event, ex, on_row));
    fold();
  } else {
    std::vector<std::string> sorted(persons.begin(), persons.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    for (const std::string& person : sorted) {
      FERRY_RETURN_IF_ERROR(ScanOrdered(project, INT32_MIN, p.as_of_day, person, p.value_event, ex, on_row));
      fold();
    }
  }
  return out;
}

Result<RfmThresholds> EmbeddedEngine::Thresholds(const std::string& project, const FeatureParams& p,
                                                 const Exclusion& ex) {
  auto features = Features(project, p, {}, ex);
  if (!features.ok()) return features.status();
  std::vector<RfmValues> population;
  for (const PersonFeatures& f : features.value()) {
    if (InRfmPopulation(f)) population.push_back(RfmMetricsOf(f, p.as_of_day, p.rfm_window_days));
  }
  return ComputeThresholds(population);
}

Result<std::vector<RetentionCountRow>> EmbeddedEngine::Retention(const RetentionQuery& q,
                                                                 const std::string& value_event, const Exclusion& ex) {
  std::lock_guard<std::mutex> lock(read_mu_);
  const bool by_source = q.split == Split::kSource || q.split == Split::kSourceCampaign;
  const bool by_campaign = q.split == Split::kCampaign || q.split == Split::kSourceCampaign;
  std::map<std::tuple<int32_t, std::string, std::string>, RetentionCountRow> rows;
  std::string person;
  int32_t first_day = 0;
  std::string source, campaign;
  std::set<int32_t> periods, value_periods;
  auto flush = [&]() {
    if (person.empty() || first_day < q.from_day || first_day > q.to_day) return;
    int32_t cohort = Period(q.granularity, first_day);
    auto key = std::make_tuple(cohort, by_source ? source : std::string(), by_campaign ? campaign : std::string());
    RetentionCountRow& r = rows[key];
    if (r.counts.empty()) {
      r.cohort = cohort;
      r.source = std::get<1>(key);
      r.campaign = std::get<2>(key);
      r.counts.assign(static_cast<size_t>(q.periods), 0);
    }
    ++r.size;
    for (int32_t k = 0; k < q.periods; ++k) {
      if (periods.count(cohort + k) > 0) ++r.counts[static_cast<size_t>(k)];
    }
    for (int32_t vp : value_periods) {
      if (vp < cohort + q.periods) {
        ++r.converted;
        break;
      }
    }
  };
  Status s = ScanOrdered(q.project, INT32_MIN, q.as_of_day, "", "", ex, [&](ActivityRow&& a) {
    if (a.person != person) {
      flush();
      person = a.person;
      first_day = a.day;
      source = a.source;
      campaign = a.campaign;
      periods.clear();
      value_periods.clear();
    }
    int32_t per = Period(q.granularity, a.day);
    periods.insert(per);
    if (a.name == value_event) value_periods.insert(per);
  });
  FERRY_RETURN_IF_ERROR(s);
  flush();
  std::vector<RetentionCountRow> out;
  for (auto& [k, r] : rows) out.push_back(std::move(r));
  return out;
}

Result<std::vector<FunnelRow>> EmbeddedEngine::Funnel(const FunnelQuery& q, const Exclusion& ex) {
  std::lock_guard<std::mutex> lock(read_mu_);
  const bool by_source = q.split == Split::kSource || q.split == Split::kSourceCampaign;
  const bool by_campaign = q.split == Split::kCampaign || q.split == Split::kSourceCampaign;
  const bool split = by_source || by_campaign;
  std::map<std::string, size_t> step_of;
  for (size_t i = 0; i < q.steps.size(); ++i) step_of[q.steps[i]] = i;
  std::map<std::pair<std::string, std::string>, FunnelRow> rows;
  std::string person, source, campaign;
  std::vector<std::vector<int64_t>> times(q.steps.size());
  auto flush = [&]() {
    if (person.empty()) return;
    int level = FunnelLevel(times, q.window_seconds * 1000);
    if (level == 0) return;
    auto key = std::make_pair(by_source ? source : std::string(), by_campaign ? campaign : std::string());
    FunnelRow& r = rows[key];
    if (r.counts.empty()) {
      r.source = key.first;
      r.campaign = key.second;
      r.counts.assign(q.steps.size(), 0);
    }
    for (int j = 0; j < level; ++j) ++r.counts[static_cast<size_t>(j)];
  };
  // Without a split only the funnel's days matter; with one, the person's first event (any day) names the split.
  Status s = ScanOrdered(q.project, split ? INT32_MIN : q.from_day, q.as_of_day, "", "", ex, [&](ActivityRow&& a) {
    if (a.person != person) {
      flush();
      person = a.person;
      source = a.source;
      campaign = a.campaign;
      for (auto& t : times) t.clear();
    }
    if (a.day < q.from_day) return;
    auto it = step_of.find(a.name);
    if (it == step_of.end()) return;
    if (it->second == 0 && a.day > q.to_day) return;
    times[it->second].push_back(a.ts_ms);  // rows come in timestamp order: each list stays sorted
  });
  FERRY_RETURN_IF_ERROR(s);
  flush();
  std::vector<FunnelRow> out;
  for (auto& [k, r] : rows) out.push_back(std::move(r));
  return out;
}

Result<std::map<std::string, PersonLeafValues>> EmbeddedEngine::LeafValues(
    const std::string& project, int32_t as_of_day, const std::vector<HitLeaf>& leaves,
    const std::vector<LeafWindow>& windows, const PersonFilter& persons, const Exclusion& ex) {
  std::lock_guard<std::mutex> lock(read_mu_);
  std::map<std::string, int> leaf_index;
  for (size_t i = 0; i < leaves.size(); ++i) leaf_index[leaves[i].id] = static_cast<int>(i);
  std::vector<std::vector<size_t>> windows_of(leaves.size());
  for (size_t w = 0; w < windows.size(); ++w) windows_of[static_cast<size_t>(windows[w].leaf)].push_back(w);
  std::map<std::string, PersonLeafValues> out;
  auto on_hit = [&](base::Stmt& st) {
    std::string person = st.Text(0);
    auto li = leaf_index.find(std::string(st.TextView(1)));
    if (li == leaf_index.end()) return;
    if (ex.Excludes(person, st.Text(4), st.Text(5))) return;
    const int32_t day = static_cast<int32_t>(st.Int(2));
    const int64_t cents = st.Int(3);
    PersonLeafValues& v = out[person];
    if (v.windows.empty()) {
      v.windows.assign(windows.size(), LeafValue{});
      v.last_day.assign(leaves.size(), -1);
    }
    v.last_day[static_cast<size_t>(li->second)] = std::max(v.last_day[static_cast<size_t>(li->second)], day);
    for (size_t w : windows_of[static_cast<size_t>(li->second)]) {
      const int32_t within = windows[w].within_days;
      if (within == 0 || static_cast<int64_t>(day) > static_cast<int64_t>(as_of_day) - within) {
        ++v.windows[w].count;
        v.windows[w].sum_cents += cents;
      }
    }
  };
  std::string sql =
      "SELECT person, leaf, day, value_cents, user_id, anonymous_id FROM hits WHERE project = ?1 AND day <= ?2";
  if (!persons.empty()) sql += " AND person = ?3";
  auto st = reader_.Prepare(sql);
  if (!st.ok()) return st.status();
  std::vector<std::string> keys = persons.empty() ? std::vector<std::string>{""} : persons;
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (const std::string& person : keys) {
    st->Bind(1, project).Bind(2, static_cast<int64_t>(as_of_day));
    if (!persons.empty()) st->Bind(3, person);
    while (st->Step()) on_hit(*st);
    FERRY_RETURN_IF_ERROR(st->status());
    st->Reset();
  }
  return out;
}

Result<std::map<std::string, std::map<std::string, std::string>>> EmbeddedEngine::Traits(const std::string& project,
                                                                                         int32_t as_of_day,
                                                                                         const PersonFilter& persons,
                                                                                         const Exclusion& ex) {
  std::lock_guard<std::mutex> lock(read_mu_);
  // (person, key) -> (ts_ms, messageId, value) of the latest row
  std::map<std::pair<std::string, std::string>, std::tuple<int64_t, std::string, std::string>> latest;
  std::string sql =
      "SELECT person, key, value, ts_ms, message_id, user_id, anonymous_id FROM traits WHERE project = ?1 AND "
      "day <= ?2";
  if (!persons.empty()) sql += " AND person = ?3";
  auto st = reader_.Prepare(sql);
  if (!st.ok()) return st.status();
  std::vector<std::string> keys = persons.empty() ? std::vector<std::string>{""} : persons;
  for (const std::string& person : keys) {
    st->Bind(1, project).Bind(2, static_cast<int64_t>(as_of_day));
    if (!persons.empty()) st->Bind(3, person);
    while (st->Step()) {
      std::string p = st->Text(0);
      if (ex.Excludes(p, st->Text(5), st->Text(6))) continue;
      auto cand = std::make_tuple(st->Int(3), st->Text(4), st->Text(2));
      auto& slot = latest[{p, st->Text(1)}];
      if (std::get<1>(slot).empty() ||
          std::tie(std::get<0>(cand), std::get<1>(cand)) > std::tie(std::get<0>(slot), std::get<1>(slot))) {
        slot = std::move(cand);
      }
    }
    FERRY_RETURN_IF_ERROR(st->status());
    st->Reset();
  }
  std::map<std::string, std::map<std::string, std::string>> out;
  for (auto& [k, v] : latest) out[k.first][k.second] = std::get<2>(v);
  return out;
}

Result<std::vector<KeyEventStat>> EmbeddedEngine::KeyEvents(const std::string& project, const std::string& person,
                                                            const std::vector<std::string>& names, int32_t as_of_day,
                                                            const Exclusion& ex) {
  std::lock_guard<std::mutex> lock(read_mu_);
  std::map<std::string, KeyEventStat> by_name;
  for (const auto& n : names) by_name[n].name = n;
  FERRY_RETURN_IF_ERROR(ScanOrdered(project, INT32_MIN, as_of_day, person, "", ex, [&](ActivityRow&& a) {
    auto it = by_name.find(a.name);
    if (it == by_name.end()) return;
    ++it->second.count;
    it->second.last_ms = std::max(it->second.last_ms, a.ts_ms);
  }));
  std::vector<KeyEventStat> out;
  for (const auto& n : names) out.push_back(by_name[n]);
  return out;
}

}  // namespace ferry::insight
