// The server: Asio sockets and timers, Beast's request parser, OpenSSL. The only translation unit of ferry_httpd
// that includes Boost (besides asio_impl.cc, which compiles the Asio and Beast library code once).
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "lib/httpd/detail.h"
#include "lib/httpd/httpd.h"

namespace ferry::httpd {

namespace net = boost::asio;
namespace http = boost::beast::http;
using error_code = boost::system::error_code;
using Socket = net::generic::stream_protocol::socket;
using Acceptor = net::basic_socket_acceptor<net::generic::stream_protocol>;
using TlsContext = std::shared_ptr<SSL_CTX>;
using Executor = net::any_io_executor;

namespace {

constexpr size_t kStreamHighWater = 256 * 1024;  // bytes queued by a streaming producer before Write blocks
constexpr int64_t kLingerMs = 1000;              // after a final answer: how long unread input is drained
constexpr size_t kLingerBytes = 256 * 1024;      // ... and how much of it
constexpr int64_t kRefusalWriteMs = 2000;        // the server's own short answers must go out within this
constexpr int64_t kMaxRefusing = 64;             // connections being refused (503) at one time; beyond: plain close
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kIdleReadChunk = 1024;  // TLS connections read this much while idle
constexpr int64_t kTrimEveryMs = 1000;
constexpr int64_t kTrimAfterClosed = 256;  // connections closed since the last malloc_trim
// A body refused (413) for its announced Content-Length is drained whole up to this size, so that a client still
// sending it reads the answer instead of a reset (the answer is lost to a reset when unread input remains at close).
// Announced bodies larger than this are cut off after kLingerBytes. Still bounded by kLingerMs.
constexpr size_t kLingerRefusedBodyBytes = 8 * 1024 * 1024;

// TLS 1.2: forward-secret AEAD suites only. TLS 1.3 keeps OpenSSL's defaults (all AEAD, all forward secret).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool StatusHasBody(int status) { return status >= 200 && status != 204 && status != 304; }

// The OpenSSL error queue of this thread as text (and cleared).
std::string OpenSslErrors() {
  std::string out;
  char buf[256];
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    out += out.empty() ? "" : "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

base::Result<TlsContext> MakeTlsContext(const std::string& cert, const std::string& key) {
  ERR_clear_error();
  TlsContext ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  SSL_CTX* c = ctx.get();
  if (c == nullptr || SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) {
    return base::Status::Internal("cannot configure TLS: " + OpenSslErrors());
  }
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                             SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Idle connections give their record buffers back; writes may be partial and resumed from a moved buffer.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // No server-side session cache (it grew by a session per TLS 1.2 handshake); resumption uses tickets.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(c, cert.c_str()) != 1) {
    return base::Status::InvalidArgument("cannot load the TLS certificate " + cert + ": " + OpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(c, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return base::Status::InvalidArgument("cannot load the TLS key " + key + ": " + OpenSslErrors());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    ERR_clear_error();
    return base::Status::InvalidArgument("the TLS key " + key + " does not match the certificate " + cert);
  }
  return ctx;
}

// ---- the request parser -----------------------------------------------------------------------------------------

// Beast's parser with Ferry's rules on top: fields counted, Content-Length and Transfer-Encoding strict, the body
// gathered into the Request with a limit. A refusal is kept in `refusal`/`reason` and stops the parse.
class RequestParser final : public http::basic_parser<true> {
 public:
  RequestParser(Request* req, const Limits& limits) : req_(req), max_fields_(limits.max_header_count) {
    header_limit(static_cast<std::uint32_t>(std::min<size_t>(limits.max_header_bytes, UINT32_MAX)));
    // Enforced here, per route. Not boost::none: Beast 1.74 compares a Content-Length with an empty optional as
    // "greater" and refuses every body.
    body_limit(std::numeric_limits<std::uint64_t>::max());
    eager(false);  // stop after the header so it can be checked before the body is read
  }

  void set_max_body(size_t n) { max_body_ = n; }
  size_t content_length_fields() const { return cl_fields_; }
  size_t host_fields() const { return host_fields_; }
  bool has_expect() const { return !expect_.empty(); }
  const std::string& expect() const { return expect_; }

  int refusal = 0;
  std::string reason;

 private:
  void Fail(int status, const char* why, error_code& ec) {
    refusal = status;
    reason = why;
    ec = http::error::bad_value;
  }

  void on_request_impl(http::verb, boost::beast::string_view method, boost::beast::string_view target, int version,
                       error_code&) override {
    req_->method.assign(method.data(), method.size());
    req_->target.assign(target.data(), target.size());
    req_->version = version;  // Beast has refused all but 10 and 11
  }
  void on_response_impl(int, boost::beast::string_view, int, error_code& ec) override { ec = http::error::bad_version; }
  void on_field_impl(http::field f, boost::beast::string_view name, boost::beast::string_view value,
                     error_code& ec) override {
    if (++fields_ > max_fields_) return Fail(431, "too many header fields", ec);
    std::string_view v(value.data(), value.size());
    if (f == http::field::content_length) {
      if (++cl_fields_ > 1) return Fail(400, "more than one Content-Length", ec);
      if (!AllDigits(v)) return Fail(400, "a bad Content-Length", ec);  // Beast refused what overflows
    } else if (f == http::field::transfer_encoding) {
      if (++te_fields_ > 1 || !detail::EqualsIgnoreCase(v, "chunked")) {
        return Fail(400, "Transfer-Encoding other than chunked", ec);
      }
    } else if (f == http::field::host) {
      ++host_fields_;
    } else if (f == http::field::expect) {
      expect_.assign(v);
    }
    req_->headers.Add(std::string(name.data(), name.size()), std::string(v));
  }
  void on_header_impl(error_code& ec) override {
    if (te_fields_ > 0 && cl_fields_ > 0) return Fail(400, "both Transfer-Encoding and Content-Length", ec);
    if (te_fields_ > 0 && req_->version == 10) return Fail(400, "Transfer-Encoding in an HTTP/1.0 request", ec);
  }
  void on_body_init_impl(boost::optional<std::uint64_t> const& length, error_code&) override {
    // Reserve only a little: a client announcing a large body does not get the memory before it sends the bytes.
    if (length) req_->body.reserve(std::min<std::uint64_t>(*length, 64 * 1024));
  }
  size_t Append(boost::beast::string_view s, error_code& ec) {
    if (s.size() > max_body_ - std::min(max_body_, req_->body.size())) {
      Fail(413, "body too large", ec);
      return 0;
    }
    req_->body.append(s.data(), s.size());
    return s.size();
  }
  size_t on_body_impl(boost::beast::string_view s, error_code& ec) override { return Append(s, ec); }
  void on_chunk_header_impl(std::uint64_t size, boost::beast::string_view, error_code& ec) override {
    if (size > max_body_ - std::min(max_body_, req_->body.size())) Fail(413, "body too large", ec);
  }
  size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view s, error_code& ec) override {
    return Append(s, ec);
  }
  void on_finish_impl(error_code&) override {}

  Request* req_;
  size_t max_fields_;
  size_t max_body_ = 0;
  size_t fields_ = 0, cl_fields_ = 0, te_fields_ = 0, host_fields_ = 0;
  std::string expect_;
};

// ---- the worker pool --------------------------------------------------------------------------------------------

class WorkerPool {
 public:
  void Start(int threads, size_t max_queue) {
    max_queue_ = max_queue;
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  // False when the queue is full (or the pool stopped).
  bool TrySubmit(std::function<void()> job) {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(std::move(job));
    queued_.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
    cv_.notify_one();
    return true;
  }
  // Runs what is queued, then joins.
  void StopAndJoin() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }

 private:
  void Run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        queued_.store(static_cast<int64_t>(queue_.size()), std::memory_order_relaxed);
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  size_t max_queue_ = 0;
  bool stop_ = false;
  std::atomic<int64_t> queued_{0};
  std::vector<std::thread> threads_;
};

// ---- streaming --------------------------------------------------------------------------------------------------

// Shared by a streaming producer (worker thread) and its connection (I/O strand).
struct StreamState {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  size_t queued = 0;       // bytes queued or being written
  bool scheduled = false;  // a flush is posted or a write is running
  bool finished = false;   // the producer is done (or aborted): nothing more comes
  bool aborted = false;    // close without the terminating chunk
  bool failed = false;     // the connection is gone
  bool chunked = true;
  bool keep_alive = false;
};

}  // namespace

class Connection;

struct Listener {
  ListenerOptions opts;
  std::shared_ptr<const Router> router;
  bool tls = false;
  TlsContext tls_ctx;  // guarded by ServerCore::tls_mu_
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<net::steady_timer> retry;  // accept backoff (out of descriptors)
  int port = 0;
  bool unix_created = false;
};

class ServerCore {
 public:
  explicit ServerCore(ServerOptions o) : opts(std::move(o)), default_router(std::make_shared<Router>()) {}

