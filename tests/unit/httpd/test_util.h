// Helpers for ferry_httpd's tests: raw TCP, Unix and TLS client connections that write exact bytes and read answers
// with a deadline, a throwaway PKI made with the openssl CLI, a temporary directory, the process's RSS.
#ifndef FERRY_TESTS_UNIT_HTTPD_TEST_UTIL_H_
#define FERRY_TESTS_UNIT_HTTPD_TEST_UTIL_H_

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/unit/platform/test_dir.h"

namespace ferry::httpd::testing {

// A temporary directory per test (the platform tests' helper).
using platform::testing::TempDir;

// A CA and two server certificates it signed (subjectAltName localhost and 127.0.0.1), made by the openssl CLI.
struct Pki {
  std::string ca;                 // CA certificate (PEM)
  std::string ec_cert, ec_key;    // P-256 ECDSA server certificate
  std::string rsa_cert, rsa_key;  // RSA 2048 server certificate
  std::string ec2_cert, ec2_key;  // a second ECDSA certificate (CN "Ferry Test Server 2"), for reloads
  bool ok = false;
};
// Makes the PKI in `dir`. Ok false (and a message on stderr) when the CLI failed.
Pki MakePki(const std::string& dir);

// An answer as the client saw it.
struct RawResponse {
  int status = 0;
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool chunked = false;
  // The first value of a header (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

struct TlsClientOptions {
  int min_version = TLS1_2_VERSION;
  int max_version = 0;        // 0: the highest
  std::string tls12_ciphers;  // "": OpenSSL's defaults
  std::string ca_file;        // "": no verification
};

// A blocking client connection (TCP, Unix, or TLS over TCP) whose reads and writes give up after a timeout.
class Conn {
 public:
  static std::unique_ptr<Conn> Tcp(int port, const std::string& host = "127.0.0.1", int timeout_ms = 5000);
  static std::unique_ptr<Conn> Unix(const std::string& path, int timeout_ms = 5000);
  // nullptr when the TCP connect or the TLS handshake fails; *error tells why.
  static std::unique_ptr<Conn> Tls(int port, const TlsClientOptions& opts, std::string* error = nullptr,
                                   int timeout_ms = 5000);
  // The same with a client context made once by ClientContext (many connections share it).
  static std::unique_ptr<Conn> Tls(int port, SSL_CTX* ctx, std::string* error = nullptr, int timeout_ms = 5000);
  // A client context for `opts` (SSL_CTX_free it); nullptr when the options are refused.
  static SSL_CTX* ClientContext(const TlsClientOptions& opts);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Writes all of `data`; false when the connection broke.
  bool Send(std::string_view data);
  // Reads one answer (Content-Length, chunked or until close). nullopt on timeout, a broken connection or garbage.
  // `head`: the request was HEAD (no body follows whatever the headers say).
  std::optional<RawResponse> Read(bool head = false);
  // Reads until the server closes (true) or the timeout passes (false); discards what arrives.
  bool WaitClosed();
  // Bytes received but not consumed by Read (pipelining, or what follows a 100 Continue).
  const std::string& pending() const { return in_; }
  int fd() const { return fd_; }
  SSL* ssl() const { return ssl_; }
  void SetTimeout(int timeout_ms);

 private:
  Conn() = default;
  // Reads more into in_; false on EOF, error or timeout.
  bool Fill();
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string in_;
  bool eof_ = false;
};

// One request and its answer on a fresh connection.
std::optional<RawResponse> RoundTrip(int port, const std::string& request);

// Polls `pred` until it holds or `ms` pass (waiting on an observable state, not on time).
template <typename Pred>
bool WaitUntil(Pred pred, int ms = 5000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

// The resident set size of this process in bytes (/proc/self/status).
int64_t RssBytes();

// Raises the soft limit of open files to the hard limit; returns the new soft limit.
int64_t RaiseFileLimit();

}  // namespace ferry::httpd::testing

#endif  // FERRY_TESTS_UNIT_HTTPD_TEST_UTIL_H_
