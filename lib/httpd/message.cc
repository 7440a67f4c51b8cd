// Headers, requests, responses and the text of answers: everything of ferry_httpd that needs no Boost.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>

#include "lib/httpd/detail.h"
#include "lib/httpd/httpd.h"
#include "lib/wire/http_status.h"

namespace ferry::httpd {

namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool StatusHasBody(int status) { return status >= 200 && status != 204 && status != 304; }

}  // namespace

// ---- Headers, Request, Response ---------------------------------------------------------------------------------

const std::string* Headers::Find(std::string_view name) const {
  for (const Field& f : fields_) {
    if (detail::EqualsIgnoreCase(f.first, name)) return &f.second;
  }
  return nullptr;
}

std::string Headers::Get(std::string_view name, std::string_view fallback) const {
  const std::string* v = Find(name);
  return v ? *v : std::string(fallback);
}

size_t Headers::Count(std::string_view name) const {
  size_t n = 0;
  for (const Field& f : fields_) n += detail::EqualsIgnoreCase(f.first, name) ? 1 : 0;
  return n;
}

void Headers::Set(std::string name, std::string value) {
  Remove(name);
  fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::Remove(std::string_view name) {
  std::vector<Field> kept;
  kept.reserve(fields_.size());
  for (Field& f : fields_) {
    if (!detail::EqualsIgnoreCase(f.first, name)) kept.push_back(std::move(f));
  }
  fields_ = std::move(kept);
}

std::optional<std::string> Request::Query(std::string_view name) const {
  for (const auto& kv : query) {
    if (kv.first == name) return kv.second;
  }
  return std::nullopt;
}

std::string Request::Param(std::string_view name) const {
  for (const auto& kv : params) {
    if (kv.first == name) return kv.second;
  }
  return std::string();
}

Response Response::Text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.Add("Content-Type", std::move(content_type));
  return r;
}

Response Response::Json(int status, std::string body) { return Text(status, std::move(body), "application/json"); }

Response Response::Error(int status, std::string_view reason) {
  return Json(status, wire::ErrorBody(wire::CodeForHttpStatus(status), reason));
}

std::string RenderStats(const Stats& s, std::string_view prefix) {
  std::string p(prefix);
  std::string out;
  auto line = [&](const std::string& name, const std::string& labels, int64_t v) {
    out += p + "_" + name + labels + " " + std::to_string(v) + "\n";
  };
  auto type = [&](const std::string& name, const char* t) { out += "# TYPE " + p + "_" + name + " " + t + "\n"; };
  type("connections_open", "gauge");
  line("connections_open", "", s.connections_open);
  type("connections_accepted_total", "counter");
  line("connections_accepted_total", "", s.connections_accepted);
  type("connections_refused_total", "counter");
  line("connections_refused_total", "{reason=\"cap\"}", s.connections_refused);
  line("connections_refused_total", "{reason=\"per_source\"}", s.connections_refused_per_source);
  type("connections_reclaimed_total", "counter");
  line("connections_reclaimed_total", "", s.connections_reclaimed);
  type("accept_errors_total", "counter");
  line("accept_errors_total", "", s.accept_errors);
  type("tls_handshake_failures_total", "counter");
  line("tls_handshake_failures_total", "", s.tls_handshake_failures);
  type("idle_timeouts_total", "counter");
  line("idle_timeouts_total", "", s.idle_timeouts);
  type("responses_total", "counter");
  for (int c = 0; c < 5; ++c) {
    line("responses_total", "{class=\"" + std::to_string(c + 1) + "xx\"}", s.requests_by_class[c]);
  }
  type("refusals_total", "counter");
  line("refusals_total", "{reason=\"header_too_large\"}", s.refused_header_too_large);
  line("refusals_total", "{reason=\"timeout\"}", s.refused_timeout);
  line("refusals_total", "{reason=\"body_too_large\"}", s.refused_body_too_large);
  line("refusals_total", "{reason=\"misdirected\"}", s.refused_misdirected);
  line("refusals_total", "{reason=\"bad_request\"}", s.refused_bad_request);
  line("refusals_total", "{reason=\"queue_full\"}", s.refused_queue_full);
  type("queued_requests", "gauge");
  line("queued_requests", "", s.queued_requests);
  return out;
}

