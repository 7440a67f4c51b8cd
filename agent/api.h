// The local API's rules, apart from any HTTP server and from the pipeline: who may call which route (tokens, origins,
// Unix-socket peers), and what a request body must hold (events, forwarded batches, consent changes). Pure functions
// on plain types, so that the HTTP front (agent/http_front.h, on lib/httpd) only gathers the facts of a request and
// sends the answer, and so that the fuzz target (tests/fuzz/fuzz_agent_api.cc) reaches every body parser.
#ifndef FERRY_AGENT_API_H_
#define FERRY_AGENT_API_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/status.h"

namespace ferry::agent {

// ---- Access ----------------------------------------------------------------------------------------------------

enum class Route {
  kEvent,          // POST /v1/track, /v1/screen, /v1/identify, /v1/events
  kBatch,          // POST /v1/batch (agent -> agent)
  kConsentRead,    // GET /v1/consent
  kConsentChange,  // PUT /v1/consent/{purpose}
  kHealth,         // GET /healthz
  kMetrics,        // GET /metrics
};

// The credentials of a Unix-socket peer (SO_PEERCRED: taken by the kernel when the peer connected).
struct PeerCred {
  int64_t pid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// What the front knows about a request before its body is read.
struct Caller {
  bool unix_socket = false;    // came in on the Unix socket (else TCP)
  bool loopback_peer = false;  // TCP: the peer address is loopback
  bool has_origin = false;     // an Origin header was sent (a web page's request)
  std::string origin;
  bool browser_fetch = false;  // Sec-Fetch-Site or Sec-Fetch-Mode was sent (only browsers send them)
  std::string bearer;          // the token of "Authorization: Bearer ...", "" when none
  // Unix socket: the credentials of the caller's connection (SO_PEERCRED, taken when it connected). Every one listed
  // must be allowed to change consent. Empty = unknown (refused).
  std::vector<PeerCred> peers;
};

// The access part of the config (AgentConfig), as the front holds it between reloads.
struct AccessPolicy {
  std::string local_token;             // TCP callers' token ("" = none configured)
  std::string forward_token;           // the only credential of POST /v1/batch ("" = the route is off)
  std::vector<std::string> origins;    // cors.origins
  std::vector<uint32_t> consent_uids;  // unix_socket.consent_uids
  std::vector<uint32_t> consent_gids;  // unix_socket.consent_gids
};

// The answer of Admit: ok, or the error to send (the request's body is not read then).
struct Verdict {
  bool ok = true;
  int http_status = 0;  // 401, 403
  base::Code code = base::Code::kOk;
  std::string result;  // "unauthorized" | "forbidden"
  std::string reason;
  std::string allow_origin;  // when ok and the request came from an allowed page: Access-Control-Allow-Origin
};

// Who may call a route:
// - a request with an Origin header is served only when the origin is in cors.origins; POST /v1/batch never serves a
//   page (an Origin or a Sec-Fetch-* header is refused, whatever cors.origins says);
// - POST /v1/batch needs "Bearer <forward_token>" on either listener (never the local token); without a configured
//   forward_token the route is off (403);
// - PUT /v1/consent/{purpose}: over TCP from a loopback peer with the local token (a configured one: without
//   local_token, TCP cannot change consent); over the Unix socket with the local token, or from a peer whose uid is
//   in consent_uids or whose gid is in consent_gids (every connection listed in caller.peers);
// - the other routes: TCP callers need the local token when one is configured (/healthz and /metrics are open to
//   loopback peers); Unix-socket callers are trusted by the socket's file mode.
// Secrets are compared in constant time (BLAKE2b of both sides, then sodium_memcmp).
Verdict Admit(Route route, const Caller& caller, const AccessPolicy& policy);

// Whether Admit needs caller.peers for this request (a consent change on the Unix socket without a valid token), so
// the front looks the peer up only then.
bool NeedsPeerCredentials(Route route, const Caller& caller, const AccessPolicy& policy);

// A CORS preflight (OPTIONS) for `path`: ok with allow_origin for an allowed origin; 403 for any other origin, for a
// preflight without an Origin, and always for /v1/batch.
Verdict AdmitPreflight(std::string_view path, const Caller& caller, const AccessPolicy& policy);

// Constant-time comparison of two secrets of any length.
bool SameSecret(std::string_view a, std::string_view b);

// ---- Bodies ----------------------------------------------------------------------------------------------------

// Parses a request body as a JSON object with the one parser for outside bodies (wire::ParseJson with
// wire::BodyLimits(): at most 5 MiB and 43 deep, checked on the text before anything is built). InvalidArgument (not
// JSON, too deep, not an object) or ResourceExhausted (too large) with the reason.
base::Status ParseObject(std::string_view body, nlohmann::json* out);

// "" when an id or a name holds no control character, else the reason ("userId holds a control character ...").
// Control characters: U+0000-U+001F, U+007F and U+0080-U+009F; `value` is valid UTF-8 (the JSON parser checked).
// The agent's copy of the rule; lib/wire's shared check replaces its body once it is on this branch.
std::string ControlCharProblem(std::string_view key, std::string_view value);

// The ids and names of a built event (messageId, userId, anonymousId, previousId, event, name): "" or the reason.
std::string EventIdsProblem(const nlohmann::json& ev);

// One event of the local API (POST /v1/track | /v1/screen | /v1/identify).
struct EventRequest {
  std::string name;  // event (track) or name (screen)
  std::string purpose = "analytics";
  bool has_purpose = false;
  std::string payload;  // properties / traits, serialised
  bool has_payload = false;
  std::string user_id, anonymous_id, message_id;
  int64_t timestamp_ms = 0;  // 0 = now
};

// Parses and checks the body of an event route (type: track, screen or identify). "" or the reason (a 400).
std::string ParseEventRequest(std::string_view type, std::string_view body, EventRequest* out);
// The same checks on one parsed event object. typed: the object also carries "type" (POST /v1/events), which is
// then not an unknown member.
std::string ParseEventObject(std::string_view type, const nlohmann::json& j, EventRequest* out, bool typed = false);

// POST /v1/events: {"events": [{"type": "track" | "screen" | "identify", <that route's members>}, ...]}, at most
// wire::Limits::max_batch_events of them.
struct EventsRequest {
  // Set when the body as a whole is refused (400 not a list of events, 413 too many): nothing is recorded.
  int http_status = 0;
  base::Code code = base::Code::kOk;
  std::string error;
  struct Item {
    std::string type;
    EventRequest req;
    std::string invalid;  // "" or why this event is refused (the others are still recorded)
  };
  std::vector<Item> items;  // one per event, in order
};
EventsRequest ParseEventsBody(std::string_view body);

// The device owner's rule for the built-in purpose "necessary" (always granted, so it would bypass every consent):
// "" when an event of `type` named `name` may carry `purpose`, else the reason. Allowed: any purpose but
// "necessary"; "necessary" for a consent record (type "consent", forwarded by an agent holding the forward token) and
// for a track event whose name is in `necessary_events` (the config's list, empty by default).
std::string NecessaryProblem(std::string_view type, std::string_view purpose, std::string_view name,
                             const std::vector<std::string>& necessary_events);

// Parses the body of PUT /v1/consent/{purpose}: {"state": "granted" | "denied" | "pending"}. "" or the reason.
std::string ParseConsentBody(std::string_view body, std::string* state);

// A forwarded batch (POST /v1/batch), checked and ready for the pipeline.
struct PreparedBatch {
  // Set when the body as a whole is refused (400 not a batch, 413 too many events): nothing is recorded.
  int http_status = 0;
  base::Code code = base::Code::kOk;
  std::string error;

  std::vector<nlohmann::json> events;                 // valid events, timestamps corrected by the sender's clock skew
  std::vector<size_t> index;                          // each one's index in the batch
  nlohmann::json rejected = nlohmann::json::array();  // [{"index", "messageId", "reason"}]
  int64_t evicted = 0;                                // "dropped": {"evicted": n} reported by the sender
};

// Checks a batch in the collector's format: each event as the collector would (wire::ValidateEvent), its ids and
// names (no control characters) and the "necessary" rule; timestamps are moved by received_ms - sentAt.
PreparedBatch PrepareBatch(std::string_view body, int64_t received_ms,
                           const std::vector<std::string>& necessary_events);

}  // namespace ferry::agent

#endif  // FERRY_AGENT_API_H_
