#include "lib/wire/event.h"

#include <utility>
#include <vector>

#include "lib/base/time.h"

namespace ferry::wire {

namespace {

// An id or name member (CheckIdText), present when `required`. Returns "" or the reason: "missing K", "invalid K", or
// "invalid K: control character" (told apart: a sender learns which of its strings the collector will never take).
std::string CheckString(const Json& ev, const char* key, size_t max, bool required) {
  auto it = ev.find(key);
  if (it == ev.end() || it->is_null()) return required ? std::string("missing ") + key : std::string();
  if (!it->is_string()) return std::string("invalid ") + key;
  std::string_view why = CheckIdText(it->get_ref<const std::string&>(), max);
  if (why.empty()) return {};
  if (why == "control character") return std::string("invalid ") + key + ": control character";
  return std::string("invalid ") + key;
}

bool IsConsentState(const Json& j) {
  if (!j.is_string()) return false;
  const std::string& s = j.get_ref<const std::string&>();
  return s == "pending" || s == "granted" || s == "denied";
}

// Counts UTF-8 code points (the string is known to be valid UTF-8).
size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

bool IsValidPurpose(std::string_view p) {
  if (p.empty() || p.size() > 32) return false;
  for (char c : p) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

std::string_view CheckIdText(std::string_view s, size_t max_bytes) {
  if (s.empty()) return "empty";
  if (s.size() > max_bytes) return "too long";
  if (!IsValidUtf8(s)) return "not UTF-8";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size(); ++i) {
    if (p[i] < 0x20 || p[i] == 0x7F) return "control character";
    // U+0080-U+009F are C2 80 - C2 9F in UTF-8 (the string is valid UTF-8, so C2 starts a 2-byte sequence).
    if (p[i] == 0xC2 && i + 1 < s.size() && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F) return "control character";
  }
  return {};
}

size_t JsonDepth(const Json& j) {
  // Iterative walk: (node, depth of the node).
  size_t max_depth = 0;
  std::vector<std::pair<const Json*, size_t>> stack;
  stack.emplace_back(&j, 0);
  while (!stack.empty()) {
    auto [node, d] = stack.back();
    stack.pop_back();
    if (!node->is_structured()) continue;
    size_t here = d + 1;
    if (here > max_depth) max_depth = here;
    for (const auto& child : *node) {
      if (child.is_structured()) stack.emplace_back(&child, here);
    }
  }
  return max_depth;
}

size_t RawJsonDepth(std::string_view text, size_t stop_above) {
  size_t depth = 0;
  size_t max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '{':
      case '[':
        if (++depth > max_depth) {
          max_depth = depth;
          if (max_depth > stop_above) return max_depth;
        }
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return max_depth;
}

std::string ValidateEvent(const Json& ev, const Limits& limits) {
  if (!ev.is_object()) return "event is not an object";

  // messageId: 1-64 characters.
  auto mid = ev.find("messageId");
  if (mid == ev.end() || mid->is_null()) return "missing messageId";
  if (!mid->is_string()) return "invalid messageId";
  {
    const std::string& s = mid->get_ref<const std::string&>();
    std::string_view why = CheckIdText(s, SIZE_MAX);
    if (why == "control character") return "invalid messageId: control character";
    if (!why.empty() || CodePoints(s) > 64) return "invalid messageId";
  }

  auto ty = ev.find("type");
  if (ty == ev.end() || ty->is_null()) return "missing type";
  if (!ty->is_string()) return "invalid type";
  const std::string& type = ty->get_ref<const std::string&>();
  if (type != kTrack && type != kIdentify && type != kScreen && type != kAlias && type != kConsent) {
    return "invalid type";
  }

  std::string r;
  if (type == kTrack && !(r = CheckString(ev, "event", limits.max_name_bytes, true)).empty()) return r;
  if (type == kScreen && !(r = CheckString(ev, "name", limits.max_name_bytes, true)).empty()) return r;

  // userId and/or anonymousId.
  if (!(r = CheckString(ev, "userId", limits.max_name_bytes, false)).empty()) return r;
  if (!(r = CheckString(ev, "anonymousId", limits.max_name_bytes, false)).empty()) return r;
  auto has = [&](const char* k) {
    auto it = ev.find(k);
    return it != ev.end() && it->is_string();
  };
  if (!has("userId") && !has("anonymousId")) return "missing userId and anonymousId";

  auto ts = ev.find("timestamp");
  if (ts == ev.end() || ts->is_null()) return "missing timestamp";
  if (!ts->is_string() || !base::ParseIso8601(ts->get_ref<const std::string&>())) return "invalid timestamp";

  auto pu = ev.find("purpose");
  if (pu == ev.end() || pu->is_null()) return "missing purpose";
  if (!pu->is_string() || !IsValidPurpose(pu->get_ref<const std::string&>())) return "invalid purpose";

  for (const char* key : {"properties", "traits", "context"}) {
    auto it = ev.find(key);
    if (it == ev.end() || it->is_null()) continue;
    if (!it->is_object()) return std::string("invalid ") + key;
    if (JsonDepth(*it) > limits.max_depth) return "too deeply nested";
  }

  if (type == kConsent) {
    auto props = ev.find("properties");
    if (props == ev.end() || !props->is_object()) return "missing consent properties";
    auto cp = props->find("purpose");
    if (cp == props->end() || !cp->is_string() || !IsValidPurpose(cp->get_ref<const std::string&>())) {
      return "invalid consent purpose";
    }
    auto st = props->find("state");
    if (st == props->end() || !IsConsentState(*st)) return "invalid consent state";
    auto prev = props->find("previous");
    if (prev != props->end() && !prev->is_null() && !IsConsentState(*prev)) return "invalid consent previous";
    // Issue 12: how the record was collected and its receipt (optional; null = absent).
    for (const char* key : {"method", "noticeId", "noticeVersion", "language", "receiptId"}) {
      if (!(r = CheckString(*props, key, limits.max_name_bytes, false)).empty())
        return "invalid consent " + r.substr(8);
    }
    auto seq = props->find("seq");
    if (seq != props->end() && !seq->is_null() && !(seq->is_number_integer() && seq->get<int64_t>() > 0)) {
      return "invalid consent seq";
    }
  }
  // Issue 12: the device's sequence number and the receipt of the consent record that admitted the event.
  if (!(r = CheckString(ev, "consentReceipt", limits.max_name_bytes, false)).empty()) return r;
  if (auto ds = ev.find("deviceSeq"); ds != ev.end() && !ds->is_null()) {
    if (!(ds->is_number_integer() && ds->get<int64_t>() > 0)) return "invalid deviceSeq";
  }

  if (type == kAlias) {
    if (!(r = CheckString(ev, "previousId", limits.max_name_bytes, true)).empty()) return r;
    if (!has("userId")) return "alias needs userId";
  }

  // Any other member may nest too (arrays inside unknown keys): bound the whole event.
  if (JsonDepth(ev) > limits.max_depth + 1) return "too deeply nested";
  if (limits.max_event_bytes != SIZE_MAX &&
      ev.dump(-1, ' ', false, Json::error_handler_t::replace).size() > limits.max_event_bytes) {
    return "event too large";
  }
  return {};
}

}  // namespace ferry::wire
