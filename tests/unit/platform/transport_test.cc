// HTTP transports against real servers on loopback: libcurl over TLS to a cpp-httplib SSLServer whose throwaway CA
// and certificate the openssl CLI makes at start, plain HTTP on loopback, the endpoint policy, and the callback
// adapter (a fake native stack and one backed by a real HTTP client).
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lib/base/time.h"
#include "platform/platform.h"
#include "sdk/c_api/callback_transport.h"

namespace ferry::platform {
namespace {

std::string RunCapture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (rc != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// "Wed, 21 Oct 2015 07:28:00 GMT"
std::string HttpDate(time_t t) {
  char buf[64];
  struct tm tm {};
  gmtime_r(&t, &tm);
  strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

// A server on 127.0.0.1 (TLS or plain) with the endpoints the tests need, on its own thread.
class TestServer {
 public:
  explicit TestServer(std::unique_ptr<httplib::Server> svr) : svr_(std::move(svr)) {
    svr_->set_tcp_nodelay(true);
    svr_->Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_header("X-Seen-Test-Header", req.get_header_value("X-Ferry-Test"));
      res.set_header("X-Seen-Content-Type", req.get_header_value("Content-Type"));
      res.set_header("X-Remote-Port", std::to_string(req.remote_port));
      res.set_content(req.body, "application/octet-stream");
    });
    svr_->Post("/inspect", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content("port=" + std::to_string(req.remote_port) + ";test=" + req.get_header_value("X-Ferry-Test") +
                          ";ct=" + req.get_header_value("Content-Type") + ";len=" + std::to_string(req.body.size()) +
                          ";expect=" + req.get_header_value("Expect") + ";",
                      "text/plain");
    });
    svr_->Post(R"(/status/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      res.status = std::atoi(req.matches[1].str().c_str());
      res.set_content("status " + req.matches[1].str(), "text/plain");
    });
    svr_->Post("/retry-delta", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_header("Retry-After", "120");
      res.set_content("busy", "text/plain");
    });
    svr_->Post("/retry-date", [](const httplib::Request&, httplib::Response& res) {
      res.status = 429;
      res.set_header("Retry-After", HttpDate(std::time(nullptr) + 300));
      res.set_content("slow down", "text/plain");
    });
    svr_->Post("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(2 << 20, 'b'), "application/octet-stream");
    });
    svr_->Post("/slow", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(20), [this] { return released_; });
      res.set_content("late", "text/plain");
    });
    port_ = svr_->bind_to_any_port("127.0.0.1");
    if (port_ <= 0) return;
    thread_ = std::thread([this] { svr_->listen_after_bind(); });
    // stop() is a no-op until the accept loop runs; wait for it so the destructor can always stop the server.
    for (int i = 0; i < 5000 && !svr_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~TestServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    svr_->stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> svr_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// The throwaway PKI and the servers, shared by all tests of this binary.
class TransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-tls-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = new std::string(tmpl);
    const std::string d = *dir_;
    const std::string ossl = FERRY_OPENSSL_CLI;
    {
      std::ofstream ext(d + "/ext.cnf");
      ext << "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
             "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
    }
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    const std::string cmds[] = {
        ossl + " req -x509" + ec + "-keyout " + d + "/ca.key -out " + d +
            "/ca.pem -days 2 -subj '/CN=Ferry Test CA' -addext basicConstraints=critical,CA:TRUE"
            " -addext keyUsage=critical,keyCertSign,cRLSign",
        ossl + " req" + ec + "-keyout " + d + "/server.key -out " + d + "/server.csr -subj '/CN=Ferry Test Server'",
        ossl + " x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d +
            "/ca.key -CAcreateserial -out " + d + "/server.pem -days 2 -extfile " + d + "/ext.cnf",
    };
    for (const std::string& c : cmds) ASSERT_EQ(std::system((c + " >/dev/null 2>&1").c_str()), 0) << c;
    pin_ = new std::string("sha256//" + RunCapture(ossl + " pkey -in " + d + "/server.key -pubout -outform der | " +
                                                   ossl + " dgst -sha256 -binary | " + ossl + " base64"));
    ASSERT_EQ(pin_->size(), 8u + 44u) << *pin_;

    auto tls = std::make_unique<httplib::SSLServer>((d + "/server.pem").c_str(), (d + "/server.key").c_str());
    ASSERT_TRUE(tls->is_valid());
    tls_ = new TestServer(std::move(tls));
    plain_ = new TestServer(std::make_unique<httplib::Server>());
    ASSERT_GT(tls_->port(), 0);
    ASSERT_GT(plain_->port(), 0);
  }

  static void TearDownTestSuite() {
    delete tls_;
    delete plain_;
    std::error_code ec;
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_, ec);
    delete dir_;
    delete pin_;
    tls_ = plain_ = nullptr;
    dir_ = pin_ = nullptr;
  }

  static std::string CaFile() { return *dir_ + "/ca.pem"; }
  static std::string Https(const std::string& path, const std::string& host = "localhost") {
    return "https://" + host + ":" + std::to_string(tls_->port()) + path;
  }
  static std::string Http(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(plain_->port()) + path;
  }
  static std::unique_ptr<HttpTransport> Trusting(const std::string& pin = "") {
    CurlTransportOptions o;
    o.ca_file = CaFile();
    o.pinned_public_key = pin;
    o.connect_timeout_ms = 5000;
    return NewCurlTransport(o);
  }
  static HttpRequest Req(const std::string& url, std::string body = "{}") {
    HttpRequest r;
    r.url = url;
    r.body = std::move(body);
    r.headers = {"Content-Type: application/json"};
    r.timeout_ms = 10000;
    return r;
  }

  static std::string* dir_;
  static std::string* pin_;
  static TestServer* tls_;
  static TestServer* plain_;
};

