#include "tests/unit/httpd/test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace ferry::httpd::testing {

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

}  // namespace

Pki MakePki(const std::string& d) {
  Pki p;
  {
    std::ofstream ext(d + "/ext.cnf");
    ext << "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
           "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n";
  }
  const std::string o = "openssl";
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  auto sign = [&](const std::string& name) {
    return o + " x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/ca.pem -CAkey " + d +
           "/ca.key -CAcreateserial -out " + d + "/" + name + ".pem -days 2 -extfile " + d + "/ext.cnf";
  };
  const std::string cmds[] = {
      o + " req -x509" + ec + "-keyout " + d + "/ca.key -out " + d +
          "/ca.pem -days 2 -subj '/CN=Ferry Test CA' -addext basicConstraints=critical,CA:TRUE"
          " -addext keyUsage=critical,keyCertSign,cRLSign",
      o + " req" + ec + "-keyout " + d + "/ec.key -out " + d + "/ec.csr -subj '/CN=Ferry Test Server'",
      sign("ec"),
      o + " req -newkey rsa:2048 -nodes -keyout " + d + "/rsa.key -out " + d +
          "/rsa.csr -subj '/CN=Ferry Test Server RSA'",
      sign("rsa"),
      o + " req" + ec + "-keyout " + d + "/ec2.key -out " + d + "/ec2.csr -subj '/CN=Ferry Test Server 2'",
      sign("ec2"),
  };
  for (const std::string& c : cmds) {
    if (std::system((c + " >/dev/null 2>&1").c_str()) != 0) {
      std::cerr << "openssl failed: " << c << "\n";
      return p;
    }
  }
  p.ca = d + "/ca.pem";
  p.ec_cert = d + "/ec.pem";
  p.ec_key = d + "/ec.key";
  p.rsa_cert = d + "/rsa.pem";
  p.rsa_key = d + "/rsa.key";
  p.ec2_cert = d + "/ec2.pem";
  p.ec2_key = d + "/ec2.key";
  p.ok = true;
  return p;
}

std::string RawResponse::Header(std::string_view name) const {
  for (const auto& h : headers) {
    if (IEquals(h.first, name)) return h.second;
  }
  return std::string();
}

bool RawResponse::HasHeader(std::string_view name) const {
  for (const auto& h : headers) {
    if (IEquals(h.first, name)) return true;
  }
  return false;
}

std::unique_ptr<Conn> Conn::Tcp(int port, const std::string& host, int timeout_ms) {
  std::unique_ptr<Conn> c(new Conn());
  bool v6 = host.find(':') != std::string::npos;
  c->fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd_ < 0) return nullptr;
  c->SetTimeout(timeout_ms);
  int rc;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
    rc = connect(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    rc = connect(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) return nullptr;
  int one = 1;
  setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return c;
}

std::unique_ptr<Conn> Conn::Unix(const std::string& path, int timeout_ms) {
  std::unique_ptr<Conn> c(new Conn());
  c->fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd_ < 0) return nullptr;
  c->SetTimeout(timeout_ms);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (connect(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return nullptr;
  return c;
}

SSL_CTX* Conn::ClientContext(const TlsClientOptions& opts) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return nullptr;
  bool ok = SSL_CTX_set_min_proto_version(ctx, opts.min_version) == 1 &&
            (opts.max_version == 0 || SSL_CTX_set_max_proto_version(ctx, opts.max_version) == 1) &&
            (opts.tls12_ciphers.empty() || SSL_CTX_set_cipher_list(ctx, opts.tls12_ciphers.c_str()) == 1) &&
            (opts.ca_file.empty() || SSL_CTX_load_verify_locations(ctx, opts.ca_file.c_str(), nullptr) == 1);
  if (!ok) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  if (!opts.ca_file.empty()) SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

std::unique_ptr<Conn> Conn::Tls(int port, const TlsClientOptions& opts, std::string* error, int timeout_ms) {
  SSL_CTX* ctx = ClientContext(opts);
  if (ctx == nullptr) {
    if (error) *error = "the client refused its own TLS options";
    return nullptr;
  }
  auto c = Tls(port, ctx, error, timeout_ms);
  SSL_CTX_free(ctx);  // the connection holds its own reference
  return c;
}

std::unique_ptr<Conn> Conn::Tls(int port, SSL_CTX* ctx, std::string* error, int timeout_ms) {
  auto fail = [&](const std::string& why) -> std::unique_ptr<Conn> {
    if (error) {
      *error = why;
      char buf[256];
      unsigned long e;
      while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        *error += std::string("; ") + buf;
      }
    }
    return nullptr;
  };
  ERR_clear_error();
  std::unique_ptr<Conn> c = Tcp(port, "127.0.0.1", timeout_ms);
  if (!c) return fail("connect failed");
  SSL_CTX_up_ref(ctx);
  c->ctx_ = ctx;
  c->ssl_ = SSL_new(ctx);
  SSL_set_fd(c->ssl_, c->fd_);
  if (SSL_CTX_get_verify_mode(ctx) != SSL_VERIFY_NONE) {
    SSL_set_tlsext_host_name(c->ssl_, "localhost");
    SSL_set1_host(c->ssl_, "localhost");
  }
  if (SSL_connect(c->ssl_) != 1) return fail("handshake failed");
  return c;
}

