#include "lib/cipher/page_cipher.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sodium.h>
#include <sqlite3.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "lib/base/sqlite.h"

namespace ferry::cipher {
namespace {

// SQLCipher 3.4's provider interface, as src/sqlcipher.h of SQLCipher 3.4.1 declares it (the header is not
// installed; libsqlcipher exports the functions). SQLCipher 4 changed it, hence the version check before use.
struct Provider {
  int (*activate)(void* ctx);
  int (*deactivate)(void* ctx);
  const char* (*get_provider_name)(void* ctx);
  int (*add_random)(void* ctx, void* buffer, int length);
  int (*random)(void* ctx, void* buffer, int length);
  int (*hmac)(void* ctx, unsigned char* hmac_key, int key_sz, unsigned char* in, int in_sz, unsigned char* in2,
              int in2_sz, unsigned char* out);
  int (*kdf)(void* ctx, const unsigned char* pass, int pass_sz, unsigned char* salt, int salt_sz, int workfactor,
             int key_sz, unsigned char* key);
  int (*cipher)(void* ctx, int mode, unsigned char* key, int key_sz, unsigned char* iv, unsigned char* in, int in_sz,
                unsigned char* out);
  int (*set_cipher)(void* ctx, const char* cipher_name);
  const char* (*get_cipher)(void* ctx);
  int (*get_key_sz)(void* ctx);
  int (*get_iv_sz)(void* ctx);
  int (*get_block_sz)(void* ctx);
  int (*get_hmac_sz)(void* ctx);
  int (*ctx_copy)(void* target_ctx, void* source_ctx);
  int (*ctx_cmp)(void* c1, void* c2);
  int (*ctx_init)(void** ctx);
  int (*ctx_free)(void** ctx);
  int (*fips_status)(void* ctx);
  const char* (*get_provider_version)(void* ctx);
};

}  // namespace
}  // namespace ferry::cipher

extern "C" {
int sqlcipher_register_provider(ferry::cipher::Provider* p);
ferry::cipher::Provider* sqlcipher_get_provider(void);
// Zeroed memory (locked where the platform allows), and its release after wiping it: what SQLCipher gives its own
// provider's contexts. SQLCipher releases a registered provider with sqlcipher_free, so it must come from here too.
void* sqlcipher_malloc(int sz);
void sqlcipher_free(void* ptr, int sz);
}

namespace ferry::cipher {
namespace {

constexpr int kEncrypt = 1;      // SQLCipher's CIPHER_ENCRYPT (CIPHER_DECRYPT is 0)
constexpr int kMaxKey = 64;      // SQLCipher's CIPHER_MAX_KEY_SZ
constexpr int kHmacSize = 20;    // HMAC-SHA1, SQLCipher 3's page MAC
constexpr int kPoolSize = 4096;  // random bytes drawn at once; a page takes its reserve (48 bytes) from them

// HMAC, fetched once by InstallPageCipher and kept for the life of the process.
EVP_MAC* g_hmac = nullptr;

// A key a cached context holds.
struct HeldKey {
  unsigned char bytes[kMaxKey];
  int size;  // 0: the context holds no key