std::string* TransportTest::dir_ = nullptr;
std::string* TransportTest::pin_ = nullptr;
TestServer* TransportTest::tls_ = nullptr;
TestServer* TransportTest::plain_ = nullptr;

TEST_F(TransportTest, PostsOverVerifiedTlsWithHeadersAndBinaryBody) {
  auto t = Trusting();
  HttpRequest req = Req(Https("/echo"), std::string("bin\0ary\xff body", 13));
  req.headers = {"Content-Type: application/x-ferry-batch", "X-Ferry-Test: hello"};
  HttpResponse resp;
  base::Status st = t->Post(req, &resp);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, req.body);
  EXPECT_EQ(resp.retry_after_s, 0u);
  EXPECT_TRUE(resp.error.empty());
}

TEST_F(TransportTest, SendsTheRequestHeaders) {
  auto t = Trusting();
  HttpRequest req = Req(Https("/inspect"), "12345");
  req.headers = {"Content-Type: application/x-ferry-batch", "X-Ferry-Test: seen-by-server"};
  HttpResponse resp;
  ASSERT_TRUE(t->Post(req, &resp).ok());
  ASSERT_EQ(resp.status, 200);
  EXPECT_NE(resp.body.find("test=seen-by-server;"), std::string::npos) << resp.body;
  EXPECT_NE(resp.body.find("ct=application/x-ferry-batch;"), std::string::npos) << resp.body;
  EXPECT_NE(resp.body.find("len=5;"), std::string::npos) << resp.body;
  EXPECT_NE(resp.body.find("expect=;"), std::string::npos) << resp.body;
}

TEST_F(TransportTest, ReusesTheConnection) {
  auto t = Trusting();
  HttpResponse a;
  HttpResponse b;
  ASSERT_TRUE(t->Post(Req(Https("/inspect")), &a).ok());
  ASSERT_TRUE(t->Post(Req(Https("/inspect")), &b).ok());
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  // The same client port on the server side: one TCP+TLS connection carried both requests.
  std::string port_a = a.body.substr(0, a.body.find(';'));
  EXPECT_EQ(port_a.rfind("port=", 0), 0u) << a.body;
  EXPECT_EQ(port_a, b.body.substr(0, b.body.find(';')));
  // A second transport has its own connection.
  auto other = Trusting();
  HttpResponse c;
  ASSERT_TRUE(other->Post(Req(Https("/inspect")), &c).ok());
  EXPECT_NE(port_a, c.body.substr(0, c.body.find(';')));
}

