#include "collector/ingest/consent_gate.h"

#include <set>
#include <utility>
#include <vector>

namespace ferry::collector {

namespace {

ConsentRecord RecordOf(const StoredEvent& e) {
  ConsentRecord r;
  r.message_id = e.message_id;
  r.user_id = e.user_id;
  r.anonymous_id = e.anonymous_id;
  r.purpose = e.consent_purpose;
  r.state = e.consent_state;
  r.previous = e.consent_previous;
  r.timestamp_ms = e.timestamp_ms;
  r.received_ms = e.received_ms;
  r.method = e.consent_method;
  r.notice_id = e.notice_id;
  r.notice_version = e.notice_version;
  r.language = e.language;
  r.seq = e.consent_seq;
  r.receipt_id = e.receipt_id;
  r.minor = e.consent_minor;
  return r;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ConsentGatePeople(const std::vector<StoredEvent>& events) {
  std::vector<std::pair<std::string, std::string>> keys;
  std::set<std::pair<std::string, std::string>> seen;
  for (const StoredEvent& e : events) {
    if (e.type == "consent") continue;
    auto key = std::make_pair(e.user_id, e.anonymous_id);
    if (seen.insert(key).second) keys.push_back(std::move(key));
  }
  return keys;
}

base::Result<ConsentGateResult> ApplyConsentGate(ConsentLedger& ledger, int64_t project_id,
                                                 const std::string& default_mode, std::vector<StoredEvent>* events) {
  std::vector<std::pair<std::string, std::string>> keys = ConsentGatePeople(*events);
  if (keys.empty()) return ConsentGateResult();
  IngestGateInput in;
  auto stored_policy = ledger.ConsentPolicyOf(project_id);
  if (!stored_policy.ok()) return stored_policy.status();
  in.consent_policy = std::move(stored_policy).value();
  // The ids an officer marked as minors (issue 12 item 8): few, one read a batch.
  auto marks = ledger.ActiveMinorMarks(project_id);
  if (!marks.ok()) return marks.status();
  in.minor_marks = std::move(marks).value();
  // One person per (userId, anonymousId) of the batch (usually one device), all read together.
  auto records = ledger.PeopleConsent(project_id, keys);
  if (!records.ok()) return records.status();
  in.people = std::move(records).value();
  return JudgeConsent(in, keys, default_mode, events);
}

base::Result<ConsentGateResult> JudgeConsent(const IngestGateInput& in,
                                             const std::vector<std::pair<std::string, std::string>>& keys,
                                             const std::string& default_mode, std::vector<StoredEvent>* events) {
  ConsentGateResult out;
  if (keys.empty()) return out;  // nothing but consent records
  ConsentPolicy policy;
  if (in.consent_policy.has_value()) {
    policy = *in.consent_policy;
  } else {
    policy.mode = default_mode;
  }
  out.enforced = policy.mode == kConsentEnforce;
  std::set<std::string> minors;
  for (const MinorMark& m : in.minor_marks) minors.insert(m.subject_id);
  if (in.people.size() != keys.size()) return base::Status::Internal("consent records for a batch: one list a person");
  std::map<std::pair<std::string, std::string>, PersonConsent> people;
  for (size_t i = 0; i < keys.size(); ++i) {
    PersonConsent& person = people[keys[i]];
    for (const ConsentRecord& r : in.people[i]) person.Add(r);
  }
  // The batch's own records: each person of the batch whose ids it carries.
  for (const StoredEvent& e : *events) {
    if (e.type != "consent") continue;
    for (auto& [key, person] : people) {
      bool same =
          (!e.anonymous_id.empty() && e.anonymous_id == key.second) || (!e.user_id.empty() && e.user_id == key.first);
      if (same) person.Add(RecordOf(e));
    }
  }
  // Kept events move down in place (a batch where nothing is refused moves nothing and allocates nothing).
  size_t kept = 0;
  for (size_t i = 0; i < events->size(); ++i) {
    StoredEvent& e = (*events)[i];
    std::string reason;
    if (e.type != "consent") {
      // deviceSeq and consentReceipt as ParseBatch read them from the event (records.h), not a second parse of the
      // body.
      const bool marked = (!e.user_id.empty() && minors.count(e.user_id) > 0) ||
                          (!e.anonymous_id.empty() && minors.count(e.anonymous_id) > 0);
      reason = people[std::make_pair(e.user_id, e.anonymous_id)].Verdict(policy, e, e.device_seq, e.consent_receipt,
                                                                         &e.covered_by, marked);
    }
    if (!reason.empty()) ++out.refused[reason];
    if (reason.empty() || !out.enforced) {
      if (kept != i) (*events)[kept] = std::move(e);
      ++kept;
    }
  }
  events->resize(kept);
  return out;
}

}  // namespace ferry::collector
