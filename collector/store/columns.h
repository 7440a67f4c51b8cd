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
inline constexpr const char* kLinkColumns =
    "id, project_id, from_kind, from_id, user_id, source, first_seen_ms, credential, key_id, via_message_id, "
    "via_anonymous_id, asserted_ms, state, confirmed_by, confirmed_ms";
inline constexpr const char* kConsentColumns =
    "message_id, user_id, anonymous_id, purpose, state, previous, timestamp_ms, received_ms, device, method, "
    "notice_id, notice_version, language, device_seq, receipt_id, coalesce(minor, -1)";

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

// A row of kLinkColumns.
template <typename Row>
LinkRow LinkFromRow(const Row& row) {
  LinkRow l;
  l.id = row.Int(0);
  l.project_id = row.Int(1);
  l.kind = row.Text(2);
  l.from_id = row.Text(3);
  l.user_id = row.Text(4);
  l.source = row.Text(5);
  l.first_seen_ms = row.Int(6);
  l.credential = row.Text(7);
  l.key_id = row.Text(8);
  l.via_message_id = row.Text(9);
  l.via_anonymous_id = row.Text(10);
  l.asserted_ms = row.Int(11);
  l.state = row.Text(12);
  l.confirmed_by = row.Text(13);
  l.confirmed_ms = row.Int(14);
  return l;
}

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

// An outbox entry from (seq, project, kind, request_id, body, created_ms).
template <typename Row>
OutboxEntry OutboxFromRow(const Row& row, int first) {
  return OutboxEntry{row.Int(first),      row.Text(first + 1), row.Text(first + 2),
                     row.Text(first + 3), row.Text(first + 4), row.Int(first + 5)};
}

// An outbox delivery from (seq, destination, state, attempts, next_ms, last_status, last_error, delivered_ms).
template <typename Row>
OutboxDelivery DeliveryFromRow(const Row& row, int first) {
  OutboxDelivery d;
  d.seq = row.Int(first);
  d.destination = row.Text(first + 1);
  d.state = row.Text(first + 2);
  d.attempts = row.Int(first + 3);
  d.next_ms = row.Int(first + 4);
  d.last_status = row.Int(first + 5);
  d.last_error = row.Text(first + 6);
  d.delivered_ms = row.Int(first + 7);
  return d;
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
  ConsentRecord r{row.Text(0),  row.Text(1),  row.Text(2),  row.Text(3), row.Text(4),
                  row.Text(5),  row.Int(6),   row.Int(7),   row.Text(8), row.Text(9),
                  row.Text(10), row.Text(11), row.Text(12), row.Int(13), row.Text(14)};
  r.minor = static_cast<int>(row.Int(15));
  return r;
}

// Columns id, name, prefix, roles, created_ms, revoked_ms (0 while valid), expires_ms (0: none).
template <typename Row>
AdminTokenRow TokenFromRow(const Row& row) {
  return AdminTokenRow{row.Int(0), row.Text(1), row.Text(2), row.Text(3), row.Int(4), row.Int(5), row.Int(6)};
}

// Columns id, project name, prefix, kind, created_ms, revoked_ms (0), expires_ms (0).
template <typename Row>
WriteKeyRecord WriteKeyFromRow(const Row& row) {
  return WriteKeyRecord{row.Int(0), row.Text(1), row.Text(2), row.Text(3), row.Int(4), row.Int(5), row.Int(6)};
}

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_COLUMNS_H_