  ServerOptions opts;
  std::shared_ptr<Router> default_router;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unique_ptr<net::io_context> ioc;
  std::unique_ptr<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> io_threads;
  WorkerPool pool;
  std::unique_ptr<net::steady_timer> housekeeping;

  std::mutex run_mu;  // Start/Stop
  bool running = false;
  bool started = false;  // a server runs once
  std::atomic<bool> stopping{false};

  std::mutex tls_mu;

  // Open connections, for Stop and for reclaiming idle ones.
  std::mutex conns_mu;
  std::condition_variable conns_cv;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> conns;
  std::map<std::string, size_t> per_source;
  std::atomic<int64_t> open{0};
  std::atomic<int64_t> refusing{0};
  std::atomic<int64_t> reclaim_pending{0};
  std::atomic<int64_t> idle_seq{0};  // orders connections by when they became idle
  std::atomic<int64_t> closed_since_trim{0};
  int64_t closed_at_last_tick = 0;  // housekeeping only
  std::atomic<int64_t> last_accept_error_log_ms{0};

  struct Counters {
    std::atomic<int64_t> accepted{0}, refused{0}, refused_per_source{0}, reclaimed{0}, accept_errors{0},
        tls_failures{0}, idle_timeouts{0};
    std::atomic<int64_t> by_class[5] = {};
    std::atomic<int64_t> r431{0}, r408{0}, r413{0}, r421{0}, r400{0}, r503q{0};
  } counters;

  void CountStatus(int status) {
    int c = status / 100;
    if (c >= 1 && c <= 5) counters.by_class[c - 1].fetch_add(1, std::memory_order_relaxed);
  }

  void Accept(Listener* l);
  void OnAccept(Listener* l, const error_code& ec, Socket sock);
  void Register(const std::shared_ptr<Connection>& c, bool refusing, const std::string& source);
  void Unregister(Connection* c, bool refusing, const std::string& source);
  void Reclaim(int64_t want);
  void Housekeeping();
  std::vector<std::shared_ptr<Connection>> Snapshot();
  void ShutdownThreads();
};

namespace {

// Where a request came from.
struct PeerInfo {
  std::string addr;
  uint16_t port = 0;
  bool loopback = false;
  std::optional<PeerCredentials> cred;
  std::string source;  // key of the per-source cap ("" for Unix sockets)
};

PeerInfo DescribePeer(int fd) {
  PeerInfo p;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    p.port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    }
    p.port = ntohs(a->sin6_port);
  } else if (ss.ss_family == AF_UNIX) {
    p.addr = "unix";
    p.loopback = true;
    ucred uc{};
    socklen_t ul = sizeof uc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) p.cred = PeerCredentials{uc.uid, uc.gid, uc.pid};
    return p;
  }
  p.addr = buf;
  p.source = p.addr;
  p.loopback = detail::IsLoopbackAddress(p.addr);
  return p;
}

}  // namespace

