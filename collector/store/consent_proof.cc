#include "collector/store/consent_proof.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace ferry::collector {

namespace {

constexpr const char* kNecessary = "necessary";
constexpr const char* kGranted = "granted";
constexpr const char* kDenied = "denied";
constexpr const char* kPending = "pending";

// The installation a record or an event belongs to: its anonymousId, else its userId.
std::string DeviceKey(const std::string& anonymous_id, const std::string& user_id) {
  return anonymous_id.empty() ? "u:" + user_id : "a:" + anonymous_id;
}

}  // namespace

void ConsentCoverage::Clear() {
  records_.clear();
  by_receipt_.clear();
}

void ConsentCoverage::Add(const ConsentRecord& record) {
  records_.push_back(record);
  if (!record.receipt_id.empty()) by_receipt_[record.receipt_id] = records_.size() - 1;
}

std::vector<const ConsentRecord*> ConsentCoverage::Line(const std::string& device_key,
                                                        const std::string& purpose) const {
  std::vector<const ConsentRecord*> line;
  for (const ConsentRecord& r : records_) {
    if (r.seq > 0 && r.purpose == purpose && DeviceKey(r.anonymous_id, r.user_id) == device_key) line.push_back(&r);
  }
  std::stable_sort(line.begin(), line.end(),
                   [](const ConsentRecord* a, const ConsentRecord* b) { return a->seq < b->seq; });
  return line;
}

ConsentProof ConsentCoverage::For(const EventRow& event) const {
  int64_t seq = 0;
  std::string receipt;
  nlohmann::json body = nlohmann::json::parse(event.body, nullptr, false);
  if (body.is_object()) {
    auto s = body.find("deviceSeq");
    if (s != body.end() && s->is_number_integer() && s->get<int64_t>() > 0) seq = s->get<int64_t>();
    auto r = body.find("consentReceipt");
    if (r != body.end() && r->is_string()) receipt = r->get<std::string>();
  }
  std::string purpose = event.type == "consent" ? kNecessary : event.purpose;
  return For(purpose, event.anonymous_id, event.user_id, seq, receipt);
}

ConsentProof ConsentCoverage::For(const std::string& purpose, const std::string& anonymous_id,
                                  const std::string& user_id, int64_t device_seq, const std::string& receipt) const {
  ConsentProof p;
  p.device_seq = device_seq;
  p.receipt = receipt;
  auto uncovered = [&p](std::string reason) {
    p.status = "uncovered";
    p.reason = std::move(reason);
    return p;
  };
  if (purpose == kNecessary) {
    p.status = "necessary";
    return p;
  }
  const std::string device = DeviceKey(anonymous_id, user_id);
  if (!receipt.empty()) {
    auto it = by_receipt_.find(receipt);
    if (it == by_receipt_.end()) return uncovered("the consent record the event names is not held");
    const ConsentRecord& r = records_[it->second];
    p.record = r;
    if (r.purpose != purpose) return uncovered("the consent record the event names is for another purpose");
    if (r.state != kGranted) return uncovered("the consent record the event names is not a grant");
    if (device_seq > 0 && r.seq > 0 && DeviceKey(r.anonymous_id, r.user_id) == device) {
      int64_t lo = std::min(device_seq, r.seq), hi = std::max(device_seq, r.seq);
      for (const ConsentRecord* o : Line(device, purpose)) {
        if (o->seq > lo && o->seq < hi && o->state == kDenied) {
          p.denied = true;
          return uncovered("the purpose was denied on the device between the grant and the event");
        }
        // A grant followed on the device by a return to pending (a new notice version, method "notice_change"; a
        // minor's mark; a default dropped) no longer admits the events made after that record.
        if (r.seq < device_seq && o->seq > lo && o->seq < hi && o->state == kPending) {
          return uncovered("the purpose went back to pending on the device between the grant and the event");
        }
      }
    }
    p.status = "covered";
    p.basis = "receipt";
    return p;
  }
  if (device_seq <= 0) return uncovered("the event carries neither a consent receipt nor a device sequence number");
  std::vector<const ConsentRecord*> line = Line(device, purpose);
  const ConsentRecord* before = nullptr;
  const ConsentRecord* after = nullptr;
  for (const ConsentRecord* r : line) {
    if (r->seq < device_seq) {
      before = r;
    } else if (r->seq > device_seq && after == nullptr) {
      after = r;
    }
  }
  if (before != nullptr && before->state == kGranted) {
    p.record = *before;
    p.status = "covered";
    p.basis = "sequence";
    return p;
  }
  if (before != nullptr && before->state == kDenied) {
    p.record = *before;
    p.denied = true;
    return uncovered("the purpose was denied on the device when the event was made");
  }
  // Made while pending (or before any record): held on the device until a grant released it.
  if (after != nullptr && after->state == kGranted) {
    p.record = *after;
    p.status = "covered";
    p.basis = "sequence";
    return p;
  }
  return uncovered("no grant of the purpose on the device covers the event");
}

}  // namespace ferry::collector
