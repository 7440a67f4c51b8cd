// The column lists every engine selects records with, and the records made from a result row, written once. A Row
// is any type with `std::string Text(int column) const` and `int64_t Int(int column) const` (column 0 first).
#ifndef FERRY_COLLECTOR_STORE_COLUMNS_H_
#define FERRY_COLLECTOR_STORE_COLUMNS_H_

#include "collector/store/engine.h"
#include "collector/store/records.h"

namespace ferry::collector {

inline constexpr const char* kRequestColumns =
    "id, kind, project, subject, subject_hash, state, source, received_ms, due_ms, acted_by, acted_ms, result";
inline constexpr const char* kAuditColumns =
    "seq, time_ms, actor, role, action, subject_hash, result, detail, prev_hash, hash";
inline constexpr const char* kEventColumns =
    "message_id, type, user_id, anonymous_id, name, purpose, timestamp_ms, received_ms, body";
inline constexpr const char* kConsentColumns =
    "message_id, user_id, anonymous_id, purpose, state, previous, timestamp_ms, received_ms, device";

// Where a subject id may be held, as (table, column), in the order an engine probes them: as a userId
// (EngineTxn::HeldAsUserId probes the first two, or all three with consent_too) and as an anonymous id
// (EngineTxn::HeldAsAnonymousId).
struct IdHolder {
  const char* table;
  const char* column;
};
inline constexpr IdHolder kUserIdHolders[] = {
    {"events", "user_id"}, {"identity_links", "user_id"}, {"consent_ledger", "user_id"}};
inline constexpr IdHolder kAnonymousIdHolders[] = {
    {"events", "anonymous_id"}, {"consent_ledger", "anonymous_id"}, {"traits", "subject_id"}};

template <typename Row>
RightsRequest RequestFromRow(const Row& row) {
  return RightsRequest{row.Text(0), row.Text(1), row.Text(2), row.Text(3), row.Text(4), row.Text(5),
                       row.Text(6), row.Int(7),  row.Int(8),  row.Text(9), row.Int(10), row.Text(11)};
}

template <typename Row>
AuditEntry AuditFromRow(const Row& row) {
  return AuditEntry{row.Int(0),  row.Int(1),  row.Text(2), row.Text(3), row.Text(4),
                    row.Text(5), row.Text(6), row.Text(7), row.Text(8), row.Text(9)};
}

// kEventColumns from column `first` on.
template <typename Row>
EventRow EventFromRow(const Row& row, const std::string& project, int first = 0) {
  return EventRow{project,
                  row.Text(first),
                  row.Text(first + 1),
                  row.Text(first + 2),
                  row.Text(first + 3),
                  row.Text(first + 4),
                  row.Text(first + 5),
                  row.Int(first + 6),
                  row.Int(first + 7),
                  row.Text(first + 8)};
}

template <typename Row>
ConsentRecord ConsentFromRow(const Row& row) {
  return ConsentRecord{row.Text(0), row.Text(1), row.Text(2), row.Text(3), row.Text(4),
                       row.Text(5), row.Int(6),  row.Int(7),  row.Text(8)};
}

// Columns id, name, prefix, roles, created_ms, revoked_ms (0 while valid), expires_ms (0: none).
template <typename Row>
AdminTokenRow TokenFromRow(const Row& row) {
  return AdminTokenRow{row.Int(0), row.Text(1), row.Text(2), row.Text(3), row.Int(4), row.Int(5), row.Int(6)};
}

// Columns id, project name, prefix, created_ms, revoked_ms (0), expires_ms (0).
template <typename Row>
WriteKeyRecord WriteKeyFromRow(const Row& row) {
  return WriteKeyRecord{row.Int(0), row.Text(1), row.Text(2), row.Int(3), row.Int(4), row.Int(5)};
}

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_COLUMNS_H_
