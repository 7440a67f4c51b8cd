#include "collector/analysis/wiring.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "collector/insight/clickhouse_engine.h"
#include "collector/insight/embedded_engine.h"
#include "platform/platform.h"
#include "platform/thread_priority.h"

namespace ferry::collector::analysis {

using base::Result;
using base::Status;
using nlohmann::json;

Result<std::vector<insight::PersonPrivacy>> StorePrivacyView::Lookup(const std::string& project,
                                                                     const std::vector<std::string>& persons) {
  std::vector<insight::PersonPrivacy> out(persons.size());
  std::vector<RestrictionRecord> rows;
  if (restrictions_ != nullptr) {
    auto in_force = restrictions_->ActiveRestrictionsOf(project);
    if (!in_force.ok()) return in_force.status();
    rows = std::move(in_force).value();
  }
  for (size_t i = 0; i < persons.size(); ++i) {
    auto found = graph_->FindSubject(SubjectQuery{project, persons[i]});
    if (!found.ok()) return found.status();
    if (found->empty()) continue;
    for (const ConsentState& c : found->front().consent) {
      bool granted = c.state == "granted";
      if (c.purpose == "personalization") out[i].personalization = granted;
      if (c.purpose == "marketing") out[i].marketing = granted;
      if (c.purpose == "analytics" && c.state == "denied") out[i].objects_analytics = true;
    }
  }
  for (size_t i = 0; i < persons.size(); ++i) {
    for (const RestrictionRecord& r : rows) {
      if (r.subject_id != persons[i]) continue;
      if (r.Covers("analytics")) out[i].restricted = true;
      if (r.Covers("personalization")) out[i].objects_personalization = true;
      if (r.Covers("marketing")) out[i].objects_marketing = true;
    }
  }
  return out;
}

Result<std::vector<std::string>> StorePrivacyView::ExcludedFromAnalytics(const std::string& project) {
  auto ids = ledger_->IdsWithLatestConsent(project, "analytics", "denied");
  if (!ids.ok() || restrictions_ == nullptr) return ids;
  auto rows = restrictions_->ActiveRestrictionsOf(project);
  if (!rows.ok()) return rows.status();
  for (const RestrictionRecord& r : *rows) {
    if (r.Covers("analytics")) ids->push_back(r.subject_id);
  }
  return ids;
}

Status FollowRestriction(insight::Insight* insight, Restrictions* restrictions, const std::string& project,
                         const std::vector<std::string>& ids, const std::vector<std::string>& purposes,
                         bool restricted) {
  auto reaches = [insight](const std::vector<std::string>& covered) {
    if (covered.empty()) return true;
    for (const std::string& p : covered) {
      if (insight->config().UsesPurpose(p)) return true;
    }
    return false;
  };
  if (!reaches(purposes)) return Status::Ok();
  if (restricted) return insight->Restrict(project, ids);
  // Lifted: only the ids no other restriction in force still keeps out of the insight.
  auto rows = restrictions->ActiveRestrictionsOf(project);
  if (!rows.ok()) return rows.status();
  std::set<std::string> still;
  for (const RestrictionRecord& r : *rows) {
    if (reaches(r.purposes)) still.insert(r.subject_id);
  }
  std::vector<std::string> lift;
  for (const std::string& id : ids) {
    if (still.count(id) == 0) lift.push_back(id);
  }
  return lift.empty() ? Status::Ok() : insight->Lift(project, lift);
}

namespace {

bool UsedType(const std::string& type) { return type == "track" || type == "screen" || type == "identify"; }

}  // namespace

insight::InsightEvent ToInsightEvent(const std::string& project, StoredEvent&& e, int64_t seq) {
  insight::InsightEvent ev;
  ev.project = project;
  ev.seq = seq;
  ev.message_id = std::move(e.message_id);
  ev.type = std::move(e.type);
  ev.user_id = std::move(e.user_id);
  ev.anonymous_id = std::move(e.anonymous_id);
  ev.name = std::move(e.name);
  ev.purpose = std::move(e.purpose);
  ev.timestamp_ms = e.timestamp_ms;
  ev.received_ms = e.received_ms;
  if (e.insight.set) {
    // Ingest read what the insight needs from its own parse: the body stays with the request (and is freed by the
    // thread that made it).
    StoredEvent::InsightFields& f = e.insight;
    ev.preread = true;
    ev.props = std::move(f.props);
    ev.session = std::move(f.session_id);
    ev.channel = std::move(f.channel);
    ev.app_name = std::move(f.app_name);
    ev.source = std::move(f.campaign_source);
    ev.campaign = std::move(f.campaign_name);
  } else {
    ev.body = std::move(e.body);
  }
  return ev;
}

insight::InsightEvent ToInsightEvent(const EventRow& e) {
  insight::InsightEvent ev;
  ev.project = e.project;
  ev.seq = e.seq;
  ev.message_id = e.message_id;
  ev.type = e.type;
  ev.user_id = e.user_id;
  ev.anonymous_id = e.anonymous_id;
  ev.name = e.name;
  ev.purpose = e.purpose;
  ev.timestamp_ms = e.timestamp_ms;
  ev.received_ms = e.received_ms;
  ev.body = e.body;
  return ev;
}

InsightFeed::InsightFeed(IngestSink* inner, EventFeedSource* source, insight::Insight* insight, base::Logger log,
                         FeedOptions options)
    : inner_(inner), source_(source), insight_(insight), log_(std::move(log)), o_(std::move(options)) {}

InsightFeed::~InsightFeed() { (void)Stop(0); }

Status InsightFeed::Start() {
  if (!o_.position_file.empty()) {
    auto text = platform::ReadSmallFile(o_.position_file, 4096);
    if (text.ok()) {
      json j = json::parse(*text, nullptr, false);
      if (!j.is_object() || !j.contains("seq") || !j["seq"].is_number_integer()) {
        log_.Warn("insight: " + o_.position_file + " is not a feed position; replaying the whole store");
      } else if (j.value("engine", "") != o_.engine_key) {
        log_.Info("insight: the feed position belongs to another engine; replaying the whole store");
      } else {
        saved_ = handed_ = j["seq"].get<int64_t>();
      }
    } else if (text.status().code() != base::Code::kNotFound) {
      return text.status();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return Status::Ok();
  started_ = true;
  replaying_ = true;
  log_.Info("insight: feed replays the store's events after " + std::to_string(handed_));
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

Status InsightFeed::Insert(std::vector<InsertRequest*>& requests) {
  std::lock_guard<std::mutex> inserting(insert_mu_);
  Status s = inner_->Insert(requests);
  if (!s.ok()) return s;
  std::vector<insight::InsightEvent>& taken = taken_;  // reused: its capacity stays (no reallocation per commit)
  taken.clear();
  for (InsertRequest* r : requests) {
    for (size_t i = 0; i < r->events.size() && i < r->outcomes.size() && i < r->seqs.size(); ++i) {
      if (r->outcomes[i] != InsertOutcome::kAccepted || !UsedType(r->events[i].type)) continue;
      taken.push_back(ToInsightEvent(r->project, std::move(r->events[i]), r->seqs[i]));
    }
  }
  if (taken.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  last_committed_ = std::max(last_committed_, taken.back().seq);
  if (!started_ || stop_) return Status::Ok();  // the next start replays them
  if (overflow_ || queue_.size() + taken.size() > o_.max_queue_events) {
    // Never blocks ingest: the feed replays these from the store once it caught up.
    overflow_ = true;
    overflowed_.fetch_add(static_cast<int64_t>(taken.size()));
  } else {
    for (auto& e : taken) queue_.push_back(std::move(e));
  }
  cv_.notify_one();
  return Status::Ok();
}

bool InsightFeed::Deliver(std::vector<insight::InsightEvent>& events) {
  Status a = insight_->Accept(events);
  if (a.ok()) return true;
  failures_.fetch_add(1);
  log_.Warn("insight: " + std::to_string(events.size()) + " events not taken (" + a.ToString() +
            "); they are replayed from the store");
  return false;
}

void InsightFeed::Backoff(int64_t* backoff_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(*backoff_ms), [&] { return stop_; });
  *backoff_ms = std::min(*backoff_ms * 2, o_.retry_max_ms);
}

void InsightFeed::Loop() {
  if (o_.feed_nice > 0) {
    Status st = platform::SetThreadNice(o_.feed_nice);
    if (!st.ok()) log_.Warn("insight: the feed thread keeps the collector's priority: " + st.ToString());
  }
  int64_t backoff = o_.retry_min_ms;
  std::vector<insight::InsightEvent> batch;
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    if (replaying_) {
      if (stop_) break;  // the next start replays from the saved position
      const int64_t from = handed_;
      lock.unlock();
      std::unique_lock<std::mutex> delivering(deliver_mu_);
      auto page = source_->EventsAfter(from, o_.batch_events);
      bool ok = page.ok();
      if (!ok) log_.Warn("insight: reading the store to replay failed: " + page.status().ToString());
      batch.clear();
      if (ok) {
        for (const EventRow& row : *page) {
          if (UsedType(row.type)) batch.push_back(ToInsightEvent(row));
        }
        if (!batch.empty()) ok = Deliver(batch);
      }
      delivering.unlock();
      lock.lock();
      if (!ok) {
        lock.unlock();
        Backoff(&backoff);
        continue;
      }
      backoff = o_.retry_min_ms;
      if (!page->empty()) {
        handed_ = page->back().seq;
        replayed_.fetch_add(static_cast<int64_t>(batch.size()));
      }
      if (page->size() < o_.batch_events) {  // caught up with the store as it was read
        if (overflow_) {
          overflow_ = false;  // dropped more meanwhile: read on
          queue_.clear();
        } else {
          replaying_ = false;  // what the read saw is handed over; the queue holds what committed after it
          caught_up_ = true;
          while (!queue_.empty() && queue_.front().seq <= handed_) queue_.pop_front();
        }
      }
      idle_cv_.notify_all();
      lock.unlock();
      MaybeSave(false);
      continue;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(o_.save_interval_ms),
                 [&] { return stop_ || overflow_ || !queue_.empty(); });
    // Events are taken and delivered under deliver_mu_ (lock order: deliver_mu_, then mu_).
    lock.unlock();
    std::unique_lock<std::mutex> delivering(deliver_mu_);
    lock.lock();
    if (overflow_) {
      overflow_ = false;
      queue_.clear();
      replaying_ = true;
      continue;
    }
    if (queue_.empty()) {
      idle_cv_.notify_all();
      if (stop_) break;
      lock.unlock();
      MaybeSave(false);
      continue;
    }
    batch.clear();
    while (!queue_.empty() && batch.size() < o_.batch_events) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    bool ok = Deliver(batch);
    delivering.unlock();
    lock.lock();
    if (ok) {
      handed_ = std::max(handed_, batch.back().seq);
      backoff = o_.retry_min_ms;
    } else {
      replaying_ = true;  // from handed_: this batch and everything after it come back from the store
      queue_.clear();
    }
    idle_cv_.notify_all();
    lock.unlock();
    if (!ok) {
      if (stop_) break;
      Backoff(&backoff);
    }
    MaybeSave(false);
  }
}

void InsightFeed::MaybeSave(bool force) {
  int64_t handed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = base::SystemClock()->MonotonicMs();
    if (!force && now - last_save_ms_ < o_.save_interval_ms) return;
    last_save_ms_ = now;
    handed = handed_;
  }
  // Handed over is not yet stored: the engine's acked_seq says how far its writes reached (ClickHouse: what the
  // server acknowledged; the embedded engine: what it wrote).
  int64_t acked = insight_->engine().Stats().acked_seq;
  int64_t pos = std::max(saved_, std::min(handed, acked));
  if (pos == saved_ || o_.position_file.empty()) return;
  json j = {{"engine", o_.engine_key}, {"seq", pos}};
  Status st = platform::WriteFileAtomic(o_.position_file, j.dump() + "\n");
  if (!st.ok()) {
    log_.Warn("insight: cannot save the feed position: " + st.ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  saved_ = pos;
}

int64_t InsightFeed::position() {
  std::lock_guard<std::mutex> lock(mu_);
  return saved_;
}

bool InsightFeed::WaitHandedOver(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t target = last_committed_;
  return idle_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return (caught_up_ && handed_ >= target) || !started_ || stop_; });
}

Status InsightFeed::Erase(const std::string& project, const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> inserting(insert_mu_);
  std::lock_guard<std::mutex> delivering(deliver_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> gone(ids.begin(), ids.end());
    gone.erase("");
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [&](const insight::InsightEvent& e) {
                                  return e.project == project &&
                                         (gone.count(e.user_id) > 0 || gone.count(e.anonymous_id) > 0);
                                }),
                 queue_.end());
  }
  return insight_->Erase(project, ids);
}

