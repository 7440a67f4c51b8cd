#include "collector/http/webhooks.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "lib/net/address.h"

namespace ferry::collector {

using base::Result;
using base::Status;

namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// One POST; the HTTP status (0 when there was no answer) and a reason for a failure.
std::pair<long, std::string> Post(const std::string& url, const std::string& body,
                                  const std::vector<std::string>& headers, int64_t timeout_ms) {
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  if (!c) return {0, "cannot start libcurl"};
  std::unique_ptr<curl_slist, SlistDeleter> list;
  for (const auto& h : headers) list.reset(curl_slist_append(list.release(), h.c_str()));
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, Discard);
  CURLcode rc = curl_easy_perform(c.get());
  long code = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK) return {0, curl_easy_strerror(rc)};
  return {code, code >= 200 && code < 300 ? std::string() : "HTTP " + std::to_string(code)};
}

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

}  // namespace

Result<rights::WebhookDestination> ParseWebhook(const std::string& spec) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq > 64) {
    return Status::InvalidArgument("--webhook wants NAME=URL (NAME: 1-64 of A-Z a-z 0-9 _ -): " + spec);
  }
  rights::WebhookDestination d{spec.substr(0, eq), spec.substr(eq + 1)};
  if (!std::all_of(d.name.begin(), d.name.end(), NameChar)) {
    return Status::InvalidArgument("--webhook NAME: 1-64 of A-Z a-z 0-9 _ -: " + d.name);
  }
  if (d.url.rfind("https://", 0) == 0) return d;
  if (d.url.rfind("http://", 0) == 0) {
    std::string rest = d.url.substr(7);
    std::string hostport = rest.substr(0, rest.find('/'));
    std::string host;
    int port = 0;
    if (net::SplitHostPort(hostport, &host, &port) && net::IsLoopbackHost(host)) return d;
  }
  return Status::InvalidArgument("--webhook URL must be https:// (http:// only to a loopback address): " + d.url);
}

WebhookDispatcher::WebhookDispatcher(const rights::Outbox* outbox, RightsTransactions* store, base::Clock* clock,
                                     WebhookOptions options, base::Logger log)
    : outbox_(outbox), store_(store), clock_(clock), opts_(options), log_(std::move(log)) {}

WebhookDispatcher::~WebhookDispatcher() { Stop(); }

void WebhookDispatcher::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (thread_.joinable() || stop_ || outbox_->webhooks().empty()) return;
  static const bool kInit = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)kInit;
  thread_ = std::thread([this] { Loop(); });
}

void WebhookDispatcher::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<int64_t> WebhookDispatcher::RunOnce() {
  // What is due, opened and signed, in one short read; the POSTs happen outside any transaction.
  struct Attempt {
    OutboxDelivery d;
    std::string url, body, signature;
  };
  int64_t now = clock_->NowMs();
  auto due =
      store_->TransactFor<std::vector<Attempt>>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<std::vector<Attempt>> {
        std::vector<Attempt> out;
        auto rows = tx.primitives().DueDeliveries(now, 100);
        if (!rows.ok()) return rows.status();
        for (auto& [entry, delivery] : *rows) {
          Attempt a;
          a.d = delivery;
          for (const auto& w : outbox_->webhooks()) {
            if (w.name == delivery.destination) a.url = w.url;
          }
          auto doc = rights::Outbox::Open(tx, entry);
          if (doc.ok()) {
            a.body = rights::Dump(*doc);
            auto sig = rights::Outbox::Sign(tx, a.body);
            if (!sig.ok()) return sig.status();
            a.signature = *sig;
          }
          out.push_back(std::move(a));
        }
        return out;
      });
  if (!due.ok()) return due.status();
  int64_t made = 0;
  for (Attempt& a : *due) {
    OutboxDelivery d = a.d;
    d.attempts += 1;
    if (a.url.empty() || a.body.empty()) {
      // A destination no longer configured, or an entry this store cannot open: nothing to retry.
      d.state = "failed";
      d.last_error = a.url.empty() ? "no such webhook configured" : "the entry cannot be opened";
    } else {
      ++made;
      auto [status, error] =
          Post(a.url, a.body,
               {"Content-Type: application/json", "X-Ferry-Signature: ed25519=" + a.signature,
                "X-Ferry-Seq: " + std::to_string(d.seq), "X-Ferry-Attempt: " + std::to_string(d.attempts)},
               opts_.timeout_ms);
      d.last_status = status;
      d.last_error = error;
      if (status >= 200 && status < 300) {
        d.state = "delivered";
        d.delivered_ms = clock_->NowMs();
      } else if (d.attempts >= opts_.max_attempts) {
        d.state = "failed";
      } else {
        int64_t wait = opts_.first_retry_ms;
        for (int64_t i = 1; i < d.attempts && wait < opts_.max_retry_ms; ++i) wait *= 2;
        d.next_ms = clock_->NowMs() + std::min(wait, opts_.max_retry_ms);
      }
    }
    Status s = store_->Transact(TxnMode::kWrite, [&](StoreTxn& tx) { return tx.primitives().UpdateDelivery(d); });
    if (!s.ok()) log_.Error("webhook " + d.destination + ": cannot record the delivery: " + s.ToString());
    if (d.state != "delivered") {
      log_.Warn("webhook " + d.destination + ": outbox entry " + std::to_string(d.seq) + " attempt " +
                std::to_string(d.attempts) + " failed (" + d.last_error + ")" +
                (d.state == "failed" ? ", giving up" : ""));
    }
  }
  return made;
}

void WebhookDispatcher::Loop() {
  for (;;) {
    auto n = RunOnce();
    if (!n.ok()) log_.Error("webhooks: " + n.status().ToString());
    int64_t next = clock_->MonotonicMs() + std::max<int64_t>(opts_.poll_ms, 10);
    std::unique_lock<std::mutex> l(mu_);
    clock_->WaitUntil(l, wake_, next, [this] { return stop_; });
    if (stop_) return;
  }
}

}  // namespace ferry::collector
