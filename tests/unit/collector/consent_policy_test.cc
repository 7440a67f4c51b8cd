// The enforcement matrix of issue 12 on the decision itself (collector/store/consent_policy.h): purpose x state x
// device (the phone grants, the tablet denies) x identified/anonymous, necessary names and explicit sensitive grants.
#include "collector/store/consent_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::collector {
namespace {

ConsentRecord Rec(const std::string& anon, const std::string& user, const std::string& purpose,
                  const std::string& state, int64_t seq, int64_t ts, const std::string& method = "explicit") {
  ConsentRecord r;
  r.anonymous_id = anon;
  r.user_id = user;
  r.purpose = purpose;
  r.state = state;
  r.seq = seq;
  r.timestamp_ms = ts;
  r.method = method;
  r.receipt_id = anon + "-" + purpose + "-" + std::to_string(seq);
  return r;
}

StoredEvent Ev(const std::string& anon, const std::string& user, const std::string& purpose, int64_t ts,
               const std::string& name = "Something Happened") {
  StoredEvent e;
  e.type = "track";
  e.anonymous_id = anon;
  e.user_id = user;
  e.purpose = purpose;
  e.name = name;
  e.timestamp_ms = ts;
  return e;
}

TEST(ConsentPolicyTest, NecessaryOnlyForListedNames) {
  PersonConsent none;
  ConsentPolicy policy;
  policy.necessary = {"Login Failed"};
  EXPECT_EQ(none.Verdict(policy, Ev("a", "", "necessary", 10, "Login Failed"), 1, ""), "");
  EXPECT_EQ(none.Verdict(policy, Ev("a", "", "necessary", 10, "Promo Seen"), 1, ""), kRefusedNecessaryUnlisted);
  StoredEvent record = Ev("a", "", "necessary", 10, "");
  record.type = "consent";
  EXPECT_EQ(none.Verdict(policy, record, 1, ""), "");
}

TEST(ConsentPolicyTest, NoRecordIsConsentMissing) {
  PersonConsent none;
  ConsentPolicy policy;
  for (const char* purpose : {"analytics", "marketing", "personalization", "sensitive"}) {
    EXPECT_EQ(none.Verdict(policy, Ev("a", "", purpose, 10), 1, ""), kRefusedConsentMissing) << purpose;
    EXPECT_EQ(none.Verdict(policy, Ev("a", "u", purpose, 10), 1, ""), kRefusedConsentMissing) << purpose;
  }
}

// The matrix: the phone grants every purpose at t=100 (seq 1), the tablet denies it at t=200 (seq 1 of its own).
TEST(ConsentPolicyTest, PhoneGrantsTabletDeniesIdentifiedPerson) {
  ConsentPolicy policy;
  for (const char* purpose : {"analytics", "marketing", "personalization", "sensitive"}) {
    PersonConsent person;
    person.Add(Rec("phone", "u", purpose, "granted", 1, 100));
    person.Add(Rec("tablet", "u", purpose, "denied", 1, 200));
    // Before the tablet's denial: the phone's events are covered.
    EXPECT_EQ(person.Verdict(policy, Ev("phone", "u", purpose, 150), 2, "phone-" + std::string(purpose) + "-1"), "")
        << purpose;
    // From the denial on, the purpose is refused on every device of the person.
    EXPECT_EQ(person.Verdict(policy, Ev("phone", "u", purpose, 250), 3, "phone-" + std::string(purpose) + "-1"),
              kRefusedConsentDenied)
        << purpose;
    EXPECT_EQ(person.Verdict(policy, Ev("tablet", "u", purpose, 250), 2, ""), kRefusedConsentDenied) << purpose;
    // A tablet event from before the denial, with no record of the tablet's own: the person's grant on the phone
    // was in force then.
    EXPECT_EQ(person.Verdict(policy, Ev("tablet", "u", purpose, 150), 0, ""), "") << purpose;
  }
}

TEST(ConsentPolicyTest, AnAnonymousInstallationIsJudgedByItsOwnRecords) {
  ConsentPolicy policy;
  PersonConsent phone;  // an anonymous person: one installation
  phone.Add(Rec("phone", "", "analytics", "granted", 1, 100));
  phone.Add(Rec("phone", "", "marketing", "denied", 2, 100));
  EXPECT_EQ(phone.Verdict(policy, Ev("phone", "", "analytics", 150), 3, "phone-analytics-1"), "");
  EXPECT_EQ(phone.Verdict(policy, Ev("phone", "", "analytics", 150), 3, ""), "");  // by the sequence alone
  EXPECT_EQ(phone.Verdict(policy, Ev("phone", "", "marketing", 150), 3, ""), kRefusedConsentDenied);
  EXPECT_EQ(phone.Verdict(policy, Ev("phone", "", "personalization", 150), 3, ""), kRefusedConsentMissing);
  // A receipt of another purpose covers nothing.
  EXPECT_EQ(phone.Verdict(policy, Ev("phone", "", "personalization", 150), 3, "phone-analytics-1"),
            kRefusedConsentMissing);
}

TEST(ConsentPolicyTest, AGrantOnOneDeviceCoversThePersonsOtherDevices) {
  ConsentPolicy policy;
  PersonConsent person;
  person.Add(Rec("phone", "u", "analytics", "granted", 1, 100));
  EXPECT_EQ(person.Verdict(policy, Ev("tablet", "u", "analytics", 150), 5, ""), "");
  EXPECT_EQ(person.Verdict(policy, Ev("tablet", "u", "analytics", 50), 5, ""), kRefusedConsentMissing);  // before it
}

TEST(ConsentPolicyTest, SensitiveNeedsAnExplicitGrant) {
  ConsentPolicy policy;
  PersonConsent by_default;
  by_default.Add(Rec("phone", "", "sensitive", "granted", 1, 100, "default"));
  by_default.Add(Rec("phone", "", "analytics", "granted", 2, 100, "default"));
  EXPECT_EQ(by_default.Verdict(policy, Ev("phone", "", "sensitive", 150), 3, "phone-sensitive-1"),
            kRefusedSensitiveNotExplicit);
  EXPECT_EQ(by_default.Verdict(policy, Ev("phone", "", "analytics", 150), 3, "phone-analytics-2"), "");
  PersonConsent chosen;
  chosen.Add(Rec("phone", "", "sensitive", "granted", 1, 100, "explicit"));
  EXPECT_EQ(chosen.Verdict(policy, Ev("phone", "", "sensitive", 150), 3, "phone-sensitive-1"), "");
}

}  // namespace
}  // namespace ferry::collector
