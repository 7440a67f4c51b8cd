#include "collector/ingest/restriction_gate.h"

#include <utility>

namespace ferry::collector {

namespace {

enum class Verdict { kNone, kQuarantine, kRefuse };

// What the rows in force say of one event.
Verdict Judge(const std::vector<RestrictionRecord>& rows, const StoredEvent& e, bool refuse_mode) {
  Verdict v = Verdict::kNone;
  for (const RestrictionRecord& r : rows) {
    const bool same = (!e.user_id.empty() && r.subject_id == e.user_id) ||
                      (!e.anonymous_id.empty() && r.subject_id == e.anonymous_id);
    if (!same || !r.Covers(e.purpose)) continue;
    // An objection to direct marketing is absolute: its marketing events are refused whatever the mode.
    if (refuse_mode || (r.kind == "objection" && e.purpose == "marketing")) return Verdict::kRefuse;
    v = Verdict::kQuarantine;
  }
  return v;
}

}  // namespace

base::Result<RestrictionGateResult> ApplyRestrictionGate(Restrictions& restrictions, int64_t project_id,
                                                         std::vector<StoredEvent>* events) {
  if (events->empty()) return RestrictionGateResult();
  auto rows = restrictions.ActiveRestrictions(project_id);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return RestrictionGateResult();
  auto mode = restrictions.RestrictionModeOf(project_id);
  if (!mode.ok()) return mode.status();
  return JudgeRestrictions(*rows, *mode, events);
}

RestrictionGateResult JudgeRestrictions(const std::vector<RestrictionRecord>& rows, const std::string& mode,
                                        std::vector<StoredEvent>* events) {
  RestrictionGateResult out;
  if (events->empty() || rows.empty()) return out;
  const bool refuse_mode = mode == kRestrictRefuse;
  std::vector<StoredEvent> kept;
  kept.reserve(events->size());
  for (StoredEvent& e : *events) {
    // Consent records are the person's own choices: always kept.
    const Verdict v = e.type == "consent" ? Verdict::kNone : Judge(rows, e, refuse_mode);
    if (v == Verdict::kRefuse) {
      ++out.refused;
      continue;
    }
    if (v == Verdict::kQuarantine) ++out.quarantined;
    kept.push_back(std::move(e));
  }
  *events = std::move(kept);
  return out;
}

}  // namespace ferry::collector
