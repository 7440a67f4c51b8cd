// Which consent record covered an event (collector/store/consent_proof.h): by the receipt the event names, else by
// the device's sequence number, never by timestamps.
#include "collector/store/consent_proof.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::collector {
namespace {

ConsentRecord Rec(const std::string& anon, const std::string& purpose, const std::string& state, int64_t seq,
                  const std::string& receipt, int64_t ts = 1000) {
  ConsentRecord r;
  r.anonymous_id = anon;
  r.purpose = purpose;
  r.state = state;
  r.seq = seq;
  r.receipt_id = receipt;
  r.timestamp_ms = ts;
  return r;
}

EventRow Ev(const std::string& anon, const std::string& purpose, const std::string& body,
            const std::string& type = "track") {
  EventRow e;
  e.anonymous_id = anon;
  e.purpose = purpose;
  e.type = type;
  e.body = body;
  return e;
}

class ConsentProofTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The phone: analytics granted (seq 2), marketing granted (3) then denied (7), analytics pending default (1).
    cov_.Add(Rec("phone", "analytics", "pending", 1, "r-a0"));
    cov_.Add(Rec("phone", "analytics", "granted", 2, "r-a1"));
    cov_.Add(Rec("phone", "marketing", "granted", 3, "r-m1"));
    cov_.Add(Rec("phone", "marketing", "denied", 7, "r-m2"));
    // The tablet: its own counter; analytics denied at seq 4. Timestamps later than the phone's say nothing.
    cov_.Add(Rec("tablet", "analytics", "denied", 4, "r-t1", 500));
  }
  ConsentCoverage cov_;
};

TEST_F(ConsentProofTest, TheNamedReceiptCoversAnEventOfItsPurpose) {
  ConsentProof p = cov_.For(Ev("phone", "analytics", R"({"deviceSeq":5,"consentReceipt":"r-a1"})"));
  EXPECT_EQ(p.status, "covered");
  EXPECT_EQ(p.basis, "receipt");
  ASSERT_TRUE(p.record.has_value());
  EXPECT_EQ(p.record->receipt_id, "r-a1");
  EXPECT_EQ(p.device_seq, 5);
}

TEST_F(ConsentProofTest, AnEventMadeWhilePendingIsCoveredByTheLaterGrantThatReleasedIt) {
  ConsentProof named = cov_.For(Ev("phone", "analytics", R"({"deviceSeq":1,"consentReceipt":"r-a1"})"));
  EXPECT_EQ(named.status, "covered");
  ConsentProof by_seq = cov_.For(Ev("phone", "analytics", R"({"deviceSeq":1})"));
  EXPECT_EQ(by_seq.status, "covered");
  EXPECT_EQ(by_seq.basis, "sequence");
  ASSERT_TRUE(by_seq.record.has_value());
  EXPECT_EQ(by_seq.record->receipt_id, "r-a1");
}

// A new notice version sent the grant back to pending (method "notice_change"): the old grant covers what was made
// before that record, not what came after it; a new grant covers the events held while pending.
TEST(ConsentProofNoticeChange, TheOldGrantStopsAtTheFallbackToPending) {
  ConsentCoverage cov;
  cov.Add(Rec("phone", "marketing", "granted", 2, "r-v1"));
  ConsentRecord change = Rec("phone", "marketing", "pending", 5, "r-change");
  change.method = "notice_change";
  cov.Add(change);
  cov.Add(Rec("phone", "marketing", "granted", 9, "r-v2"));
  ConsentProof before = cov.For(Ev("phone", "marketing", R"({"deviceSeq":4,"consentReceipt":"r-v1"})"));
  EXPECT_EQ(before.status, "covered");
  ConsentProof after = cov.For(Ev("phone", "marketing", R"({"deviceSeq":6,"consentReceipt":"r-v1"})"));
  EXPECT_EQ(after.status, "uncovered");
  EXPECT_FALSE(after.denied);
  EXPECT_NE(after.reason.find("pending"), std::string::npos) << after.reason;
  ConsentProof by_seq = cov.For(Ev("phone", "marketing", R"({"deviceSeq":6})"));
  EXPECT_EQ(by_seq.status, "covered");  // held while pending, released by the new grant
  EXPECT_EQ(by_seq.record->receipt_id, "r-v2");
  ConsentProof held = cov.For(Ev("phone", "marketing", R"({"deviceSeq":7,"consentReceipt":"r-v2"})"));
  EXPECT_EQ(held.status, "covered");
  ConsentProof later = cov.For(Ev("phone", "marketing", R"({"deviceSeq":10,"consentReceipt":"r-v2"})"));
  EXPECT_EQ(later.status, "covered");
}

TEST_F(ConsentProofTest, ADenialBetweenTheGrantAndTheEventLeavesItUncovered) {
  ConsentProof p = cov_.For(Ev("phone", "marketing", R"({"deviceSeq":8,"consentReceipt":"r-m1"})"));
  EXPECT_EQ(p.status, "uncovered");
  EXPECT_NE(p.reason.find("denied"), std::string::npos) << p.reason;
  ConsentProof seq = cov_.For(Ev("phone", "marketing", R"({"deviceSeq":8})"));
  EXPECT_EQ(seq.status, "uncovered");
  ASSERT_TRUE(seq.record.has_value());
  EXPECT_EQ(seq.record->receipt_id, "r-m2");
  // Before the denial the grant covers it, by the device's order alone.
  ConsentProof before = cov_.For(Ev("phone", "marketing", R"({"deviceSeq":6})"));
  EXPECT_EQ(before.status, "covered");
  EXPECT_EQ(before.record->receipt_id, "r-m1");
}

TEST_F(ConsentProofTest, ARecordOfAnotherPurposeStateOrDeviceNeverCovers) {
  EXPECT_EQ(cov_.For(Ev("phone", "marketing", R"({"deviceSeq":5,"consentReceipt":"r-a1"})")).status, "uncovered");
  EXPECT_EQ(cov_.For(Ev("tablet", "analytics", R"({"deviceSeq":5,"consentReceipt":"r-t1"})")).status, "uncovered");
  EXPECT_EQ(cov_.For(Ev("phone", "analytics", R"({"deviceSeq":5,"consentReceipt":"r-unknown"})")).status, "uncovered");
  // The tablet's seq 5 comes after its own denial; the phone's grant (seq 2) is another device's counter.
  EXPECT_EQ(cov_.For(Ev("tablet", "analytics", R"({"deviceSeq":5})")).status, "uncovered");
  // No receipt, no sequence: nothing can be proven.
  EXPECT_EQ(cov_.For(Ev("phone", "analytics", R"({})")).status, "uncovered");
}

TEST_F(ConsentProofTest, NecessaryEventsAndConsentRecordsNeedNoConsent) {
  EXPECT_EQ(cov_.For(Ev("phone", "necessary", R"({"deviceSeq":9})")).status, "necessary");
  EXPECT_EQ(cov_.For(Ev("phone", "necessary", R"({"deviceSeq":2})", "consent")).status, "necessary");
}

}  // namespace
}  // namespace ferry::collector
