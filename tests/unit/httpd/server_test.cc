// ferry_httpd over real sockets: every request is written as exact bytes by a raw client on loopback (or a Unix
// socket), and the answers are read back as the client sees them.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "lib/httpd/httpd.h"
#include "tests/unit/httpd/test_util.h"

namespace ferry::httpd {
namespace {

using testing::Conn;
using testing::RawResponse;
using testing::TempDir;
using testing::WaitUntil;

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + extra + "\r\n";
}

std::string Post(const std::string& path, const std::string& body, const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         extra + "\r\n" + body;
}

std::string Pattern(size_t n) {
  std::string s(n, 'a');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

class ServerTest : public ::testing::Test {
 protected:
  static ServerOptions Defaults() {
    ServerOptions o;
    o.worker_threads = 4;
    return o;
  }

  void AddRoutes(Router& r) {
    r.Get("/hello", [](Request&) { return Response::Text(200, "hello"); });
    r.Post("/echo", [this](Request& req) {
      ++echo_calls_;
      Response res = Response::Text(200, req.body, "application/octet-stream");
      res.headers.Add("X-Seen-Test", req.headers.Get("x-ferry-test", "-"));
      res.headers.Add("X-Seen-Count", std::to_string(req.headers.Count("X-FERRY-TEST")));
      return res;
    });
    RouteOptions small;
    small.max_body_bytes = 10;
    r.Post(
        "/small",
        [this](Request& req) {
          ++echo_calls_;
          return Response::Text(200, "got " + std::to_string(req.body.size()));
        },
        small);
    r.Get("/info", [](Request& req) {
      std::string s = "addr=" + req.remote_addr + ";loopback=" + (req.loopback ? "1" : "0") +
                      ";tls=" + (req.tls ? "1" : "0") + ";tag=" + req.listener_tag +
                      ";version=" + std::to_string(req.version) + ";method=" + req.method;
      if (req.peer) {
        s += ";uid=" + std::to_string(req.peer->uid) + ";gid=" + std::to_string(req.peer->gid) +
             ";pid=" + std::to_string(req.peer->pid);
      }
      if (req.remote_port > 0) s += ";port=set";
      return Response::Text(200, s);
    });
    r.Get("/v1/subjects/{id}/export", [](Request& req) {
      std::string s = "id=" + req.Param("id") + ";project=" + req.Query("project").value_or("-") +
                      ";flag=" + req.Query("flag").value_or("-") + ";x=" + req.Query("x").value_or("-") +
                      ";path=" + req.path;
      return Response::Text(200, s);
    });
    r.Get("/block", [this](Request&) {
      ++blocked_;
      std::unique_lock<std::mutex> l(gate_mu_);
      gate_cv_.wait_for(l, std::chrono::seconds(20), [this] { return gate_open_; });
      return Response::Text(200, "released");
    });
    r.Get("/stream", [this](Request& req) {
      size_t size = std::stoul(req.Query("size").value_or("100000"));
      size_t piece = std::stoul(req.Query("piece").value_or("1000"));
      Response res;
      res.headers.Add("Content-Type", "text/plain");
      res.stream = [this, size, piece](BodyWriter& w) {
        ++stream_runs_;
        std::string all = Pattern(size);
        for (size_t off = 0; off < size; off += piece) {
          if (!w.Write(std::string_view(all).substr(off, piece))) return;
        }
      };
      return res;
    });
    r.Get("/abort", [](Request&) {
      Response res;
      res.stream = [](BodyWriter& w) {
        w.Write("partial");
        w.Abort();
        EXPECT_FALSE(w.Write("more"));
      };
      return res;
    });
    r.Get("/forever", [this](Request&) {
      Response res;
      res.stream = [this](BodyWriter& w) {
        std::string piece(64 * 1024, 'x');
        while (w.Write(piece)) {
        }
        stream_stopped_ = true;
      };
      return res;
    });
    r.Get("/throw", [](Request&) -> Response { throw std::runtime_error("boom"); });
    r.Get("/bad-header", [](Request&) {
      Response res = Response::Text(200, "ok");
      res.headers.Add("X-Bad", "a\r\nInjected: 1");
      res.headers.Add("X-Good", "yes");
      return res;
    });
    r.Get("/close", [](Request&) {
      Response res = Response::Text(200, "bye");
      res.close = true;
      return res;
    });
    r.Get("/no-content", [](Request&) {
      Response res;
      res.status = 204;
      return res;
    });
  }

  void Start(ServerOptions o = Defaults(), std::vector<ListenerOptions> ls = {ListenerOptions::Tcp("127.0.0.1", 0)}) {
    o.log = base::Logger([this](base::LogLevel, const std::string& m) {
      std::lock_guard<std::mutex> l(log_mu_);
      log_ += m + "\n";
    });
    server_ = std::make_unique<Server>(o);
    AddRoutes(server_->router());
    for (auto& l : ls) server_->AddListener(std::move(l));
    base::Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  int port(size_t i = 0) { return server_->port(i); }

  std::unique_ptr<Conn> Connect(size_t listener = 0) {
    auto c = Conn::Tcp(port(listener));
    EXPECT_NE(c, nullptr);
    return c;
  }

  // Sends `request` on a fresh connection; the answer, and whether the server then closed the connection.
  std::optional<RawResponse> Exchange(const std::string& request, bool* closed = nullptr) {
    auto c = Connect();
    if (!c || !c->Send(request)) return std::nullopt;
    auto r = c->Read(request.rfind("HEAD ", 0) == 0);
    if (closed) *closed = r && c->WaitClosed();
    return r;
  }

  void OpenGate() {
    std::lock_guard<std::mutex> l(gate_mu_);
    gate_open_ = true;
    gate_cv_.notify_all();
  }

  void TearDown() override {
    OpenGate();
    if (server_) server_->Stop(1000);
  }

  std::string log() {
    std::lock_guard<std::mutex> l(log_mu_);
    return log_;
  }

  std::unique_ptr<Server> server_;
  std::atomic<int> echo_calls_{0};
  std::atomic<int> blocked_{0};
  std::atomic<int> stream_runs_{0};
  std::atomic<bool> stream_stopped_{false};
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool gate_open_ = false;
  std::mutex log_mu_;
  std::string log_;
};

// ---- basics -----------------------------------------------------------------------------------------------------

TEST_F(ServerTest, AnswersAndKeepsHttp11ConnectionsOpen) {
  Start();
  ASSERT_GT(port(), 0);
  auto c = Connect();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c->Send(Get("/hello")));
    auto r = c->Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello");
    EXPECT_EQ(r->Header("Content-Length"), "5");
    EXPECT_FALSE(r->HasHeader("Connection"));
  }
  ASSERT_TRUE(c->Send(Get("/info")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("addr=127.0.0.1;loopback=1;tls=0;tag=;version=11;method=GET"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("port=set"), std::string::npos);
  EXPECT_EQ(server_->stats().requests_by_class[1], 4);
  EXPECT_EQ(server_->stats().connections_accepted, 1);
}

TEST_F(ServerTest, Http10ClosesUnlessAskedToKeepAlive) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send("GET /hello HTTP/1.0\r\n\r\n"));  // no Host needed in 1.0
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(c->WaitClosed());

  c = Connect();
  ASSERT_TRUE(c->Send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("Connection"), "keep-alive");
  ASSERT_TRUE(c->Send("GET /info HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("version=10"), std::string::npos);
}

TEST_F(ServerTest, Http11ConnectionCloseAndHandlerClose) {
  Start();
  bool closed = false;
  auto r = Exchange(Get("/hello", "Connection: close\r\n"), &closed);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(closed);
  r = Exchange(Get("/close"), &closed);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "bye");
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(closed);
}

TEST_F(ServerTest, HeadIsAnsweredWithoutABody) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send("HEAD /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  auto r = c->Read(/*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("Content-Length"), "5");
  // Had a body been sent, it would now be read as the next answer's status line.
  ASSERT_TRUE(c->Send(Get("/info", "")));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c->pending(), "");
  // HEAD on a streaming route: headers only, the producer does not run.
  ASSERT_TRUE(c->Send("HEAD /stream HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  r = c->Read(true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(stream_runs_.load(), 0);
  ASSERT_TRUE(c->Send(Get("/hello")));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello");
}

TEST_F(ServerTest, NoContentHasNoBodyOrLength) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(Get("/no-content")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_FALSE(r->HasHeader("Content-Length"));
  ASSERT_TRUE(c->Send(Get("/hello")));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello");
}

TEST_F(ServerTest, PathParamsAndQueryAreDecoded) {
  Start();
  auto r = Exchange(Get("/v1/subjects/a%2Fb%20c/export?project=p%20x&flag&x=1+2"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "id=a/b c;project=p x;flag=;x=1 2;path=/v1/subjects/a%2Fb%20c/export");
}

TEST_F(ServerTest, EncodedNulAndBadEscapesAre400) {
  Start();
  for (const char* target : {"/v1/subjects/carol%00x/export", "/v1/subjects/a%zz/export",
                             "/v1/subjects/a/export?project=%00", "/v1/subjects/a/export?project=%4"}) {
    auto r = Exchange(Get(target));
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 400) << target;
    EXPECT_NE(r->body.find("\"code\""), std::string::npos) << r->body;  // the shared error body
  }
}

TEST_F(ServerTest, NotFoundAndMethodNotAllowed) {
  Start();
  auto r = Exchange(Get("/nope"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = Exchange("DELETE /hello HTTP/1.1\r\nHost: localhost\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("Allow"), "GET, HEAD");
  // The connection stays usable after a refusal that left no body unread.
  auto c = Connect();
  ASSERT_TRUE(c->Send(Get("/nope")));
  ASSERT_TRUE(c->Read());
  ASSERT_TRUE(c->Send(Get("/hello")));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, HeaderNamesAreCaseInsensitive) {
  Start();
  auto r = Exchange(Post("/echo", "body", "X-FERRY-TEST: one\r\nx-ferry-test: two\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("X-Seen-Test"), "one");
  EXPECT_EQ(r->Header("X-Seen-Count"), "2");
  EXPECT_EQ(r->body, "body");
}

TEST_F(ServerTest, ChunkedAndEmptyBodies) {
  Start();
  auto r = Exchange(
      "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello world");
  r = Exchange("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "");
  r = Exchange("POST /echo HTTP/1.1\r\nHost: localhost\r\n\r\n");  // no length: no body
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(Get("/hello") + Post("/echo", "second") + Get("/v1/subjects/third/export")));
  auto a = c->Read();
  auto b = c->Read();
  auto d = c->Read();
  ASSERT_TRUE(a && b && d);
  EXPECT_EQ(a->body, "hello");
  EXPECT_EQ(b->body, "second");
  EXPECT_EQ(d->body.rfind("id=third;", 0), 0u);
}

TEST_F(ServerTest, HandlerErrorsBecome500AndBadHeaderFieldsAreDropped) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(Get("/throw")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(log().find("boom"), std::string::npos);
  ASSERT_TRUE(c->Send(Get("/bad-header")));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("X-Good"), "yes");
  EXPECT_FALSE(r->HasHeader("X-Bad"));
  EXPECT_FALSE(r->HasHeader("Injected"));
  EXPECT_EQ(r->body, "ok");
}

// ---- limits -----------------------------------------------------------------------------------------------------

TEST_F(ServerTest, OversizedHeaderIs431AndClosed) {
  Start();
  bool closed = false;
  auto r = Exchange(Get("/hello", "X-Big: " + std::string(70 * 1024, 'a') + "\r\n"), &closed);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(closed);
  // A large header under the limit passes.
  r = Exchange(Get("/hello", "X-Big: " + std::string(60 * 1024, 'a') + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // A header line that never ends: 431 once the limit is reached, without waiting for the rest.
  auto c = Connect();
  ASSERT_TRUE(c->Send("GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Endless: " + std::string(80 * 1024, 'b')));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(server_->stats().refused_header_too_large, 2);
}

TEST_F(ServerTest, TooManyHeaderFieldsIs431) {
  Start();
  std::string fields;
  for (int i = 0; i < 99; ++i) fields += "X-F" + std::to_string(i) + ": v\r\n";
  auto r = Exchange(Get("/hello", fields));  // 99 + Host = 100: allowed
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  bool closed = false;
  r = Exchange(Get("/hello", fields + "X-One-Too-Many: v\r\n"), &closed);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(closed);
}

TEST_F(ServerTest, SmallerLimitsFromOptions) {
  ServerOptions o = Defaults();
  o.limits.max_header_bytes = 1024;
  o.limits.max_header_count = 5;
  o.limits.max_body_bytes = 100;
  Start(o);
  auto r = Exchange(Get("/hello", "X-A: " + std::string(1100, 'a') + "\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  r = Exchange(Get("/hello", "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  r = Exchange(Post("/echo", std::string(101, 'x')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  r = Exchange(Post("/echo", std::string(100, 'x')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, BodyOverTheRouteLimitIs413BeforeTheHandler) {
  Start();
  bool closed = false;
  auto r = Exchange(Post("/small", std::string(11, 'x')), &closed);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(closed);
  r = Exchange(Post("/small", std::string(10, 'x')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "got 10");
  // Known from Content-Length: answered before the body is sent.
  auto c = Connect();
  ASSERT_TRUE(c->Send("POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c->WaitClosed());
  // A chunked body is counted as it arrives.
  r = Exchange(
      "POST /small HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n",
      &closed);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(closed);
  // A Content-Length that fits 64 bits but not the limit: 413 too.
  r = Exchange("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 18446744073709551615\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(echo_calls_.load(), 1);
  EXPECT_EQ(server_->stats().refused_body_too_large, 4);
}

// Writes `prefix`, then one byte every `every_ms` while watching for an answer. The answer (nullopt if none came
// within `max_bytes` bytes).
std::optional<RawResponse> Trickle(Conn& c, const std::string& prefix, int every_ms, int max_bytes) {
  if (!c.Send(prefix)) return std::nullopt;
  for (int i = 0; i < max_bytes; ++i) {
    pollfd p{c.fd(), POLLIN, 0};
    if (poll(&p, 1, every_ms) > 0) return c.Read();
    if (!c.Send("a")) return c.Read();
  }
  return std::nullopt;
}

TEST_F(ServerTest, TricklingHeadersGet408AtTheDeadline) {
  ServerOptions o = Defaults();
  o.limits.request_timeout_ms = 400;
  Start(o);
  auto c = Connect();
  // Each byte arrives well within any per-read timeout; only a whole-request deadline stops this.
  auto r = Trickle(*c, "GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", 50, 400);
  ASSERT_TRUE(r) << "no answer while trickling for 20 s";
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(server_->stats().refused_timeout, 1);
}

TEST_F(ServerTest, TricklingBodyGets408AtTheDeadline) {
  ServerOptions o = Defaults();
  o.limits.request_timeout_ms = 400;
  Start(o);
  auto c = Connect();
  auto r = Trickle(*c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n", 50, 400);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(echo_calls_.load(), 0);
}

TEST_F(ServerTest, IdleConnectionsAreClosed) {
  ServerOptions o = Defaults();
  o.limits.idle_timeout_ms = 200;
  Start(o);
  auto silent = Connect();
  EXPECT_TRUE(silent->WaitClosed());
  auto kept = Connect();
  ASSERT_TRUE(kept->Send(Get("/hello")));
  ASSERT_TRUE(kept->Read());
  EXPECT_TRUE(kept->WaitClosed());  // idle after its answer
  EXPECT_EQ(server_->stats().idle_timeouts, 2);
  EXPECT_TRUE(WaitUntil([&] { return server_->stats().connections_open == 0; }));
}

// ---- protocol hygiene -------------------------------------------------------------------------------------------

struct BadRequest {
  const char* name;
  std::string bytes;
  int status;
};

TEST_F(ServerTest, AmbiguousFramingIs400AndClosed) {
  Start();
  const std::string h = "POST /echo HTTP/1.1\r\nHost: localhost\r\n";
  const BadRequest cases[] = {
      {"two different Content-Length", h + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
      {"two equal Content-Length", h + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"a Content-Length list", h + "Content-Length: 5, 5\r\n\r\nhello", 400},
      {"negative Content-Length", h + "Content-Length: -5\r\n\r\nhello", 400},
      {"non-numeric Content-Length", h + "Content-Length: abc\r\n\r\nhello", 400},
      {"Content-Length with a sign", h + "Content-Length: +5\r\n\r\nhello", 400},
      {"hex Content-Length", h + "Content-Length: 0x5\r\n\r\nhello", 400},
      {"huge Content-Length", h + "Content-Length: 99999999999999999999999\r\n\r\nhello", 400},
      {"identity, chunked", h + "Transfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
      {"gzip, chunked", h + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
      {"chunked, chunked", h + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
      {"Transfer-Encoding gzip alone", h + "Transfer-Encoding: gzip\r\n\r\nhello", 400},
      {"two Transfer-Encoding fields", h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"chunked then Content-Length", h + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
      {"Content-Length then chunked", h + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"chunked in HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"a bad chunk size", h + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
      {"a space before the colon", h + "Content-Length : 5\r\n\r\nhello", 400},
      {"a bare LF", "POST /echo HTTP/1.1\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"no Host in HTTP/1.1", "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"two Host fields", h + "Host: evil.example\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"absolute-form target", "POST http://localhost/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
       400},
      {"HTTP/2.0", "POST /echo HTTP/2.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", 505},
      {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n", 400},
  };
  for (const BadRequest& bad : cases) {
    bool closed = false;
    auto r = Exchange(bad.bytes, &closed);
    ASSERT_TRUE(r) << bad.name;
    EXPECT_EQ(r->status, bad.status) << bad.name;
    EXPECT_TRUE(closed) << bad.name;
  }
  EXPECT_EQ(echo_calls_.load(), 0) << "a handler saw an ambiguous request";
  EXPECT_EQ(server_->stats().refused_bad_request, static_cast<int64_t>(std::size(cases)));
}

TEST_F(ServerTest, SmugglingAttemptsDoNotReachAHandler) {
  Start();
  // If the parser took Content-Length: 4 here, "0\r\n\r\n" would leave "GET /hello" as a second request.
  auto c = Connect();
  ASSERT_TRUE(
      c->Send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
              "0\r\n\r\nGET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(server_->stats().requests_by_class[1], 0);
}

TEST_F(ServerTest, Expect100Continue) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 100);
  ASSERT_TRUE(c->Send("hello"));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  // A body that is not welcome: the final answer instead of 100, then close.
  c = Connect();
  ASSERT_TRUE(c->Send("POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50\r\nExpect: 100-continue\r\n\r\n"));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(c->WaitClosed());
  // An expectation the server does not know.
  r = Exchange("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: magic\r\n\r\nhello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 417);
  EXPECT_EQ(echo_calls_.load(), 1);
}

// ---- Host allow-list --------------------------------------------------------------------------------------------

TEST_F(ServerTest, HostAllowListAnswers421ToOtherNames) {
  ListenerOptions l = ListenerOptions::Tcp("127.0.0.1", 0);
  l.restrict_host = true;
  l.allowed_hosts = {"agent.local"};
  Start(Defaults(), {l});
  const std::string p = std::to_string(port());
  for (const std::string& host : std::vector<std::string>{"localhost", "localhost:" + p, "127.0.0.1:" + p, "[::1]:" + p,
                                                          "LocalHost", "agent.local", "agent.local:" + p}) {
    auto r = Exchange("GET /hello HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    ASSERT_TRUE(r) << host;
    EXPECT_EQ(r->status, 200) << host;
  }
  for (const std::string& host : std::vector<std::string>{"evil.example", "evil.example:" + p, "localhost.evil.example",
                                                          "127.0.0.1.nip.io:" + p, "[::2]:" + p}) {
    auto r = Exchange("GET /hello HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    ASSERT_TRUE(r) << host;
    EXPECT_EQ(r->status, 421) << host;
  }
  auto r = Exchange("GET /hello HTTP/1.0\r\n\r\n");  // no Host at all
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 421);
  EXPECT_EQ(server_->stats().refused_misdirected, 6);
}

// ---- listeners --------------------------------------------------------------------------------------------------

TEST_F(ServerTest, UnixSocketCarriesPeerCredentials) {
  TempDir dir;
  const std::string path = dir / "api.sock";
  ListenerOptions u = ListenerOptions::Unix(path, 0600);
  u.tag = "local";
  Start(Defaults(), {u});
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(port(), 0);
  auto c = Conn::Unix(path);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Send(Get("/info")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::string want = "addr=unix;loopback=1;tls=0;tag=local;version=11;method=GET;uid=" + std::to_string(getuid()) +
                     ";gid=" + std::to_string(getgid()) + ";pid=" + std::to_string(getpid());
  EXPECT_EQ(r->body, want);
  server_->Stop(1000);
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file is removed at stop";
}

TEST_F(ServerTest, UnixSocketReplacesAStaleSocketButNoOtherFile) {
  TempDir dir;
  const std::string stale = dir / "stale.sock";
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", stale.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    close(fd);  // the file stays
  }
  Start(Defaults(), {ListenerOptions::Unix(stale)});
  auto c = Conn::Unix(stale);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Send(Get("/hello")));
  ASSERT_TRUE(c->Read());
  server_->Stop(1000);

  const std::string regular = dir / "data.txt";
  std::ofstream(regular) << "keep me";
  Server other(Defaults());
  other.router().Get("/hello", [](Request&) { return Response::Text(200, "hello"); });
  other.AddListener(ListenerOptions::Unix(regular));
  base::Status st = other.Start();
  EXPECT_EQ(st.code(), base::Code::kInvalidArgument) << st.ToString();
  std::ifstream in(regular);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST_F(ServerTest, ListenersCarryTheirOwnRoutesAndTags) {
  auto metrics = std::make_shared<Router>();
  metrics->Get("/metrics", [](Request& req) { return Response::Text(200, "metrics for " + req.listener_tag); });
  ListenerOptions main = ListenerOptions::Tcp("127.0.0.1", 0);
  main.tag = "main";
  ListenerOptions m = ListenerOptions::Tcp("127.0.0.1", 0);
  m.tag = "metrics";
  m.router = metrics;
  Start(Defaults(), {main, m});
  ASSERT_NE(port(0), port(1));
  auto c = Conn::Tcp(port(1));
  ASSERT_TRUE(c->Send(Get("/metrics")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "metrics for metrics");
  ASSERT_TRUE(c->Send(Get("/hello")));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = Exchange(Get("/metrics"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = Exchange(Get("/info"));
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("tag=main"), std::string::npos);
}

TEST_F(ServerTest, Ipv6Loopback) {
  ListenerOptions l = ListenerOptions::Tcp("::1", 0);
  server_ = std::make_unique<Server>(Defaults());
  AddRoutes(server_->router());
  server_->AddListener(l);
  base::Status st = server_->Start();
  if (!st.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << st.ToString();
  auto c = Conn::Tcp(port(), "::1");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Send(Get("/info")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("addr=::1;loopback=1"), std::string::npos) << r->body;
}

TEST_F(ServerTest, StartRefusesBadConfiguration) {
  {
    Server s(Defaults());
    s.router().Get("/a/{id", [](Request&) { return Response::Text(200, ""); });
    s.AddListener(ListenerOptions::Tcp("127.0.0.1", 0));
    EXPECT_EQ(s.Start().code(), base::Code::kInvalidArgument);
  }
  {
    Server s(Defaults());
    EXPECT_EQ(s.Start().code(), base::Code::kInvalidArgument);  // no listener
  }
  {
    Server s(Defaults());
    s.AddListener(ListenerOptions::Tcp("not-an-address", 0));
    EXPECT_EQ(s.Start().code(), base::Code::kInvalidArgument);
  }
  {
    Start();
    Server s(Defaults());
    s.AddListener(ListenerOptions::Tcp("127.0.0.1", port()));  // taken
    EXPECT_EQ(s.Start().code(), base::Code::kNetwork);
  }
  {
    Server s(Defaults());
    ListenerOptions l = ListenerOptions::Tcp("127.0.0.1", 0);
    l.tls_cert_file = "/nonexistent/cert.pem";
    s.AddListener(l);
    EXPECT_EQ(s.Start().code(), base::Code::kInvalidArgument);  // a key is missing
  }
}

// ---- streaming --------------------------------------------------------------------------------------------------

TEST_F(ServerTest, StreamingResponseIsChunked) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(Get("/stream?size=5000000&piece=65536")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->chunked);
  EXPECT_FALSE(r->HasHeader("Content-Length"));
  EXPECT_EQ(r->Header("Content-Type"), "text/plain");
  ASSERT_EQ(r->body.size(), 5000000u);
  EXPECT_TRUE(r->body == Pattern(5000000));
  // The connection is reused after the last chunk.
  ASSERT_TRUE(c->Send(Get("/hello")));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello");
}

TEST_F(ServerTest, StreamingToHttp10RunsUntilClose) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send("GET /stream?size=100000&piece=999 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->chunked);
  EXPECT_FALSE(r->HasHeader("Content-Length"));
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(r->body == Pattern(100000));
}

TEST_F(ServerTest, AbortedStreamCutsTheBody) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(Get("/abort")));
  auto r = c->Read();
  EXPECT_FALSE(r) << "a complete answer arrived for an aborted stream";
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(ServerTest, StreamProducerLearnsTheClientLeft) {
  Start();
  {
    auto c = Connect();
    ASSERT_TRUE(c->Send(Get("/forever")));
    std::string some;
    ASSERT_TRUE(WaitUntil([&] {
      char buf[4096];
      ssize_t n = recv(c->fd(), buf, sizeof buf, 0);
      if (n > 0) some.append(buf, static_cast<size_t>(n));
      return some.size() > 100000;
    }));
  }  // the client closes with data unread: the server's next writes fail
  EXPECT_TRUE(WaitUntil([&] { return stream_stopped_.load(); }, 10000));
  EXPECT_TRUE(WaitUntil([&] { return server_->stats().connections_open == 0; }));
}

// ---- capacity ---------------------------------------------------------------------------------------------------

TEST_F(ServerTest, FullQueueAnswers503WithRetryAfter) {
  ServerOptions o = Defaults();
  o.worker_threads = 1;
  o.max_queued_requests = 1;
  o.retry_after_s = 2;
  Start(o);
  auto first = Connect();
  ASSERT_TRUE(first->Send(Get("/block")));
  ASSERT_TRUE(WaitUntil([&] { return blocked_.load() == 1; }));
  auto second = Connect();
  ASSERT_TRUE(second->Send(Get("/block")));
  ASSERT_TRUE(WaitUntil([&] { return server_->stats().queued_requests == 1; }));
  auto third = Connect();
  ASSERT_TRUE(third->Send(Get("/hello")));
  auto r = third->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->Header("Retry-After"), "2");
  EXPECT_EQ(server_->stats().refused_queue_full, 1);
  OpenGate();
  r = first->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "released");
  r = second->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "released");
  // The refused connection was kept open: the body had been read whole.
  ASSERT_TRUE(third->Send(Get("/hello")));
  r = third->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, ConnectionCapRefusesWith503) {
  ServerOptions o = Defaults();
  o.limits.max_connections = 3;
  o.limits.reserved_connections = 0;
  Start(o);
  std::vector<std::unique_ptr<Conn>> busy;
  for (int i = 0; i < 3; ++i) {
    busy.push_back(Connect());
    ASSERT_TRUE(busy.back()->Send("GET /hello HTTP/1.1\r\n"));  // in the middle of a request: not reclaimable
  }
  ASSERT_TRUE(WaitUntil([&] { return server_->stats().connections_open == 3; }));
  auto extra = Connect();
  auto r = extra->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->Header("Retry-After"), "1");
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(extra->WaitClosed());
  EXPECT_EQ(server_->stats().connections_refused, 1);
  // One leaves: room again.
  busy.pop_back();
  ASSERT_TRUE(WaitUntil([&] { return server_->stats().connections_open == 2; }));
  r = Exchange(Get("/hello"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, ReserveReclaimsTheLongestIdleConnections) {
  ServerOptions o = Defaults();
  o.limits.max_connections = 6;
  o.limits.reserved_connections = 2;
  Start(o);
  std::vector<std::unique_ptr<Conn>> idle;
  for (int i = 0; i < 6; ++i) {
    idle.push_back(Connect());
    int want = i + 1;
    ASSERT_TRUE(WaitUntil([&] { return server_->stats().connections_accepted == want; }));
  }
  // The first ones were closed to keep two slots free.
  EXPECT_TRUE(idle[0]->WaitClosed());
  EXPECT_GE(server_->stats().connections_reclaimed, 1);
  auto r = Exchange(Get("/hello"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server_->stats().connections_refused, 0);
  // The newest idle connection was not the one reclaimed: it still answers.
  ASSERT_TRUE(idle[5]->Send(Get("/hello")));
  r = idle[5]->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, PerSourceCap) {
  ServerOptions o = Defaults();
  o.limits.max_connections_per_source = 2;
  Start(o);
  auto a = Connect();
  auto b = Connect();
  ASSERT_TRUE(a->Send("GET /hello HTTP/1.1\r\n"));
  ASSERT_TRUE(b->Send("GET /hello HTTP/1.1\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return server_->stats().connections_open == 2; }));
  auto r = Exchange(Get("/hello"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(server_->stats().connections_refused_per_source, 1);
  ASSERT_TRUE(a->Send("Host: localhost\r\n\r\n"));
  r = a->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// ---- stop -------------------------------------------------------------------------------------------------------

TEST_F(ServerTest, GracefulStopFinishesInFlightRequests) {
  Start();
  auto busy = Connect();
  ASSERT_TRUE(busy->Send(Get("/block")));
  ASSERT_TRUE(WaitUntil([&] { return blocked_.load() == 1; }));
  auto idle = Connect();
  ASSERT_TRUE(idle->Send(Get("/hello")));
  ASSERT_TRUE(idle->Read());
  const int p = port();
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server_->Stop(10000);
    stopped = true;
  });
  EXPECT_TRUE(idle->WaitClosed()) << "an idle connection is closed at once";
  EXPECT_TRUE(WaitUntil([&] { return Conn::Tcp(p, "127.0.0.1", 500) == nullptr; })) << "still accepting";
  EXPECT_FALSE(stopped.load());
  OpenGate();
  auto r = busy->Read();
  ASSERT_TRUE(r) << "the in-flight request lost its answer";
  EXPECT_EQ(r->body, "released");
  EXPECT_EQ(r->Header("Connection"), "close");
  EXPECT_TRUE(busy->WaitClosed());
  stopper.join();
  EXPECT_TRUE(stopped.load());
}

TEST_F(ServerTest, StopTimeoutClosesWhatIsLeft) {
  Start();
  auto busy = Connect();
  ASSERT_TRUE(busy->Send(Get("/block")));
  ASSERT_TRUE(WaitUntil([&] { return blocked_.load() == 1; }));
  std::thread stopper([&] { server_->Stop(100); });
  EXPECT_TRUE(busy->WaitClosed()) << "the connection outlived the stop timeout";
  OpenGate();  // Stop waits for the handler itself
  stopper.join();
}

}  // namespace
}  // namespace ferry::httpd