// One accepted connection. Everything here runs on the connection's strand, except HandlerDone and the
// StreamWriter (worker threads), which only post to the strand and touch the StreamState.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerCore* srv, Listener* lis, Socket sock, PeerInfo peer, TlsContext tls_ctx, bool refuse,
             int refuse_status)
      : srv_(*srv),
        lis_(*lis),
        ex_(sock.get_executor()),
        sock_(std::move(sock)),
        tls_ctx_(std::move(tls_ctx)),
        timer_(ex_),
        buf_(srv->opts.limits.max_header_bytes + kReadChunk),
        peer_(std::move(peer)),
        refuse_(refuse),
        refuse_status_(refuse_status) {}

  ~Connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    Unregister();
  }

  bool refusing() const { return refuse_; }
  const std::string& source() const { return peer_.source; }
  // Waiting for a first byte (of a connection or of its next request): may be reclaimed.
  bool reclaimable() const { return reclaimable_.load(std::memory_order_relaxed); }
  // When it became idle, as a sequence number over the server (smaller: idle longer).
  int64_t idle_since() const { return idle_since_.load(std::memory_order_relaxed); }

  // Called by the acceptor once the connection is in the server's registry (before Start).
  void MarkRegistered() { registered_ = true; }
  void Start() {
    net::dispatch(ex_, [self = shared_from_this()] { self->DoStart(); });
  }
  // From any thread.
  void PostReclaim() {
    net::post(ex_, [self = shared_from_this()] {
      if (!self->closed_ && self->reclaimable_) {
        self->srv_.counters.reclaimed.fetch_add(1, std::memory_order_relaxed);
        self->Close();
      }
      self->srv_.reclaim_pending.fetch_sub(1, std::memory_order_relaxed);
    });
  }
  void PostStop() {
    net::post(ex_, [self = shared_from_this()] {
      // Idle, handshaking or half-read: nothing is in flight. Being handled or written: finish (the answer carries
      // Connection: close, see HandlerDone) and close after it.
      if (self->state_ == State::kWaiting || self->state_ == State::kReading) self->Close();
    });
  }
  void PostClose() {
    net::post(ex_, [self = shared_from_this()] { self->Close(); });
  }

  // Worker thread: the handler returned.
  void HandlerDone(Response res, const std::shared_ptr<Request>& req, bool keep_alive_req);
  // Worker thread: a streaming producer queued something.
  void PostFlush(const std::shared_ptr<StreamState>& st) {
    net::post(ex_, [self = shared_from_this(), st] { self->StreamFlush(st); });
  }

 private:
  enum class State { kWaiting, kReading, kHandling, kWriting, kClosing, kClosed };
  enum class TimerKind { kHandshake, kIdle, kRequest, kWrite, kLinger };
  enum class After { kKeepAlive, kClose, kContinue, kStreamPiece };

  void Unregister() {
    if (registered_) {
      registered_ = false;
      srv_.Unregister(this, refuse_, peer_.source);
    }
  }

  void DoStart() {
    if (lis_.tls) {
      // The TLS stream (about 70 KiB with OpenSSL's and Asio's buffers) is made once the client speaks.
      reclaimable_ = true;
      idle_since_ = srv_.idle_seq.fetch_add(1, std::memory_order_relaxed);
      ArmTimer(srv_.opts.limits.tls_handshake_timeout_ms, TimerKind::kHandshake);
      sock_.async_wait(Socket::wait_read, [self = shared_from_this()](const error_code& ec) { self->OnHello(ec); });
      return;
    }
    Ready();
  }

  void OnHello(const error_code& ec) {
    if (closed_) return;
    reclaimable_ = false;
    if (ec) return Close();
    // OpenSSL works on the non-blocking socket itself; the connection waits for readiness when it asks to (no
    // buffers of Asio's or BIO pairs in between: an idle TLS connection keeps only OpenSSL's session state).
    ERR_clear_error();
    error_code e;
    sock_.native_non_blocking(true, e);
    ssl_ = SSL_new(tls_ctx_.get());
    if (e || ssl_ == nullptr || SSL_set_fd(ssl_, sock_.native_handle()) != 1) {
      tls_broken_ = true;
      return OnHandshake(net::error::no_memory);
    }
    tls_ctx_.reset();  // the SSL object holds its own reference
    TlsHandshake();
  }

  // ---- TLS on the socket (OpenSSL directly) ----

  // What an OpenSSL call that did not finish wants; false (and *ec set) when the connection is broken.
  bool TlsWait(int rc, error_code* ec, Socket::wait_type* wait) {
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ) {
      *wait = Socket::wait_read;
      return true;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      *wait = Socket::wait_write;
      return true;
    }
    ERR_clear_error();
    if (err != SSL_ERROR_ZERO_RETURN) tls_broken_ = true;  // no SSL_shutdown after a fatal error
    *ec = err == SSL_ERROR_ZERO_RETURN ? error_code(net::error::eof) : error_code(net::error::connection_reset);
    return false;
  }

  // Runs the completion of a TLS operation that finished at once: directly, unless completions are already nested
  // a few deep on this stack (a fast peer and a streaming producer could otherwise recurse without end).
  template <typename F>
  void Complete(F f) {
    if (nested_ < 4) {
      ++nested_;
      f();
      --nested_;
      return;
    }
    net::post(ex_, [self = shared_from_this(), f] { f(); });
  }

  void TlsHandshake() {
    ERR_clear_error();
    int rc = SSL_accept(ssl_);
    if (rc == 1) return OnHandshake(error_code());
    error_code ec;
    Socket::wait_type wait;
    if (!TlsWait(rc, &ec, &wait)) return OnHandshake(ec);
    sock_.async_wait(wait, [self = shared_from_this()](const error_code& e) {
      if (self->closed_) return;
      if (e) return self->OnHandshake(e);
      self->TlsHandshake();
    });
  }

  void TlsRead(net::mutable_buffer mb) {
    ERR_clear_error();
    size_t n = 0;
    int rc = SSL_read_ex(ssl_, mb.data(), mb.size(), &n);
    if (rc == 1) {
      return Complete([this, n] { OnRead(error_code(), n); });
    }
    error_code ec;
    Socket::wait_type wait;
    if (!TlsWait(rc, &ec, &wait)) {
      return Complete([this, ec] { OnRead(ec, 0); });
    }
    sock_.async_wait(wait, [self = shared_from_this(), mb](const error_code& e) {
      if (self->closed_) return;
      if (e) return self->OnRead(e, 0);
      self->TlsRead(mb);
    });
  }

  // Writes tls_out_ from tls_out_at_ on.
  void TlsWrite() {
    while (tls_out_at_ < tls_out_.size()) {
      net::const_buffer& b = tls_out_[tls_out_at_];
      if (b.size() == 0) {
        ++tls_out_at_;
        continue;
      }
      ERR_clear_error();
      size_t n = 0;
      int rc = SSL_write_ex(ssl_, b.data(), b.size(), &n);
      if (rc == 1) {
        b += n;
        continue;
      }
      error_code ec;
      Socket::wait_type wait;
      if (!TlsWait(rc, &ec, &wait)) {
        return Complete([this, ec] { OnWritten(ec); });
      }
      return sock_.async_wait(wait, [self = shared_from_this()](const error_code& e) {
        if (self->closed_) return;
        if (e) return self->OnWritten(e);
        self->TlsWrite();
      });
    }
    Complete([this] { OnWritten(error_code()); });
  }

  void OnHandshake(const error_code& ec) {
    if (closed_) return;
    CancelTimer();
    if (ec) {
      srv_.counters.tls_failures.fetch_add(1, std::memory_order_relaxed);
      return Close();
    }
    Ready();
  }

  void Ready() {
    if (refuse_) {
      return WriteCanned(refuse_status_, "too many connections; retry later", true, srv_.opts.retry_after_s);
    }
    WaitRequest();
  }

  // Between requests: wait for the first byte of the next one, holding no buffer.
  void WaitRequest() {
    state_ = State::kWaiting;
    req_.reset();
    parser_.reset();
    if (buf_.size() > 0) {  // pipelined
      BeginRequest();
      return Parse();
    }
    if (srv_.stopping) return Close();
    buf_.shrink_to_fit();
    reclaimable_ = true;
    idle_since_ = srv_.idle_seq.fetch_add(1, std::memory_order_relaxed);
    ArmTimer(srv_.opts.limits.idle_timeout_ms, TimerKind::kIdle);
    if (ssl_) return ReadSome();  // decrypted bytes may wait inside OpenSSL: read, do not poll the socket
    sock_.async_wait(Socket::wait_read, [self = shared_from_this()](const error_code& ec) {
      if (self->closed_) return;
      if (ec) return self->Close();
      self->BeginRequest();
      self->ReadSome();
    });
  }

  void BeginRequest() {
    reclaimable_ = false;
    state_ = State::kReading;
    timed_out_ = false;
    header_checked_ = false;
    req_ = std::make_shared<Request>();
    parser_.emplace(req_.get(), srv_.opts.limits);
    request_deadline_ = NowMs() + srv_.opts.limits.request_timeout_ms;
    ArmTimer(srv_.opts.limits.request_timeout_ms, TimerKind::kRequest);
  }

  void ReadSome() {
    size_t room = buf_.max_size() - buf_.size();
    if (room == 0) {
      // The parser refuses an oversized header itself; a full buffer past the header is an endless chunk line.
      return Refuse(header_checked_ ? 400 : 431, header_checked_ ? "a chunk header too long" : "header too large");
    }
    size_t want = std::min(room, state_ == State::kWaiting ? kIdleReadChunk : kReadChunk);
    auto mb = buf_.prepare(want);
    auto h = [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); };
    if (ssl_) return TlsRead(mb);
    sock_.async_read_some(mb, std::move(h));
  }

  void OnRead(const error_code& ec, size_t n) {
    if (closed_) return;
    buf_.commit(n);
    if (timed_out_) {
      srv_.counters.r408.fetch_add(1, std::memory_order_relaxed);
      return WriteCanned(408, "the request did not arrive in time", true, 0);
    }
    if (ec) return Close();  // the client left (or reset), or the stream broke
    if (state_ == State::kWaiting) BeginRequest();
    Parse();
  }

  void Parse() {
    for (;;) {
      if (buf_.size() == 0) return ReadSome();
      error_code ec;
      size_t used = parser_->put(buf_.data(), ec);
      buf_.consume(used);
      if (ec == http::error::need_more || (!ec && used == 0 && !parser_->is_done())) return ReadSome();
      if (ec) return RefuseParse(ec);
      if (!header_checked_ && parser_->is_header_done()) {
        header_checked_ = true;
        if (!CheckHeader()) return;  // answered, or writing "100 Continue" (Parse resumes after it)
      }
      if (parser_->is_done()) return Dispatch();
    }
  }

  void RefuseParse(const error_code& ec) {
    if (parser_->refusal != 0) return Refuse(parser_->refusal, parser_->reason);
    if (ec == http::error::header_limit) return Refuse(431, "header too large");
    if (ec == http::error::bad_content_length) return Refuse(400, "a bad Content-Length");
    if (ec == http::error::bad_transfer_encoding) return Refuse(400, "a bad Transfer-Encoding");
    if (ec == http::error::bad_version && WellFormedOtherVersion()) {
      return Refuse(505, "only HTTP/1.0 and HTTP/1.1 are served");
    }
    return Refuse(400, "malformed request");
  }

  // The request line (still in the buffer: the parser consumed nothing) ends in a well-formed "HTTP/d.d" that is not
  // 1.0 or 1.1.
  bool WellFormedOtherVersion() {
    auto b = buf_.data();
    std::string_view in(static_cast<const char*>(b.data()), b.size());
    size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos || eol < 9) return false;
    std::string_view v = in.substr(eol - 9, 9);  // " HTTP/d.d"
    return v.substr(0, 6) == " HTTP/" && v[6] >= '0' && v[6] <= '9' && v[7] == '.' && v[8] >= '0' && v[8] <= '9';
  }

  // A refusal before the request was read whole: counted by reason, answered, and the connection closed.
  void Refuse(int status, const std::string& reason) {
    auto& c = srv_.counters;
    switch (status) {
      case 431: c.r431.fetch_add(1, std::memory_order_relaxed); break;
      case 413: c.r413.fetch_add(1, std::memory_order_relaxed); break;
      case 421: c.r421.fetch_add(1, std::memory_order_relaxed); break;
      case 408: c.r408.fetch_add(1, std::memory_order_relaxed); break;
      default: c.r400.fetch_add(1, std::memory_order_relaxed); break;
    }
    WriteCanned(status, reason, true, 0);
  }

  // A refusal after the header: the connection stays open when no body follows that would have to be skipped.
  bool RefuseAfterHeader(int status, const std::string& reason, const std::string& allow = std::string()) {
    // A malformed request ends the connection; otherwise it stays open when no body follows that would have to be
    // skipped.
    bool close = status == 400 || status == 505 || !parser_->is_done() || !parser_->keep_alive();
    auto& c = srv_.counters;
    if (status == 421) c.r421.fetch_add(1, std::memory_order_relaxed);
    if (status == 413) c.r413.fetch_add(1, std::memory_order_relaxed);
    if (status == 400 || status == 417 || status == 505) c.r400.fetch_add(1, std::memory_order_relaxed);
    Response r = Response::Error(status, reason);
    if (!allow.empty()) r.headers.Add("Allow", allow);
    WriteAnswer(r, req_->method == "HEAD", !close && !srv_.stopping);
    return false;
  }

  // The header is whole: every check a request passes before its body is read and a handler sees it.
  bool CheckHeader() {
    Request& r = *req_;
    const Limits& lim = srv_.opts.limits;
    if (parser_->host_fields() > 1) return RefuseAfterHeader(400, "more than one Host");
    if (r.version == 11 && parser_->host_fields() == 0) return RefuseAfterHeader(400, "Host is required");
    size_t q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (r.path.empty() || r.path.front() != '/') return RefuseAfterHeader(400, "the request target must be a path");
    if (q != std::string::npos && !detail::ParseQuery(std::string_view(r.target).substr(q + 1), &r.query)) {
      return RefuseAfterHeader(400, "bad percent-encoding or a NUL in the query");
    }
    if (lis_.opts.restrict_host) {
      const std::string* host = r.headers.Find("Host");
      if (host == nullptr || !detail::HostAllowed(*host, lis_.opts.allowed_hosts)) {
        return RefuseAfterHeader(421, "this server does not answer for that Host");
      }
    }
    Router::Match m = lis_.router->Resolve(r.method, r.path);
    if (m.status != 0) return RefuseAfterHeader(m.status, m.reason, m.allow);
    if (parser_->has_expect() && r.version == 11 && !detail::EqualsIgnoreCase(parser_->expect(), "100-continue")) {
      return RefuseAfterHeader(417, "only Expect: 100-continue is understood");
    }
    size_t max_body = m.options.max_body_bytes > 0 ? m.options.max_body_bytes : lim.max_body_bytes;
    if (auto len = parser_->content_length(); len && *len > max_body) {
      linger_bytes_ = std::max<size_t>(kLingerBytes, std::min<std::uint64_t>(*len, kLingerRefusedBodyBytes));
      return RefuseAfterHeader(413, "body too large");
    }
    parser_->set_max_body(max_body);
    parser_->eager(true);
    handler_ = m.handler;
    r.params = std::move(m.params);
    if (parser_->has_expect() && r.version == 11 && !parser_->is_done()) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      std::vector<net::const_buffer> b{net::buffer(kContinue)};
      StartWrite(std::move(b), After::kContinue, srv_.opts.limits.write_timeout_ms);
      return false;
    }
    return true;
  }

  void Dispatch() {
    CancelTimer();
    state_ = State::kHandling;
    bool keep_alive_req = parser_->keep_alive();
    parser_.reset();
    Request& r = *req_;
    r.remote_addr = peer_.addr;
    r.remote_port = peer_.port;
    r.loopback = peer_.loopback;
    r.peer = peer_.cred;
    r.tls = lis_.tls;
    r.listener_tag = lis_.opts.tag;
    std::shared_ptr<Request> req = std::move(req_);
    std::shared_ptr<const Router> router = lis_.router;  // keeps the handler alive
    const Handler* handler = handler_;
    auto self = shared_from_this();
    bool queued = srv_.pool.TrySubmit([self, req, router, handler, keep_alive_req] {
      Response res;
      try {
        res = (*handler)(*req);
      } catch (const std::exception& e) {
        self->srv_.opts.log.Error("httpd: a handler for " + req->method + " " + req->path + " threw: " + e.what());
        res = Response::Error(500, "internal error");
      } catch (...) {
        self->srv_.opts.log.Error("httpd: a handler for " + req->method + " " + req->path + " threw");
        res = Response::Error(500, "internal error");
      }
      self->HandlerDone(std::move(res), req, keep_alive_req);
    });
    if (!queued) {
      srv_.counters.r503q.fetch_add(1, std::memory_order_relaxed);
      Response busy = Response::Error(503, "the server is busy; retry later");
      busy.headers.Add("Retry-After", std::to_string(srv_.opts.retry_after_s));
      WriteAnswer(busy, r.method == "HEAD", keep_alive_req && !srv_.stopping);
    }
  }

  // Writes a whole answer (strand). `keep` decides what follows.
  void WriteAnswer(const Response& r, bool head, bool keep) {
    srv_.CountStatus(r.status);
    out_head_ =
        detail::ResponseHead(r, req_ ? req_->version : 11, keep, detail::Framing::kLength, r.body.size(), nullptr);
    std::vector<net::const_buffer> b{net::buffer(out_head_)};
    if (!head && StatusHasBody(r.status) && !r.body.empty()) {
      out_body_ = r.body;
      b.push_back(net::buffer(out_body_));
    }
    StartWrite(std::move(b), keep ? After::kKeepAlive : After::kClose, srv_.opts.limits.write_timeout_ms);
  }

  // The server's own short answer (refusals): no request state needed.
  void WriteCanned(int status, const std::string& reason, bool close, int retry_after_s) {
    srv_.CountStatus(status);
    out_head_ = detail::CannedAnswer(status, reason, close, retry_after_s);
    std::vector<net::const_buffer> b{net::buffer(out_head_)};
    StartWrite(std::move(b), close ? After::kClose : After::kKeepAlive,
               std::min(kRefusalWriteMs, srv_.opts.limits.write_timeout_ms));
  }

 public:
  // Strand: a whole answer made by a worker.
  void WriteMade(std::string head, std::string body, bool keep) {
    if (closed_) return;
    out_head_ = std::move(head);
    out_body_ = std::move(body);
    std::vector<net::const_buffer> b{net::buffer(out_head_)};
    if (!out_body_.empty()) b.push_back(net::buffer(out_body_));
    StartWrite(std::move(b), keep ? After::kKeepAlive : After::kClose, srv_.opts.limits.write_timeout_ms);
  }

  // Strand: send what a streaming producer queued.
  void StreamFlush(const std::shared_ptr<StreamState>& st) {
    std::unique_lock<std::mutex> l(st->mu);
    if (closed_) {
      st->failed = true;
      st->cv.notify_all();
      return;
    }
    stream_ = st;
    if (writing_) return;  // OnWritten comes back here
    if (st->queue.empty()) {
      if (!st->finished) {
        st->scheduled = false;
        return;
      }
      bool aborted = st->aborted, keep = st->keep_alive;
      l.unlock();
      stream_.reset();
      if (aborted) return Close();
      return AfterAnswer(keep);
    }
    inflight_.clear();
    inflight_bytes_ = 0;
    std::vector<net::const_buffer> b;
    while (!st->queue.empty()) {
      inflight_.push_back(std::move(st->queue.front()));
      st->queue.pop_front();
    }
    for (const std::string& s : inflight_) {
      b.push_back(net::buffer(s));
      inflight_bytes_ += s.size();
    }
    l.unlock();
    StartWrite(std::move(b), After::kStreamPiece, srv_.opts.limits.write_timeout_ms);
  }

 private:
  void StartWrite(std::vector<net::const_buffer> b, After after, int64_t timeout_ms) {
    if (closed_) return;
    if (after != After::kContinue) state_ = State::kWriting;
    after_ = after;
    writing_ = true;
    ArmTimer(timeout_ms, TimerKind::kWrite);
    auto h = [self = shared_from_this()](const error_code& ec, size_t) { self->OnWritten(ec); };
    if (ssl_) {
      // Small pieces (a status line and headers, a short body) go out as one TLS record and one send().
      size_t total = 0;
      for (const auto& x : b) total += x.size();
      if (b.size() > 1 && total <= 16384) {
        tls_joined_.clear();
        for (const auto& x : b) tls_joined_.append(static_cast<const char*>(x.data()), x.size());
        b.assign(1, net::buffer(tls_joined_));
      }
      tls_out_ = std::move(b);
      tls_out_at_ = 0;
      return TlsWrite();
    }
    net::async_write(sock_, b, std::move(h));
  }

  void OnWritten(const error_code& ec) {
    writing_ = false;
    if (closed_) return;
    CancelTimer();
    if (ec) return Close();
    switch (after_) {
      case After::kContinue:
        ArmTimer(std::max<int64_t>(1, request_deadline_ - NowMs()), TimerKind::kRequest);
        return Parse();
      case After::kStreamPiece: {
        std::shared_ptr<StreamState> st = stream_;
        inflight_.clear();
        {
          std::lock_guard<std::mutex> l(st->mu);
          st->queued -= inflight_bytes_;
          st->cv.notify_all();
        }
        return StreamFlush(st);
      }
      case After::kKeepAlive: return AfterAnswer(true);
      case After::kClose: return AfterAnswer(false);
    }
  }

  void AfterAnswer(bool keep) {
    out_head_.clear();
    out_body_.clear();
    out_body_.shrink_to_fit();
    if (keep && !srv_.stopping) return WaitRequest();
    GracefulClose();
  }

  // After a final answer: close our side, drain what the client still sends for a moment (so that the answer is not
  // lost to a reset), then close.
  void GracefulClose() {
    state_ = State::kClosing;
    req_.reset();
    parser_.reset();
    ArmTimer(kLingerMs, TimerKind::kLinger);
    if (ssl_ && !tls_broken_) {
      // close_notify, sent once; the peer's is not waited for (the drain below reads whatever comes).
      ERR_clear_error();
      SSL_shutdown(ssl_);
      ERR_clear_error();
    }
    Drain();
  }

  void Drain() {
    error_code ignored;
    sock_.shutdown(net::socket_base::shutdown_send, ignored);
    buf_.consume(buf_.size());
    if (drained_ >= linger_bytes_) return Close();
    auto mb = buf_.prepare(std::min<size_t>(kReadChunk, buf_.max_size()));
    sock_.async_read_some(mb, [self = shared_from_this()](const error_code& ec, size_t n) {
      if (self->closed_) return;
      self->drained_ += n;
      if (ec) return self->Close();
      self->Drain();
    });
  }

  void ArmTimer(int64_t ms, TimerKind kind) {
    timer_kind_ = kind;
    uint64_t gen = ++timer_gen_;
    timer_.expires_after(std::chrono::milliseconds(std::max<int64_t>(ms, 1)));
    timer_.async_wait([self = shared_from_this(), gen](const error_code& ec) {
      if (ec || gen != self->timer_gen_ || self->closed_) return;
      self->OnTimer();
    });
  }

  void CancelTimer() {
    ++timer_gen_;
    timer_.cancel();
  }

  void OnTimer() {
    switch (timer_kind_) {
      case TimerKind::kHandshake: srv_.counters.tls_failures.fetch_add(1, std::memory_order_relaxed); return Close();
      case TimerKind::kIdle: srv_.counters.idle_timeouts.fetch_add(1, std::memory_order_relaxed); return Close();
      case TimerKind::kRequest: {
        // Stop the pending read; OnRead answers 408.
        timed_out_ = true;
        error_code ignored;
        sock_.cancel(ignored);
        return;
      }
      case TimerKind::kWrite:
      case TimerKind::kLinger: return Close();
    }
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    state_ = State::kClosed;
    reclaimable_ = false;
    CancelTimer();
    error_code ignored;
    sock_.close(ignored);
    if (stream_) {
      std::lock_guard<std::mutex> l(stream_->mu);
      stream_->failed = true;
      stream_->cv.notify_all();
    }
    Unregister();
  }

  ServerCore& srv_;
  Listener& lis_;
  Executor ex_;
  Socket sock_;
  TlsContext tls_ctx_;  // until the SSL object is made
  SSL* ssl_ = nullptr;
  bool tls_broken_ = false;
  int nested_ = 0;  // completions running directly on this stack (Complete)
  std::vector<net::const_buffer> tls_out_;
  size_t tls_out_at_ = 0;
  std::string tls_joined_;  // tls_out_'s pieces copied together
  net::steady_timer timer_;
  boost::beast::flat_buffer buf_;
  PeerInfo peer_;
  bool refuse_;
  int refuse_status_;

  State state_ = State::kWaiting;
  std::atomic<bool> reclaimable_{false};
  std::atomic<int64_t> idle_since_{0};
  bool registered_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool timed_out_ = false;
  bool header_checked_ = false;
  int64_t request_deadline_ = 0;
  size_t drained_ = 0;
  size_t linger_bytes_ = kLingerBytes;  // how much unread input GracefulClose drains at most
  TimerKind timer_kind_ = TimerKind::kIdle;
  uint64_t timer_gen_ = 0;
  After after_ = After::kKeepAlive;

  std::shared_ptr<Request> req_;
  std::optional<RequestParser> parser_;
  const Handler* handler_ = nullptr;
  std::string out_head_, out_body_;
  std::shared_ptr<StreamState> stream_;
  std::vector<std::string> inflight_;
  size_t inflight_bytes_ = 0;
};

