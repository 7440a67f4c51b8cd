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

Json ConsentRecordDocument(const ConsentRecord& c) {
  Json dev = c.device.empty() ? Json(nullptr) : Json::parse(c.device, nullptr, false);
  if (dev.is_discarded()) dev = c.device;
  auto opt = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  return {{"messageId", c.message_id},
          {"purpose", c.purpose},
          {"state", c.state},
          {"previous", opt(c.previous)},
          {"at", Iso(c.timestamp_ms)},
          {"receivedAt", Iso(c.received_ms)},
          {"userId", opt(c.user_id)},
          {"anonymousId", opt(c.anonymous_id)},
          {"device", dev},
          {"method", opt(c.method)},
          {"noticeId", opt(c.notice_id)},
          {"noticeVersion", opt(c.notice_version)},
          {"language", opt(c.language)},
          {"seq", c.seq > 0 ? Json(c.seq) : Json(nullptr)},
          {"receiptId", opt(c.receipt_id)}};
}

Json ConsentProofDocument(const ConsentProof& p) {
  auto opt = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  return {{"status", p.status},
          {"basis", opt(p.basis)},
          {"reason", opt(p.reason)},
          {"deviceSeq", p.device_seq > 0 ? Json(p.device_seq) : Json(nullptr)},
          {"consentReceipt", opt(p.receipt)},
          {"record", p.record ? ConsentRecordDocument(*p.record) : Json(nullptr)}};
}

}  // namespace ferry::collector::rights
