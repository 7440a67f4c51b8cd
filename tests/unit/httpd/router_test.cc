// Routing and the text helpers of ferry_httpd, without sockets: patterns, method dispatch, decoding, Host names.
#include <gtest/gtest.h>

#include "lib/httpd/detail.h"
#include "lib/httpd/httpd.h"

namespace ferry::httpd {
namespace {

Handler Named(const std::string& name) {
  return [name](Request&) { return Response::Text(200, name); };
}

// The name of the handler a request resolves to ("" when none), by running it.
std::string Dispatch(const Router& r, const std::string& method, const std::string& path,
                     Router::Match* out = nullptr) {
  Router::Match m = r.Resolve(method, path);
  if (out) *out = m;
  if (m.status != 0 || m.handler == nullptr) return "";
  Request req;
  return (*m.handler)(req).body;
}

TEST(RouterTest, ExactPathsAndMethods) {
  Router r;
  r.Get("/", Named("root")).Get("/healthz", Named("health")).Post("/v1/batch", Named("batch"));
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(Dispatch(r, "GET", "/"), "root");
  EXPECT_EQ(Dispatch(r, "GET", "/healthz"), "health");
  EXPECT_EQ(Dispatch(r, "POST", "/v1/batch"), "batch");
  Router::Match m;
  EXPECT_EQ(Dispatch(r, "GET", "/v1/batch", &m), "");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allow, "POST");
  EXPECT_EQ(Dispatch(r, "GET", "/nope", &m), "");
  EXPECT_EQ(m.status, 404);
  // No normalisation: a trailing slash or a doubled one is another path.
  EXPECT_EQ(Dispatch(r, "GET", "/healthz/", &m), "");
  EXPECT_EQ(m.status, 404);
  EXPECT_EQ(Dispatch(r, "GET", "//healthz", &m), "");
  EXPECT_EQ(m.status, 404);
}

TEST(RouterTest, HeadIsServedByGetUnlessItHasItsOwnRoute) {
  Router r;
  r.Get("/a", Named("get-a")).Get("/b", Named("get-b")).Add("HEAD", "/b", Named("head-b"));
  EXPECT_EQ(Dispatch(r, "HEAD", "/a"), "get-a");
  EXPECT_EQ(Dispatch(r, "HEAD", "/b"), "head-b");
  Router::Match m;
  Dispatch(r, "PUT", "/a", &m);
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allow, "GET, HEAD");
}

TEST(RouterTest, NamedSegmentsArePercentDecoded) {
  Router r;
  r.Get("/v1/subjects/{id}/export", Named("export"));
  Router::Match m = r.Resolve("GET", "/v1/subjects/a%2Fb%20c/export");
  ASSERT_EQ(m.status, 0);
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "id");
  EXPECT_EQ(m.params[0].second, "a/b c");  // an encoded '/' stays inside the segment
  // '+' is a plus sign in a path.
  m = r.Resolve("GET", "/v1/subjects/a+b/export");
  ASSERT_EQ(m.status, 0);
  EXPECT_EQ(m.params[0].second, "a+b");
  // A parameter may be empty.
  m = r.Resolve("GET", "/v1/subjects//export");
  ASSERT_EQ(m.status, 0);
  EXPECT_EQ(m.params[0].second, "");
}

TEST(RouterTest, EncodedNulAndBadEscapesAreRefused) {
  Router r;
  r.Get("/v1/subjects/{id}", Named("subject"));
  for (const char* bad : {"/v1/subjects/carol%00x", "/v1/subjects/%zz", "/v1/subjects/abc%4", "/v1/subjects/%"}) {
    Router::Match m = r.Resolve("GET", bad);
    EXPECT_EQ(m.status, 400) << bad;
    EXPECT_EQ(m.handler, nullptr) << bad;
  }
  EXPECT_EQ(r.Resolve("GET", std::string("/v1/subjects/a\0b", 17)).status, 400);
  EXPECT_EQ(r.Resolve("GET", "*").status, 400);
  EXPECT_EQ(r.Resolve("GET", "http://example.com/v1").status, 400);
}

TEST(RouterTest, TheMoreLiteralPatternWins) {
  Router r;
  r.Get("/v1/requests/{id}", Named("by-id"))
      .Get("/v1/requests/export", Named("export"))
      .Get("/v1/{any}/export", Named("any-export"))
      .Options("/{rest*}", Named("preflight"));
  EXPECT_EQ(Dispatch(r, "GET", "/v1/requests/export"), "export");
  EXPECT_EQ(Dispatch(r, "GET", "/v1/requests/r1"), "by-id");
  EXPECT_EQ(Dispatch(r, "GET", "/v1/things/export"), "any-export");
  EXPECT_EQ(Dispatch(r, "OPTIONS", "/v1/requests/r1"), "preflight");
  EXPECT_EQ(Dispatch(r, "OPTIONS", "/"), "preflight");
  // A path only the OPTIONS catch-all matches: 405 naming OPTIONS.
  Router::Match m;
  Dispatch(r, "GET", "/elsewhere", &m);
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.allow, "OPTIONS");
}

TEST(RouterTest, RestSegmentTakesTheRemainder) {
  Router r;
  r.Get("/files/{path*}", Named("files")).Get("/files", Named("files-root"));
  Router::Match m = r.Resolve("GET", "/files/a/b%2Fc/d");
  ASSERT_EQ(m.status, 0);
  EXPECT_EQ(m.params[0].second, "a/b/c/d");
  EXPECT_EQ(Dispatch(r, "GET", "/files"), "files-root");  // the literal route beats {path*} matching nothing
  m = r.Resolve("GET", "/files/");
  ASSERT_EQ(m.status, 0);
  EXPECT_EQ(m.params[0].second, "");
}

