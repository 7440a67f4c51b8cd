#include "agent/api.h"

#include <sodium.h>

#include <algorithm>

#include "lib/base/time.h"
#include "lib/wire/event.h"
#include "lib/wire/json_body.h"

namespace ferry::agent {

using Json = nlohmann::json;

namespace {

Verdict Refuse(int http_status, base::Code code, const char* result, std::string reason) {
  Verdict v;
  v.ok = false;
  v.http_status = http_status;
  v.code = code;
  v.result = result;
  v.reason = std::move(reason);
  return v;
}

Verdict Unauthorized(std::string reason) {
  return Refuse(401, base::Code::kUnauthenticated, "unauthorized", std::move(reason));
}

Verdict Forbidden(std::string reason) {
  return Refuse(403, base::Code::kPermissionDenied, "forbidden", std::move(reason));
}

bool Listed(const std::vector<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

// Every listed connection's uid or gid is allowed (none listed: refused).
bool PeersAllowed(const std::vector<PeerCred>& peers, const AccessPolicy& p) {
  if (peers.empty()) return false;
  for (const auto& c : peers) {
    bool uid = std::find(p.consent_uids.begin(), p.consent_uids.end(), c.uid) != p.consent_uids.end();
    bool gid = std::find(p.consent_gids.begin(), p.consent_gids.end(), c.gid) != p.consent_gids.end();
    if (!uid && !gid) return false;
  }
  return true;
}

bool ValidLocalToken(const Caller& c, const AccessPolicy& p) {
  return !p.local_token.empty() && SameSecret(c.bearer, p.local_token);
}

}  // namespace

bool SameSecret(std::string_view a, std::string_view b) {
  // Hashing first makes the comparison independent of both lengths; sodium_memcmp compares in constant time.
  unsigned char ha[32], hb[32];
  crypto_generichash(ha, sizeof ha, reinterpret_cast<const unsigned char*>(a.data()), a.size(), nullptr, 0);
  crypto_generichash(hb, sizeof hb, reinterpret_cast<const unsigned char*>(b.data()), b.size(), nullptr, 0);
  bool same = sodium_memcmp(ha, hb, sizeof ha) == 0;
  sodium_memzero(ha, sizeof ha);
  sodium_memzero(hb, sizeof hb);
  return same;
}

Verdict Admit(Route route, const Caller& c, const AccessPolicy& p) {
  Verdict ok;
  // Pages.
  if (route == Route::kBatch) {
    if (c.has_origin || c.browser_fetch) {
      return Forbidden(
          "POST /v1/batch is for agents only, never for web pages (the request has an Origin or "
          "Sec-Fetch header)");
    }
  } else if (c.has_origin) {
    if (!Listed(p.origins, c.origin)) return Forbidden("origin " + c.origin + " is not in cors.origins");
    ok.allow_origin = c.origin;
  }

  // Credentials.
  switch (route) {
    case Route::kBatch:
      if (p.forward_token.empty()) {
        return Forbidden("agent-to-agent forwarding is off on this agent (no forward_token in its config)");
      }
      if (!SameSecret(c.bearer, p.forward_token)) {
        return Unauthorized("missing or wrong forward token (Authorization: Bearer <forward_token>)");
      }
      return ok;
    case Route::kConsentChange:
      if (!c.unix_socket) {
        if (!p.local_token.empty() && !ValidLocalToken(c, p)) {
          return Unauthorized("missing or wrong local token (Authorization: Bearer ...)");
        }
        if (!c.loopback_peer) {
          return Forbidden("device consent is changed from this device only (loopback or socket)");
        }
        if (p.local_token.empty()) {
          return Forbidden(
              "consent changes over TCP need local_token in the agent config (and the token in "
              "Authorization: Bearer ...), or the Unix socket with unix_socket.consent_uids/consent_gids");
        }
        return ok;
      }
      if (ValidLocalToken(c, p)) return ok;
      if (!c.bearer.empty()) return Unauthorized("wrong local token (Authorization: Bearer ...)");
      if (PeersAllowed(c.peers, p)) return ok;
      return Forbidden(
          "this socket peer may not change consent: its uid/gid is not in unix_socket.consent_uids or "
          "consent_gids, and no local token was sent");
    default: break;
  }
  bool open_to_loopback = route == Route::kHealth || route == Route::kMetrics;
  if (!c.unix_socket && !p.local_token.empty() && !(open_to_loopback && c.loopback_peer) && !ValidLocalToken(c, p)) {
    return Unauthorized("missing or wrong local token (Authorization: Bearer ...)");
  }
  return ok;
}

bool NeedsPeerCredentials(Route route, const Caller& c, const AccessPolicy& p) {
  return route == Route::kConsentChange && c.unix_socket && c.bearer.empty() && !ValidLocalToken(c, p);
}

Verdict AdmitPreflight(std::string_view path, const Caller& c, const AccessPolicy& p) {
  if (path == "/v1/batch") return Forbidden("POST /v1/batch is for agents only, never for web pages");
  if (!c.has_origin || !Listed(p.origins, c.origin)) {
    return Forbidden("origin '" + c.origin + "' is not in cors.origins");
  }
  Verdict ok;
  ok.allow_origin = c.origin;
  return ok;
}

base::Status ParseObject(std::string_view body, Json* out) {
  const wire::JsonLimits limits = wire::BodyLimits();
  auto parsed = wire::ParseJson(body, limits);
  if (!parsed.ok()) {
    if (parsed.status().message() != "JSON nested too deeply") return parsed.status();
    return base::Status::InvalidArgument("the body nests deeper than " + std::to_string(limits.max_depth));
  }
  *out = std::move(parsed).value();
  if (!out->is_object()) return base::Status::InvalidArgument("the body must be a JSON object");
  return base::Status::Ok();
}

std::string ControlCharProblem(std::string_view key, std::string_view value) {
  for (size_t i = 0; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    bool c1 = c == 0xC2 && i + 1 < value.size() && static_cast<unsigned char>(value[i + 1]) >= 0x80 &&
              static_cast<unsigned char>(value[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7F || c1) {
      return std::string(key) +
             " holds a control character (U+0000-U+001F, U+007F-U+009F are refused in ids and names)";
    }
  }
  return "";
}

std::string EventIdsProblem(const Json& ev) {
  if (!ev.is_object()) return "";
  for (const char* k : {"messageId", "userId", "anonymousId", "previousId", "event", "name"}) {
    auto it = ev.find(k);
    if (it == ev.end() || !it->is_string()) continue;
    std::string why = ControlCharProblem(k, it->get_ref<const std::string&>());
    if (!why.empty()) return why;
  }
  return "";
}

std::string ParseEventRequest(std::string_view type, std::string_view body, EventRequest* out) {
  Json j;
  if (base::Status parsed = ParseObject(body, &j); !parsed.ok()) return parsed.message();
  return ParseEventObject(type, j, out);
}

EventsRequest ParseEventsBody(std::string_view body) {
  EventsRequest out;
  auto fail = [&](int status, base::Code code, std::string why) {
    out.http_status = status;
    out.code = code;
    out.error = std::move(why);
    out.items.clear();
    return std::move(out);
  };
  Json j;
  if (base::Status parsed = ParseObject(body, &j); !parsed.ok()) {
    bool large = parsed.code() == base::Code::kResourceExhausted;
    return fail(large ? 413 : 400, parsed.code(), parsed.message());
  }
  auto evs = j.find("events");
  if (evs == j.end() || !evs->is_array() || j.size() != 1) {
    return fail(400, base::Code::kInvalidArgument,
                "the body must be {\"events\": [...]}, each event an object with \"type\" (track, screen or identify) "
                "and that route's members");
  }
  const size_t max_events = wire::Limits().max_batch_events;
  if (evs->size() > max_events) {
    return fail(413, base::Code::kResourceExhausted, "more than " + std::to_string(max_events) + " events");
  }
  if (evs->empty()) return fail(400, base::Code::kInvalidArgument, "events is empty");
  out.items.resize(evs->size());
  for (size_t i = 0; i < evs->size(); ++i) {
    const Json& ev = (*evs)[i];
    EventsRequest::Item& item = out.items[i];
    auto t = ev.is_object() ? ev.find("type") : ev.end();
    if (!ev.is_object() || t == ev.end() || !t->is_string()) {
      item.invalid = "each event must be an object with \"type\": track, screen or identify";
      continue;
    }
    item.type = t->get<std::string>();
    if (item.type != "track" && item.type != "screen" && item.type != "identify") {
      item.invalid = "unknown type '" + item.type + "' (track, screen or identify)";
      continue;
    }
    item.invalid = ParseEventObject(item.type, ev, &item.req, true);
  }
  return out;
}

std::string ParseEventObject(std::string_view type, const Json& j, EventRequest* out, bool typed) {
  std::string why;
  const char* name_key = type == "track" ? "event" : type == "screen" ? "name" : nullptr;
  const char* payload_key = type == "identify" ? "traits" : "properties";
  if (name_key == nullptr && type != "identify") return "unknown event type '" + std::string(type) + "'";
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    // An id or a name: a string without control characters.
    auto str = [&](std::string* s, bool id) {
      if (!it->is_string()) {
        why = k + " must be a string";
        return;
      }
      *s = it->get<std::string>();
      if (id) why = ControlCharProblem(k, *s);
    };
    if (name_key != nullptr && k == name_key) {
      str(&out->name, true);
    } else if (k == payload_key) {
      if (!it->is_object()) {
        why = k + " must be a JSON object";
      } else {
        out->payload = it->dump(-1, ' ', false, Json::error_handler_t::replace);
        out->has_payload = true;
      }
    } else if (k == "purpose" && type == "track") {
      str(&out->purpose, false);
      out->has_purpose = true;
    } else if (k == "userId") {
      str(&out->user_id, true);
    } else if (k == "anonymousId") {
      str(&out->anonymous_id, true);
    } else if (k == "messageId") {
      str(&out->message_id, true);
      if (why.empty() && out->message_id.empty()) why = "messageId must be 1-64 chars";
    } else if (k == "timestamp") {
      std::string ts;
      str(&ts, false);
      if (why.empty()) {
        auto ms = base::ParseIso8601(ts);
        if (!ms) {
          why = "timestamp is not ISO 8601 (e.g. 2026-01-02T03:04:05.678Z)";
        } else {
          out->timestamp_ms = *ms;
        }
      }
    } else if (typed && k == "type") {
      // checked by the caller
    } else {
      why = "unknown key '" + k + "' for " + std::string(type);
    }
    if (!why.empty()) return why;
  }
  if (name_key != nullptr && !j.contains(name_key)) return std::string(name_key) + " is required";
  if (type == "identify" && out->user_id.empty()) return "userId is required";
  return "";
}

std::string NecessaryProblem(std::string_view type, std::string_view purpose, std::string_view name,
                             const std::vector<std::string>& necessary_events) {
  if (purpose != "necessary") return "";
  if (type == "consent") return "";
  if (type == "track" && Listed(necessary_events, name)) return "";
  if (type != "track") {
    return "purpose 'necessary' is only for consent records and for the track events listed in necessary_events";
  }
  return "purpose 'necessary' is only for the events the device owner listed in necessary_events of the agent "
         "config; '" +
         std::string(name) + "' is not listed (send it under a purpose the person can grant, e.g. analytics)";
}

std::string ParseConsentBody(std::string_view body, std::string* state) {
  Json j;
  if (base::Status parsed = ParseObject(body, &j); !parsed.ok()) return parsed.message();
  auto st = j.find("state");
  if (j.size() == 1 && st != j.end() && st->is_string()) {
    const std::string& s = st->get_ref<const std::string&>();
    if (s == "granted" || s == "denied" || s == "pending") {
      *state = s;
      return "";
    }
  }
  return "the body must be {\"state\": \"granted\" | \"denied\" | \"pending\"}";
}

PreparedBatch PrepareBatch(std::string_view body, int64_t received_ms,
                           const std::vector<std::string>& necessary_events) {
  PreparedBatch out;
  wire::Limits limits;
  auto fail = [&](int status, base::Code code, std::string why) {
    out.http_status = status;
    out.code = code;
    out.error = std::move(why);
    return std::move(out);
  };
  Json j;
  if (base::Status parsed = ParseObject(body, &j); !parsed.ok()) {
    // Too large for the parser: 413 like the collector's /v1/batch; else 400.
    bool large = parsed.code() == base::Code::kResourceExhausted;
    return fail(large ? 413 : 400, parsed.code(), parsed.message());
  }
  auto b = j.find("batch");
  if (b == j.end() || !b->is_array()) return fail(400, base::Code::kInvalidArgument, "batch must be a list of events");
  if (b->size() > limits.max_batch_events) {
    return fail(413, base::Code::kResourceExhausted,
                "more than " + std::to_string(limits.max_batch_events) + " events");
  }
  int64_t skew = 0;
  if (auto sa = j.find("sentAt"); sa != j.end() && sa->is_string()) {
    if (auto sent = base::ParseIso8601(sa->get<std::string>())) skew = received_ms - *sent;
  }
  for (size_t i = 0; i < b->size(); ++i) {
    Json& ev = (*b)[i];
    std::string reason = wire::ValidateEvent(ev, limits);
    if (reason.empty()) reason = EventIdsProblem(ev);
    if (reason.empty()) {
      const char* name_key = ev["type"] == "screen" ? "name" : "event";
      auto n = ev.find(name_key);
      std::string name = n != ev.end() && n->is_string() ? n->get<std::string>() : "";
      std::string problem =
          NecessaryProblem(ev["type"].get<std::string>(), ev["purpose"].get<std::string>(), name, necessary_events);
      if (!problem.empty()) reason = "necessary_not_allowed: " + problem;
    }
    if (!reason.empty()) {
      std::string id;
      if (ev.is_object()) {
        auto mid = ev.find("messageId");
        if (mid != ev.end() && mid->is_string()) id = mid->get<std::string>();
      }
      out.rejected.push_back({{"index", i}, {"messageId", id}, {"reason", reason}});
      continue;
    }
    if (skew != 0) {
      auto ts = base::ParseIso8601(ev["timestamp"].get<std::string>());
      std::string corrected = ts ? base::FormatIso8601(*ts + skew) : "";
      // A sender's clock far off can move a time out of what ISO 8601 here can say (before year 0, after 9999).
      if (!base::ParseIso8601(corrected)) {
        out.rejected.push_back({{"index", i},
                                {"messageId", ev["messageId"]},
                                {"reason", "invalid timestamp (out of range once corrected by the sender's clock)"}});
        continue;
      }
      ev["timestamp"] = corrected;
    }
    out.events.push_back(std::move(ev));
    out.index.push_back(i);
  }
  if (auto d = j.find("dropped"); d != j.end() && d->is_object()) {
    auto e = d->find("evicted");
    if (e != d->end() && e->is_number_integer() && e->get<int64_t>() > 0) out.evicted = e->get<int64_t>();
  }
  return out;
}

}  // namespace ferry::agent
