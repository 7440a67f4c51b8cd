// The rules parser and the path patterns. pii.h documents the rules JSON; docs/PII.md has the examples.
#include "sdk/pii/rules.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "sdk/pii/text.h"

namespace ferry::pii {
namespace {

using nlohmann::json;

constexpr const char* kDefaultDrops[] = {"*.password", "*.token", "*.secret"};

// Equal up to ASCII case.
bool EqualFold(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (Lower(a[k]) != Lower(b[k])) return false;
  }
  return true;
}

bool SegMatch(const std::string& pat, std::string_view key) {
  return (pat.size() == 1 && pat[0] == '*') || EqualFold(pat, key);
}

// The same pattern up to ASCII case ("*" only equals "*").
bool SamePattern(const Pattern& a, const Pattern& b) {
  if (a.any_depth != b.any_depth || a.segs.size() != b.segs.size()) return false;
  for (size_t k = 0; k < a.segs.size(); ++k) {
    if (!EqualFold(a.segs[k], b.segs[k])) return false;
  }
  return true;
}

base::Result<Pattern> ParsePattern(const std::string& text) {
  Pattern pt;
  pt.text = text;
  if (text.empty()) return base::Status::InvalidArgument("pii rules: empty path pattern");
  size_t start = 0;
  for (;;) {
    size_t dot = text.find('.', start);
    std::string seg = text.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (seg.empty()) return base::Status::InvalidArgument("pii rules: empty segment in path pattern \"" + text + "\"");
    if (seg != "*" && seg.find('*') != std::string::npos) {
      return base::Status::InvalidArgument("pii rules: \"*\" must be a whole segment in path pattern \"" + text + "\"");
    }
    pt.segs.push_back(std::move(seg));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (pt.segs.size() > 1 && pt.segs[0] == "*") {
    pt.any_depth = true;
    pt.segs.erase(pt.segs.begin());
  }
  for (const auto& s : pt.segs) pt.literals += s != "*";
  return pt;
}

int Strictness(PiiAction a) {
  switch (a) {
    case PiiAction::kDrop: return 4;
    case PiiAction::kRedact: return 3;
    case PiiAction::kHash: return 2;
    case PiiAction::kMask: return 1;
    case PiiAction::kOff: return 0;
  }
  return 0;
}

bool ParseAction(const json& v, PiiAction* out) {
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  if (s == "redact") {
    *out = PiiAction::kRedact;
  } else if (s == "mask") {
    *out = PiiAction::kMask;
  } else if (s == "hash") {
    *out = PiiAction::kHash;
  } else if (s == "drop") {
    *out = PiiAction::kDrop;
  } else if (s == "off") {
    *out = PiiAction::kOff;
  } else {
    return false;
  }
  return true;
}

base::Status UnknownAction(const char* what, const std::string& name) {
  return base::Status::InvalidArgument("pii rules: " + std::string(what) + " \"" + name +
                                       "\" has an unknown action (use redact, mask, hash, drop or off)");
}

base::Status ParseDetectors(const json& value, DetectorActions* out) {
  if (!value.is_object()) return base::Status::InvalidArgument("pii rules: \"detectors\" must be an object");
  for (auto& [name, action] : value.items()) {
    int d = FindDetector(name);
    if (d < 0) {
      return base::Status::InvalidArgument("pii rules: unknown detector \"" + name + "\" (known: " + DetectorNames() +
                                           ")");
    }
    PiiAction a;
    if (!ParseAction(action, &a)) return UnknownAction("detector", name);
    out->Set(static_cast<size_t>(d), a);
  }
  return base::Status::Ok();
}

base::Status ParsePaths(const json& value, std::vector<PathRule>* out) {
  if (!value.is_object()) return base::Status::InvalidArgument("pii rules: \"paths\" must be an object");
  for (auto& [text, action] : value.items()) {
    auto pat = ParsePattern(text);
    if (!pat.ok()) return pat.status();
    PathRule r;
    r.pattern = std::move(pat.value());
    if (!ParseAction(action, &r.action)) return UnknownAction("path", text);
    out->push_back(std::move(r));
  }
  return base::Status::Ok();
}

base::Status ParseAllow(const json& value, std::vector<Pattern>* out) {
  if (!value.is_array()) return base::Status::InvalidArgument("pii rules: \"allow\" must be an array of paths");
  for (const json& a : value) {
    if (!a.is_string()) return base::Status::InvalidArgument("pii rules: \"allow\" entries must be strings");
    auto pat = ParsePattern(a.get<std::string>());
    if (!pat.ok()) return pat.status();
    out->push_back(std::move(pat.value()));
  }
  return base::Status::Ok();
}

base::Status ParseHashKey(const json& value, base::SecretBytes* out) {
  if (!value.is_string() || value.get_ref<const std::string&>().size() != 64) {
    return base::Status::InvalidArgument("pii rules: \"hash_key\" must be 64 hex characters");
  }
  *out = base::SecretBytes::FromHex(value.get_ref<const std::string&>());
  if (out->size() != 32) return base::Status::InvalidArgument("pii rules: \"hash_key\" is not valid hex");
  return base::Status::Ok();
}

// The default drops the rules do not name themselves, then every rule in priority order: more literal segments
// first, then the stricter action, then an anchored pattern over an any-depth one (then longer, then by text, so
// that the order never depends on the JSON's key order).
void AddDefaultsAndSort(std::vector<PathRule>* rules) {
  for (const char* d : kDefaultDrops) {
    auto pat = ParsePattern(d);
    bool overridden = std::any_of(rules->begin(), rules->end(),
                                  [&](const PathRule& r) { return SamePattern(r.pattern, pat.value()); });
    if (overridden) continue;
    PathRule r;
    r.pattern = std::move(pat.value());
    r.action = PiiAction::kDrop;
    rules->push_back(std::move(r));
  }
  std::stable_sort(rules->begin(), rules->end(), [](const PathRule& a, const PathRule& b) {
    if (a.pattern.literals != b.pattern.literals) return a.pattern.literals > b.pattern.literals;
    if (Strictness(a.action) != Strictness(b.action)) return Strictness(a.action) > Strictness(b.action);
    if (a.pattern.any_depth != b.pattern.any_depth) return !a.pattern.any_depth;
    if (a.pattern.segs.size() != b.pattern.segs.size()) return a.pattern.segs.size() > b.pattern.segs.size();
    return a.pattern.text < b.pattern.text;
  });
}

}  // namespace

bool MatchFull(const Pattern& pt, const Path& path) {
  size_t m = pt.segs.size();
  if (pt.any_depth ? path.size() < m : path.size() != m) return false;
  size_t off = path.size() - m;
  for (size_t k = 0; k < m; ++k) {
    if (!SegMatch(pt.segs[k], path[off + k])) return false;
  }
  return true;
}

bool MatchPrefix(const Pattern& pt, const Path& path) {
  if (pt.any_depth) return true;
  if (path.size() >= pt.segs.size()) return false;
  for (size_t k = 0; k < path.size(); ++k) {
    if (!SegMatch(pt.segs[k], path[k])) return false;
  }
  return true;
}

void Rules::IndexLeafSizes() {
  leaf_sizes = 0;
  for (const PathRule& r : paths) {
    const std::vector<std::string>& segs = r.pattern.segs;
    const bool any_leaf = segs.empty() || (segs.back().size() == 1 && segs.back()[0] == '*');
    leaf_sizes |= any_leaf || segs.back().size() >= 63 ? ~uint64_t{0} : uint64_t{1} << segs.back().size();
  }
}

const PathRule* Rules::Lookup(const Path& path) const {
  const std::string_view leaf = path.empty() ? std::string_view() : path.back();
  // Most keys have a length no rule's last segment has: no rule can match (this runs for each key of each event).
  if (((leaf_sizes >> std::min<size_t>(leaf.size(), 63)) & 1) == 0) return nullptr;
  for (const PathRule& r : paths) {
    // The same test rule by rule, without the call.
    const std::vector<std::string>& segs = r.pattern.segs;
    if (!segs.empty() && segs.back().size() != leaf.size() && !(segs.back().size() == 1 && segs.back()[0] == '*'))
      continue;
    if (MatchFull(r.pattern, path)) return &r;
  }
  return nullptr;
}

base::Result<Rules> ParseRules(std::string_view rules_json, const base::SecretBytes& fallback_hash_key) {
  Rules out;

  json rules = json::object();
  bool blank = std::all_of(rules_json.begin(), rules_json.end(),
                           [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
  if (!blank) {
    rules = json::parse(rules_json.begin(), rules_json.end(), nullptr, false);
    if (rules.is_discarded()) return base::Status::InvalidArgument("pii rules: not valid JSON");
    if (!rules.is_object()) return base::Status::InvalidArgument("pii rules: must be a JSON object");
  }
  // The parsed rules hold the key's text: wiped however this ends.
  struct WipeKeyText {
    json* rules;
    ~WipeKeyText() {
      auto it = rules->find("hash_key");
      if (it != rules->end() && it->is_string()) base::WipeString(it->get_ref<std::string&>());
    }
  } wipe{&rules};

  bool key_from_rules = false;
  base::Status st;
  for (auto& [name, value] : rules.items()) {
    if (name == "detectors") {
      st = ParseDetectors(value, &out.detectors);
    } else if (name == "paths") {
      st = ParsePaths(value, &out.paths);
    } else if (name == "allow") {
      out.has_allow = true;
      st = ParseAllow(value, &out.allow);
    } else if (name == "hash_key") {
      st = ParseHashKey(value, &out.key);
      key_from_rules = true;
    } else {
      st = base::Status::InvalidArgument("pii rules: unknown key \"" + name +
                                         "\" (known: detectors, paths, allow, hash_key)");
    }
    if (!st.ok()) return st;
  }
  if (!key_from_rules) {
    if (fallback_hash_key.size() != 32) {
      return base::Status::InvalidArgument(
          "pii: no 32-byte hash key (the rules have no \"hash_key\" and the fallback "
          "key is " +
          std::to_string(fallback_hash_key.size()) + " bytes)");
    }
    out.key = fallback_hash_key;
  }
  AddDefaultsAndSort(&out.paths);
  out.IndexLeafSizes();
  return out;
}

}  // namespace ferry::pii