namespace {

// The BodyWriter a streaming producer gets (worker thread).
class StreamWriter final : public BodyWriter {
 public:
  StreamWriter(std::shared_ptr<Connection> conn, std::shared_ptr<StreamState> st)
      : conn_(std::move(conn)), st_(std::move(st)) {}

  bool Write(std::string_view data) override {
    std::string piece;
    if (!data.empty()) {
      if (st_->chunked) {
        char size[24];
        std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        piece.reserve(data.size() + 24);
        piece += size;
        piece += data;
        piece += "\r\n";
      } else {
        piece.assign(data);
      }
    }
    std::unique_lock<std::mutex> l(st_->mu);
    st_->cv.wait(l, [this] { return st_->failed || st_->queued <= kStreamHighWater; });
    if (st_->failed || st_->finished) return false;
    if (piece.empty()) return true;
    st_->queued += piece.size();
    st_->queue.push_back(std::move(piece));
    Schedule();
    return true;
  }

  void Abort() override {
    std::lock_guard<std::mutex> l(st_->mu);
    if (st_->failed || st_->finished) return;
    st_->finished = true;
    st_->aborted = true;
    Schedule();
  }

  void Finish() {
    std::lock_guard<std::mutex> l(st_->mu);
    if (st_->failed || st_->finished) return;
    if (st_->chunked) {
      st_->queue.emplace_back("0\r\n\r\n");
      st_->queued += 5;
    }
    st_->finished = true;
    Schedule();
  }

