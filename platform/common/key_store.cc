// The buffer key in a secret store the app provides (platform::KeyStore): load, migrate a legacy key file, or
// create and store. Shared by every OS; the store itself is the app's (Keystore, Keychain) behind the C ABI.
#include <sodium.h>
#include <unistd.h>

#include <string>

#include "lib/base/secret.h"
#include "platform/platform.h"

namespace ferry::platform {

std::string KeyStoreNameFor(const std::string& storage_path, const std::string& data_dir) {
  std::string base = data_dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string rel = storage_path;
  if (!base.empty() && storage_path.size() > base.size() + 1 && storage_path.compare(0, base.size(), base) == 0 &&
      storage_path[base.size()] == '/') {
    rel = storage_path.substr(base.size() + 1);
  }
  return "ferry-buffer-key:" + rel;
}

base::Result<base::SecretBytes> LoadOrCreateStoredKey(KeyStore& store, const std::string& name, size_t len,
                                                      const std::string& legacy_key_file) {
  if (len == 0) return base::Status::InvalidArgument("zero key length");
  if (!base::EnsureSodium()) return base::Status::Internal("libsodium failed to start");
  bool found = false;
  base::SecretBytes key;
  base::Status s = store.Load(name, len, &key, &found);
  if (!s.ok()) return base::Status::Storage("the app's key provider could not load " + name + ": " + s.message());
  if (found) {
    if (key.size() != len) return base::Status::Storage("the app's key provider gave a key of the wrong size");
    return key;
  }

  // None stored: a key file from before the provider, else a new key.
  bool migrating = false;
  if (!legacy_key_file.empty() && access(legacy_key_file.c_str(), F_OK) == 0) {
    KeyFileOptions o;
    o.len = len;
    o.create = false;
    auto legacy = LoadOrCreateKey(legacy_key_file, o);
    if (!legacy.ok()) return legacy.status();
    key = std::move(legacy).value();
    migrating = true;
  } else {
    key = base::SecretBytes(len);
    randombytes_buf(key.data(), len);
  }
  s = store.Store(name, key);
  if (!s.ok()) {
    key.Wipe();
    return base::Status::Storage("the app's key provider could not store " + name + ": " + s.message());
  }
  if (migrating) {
    // The file goes only once the store gives the same key back.
    base::SecretBytes back;
    bool back_found = false;
    s = store.Load(name, len, &back, &back_found);
    bool same =
        s.ok() && back_found && back.size() == key.size() && sodium_memcmp(back.data(), key.data(), key.size()) == 0;
    back.Wipe();
    if (!same) {
      key.Wipe();
      return base::Status::Storage("the app's key provider did not give back the key moved from " + legacy_key_file +
                                   "; the key file is kept");
    }
    if (unlink(legacy_key_file.c_str()) != 0) {
      return base::Status::Storage("the key moved into the app's key provider, but " + legacy_key_file +
                                   " could not be removed");
    }
  }
  return key;
}

}  // namespace ferry::platform
