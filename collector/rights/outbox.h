// The downstream outbox (GDPR art. 19; docs/COMPLIANCE.md "Telling downstream systems"): every erasure,
// rectification and restriction is put on an outbox in the transaction that carries it out, read by consumers as a
// paged feed they acknowledge (GET /v1/outbox, POST /v1/outbox/ack) and pushed to the configured webhooks, signed
// with Ed25519 (libsodium, a detached signature over the body) and retried with backoff (collector/http/webhooks.h).
// An entry names the subject's ids (downstream systems know the person by them); they are kept sealed
// (crypto_secretbox under a key of the store), never as plain text, so an erased id is found nowhere in the store's
// text.
#ifndef FERRY_COLLECTOR_RIGHTS_OUTBOX_H_
#define FERRY_COLLECTOR_RIGHTS_OUTBOX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "collector/rights/documents.h"
#include "collector/store/interfaces.h"
#include "lib/base/status.h"

namespace ferry::collector::rights {

// A change downstream systems must hear of.
struct Propagation {
  std::string kind;              // "erasure", "rectification", "restriction" or "restriction_lifted"
  std::string project;           // "" = every project
  std::string request_id;        // the request register's entry that carried it out
  std::vector<std::string> ids;  // the subject's ids (userId, anonymousIds, previousIds)
  Json change = Json::object();  // what changed: rectification {"traits": {...}}, restriction {"purposes": [...]}
};

// The `change` of a restriction or its lifting: the purposes it covers (empty: every purpose).
inline Json RestrictionChange(const std::vector<std::string>& purposes) { return Json{{"purposes", purposes}}; }

// A webhook destination: a name (shown on the request's deliveries) and an https URL (http only to loopback).
struct WebhookDestination {
  std::string name, url;
};

class Outbox {
 public:
  explicit Outbox(std::vector<WebhookDestination> webhooks = {});

  // Puts `p` on the outbox inside the caller's transaction (the change and its entry commit together), with a
  // pending delivery per webhook. The one call every rights action that changes a subject makes.
  base::Status Record(StoreTxn& tx, const Propagation& p) const;

  const std::vector<WebhookDestination>& webhooks() const { return webhooks_; }

  // The document a consumer or a webhook receives for an entry: {"seq", "kind", "project", "requestId", "at",
  // "ids", "change"}; InvalidArgument when the sealed body cannot be opened.
  static base::Result<Json> Open(StoreTxn& tx, const OutboxEntry& e);
  // The Ed25519 public key of this store's outbox (base64), and a detached signature (base64) of `body`.
  static base::Result<std::string> PublicKey(StoreTxn& tx);
  static base::Result<std::string> Sign(StoreTxn& tx, const std::string& body);

 private:
  std::vector<WebhookDestination> webhooks_;
};

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_OUTBOX_H_