Conn::~Conn() {
  if (ssl_) SSL_free(ssl_);
  if (ctx_) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

void Conn::SetTimeout(int timeout_ms) {
  timeval tv{};
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool Conn::Send(std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    if (ssl_) {
      int n = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    } else {
      ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
  }
  return true;
}

bool Conn::Fill() {
  if (eof_) return false;
  char buf[16384];
  for (;;) {
    if (ssl_) {
      errno = 0;
      ERR_clear_error();
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        int err = SSL_get_error(ssl_, n);
        bool timeout =
            (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_WANT_READ) && (errno == EAGAIN || errno == EWOULDBLOCK);
        eof_ = !timeout;
        return false;
      }
      in_.append(buf, static_cast<size_t>(n));
      return true;
    }
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = n == 0 || errno != EAGAIN;
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }
}

std::optional<RawResponse> Conn::Read(bool head) {
  size_t end;
  while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill()) return std::nullopt;
  }
  std::string block = in_.substr(0, end + 2);
  in_.erase(0, end + 4);
  RawResponse r;
  size_t eol = block.find("\r\n");
  std::string line = block.substr(0, eol);
  if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) return std::nullopt;
  r.version = line.substr(0, 8);
  r.status = std::atoi(line.c_str() + 9);
  size_t pos = eol + 2;
  while (pos < block.size()) {
    size_t e = block.find("\r\n", pos);
    std::string f = block.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = f.find(':');
    if (colon == std::string::npos) return std::nullopt;
    r.headers.emplace_back(f.substr(0, colon), Trim(f.substr(colon + 1)));
  }
  if (head || r.status < 200 || r.status == 204 || r.status == 304) return r;
  if (IEquals(r.Header("Transfer-Encoding"), "chunked")) {
    r.chunked = true;
    for (;;) {
      size_t le;
      while ((le = in_.find("\r\n")) == std::string::npos) {
        if (!Fill()) return std::nullopt;
      }
      size_t size = std::strtoul(in_.substr(0, le).c_str(), nullptr, 16);
      in_.erase(0, le + 2);
      while (in_.size() < size + 2) {
        if (!Fill()) return std::nullopt;
      }
      r.body.append(in_, 0, size);
      in_.erase(0, size + 2);
      if (size == 0) return r;
    }
  }
  if (r.HasHeader("Content-Length")) {
    size_t n = std::strtoul(r.Header("Content-Length").c_str(), nullptr, 10);
    while (in_.size() < n) {
      if (!Fill()) return std::nullopt;
    }
    r.body = in_.substr(0, n);
    in_.erase(0, n);
    return r;
  }
  while (Fill()) {
  }
  if (!eof_) return std::nullopt;
  r.body = std::move(in_);
  in_.clear();
  return r;
}

bool Conn::WaitClosed() {
  while (Fill()) in_.clear();
  return eof_;
}

std::optional<RawResponse> RoundTrip(int port, const std::string& request) {
  auto c = Conn::Tcp(port);
  if (!c || !c->Send(request)) return std::nullopt;
  return c->Read(request.rfind("HEAD ", 0) == 0);
}

int64_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return -1;
}

int64_t RaiseFileLimit() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return static_cast<int64_t>(rl.rlim_cur);
}

}  // namespace ferry::httpd::testing
