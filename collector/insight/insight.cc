#include "collector/insight/insight.h"

#include <algorithm>
#include <mutex>

#include "collector/insight/normalize.h"
#include "collector/insight/scoring.h"

namespace ferry::insight {

using base::Result;
using base::Status;
using nlohmann::json;

namespace {

constexpr size_t kBackfillBatch = 20000;

bool Allows(const std::vector<PersonPrivacy>& p, size_t i, bool marketing) {
  if (i >= p.size()) return false;
  return marketing ? p[i].AllowsMarketing() : p[i].AllowsPersonalization();
}

}  // namespace

Insight::Insight(Options o, std::unique_ptr<Engine> e, TagSet t)
    : opts_(std::move(o)), engine_(std::move(e)), tags_(std::move(t)) {
  if (opts_.clock == nullptr) opts_.clock = base::SystemClock();
}

Result<std::unique_ptr<Insight>> Insight::Open(Options options, std::unique_ptr<Engine> engine) {
  if (engine == nullptr) return Status::InvalidArgument("insight: no engine");
  if (options.privacy == nullptr) return Status::InvalidArgument("insight: a privacy view is required");
  FERRY_RETURN_IF_ERROR(options.config.Validate());
  auto tags = TagSet::Parse(options.config.tags);
  if (!tags.ok()) return tags.status();
  std::unique_ptr<Insight> in(new Insight(std::move(options), std::move(engine), std::move(tags.value())));
  auto restricted = in->engine_->LoadRestrictions();
  if (!restricted.ok()) return restricted.status().Annotate("insight: loading restrictions");
  for (auto& [project, id] : restricted.value()) in->restricted_[project].insert(id);
  FERRY_RETURN_IF_ERROR(in->Backfill());
  return in;
}

int32_t Insight::Today() { return DayOf(opts_.clock->NowMs(), opts_.config.tz_offset_minutes); }

InsightStats Insight::Stats() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

FeatureParams Insight::Params(int32_t as_of_day) const { return ParamsFor(opts_.config, as_of_day); }

FeatureParams ParamsFor(const InsightConfig& c, int32_t as_of_day) {
  FeatureParams p;
  p.as_of_day = as_of_day;
  p.value_event = c.value_event;
  p.value_prop = c.value_prop;
  p.invite_event = c.invite_event;
  p.activation_event = c.lifecycle.activation_event;
  p.activation_within_days = c.lifecycle.activation_within_days;
  p.churned_days = c.lifecycle.churned_days;
  p.churn_window_days = c.churn.window_days;
  p.rfm_window_days = c.rfm_window_days;
  return p;
}

bool Insight::IsRestricted(const std::string& project, const std::string& a, const std::string& b,
                           const std::string& c) {
  std::shared_lock<std::shared_mutex> lock(restrict_mu_);
  auto it = restricted_.find(project);
  if (it == restricted_.end()) return false;
  return it->second.count(a) > 0 || (!b.empty() && it->second.count(b) > 0) || (!c.empty() && it->second.count(c) > 0);
}

void Insight::HitsOf(const ActivityRow& a, const json& props, const std::vector<int>* only, std::vector<HitRow>* out) {
  std::vector<std::pair<int, int64_t>> matched;
  tags_.Match(a.name, props, &matched);
  for (const auto& [leaf, cents] : matched) {
    if (only != nullptr && !std::binary_search(only->begin(), only->end(), leaf)) continue;
    HitRow h;
    h.project = a.project;
    h.person = a.person;
    h.user_id = a.user_id;
    h.anonymous_id = a.anonymous_id;
    h.leaf = tags_.leaves()[static_cast<size_t>(leaf)].id;
    h.message_id = a.message_id;
    h.day = a.day;
    h.value_cents = cents;
    out->push_back(std::move(h));
  }
}

Status Insight::Backfill() {
  if (tags_.leaves().empty()) return Status::Ok();
  auto known = engine_->LoadLeaves();
  if (!known.ok()) return known.status().Annotate("insight: loading leaves");
  std::vector<int> missing;
  std::set<std::string> names;
  std::vector<HitLeaf> to_save;
  for (size_t i = 0; i < tags_.leaves().size(); ++i) {
    const HitLeaf& l = tags_.leaves()[i];
    if (known.value().count(l.id) > 0) continue;
    missing.push_back(static_cast<int>(i));
    names.insert(l.event);
    to_save.push_back(l);
  }
  if (missing.empty()) return Status::Ok();
  WriteBatch batch;
  int64_t scanned = 0;
  Status write_status;
  auto write = [&]() -> Status {
    if (batch.hits.empty()) return Status::Ok();
    Status st = engine_->Write(std::move(batch));
    if (st.Is(base::Code::kUnavailable)) {  // a full sink queue: let it drain, then once more
      FERRY_RETURN_IF_ERROR(engine_->Flush(600000));
      return Status::Unavailable("insight backfill: the engine's queue stayed full");
    }
    batch = WriteBatch();
    return st;
  };
  Status scan = engine_->ScanEvents("", names, {}, [&](const ActivityRow& a) {
    ++scanned;
    if (IsRestricted(a.project, a.person, a.user_id, a.anonymous_id)) return true;
    json props = json::parse(a.props, nullptr, false);
    if (props.is_discarded()) return true;
    HitsOf(a, props, &missing, &batch.hits);
    if (batch.hits.size() >= kBackfillBatch) {
      write_status = write();
      if (!write_status.ok()) return false;
    }
    return true;
  });
  FERRY_RETURN_IF_ERROR(scan);
  FERRY_RETURN_IF_ERROR(write_status);
  FERRY_RETURN_IF_ERROR(write());
  FERRY_RETURN_IF_ERROR(engine_->Flush(600000));
  FERRY_RETURN_IF_ERROR(engine_->SaveLeaves(to_save));
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.backfilled_events += scanned;
  return Status::Ok();
}

Status Insight::Accept(const std::vector<InsightEvent>& events) {
  WriteBatch b;
  b.events.reserve(events.size());
  std::map<std::string, int64_t> skipped;
  int64_t restricted_skips = 0;
  for (const InsightEvent& e : events) {
    b.max_seq = std::max(b.max_seq, e.seq);
    Normalized n = Normalize(e, opts_.config);
    if (n.kind == Normalized::Kind::kSkip) {
      ++skipped[n.skip_reason];
      continue;
    }
    if (n.kind == Normalized::Kind::kIdentify) {
      for (auto& t : n.traits) b.traits.push_back(std::move(t));
      continue;
    }
    if (IsRestricted(n.activity.project, n.activity.person, n.activity.user_id, n.activity.anonymous_id)) {
      ++restricted_skips;  // stored (restriction keeps data) but not processed into hits
    } else if (tags_.Uses(n.activity.name)) {
      HitsOf(n.activity, PropsOf(n), nullptr, &b.hits);
    }
    b.events.push_back(std::move(n.activity));
  }
  const int64_t hits = static_cast<int64_t>(b.hits.size());
  Status st = engine_->Write(std::move(b));
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.accepted += static_cast<int64_t>(events.size());
  for (const auto& [k, v] : skipped) stats_.skipped[k] += v;
  stats_.hits += hits;
  stats_.restricted_skipped_hits += restricted_skips;
  return st;
}

Status Insight::PurgeExpired(int64_t now_ms, int64_t default_max_age_ms,
                             const std::map<std::string, int64_t>& max_age_ms) {
  auto projects = engine_->Projects();
  if (!projects.ok()) return projects.status();
  for (const std::string& p : *projects) {
    auto it = max_age_ms.find(p);
    const int64_t age = it != max_age_ms.end() ? it->second : default_max_age_ms;
    if (age <= 0) continue;
    // The day of the newest expired millisecond: every event older than the cutoff is on it or before.
    const int32_t last_day = DayOf(now_ms - age - 1, opts_.config.tz_offset_minutes);
    FERRY_RETURN_IF_ERROR(engine_->PurgeThrough(p, last_day));
  }
  return Status::Ok();
}

Status Insight::Erase(const std::string& project, const std::vector<std::string>& ids) {
  FERRY_RETURN_IF_ERROR(engine_->Erase(project, ids));
  std::unique_lock<std::shared_mutex> lock(restrict_mu_);
  auto it = restricted_.find(project);
  if (it != restricted_.end()) {
    for (const auto& id : ids) it->second.erase(id);
  }
  return Status::Ok();
}

Status Insight::Restrict(const std::string& project, const std::vector<std::string>& ids) {
  {
    std::unique_lock<std::shared_mutex> lock(restrict_mu_);
    for (const auto& id : ids) {
      if (!id.empty()) restricted_[project].insert(id);
    }
  }
  return engine_->SaveRestriction(project, ids, true);
}

Status Insight::Lift(const std::string& project, const std::vector<std::string>& ids) {
  {
    std::unique_lock<std::shared_mutex> lock(restrict_mu_);
    auto it = restricted_.find(project);
    if (it != restricted_.end()) {
      for (const auto& id : ids) it->second.erase(id);
    }
  }
  FERRY_RETURN_IF_ERROR(engine_->SaveRestriction(project, ids, false));
  if (tags_.leaves().empty()) return Status::Ok();
  // The person's hits were not computed while restricted: compute them from the stored events (idempotent).
  WriteBatch batch;
  std::set<std::string> idset;
  for (const auto& id : ids) {
    if (!id.empty()) idset.insert(id);
  }
  if (idset.empty()) return Status::Ok();
  FERRY_RETURN_IF_ERROR(engine_->ScanEvents(project, {}, idset, [&](const ActivityRow& a) {
    if (IsRestricted(a.project, a.person, a.user_id, a.anonymous_id)) return true;
    json props = json::parse(a.props, nullptr, false);
    if (!props.is_discarded()) HitsOf(a, props, nullptr, &batch.hits);
    return true;
  }));
  return engine_->Write(std::move(batch));
}

Status Insight::Flush(int64_t timeout_ms) { return engine_->Flush(timeout_ms); }

Status Insight::Maintain() { return engine_->Maintain(); }

Result<Exclusion> Insight::BuildExclusion(const std::string& project) {
  Exclusion ex;
  auto excluded = opts_.privacy->ExcludedFromAnalytics(project);
  if (!excluded.ok()) return excluded.status().Annotate("insight: privacy view");
  for (auto& id : excluded.value()) ex.ids.insert(std::move(id));
  std::shared_lock<std::shared_mutex> lock(restrict_mu_);
  auto it = restricted_.find(project);
  if (it != restricted_.end()) ex.ids.insert(it->second.begin(), it->second.end());
  return ex;
}

// ---- Questions ----

Result<Insight::Population> Insight::LoadPopulation(const std::string& project, const FeatureParams& params,
                                                    const std::vector<std::string>& persons) {
  Population pop;
  auto ex = BuildExclusion(project);
  if (!ex.ok()) return ex.status();
  pop.ex = std::move(ex.value());
  auto feats = engine_->Features(project, params, persons, pop.ex);
  if (!feats.ok()) return feats.status();
  pop.features = std::move(feats.value());
  std::vector<std::string> ids;
  ids.reserve(pop.features.size());
  for (const auto& f : pop.features) ids.push_back(f.person);
  auto priv = opts_.privacy->Lookup(project, ids);
  if (!priv.ok()) return priv.status();
  pop.privacy = std::move(priv.value());
  return pop;
}

Result<Profile> Insight::GetProfile(const std::string& project, const std::string& person, int32_t as_of_day) {
  const int32_t D = AsOf(as_of_day);
  auto ex = BuildExclusion(project);
  if (!ex.ok()) return ex.status();
  if (ex->ids.count(person) > 0) {
    return Status::FailedPrecondition("the person's data is restricted or they object to its use");
  }
  auto priv = opts_.privacy->Lookup(project, {person});
  if (!priv.ok()) return priv.status();
  const PersonPrivacy pp = priv->empty() ? PersonPrivacy{} : priv->front();
  if (!pp.AllowsAnalytics())
    return Status::FailedPrecondition("the person's data is restricted or they object to its use");
  const FeatureParams params = Params(D);
  auto feats = engine_->Features(project, params, {person}, ex.value());
  if (!feats.ok()) return feats.status();
  if (feats->empty()) return Status::NotFound("no activity of this person in the insight");
  const PersonFeatures f = feats->front();
  Profile p;
  p.project = project;
  p.person = person;
  p.as_of_day = D;
  p.first_seen_ms = f.first_ms;
  p.last_seen_ms = f.last_ms;
  p.events = f.events;
  p.active_days = f.active_days;
  p.sessions = f.sessions;
  p.channels = f.channels;
  p.source = f.source;
  p.campaign = f.campaign;
  auto keys = engine_->KeyEvents(project, person, opts_.config.key_events, D, ex.value());
  if (!keys.ok()) return keys.status();
  p.key_events = std::move(keys.value());
  auto traits = engine_->Traits(project, D, {person}, ex.value());
  if (!traits.ok()) return traits.status();
  if (auto it = traits->find(person); it != traits->end()) p.traits = it->second;
  if (!pp.AllowsPersonalization()) {
    p.personalized = false;
    p.withheld_reason = pp.objects_personalization ? "the person objects to personalised treatment"
                                                   : "personalization consent is not granted";
    return p;
  }
  p.personalized = true;
  p.lifecycle = LifecycleStage(f, D, opts_.config.lifecycle);
  p.churn = ChurnScore(f, D, opts_.config.churn);
  std::vector<PersonFeatures> fv = {f};
  auto tags = EvaluateTags(project, D, {person}, "", ex.value(), &fv);
  if (!tags.ok()) return tags.status();
  if (auto it = tags->find(person); it != tags->end()) p.tags = it->second;
  if (InRfmPopulation(f)) {
    auto th = engine_->Thresholds(project, params, ex.value());
    if (!th.ok()) return th.status();
    if (th->population >= opts_.config.min_cohort_size) {
      p.has_rfm = true;
      p.rfm = ScoreRfm(person, RfmMetricsOf(f, D, params.rfm_window_days), th.value());
    }
  }
  return p;
}

Result<RetentionTable> Insight::Retention(RetentionQuery q) {
  q.as_of_day = AsOf(q.as_of_day);
  if (q.periods < 1 || q.periods > 60) return Status::InvalidArgument("retention: periods 1-60");
  const int32_t len = q.granularity == Granularity::kDay ? 1 : 7;
  if (q.to_day <= 0) q.to_day = q.as_of_day;
  if (q.from_day <= 0) q.from_day = q.to_day - q.periods * len + 1;
  if (q.from_day > q.to_day) return Status::InvalidArgument("retention: from_day after to_day");
  auto ex = BuildExclusion(q.project);
  if (!ex.ok()) return ex.status();
  auto rows = engine_->Retention(q, opts_.config.value_event, ex.value());
  if (!rows.ok()) return rows.status();
  const int32_t current = q.granularity == Granularity::kDay ? q.as_of_day : WeekOf(q.as_of_day);
  RetentionTable t;
  for (auto& r : rows.value()) {
    RetentionRow out;
    out.cohort_start_day = q.granularity == Granularity::kDay ? r.cohort : WeekStartDay(r.cohort);
    out.source = r.source;
    out.campaign = r.campaign;
    if (r.size < opts_.config.min_cohort_size) {
      out.suppressed = true;
      ++t.suppressed_rows;
    } else {
      out.size = r.size;
      out.converted = r.converted;
      out.counts = r.counts;
      for (size_t k = 0; k < out.counts.size(); ++k) {
        if (r.cohort + static_cast<int32_t>(k) > current) out.counts[k] = -1;
      }
    }
    t.rows.push_back(std::move(out));
  }
  return t;
}

Result<FunnelReport> Insight::Funnel(FunnelQuery q) {
  q.as_of_day = AsOf(q.as_of_day);
  if (q.steps.size() < 2 || q.steps.size() > 10) return Status::InvalidArgument("funnel: 2-10 steps");
  std::set<std::string> distinct(q.steps.begin(), q.steps.end());
  if (distinct.size() != q.steps.size() || distinct.count("") > 0) {
    return Status::InvalidArgument("funnel: step names must be distinct and non-empty");
  }
  if (q.window_seconds < 1 || q.window_seconds > 366LL * 86400) {
    return Status::InvalidArgument("funnel: window_seconds 1 to 366 days");
  }
  if (q.to_day <= 0) q.to_day = q.as_of_day;
  if (q.from_day <= 0) q.from_day = q.to_day - 29;
  if (q.from_day > q.to_day) return Status::InvalidArgument("funnel: from_day after to_day");
  auto ex = BuildExclusion(q.project);
  if (!ex.ok()) return ex.status();
  auto rows = engine_->Funnel(q, ex.value());
  if (!rows.ok()) return rows.status();
  FunnelReport rep;
  for (auto& r : rows.value()) {
    if (r.counts.empty() || r.counts[0] < opts_.config.min_cohort_size) {
      r.suppressed = true;
      r.counts.clear();
      ++rep.suppressed_rows;
    }
    rep.rows.push_back(std::move(r));
  }
  return rep;
}

Result<RfmReport> Insight::Rfm(RfmQuery q) {
  const int32_t D = AsOf(q.as_of_day);
  FeatureParams params = Params(D);
  if (q.window_days > 0) params.rfm_window_days = q.window_days;
  if (!q.value_event.empty()) params.value_event = q.value_event;
  if (!q.value_prop.empty()) params.value_prop = q.value_prop;
  if (!q.invite_event.empty()) params.invite_event = q.invite_event;
  if (params.rfm_window_days > 3660) return Status::InvalidArgument("rfm: window_days 1-3660");
  auto pop = LoadPopulation(q.project, params, {});
  if (!pop.ok()) return pop.status();
  std::vector<RfmValues> values;
  std::vector<size_t> index;  // into pop->features
  for (size_t i = 0; i < pop->features.size(); ++i) {
    if (!InRfmPopulation(pop->features[i])) continue;
    values.push_back(RfmMetricsOf(pop->features[i], D, params.rfm_window_days));
    index.push_back(i);
  }
  RfmReport rep;
  rep.thresholds = ComputeThresholds(values);
  if (rep.thresholds.population < opts_.config.min_cohort_size) {
    rep.suppressed = true;
    rep.thresholds = RfmThresholds{};
    return rep;
  }
  rep.distribution.assign(kRfmMetricCount, std::vector<int64_t>(5, 0));
  std::vector<RfmRow> all;
  all.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    all.push_back(ScoreRfm(pop->features[index[i]].person, values[i], rep.thresholds));
    for (int m = 0; m < kRfmMetricCount; ++m)
      ++rep.distribution[static_cast<size_t>(m)][static_cast<size_t>(all.back().scores[m] - 1)];
  }
  for (auto& d : rep.distribution) {
    for (auto& n : d) {
      if (n > 0 && n < opts_.config.min_cohort_size) n = -1;
    }
  }
  for (size_t i = 0; i < all.size(); ++i) {
    if (Allows(pop->privacy, index[i], false)) {
      rep.rows.push_back(std::move(all[i]));
    } else {
      ++rep.withheld;
    }
  }
  return rep;
}

