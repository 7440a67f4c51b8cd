// ferry_httpd: the event-driven HTTP/1.1 server under the collector and the agent (Boost.Beast/Asio and OpenSSL
// inside; nothing of them in this header).
//
// The contract
// ------------
// Threads. I/O runs on `io_threads` threads (1-2); no handler ever runs there. Handlers run on a pool of
// `worker_threads` threads and may block (a database, a group commit, a streaming export). A request is handed to the
// pool only once it has arrived whole and passed every check below; when `max_queued_requests` requests already wait
// for a worker, the server answers 503 with Retry-After at once instead of queueing without bound.
//
// Checks, all made on the I/O thread before any handler (and so before any authentication) sees the request, in this
// order:
//   - over `max_connections` open connections, or `max_connections_per_source` from one address: 503 with
//     Retry-After, then close (nothing of the request is read; on a TLS listener after the handshake; at most 64
//     such refusals at a time, beyond that the connection is closed at once). Inside the last
//     `reserved_connections` slots the server closes the connections that have been idle longest (keep-alive idle or
//     nothing sent yet) to keep room for new clients; connections in the middle of a request are never reclaimed
//     (their deadline bounds them). When accept() fails (out of file descriptors) it is retried every 50 ms;
//   - a TLS handshake must finish within `tls_handshake_timeout_ms`; a connection that sends nothing is closed after
//     `idle_timeout_ms` (also between keep-alive requests);
//   - from its first byte, the whole request (headers and body) must arrive within `request_timeout_ms`; trickling
//     does not extend it: 408, then close;
//   - header block over `max_header_bytes` or more than `max_header_count` fields: 431, then close;
//   - malformed requests: 400, then close. That includes two Content-Length fields (equal or not), a Content-Length
//     that is not plain decimal digits or does not fit 64 bits, any Transfer-Encoding other than exactly "chunked",
//     Transfer-Encoding with Content-Length, Transfer-Encoding in an HTTP/1.0 request, a missing or repeated Host in
//     HTTP/1.1, a target that is not origin-form ("/path?query"), bad percent-encoding or an encoded NUL in the path
//     or query. HTTP versions other than 1.0 and 1.1: 505;
//   - a Host outside the listener's allow-list (when it has one): 421;
//   - no route for the path: 404; a route for the path but not for the method: 405 with Allow;
//   - an Expect other than "100-continue": 417;
//   - a body over the route's (else the server's) `max_body_bytes`: 413, known from Content-Length before the body is
//     read, or counted as a chunked body arrives. "Expect: 100-continue" is answered only when the body is welcome.
// Answers the server gives itself use the error body of lib/wire/http_status.h. After a refusal that closes the
// connection, the server drains what the client still sends for up to 1 s (256 KiB; a body refused for its announced
// Content-Length: that length, up to 8 MiB) so the answer is not lost to a reset.
//
// Memory: a connection holds at most max_header_bytes + 16 KiB of input while a request arrives, the body it is
// allowed, and nothing between requests (buffers are freed while idle); a TLS stream (about 70 KiB with OpenSSL's and
// Asio's buffers) is made only once the client sends its first byte. The heap is given back to the system (glibc
// malloc_trim) after bursts of closed connections.
//
// Keep-alive follows HTTP/1.0 and 1.1 (1.0 needs "Connection: keep-alive"; 1.1 stays open unless "close"). HEAD is
// served by the GET route with the body left off. A response is written only after the request was read whole, so
// pipelined requests are answered in order. The server sets Content-Length, Transfer-Encoding and Connection itself;
// a handler asks for a close with Response::close (or a "Connection: close" header).
//
// TLS (OpenSSL): TLS 1.2 minimum; TLS 1.2 offers only forward-secret AEAD suites (ECDHE with AES-GCM or
// ChaCha20-Poly1305); TLS 1.3 with OpenSSL's default suites; no renegotiation; SSL_MODE_RELEASE_BUFFERS.
// ReloadTls() swaps in new certificate and key files for new connections (open ones keep theirs).
//
// Stop(timeout) stops accepting, closes idle connections, lets requests that are being handled finish and their
// answers go out (with "Connection: close") for up to the timeout, then closes what is left and waits for the
// handlers to return (a streaming handler sees BodyWriter::Write return false once its connection is gone).
//
// A server runs once: Start() after Stop() is refused.
//
// Thread-safety: Router and options are configured before Start() and not touched after. Start, Stop, ReloadTls,
// stats and the port accessors may be called from any thread (not from a signal handler).
#ifndef FERRY_LIB_HTTPD_HTTPD_H_
#define FERRY_LIB_HTTPD_HTTPD_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/log.h"
#include "lib/base/status.h"

namespace ferry::httpd {

// Header fields in arrival order; names compare case-insensitively (ASCII).
class Headers {
 public:
  // The value of the first field called `name`, or nullptr.
  const std::string* Find(std::string_view name) const;
  // The value of the first field called `name`, or `fallback`.
  std::string Get(std::string_view name, std::string_view fallback = {}) const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  size_t Count(std::string_view name) const;
  void Add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }
  // Replaces every field called `name` by one.
  void Set(std::string name, std::string value);
  void Remove(std::string_view name);