TEST_F(TransportTest, FailsVerificationWithoutTheCaFile) {
  auto t = NewCurlTransport(CurlTransportOptions{});  // system store only: our throwaway CA is not in it
  HttpResponse resp;
  base::Status st = t->Post(Req(Https("/echo")), &resp);
  EXPECT_EQ(st.code(), base::Code::kNetwork);
  EXPECT_EQ(resp.status, 0);
  EXPECT_NE(st.message().find("certificate"), std::string::npos) << st.message();
  EXPECT_EQ(resp.error, st.message());
}

TEST_F(TransportTest, FailsOnAWrongHostName) {
  auto t = Trusting();
  HttpResponse resp;
  // The certificate names only "localhost"; 127.0.0.1 reaches the same server under another name.
  base::Status st = t->Post(Req(Https("/echo", "127.0.0.1")), &resp);
  EXPECT_EQ(st.code(), base::Code::kNetwork);
  EXPECT_EQ(resp.status, 0);
  EXPECT_NE(st.message().find("127.0.0.1"), std::string::npos) << st.message();
}

TEST_F(TransportTest, PinnedKeyMatchSucceedsAndMismatchFails) {
  HttpResponse resp;
  auto good = Trusting(*pin_);
  base::Status st = good->Post(Req(Https("/echo")), &resp);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(resp.status, 200);

  auto several = Trusting("sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;" + *pin_);
  ASSERT_TRUE(several->Post(Req(Https("/echo")), &resp).ok());

  auto bad = Trusting("sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  st = bad->Post(Req(Https("/echo")), &resp);
  EXPECT_EQ(st.code(), base::Code::kNetwork);
  EXPECT_EQ(resp.status, 0);
  EXPECT_NE(st.message().find("public key"), std::string::npos) << st.message();
}

TEST_F(TransportTest, ReturnsHttpStatusCodesAsAnswers) {
  auto t = Trusting();
  for (int code : {200, 202, 400, 401, 413, 500, 503}) {
    HttpResponse resp;
    base::Status st = t->Post(Req(Https("/status/" + std::to_string(code))), &resp);
    ASSERT_TRUE(st.ok()) << code << ": " << st.ToString();
    EXPECT_EQ(resp.status, code);
    EXPECT_EQ(resp.body, "status " + std::to_string(code));
  }
}

TEST_F(TransportTest, ParsesRetryAfterSeconds) {
  auto t = Trusting();
  HttpResponse resp;
  ASSERT_TRUE(t->Post(Req(Https("/retry-delta")), &resp).ok());
  EXPECT_EQ(resp.status, 503);
  EXPECT_EQ(resp.retry_after_s, 120u);
  // The next answer without the header does not inherit it.
  ASSERT_TRUE(t->Post(Req(Https("/status/503")), &resp).ok());
  EXPECT_EQ(resp.retry_after_s, 0u);
}

TEST_F(TransportTest, ParsesRetryAfterHttpDate) {
  auto t = Trusting();
  HttpResponse resp;
  ASSERT_TRUE(t->Post(Req(Https("/retry-date")), &resp).ok());
  EXPECT_EQ(resp.status, 429);
  // The server said "now + 300 s" in whole seconds; the answer is measured from a slightly later now.
  EXPECT_LE(resp.retry_after_s, 300u);
  EXPECT_GE(resp.retry_after_s, 290u);
}

TEST(ParseRetryAfterTest, DeltaSecondsAndDates) {
  const int64_t now = 1445412480;  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), 120u);
  EXPECT_EQ(ParseRetryAfter(" 7 ", now), 7u);
  EXPECT_EQ(ParseRetryAfter("0", now), 0u);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999", now), 4294967295u);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:30:00 GMT", now), 120u);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:20:00 GMT", now), 0u);       // in the past
  EXPECT_EQ(ParseRetryAfter("Wednesday, 21-Oct-15 07:29:00 GMT", now), 60u);  // RFC 850 form
  EXPECT_EQ(ParseRetryAfter("soon", now), 0u);
  EXPECT_EQ(ParseRetryAfter("-5", now), 0u);
  EXPECT_EQ(ParseRetryAfter("", now), 0u);
}