Result<LifecycleReport> Insight::Lifecycle(const std::string& project, int32_t as_of_day) {
  const int32_t D = AsOf(as_of_day);
  auto pop = LoadPopulation(project, Params(D), {});
  if (!pop.ok()) return pop.status();
  const std::vector<PersonFeatures>& feats = pop->features;
  LifecycleReport rep;
  for (const char* s : {"new", "activated", "retained", "converted", "referring", "dormant", "churned", "won_back"}) {
    rep.counts[s] = 0;
  }
  for (size_t i = 0; i < feats.size(); ++i) {
    StageResult st = LifecycleStage(feats[i], D, opts_.config.lifecycle);
    ++rep.counts[st.stage];
    if (Allows(pop->privacy, i, false)) {
      rep.persons.emplace_back(feats[i].person, std::move(st));
    } else {
      ++rep.withheld;
    }
  }
  for (auto& [stage, n] : rep.counts) {
    if (n > 0 && n < opts_.config.min_cohort_size) n = -1;
  }
  return rep;
}

Result<std::map<std::string, std::vector<AppliedTag>>> Insight::EvaluateTags(const std::string& project, int32_t as_of,
                                                                             const std::vector<std::string>& persons,
                                                                             const std::string& only_tag,
                                                                             const Exclusion& ex,
                                                                             std::vector<PersonFeatures>* features) {
  std::map<std::string, std::vector<AppliedTag>> out;
  const TagDef* only = nullptr;
  if (!only_tag.empty()) {
    only = tags_.Find(only_tag);
    if (only == nullptr) return Status::NotFound("no tag named '" + only_tag + "'");
  }
  if (tags_.tags().empty()) return out;
  if (features->empty()) {
    auto feats = engine_->Features(project, Params(as_of), persons, ex);
    if (!feats.ok()) return feats.status();
    *features = std::move(feats.value());
  }
  if (features->empty()) return out;
  // Persons given explicitly are looked up one by one; otherwise every person's rows come in one pass.
  std::vector<std::string> filter = persons;
  auto leaves = engine_->LeafValues(project, as_of, tags_.leaves(), tags_.windows(), filter, ex);
  if (!leaves.ok()) return leaves.status();
  auto traits = engine_->Traits(project, as_of, filter, ex);
  if (!traits.ok()) return traits.status();
  for (const PersonFeatures& f : *features) {
    TagInputs in;
    in.as_of_day = as_of;
    in.features = &f;
    auto li = leaves->find(f.person);
    in.leaves = li == leaves->end() ? nullptr : &li->second;
    auto ti = traits->find(f.person);
    in.traits = ti == traits->end() ? nullptr : &ti->second;
    for (const TagDef& t : tags_.tags()) {
      if (only != nullptr && &t != only) continue;
      std::string reason;
      if (tags_.Evaluate(t, in, &reason)) out[f.person].push_back({t.name, std::move(reason)});
    }
  }
  return out;
}

