// ferry_httpd over real TLS: certificates the openssl CLI makes, OpenSSL clients that offer exactly the versions and
// suites each test names.
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "lib/httpd/httpd.h"
#include "tests/unit/httpd/test_util.h"

namespace ferry::httpd {
namespace {

using testing::Conn;
using testing::Pki;
using testing::TempDir;
using testing::TlsClientOptions;
using testing::WaitUntil;

const std::string kGet = "GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n";

std::string PeerCommonName(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return "";
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pki_ = new Pki(testing::MakePki(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }

  void SetUp() override { ASSERT_TRUE(pki_->ok) << "the openssl CLI could not make the test certificates"; }

  // A server with one TLS listener on `cert`/`key` (and GET /info).
  void Start(const std::string& cert, const std::string& key, ServerOptions o = ServerOptions()) {
    o.worker_threads = 2;
    server_ = std::make_unique<Server>(o);
    server_->router().Get("/info", [](Request& req) {
      return Response::Text(200, std::string("tls=") + (req.tls ? "1" : "0") + ";addr=" + req.remote_addr);
    });
    ListenerOptions l = ListenerOptions::Tcp("127.0.0.1", 0);
    l.tls_cert_file = cert;
    l.tls_key_file = key;
    server_->AddListener(l);
    base::Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  std::unique_ptr<Conn> Tls(TlsClientOptions o, std::string* error = nullptr) {
    if (o.ca_file.empty()) o.ca_file = pki_->ca;
    return Conn::Tls(server_->port(), o, error);
  }

  // TLS 1.2 only, offering exactly `suites`.
  std::unique_ptr<Conn> Tls12(const std::string& suites, std::string* error = nullptr) {
    TlsClientOptions o;
    o.max_version = TLS1_2_VERSION;
    o.tls12_ciphers = suites;
    return Tls(o, error);
  }

  void ExpectServed(Conn& c) {
    ASSERT_TRUE(c.Send(kGet));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "tls=1;addr=127.0.0.1");
  }

  void TearDown() override {
    if (server_) server_->Stop(1000);
  }

  static TempDir* dir_;
  static Pki* pki_;
  std::unique_ptr<Server> server_;
};

TempDir* TlsTest::dir_ = nullptr;
Pki* TlsTest::pki_ = nullptr;

TEST_F(TlsTest, Tls13ByDefaultWithAVerifiedCertificate) {
  Start(pki_->ec_cert, pki_->ec_key);
  std::string err;
  auto c = Tls(TlsClientOptions(), &err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_STREQ(SSL_get_version(c->ssl()), "TLSv1.3");
  EXPECT_EQ(PeerCommonName(c->ssl()), "Ferry Test Server");
  ExpectServed(*c);
  ExpectServed(*c);  // keep-alive over TLS
}

TEST_F(TlsTest, Tls12ForwardSecretAeadSuitesAreAccepted) {
  Start(pki_->ec_cert, pki_->ec_key);
  for (const char* suite :
       {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
    std::string err;
    auto c = Tls12(suite, &err);
    ASSERT_NE(c, nullptr) << suite << ": " << err;
    EXPECT_STREQ(SSL_get_version(c->ssl()), "TLSv1.2");
    EXPECT_STREQ(SSL_get_cipher_name(c->ssl()), suite);
    ExpectServed(*c);
  }
}

TEST_F(TlsTest, Tls12WithAnRsaCertificate) {
  Start(pki_->rsa_cert, pki_->rsa_key);
  std::string err;
  auto c = Tls12("ECDHE-RSA-AES128-GCM-SHA256", &err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_STREQ(SSL_get_cipher_name(c->ssl()), "ECDHE-RSA-AES128-GCM-SHA256");
  ExpectServed(*c);
  c = Tls12("ECDHE-RSA-CHACHA20-POLY1305", &err);
  ASSERT_NE(c, nullptr) << err;
  ExpectServed(*c);
}

TEST_F(TlsTest, Tls12WithoutForwardSecrecyOrAeadIsRefused) {
  Start(pki_->rsa_cert, pki_->rsa_key);
  // Static RSA key exchange (no forward secrecy), with and without AEAD; ECDHE with CBC (no AEAD).
  for (const char* suite : {"AES128-SHA256", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA",
                            "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA", "DHE-RSA-AES128-GCM-SHA256"}) {
    auto c = Tls12(suite);
    EXPECT_EQ(c, nullptr) << suite << " was accepted";
  }
  // The refusal is the server's: the same client with an acceptable suite gets through.
  auto ok = Tls12("AES128-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
  ASSERT_NE(ok, nullptr);
  EXPECT_STREQ(SSL_get_cipher_name(ok->ssl()), "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_GE(server_->stats().tls_handshake_failures, 7);
}

TEST_F(TlsTest, VersionsBelowTls12AreRefused) {
  Start(pki_->ec_cert, pki_->ec_key);
  TlsClientOptions old;
  old.min_version = TLS1_VERSION;
  old.max_version = TLS1_1_VERSION;
  old.tls12_ciphers = "DEFAULT:@SECLEVEL=0";  // the client itself would allow them
  EXPECT_EQ(Tls(old), nullptr);
  old.max_version = TLS1_2_VERSION;
  EXPECT_NE(Tls(old), nullptr);
}

TEST_F(TlsTest, RenegotiationIsRefused) {
  Start(pki_->ec_cert, pki_->ec_key);
  auto c = Tls12("ECDHE-ECDSA-AES128-GCM-SHA256");
  ASSERT_NE(c, nullptr);
  ExpectServed(*c);
  ASSERT_EQ(SSL_renegotiate(c->ssl()), 1);
  EXPECT_NE(SSL_do_handshake(c->ssl()), 1) << "the server renegotiated";
}

TEST_F(TlsTest, HandshakeDeadline) {
  ServerOptions o;
  o.limits.tls_handshake_timeout_ms = 300;
  Start(pki_->ec_cert, pki_->ec_key, o);
  // Says nothing at all.
  auto silent = Conn::Tcp(server_->port());
  ASSERT_NE(silent, nullptr);
  EXPECT_TRUE(silent->WaitClosed());
  // Starts a ClientHello and stops.
  auto partial = Conn::Tcp(server_->port());
  ASSERT_NE(partial, nullptr);
  ASSERT_TRUE(partial->Send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  EXPECT_TRUE(partial->WaitClosed());
  EXPECT_GE(server_->stats().tls_handshake_failures, 2);
  EXPECT_TRUE(WaitUntil([&] { return server_->stats().connections_open == 0; }));
}

TEST_F(TlsTest, LimitsHoldOverTls) {
  ServerOptions o;
  o.limits.request_timeout_ms = 300;
  Start(pki_->ec_cert, pki_->ec_key, o);
  auto c = Tls(TlsClientOptions());
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Send("GET /info HTTP/1.1\r\nHost: localhost\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n"));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(c->WaitClosed());
  c = Tls(TlsClientOptions());
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Send("GET /info HTTP/1.1\r\n"));  // never finished
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c->WaitClosed());
  c = Tls(TlsClientOptions());
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Send("POST /info HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity, chunked\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST_F(TlsTest, ReloadSwapsTheCertificateForNewConnections) {
  TempDir d;
  const std::string cert = d / "cert.pem", key = d / "key.pem";
  std::filesystem::copy_file(pki_->ec_cert, cert);
  std::filesystem::copy_file(pki_->ec_key, key);
  Start(cert, key);
  auto before = Tls(TlsClientOptions());
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(PeerCommonName(before->ssl()), "Ferry Test Server");

  // A broken pair is refused and the old one stays.
  std::filesystem::copy_file(pki_->ec2_cert, cert, std::filesystem::copy_options::overwrite_existing);
  base::Status st = server_->ReloadTls();
  EXPECT_EQ(st.code(), base::Code::kInvalidArgument) << st.ToString();  // the key does not match
  auto still = Tls(TlsClientOptions());
  ASSERT_NE(still, nullptr);
  EXPECT_EQ(PeerCommonName(still->ssl()), "Ferry Test Server");

  std::filesystem::copy_file(pki_->ec2_key, key, std::filesystem::copy_options::overwrite_existing);
  st = server_->ReloadTls();
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto after = Tls(TlsClientOptions());
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(PeerCommonName(after->ssl()), "Ferry Test Server 2");
  ExpectServed(*after);
  ExpectServed(*before);  // an open connection keeps working
}

}  // namespace
}  // namespace ferry::httpd
