// FERRY_TRANSPORT=none: no built-in HTTP stack (libcurl is neither compiled in nor linked). Every upload goes
// through the app's own transport (ferry_options_set_transport): an endpoint without one is refused at open.
#include "platform/platform.h"

namespace ferry::platform {

base::Result<std::unique_ptr<HttpTransport>> NewBuiltinTransport(const CurlTransportOptions& /*opts*/) {
  return base::Status::FailedPrecondition(
      "this libferry was built with FERRY_TRANSPORT=none (no built-in HTTP stack): an endpoint needs the app's "
      "transport (ferry_options_set_transport)");
}

}  // namespace ferry::platform