Result<std::vector<PersonTags>> Insight::Tags(const std::string& project, int32_t as_of_day,
                                              const std::vector<std::string>& persons) {
  const int32_t D = AsOf(as_of_day);
  auto pop = LoadPopulation(project, Params(D), persons);
  if (!pop.ok()) return pop.status();
  std::vector<PersonFeatures> allowed;
  for (size_t i = 0; i < pop->features.size(); ++i) {
    if (Allows(pop->privacy, i, false)) allowed.push_back(std::move(pop->features[i]));
  }
  std::vector<PersonTags> out;
  if (allowed.empty()) return out;
  auto tags = EvaluateTags(project, D, persons, "", pop->ex, &allowed);
  if (!tags.ok()) return tags.status();
  for (auto& [person, applied] : tags.value()) out.push_back({person, std::move(applied)});
  return out;
}

Result<ChurnReport> Insight::Churn(const std::string& project, int32_t as_of_day) {
  const int32_t D = AsOf(as_of_day);
  auto pop = LoadPopulation(project, Params(D), {});
  if (!pop.ok()) return pop.status();
  ChurnReport rep;
  for (size_t i = 0; i < pop->features.size(); ++i) {
    if (!Allows(pop->privacy, i, false)) {
      ++rep.withheld;
      continue;
    }
    rep.persons.emplace_back(pop->features[i].person, ChurnScore(pop->features[i], D, opts_.config.churn));
  }
  return rep;
}

