// libFuzzer target: the bodies and path ids of admin calls (collector/http/admin.cc) as the admin API reads them:
// the one body parser within the body limits (lib/wire/json_body.h), the fields the routes take (kind, subject,
// project, receivedAt, reason), the id rule (wire::CheckIdText) and the path-segment decoder.
// Input: byte 0 picks what the rest is (even: a body, odd: a subject id as it appears in a path).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "collector/http/admin.h"
#include "lib/base/time.h"
#include "lib/wire/event.h"
#include "lib/wire/json_body.h"

namespace {

void Field(const ferry::wire::Json& b, const char* key) {
  auto it = b.find(key);
  if (it == b.end() || !it->is_string()) return;
  const std::string& s = it->get_ref<const std::string&>();
  (void)ferry::wire::CheckIdText(s, 4096);
  (void)ferry::base::ParseIso8601(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 1) {
    auto id = ferry::collector::DecodePathSegment(std::string(rest));
    if (id && id->find('\0') != std::string::npos) std::abort();  // a NUL never comes out of a path
    if (id) (void)ferry::wire::CheckIdText(*id, 4096);
    return 0;
  }
  auto parsed = ferry::wire::ParseJson(rest, ferry::wire::BodyLimits());
  if (!parsed.ok()) return 0;
  const ferry::wire::Json& b = *parsed;
  // What is accepted stays within the depth limit, and prints and parses back to the same value.
  if (ferry::wire::JsonDepth(b) > ferry::wire::BodyLimits().max_depth) std::abort();
  std::string text = b.dump(-1, ' ', false, ferry::wire::Json::error_handler_t::replace);
  auto again = ferry::wire::ParseJson(text, ferry::wire::BodyLimits());
  if (!again.ok()) std::abort();
  if (b.is_object()) {
    for (const char* key : {"kind", "subject", "project", "receivedAt", "reason", "expiresAt"}) Field(b, key);
  }
  return 0;
}
