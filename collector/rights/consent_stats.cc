#include "collector/rights/consent_stats.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "collector/rights/rights_service.h"
#include "lib/base/time.h"

namespace ferry::collector::rights {

using base::Result;
using base::Status;

namespace {

constexpr int64_t kDayMs = 24LL * 3600 * 1000;
constexpr int64_t kMaxRangeMs = 400 * kDayMs;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

std::string DayText(int64_t days) {
  int64_t y = 0;
  unsigned m = 0, d = 0;
  base::CivilFromDays(days, &y, &m, &d);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

double Rate(int64_t n, int64_t total) {
  if (total == 0) return 0;
  return static_cast<double>(static_cast<int64_t>(static_cast<double>(n) * 10000 / static_cast<double>(total) + 0.5)) /
         10000;
}

}  // namespace

std::string BucketOf(int64_t epoch_ms, bool weekly) {
  int64_t days = FloorDiv(epoch_ms, kDayMs);
  // 1970-01-01 was a Thursday: (days + 3) mod 7 is the weekday counted from Monday.
  if (weekly) days -= ((days + 3) % 7 + 7) % 7;
  return DayText(days);
}

std::vector<ConsentStatsRow> ComputeConsentStats(const std::vector<ConsentRecord>& records, bool weekly) {
  std::vector<const ConsentRecord*> ordered;
  ordered.reserve(records.size());
  for (const ConsentRecord& r : records) ordered.push_back(&r);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const ConsentRecord* a, const ConsentRecord* b) { return a->timestamp_ms < b->timestamp_ms; });
  // (bucket, purpose, subject) -> the latest record; later ones replace earlier ones.
  std::map<std::tuple<std::string, std::string, std::string>, const ConsentRecord*> latest;
  for (const ConsentRecord* r : ordered) {
    if (r->state != "granted" && r->state != "denied" && r->state != "pending") continue;
    const std::string& subject = r->user_id.empty() ? r->anonymous_id : r->user_id;
    if (subject.empty()) continue;
    latest[std::make_tuple(BucketOf(r->timestamp_ms, weekly), r->purpose, subject)] = r;
  }
  std::map<std::tuple<std::string, std::string, std::string>, ConsentStatsRow> rows;
  for (const auto& entry : latest) {
    const std::string bucket = std::get<0>(entry.first);
    const ConsentRecord* r = entry.second;
    ConsentStatsRow& row = rows[std::make_tuple(bucket, r->purpose, r->notice_version)];
    row.bucket = bucket;
    row.purpose = r->purpose;
    row.notice_version = r->notice_version;
    if (r->state == "granted") ++row.granted;
    if (r->state == "denied") ++row.denied;
    if (r->state == "pending") ++row.pending;
  }
  std::vector<ConsentStatsRow> out;
  out.reserve(rows.size());
  for (auto& entry : rows) out.push_back(std::move(entry.second));
  return out;
}

Json ConsentStatsDocument(const ConsentStats& stats) {
  Json rows = Json::array();
  for (const ConsentStatsRow& r : stats.rows) {
    const int64_t subjects = r.granted + r.denied + r.pending;
    rows.push_back({{"bucket", r.bucket},
                    {"purpose", r.purpose},
                    {"noticeVersion", r.notice_version.empty() ? Json(nullptr) : Json(r.notice_version)},
                    {"subjects", subjects},
                    {"granted", r.granted},
                    {"denied", r.denied},
                    {"pending", r.pending},
                    {"optInRate", Rate(r.granted, subjects)},
                    {"optOutRate", Rate(r.denied, subjects)}});
  }
  return {{"project", stats.project},
          {"bucket", stats.bucket},
          {"from", Iso(stats.from_ms)},
          {"to", Iso(stats.to_ms)},
          {"rows", rows}};
}

Result<ConsentStats> RightsService::ConsentStatsOf(const Actor& actor, const std::string& project,
                                                   const std::string& bucket, int64_t from_ms, int64_t to_ms) {
  const char* action = ActionName(Action::kConsentStats);
  std::string why;
  if (bucket != "day" && bucket != "week") why = "bucket must be day or week";
  if (why.empty() && (to_ms <= from_ms || to_ms - from_ms > kMaxRangeMs)) {
    why = "from must be before to, at most 400 days apart";
  }
  if (!why.empty()) {
    (void)Audit(actor, action, "", "bad_request", Dump(Json{{"project", project.substr(0, 200)}, {"why", why}}));
    return Status::InvalidArgument(why);
  }
  ConsentStats stats;
  stats.project = project;
  stats.bucket = bucket;
  stats.from_ms = from_ms;
  stats.to_ms = to_ms;
  bool found = false;
  std::vector<ConsentRecord> records;
  Status s = stores_.transactions->Transact(TxnMode::kSnapshot, [&](StoreTxn& tx) -> Status {
    records.clear();
    auto p = tx.primitives().Projects(project);
    if (!p.ok()) return p.status();
    found = !project.empty() && !p->empty();
    if (!found) return Status::Ok();
    auto r = tx.primitives().ConsentBetween(p->front().id, from_ms, to_ms);
    if (!r.ok()) return r.status();
    records = std::move(r).value();
    return Status::Ok();
  });
  if (!s.ok()) return s.WithMessage("store unavailable");
  if (!found) {
    (void)Audit(actor, action, "", "not_found", Dump(Json{{"project", project.substr(0, 200)}}));
    return Status::NotFound("no project named " + project.substr(0, 200));
  }
  stats.rows = ComputeConsentStats(records, bucket == "week");
  FERRY_RETURN_IF_ERROR(Audit(actor, action, "", "ok",
                              Dump(Json{{"project", project},
                                        {"bucket", bucket},
                                        {"from", Iso(from_ms)},
                                        {"to", Iso(to_ms)},
                                        {"rows", stats.rows.size()}})));
  return stats;
}

}  // namespace ferry::collector::rights
