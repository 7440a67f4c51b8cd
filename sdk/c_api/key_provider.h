// The adapter behind ferry_options_set_key_provider(): a platform::KeyStore that calls the app's (or binding's)
// secret store (Android Keystore, the Apple Keychain) through the C ABI's callback types. It lives beside the ABI
// because it adapts ABI types.
#ifndef FERRY_SDK_C_API_KEY_PROVIDER_H_
#define FERRY_SDK_C_API_KEY_PROVIDER_H_

#include <memory>

#include "ferry/ferry.h"
#include "platform/platform.h"

namespace ferry::platform {

// load() must fill exactly len bytes when it sets *found = 1; anything but FERRY_OK from a callback is a failure of
// the store (kStorage). The buffer handed to load() and the key handed to store() are wiped after each call.
// free_user(user) (may be null) is called once, by the adapter's destructor.
std::unique_ptr<KeyStore> NewCallbackKeyStore(ferry_key_load_fn load, ferry_key_store_fn store, void* user,
                                              void (*free_user)(void*));

}  // namespace ferry::platform

#endif  // FERRY_SDK_C_API_KEY_PROVIDER_H_