  using Field = std::pair<std::string, std::string>;
  std::vector<Field>::const_iterator begin() const { return fields_.begin(); }
  std::vector<Field>::const_iterator end() const { return fields_.end(); }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

// The peer of a Unix-domain socket (SO_PEERCRED at accept).
struct PeerCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
};

struct Request {
  std::string method;  // as sent ("GET"); a HEAD request keeps "HEAD" even when the GET route serves it
  std::string target;  // as sent ("/v1/subjects/a%2Fb/export?project=p")
  std::string path;    // the target before '?', still percent-encoded
  int version = 11;    // 10 or 11
  Headers headers;
  std::string body;  // the whole body (chunked bodies are joined); at most the route's max_body_bytes

  // Decoded query parameters in order ('+' is a space); Query gives the first value of a name.
  std::vector<std::pair<std::string, std::string>> query;
  std::optional<std::string> Query(std::string_view name) const;
  // Named segments of the route pattern, percent-decoded ("{id}" -> "a/b"); Param gives "" when absent.
  std::vector<std::pair<std::string, std::string>> params;
  std::string Param(std::string_view name) const;

  // TCP peers: the address ("192.0.2.1", "2001:db8::1"; IPv4-mapped IPv6 shown as IPv4) and port. Unix-socket
  // peers: "unix" and 0.
  std::string remote_addr;
  uint16_t remote_port = 0;
  // The peer is on this machine: a loopback address (127.0.0.0/8, ::1) or a Unix-socket peer.
  bool loopback = false;
  // Set for Unix-socket peers only.
  std::optional<PeerCredentials> peer;
  bool tls = false;
  std::string listener_tag;  // ListenerOptions::tag of the listener the request came in on
};

// Produces the body of a streaming response on a worker thread (chunked transfer coding; for an HTTP/1.0 client the
// body runs until the connection closes).
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  // Queues `data` for sending; blocks while more than about 256 KiB are waiting to go out. Returns false once the
  // connection is gone (the client left, a write deadline passed, the server stops): the producer should return.
  virtual bool Write(std::string_view data) = 0;
  // Ends the answer without its terminating chunk and closes the connection, so the client sees a cut-off body.
  virtual void Abort() = 0;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the status and headers go out first and then this function writes the body (it runs on the worker
  // thread that ran the handler and may block). `body` is ignored. Not called for HEAD requests.
  std::function<void(BodyWriter&)> stream;
  // Close the connection after this answer.
  bool close = false;

  static Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static Response Json(int status, std::string body);
  // The one error body of lib/wire/http_status.h ({"error": reason, "code": ...}) with the status.
  static Response Error(int status, std::string_view reason);
};

using Handler = std::function<Response(Request&)>;

struct RouteOptions {
  // The largest body this route takes; 0 = the server's Limits::max_body_bytes.
  size_t max_body_bytes = 0;
};

// A route table. A pattern is a path whose segments are literal text, "{name}" (one segment, percent-decoded into
// Request::params) or, as the last segment only, "{name*}" (the rest of the path, zero or more segments, each decoded,
// joined by '/'). Literal segments are matched against the decoded segments. When several patterns match, the one
// that is more literal from the left wins. A HEAD request with no HEAD route is served by the GET route.
//
// Mistakes in a pattern (an unclosed brace, a repeated name, "{x*}" before the end) are kept in status(): Start()
// refuses a server whose routers are not ok.
class Router {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  Router& Add(std::string method, std::string_view pattern, Handler handler, RouteOptions options = {});
  Router& Get(std::string_view p, Handler h, RouteOptions o = {}) { return Add("GET", p, std::move(h), o); }
  Router& Post(std::string_view p, Handler h, RouteOptions o = {}) { return Add("POST", p, std::move(h), o); }
  Router& Put(std::string_view p, Handler h, RouteOptions o = {}) { return Add("PUT", p, std::move(h), o); }
  Router& Patch(std::string_view p, Handler h, RouteOptions o = {}) { return Add("PATCH", p, std::move(h), o); }
  Router& Delete(std::string_view p, Handler h, RouteOptions o = {}) { return Add("DELETE", p, std::move(h), o); }
  Router& Options(std::string_view p, Handler h, RouteOptions o = {}) { return Add("OPTIONS", p, std::move(h), o); }

  const base::Status& status() const;

