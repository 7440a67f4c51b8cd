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

// Minors (issue 12 item 8): an officer's mark, or the event's own installation's word, asks for a guardian's grant.
TEST(ConsentPolicyTest, AMinorNeedsAGuardiansGrant) {
  ConsentPolicy policy;
  policy.necessary = {"Login Failed"};
  PersonConsent own;
  own.Add(Rec("phone", "u", "marketing", "granted", 1, 100));  // the minor's own grant
  std::string covered;
  EXPECT_EQ(own.Verdict(policy, Ev("phone", "u", "marketing", 150), 2, "phone-marketing-1", &covered), "");
  EXPECT_EQ(own.Verdict(policy, Ev("phone", "u", "marketing", 150), 2, "phone-marketing-1", &covered, true),
            kRefusedGuardianMissing);
  EXPECT_EQ(covered, "");
  // No record at all, or a listed necessary event.
  PersonConsent none;
  EXPECT_EQ(none.Verdict(policy, Ev("phone", "u", "analytics", 150), 2, "", nullptr, true), kRefusedGuardianMissing);
  EXPECT_EQ(none.Verdict(policy, Ev("phone", "u", "necessary", 150, "Login Failed"), 2, "", nullptr, true), "");
  // A guardian's grant admits, and names its receipt.
  PersonConsent guarded;
  guarded.Add(Rec("phone", "u", "marketing", "granted", 1, 100));
  guarded.Add(Rec("phone", "u", "marketing", "granted", 2, 110, "guardian"));
  EXPECT_EQ(guarded.Verdict(policy, Ev("phone", "u", "marketing", 150), 3, "phone-marketing-2", &covered, true), "");
  EXPECT_EQ(covered, "phone-marketing-2");
  // ... also from another installation of the person, in force at the event's time.
  EXPECT_EQ(guarded.Verdict(policy, Ev("tablet", "u", "marketing", 150), 7, "", &covered, true), "");
  EXPECT_EQ(covered, "phone-marketing-2");
  // A denial still comes first.
  guarded.Add(Rec("tablet", "u", "marketing", "denied", 1, 120));
  EXPECT_EQ(guarded.Verdict(policy, Ev("phone", "u", "marketing", 150), 3, "phone-marketing-2", nullptr, true),
            kRefusedConsentDenied);
}

TEST(ConsentPolicyTest, ADevicesMinorFlagBindsOnlyItsOwnInstallation) {
  ConsentPolicy policy;
  PersonConsent person;
  person.Add(Rec("phone", "u", "marketing", "granted", 1, 100));
  person.Add(Rec("tablet", "u", "marketing", "granted", 1, 100));
  ConsentRecord mark = Rec("tablet", "u", "necessary", "granted", 2, 110, "minor");
  mark.minor = 1;
  person.Add(mark);
  // The tablet said its user is a minor: its later events need a guardian; its earlier ones (by sequence) do not.
  EXPECT_TRUE(person.DeviceMinor(Ev("tablet", "u", "marketing", 150), 3));
  EXPECT_FALSE(person.DeviceMinor(Ev("tablet", "u", "marketing", 150), 1));
  EXPECT_EQ(person.Verdict(policy, Ev("tablet", "u", "marketing", 150), 3, "tablet-marketing-1"),
            kRefusedGuardianMissing);
  // The phone (same userId) said nothing of the kind: the tablet's word does not silence it.
  EXPECT_FALSE(person.DeviceMinor(Ev("phone", "u", "marketing", 150), 3));
  EXPECT_EQ(person.Verdict(policy, Ev("phone", "u", "marketing", 150), 3, "phone-marketing-1"), "");
  // Without a deviceSeq, by time.
  EXPECT_TRUE(person.DeviceMinor(Ev("tablet", "u", "marketing", 150), 0));
  EXPECT_FALSE(person.DeviceMinor(Ev("tablet", "u", "marketing", 105), 0));
  // The tablet lifts its mark: admitted again.
  ConsentRecord lift = Rec("tablet", "u", "necessary", "granted", 4, 160, "minor");
  lift.minor = 0;
  person.Add(lift);
  EXPECT_FALSE(person.DeviceMinor(Ev("tablet", "u", "marketing", 170), 5));
  EXPECT_EQ(person.Verdict(policy, Ev("tablet", "u", "marketing", 170), 5, "tablet-marketing-1"), "");
}

}  // namespace
}  // namespace ferry::collector
