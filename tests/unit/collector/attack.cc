#include "tests/unit/collector/attack.h"

#include <sys/socket.h>

#include <chrono>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "lib/base/time.h"
#include "lib/wire/codec.h"

namespace ferry::testsupport::attack {

namespace {

using httpd::testing::Conn;
using SteadyClock = std::chrono::steady_clock;

double MsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}

std::unique_ptr<Conn> Open(int port, SSL_CTX* tls) {
  return tls ? Conn::Tls(port, tls, nullptr, 10000) : Conn::Tcp(port, "127.0.0.1", 10000);
}

}  // namespace

std::string BatchRequest(const std::string& write_key, const std::string& message_id) {
  nlohmann::json e = {{"messageId", message_id},
                      {"type", "track"},
                      {"event", "Signed Up"},
                      {"anonymousId", "anon-attack"},
                      {"timestamp", base::FormatIso8601(base::NowMs())},
                      {"purpose", "analytics"}};
  std::string body = wire::ZstdCompress(
      nlohmann::json{{"sentAt", base::FormatIso8601(base::NowMs())}, {"batch", nlohmann::json::array({e})}}.dump());
  return "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + write_key +
         "\r\nContent-Type: application/json\r\nContent-Encoding: zstd\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

double OpenConnections(const CollectorProcess& c) {
  HttpResult m = HttpRequest("GET", c.url() + "/metrics", "", {}, c.ca_file(), 10000);
  if (m.status != 200) return -1;
  return CollectorProcess::MetricValue(m.body, "ferry_collector_http_connections_open");
}

double LoadAverage() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

SSL_CTX* TlsContext(const CollectorProcess& c) {
  httpd::testing::TlsClientOptions o;
  o.ca_file = c.ca_file();
  return Conn::ClientContext(o);
}

Siege::Siege(int port, SSL_CTX* tls, int idle, int trickling) {
  for (int i = 0; i < idle && ok(); ++i) {
    idle_.push_back(Open(port, tls));
    if (!idle_.back()) error_ = "idle connection " + std::to_string(i) + " did not open";
  }
  for (int i = 0; i < trickling && ok(); ++i) {
    slow_.push_back(Open(port, tls));
    if (!slow_.back() || !slow_.back()->Send("POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ")) {
      error_ = "trickling connection " + std::to_string(i) + " did not open";
      slow_.pop_back();
    }
  }
  trickler_ = std::thread([this] {
    while (!stop_) {
      for (auto& s : slow_) s->Send("a");
      for (int i = 0; i < 50 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
}

Siege::~Siege() {
  stop_ = true;
  trickler_.join();
}

TimedBatch SendBatch(int port, SSL_CTX* tls, const std::string& write_key, const std::string& message_id) {
  TimedBatch out;
  std::string request = BatchRequest(write_key, message_id);
  auto t = SteadyClock::now();
  auto conn = Open(port, tls);
  if (!conn || !conn->Send(request)) return out;
  auto r = conn->Read();
  out.ms = MsSince(t);
  if (!r) return out;
  out.answered = true;
  out.status = r->status;
  out.body = r->body;
  return out;
}

FloodResult HeaderFlood(const CollectorProcess& c, int flooders, int64_t bytes_each, int settle_ms) {
  return HeaderFlood(c.port(), c.pid(), flooders, bytes_each, settle_ms);
}

FloodResult HeaderFlood(int port, pid_t pid, int flooders, int64_t bytes_each, int settle_ms) {
  FloodResult out;
  auto rss_kb = [pid] { return ProcessRssKb(pid); };
  out.baseline_kb = rss_kb();
  std::string lines;
  for (int i = 0; lines.size() < 64 * 1024; ++i) {
    lines += "X-Flood-" + std::to_string(i) + ": " + std::string(100, 'f') + "\r\n";
  }
  std::atomic<bool> done{false};
  std::atomic<long> peak{out.baseline_kb};
  std::thread sampler([&] {
    while (!done) {
      long r = rss_kb();
      long p = peak.load();
      while (r > p && !peak.compare_exchange_weak(p, r)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::atomic<int64_t> sent_total{0}, connections{0}, answers_431{0}, other{0};
  auto t0 = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int f = 0; f < flooders; ++f) {
    threads.emplace_back([&] {
      int64_t sent = 0;
      while (sent < bytes_each && MsSince(t0) < 120000) {
        auto conn = Conn::Tcp(port, "127.0.0.1", 2000);
        if (!conn) continue;
        ++connections;
        // No write key: the header limit answers before authentication would.
        if (!conn->Send("POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n")) continue;
        while (sent < bytes_each) {
          ssize_t n = send(conn->fd(), lines.data(), lines.size(), MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += n;
        }
        auto r = conn->Read();
        if (r) ++(r->status == 431 ? answers_431 : other);
      }
      sent_total += sent;
    });
  }
  for (auto& t : threads) t.join();
  out.seconds = MsSince(t0) / 1000;
  out.end_kb = rss_kb();
  // The heap is given back by the server's housekeeping after a burst of closed connections.
  httpd::testing::WaitUntil([&] { return rss_kb() < out.baseline_kb + 10 * 1024; }, settle_ms);
  out.after_kb = rss_kb();
  done = true;
  sampler.join();
  out.peak_kb = peak.load();
  out.sent_bytes = sent_total.load();
  out.connections = connections.load();
  out.answers_431 = answers_431.load();
  out.other_answers = other.load();
  return out;
}

}  // namespace ferry::testsupport::attack
