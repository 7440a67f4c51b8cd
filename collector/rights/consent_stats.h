// Consent statistics (issue 12 item 9): opt-in and opt-out rates per purpose and notice version over time, from the
// consent ledger. For each bucket (a UTC day, or an ISO week starting on Monday), purpose and notice version, each
// subject (a record's userId, else its anonymousId) counts once, with the state of its latest record of that purpose
// in the bucket (latest by time, then by insertion order): granted, denied or pending. Records of other states are
// left out. The rates are the shares of the subjects counted (granted / subjects, denied / subjects).
#ifndef FERRY_COLLECTOR_RIGHTS_CONSENT_STATS_H_
#define FERRY_COLLECTOR_RIGHTS_CONSENT_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "collector/rights/documents.h"
#include "collector/store/records.h"

namespace ferry::collector::rights {

struct ConsentStatsRow {
  std::string bucket;          // the bucket's first day, YYYY-MM-DD
  std::string purpose;         //
  std::string notice_version;  // "" when the records carry none
  int64_t granted = 0, denied = 0, pending = 0;
};

struct ConsentStats {
  std::string project, bucket;
  int64_t from_ms = 0, to_ms = 0;
  std::vector<ConsentStatsRow> rows;  // by bucket, purpose, notice version
};

// The figures of `records` (any order; ties of time keep their order), in buckets of a day or (weekly) a week.
std::vector<ConsentStatsRow> ComputeConsentStats(const std::vector<ConsentRecord>& records, bool weekly);

// The first day (YYYY-MM-DD, UTC) of the bucket holding epoch_ms.
std::string BucketOf(int64_t epoch_ms, bool weekly);

// The answer of GET /v1/projects/{project}/consent/stats (docs/PROTOCOL.md).
Json ConsentStatsDocument(const ConsentStats& stats);

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_CONSENT_STATS_H_