  bool Is(const unsigned char* key, int key_sz) const {
    return size > 0 && size == key_sz && CRYPTO_memcmp(bytes, key, static_cast<size_t>(key_sz)) == 0;
  }
  void Set(const unsigned char* key, int key_sz) {
    std::memcpy(bytes, key, static_cast<size_t>(key_sz));
    size = key_sz;
  }
  void Clear() {
    sodium_memzero(bytes, sizeof bytes);
    size = 0;
  }
};

// One per SQLCipher cipher context (each connection has one for reading and one for writing), used by one thread at
// a time. Lives in memory from sqlcipher_malloc, which arrives zeroed: every member starts empty.
struct Ctx {
  const EVP_CIPHER* cipher;  // as SQLCipher names it ("aes-256-cbc")
  EVP_CIPHER_CTX* enc;       // keyed with enc_key; a page sets only its IV
  HeldKey enc_key;
  EVP_CIPHER_CTX* dec;
  HeldKey dec_key;
  EVP_MAC_CTX* mac;  // HMAC-SHA1 keyed with mac_key; a page starts it over with the same key
  HeldKey mac_key;
  int pool_left;  // unread random bytes: pool[0, pool_left)
  unsigned char pool[kPoolSize];
};

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};

// Runs `e` (cipher set, padding off) over one page. key == nullptr keeps the key `e` holds.
bool RunCipher(EVP_CIPHER_CTX* e, int enc, const unsigned char* key, const unsigned char* iv, const unsigned char* in,
               int in_sz, unsigned char* out) {
  int n = 0;
  int last = 0;
  return EVP_CipherInit_ex(e, nullptr, nullptr, key, iv, enc) == 1 && EVP_CipherUpdate(e, out, &n, in, in_sz) == 1 &&
         EVP_CipherFinal_ex(e, out + n, &last) == 1 && n + last == in_sz;
}

bool StartCipher(EVP_CIPHER_CTX* e, const EVP_CIPHER* cipher, int enc) {
  if (EVP_CipherInit_ex(e, cipher, nullptr, nullptr, nullptr, enc) != 1) return false;
  EVP_CIPHER_CTX_set_padding(e, 0);  // pages are whole blocks
  return true;
}

// The cached way: the context keeps its key from page to page.
bool CipherCached(Ctx* c, int enc, const unsigned char* key, int key_sz, const unsigned char* iv,
                  const unsigned char* in, int in_sz, unsigned char* out) {
  if (c->cipher == nullptr || key_sz <= 0 || key_sz > kMaxKey) return false;
  EVP_CIPHER_CTX*& e = enc ? c->enc : c->dec;
  HeldKey& held = enc ? c->enc_key : c->dec_key;
  if (e == nullptr && (e = EVP_CIPHER_CTX_new()) == nullptr) return false;
  if (held.Is(key, key_sz)) return RunCipher(e, enc, nullptr, iv, in, in_sz, out);
  held.Clear();
  if (!StartCipher(e, c->cipher, enc) || !RunCipher(e, enc, key, iv, in, in_sz, out)) return false;
  held.Set(key, key_sz);
  return true;
}

// SQLCipher's own way, a context for the one page: what a page gets if the cached context ever fails.
bool CipherOnce(const EVP_CIPHER* cipher, int enc, const unsigned char* key, const unsigned char* iv,
                const unsigned char* in, int in_sz, unsigned char* out) {
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> e(EVP_CIPHER_CTX_new());
  return cipher != nullptr && e && StartCipher(e.get(), cipher, enc) &&
         RunCipher(e.get(), enc, key, iv, in, in_sz, out);
}

// Runs `m` over in and in2 into out. key == nullptr starts it over with the key it holds.
bool RunMac(EVP_MAC_CTX* m, const unsigned char* key, int key_sz, const unsigned char* in, int in_sz,
            const unsigned char* in2, int in2_sz, unsigned char* out) {
  char digest[] = "SHA1";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  size_t n = 0;
  return EVP_MAC_init(m, key, key != nullptr ? static_cast<size_t>(key_sz) : 0, key != nullptr ? params : nullptr) ==
             1 &&
         EVP_MAC_update(m, in, static_cast<size_t>(in_sz)) == 1 &&
         EVP_MAC_update(m, in2, static_cast<size_t>(in2_sz)) == 1 && EVP_MAC_final(m, out, &n, kHmacSize) == 1 &&
         n == static_cast<size_t>(kHmacSize);
}

bool MacCached(Ctx* c, const unsigned char* key, int key_sz, const unsigned char* in, int in_sz,
               const unsigned char* in2, int in2_sz, unsigned char* out) {
  if (key_sz <= 0 || key_sz > kMaxKey) return false;
  if (c->mac == nullptr && (c->mac = EVP_MAC_CTX_new(g_hmac)) == nullptr) return false;
  if (c->mac_key.Is(key, key_sz)) return RunMac(c->mac, nullptr, 0, in, in_sz, in2, in2_sz, out);
  c->mac_key.Clear();
  if (!RunMac(c->mac, key, key_sz, in, in_sz, in2, in2_sz, out)) return false;
  c->mac_key.Set(key, key_sz);
  return true;
}

bool MacOnce(const unsigned char* key, int key_sz, const unsigned char* in, int in_sz, const unsigned char* in2,
             int in2_sz, unsigned char* out) {
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> m(EVP_MAC_CTX_new(g_hmac));
  return m && RunMac(m.get(), key, key_sz, in, in_sz, in2, in2_sz, out);
}

// The provider's entry points. SQLCipher calls them with a connection's lock held, one thread at a time per Ctx.
int Activate(void*) { return SQLITE_OK; }  // OpenSSL 3 starts itself
int Deactivate(void*) { return SQLITE_OK; }
const char* ProviderName(void*) { return kProviderName; }
const char* ProviderVersion(void*) { return OpenSSL_version(OPENSSL_VERSION); }
int FipsStatus(void*) { return 0; }

int AddRandom(void*, void* buffer, int length) {
  if (length > 0) RAND_add(buffer, length, 0);
  return SQLITE_OK;
}

int Random(void* p, void* buffer, int length) {
  auto* c = static_cast<Ctx*>(p);
  auto* out = static_cast<unsigned char*>(buffer);
  if (length <= 0) return SQLITE_OK;
  if (length > kPoolSize / 4) return RAND_bytes(out, length) == 1 ? SQLITE_OK : SQLITE_ERROR;
  if (c->pool_left < length) {
    if (RAND_bytes(c->pool, kPoolSize) != 1) {
      sodium_memzero(c->pool, sizeof c->pool);
      c->pool_left = 0;
      return SQLITE_ERROR;
    }
    c->pool_left = kPoolSize;
  }
  c->pool_left -= length;
  unsigned char* from = c->pool + c->pool_left;
  std::memcpy(out, from, static_cast<size_t>(length));
  sodium_memzero(from, static_cast<size_t>(length));  // handed out once only
  return SQLITE_OK;
}

int Hmac(void* p, unsigned char* key, int key_sz, unsigned char* in, int in_sz, unsigned char* in2, int in2_sz,
         unsigned char* out) {
  auto* c = static_cast<Ctx*>(p);
  if (in == nullptr || in_sz < 0 || in2_sz < 0) return SQLITE_ERROR;
  if (MacCached(c, key, key_sz, in, in_sz, in2, in2_sz, out)) return SQLITE_OK;
  c->mac_key.Clear();  // the next page keys the context again
  return MacOnce(key, key_sz, in, in_sz, in2, in2_sz, out) ? SQLITE_OK : SQLITE_ERROR;
}

int Kdf(void*, const unsigned char* pass, int pass_sz, unsigned char* salt, int salt_sz, int workfactor, int key_sz,
        unsigned char* key) {
  return PKCS5_PBKDF2_HMAC_SHA1(reinterpret_cast<const char*>(pass), pass_sz, salt, salt_sz, workfactor, key_sz, key) ==
                 1
             ? SQLITE_OK
             : SQLITE_ERROR;
}

int Cipher(void* p, int mode, unsigned char* key, int key_sz, unsigned char* iv, unsigned char* in, int in_sz,
           unsigned char* out) {
  auto* c = static_cast<Ctx*>(p);
  const int enc = mode == kEncrypt ? 1 : 0;
  if (CipherCached(c, enc, key, key_sz, iv, in, in_sz, out)) return SQLITE_OK;
  (enc ? c->enc_key : c->dec_key).Clear();  // the next page starts the context again
  return CipherOnce(c->cipher, enc, key, iv, in, in_sz, out) ? SQLITE_OK : SQLITE_ERROR;
}

int SetCipher(void* p, const char* name) {
  auto* c = static_cast<Ctx*>(p);
  const EVP_CIPHER* cipher = EVP_get_cipherbyname(name);
  if (cipher == nullptr) return SQLITE_ERROR;
  if (cipher != c->cipher) {
    c->cipher = cipher;
    c->enc_key.Clear();
    c->dec_key.Clear();
  }
  return SQLITE_OK;
}

const char* GetCipher(void* p) {
  auto* c = static_cast<Ctx*>(p);
  return c->cipher != nullptr ? EVP_CIPHER_get0_name(c->cipher) : "";
}
int KeySize(void* p) {
  auto* c = static_cast<Ctx*>(p);
  return c->cipher != nullptr ? EVP_CIPHER_get_key_length(c->cipher) : 0;
}
int IvSize(void* p) {
  auto* c = static_cast<Ctx*>(p);
  return c->cipher != nullptr ? EVP_CIPHER_get_iv_length(c->cipher) : 0;
}
int BlockSize(void* p) {
  auto* c = static_cast<Ctx*>(p);
  return c->cipher != nullptr ? EVP_CIPHER_get_block_size(c->cipher) : 0;
}
int HmacSize(void*) { return kHmacSize; }

// SQLCipher copies a context's settings into another one it has made already (each keeps its own OpenSSL contexts).
int CtxCopy(void* target, void* source) {
  auto* t = static_cast<Ctx*>(target);
  t->cipher = static_cast<Ctx*>(source)->cipher;
  t->enc_key.Clear();
  t->dec_key.Clear();
  t->mac_key.Clear();
  return SQLITE_OK;
}
int CtxCmp(void* a, void* b) { return static_cast<Ctx*>(a)->cipher == static_cast<Ctx*>(b)->cipher; }

int CtxInit(void** p) {
  void* mem = sqlcipher_malloc(static_cast<int>(sizeof(Ctx)));
  if (mem == nullptr) return SQLITE_NOMEM;
  *p = new (mem) Ctx();
  return SQLITE_OK;
}

int CtxFree(void** p) {
  auto* c = static_cast<Ctx*>(*p);
  if (c != nullptr) {
    EVP_CIPHER_CTX_free(c->enc);
    EVP_CIPHER_CTX_free(c->dec);
    EVP_MAC_CTX_free(c->mac);
    c->~Ctx();
    sqlcipher_free(c, static_cast<int>(sizeof(Ctx)));  // wipes the held keys and the pool
  }
  *p = nullptr;
  return SQLITE_OK;
}

bool IsOurs(const Provider* p) { return p != nullptr && p->get_provider_name == &ProviderName; }

using Connection = std::unique_ptr<sqlite3, base::SqliteCloser>;

// The first column of the first row `sql` answers on `db`; empty when none.
std::string QueryText(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) return "";
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) return "";
  const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
  return text != nullptr ? reinterpret_cast<const char*>(text) : "";
}

