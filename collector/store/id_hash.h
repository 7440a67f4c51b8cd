// The keyed id hash: the one form in which a subject id appears on the suppression list, in the audit log and in the
// request register once the subject was erased. Written once for every engine; each engine keeps the key (32 random
// bytes, made once per database) in its own store and hands it to an IdHasher when it opens.
#ifndef FERRY_COLLECTOR_STORE_ID_HASH_H_
#define FERRY_COLLECTOR_STORE_ID_HASH_H_

#include <string>
#include <string_view>

#include "lib/base/secret.h"

namespace ferry::collector {

class IdHasher {
 public:
  IdHasher() = default;
  // key: 32 bytes (the engine checks the length before).
  explicit IdHasher(base::SecretBytes key) : key_(std::move(key)) {}

  // hex(BLAKE2b-256 keyed with the database's id key, of id): 64 lowercase hex characters.
  std::string operator()(std::string_view id) const;

 private:
  base::SecretBytes key_;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_STORE_ID_HASH_H_
