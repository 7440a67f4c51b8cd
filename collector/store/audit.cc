#include "collector/store/audit.h"

#include <sodium.h>

#include "lib/base/digest.h"

namespace ferry::collector {

namespace {

void Field(std::string* out, const std::string& v) {
  *out += std::to_string(v.size());
  *out += ':';
  *out += v;
  *out += '\n';
}

}  // namespace

std::string AuditCanonical(const AuditEntry& e) {
  std::string out;
  Field(&out, std::to_string(e.seq));
  Field(&out, std::to_string(e.time_ms));
  Field(&out, e.actor);
  Field(&out, e.role);
  Field(&out, e.action);
  Field(&out, e.subject_hash);
  Field(&out, e.result);
  Field(&out, e.detail);
  return out;
}

std::string AuditChainHash(const std::string& prev_hash_hex, const std::string& canonical) {
  return base::Blake2b256Hex(prev_hash_hex + canonical);
}

bool AuditChainChecker::Add(const AuditEntry& e) {
  if (!r_.ok) return false;
  ++r_.entries;
  auto fail = [&](std::string why) {
    r_.ok = false;
    r_.first_broken_seq = e.seq;
    r_.reason = std::move(why);
    return false;
  };
  if (e.seq != last_seq_ + 1) {
    return fail("entry " + std::to_string(e.seq) + " follows entry " + std::to_string(last_seq_) +
                " (entries are missing)");
  }
  if (e.prev_hash != prev_) return fail("prev_hash does not match the hash of the entry before");
  if (AuditChainHash(e.prev_hash, AuditCanonical(e)) != e.hash) {
    return fail("the stored hash does not match the entry's content (the entry was changed)");
  }
  prev_ = e.hash;
  last_seq_ = e.seq;
  r_.head_seq = e.seq;
  r_.head_hash = e.hash;
  return true;
}

}  // namespace ferry::collector
