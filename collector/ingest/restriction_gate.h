// Restriction of processing at ingest (issue 13): new events of a subject whose processing is restricted, or who
// objected, for the event's purpose (collector/store/records.h RestrictionRecord). Per project (its restriction mode):
// "quarantine" keeps them (stored, counted, and excluded from every analytics and downstream path by the restriction
// itself, like the subject's older events, until it is lifted) or "refuse" takes them out of the batch (counted). An
// objection to direct marketing refuses its marketing events in either mode. The batch's answer counts refused events
// as accepted, like the consent gate's (docs/SECURITY.md): a write key's holder learns nothing of anyone's rights.
#ifndef FERRY_COLLECTOR_INGEST_RESTRICTION_GATE_H_
#define FERRY_COLLECTOR_INGEST_RESTRICTION_GATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "collector/store/interfaces.h"
#include "collector/store/records.h"
#include "lib/base/status.h"

namespace ferry::collector {

struct RestrictionGateResult {
  int64_t quarantined = 0;  // kept, excluded by the restriction
  int64_t refused = 0;      // taken out of the batch
};

// Judges `events` (one project's batch) against the project's restrictions in force; removes the refused ones. One
// read when the project has none. Fails (nothing removed) when the store fails.
base::Result<RestrictionGateResult> ApplyRestrictionGate(Restrictions& restrictions, int64_t project_id,
                                                         std::vector<StoredEvent>* events);

// ApplyRestrictionGate with its reads already made: the project's rows in force and its mode (IngestGateSource).
RestrictionGateResult JudgeRestrictions(const std::vector<RestrictionRecord>& rows, const std::string& mode,
                                        std::vector<StoredEvent>* events);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_INGEST_RESTRICTION_GATE_H_