TEST_F(TransportTest, CapsTheResponseBodyAt1MiB) {
  auto t = Trusting();
  HttpResponse resp;
  base::Status st = t->Post(Req(Https("/big")), &resp);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body.size(), 1u << 20);
  EXPECT_NE(resp.error.find("truncated"), std::string::npos);
  // The transport stays usable afterwards.
  ASSERT_TRUE(t->Post(Req(Https("/echo"), "after"), &resp).ok());
  EXPECT_EQ(resp.body, "after");
}

TEST_F(TransportTest, HonoursTheRequestTimeout) {
  auto t = Trusting();
  HttpRequest req = Req(Https("/slow"));
  req.timeout_ms = 300;
  HttpResponse resp;
  int64_t start = base::MonotonicMs();
  base::Status st = t->Post(req, &resp);
  int64_t elapsed = base::MonotonicMs() - start;
  EXPECT_EQ(st.code(), base::Code::kNetwork);
  EXPECT_EQ(resp.status, 0);
  EXPECT_NE(st.message().find("Timeout"), std::string::npos) << st.message();
  // The server holds /slow for 20 s; giving up long before that is the behaviour under test, not a speed figure.
  EXPECT_LT(elapsed, 15000);
}

TEST_F(TransportTest, ReportsConnectionRefused) {
  // Find a loopback port with no listener: bind a socket (no listen), note its port, close it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);
  close(fd);
  ASSERT_GT(port, 0);
  auto t = Trusting();
  HttpResponse resp;
  base::Status st = t->Post(Req("http://127.0.0.1:" + std::to_string(port) + "/x"), &resp);
  EXPECT_EQ(st.code(), base::Code::kNetwork);
  EXPECT_EQ(resp.status, 0);
  EXPECT_NE(resp.error.find("connect"), std::string::npos) << resp.error;
}

TEST_F(TransportTest, PlainHttpToLoopbackWorks) {
  auto t = NewCurlTransport(CurlTransportOptions{});
  HttpRequest req = Req(Http("/echo"), "plain");
  req.headers.push_back("X-Ferry-Test: over-http");
  HttpResponse resp;
  base::Status st = t->Post(req, &resp);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "plain");
}

TEST_F(TransportTest, RefusesPlainHttpToANonLoopbackHostWithoutSending) {
  auto t = NewCurlTransport(CurlTransportOptions{});
  HttpResponse resp;
  // Refused by the policy before any connection is attempted.
  base::Status st = t->Post(Req("http://collector.example.com/v1/batch"), &resp);
  EXPECT_EQ(st.code(), base::Code::kNetwork);
  EXPECT_NE(st.message().find("loopback"), std::string::npos) << st.message();
  st = t->Post(Req("ftp://127.0.0.1/x"), &resp);
  EXPECT_EQ(st.code(), base::Code::kNetwork);
}