 private:
  void Schedule() {  // with st_->mu held
    if (st_->scheduled) return;
    st_->scheduled = true;
    conn_->PostFlush(st_);
  }

  std::shared_ptr<Connection> conn_;
  std::shared_ptr<StreamState> st_;
};

}  // namespace

void Connection::HandlerDone(Response res, const std::shared_ptr<Request>& req, bool keep_alive_req) {
  if (res.status < 200 || res.status > 999) {
    srv_.opts.log.Error("httpd: a handler for " + req->method + " " + req->path + " answered with status " +
                        std::to_string(res.status));
    res = Response::Error(500, "internal error");
  }
  bool head = req->method == "HEAD";
  const std::string* conn_field = res.headers.Find("Connection");
  bool keep =
      keep_alive_req && !res.close && !(conn_field && detail::EqualsIgnoreCase(*conn_field, "close")) && !srv_.stopping;
  bool chunked = req->version == 11;
  bool stream = res.stream && !head && StatusHasBody(res.status);
  int dropped = 0;
  srv_.CountStatus(res.status);
  if (!stream) {
    detail::Framing f =
        !res.stream ? detail::Framing::kLength : (chunked ? detail::Framing::kChunked : detail::Framing::kUntilClose);
    if (f == detail::Framing::kUntilClose) keep = false;
    std::string h = detail::ResponseHead(res, req->version, keep, f, res.body.size(), &dropped);
    std::string body = head || !StatusHasBody(res.status) || res.stream ? std::string() : std::move(res.body);
    if (dropped > 0) srv_.opts.log.Warn("httpd: dropped response header fields with a bad name or value");
    net::post(ex_, [self = shared_from_this(), h = std::move(h), body = std::move(body), keep]() mutable {
      self->WriteMade(std::move(h), std::move(body), keep);
    });
    return;
  }
  auto st = std::make_shared<StreamState>();
  st->chunked = chunked;
  st->keep_alive = keep && chunked;
  std::string h = detail::ResponseHead(res, req->version, st->keep_alive,
                                       chunked ? detail::Framing::kChunked : detail::Framing::kUntilClose, 0, &dropped);
  if (dropped > 0) srv_.opts.log.Warn("httpd: dropped response header fields with a bad name or value");
  StreamWriter w(shared_from_this(), st);
  {
    std::lock_guard<std::mutex> l(st->mu);
    st->queued = h.size();
    st->queue.push_back(std::move(h));
    st->scheduled = true;
  }
  PostFlush(st);
  try {
    res.stream(w);
  } catch (const std::exception& e) {
    srv_.opts.log.Error("httpd: a streaming answer to " + req->method + " " + req->path + " threw: " + e.what());
    w.Abort();
  } catch (...) {
    srv_.opts.log.Error("httpd: a streaming answer to " + req->method + " " + req->path + " threw");
    w.Abort();
  }
  w.Finish();
}

