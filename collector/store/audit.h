// The audit log's hash chain, written once above every engine so that all of them write (and verify) the same chain.
#ifndef FERRY_COLLECTOR_STORE_AUDIT_H_
#define FERRY_COLLECTOR_STORE_AUDIT_H_

#include <string>

#include "collector/store/records.h"

namespace ferry::collector {

// prev_hash of the first entry.
inline const std::string kAuditGenesis(64, '0');

// The canonical form of an entry: its fields seq, time_ms, actor, role, action, subject_hash, result, detail, each
// written as "<byte length>:<bytes>\n" (numbers in decimal), so no two different entries share a form.
std::string AuditCanonical(const AuditEntry& e);

// hex(BLAKE2b-256(prev_hash_hex || canonical)).
std::string AuditChainHash(const std::string& prev_hash_hex, const std::string& canonical);

// Incremental verification: feed entries in seq order; the first failure is kept.
class AuditChainChecker {
 public:
  // false once the chain is broken (later entries are ignored).
  bool Add(const AuditEntry& e);
  AuditVerifyResult Result() const { return r_; }

 private:
  AuditVerifyResult r_;
  std::string prev_ = kAuditGenesis;
  int64_t last_seq_ = 0;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_AUDIT_H_
