// libFuzzer target: the PII masker's entry points (sdk/pii/pii.h), which see every string an app sends.
// Input: "<rules JSON>\0<text>". The rules go to PiiMasker::Create (the rules parser); when they are refused the
// default rules are used. The text goes through MaskString, through MaskObjectText (the track path's single pass), and
// through ApplyToObject both as a JSON document (when it parses as an object) and as string values at several paths of
// an object.
// Checks: nothing crashes; a masked string is valid UTF-8 when the input was (a replacement never splits a
// character); a string comes back unchanged exactly when the report counts nothing masked; masking a default-rules
// object never leaves a key the default rules drop; the single pass refuses what nlohmann's parse refuses, takes an
// object it accepts (unless it repeats a key, nests deeper than 32, holds a NUL byte or starts with a byte order mark),
// and makes the walker's object; it appends nothing to what it refuses.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/base/secret.h"
#include "lib/wire/event.h"
#include "sdk/pii/pii.h"

namespace {

using ferry::pii::ObjectTextOutcome;
using ferry::pii::PiiMasker;
using ferry::pii::PiiReport;
using nlohmann::json;

const ferry::base::SecretBytes& Key() {
  static const ferry::base::SecretBytes* key = [] {
    uint8_t k[32];
    for (int i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(i * 7 + 1);
    return new ferry::base::SecretBytes(k, 32);
  }();
  return *key;
}

std::shared_ptr<const PiiMasker> Defaults() {
  static const std::shared_ptr<const PiiMasker> m = PiiMasker::Create("", Key()).value();
  return m;
}

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// Nesting depth as MaskObjectText counts it (an object is 1), without recursion.
size_t Depth(const json& root) {
  size_t deepest = 0;
  std::vector<std::pair<const json*, size_t>> todo = {{&root, 1}};
  while (!todo.empty()) {
    auto [v, d] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, d);
    for (const json& child : *v) todo.emplace_back(&child, d + 1);
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view rules = nul == std::string_view::npos ? std::string_view() : in.substr(0, nul);
  std::string_view text = nul == std::string_view::npos ? in : in.substr(nul + 1);

  auto created = PiiMasker::Create(rules, Key());
  std::shared_ptr<const PiiMasker> m = created.ok() ? created.value() : Defaults();

  PiiReport rep;
  std::string out = m->MaskString(text, &rep);
  Check((out == text) == (rep.values_masked == 0));
  bool utf8 = ferry::wire::IsValidUtf8(text);
  if (utf8) Check(ferry::wire::IsValidUtf8(out));

  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  // The single pass of the track path (MaskObjectText, RapidJSON's reader) against nlohmann's parse and the walker:
  // the same verdict on what is not JSON, and the same masked object.
  std::string streamed;
  const ObjectTextOutcome o = m->MaskObjectText(text, 32, &streamed);
  // (kRepeatedKey stops the pass where the key repeats, before any later fault: its caller parses the text then.
  // kTooDeep stops it at the first level deeper than 32, before any later fault.)
  if (doc.is_discarded()) {
    Check(o == ObjectTextOutcome::kNotJson || o == ObjectTextOutcome::kRepeatedKey || o == ObjectTextOutcome::kTooDeep);
  }
  if (o != ObjectTextOutcome::kOk) Check(streamed.empty());  // nothing is appended but the masked object
  if (o == ObjectTextOutcome::kOk) {
    Check(doc.is_object());
    json walked = doc;
    m->ApplyToObject(&walked);
    Check(json::parse(streamed, nullptr, false) == walked);
  }
  // nlohmann skips a byte order mark and ends its input at a NUL byte; the single pass refuses both (kNotJson), which
  // the track path reports (docs/SDK.md).
  const bool bom = text.substr(0, 3) == "\xEF\xBB\xBF";
  const bool has_nul = text.find('\0') != std::string_view::npos;
  if (doc.is_object() && !bom && !has_nul && Depth(doc) <= 32) {
    Check(o == ObjectTextOutcome::kOk || o == ObjectTextOutcome::kRepeatedKey);
  }
  if (doc.is_object()) m->ApplyToObject(&doc);

  if (utf8) {
    std::string s(text);
    json obj = {{"note", s},
                {"items", json::array({s, {{"sku", s}}, 7})},
                {"user", {{"phone", s}, {"password", s}, {"n", 12345}}},
                {"Token", s}};
    m->ApplyToObject(&obj);
    Check(obj.is_object());
    if (m == Defaults()) Check(!obj.contains("Token") && !obj["user"].contains("password"));
    // The result is serialisable (the client dumps it into the event).
    Check(!obj.dump(-1, ' ', false, json::error_handler_t::replace).empty());
  }
  return 0;
}