// ---- detail -----------------------------------------------------------------------------------------------------

namespace detail {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = Hex(s[i + 1]), lo = Hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out += c;
  }
  return out;
}

bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* out) {
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view part = query.substr(start, amp - start);
    if (!part.empty()) {
      size_t eq = part.find('=');
      auto name = PercentDecode(part.substr(0, eq), true);
      auto value =
          eq == std::string_view::npos ? std::optional<std::string>("") : PercentDecode(part.substr(eq + 1), true);
      if (!name || !value) return false;
      out->emplace_back(std::move(*name), std::move(*value));
    }
    start = amp + 1;
  }
  return true;
}

bool IsLoopbackAddress(std::string_view addr) {
  std::string a(addr);
  in_addr v4{};
  if (inet_pton(AF_INET, a.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
    if (std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0) return true;
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(v6.s6_addr, kMapped, sizeof kMapped) == 0 && v6.s6_addr[12] == 127;
  }
  return false;
}

bool HostAllowed(std::string_view host, const std::vector<std::string>& extra) {
  std::string_view name;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(0, close + 1);
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
  } else {
    size_t colon = host.find(':');
    name = host.substr(0, colon);
    if (colon != std::string_view::npos) port = host.substr(colon + 1);
  }
  if (name.empty() || !AllDigits(port) || port.size() > 5) return false;
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);  // "localhost." is the same name
  for (std::string_view known : {"localhost", "127.0.0.1", "[::1]"}) {
    if (EqualsIgnoreCase(name, known)) return true;
  }
  for (const std::string& e : extra) {
    std::string want = e;
    if (want.find(':') != std::string::npos && want.front() != '[') want = "[" + want + "]";  // a bare IPv6 literal
    if (EqualsIgnoreCase(name, want)) return true;
  }
  return false;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

bool IsFieldValue(std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Entity";
    case 425: return "Too Early";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

std::string ResponseHead(const Response& res, int request_version, bool keep_alive, Framing framing,
                         size_t content_length, int* dropped) {
  std::string h = "HTTP/1.1 " + std::to_string(res.status) + " " + ReasonPhrase(res.status) + "\r\n";
  for (const auto& f : res.headers) {
    if (EqualsIgnoreCase(f.first, "Content-Length") || EqualsIgnoreCase(f.first, "Transfer-Encoding") ||
        EqualsIgnoreCase(f.first, "Connection")) {
      continue;
    }
    if (!IsToken(f.first) || !IsFieldValue(f.second)) {
      if (dropped) ++*dropped;
      continue;
    }
    h += f.first;
    h += ": ";
    h += f.second;
    h += "\r\n";
  }
  if (StatusHasBody(res.status)) {
    if (framing == Framing::kLength) h += "Content-Length: " + std::to_string(content_length) + "\r\n";
    if (framing == Framing::kChunked) h += "Transfer-Encoding: chunked\r\n";
  }
  if (!keep_alive) {
    h += "Connection: close\r\n";
  } else if (request_version == 10) {
    h += "Connection: keep-alive\r\n";
  }
  h += "\r\n";
  return h;
}

std::string CannedAnswer(int status, std::string_view reason, bool close, int retry_after_s, bool head) {
  Response r = Response::Error(status, reason);
  if (retry_after_s > 0) r.headers.Add("Retry-After", std::to_string(retry_after_s));
  std::string out = ResponseHead(r, 11, !close, Framing::kLength, r.body.size(), nullptr);
  if (!head) out += r.body;
  return out;
}

}  // namespace detail

size_t ConnectionsThatFit(size_t wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return wanted;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  if (rl.rlim_cur == RLIM_INFINITY) return wanted;
  size_t fit = rl.rlim_cur > 128 ? static_cast<size_t>(rl.rlim_cur) - 64 : 64;
  return std::min(wanted, fit);
}

}  // namespace ferry::httpd
