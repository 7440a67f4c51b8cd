#include "collector/rights/documents.h"

#include "lib/base/time.h"

namespace ferry::collector::rights {

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string Iso(int64_t ms) { return ms > 0 ? base::FormatIso8601(ms) : std::string(); }

Json ReceiptDocument(const EraseReceipt& r) {
  return {{"requestId", r.request_id},
          {"erased", r.erased},
          {"idsSuppressed", r.ids_suppressed},
          {"projects", r.projects},
          {"completedAt", Iso(r.completed_ms)}};
}

Json VerifyDocument(const AuditVerifyResult& v) {
  Json out = {{"ok", v.ok}, {"entries", v.entries}, {"headSeq", v.head_seq}, {"headHash", v.head_hash}};
  if (!v.ok) {
    out["firstBrokenSeq"] = v.first_broken_seq;
    out["reason"] = v.reason;
  }
  return out;
}

}  // namespace ferry::collector::rights