TEST(RouterTest, BadPatternsAreKeptInStatus) {
  for (const char* bad : {"nope", "/a/{id", "/a/{}", "/a/{x}/{x}", "/a/{rest*}/b", "/a/b{c}", "/a/{b/c}"}) {
    Router r;
    r.Get(bad, Named("x"));
    EXPECT_FALSE(r.status().ok()) << bad;
    EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument) << bad;
  }
  Router r;
  r.Add("BAD METHOD", "/a", Named("x"));
  EXPECT_FALSE(r.status().ok());
  Router empty_handler;
  empty_handler.Get("/a", Handler());
  EXPECT_FALSE(empty_handler.status().ok());
}

TEST(RouterTest, RouteOptionsComeWithTheMatch) {
  Router r;
  RouteOptions small;
  small.max_body_bytes = 10;
  r.Post("/small", Named("small"), small).Post("/big", Named("big"));
  EXPECT_EQ(r.Resolve("POST", "/small").options.max_body_bytes, 10u);
  EXPECT_EQ(r.Resolve("POST", "/big").options.max_body_bytes, 0u);
}

TEST(HttpdDetailTest, QueryDecoding) {
  std::vector<std::pair<std::string, std::string>> q;
  ASSERT_TRUE(detail::ParseQuery("project=p%20x&flag&x=1+2&&empty=", &q));
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>("project", "p x")));
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>("flag", "")));
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>("x", "1 2")));
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>("empty", "")));
  q.clear();
  EXPECT_FALSE(detail::ParseQuery("a=%00", &q));
  EXPECT_FALSE(detail::ParseQuery("a=%g0", &q));
  EXPECT_FALSE(detail::ParseQuery("a%00=1", &q));
}

TEST(HttpdDetailTest, LoopbackAddresses) {
  for (const char* yes : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(detail::IsLoopbackAddress(yes)) << yes;
  }
  for (const char* no :
       {"10.0.0.1", "128.0.0.1", "::2", "::ffff:10.0.0.1", "localhost", "", "127.0.0.1.evil", "0.0.0.0", "::"}) {
    EXPECT_FALSE(detail::IsLoopbackAddress(no)) << no;
  }
}

TEST(HttpdDetailTest, HostAllowList) {
  std::vector<std::string> extra = {"agent.local", "fd00::1"};
  for (const char* yes : {"localhost", "localhost:8080", "LOCALHOST", "localhost.", "127.0.0.1", "127.0.0.1:1", "[::1]",
                          "[::1]:443", "agent.local", "Agent.Local:9", "agent.local.", "[fd00::1]:80"}) {
    EXPECT_TRUE(detail::HostAllowed(yes, extra)) << yes;
  }
  for (const char* no :
       {"evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io", "127.0.0.2", "::1", "[::1",
        "localhost:80:80", "localhost:http", "", ":80", "agent.locale", "[::2]", "localhost:123456"}) {
    EXPECT_FALSE(detail::HostAllowed(no, extra)) << no;
  }
}

TEST(HttpdDetailTest, ResponseHeadFramingAndFieldChecks) {
  Response r = Response::Text(200, "hello");
  r.headers.Add("X-Good", "yes");
  r.headers.Add("X-Bad", "a\r\nInjected: 1");
  r.headers.Add("Bad Name", "x");
  r.headers.Add("Content-Length", "999");  // the server's own
  r.headers.Add("Connection", "keep-alive");
  int dropped = 0;
  std::string h = detail::ResponseHead(r, 11, true, detail::Framing::kLength, 5, &dropped);
  EXPECT_EQ(dropped, 2);
  EXPECT_NE(h.find("HTTP/1.1 200 OK\r\n"), std::string::npos);
  EXPECT_NE(h.find("X-Good: yes\r\n"), std::string::npos);
  EXPECT_NE(h.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_EQ(h.find("999"), std::string::npos);
  EXPECT_EQ(h.find("Injected"), std::string::npos);
  EXPECT_EQ(h.find("Connection"), std::string::npos);
  EXPECT_EQ(h.substr(h.size() - 4), "\r\n\r\n");
  // HTTP/1.0 keep-alive is said; a close is said for both.
  EXPECT_NE(detail::ResponseHead(r, 10, true, detail::Framing::kLength, 5, nullptr).find("Connection: keep-alive"),
            std::string::npos);
  EXPECT_NE(detail::ResponseHead(r, 11, false, detail::Framing::kLength, 5, nullptr).find("Connection: close"),
            std::string::npos);
  // 204 and 304 carry no framing.
  Response nc;
  nc.status = 204;
  EXPECT_EQ(detail::ResponseHead(nc, 11, true, detail::Framing::kLength, 0, nullptr).find("Content-Length"),
            std::string::npos);
  EXPECT_NE(detail::ResponseHead(r, 11, true, detail::Framing::kChunked, 0, nullptr).find("Transfer-Encoding: chunked"),
            std::string::npos);
}

TEST(HttpdDetailTest, StatsRenderAsPrometheusText) {
  Stats s;
  s.connections_open = 3;
  s.requests_by_class[1] = 7;
  s.refused_header_too_large = 2;
  std::string text = RenderStats(s, "ferry_test_http");
  EXPECT_NE(text.find("ferry_test_http_connections_open 3\n"), std::string::npos);
  EXPECT_NE(text.find("ferry_test_http_responses_total{class=\"2xx\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("ferry_test_http_refusals_total{reason=\"header_too_large\"} 2\n"), std::string::npos);
}

}  // namespace
}  // namespace ferry::httpd
