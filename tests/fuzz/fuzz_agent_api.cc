// libFuzzer target: the agent's local API as an attacker reaches it (agent/api.h), bodies and the facts of a
// request, without the pipeline behind it. The first byte picks the entry point, the rest is its input:
//   0 track, 1 screen, 2 identify body (ParseEventRequest, then the "necessary" rule)
//   3 forwarded batch (PrepareBatch)
//   4 consent body (ParseConsentBody)
//   5 Host header (net::IsAllowedHost) and a configured name (net::NormalizeHostName)
//   6 access (Admit, AdmitPreflight) with the input as token, origin and path
// Besides not crashing, what the parsers accept must hold: no control character in an accepted id or name, every
// event of a prepared batch valid and accounted for, an accepted Host free of blanks and control characters.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "agent/api.h"
#include "lib/net/address.h"
#include "lib/wire/event.h"

namespace {

using ferry::agent::Caller;
using ferry::agent::Route;

void Require(bool ok) {
  if (!ok) std::abort();
}

bool Clean(std::string_view s) { return ferry::agent::ControlCharProblem("x", s).empty(); }

void Event(std::string_view type, std::string_view body) {
  ferry::agent::EventRequest req;
  if (!ferry::agent::ParseEventRequest(type, body, &req).empty()) return;
  Require(Clean(req.name) && Clean(req.user_id) && Clean(req.anonymous_id) && Clean(req.message_id));
  Require(type != "identify" || !req.user_id.empty());
  static const std::vector<std::string> necessary = {"payment_receipt"};
  std::string why = ferry::agent::NecessaryProblem(type, req.purpose, req.name, necessary);
  Require(why.empty() == (req.purpose != "necessary" || (type == "track" && req.name == "payment_receipt")));
}

void Batch(std::string_view body) {
  static const std::vector<std::string> necessary = {"payment_receipt"};
  ferry::agent::PreparedBatch b = ferry::agent::PrepareBatch(body, 1767225600000, necessary);
  if (b.http_status != 0) {
    Require(b.events.empty() && !b.error.empty());
    return;
  }
  Require(b.events.size() == b.index.size());
  for (const auto& ev : b.events) {
    Require(ferry::wire::ValidateEvent(ev).empty() || ferry::wire::ValidateEvent(ev) == "event too large");
    Require(ferry::agent::EventIdsProblem(ev).empty());
    Require(ev["purpose"] != "necessary" || ev["type"] == "consent" || ev.value("event", "") == "payment_receipt");
  }
}

void Host(std::string_view input) {
  static const std::vector<std::string> names = {"kiosk.local", "[fe80::1]"};
  if (ferry::net::IsAllowedHost(input, names)) {
    for (char c : input) Require(static_cast<unsigned char>(c) > 0x20 && c != 0x7F && c != '@' && c != '/');
  }
  std::string n = ferry::net::NormalizeHostName(input);
  if (!n.empty()) Require(ferry::net::IsAllowedHost(n.find(':') != std::string::npos ? "[" + n + "]" : n, {n}));
}

void Access(std::string_view input) {
  ferry::agent::AccessPolicy p;
  p.local_token = "local-token-0123456789";
  p.forward_token = "forward-token-0123456789";
  p.origins = {"http://localhost:3000"};
  p.consent_uids = {1000};
  size_t cut = input.find('\n');
  Caller c;
  c.bearer = std::string(input.substr(0, cut));
  c.has_origin = cut != std::string_view::npos;
  c.origin = c.has_origin ? std::string(input.substr(cut + 1)) : "";
  c.unix_socket = input.size() % 2 == 0;
  c.loopback_peer = true;
  for (Route r :
       {Route::kEvent, Route::kBatch, Route::kConsentRead, Route::kConsentChange, Route::kHealth, Route::kMetrics}) {
    ferry::agent::Verdict v = ferry::agent::Admit(r, c, p);
    // The batch route: only the forward token, never from a page.
    if (r == Route::kBatch && v.ok) Require(c.bearer == p.forward_token && !c.has_origin);
    if (!v.ok) Require(v.http_status == 401 || v.http_status == 403);
  }
  ferry::agent::Verdict pre = ferry::agent::AdmitPreflight(c.origin, c, p);
  if (pre.ok) Require(c.origin == "http://localhost:3000");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 7) {
    case 0: Event("track", in); break;
    case 1: Event("screen", in); break;
    case 2: Event("identify", in); break;
    case 3: Batch(in); break;
    case 4: {
      std::string state;
      if (ferry::agent::ParseConsentBody(in, &state).empty()) {
        Require(state == "granted" || state == "denied" || state == "pending");
      }
      break;
    }
    case 5: Host(in); break;
    default: Access(in); break;
  }
  return 0;
}
