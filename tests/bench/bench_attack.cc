// The collector under the attacks of issue 11 (items 3 and 4), a real ferry-collector process on loopback:
//   - a legitimate batch's latency (new connection, TLS handshake when TLS, request, answer) with 2,000 idle and 200
//     trickling connections open, plain and TLS;
//   - the collector's RSS before, during (peak) and after a flood of header lines from 16 connections (120 MB each).
// With --agent, the same on a real ferry-agent: a legitimate track's latency (new connection, request, answer) over TCP
// (plain, then TLS with the handshake) and over the Unix socket with 2,000 idle + 200 trickling TCP connections open,
// and the agent's RSS during and after the header flood. The attack is written once with the attack tests
// (tests/unit/collector/attack.h). The load average is printed beside each figure (the machine is shared). Usage:
// ferry_bench_attack [--agent] [--idle N] [--trickling N] [--batches N] [--flood-mb MB]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/bench/bench_args.h"
#include "tests/integration/agent_process.h"
#include "tests/unit/collector/attack.h"

namespace {

using ferry::testsupport::CollectorOptions;
using ferry::testsupport::CollectorProcess;
namespace attack = ferry::testsupport::attack;

int Siege(bool tls, int idle, int trickling, int batches) {
  CollectorOptions o;
  o.tls = tls;
  // Deadlines stretched so that no attack connection goes away while batches are measured: the worst case.
  o.extra_args = {"--idle-timeout-s", "600", "--request-timeout-s", "600"};
  std::string err;
  auto c = CollectorProcess::Start(o, &err);
  if (!c) {
    std::fprintf(stderr, "collector: %s\n", err.c_str());
    return 1;
  }
  SSL_CTX* ctx = tls ? attack::TlsContext(*c) : nullptr;
  const char* label = tls ? "tls" : "plain";
  // Without the attack, for comparison.
  std::vector<double> quiet, loaded;
  for (int i = 0; i < batches; ++i) {
    auto b = attack::SendBatch(c->port(), ctx, c->write_key(), std::string(label) + "-quiet-" + std::to_string(i));
    if (b.status == 200) quiet.push_back(b.ms);
  }
  int failed = 0;
  double load = 0;
  {
    attack::Siege siege(c->port(), ctx, idle, trickling);
    if (!siege.ok()) {
      std::fprintf(stderr, "%s\n", siege.error().c_str());
      return 1;
    }
    double open = attack::OpenConnections(*c);
    for (int i = 0; i < batches; ++i) {
      auto b = attack::SendBatch(c->port(), ctx, c->write_key(), std::string(label) + "-siege-" + std::to_string(i));
      if (b.status == 200) {
        loaded.push_back(b.ms);
      } else {
        ++failed;
      }
    }
    load = attack::LoadAverage();
    std::printf("[%s] %d idle + %d trickling connections open (collector reports %.0f)\n", label, idle, trickling,
                open);
  }
  auto show = [&](const char* what, std::vector<double> v, double la) {
    if (v.empty()) return;
    std::sort(v.begin(), v.end());
    std::printf(
        "[%s] batch latency %s: median %.2f ms, p95 %.2f ms, max %.2f ms over %zu batches (load average %.2f)\n", label,
        what, v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 95 / 100)], v.back(), v.size(), la);
  };
  show("without attack", quiet, attack::LoadAverage());
  show("under attack", loaded, load);
  if (failed > 0) std::printf("[%s] %d batches NOT answered 200 under attack\n", label, failed);
  if (ctx) SSL_CTX_free(ctx);
  c->Stop();
  return failed > 0 ? 1 : 0;
}

