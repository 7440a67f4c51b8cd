// Withdrawal of consent acting on stored data (issue 12 item 6): RightsService::RunWithdrawals (rights_service.h).
#include <algorithm>
#include <utility>

#include "collector/rights/documents.h"
#include "collector/rights/rights_service.h"

namespace ferry::collector::rights {

using base::Result;
using base::Status;

Result<int64_t> RightsService::RunWithdrawals(size_t limit) {
  auto pending = stores_.transactions->TransactFor<std::vector<PendingWithdrawal>>(
      TxnMode::kRead, [&](StoreTxn& tx) -> Result<std::vector<PendingWithdrawal>> {
        return tx.primitives().PendingWithdrawals(limit);
      });
  if (!pending.ok()) return pending.status();
  const Actor system{"system: consent withdrawal", "", "system"};
  int64_t done = 0;
  for (const PendingWithdrawal& w : *pending) {
    const bool erase = w.action != kWithdrawRestrict;
    // The person is named by the denying record's userId, else its installation.
    const std::string subject = w.user_id.empty() ? w.anonymous_id : w.user_id;
    RightsRequest r = NewRegisterEntry("withdrawal", w.project, subject, "completed", "system");
    r.acted_by = system.name;
    r.acted_ms = r.received_ms;
    std::vector<RestrictionRecord> rows;
    std::vector<std::string> ids;
    bool registered = false;
    Status s = stores_.transactions->Transact(erase ? TxnMode::kErase : TxnMode::kWrite, [&](StoreTxn& tx) -> Status {
      rows.clear();
      ids.clear();
      registered = false;
      const ProjectRef project{w.project_id, w.project};
      auto person = tx.Resolve(project, subject);
      if (!person.ok()) return person.status();
      if (person->has_value()) ids = (*person)->ids;
      for (const std::string& id : {w.user_id, w.anonymous_id}) {
        if (!id.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      }
      auto n = tx.primitives().EventsOfPurpose(w.project_id, ids, w.purpose, erase);
      if (!n.ok()) return n.status();
      // A first choice of "denied" with nothing stored withdrew nothing: no register entry.
      registered = *n > 0 || w.previous == "granted";
      if (!registered) {
        auto finished = tx.primitives().FinishWithdrawal(w.id, "", tx.NowMs());
        if (!finished.ok()) return finished.status();
        return *finished ? Status::Ok() : Status::Conflict("taken by another process");
      }
      if (!erase && *n > 0) {
        const int64_t since = tx.NowMs();  // one time for every id: one restriction in force
        for (const std::string& id : ids) {
          RestrictionRecord row;
          row.project_id = w.project_id;
          row.project = w.project;
          row.subject_id = id;
          row.kind = "restriction";
          row.purposes = {w.purpose};
          row.request_id = r.id;
          row.since_ms = since;
          FERRY_RETURN_IF_ERROR(tx.primitives().InsertRestriction(row));
          rows.push_back(std::move(row));
        }
      }
      Json result = {{"trigger", "consent denied"},
                     {"purposes", Json::array({w.purpose})},
                     {"action", erase ? kWithdrawErase : kWithdrawRestrict},
                     {"deniedAt", Iso(w.denied_ms)},
                     {"receiptId", w.receipt_id},
                     {"events", *n},
                     {"ids", ids.size()}};
      RightsRequest entry = r;
      entry.result = Dump(result);
      FERRY_RETURN_IF_ERROR(tx.CreateRequest(entry).status());
      FERRY_RETURN_IF_ERROR(tx.AppendAudit(Entry(system, "consent.withdrawal", subject, "ok",
                                                 Dump(Json{{"requestId", r.id},
                                                           {"purpose", w.purpose},
                                                           {"action", result["action"]},
                                                           {"events", *n},
                                                           {"receiptId", w.receipt_id}})))
                                .status());
      // Downstream systems hear of it like of any erasure or restriction, limited to the purpose.
      FERRY_RETURN_IF_ERROR(Propagate(tx, erase ? "erasure" : "restriction", w.project, r.id, {{w.project, ids}},
                                      subject, Json{{"purposes", Json::array({w.purpose})}, {"source", "withdrawal"}}));
      auto finished = tx.primitives().FinishWithdrawal(w.id, r.id, tx.NowMs());
      if (!finished.ok()) return finished.status();
      return *finished ? Status::Ok() : Status::Conflict("taken by another process");
    });
    if (s.code() == base::Code::kConflict) continue;
    if (!s.ok()) {
      log_.Error("withdrawal of " + w.purpose + " in " + w.project + " failed: " + s.ToString());
      return s;
    }
    ++done;
    if (registered) {
      log_.Info("withdrawal: " + w.purpose + " in " + w.project + " " + (erase ? "erased" : "restricted") +
                " (request " + r.id + ")");
    }
    TellRestricted(rows, true);
  }
  return done;
}

}  // namespace ferry::collector::rights