// ---- Server::Impl -----------------------------------------------------------------------------------------------

void ServerCore::Accept(Listener* l) {
  l->acceptor->async_accept(Executor(net::make_strand(*ioc)),
                            [this, l](const error_code& ec, Socket sock) { OnAccept(l, ec, std::move(sock)); });
}

void ServerCore::OnAccept(Listener* l, const error_code& ec, Socket sock) {
  if (stopping || !l->acceptor->is_open()) return;
  if (ec) {
    if (ec == net::error::operation_aborted) return;
    counters.accept_errors.fetch_add(1, std::memory_order_relaxed);
    int64_t now = NowMs();
    int64_t last = last_accept_error_log_ms.load();
    if (now - last > 10000 && last_accept_error_log_ms.compare_exchange_strong(last, now)) {
      opts.log.Error("httpd: accept failed: " + ec.message() + " (retrying; raise the file descriptor limit?)");
    }
    // Out of descriptors: the listening socket stays readable, so wait instead of spinning.
    l->retry->expires_after(std::chrono::milliseconds(50));
    l->retry->async_wait([this, l](const error_code& e) {
      if (!e && !stopping) Accept(l);
    });
    return;
  }
  counters.accepted.fetch_add(1, std::memory_order_relaxed);
  int fd = sock.native_handle();
  PeerInfo peer = DescribePeer(fd);
  if (l->opts.unix_path.empty()) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  const Limits& lim = opts.limits;
  bool over_source = false;
  if (lim.max_connections_per_source > 0 && !peer.source.empty()) {
    std::lock_guard<std::mutex> g(conns_mu);
    auto it = per_source.find(peer.source);
    over_source = it != per_source.end() && it->second >= lim.max_connections_per_source;
  }
  int64_t now_open = open.load();
  bool over_cap = now_open >= static_cast<int64_t>(lim.max_connections);
  TlsContext ctx;
  if (l->tls) {
    std::lock_guard<std::mutex> g(tls_mu);
    ctx = l->tls_ctx;
  }
  if (over_source || over_cap) {
    (over_cap ? counters.refused : counters.refused_per_source).fetch_add(1, std::memory_order_relaxed);
    if (refusing.load() >= kMaxRefusing) {
      error_code ignored;
      sock.close(ignored);
    } else {
      auto c = std::make_shared<Connection>(this, l, std::move(sock), std::move(peer), std::move(ctx), true, 503);
      Register(c, true, std::string());
      c->Start();
    }
  } else {
    int64_t floor = static_cast<int64_t>(
        lim.max_connections > lim.reserved_connections ? lim.max_connections - lim.reserved_connections : 0);
    if (now_open + 1 > floor) Reclaim(now_open + 1 - floor);
    std::string source = peer.source;
    auto c = std::make_shared<Connection>(this, l, std::move(sock), std::move(peer), std::move(ctx), false, 0);
    Register(c, false, source);
    c->Start();
  }
  Accept(l);
}