int Flood(int64_t mb_each) {
  std::string err;
  CollectorOptions o;
  o.tls = false;
  auto c = CollectorProcess::Start(o, &err);
  if (!c) {
    std::fprintf(stderr, "collector: %s\n", err.c_str());
    return 1;
  }
  for (int i = 0; i < 20; ++i) attack::SendBatch(c->port(), nullptr, c->write_key(), "warm-" + std::to_string(i));
  attack::FloodResult f = attack::HeaderFlood(*c, 16, mb_each * 1000 * 1000);
  double load = attack::LoadAverage();
  std::printf(
      "[flood] 16 connections sent %.0f MB of header lines in %.1f s over %lld connections; %lld answers 431, "
      "%lld other (load average %.2f)\n",
      f.sent_bytes / 1e6, f.seconds, static_cast<long long>(f.connections), static_cast<long long>(f.answers_431),
      static_cast<long long>(f.other_answers), load);
  std::printf(
      "[flood] collector RSS: baseline %.1f MB, peak during %.1f MB (+%.1f MB), at its end %.1f MB, after "
      "%.1f MB (+%.1f MB) (load average %.2f)\n",
      f.baseline_kb / 1024.0, f.peak_kb / 1024.0, (f.peak_kb - f.baseline_kb) / 1024.0, f.end_kb / 1024.0,
      f.after_kb / 1024.0, (f.after_kb - f.baseline_kb) / 1024.0, attack::LoadAverage());
  c->Stop();
  return 0;
}

// One track on a fresh connection (TCP when unix_path is empty): the milliseconds from connect to the answer, or -1
// when it was not answered 200.
// Over TLS (the handshake included) when `tls` is set.
double TimedTrack(int port, const std::string& unix_path, SSL_CTX* tls = nullptr) {
  const std::string body = R"({"event": "bench"})";
  const std::string request =
      "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  auto t = std::chrono::steady_clock::now();
  std::string err;
  auto c = !unix_path.empty() ? ferry::httpd::testing::Conn::Unix(unix_path, 30000)
           : tls != nullptr   ? ferry::httpd::testing::Conn::Tls(port, tls, &err, 30000)
                              : ferry::httpd::testing::Conn::Tcp(port, "127.0.0.1", 30000);
  if (!c || !c->Send(request)) return -1;
  auto r = c->Read();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  return r && r->status == 200 ? ms : -1;
}

void Show(const char* label, const char* what, std::vector<double> v, double load) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  std::printf("[%s] track latency %s: median %.2f ms, p95 %.2f ms, max %.2f ms over %zu tracks (load average %.2f)\n",
              label, what, v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 95 / 100)], v.back(), v.size(), load);
}

// The agent's TCP listener plain or over TLS (a certificate made for the run), and its Unix socket.
int AgentSiege(int idle, int trickling, int tracks, bool tls) {
  std::string err;
  // Deadlines stretched so that no attack connection goes away while tracks are measured: the worst case.
  nlohmann::json config = {{"consent", {{"analytics", "granted"}}},
                           {"unix_socket", {{"path", "agent.sock"}}},
                           {"limits", {{"request_timeout_s", 600}, {"idle_timeout_s", 600}}}};
  char tmpl[] = "/tmp/ferry-bench-tls-XXXXXX";
  std::string tls_dir;
  if (tls) {
    if (mkdtemp(tmpl) == nullptr) return 1;
    tls_dir = tmpl;
    std::string out;
    if (ferry::testsupport::RunCommand(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost "
            "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
                tls_dir + "/key.pem -out " + tls_dir + "/cert.pem 2>&1",
            &out) != 0) {
      std::fprintf(stderr, "openssl: %s\n", out.c_str());
      return 1;
    }
    config["tls"] = {{"cert", tls_dir + "/cert.pem"}, {"key", tls_dir + "/key.pem"}};
  }
  auto a = ferry::testsupport::AgentProcess::Start(config, &err);
  if (!a) {
    std::fprintf(stderr, "agent: %s\n", err.c_str());
    return 1;
  }
  SSL_CTX* ctx = nullptr;
  if (tls) {
    ferry::httpd::testing::TlsClientOptions o;
    o.ca_file = tls_dir + "/cert.pem";
    ctx = ferry::httpd::testing::Conn::ClientContext(o);
    if (ctx == nullptr) return 1;
  }
  const std::string sock = a->dir() + "/agent.sock";
  std::vector<double> quiet[2], loaded[2];
  int failed = 0;
  for (int i = 0; i < tracks; ++i) {
    for (int v = 0; v < 2; ++v) {
      double ms = TimedTrack(a->port(), v ? sock : "", ctx);
      if (ms >= 0) quiet[v].push_back(ms);
    }
  }
  double quiet_load = attack::LoadAverage(), load = 0;
  {
    attack::Siege siege(a->port(), ctx, idle, trickling);
    if (!siege.ok()) {
      std::fprintf(stderr, "%s\n", siege.error().c_str());
      return 1;
    }
    for (int i = 0; i < tracks; ++i) {
      for (int v = 0; v < 2; ++v) {
        double ms = TimedTrack(a->port(), v ? sock : "", ctx);
        if (ms >= 0) {
          loaded[v].push_back(ms);
        } else {
          ++failed;
        }
      }
    }
    load = attack::LoadAverage();
    std::printf("[agent] %d idle + %d trickling %s connections open\n", idle, trickling, tls ? "TLS" : "TCP");
  }
  for (int v = 0; v < 2; ++v) {
    const char* label = v ? "agent unix" : tls ? "agent tls" : "agent tcp";
    Show(label, "without attack", quiet[v], quiet_load);
    Show(label, "under attack", loaded[v], load);
  }
  if (failed > 0) std::printf("[agent] %d tracks NOT answered 200 under attack\n", failed);
  if (ctx != nullptr) SSL_CTX_free(ctx);
  a->Stop();
  return failed > 0 ? 1 : 0;
}

