// The default HTTP transport (FERRY_TRANSPORT=curl): libcurl with one reused easy handle.
#include <curl/curl.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

#include "platform/platform.h"

namespace ferry::platform {
namespace {

constexpr size_t kMaxResponseBody = 1 << 20;  // 1 MiB

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

bool GlobalInit() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; });
  return ok;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string TrimWs(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// What one Post() collects from the callbacks.
struct Exchange {
  std::string body;
  bool truncated = false;
  std::string retry_after;  // raw header value of the last response
};

size_t OnBody(char* data, size_t size, size_t n, void* userp) {
  auto* ex = static_cast<Exchange*>(userp);
  size_t len = size * n;
  size_t room = kMaxResponseBody - ex->body.size();
  if (len > room) {
    ex->body.append(data, room);
    ex->truncated = true;
    return 0;  // short count: libcurl stops reading (CURLE_WRITE_ERROR); the rest is not wanted
  }
  ex->body.append(data, len);
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* userp) {
  auto* ex = static_cast<Exchange*>(userp);
  size_t len = size * n;
  std::string line(data, len);
  if (line.compare(0, 5, "HTTP/") == 0) {
    ex->retry_after.clear();  // a new response (after 100 Continue, say): forget the previous one's headers
    ex->body.clear();
    ex->truncated = false;
  } else if (line.size() > 12 && Lower(line.substr(0, 12)) == "retry-after:") {
    ex->retry_after = TrimWs(line.substr(12));
  }
  return len;
}

// Progress callback: a non-zero return aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
int OnProgress(void* clientp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(clientp);
  return cancel != nullptr && cancel->load(std::memory_order_relaxed) ? 1 : 0;
}

class CurlTransport : public HttpTransport {
 public:
  explicit CurlTransport(const CurlTransportOptions& opts) : opts_(opts) {
    errbuf_[0] = '\0';
    if (!GlobalInit()) {
      init_error_ = "curl_global_init failed";
      return;
    }
    easy_.reset(curl_easy_init());
    if (!easy_) {
      init_error_ = "curl_easy_init failed";
      return;
    }
    CURL* h = easy_.get();
    // Options that never change for this transport.
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf_);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    // Setting CAINFO replaces the default bundle: only this file's anchors are trusted (tests, private PKI).
    if (!opts_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, opts_.ca_file.c_str());
    if (!opts_.pinned_public_key.empty()) {
      curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, opts_.pinned_public_key.c_str());
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout_ms));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 60L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 30L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  }

  base::Status Post(const HttpRequest& req, HttpResponse* resp) override {
    *resp = HttpResponse();
    if (!easy_) return Fail(resp, init_error_);
    std::string why;
    if (!IsAllowedEndpoint(req.url, &why)) return Fail(resp, "endpoint refused: " + why);

    CURL* h = easy_.get();
    SlistPtr headers;
    bool has_expect = false;
    for (const std::string& hdr : req.headers) {
      if (Lower(hdr.substr(0, 7)) == "expect:") has_expect = true;
      curl_slist* next = curl_slist_append(headers.get(), hdr.c_str());
      if (next == nullptr) return Fail(resp, "out of memory building headers");
      headers.release();
      headers.reset(next);
    }
    if (!has_expect) {  // no "Expect: 100-continue" round trip for large bodies
      curl_slist* next = curl_slist_append(headers.get(), "Expect:");
      if (next == nullptr) return Fail(resp, "out of memory building headers");
      headers.release();
      headers.reset(next);
    }

    Exchange ex;
    errbuf_[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout_ms));
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ex);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &ex);
    if (req.cancel != nullptr) {
      if (req.cancel->load()) return Fail(resp, "cancelled");
      curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
      curl_easy_setopt(h, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(req.cancel));
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    } else {
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
    }

    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, nullptr);

    // Nothing may point at this call's locals once it returns.
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, nullptr);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, nullptr);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, nullptr);

    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && ex.truncated && status > 0)) {
      std::string msg = curl_easy_strerror(rc);
      if (errbuf_[0] != '\0') msg += std::string(": ") + errbuf_;
      return Fail(resp, msg);
    }
    resp->status = static_cast<int>(status);
    resp->body = std::move(ex.body);
    if (ex.truncated) resp->error = "response body truncated at 1 MiB";
    if (!ex.retry_after.empty()) resp->retry_after_s = ParseRetryAfter(ex.retry_after, std::time(nullptr));
    return base::Status::Ok();
  }

 private:
  static base::Status Fail(HttpResponse* resp, const std::string& msg) {
    resp->status = 0;
    resp->error = msg;
    return base::Status::Network(msg);
  }

  CurlTransportOptions opts_;  // owns the strings libcurl keeps pointers to
  EasyPtr easy_;
  std::string init_error_;
  char errbuf_[CURL_ERROR_SIZE];
};

}  // namespace

uint32_t ParseRetryAfter(const std::string& value, int64_t now_s) {
  std::string v = TrimWs(value);
  if (v.empty()) return 0;
  bool digits = true;
  for (char c : v) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  if (digits) {
    uint64_t n = 0;
    for (char c : v) {
      n = n * 10 + static_cast<uint64_t>(c - '0');
      if (n > kMax) return static_cast<uint32_t>(kMax);
    }
    return static_cast<uint32_t>(n);
  }
  time_t when = curl_getdate(v.c_str(), nullptr);
  if (when == static_cast<time_t>(-1) || static_cast<int64_t>(when) <= now_s) return 0;
  uint64_t delta = static_cast<uint64_t>(static_cast<int64_t>(when) - now_s);
  return static_cast<uint32_t>(delta > kMax ? kMax : delta);
}

std::unique_ptr<HttpTransport> NewCurlTransport(const CurlTransportOptions& opts) {
  return std::make_unique<CurlTransport>(opts);
}

base::Result<std::unique_ptr<HttpTransport>> NewBuiltinTransport(const CurlTransportOptions& opts) {
  return NewCurlTransport(opts);
}

}  // namespace ferry::platform
