#include "collector/insight/ch_client.h"

#include <curl/curl.h>

#include <cstring>

namespace ferry::insight {

using base::Status;

std::string SqlQuote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '\'';
  for (char c : text) {
    if (c == '\\' || c == '\'') out += '\\';
    if (c == '\0') {
      out += "\\0";
      continue;
    }
    out += c;
  }
  out += '\'';
  return out;
}

std::string SqlList(const std::vector<std::string>& items) {
  if (items.empty()) return "('')";
  std::string out = "(";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += SqlQuote(items[i]);
  }
  return out + ")";
}

void AppendTsv(std::string* out, std::string_view field) {
  for (char c : field) {
    switch (c) {
      case '\\': *out += "\\\\"; break;
      case '\t': *out += "\\t"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\0': *out += "\\0"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default: *out += c;
    }
  }
}

void SplitTsv(std::string_view line, std::vector<std::string>* fields) {
  fields->clear();
  fields->emplace_back();
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\t') {
      fields->emplace_back();
      continue;
    }
    if (c == '\\' && i + 1 < line.size()) {
      char n = line[++i];
      switch (n) {
        case 't': c = '\t'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case '0': c = '\0'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'a': c = '\a'; break;
        case 'v': c = '\v'; break;
        default: c = n;  // \\ \' \" and anything else: the character itself
      }
    }
    fields->back() += c;
  }
}

struct ClickHouseClient::Handle {
  struct Closer {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
  };
  std::unique_ptr<CURL, Closer> easy;
};

namespace {

struct Transfer {
  CURL* easy = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
  std::string error_body;
  bool error = false;
  bool stopped = false;  // on_data asked to stop
  bool checked = false;
};

size_t OnBody(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const size_t len = size * n;
  if (!t->checked) {
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    t->error = code != 200;
    t->checked = true;
  }
  if (t->error) {
    if (t->error_body.size() < 4096) t->error_body.append(p, std::min<size_t>(len, 4096 - t->error_body.size()));
    return len;
  }
  if (*t->on_data && !(*t->on_data)(std::string_view(p, len))) {
    t->stopped = true;
    return 0;  // aborts the transfer
  }
  return len;
}

std::string Escape(CURL* h, const std::string& s) {
  char* e = curl_easy_escape(h, s.data(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

std::string FirstLine(const std::string& s) {
  size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

ClickHouseClient::ClickHouseClient(std::string base_url, std::string user, base::SecretBytes password,
                                   int64_t timeout_ms)
    : base_url_(std::move(base_url)), user_(std::move(user)), password_(std::move(password)), timeout_ms_(timeout_ms) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

ClickHouseClient::~ClickHouseClient() = default;

std::unique_ptr<ClickHouseClient::Handle> ClickHouseClient::TakeHandle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->easy.reset(curl_easy_init());
  return h;
}

void ClickHouseClient::ReturnHandle(std::unique_ptr<Handle> h) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 8) idle_.push_back(std::move(h));
}

Status ClickHouseClient::Post(const std::string& query_in_url, const std::string& body, const Settings& settings,
                              const std::function<bool(std::string_view)>& on_data, std::string* error_body) {
  auto handle = TakeHandle();
  CURL* h = handle->easy.get();
  if (h == nullptr) return Status::Internal("curl_easy_init failed");
  curl_easy_reset(h);
  std::string url = base_url_ + "/?";
  bool first = true;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!first) url += '&';
    first = false;
    url += Escape(h, k) + "=" + Escape(h, v);
  };
  if (!query_in_url.empty()) add("query", query_in_url);
  for (const auto& [k, v] : settings) add(k, v);
  char errbuf[CURL_ERROR_SIZE] = {0};
  Transfer t;
  t.easy = h;
  t.on_data = &on_data;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: text/plain; charset=utf-8");
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (!user_.empty()) curl_easy_setopt(h, CURLOPT_USERNAME, user_.c_str());
  std::string pw(reinterpret_cast<const char*>(password_.data()), password_.size());
  if (!pw.empty()) curl_easy_setopt(h, CURLOPT_PASSWORD, pw.c_str());  // libcurl keeps its own copy
  base::WipeString(pw);
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  ReturnHandle(std::move(handle));
  if (t.stopped) return Status::Ok();
  if (rc != CURLE_OK) {
    return Status::Unavailable("clickhouse " + base_url_ + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  if (code != 200) {
    if (error_body) *error_body = t.error_body;
    if (code == 503 || code == 502)
      return Status::Unavailable("clickhouse " + base_url_ + ": HTTP " + std::to_string(code));
    return Status::Storage("clickhouse: " + FirstLine(t.error_body));
  }
  return Status::Ok();
}

Status ClickHouseClient::Exec(const std::string& sql, const Settings& settings, std::string* out) {
  std::function<bool(std::string_view)> sink = [out](std::string_view d) {
    if (out) out->append(d);
    return true;
  };
  return Post("", sql, settings, sink, nullptr);
}

Status ClickHouseClient::Select(const std::string& sql, const std::function<bool(const std::vector<std::string>&)>& fn,
                                const Settings& settings) {
  Settings s = settings;
  s.emplace_back("wait_end_of_query", "1");  // an error in the middle of a result becomes an HTTP error
  std::string pending;
  std::vector<std::string> fields;
  bool stop = false;
  std::function<bool(std::string_view)> sink = [&](std::string_view d) {
    pending.append(d);
    size_t start = 0;
    for (;;) {
      size_t nl = pending.find('\n', start);
      if (nl == std::string::npos) break;
      SplitTsv(std::string_view(pending).substr(start, nl - start), &fields);
      start = nl + 1;
      if (!fn(fields)) {
        stop = true;
        return false;
      }
    }
    pending.erase(0, start);
    return true;
  };
  Status st = Post("", sql + " FORMAT TabSeparated", s, sink, nullptr);
  if (!st.ok() || stop) return st;
  if (!pending.empty()) {
    SplitTsv(pending, &fields);
    fn(fields);
  }
  return Status::Ok();
}

Status ClickHouseClient::Insert(const std::string& target, const std::string& tsv, const Settings& settings) {
  std::function<bool(std::string_view)> sink = [](std::string_view) { return true; };
  return Post("INSERT INTO " + target + " FORMAT TabSeparated", tsv, settings, sink, nullptr);
}

}  // namespace ferry::insight