void ServerCore::Register(const std::shared_ptr<Connection>& c, bool is_refusing, const std::string& source) {
  std::lock_guard<std::mutex> g(conns_mu);
  conns.emplace(c.get(), c);
  if (!source.empty()) ++per_source[source];
  (is_refusing ? refusing : open).fetch_add(1);
  c->MarkRegistered();
}

void ServerCore::Unregister(Connection* c, bool is_refusing, const std::string& source) {
  std::lock_guard<std::mutex> g(conns_mu);
  conns.erase(c);
  if (!source.empty()) {
    auto it = per_source.find(source);
    if (it != per_source.end() && --it->second == 0) per_source.erase(it);
  }
  (is_refusing ? refusing : open).fetch_sub(1);
  closed_since_trim.fetch_add(1, std::memory_order_relaxed);
  conns_cv.notify_all();
}

std::vector<std::shared_ptr<Connection>> ServerCore::Snapshot() {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard<std::mutex> g(conns_mu);
  out.reserve(conns.size());
  for (auto& kv : conns) {
    if (auto c = kv.second.lock()) out.push_back(std::move(c));
  }
  return out;
}

// Closes the connections idle longest (at least `want`, at most a batch of them) to keep the reserve free.
void ServerCore::Reclaim(int64_t want) {
  if (reclaim_pending.load() > 0) return;  // the last batch is still being closed
  std::vector<std::pair<int64_t, std::shared_ptr<Connection>>> idle;
  {
    std::lock_guard<std::mutex> g(conns_mu);
    for (auto& kv : conns) {
      auto c = kv.second.lock();
      if (c && !c->refusing() && c->reclaimable()) idle.emplace_back(c->idle_since(), std::move(c));
    }
  }
  if (idle.empty()) return;
  // A batch (an eighth of the reserve, at most 16) so that a flood of new connections does not scan every time.
  int64_t batch = std::min<int64_t>(16, static_cast<int64_t>(opts.limits.reserved_connections / 8));
  size_t n = std::min(idle.size(), static_cast<size_t>(std::max<int64_t>(want, batch)));
  std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(n), idle.end(),
                    [](const auto& a, const auto& b) { return a.first < b.first; });
  reclaim_pending.fetch_add(static_cast<int64_t>(n));
  for (size_t i = 0; i < n; ++i) idle[i].second->PostReclaim();
}

// After a burst of connections closed, give the freed heap back to the system (glibc keeps it otherwise): once at
// least kTrimAfterClosed connections closed since the last trim and a tick went by without more closing (the burst is
// over, so the trim is not repeated while an attack goes on).
void ServerCore::Housekeeping() {
  housekeeping->expires_after(std::chrono::milliseconds(kTrimEveryMs));
  housekeeping->async_wait([this](const error_code& ec) {
    if (ec || stopping) return;
    int64_t closed = closed_since_trim.load(std::memory_order_relaxed);
    if (closed >= kTrimAfterClosed && closed == closed_at_last_tick) {
      closed_since_trim.fetch_sub(closed, std::memory_order_relaxed);
      closed = 0;
      malloc_trim(0);
    }
    closed_at_last_tick = closed;
    Housekeeping();
  });
}

void ServerCore::ShutdownThreads() {
  work.reset();
  if (ioc) ioc->stop();
  for (auto& t : io_threads) t.join();
  io_threads.clear();
  for (auto& l : listeners) {
    l->acceptor.reset();
    l->retry.reset();
    if (l->unix_created) {
      unlink(l->opts.unix_path.c_str());
      l->unix_created = false;
    }
  }
  housekeeping.reset();
  ioc.reset();  // destroys what is still queued (and the connections it holds)
}

// ---- Server -----------------------------------------------------------------------------------------------------

class Server::Impl : public ServerCore {
 public:
  using ServerCore::ServerCore;
};