Connection OpenMemory() {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  Connection db(raw);
  if (rc != SQLITE_OK) db.reset();
  return db;
}

std::mutex g_mu;
// A keyed in-memory connection that holds SQLCipher active, so that it never drops the registered provider when the
// last database closes. Open for the rest of the process once installed: never closed at exit, when OpenSSL may be
// gone already.
sqlite3* g_pin = nullptr;  // guarded by g_mu

}  // namespace

base::Status InstallPageCipher() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_pin != nullptr && IsOurs(sqlcipher_get_provider())) return base::Status::Ok();
  if (g_pin != nullptr) {  // another provider was registered since: install again
    sqlite3_close_v2(g_pin);
    g_pin = nullptr;
  }
  if (sqlite3_initialize() != SQLITE_OK) return base::Status::Internal("SQLite failed to start");
  {
    Connection probe = OpenMemory();
    if (!probe) return base::Status::Internal("cannot open an in-memory database");
    std::string version = QueryText(probe.get(), "PRAGMA cipher_version;");
    if (version.rfind("3.4.", 0) != 0) {
      return base::Status::FailedPrecondition("SQLCipher " + (version.empty() ? std::string("(unknown)") : version) +
                                              " is not 3.4: its own page cipher stays in use");
    }
  }
  if (g_hmac == nullptr && (g_hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr)) == nullptr) {
    return base::Status::Internal("OpenSSL has no HMAC");
  }
  void* mem = sqlcipher_malloc(static_cast<int>(sizeof(Provider)));
  if (mem == nullptr) return base::Status::ResourceExhausted("no memory for the page cipher");
  auto* p = new (mem) Provider{};
  p->activate = Activate;
  p->deactivate = Deactivate;
  p->get_provider_name = ProviderName;
  p->add_random = AddRandom;
  p->random = Random;
  p->hmac = Hmac;
  p->kdf = Kdf;
  p->cipher = Cipher;
  p->set_cipher = SetCipher;
  p->get_cipher = GetCipher;
  p->get_key_sz = KeySize;
  p->get_iv_sz = IvSize;
  p->get_block_sz = BlockSize;
  p->get_hmac_sz = HmacSize;
  p->ctx_copy = CtxCopy;
  p->ctx_cmp = CtxCmp;
  p->ctx_init = CtxInit;
  p->ctx_free = CtxFree;
  p->fips_status = FipsStatus;
  p->get_provider_version = ProviderVersion;
  sqlcipher_register_provider(p);  // SQLCipher owns it from here (and frees the provider it had)

  Connection pin = OpenMemory();
  unsigned char key[32];
  randombytes_buf(key, sizeof key);
  char hex[2 * sizeof key + 1];
  sodium_bin2hex(hex, sizeof hex, key, sizeof key);
  std::string pragma = std::string("PRAGMA key = \"x'") + hex + "'\";";
  bool keyed = pin && sqlite3_exec(pin.get(), pragma.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
  sodium_memzero(key, sizeof key);
  sodium_memzero(hex, sizeof hex);
  sodium_memzero(&pragma[0], pragma.size());
  if (!keyed || QueryText(pin.get(), "PRAGMA cipher_provider;") != kProviderName) {
    pin.reset();
    if (IsOurs(sqlcipher_get_provider())) sqlcipher_register_provider(nullptr);
    return base::Status::Internal("SQLCipher did not take the page cipher");
  }
  g_pin = pin.release();
  return base::Status::Ok();
}

void RemovePageCipherForTesting() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_pin != nullptr) {
    sqlite3_close_v2(g_pin);
    g_pin = nullptr;
  }
  // SQLCipher drops the provider itself when the pin was its last active connection.
  if (IsOurs(sqlcipher_get_provider())) sqlcipher_register_provider(nullptr);
}

}  // namespace ferry::cipher
