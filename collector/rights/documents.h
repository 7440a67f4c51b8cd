// The JSON documents the rights workflow writes into the request register and the audit log, and that the admin API
// answers with: one form each, whoever shows them.
#ifndef FERRY_COLLECTOR_RIGHTS_DOCUMENTS_H_
#define FERRY_COLLECTOR_RIGHTS_DOCUMENTS_H_

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "collector/store/consent_proof.h"
#include "collector/store/records.h"

namespace ferry::collector::rights {

using Json = nlohmann::json;

// JSON text; invalid UTF-8 is replaced, never an exception.
std::string Dump(const Json& j);

// "2026-11-23T17:29:37.123Z", "" for 0.
std::string Iso(int64_t ms);

// An erasure's receipt: {requestId, erased, idsSuppressed, projects, completedAt}.
Json ReceiptDocument(const EraseReceipt& r);

// The outcome of an audit verification: {ok, entries, headSeq, headHash[, firstBrokenSeq, reason]} (the head: the
// last entry that verified).
Json VerifyDocument(const AuditVerifyResult& v);

// One consent record as the export's consentHistory and the per-event proof show it: {messageId, purpose, state,
// previous, at, receivedAt, userId, anonymousId, device, method, noticeId, noticeVersion, language, seq, receiptId}.
Json ConsentRecordDocument(const ConsentRecord& c);

// Which consent record covered an event: {status, basis, reason, deviceSeq, consentReceipt, record} (consent_proof.h;
// null for what does not apply).
Json ConsentProofDocument(const ConsentProof& p);

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_DOCUMENTS_H_
