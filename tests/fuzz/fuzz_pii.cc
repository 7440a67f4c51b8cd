// libFuzzer target: the PII masker's entry points (sdk/pii/pii.h), which see every string an app sends.
// Input: "<rules JSON>\0<text>". The rules go to PiiMasker::Create (the rules parser); when they are refused the
// default rules are used. The text goes through MaskString, and through ApplyToObject both as a JSON document (when
// it parses as an object) and as string values at several paths of an object.
// Checks: nothing crashes; a masked string is valid UTF-8 when the input was (a replacement never splits a
// character); a string comes back unchanged exactly when the report counts nothing masked; masking a default-rules
// object never leaves a key the default rules drop.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lib/base/secret.h"
#include "lib/wire/event.h"
#include "sdk/pii/pii.h"

namespace {

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