namespace {

base::Status BindListener(net::io_context& ioc, Listener& l) {
  error_code ec;
  const ListenerOptions& o = l.opts;
  l.acceptor = std::make_unique<Acceptor>(Executor(net::make_strand(ioc)));
  l.retry = std::make_unique<net::steady_timer>(l.acceptor->get_executor());
  if (!o.unix_path.empty()) {
    if (l.tls) return base::Status::InvalidArgument("TLS on a Unix socket is not supported (" + o.unix_path + ")");
    if (o.unix_path.size() >= sizeof(sockaddr_un::sun_path)) {
      return base::Status::InvalidArgument("the Unix socket path is too long: " + o.unix_path);
    }
    struct stat st;
    if (lstat(o.unix_path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return base::Status::InvalidArgument(o.unix_path + " exists and is not a socket; refusing to replace it");
      }
      unlink(o.unix_path.c_str());  // a socket left by an earlier run
    }
    net::generic::stream_protocol::endpoint ep{net::local::stream_protocol::endpoint(o.unix_path)};
    l.acceptor->open(ep.protocol(), ec);
    if (!ec) l.acceptor->bind(ep, ec);
    if (ec) return base::Status::Network("cannot listen on the Unix socket " + o.unix_path + ": " + ec.message());
    l.unix_created = true;
    // The mode is set before listen(): no client can connect while the socket still has the umask's mode.
    if (chmod(o.unix_path.c_str(), o.unix_mode) != 0) {
      return base::Status::Network("cannot set the mode of " + o.unix_path + ": " + std::strerror(errno));
    }
  } else {
    std::string host = o.host == "localhost" ? "127.0.0.1" : (o.host.empty() ? "::" : o.host);
    net::ip::address addr = net::ip::make_address(host, ec);
    if (ec) return base::Status::InvalidArgument("listen host must be an IP address or localhost: " + o.host);
    if (o.port < 0 || o.port > 65535) return base::Status::InvalidArgument("bad port " + std::to_string(o.port));
    net::generic::stream_protocol::endpoint ep{net::ip::tcp::endpoint(addr, static_cast<uint16_t>(o.port))};
    l.acceptor->open(ep.protocol(), ec);
    if (!ec) l.acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) l.acceptor->bind(ep, ec);
    if (ec) {
      return base::Status::Network("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + ec.message());
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(l.acceptor->native_handle(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      l.port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
  }
  l.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return base::Status::Network("cannot listen: " + ec.message());
  return base::Status::Ok();
}

}  // namespace

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() { Stop(0); }

Router& Server::router() { return *impl_->default_router; }

size_t Server::AddListener(ListenerOptions options) {
  auto l = std::make_unique<Listener>();
  l->opts = std::move(options);
  impl_->listeners.push_back(std::move(l));
  return impl_->listeners.size() - 1;
}

base::Status Server::Start() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> g(s.run_mu);
  if (s.started) return base::Status::FailedPrecondition("a server is started once");
  s.started = true;
  const ServerOptions& o = s.opts;
  if (o.io_threads < 1 || o.io_threads > 64) return base::Status::InvalidArgument("io_threads must be 1..64");
  if (o.worker_threads < 1) return base::Status::InvalidArgument("worker_threads must be at least 1");
  if (o.limits.max_header_bytes < 256) return base::Status::InvalidArgument("max_header_bytes must be at least 256");
  if (o.limits.max_connections < 1) return base::Status::InvalidArgument("max_connections must be at least 1");
  if (s.listeners.empty()) return base::Status::InvalidArgument("no listener");
  s.ioc = std::make_unique<net::io_context>(o.io_threads);
  base::Status st;
  for (auto& lp : s.listeners) {
    Listener& l = *lp;
    l.router = l.opts.router ? l.opts.router : std::shared_ptr<const Router>(s.default_router);
    if (!l.router->status().ok()) {
      st = l.router->status();
      break;
    }
    l.tls = !l.opts.tls_cert_file.empty() || !l.opts.tls_key_file.empty();
    if (l.tls) {
      if (l.opts.tls_cert_file.empty() || l.opts.tls_key_file.empty()) {
        st = base::Status::InvalidArgument("TLS needs both a certificate and a key file");
        break;
      }
      auto ctx = MakeTlsContext(l.opts.tls_cert_file, l.opts.tls_key_file);
      if (!ctx.ok()) {
        st = ctx.status();
        break;
      }
      l.tls_ctx = *ctx;
    }
    st = BindListener(*s.ioc, l);
    if (!st.ok()) break;
  }
  if (!st.ok()) {
    s.ShutdownThreads();
    return st;
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < o.limits.max_connections + 64) {
    o.log.Warn("httpd: the file descriptor limit (" + std::to_string(rl.rlim_cur) +
               ") is below max_connections; accept will fail before the cap is reached");
  }
  s.stopping = false;
  s.pool.Start(o.worker_threads, o.max_queued_requests);
  s.work = std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(s.ioc->get_executor());
  for (auto& l : s.listeners) s.Accept(l.get());
  s.housekeeping = std::make_unique<net::steady_timer>(*s.ioc);
  s.Housekeeping();
  for (int i = 0; i < o.io_threads; ++i) s.io_threads.emplace_back([&s] { s.ioc->run(); });
  s.running = true;
  return base::Status::Ok();
}

int Server::port(size_t index) const {
  if (index >= impl_->listeners.size()) return 0;
  return impl_->listeners[index]->port;
}

void Server::Stop(int64_t timeout_ms) {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> g(s.run_mu);
  if (!s.running) return;
  s.stopping = true;
  // Stop accepting.
  for (auto& lp : s.listeners) {
    Listener* l = lp.get();
    net::post(l->acceptor->get_executor(), [l] {
      error_code ignored;
      l->acceptor->close(ignored);
      l->retry->cancel();
    });
  }
  // Idle connections go now; the others after their answer, until the timeout.
  for (auto& c : s.Snapshot()) c->PostStop();
  {
    std::unique_lock<std::mutex> l(s.conns_mu);
    s.conns_cv.wait_for(l, std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0)),
                        [&s] { return s.conns.empty(); });
  }
  for (auto& c : s.Snapshot()) c->PostClose();
  // Handlers still running finish; their answers find their connections closed.
  s.pool.StopAndJoin();
  {
    std::unique_lock<std::mutex> l(s.conns_mu);
    s.conns_cv.wait_for(l, std::chrono::seconds(5), [&s] { return s.conns.empty(); });
  }
  s.ShutdownThreads();
  s.running = false;
}

base::Status Server::ReloadTls() {
  Impl& s = *impl_;
  std::vector<std::pair<Listener*, TlsContext>> fresh;
  for (auto& l : s.listeners) {
    if (!l->tls) continue;
    auto ctx = MakeTlsContext(l->opts.tls_cert_file, l->opts.tls_key_file);
    if (!ctx.ok()) return ctx.status();
    fresh.emplace_back(l.get(), *ctx);
  }
  std::lock_guard<std::mutex> g(s.tls_mu);
  for (auto& f : fresh) f.first->tls_ctx = std::move(f.second);
  return base::Status::Ok();
}

Stats Server::stats() const {
  const Impl& s = *impl_;
  const auto& c = s.counters;
  auto r = [](const std::atomic<int64_t>& a) { return a.load(std::memory_order_relaxed); };
  Stats out;
  out.connections_open = r(s.open);
  out.connections_accepted = r(c.accepted);
  out.connections_refused = r(c.refused);
  out.connections_refused_per_source = r(c.refused_per_source);
  out.connections_reclaimed = r(c.reclaimed);
  out.accept_errors = r(c.accept_errors);
  out.tls_handshake_failures = r(c.tls_failures);
  out.idle_timeouts = r(c.idle_timeouts);
  for (int i = 0; i < 5; ++i) out.requests_by_class[i] = r(c.by_class[i]);
  out.refused_header_too_large = r(c.r431);
  out.refused_timeout = r(c.r408);
  out.refused_body_too_large = r(c.r413);
  out.refused_misdirected = r(c.r421);
  out.refused_bad_request = r(c.r400);
  out.refused_queue_full = r(c.r503q);
  out.queued_requests = s.pool.queued();
  return out;
}

}  // namespace ferry::httpd
