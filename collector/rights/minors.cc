// Minors at the collector (issue 12 item 8): RightsService::MarkMinor and MinorStatesOf (rights_service.h).
#include "collector/rights/minors.h"

#include <map>
#include <set>
#include <utility>

#include "collector/rights/rights_service.h"
#include "lib/base/time.h"

namespace ferry::collector::rights {

using base::Result;
using base::Status;

namespace {

constexpr const char* kStoreUnavailable = "store unavailable";

// Whether record `a` came after `b` on one installation: by the device's sequence when both have one, else by time.
bool Later(const ConsentRecord& a, const ConsentRecord& b) {
  if (a.seq > 0 && b.seq > 0) return a.seq > b.seq;
  return a.timestamp_ms > b.timestamp_ms;
}

// The state of one subject's ids in one project, read in `tx`.
Result<MinorState> StateIn(StoreTxn& tx, const SubjectIds& subject) {
  MinorState out;
  out.project = subject.project;
  const std::set<std::string> ids(subject.ids.begin(), subject.ids.end());
  auto marks = tx.primitives().MinorMarksOf(subject.project_id, /*active_only=*/true);
  if (!marks.ok()) return marks.status();
  for (MinorMark& m : *marks) {
    if (ids.count(m.subject_id)) out.marks.push_back(std::move(m));
  }
  auto records = tx.primitives().ConsentRecordsOf(subject.project_id, subject.ids);
  if (!records.ok()) return records.status();
  std::map<std::string, const ConsentRecord*> last;  // installation -> its latest record carrying `minor`
  for (const ConsentRecord& r : *records) {
    if (r.minor < 0 || r.anonymous_id.empty()) continue;
    const ConsentRecord*& cur = last[r.anonymous_id];
    if (cur == nullptr || Later(r, *cur)) cur = &r;
  }
  for (const auto& entry : last) {
    if (entry.second->minor != 1) continue;
    // Shown: the installation's mark itself (its latest record of method "minor" saying so), else that latest record.
    const ConsentRecord* shown = entry.second;
    const ConsentRecord* mark = nullptr;
    for (const ConsentRecord& r : *records) {
      if (r.anonymous_id == entry.first && r.method == "minor" && r.minor == 1 &&
          (mark == nullptr || Later(r, *mark))) {
        mark = &r;
      }
    }
    if (mark != nullptr) shown = mark;
    out.devices.push_back(*shown);
  }
  out.minor = !out.marks.empty() || !out.devices.empty();
  return out;
}

}  // namespace

Json MinorStateJson(const MinorState& state) {
  Json sources = Json::array();
  for (const MinorMark& m : state.marks) {
    sources.push_back({{"source", "officer"},
                       {"scope", "person"},
                       {"id", m.subject_id},
                       {"by", m.marked_by},
                       {"since", base::FormatIso8601(m.since_ms)}});
  }
  for (const ConsentRecord& r : state.devices) {
    sources.push_back({{"source", "device"},
                       {"scope", "installation"},
                       {"anonymousId", r.anonymous_id},
                       {"receiptId", r.receipt_id.empty() ? Json(nullptr) : Json(r.receipt_id)},
                       {"method", r.method.empty() ? Json(nullptr) : Json(r.method)},
                       {"seq", r.seq > 0 ? Json(r.seq) : Json(nullptr)},
                       {"at", base::FormatIso8601(r.timestamp_ms)}});
  }
  return Json{{"minor", state.minor}, {"sources", sources}};
}

Result<std::vector<MinorState>> RightsService::MarkMinor(const Actor& actor, const SubjectQuery& q, bool undo) {
  const char* action = ActionName(Action::kSubjectMinor);
  std::vector<MinorState> out;
  int64_t changed = 0;
  Status s = stores_.transactions->Transact(TxnMode::kWrite, [&](StoreTxn& tx) -> Status {
    out.clear();
    changed = 0;
    auto all = tx.ResolveAll(q);
    if (!all.ok()) return all.status();
    if (all->empty()) return Status::NotFound("subject not found");
    const int64_t now = tx.NowMs();
    for (const SubjectIds& subject : *all) {
      if (undo) {
        auto n = tx.primitives().LiftMinorMarks(subject.project_id, subject.ids, now, actor.name);
        if (!n.ok()) return n.status();
        changed += *n;
      } else {
        auto marks = tx.primitives().MinorMarksOf(subject.project_id, /*active_only=*/true);
        if (!marks.ok()) return marks.status();
        std::set<std::string> marked;
        for (const MinorMark& m : *marks) marked.insert(m.subject_id);
        for (const std::string& id : subject.ids) {
          if (marked.count(id)) continue;
          MinorMark m;
          m.project_id = subject.project_id;
          m.project = subject.project;
          m.subject_id = id;
          m.marked_by = actor.name;
          m.since_ms = now;
          FERRY_RETURN_IF_ERROR(tx.primitives().InsertMinorMark(m));
          ++changed;
        }
      }
      auto state = StateIn(tx, subject);
      if (!state.ok()) return state.status();
      out.push_back(std::move(state).value());
    }
    if (undo && changed == 0) return Status::NotFound("no officer's mark of a minor is in force for the subject");
    return tx
        .AppendAudit(
            Entry(actor, action, q.id, "ok", Dump(Json{{"undo", undo}, {"projects", all->size()}, {"ids", changed}})))
        .status();
  });
  if (s.code() == base::Code::kNotFound) {
    FERRY_RETURN_IF_ERROR(Audit(actor, action, q.id, "not_found", Dump(Json{{"undo", undo}})));
    return s;
  }
  if (!s.ok()) return s.WithMessage(kStoreUnavailable);
  log_.Info(std::string("minor: ") + (undo ? "lifted " : "marked ") + std::to_string(changed) + " id(s) by " +
            actor.name);
  return out;
}

Result<std::vector<MinorState>> RightsService::MinorStatesOf(const SubjectQuery& q) {
  auto out = stores_.transactions->TransactFor<std::vector<MinorState>>(
      TxnMode::kRead, [&](StoreTxn& tx) -> Result<std::vector<MinorState>> {
        auto all = tx.ResolveAll(q);
        if (!all.ok()) return all.status();
        std::vector<MinorState> states;
        for (const SubjectIds& subject : *all) {
          auto state = StateIn(tx, subject);
          if (!state.ok()) return state.status();
          states.push_back(std::move(state).value());
        }
        return states;
      });
  if (!out.ok()) return out.status().WithMessage(kStoreUnavailable);
  return out;
}

}  // namespace ferry::collector::rights