  // What a request for (method, raw path) resolves to: a route, or the status the server answers (400 for a bad
  // path, 404, 405 with `allow`). The server calls this; it is public for tests and tools.
  struct Match {
    int status = 404;  // 0 when a route was found
    std::string reason;
    std::string allow;  // for 405: "GET, HEAD, POST"
    const Handler* handler = nullptr;
    RouteOptions options;
    std::vector<std::pair<std::string, std::string>> params;
  };
  Match Resolve(std::string_view method, std::string_view raw_path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One listening socket.
struct ListenerOptions {
  // TCP: host ("127.0.0.1", "::1", "0.0.0.0", "::") and port (0 = any free port; Server::port() tells which).
  std::string host = "127.0.0.1";
  int port = 0;
  // TLS on this TCP listener: PEM certificate chain and private key files (both or neither).
  std::string tls_cert_file, tls_key_file;
  // A Unix-domain socket instead of TCP when set: created with `unix_mode`; an old socket at the path is replaced, any
  // other file there is an error. Requests carry the peer's uid/gid/pid.
  std::string unix_path;
  mode_t unix_mode = 0660;

  // Passed on as Request::listener_tag ("metrics", "local").
  std::string tag;
  // The routes of this listener; null: the server's router.
  std::shared_ptr<const Router> router;
  // Host allow-list (DNS-rebinding defence): when on, a request's Host must be localhost, 127.0.0.1, [::1] or one of
  // `allowed_hosts` (names compare case-insensitively; any port may follow), else 421.
  bool restrict_host = false;
  std::vector<std::string> allowed_hosts;

  static ListenerOptions Tcp(std::string host, int port) {
    ListenerOptions o;
    o.host = std::move(host);
    o.port = port;
    return o;
  }
  static ListenerOptions Unix(std::string path, mode_t mode = 0660) {
    ListenerOptions o;
    o.unix_path = std::move(path);
    o.unix_mode = mode;
    return o;
  }
};

struct Limits {
  size_t max_header_bytes = 64 * 1024;  // request line and header fields together
  size_t max_header_count = 100;
  size_t max_body_bytes = 1024 * 1024;  // routes may set their own
  int64_t request_timeout_ms = 10000;   // first byte to last byte of a request
  int64_t idle_timeout_ms = 5000;       // nothing sent yet on a new connection, or between keep-alive requests
  int64_t tls_handshake_timeout_ms = 5000;
  int64_t write_timeout_ms = 10000;   // each write of an answer (each piece of a streaming one) must finish within this
  size_t max_connections = 4096;      // open connections over all listeners
  size_t reserved_connections = 256;  // the last slots, kept free by closing the longest-idle connections
  size_t max_connections_per_source = 0;  // per remote address (TCP); 0 = no cap
};

struct ServerOptions {
  int io_threads = 1;
  int worker_threads = 16;
  size_t max_queued_requests = 256;  // waiting for a worker; more: 503
  int retry_after_s = 1;             // Retry-After of the server's own 503 answers
  Limits limits;
  base::Logger log;
};

// Counters since Start(), for the daemons' /metrics.
struct Stats {
  int64_t connections_open = 0;  // now
  int64_t connections_accepted = 0;
  int64_t connections_refused = 0;             // over max_connections (503, close)
  int64_t connections_refused_per_source = 0;  // over max_connections_per_source (503, close)
  int64_t connections_reclaimed = 0;           // idle connections closed to keep the reserve free
  int64_t accept_errors = 0;                   // accept() failed (out of file descriptors, ...)
  int64_t tls_handshake_failures = 0;          // includes handshake timeouts
  int64_t idle_timeouts = 0;
  int64_t requests_by_class[5] = {0, 0, 0, 0, 0};  // answers written, by status class 1xx..5xx
  // Refusals made by the server before a handler ran, by reason.
  int64_t refused_header_too_large = 0;  // 431
  int64_t refused_timeout = 0;           // 408
  int64_t refused_body_too_large = 0;    // 413
  int64_t refused_misdirected = 0;       // 421 (Host not allowed)
  int64_t refused_bad_request = 0;       // 400, 417, 505
  int64_t refused_queue_full = 0;        // 503: no worker free and the queue full
  int64_t queued_requests = 0;           // now
};

// The most connections (Limits::max_connections) that the process's file descriptors allow, at most `wanted`: raises
// the soft limit of open files to the hard one, then keeps 64 descriptors for everything else (files, logs, the
// listeners). A daemon sets its cap with this and logs when it is lower than configured.
size_t ConnectionsThatFit(size_t wanted);

// Prometheus text lines for `s`, every name starting with `prefix` ("ferry_collector_http").
std::string RenderStats(const Stats& s, std::string_view prefix);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // Stop(0) if running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The router of listeners that have none of their own. Configure before Start().
  Router& router();
  // Adds a listener (before Start()). Returns its index.
  size_t AddListener(ListenerOptions options);
  // Binds every listener, loads TLS files, starts the I/O and worker threads. On failure nothing keeps running.
  base::Status Start();
  // The bound TCP port of listener `index` (0 for Unix sockets or before Start()).
  int port(size_t index = 0) const;
  // Graceful stop (see the contract above). Idempotent; returns when every thread has been joined.
  void Stop(int64_t timeout_ms = 5000);
  // Loads the certificate and key files of every TLS listener again; new connections use them. On error (a missing
  // or mismatched file) the old ones stay and the error is returned.
  base::Status ReloadTls();
  Stats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::httpd

#endif  // FERRY_LIB_HTTPD_HTTPD_H_