Status InsightFeed::Stop(int64_t timeout_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stop_) return Status::Ok();
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  Status flushed = timeout_ms > 0 ? insight_->Flush(timeout_ms) : Status::Ok();
  MaybeSave(true);
  return flushed;
}

bool InsightEnabled(const std::string& spec) { return !spec.empty() && spec != "off"; }

namespace {

// clickhouse://h:p[,h:p][?k=v&k=v] -> options.
Status ParseClickHouse(const std::string& spec, insight::ClickHouseOptions* o) {
  std::string rest = spec.substr(std::string("clickhouse://").size());
  std::string query;
  if (size_t q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::stringstream hosts(rest);
  for (std::string h; std::getline(hosts, h, ',');) {
    if (h.empty() || h.find('/') != std::string::npos || h.find('@') != std::string::npos) {
      return Status::InvalidArgument("--insight: bad ClickHouse host '" + h + "' (want host:port)");
    }
    o->urls.push_back("http://" + h);
  }
  if (o->urls.empty()) return Status::InvalidArgument("--insight: no ClickHouse host");
  std::stringstream params(query);
  for (std::string kv; std::getline(params, kv, '&');) {
    size_t eq = kv.find('=');
    std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (k == "cluster") {
      o->cluster = v;
    } else if (k == "database") {
      o->database = v;
    } else if (k == "user") {
      o->user = v;
    } else if (!k.empty()) {
      return Status::InvalidArgument("--insight: unknown ClickHouse parameter '" + k + "'");
    }
  }
  if (o->urls.size() > 1 && o->cluster.empty()) {
    return Status::InvalidArgument("--insight: several ClickHouse shards need ?cluster=NAME");
  }
  if (const char* pw = std::getenv("FERRY_INSIGHT_CLICKHOUSE_PASSWORD"); pw != nullptr) {
    std::string_view p(pw);
    o->password = base::SecretBytes(reinterpret_cast<const uint8_t*>(p.data()), p.size());
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<insight::Insight>> OpenInsight(const InsightSetup& setup) {
  insight::Insight::Options options;
  if (!setup.config_file.empty()) {
    std::ifstream in(setup.config_file);
    if (!in) return Status::InvalidArgument("cannot read the insight configuration " + setup.config_file);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded()) return Status::InvalidArgument("the insight configuration is not JSON");
    auto c = insight::InsightConfig::FromJson(j);
    if (!c.ok()) return c.status();
    options.config = std::move(c).value();
  }
  options.privacy = setup.privacy;
  options.audit = setup.audit;
  options.log = setup.log;
  std::unique_ptr<insight::Engine> engine;
  if (setup.spec == "embedded") {
    auto key = platform::LoadOrCreateKey(setup.data_dir + "/insight.key");
    if (!key.ok()) return key.status();
    auto e = insight::EmbeddedEngine::Open(setup.data_dir + "/insight.db", *key);
    if (!e.ok()) return e.status();
    engine = std::move(e).value();
  } else if (setup.spec.rfind("clickhouse://", 0) == 0) {
    insight::ClickHouseOptions o;
    FERRY_RETURN_IF_ERROR(ParseClickHouse(setup.spec, &o));
    o.log = setup.log;
    auto e = insight::ClickHouseEngine::Open(std::move(o));
    if (!e.ok()) return e.status();
    engine = std::move(e).value();
  } else {
    return Status::InvalidArgument("--insight: want off, embedded or clickhouse://host:port[,...]");
  }
  return insight::Insight::Open(std::move(options), std::move(engine));
}

}  // namespace ferry::collector::analysis