TEST(IsAllowedEndpointTest, HttpsAnywhereHttpOnlyOnLoopback) {
  std::string why;
  EXPECT_TRUE(IsAllowedEndpoint("https://collector.example.com/v1/batch", &why));
  EXPECT_TRUE(IsAllowedEndpoint("HTTPS://10.1.2.3:8443/v1/batch", &why));
  EXPECT_TRUE(IsAllowedEndpoint("https://[2001:db8::1]:443/", &why));
  EXPECT_TRUE(IsAllowedEndpoint("http://127.0.0.1:8080/v1/batch", &why));
  EXPECT_TRUE(IsAllowedEndpoint("http://127.255.0.9/", &why));
  EXPECT_TRUE(IsAllowedEndpoint("http://localhost:9000", &why));
  EXPECT_TRUE(IsAllowedEndpoint("http://LOCALHOST./x", &why));
  EXPECT_TRUE(IsAllowedEndpoint("http://[::1]:8080/v1/batch", &why));
  EXPECT_TRUE(IsAllowedEndpoint("http://[0:0:0:0:0:0:0:1]/", &why));
  EXPECT_TRUE(IsAllowedEndpoint("https://c.example.com", nullptr));

  const char* refused[] = {
      "http://collector.example.com/v1/batch",
      "http://10.0.0.1/",
      "http://192.168.1.10:8080/",
      "http://128.0.0.1/",
      "http://[::2]/",
      "http://[::ffff:127.0.0.1]/",
      "http://localhost.example.com/",
      "http://127.0.0.1.example.com/",
      "http://127.0.0.1@evil.example.com/",
      "http://user:pw@127.0.0.1/",
      "http://0x7f000001/",
      "http://2130706433/",
      "http://127.1/",
      "ftp://127.0.0.1/",
      "file:///etc/passwd",
      "https:///nohost",
      "https://",
      "http:// 127.0.0.1/",
      "collector.example.com",
      "",
  };
  for (const char* url : refused) {
    why.clear();
    EXPECT_FALSE(IsAllowedEndpoint(url, &why)) << url;
    EXPECT_FALSE(why.empty()) << url;
  }
}

// ---- Callback transport ---------------------------------------------------------------------------------------

// A fake native stack written the way a host app would write one, in C style.
struct NativeStack {
  std::string method;
  std::string url;
  std::vector<std::string> headers;
  std::string body;
  uint32_t timeout_ms = 0;
  int calls = 0;
  int answer_status = 201;
  uint32_t answer_retry_after = 7;
  ferry_status answer_code = FERRY_OK;
  const char* answer_body = "accepted";
};

int g_free_user_calls = 0;

void FreeUser(void* user) {
  ++g_free_user_calls;
  delete static_cast<NativeStack*>(user);
}

ferry_status NativeSend(const ferry_http_request* req, ferry_http_response* resp, void* user) {
  auto* s = static_cast<NativeStack*>(user);
  ++s->calls;
  s->method = req->method;
  s->url = req->url;
  s->headers.clear();
  for (const char* const* h = req->headers; *h != nullptr; ++h) s->headers.emplace_back(*h);
  s->body.assign(reinterpret_cast<const char*>(req->body), req->body_len);
  s->timeout_ms = req->timeout_ms;
  resp->status = s->answer_status;
  resp->retry_after_s = s->answer_retry_after;
  if (s->answer_body != nullptr) {
    size_t n = std::strlen(s->answer_body);
    resp->body = static_cast<uint8_t*>(std::malloc(n));
    std::memcpy(resp->body, s->answer_body, n);
    resp->body_len = n;
  }
  return s->answer_code;
}

TEST(CallbackTransportTest, RoundTrip) {
  g_free_user_calls = 0;
  auto* stack = new NativeStack();
  {
    auto t = NewCallbackTransport(&NativeSend, stack, &FreeUser);
    HttpRequest req;
    req.url = "https://collector.example.com/v1/batch";
    req.headers = {"Content-Type: application/x-ferry-batch", "Content-Encoding: zstd", "X-Ferry-Key: k1"};
    req.body = std::string("\x28\xb5\x2f\xfd\0payload", 12);
    req.timeout_ms = 12345;
    HttpResponse resp;
    base::Status st = t->Post(req, &resp);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(stack->method, "POST");
    EXPECT_EQ(stack->url, req.url);
    EXPECT_EQ(stack->headers, req.headers);
    EXPECT_EQ(stack->body, req.body);
    EXPECT_EQ(stack->timeout_ms, 12345u);
    EXPECT_EQ(resp.status, 201);
    EXPECT_EQ(resp.retry_after_s, 7u);
    EXPECT_EQ(resp.body, "accepted");

    // No headers at all: still a valid NULL-terminated array. No body from the native side: empty.
    req.headers.clear();
    stack->answer_body = nullptr;
    stack->answer_status = 503;
    ASSERT_TRUE(t->Post(req, &resp).ok());
    EXPECT_TRUE(stack->headers.empty());
    EXPECT_EQ(resp.status, 503);
    EXPECT_TRUE(resp.body.empty());
    EXPECT_EQ(stack->calls, 2);
    EXPECT_EQ(g_free_user_calls, 0);
  }
  EXPECT_EQ(g_free_user_calls, 1);
}

