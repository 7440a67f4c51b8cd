// SQLCipher's page cipher with its OpenSSL contexts kept per connection, for the daemons.
//
// SQLCipher 3.4's own OpenSSL provider builds a new cipher context and a new HMAC context for every page it encrypts
// or decrypts (fetching the algorithms and expanding the keys each time) and takes one process-wide lock for every
// page's random IV. This provider computes the same bytes (AES-256-CBC, HMAC-SHA1 over the page, its IV and its
// number, PBKDF2-HMAC-SHA1 for the HMAC key): its contexts are keyed once per connection and take only the IV for a
// page, and each connection draws its IVs from a pool of RAND_bytes filled 4 KiB at a time. A file written with it
// is the file SQLCipher's own provider writes, and either reads what the other wrote.
//
// SQLCipher has one provider for the whole process. Only the daemons (collector, agent) install this one; the SDK is
// a library inside someone else's app and leaves the app's SQLCipher as it found it. Not for a process that forks
// with a database open (the child would draw the parent's IVs).
#ifndef FERRY_LIB_CIPHER_PAGE_CIPHER_H_
#define FERRY_LIB_CIPHER_PAGE_CIPHER_H_

#include "lib/base/status.h"

namespace ferry::cipher {

// The name `PRAGMA cipher_provider` answers on a connection that uses this provider.
inline constexpr char kProviderName[] = "ferry-openssl";

// Makes this provider SQLCipher's for every connection opened afterwards, for the rest of the process (a keyed
// in-memory connection stays open, so SQLCipher never drops it when the last database closes). Call it from main,
// before any database is opened. Idempotent and thread-safe. Refuses (and changes nothing) on a SQLCipher other than
// 3.4, whose provider interface this is; connections then use SQLCipher's own provider, as they would without it.
base::Status InstallPageCipher();

// For tests: gives SQLCipher its own provider back for connections opened afterwards. Connections already open keep
// the provider they were opened with.
void RemovePageCipherForTesting();

}  // namespace ferry::cipher

#endif  // FERRY_LIB_CIPHER_PAGE_CIPHER_H_