int AgentFlood(int64_t mb_each) {
  std::string err;
  auto a = ferry::testsupport::AgentProcess::Start({{"consent", {{"analytics", "granted"}}}}, &err);
  if (!a) {
    std::fprintf(stderr, "agent: %s\n", err.c_str());
    return 1;
  }
  for (int i = 0; i < 20; ++i) TimedTrack(a->port(), "");
  attack::FloodResult f = attack::HeaderFlood(a->port(), a->pid(), 16, mb_each * 1000 * 1000);
  double load = attack::LoadAverage();
  std::printf(
      "[agent flood] 16 connections sent %.0f MB of header lines in %.1f s over %lld connections; %lld answers 431, "
      "%lld other (load average %.2f)\n",
      f.sent_bytes / 1e6, f.seconds, static_cast<long long>(f.connections), static_cast<long long>(f.answers_431),
      static_cast<long long>(f.other_answers), load);
  std::printf(
      "[agent flood] agent RSS: baseline %.1f MB, peak during %.1f MB (+%.1f MB), at its end %.1f MB, after "
      "%.1f MB (+%.1f MB) (load average %.2f)\n",
      f.baseline_kb / 1024.0, f.peak_kb / 1024.0, (f.peak_kb - f.baseline_kb) / 1024.0, f.end_kb / 1024.0,
      f.after_kb / 1024.0, (f.after_kb - f.baseline_kb) / 1024.0, attack::LoadAverage());
  a->Stop();
  return 0;
}

}  // namespace

constexpr const char* kUsage =
    "usage: ferry_bench_attack [--agent] [--idle N] [--trickling N] [--batches N] [--flood-mb MB]\n"
    "  The collector (or with --agent, the agent) under idle and trickling connections and a header flood.\n";

int main(int argc, char** argv) {
  ferry::bench::CheckArgs(argc, argv, kUsage, {"--agent"}, {"--idle", "--trickling", "--batches", "--flood-mb"});
  int idle = 2000, trickling = 200, batches = 20;
  int64_t flood_mb = 120;
  bool agent = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--agent")) agent = true;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--agent")) {
      --i;
      continue;
    }
    if (!std::strcmp(argv[i], "--idle"))
      idle = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--trickling"))
      trickling = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--batches"))
      batches = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--flood-mb"))
      flood_mb = std::atoll(argv[i + 1]);
  }
  if (ferry::httpd::testing::RaiseFileLimit() < 2 * (idle + trickling) + 500) {
    std::fprintf(stderr, "the file descriptor limit is too low\n");
    return 1;
  }
  if (agent)
    return AgentSiege(idle, trickling, batches, false) | AgentSiege(idle, trickling, batches, true) |
           AgentFlood(flood_mb);
  int rc = Siege(false, idle, trickling, batches);
  rc |= Siege(true, idle, trickling, batches);
  rc |= Flood(flood_mb);
  return rc;
}