TEST(CallbackTransportTest, NetworkFailures) {
  g_free_user_calls = 0;
  auto* stack = new NativeStack();
  auto t = NewCallbackTransport(&NativeSend, stack, &FreeUser);
  HttpRequest req;
  req.url = "https://collector.example.com/v1/batch";
  HttpResponse resp;

  // send() says FERRY_ERR_NETWORK (and still hands a body, which must be freed: the leak checker watches).
  stack->answer_code = FERRY_ERR_NETWORK;
  base::Status st = t->Post(req, &resp);
  EXPECT_EQ(st.code(), base::Code::kNetwork);
  EXPECT_EQ(resp.status, 0);
  EXPECT_TRUE(resp.body.empty());
  EXPECT_FALSE(resp.error.empty());

  // FERRY_OK but status 0: no HTTP answer, a network failure too.
  stack->answer_code = FERRY_OK;
  stack->answer_status = 0;
  st = t->Post(req, &resp);
  EXPECT_EQ(st.code(), base::Code::kNetwork);
  EXPECT_EQ(resp.status, 0);

  t.reset();
  EXPECT_EQ(g_free_user_calls, 1);
}

TEST(CallbackTransportTest, NullFreeUserIsAllowed) {
  NativeStack stack;
  auto t = NewCallbackTransport(&NativeSend, &stack, nullptr);
  HttpRequest req;
  req.url = "https://c.example.com/";
  HttpResponse resp;
  ASSERT_TRUE(t->Post(req, &resp).ok());
  EXPECT_EQ(stack.calls, 1);
}

// A native stack backed by a real HTTP client (cpp-httplib), talking to the loopback server.
ferry_status HttplibSend(const ferry_http_request* req, ferry_http_response* resp, void* user) {
  auto* cli = static_cast<httplib::Client*>(user);
  std::string url = req->url;
  size_t path_at = url.find('/', url.find("//") + 2);
  httplib::Headers headers;
  std::string content_type = "application/octet-stream";
  for (const char* const* h = req->headers; *h != nullptr; ++h) {
    std::string line = *h;
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 2);
    if (name == "Content-Type") {
      content_type = value;
    } else {
      headers.emplace(name, value);
    }
  }
  auto r =
      cli->Post(url.substr(path_at), headers, reinterpret_cast<const char*>(req->body), req->body_len, content_type);
  if (!r) return FERRY_ERR_NETWORK;
  resp->status = r->status;
  resp->retry_after_s = static_cast<uint32_t>(std::atoi(r->get_header_value("Retry-After").c_str()));
  resp->body = static_cast<uint8_t*>(std::malloc(r->body.size() + 1));
  std::memcpy(resp->body, r->body.data(), r->body.size());
  resp->body_len = r->body.size();
  return FERRY_OK;
}

TEST_F(TransportTest, CallbackTransportOverARealClient) {
  auto* cli = new httplib::Client("127.0.0.1", plain_->port());
  auto t = NewCallbackTransport(&HttplibSend, cli, [](void* u) { delete static_cast<httplib::Client*>(u); });
  HttpRequest req = Req(Http("/echo"), "through the native stack");
  req.headers.push_back("X-Ferry-Test: native");
  HttpResponse resp;
  ASSERT_TRUE(t->Post(req, &resp).ok());
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "through the native stack");

  ASSERT_TRUE(t->Post(Req(Http("/retry-delta")), &resp).ok());
  EXPECT_EQ(resp.status, 503);
  EXPECT_EQ(resp.retry_after_s, 120u);
}

}  // namespace
}  // namespace ferry::platform