Result<Audience> Insight::ExportAudience(AudienceQuery q) {
  const int sources = (!q.tag.empty() ? 1 : 0) + (!q.stage.empty() ? 1 : 0) + (q.min_churn_risk >= 0 ? 1 : 0);
  if (sources != 1) return Status::InvalidArgument("audience: exactly one of tag, stage, min_churn_risk");
  if (q.name.empty()) return Status::InvalidArgument("audience: a name is required");
  if (!opts_.audit) return Status::FailedPrecondition("audience: no audit hook configured");
  if (!q.tag.empty() && tags_.Find(q.tag) == nullptr) return Status::NotFound("no tag named '" + q.tag + "'");
  const int32_t D = AsOf(q.as_of_day);
  // Consent is read now, at export time; persons who may not be profiled are not even evaluated.
  auto pop = LoadPopulation(q.project, Params(D), {});
  if (!pop.ok()) return pop.status();
  Audience a;
  std::vector<PersonFeatures> eligible;
  std::vector<bool> marketing;
  for (size_t i = 0; i < pop->features.size(); ++i) {
    if (!Allows(pop->privacy, i, false)) {
      ++a.skipped_no_personalization;
      continue;
    }
    marketing.push_back(Allows(pop->privacy, i, true));
    eligible.push_back(std::move(pop->features[i]));
  }
  std::map<std::string, std::string> matched;  // person -> reason
  if (!q.tag.empty() && !eligible.empty()) {
    std::vector<PersonFeatures> fv = eligible;
    auto tags = EvaluateTags(q.project, D, {}, q.tag, pop->ex, &fv);
    if (!tags.ok()) return tags.status();
    for (auto& [person, applied] : tags.value()) {
      if (!applied.empty()) matched[person] = "tag " + q.tag + ": " + applied.front().reason;
    }
  }
  for (const PersonFeatures& f : eligible) {
    if (!q.stage.empty()) {
      StageResult st = LifecycleStage(f, D, opts_.config.lifecycle);
      if (st.stage == q.stage) matched[f.person] = "lifecycle stage " + st.stage + ": " + st.reason;
    } else if (q.min_churn_risk >= 0) {
      ChurnRisk r = ChurnScore(f, D, opts_.config.churn);
      if (r.score >= q.min_churn_risk) {
        std::string why = "churn risk " + std::to_string(r.score);
        for (size_t i = 0; i < r.factors.size(); ++i) why += (i == 0 ? ": " : "; ") + r.factors[i].text;
        matched[f.person] = why;
      }
    }
  }
  for (size_t i = 0; i < eligible.size(); ++i) {
    auto it = matched.find(eligible[i].person);
    if (it == matched.end()) continue;
    ++a.matched;
    if (!marketing[i]) {
      ++a.skipped_no_marketing;
      continue;
    }
    a.members.push_back({it->first, it->second});
  }
  json detail = {{"name", q.name},
                 {"as_of_day", D},
                 {"exported", a.members.size()},
                 {"matched", a.matched},
                 {"skipped_no_marketing", a.skipped_no_marketing},
                 {"skipped_no_personalization", a.skipped_no_personalization}};
  if (!q.tag.empty()) detail["tag"] = q.tag;
  if (!q.stage.empty()) detail["stage"] = q.stage;
  if (q.min_churn_risk >= 0) detail["min_churn_risk"] = q.min_churn_risk;
  Status audited = opts_.audit(AuditRecord{"insight.audience.export", q.project, Canonical(detail)});
  if (!audited.ok()) return audited.Annotate("audience export not audited, so not exported");
  return a;
}

}  // namespace ferry::insight
