// Minors at the collector (issue 12 item 8): a subject is a minor when a compliance officer marks it (a MinorMark,
// kept per id of the subject like a restriction) or when the device the event comes from says so (its consent
// records' `minor`, consent_policy.h). For a minor, every purpose other than "necessary" needs a guardian's grant
// (method "guardian"); without one, ingest refuses the event with the reason `guardian_missing`.
#ifndef FERRY_COLLECTOR_STORE_MINORS_H_
#define FERRY_COLLECTOR_STORE_MINORS_H_

#include <cstdint>
#include <string>

namespace ferry::collector {

inline constexpr const char* kRefusedGuardianMissing = "guardian_missing";

// An officer's mark on one id of a subject in a project (POST /v1/subjects/{id}/minor): in force while lifted_ms is
// 0 (DELETE lifts it). Erased with the subject.
struct MinorMark {
  int64_t id = 0;
  int64_t project_id = 0;
  std::string project;     // the project's name (filled in on reads)
  std::string subject_id;  // one id of the subject (userId or anonymousId)
  std::string marked_by;   // the officer (the admin token's name)
  int64_t since_ms = 0;
  int64_t lifted_ms = 0;  // 0 while in force
  std::string lifted_by;  // "" while in force
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_MINORS_H_
