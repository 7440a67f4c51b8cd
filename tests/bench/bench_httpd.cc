// ferry_httpd against cpp-httplib, in one run: requests/s of a trivial handler (GET /ping -> "pong") over
// keep-alive connections, plain and TLS. The cpp-httplib server is set up as collector/http/server.cc does today
// (thread pool of 64, TCP_NODELAY, keep-alive). Both are driven by the same raw-socket clients in this process;
// rounds alternate between the servers and the median round is printed, with the load average beside it.
// Usage: ferry_bench_httpd [--clients N] [--seconds S] [--rounds R]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lib/httpd/httpd.h"
#include "tests/bench/bench_args.h"
#include "tests/unit/httpd/test_util.h"

namespace {

using ferry::httpd::testing::Conn;

double LoadAverage() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

// Requests/s of `clients` keep-alive connections sending GET /ping for `seconds` (0 when a request failed).
double Drive(int port, SSL_CTX* tls, int clients, double seconds) {
  std::atomic<int64_t> done{0};
  std::atomic<bool> failed{false}, stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      auto c = tls ? Conn::Tls(port, tls) : Conn::Tcp(port);
      if (!c) {
        failed = true;
        return;
      }
      const std::string req = "GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n";
      while (!stop) {
        if (!c->Send(req)) {
          failed = true;
          return;
        }
        auto r = c->Read();
        if (!r || r->status != 200 || r->body != "pong") {
          failed = true;
          return;
        }
        ++done;
      }
    });
  }
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return failed ? 0 : static_cast<double>(done.load()) / secs;
}

// A running server and its port; stopped when destroyed.
struct Running {
  int port = 0;
  std::function<void()> stop;
  ~Running() {
    if (stop) stop();
  }
};

std::unique_ptr<Running> StartFerry(const std::string& cert, const std::string& key, int io_threads) {
  ferry::httpd::ServerOptions o;
  o.io_threads = io_threads;
  auto s = std::make_shared<ferry::httpd::Server>(o);
  s->router().Get("/ping", [](ferry::httpd::Request&) { return ferry::httpd::Response::Text(200, "pong"); });
  ferry::httpd::ListenerOptions l = ferry::httpd::ListenerOptions::Tcp("127.0.0.1", 0);
  l.tls_cert_file = cert;
  l.tls_key_file = key;
  s->AddListener(l);
  ferry::base::Status st = s->Start();
  if (!st.ok()) {
    std::fprintf(stderr, "ferry_httpd: %s\n", st.ToString().c_str());
    return nullptr;
  }
  auto r = std::make_unique<Running>();
  r->port = s->port();
  r->stop = [s] { s->Stop(1000); };
  return r;
}

std::unique_ptr<Running> StartHttplib(const std::string& cert, const std::string& key) {
  std::shared_ptr<httplib::Server> s;
  if (cert.empty()) {
    s = std::make_shared<httplib::Server>();
  } else {
    s = std::make_shared<httplib::SSLServer>(cert.c_str(), key.c_str());
  }
  // As collector/http/server.cc configures it.
  s->new_task_queue = [] { return new httplib::ThreadPool(64); };
  s->set_tcp_nodelay(true);
  s->set_keep_alive_max_count(1000000);
  s->set_keep_alive_timeout(5);
  s->set_read_timeout(10, 0);
  s->set_write_timeout(10, 0);
  s->Get("/ping", [](const httplib::Request&, httplib::Response& res) { res.set_content("pong", "text/plain"); });
  int port = s->bind_to_any_port("127.0.0.1");
  if (port <= 0) return nullptr;
  auto th = std::make_shared<std::thread>([s] { s->listen_after_bind(); });
  while (!s->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto r = std::make_unique<Running>();
  r->port = port;
  r->stop = [s, th] {
    s->stop();
    th->join();
  };
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

constexpr const char* kUsage =
    "usage: ferry_bench_httpd [--clients N] [--seconds S] [--rounds R]\n"
    "  ferry_httpd against cpp-httplib, a trivial handler over keep-alive connections, plain and TLS.\n";

int main(int argc, char** argv) {
  ferry::bench::CheckArgs(argc, argv, kUsage, {}, {"--clients", "--seconds", "--rounds"});
  int clients = 8, rounds = 3;
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--clients") clients = std::atoi(argv[i + 1]);
    if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
  }
  ferry::httpd::testing::TempDir dir;
  ferry::httpd::testing::Pki pki = ferry::httpd::testing::MakePki(dir.path());
  if (!pki.ok) return 1;
  ferry::httpd::testing::TlsClientOptions co;
  co.ca_file = pki.ca;
  SSL_CTX* ctx = Conn::ClientContext(co);

  struct Case {
    const char* name;
    bool tls;
    std::function<std::unique_ptr<Running>()> start;
    std::vector<double> rps;
    std::vector<double> load;  // the load average right after each round
  };
  std::vector<Case> cases = {
      {"ferry_httpd (1 io thread)  plain", false, [] { return StartFerry("", "", 1); }, {}, {}},
      {"ferry_httpd (2 io threads) plain", false, [] { return StartFerry("", "", 2); }, {}, {}},
      {"cpp-httplib 0.11 (pool 64) plain", false, [] { return StartHttplib("", ""); }, {}, {}},
      {"ferry_httpd (1 io thread)  TLS  ", true, [&] { return StartFerry(pki.ec_cert, pki.ec_key, 1); }, {}, {}},
      {"ferry_httpd (2 io threads) TLS  ", true, [&] { return StartFerry(pki.ec_cert, pki.ec_key, 2); }, {}, {}},
      {"cpp-httplib 0.11 (pool 64) TLS  ", true, [&] { return StartHttplib(pki.ec_cert, pki.ec_key); }, {}, {}},
  };
  std::printf("# GET /ping, %d keep-alive clients, %.1f s a round, %d rounds (median shown), %u CPUs\n", clients,
              seconds, rounds, std::thread::hardware_concurrency());
  for (int r = 0; r < rounds; ++r) {
    for (Case& c : cases) {
      auto s = c.start();
      if (!s) return 1;
      c.rps.push_back(Drive(s->port, c.tls ? ctx : nullptr, clients, seconds));
      c.load.push_back(LoadAverage());
    }
  }
  for (Case& c : cases) {
    std::printf("%s  %9.0f requests/s   (load average %.2f)\n", c.name, Median(c.rps), Median(c.load));
  }
  SSL_CTX_free(ctx);
  return 0;
}
