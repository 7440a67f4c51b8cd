#include "collector/rights/outbox.h"

#include <sodium.h>

#include <cstring>

#include "lib/base/secret.h"

namespace ferry::collector::rights {

using base::Result;
using base::Status;

namespace {

constexpr const char* kSealKey = "outbox_seal";
constexpr const char* kSignKey = "outbox_signing";
constexpr const char* kSealed = "sealed:";

std::string Base64(const unsigned char* p, size_t n) {
  std::string out(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), p, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

// The store's named 32-byte secret, as bytes.
Result<base::SecretBytes> Key(StoreTxn& tx, const char* name) {
  auto hex = tx.primitives().Secret(name);
  if (!hex.ok()) return hex.status();
  base::SecretBytes key = base::SecretBytes::FromHex(*hex);
  base::WipeString(*hex);
  if (key.size() != 32) return Status::Corruption(std::string("the store's secret ") + name + " is damaged");
  return key;
}

// Ed25519 key pair from the store's signing seed.
struct KeyPair {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  ~KeyPair() { sodium_memzero(sk, sizeof sk); }
};

Status MakeKeyPair(StoreTxn& tx, KeyPair* kp) {
  auto seed = Key(tx, kSignKey);
  if (!seed.ok()) return seed.status();
  if (crypto_sign_seed_keypair(kp->pk, kp->sk, seed->data()) != 0) return Status::Internal("crypto_sign failed");
  return Status::Ok();
}

}  // namespace

Outbox::Outbox(std::vector<WebhookDestination> webhooks) : webhooks_(std::move(webhooks)) {}

Status Outbox::Record(StoreTxn& tx, const Propagation& p) const {
  Json doc = {{"kind", p.kind},        {"project", p.project}, {"requestId", p.request_id},
              {"at", Iso(tx.NowMs())}, {"ids", p.ids},         {"change", p.change}};
  std::string plain = Dump(doc);
  auto key = Key(tx, kSealKey);
  if (!key.ok()) return key.status();
  std::string sealed(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  randombytes_buf(out, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, reinterpret_cast<const unsigned char*>(plain.data()),
                        plain.size(), out, key->data());
  base::WipeString(plain);
  std::string hex(sealed.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), out, sealed.size());
  hex.pop_back();
  OutboxEntry e;
  e.project = p.project;
  e.kind = p.kind;
  e.request_id = p.request_id;
  e.body = kSealed + hex;
  e.created_ms = tx.NowMs();
  std::vector<std::string> names;
  for (const auto& w : webhooks_) names.push_back(w.name);
  return tx.primitives().InsertOutbox(e, names).status();
}

Result<Json> Outbox::Open(StoreTxn& tx, const OutboxEntry& e) {
  std::string_view body = e.body;
  if (body.rfind(kSealed, 0) != 0) return Status::InvalidArgument("an outbox entry that is not sealed");
  body.remove_prefix(std::strlen(kSealed));
  std::string bin(body.size() / 2, '\0');
  size_t n = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), body.data(), body.size(), nullptr, &n,
                     nullptr) != 0 ||
      n < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return Status::InvalidArgument("a damaged outbox entry");
  }
  auto key = Key(tx, kSealKey);
  if (!key.ok()) return key.status();
  const auto* in = reinterpret_cast<const unsigned char*>(bin.data());
  std::string plain(n - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), in + crypto_secretbox_NONCEBYTES,
                                 n - crypto_secretbox_NONCEBYTES, in, key->data()) != 0) {
    return Status::InvalidArgument("an outbox entry that does not open with this store's key");
  }
  Json doc = Json::parse(plain, nullptr, false);
  base::WipeString(plain);
  if (!doc.is_object()) return Status::InvalidArgument("a damaged outbox entry");
  doc["seq"] = e.seq;
  return doc;
}

Result<std::string> Outbox::PublicKey(StoreTxn& tx) {
  KeyPair kp;
  FERRY_RETURN_IF_ERROR(MakeKeyPair(tx, &kp));
  return Base64(kp.pk, sizeof kp.pk);
}

Result<std::string> Outbox::Sign(StoreTxn& tx, const std::string& body) {
  KeyPair kp;
  FERRY_RETURN_IF_ERROR(MakeKeyPair(tx, &kp));
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(body.data()), body.size(), kp.sk);
  return Base64(sig, sizeof sig);
}

}  // namespace ferry::collector::rights
