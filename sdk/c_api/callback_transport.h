// The adapter behind ferry_options_set_transport(): an HttpTransport that hands each request to the host app's
// native HTTP stack through the C ABI's callback type. It lives beside the ABI because it adapts an ABI type.
#ifndef FERRY_SDK_C_API_CALLBACK_TRANSPORT_H_
#define FERRY_SDK_C_API_CALLBACK_TRANSPORT_H_

#include <memory>

#include "ferry/ferry.h"
#include "platform/platform.h"

namespace ferry::platform {

// The host's native HTTP stack behind ferry_options_set_transport(). The adapter hands each HttpRequest to
// send() as a ferry_http_request (method "POST", headers as a NULL-terminated array), copies the body send()
// malloc'd and frees it with free(). send() returning anything but FERRY_OK, or an HTTP status of 0, is a network
// failure (kNetwork). free_user(user) (may be null) is called once, by the adapter's destructor.
using SendFn = ferry_transport_send_fn;
std::unique_ptr<HttpTransport> NewCallbackTransport(SendFn send, void* user, void (*free_user)(void*));

}  // namespace ferry::platform

#endif  // FERRY_SDK_C_API_CALLBACK_TRANSPORT_H_
