// The adapter behind ferry_options_set_key_provider(): the app's secret store as a platform::KeyStore.
#include "sdk/c_api/key_provider.h"

#include <string>

namespace ferry::platform {
namespace {

class CallbackKeyStore : public KeyStore {
 public:
  CallbackKeyStore(ferry_key_load_fn load, ferry_key_store_fn store, void* user, void (*free_user)(void*))
      : load_(load), store_(store), user_(user), free_user_(free_user) {}
  ~CallbackKeyStore() override {
    if (free_user_ != nullptr) free_user_(user_);
  }
  CallbackKeyStore(const CallbackKeyStore&) = delete;
  CallbackKeyStore& operator=(const CallbackKeyStore&) = delete;

  base::Status Load(const std::string& name, size_t len, base::SecretBytes* key, bool* found) override {
    *found = false;
    base::SecretBytes buf(len);
    int got = 0;
    ferry_status st = load_(name.c_str(), buf.data(), len, &got, user_);
    if (st != FERRY_OK) {
      buf.Wipe();
      return base::Status::Storage(std::string("load returned ") + ferry_status_str(st));
    }
    if (got != 0 && got != 1) {
      buf.Wipe();
      return base::Status::Storage("load set *found to " + std::to_string(got) + " (0 or 1 expected)");
    }
    *found = got == 1;
    if (*found) {
      *key = std::move(buf);
    } else {
      buf.Wipe();
    }
    return base::Status::Ok();
  }

  base::Status Store(const std::string& name, const base::SecretBytes& key) override {
    // The app gets a copy that is wiped after the call (it must copy what it keeps).
    base::SecretBytes copy = key;
    ferry_status st = store_(name.c_str(), copy.data(), copy.size(), user_);
    copy.Wipe();
    if (st != FERRY_OK) return base::Status::Storage(std::string("store returned ") + ferry_status_str(st));
    return base::Status::Ok();
  }

 private:
  ferry_key_load_fn load_;
  ferry_key_store_fn store_;
  void* user_;
  void (*free_user_)(void*);
};

}  // namespace

std::unique_ptr<KeyStore> NewCallbackKeyStore(ferry_key_load_fn load, ferry_key_store_fn store, void* user,
                                              void (*free_user)(void*)) {
  return std::make_unique<CallbackKeyStore>(load, store, user, free_user);
}

}  // namespace ferry::platform
