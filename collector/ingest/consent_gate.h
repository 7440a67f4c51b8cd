// Consent enforcement at ingest (issue 12): the verdict for each event of a
// batch from its person's consent records (collector/store/consent_policy.h for
// the rules), before the batch goes to the group commit. In a project that
// enforces, a refused event is not stored; in report-only, it is stored and
// only counted. Either way the refusals are counted per reason (GET /metrics),
// and the batch's answer does not tell them apart from accepted events: a write
// key ships inside every app, and an answer that differed would tell its holder
// another person's choices.
#ifndef FERRY_COLLECTOR_INGEST_CONSENT_GATE_H_
#define FERRY_COLLECTOR_INGEST_CONSENT_GATE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "collector/store/consent_policy.h"
#include "collector/store/interfaces.h"
#include "collector/store/records.h"
#include "lib/base/status.h"

namespace ferry::collector {

struct ConsentGateResult {
  bool enforced = false;                   // the project enforces (refused events were taken out
                                           // of the batch)
  std::map<std::string, int64_t> refused;  // reason -> events
};

// Judges `events` (one project's batch, in batch order) and, when the project
// enforces, removes the refused ones. The batch's own consent records count for
// its events (a record and the events it admits often travel together).
// `default_mode` applies to a project without a policy of its own. Fails
// (nothing removed) when the store fails.
base::Result<ConsentGateResult> ApplyConsentGate(ConsentLedger& ledger, int64_t project_id,
                                                 const std::string& default_mode, std::vector<StoredEvent>* events);

// The people the gate judges: each (userId, anonymousId) of the batch's events other than consent records, once, in
// batch order (empty: nothing to judge, nothing to read).
std::vector<std::pair<std::string, std::string>> ConsentGatePeople(const std::vector<StoredEvent>& events);

// ApplyConsentGate with its reads already made (IngestGateSource::ReadIngestGate of `people`, which is
// ConsentGatePeople(*events)).
base::Result<ConsentGateResult> JudgeConsent(const IngestGateInput& in,
                                             const std::vector<std::pair<std::string, std::string>>& people,
                                             const std::string& default_mode, std::vector<StoredEvent>* events);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_INGEST_CONSENT_GATE_H_
