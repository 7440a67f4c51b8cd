// ferry-agent: the Ferry pipeline as a daemon for edge devices (docs/AGENT.md).
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/http_front.h"
#include "ferry/ferry.h"
#include "lib/base/log.h"
#include "lib/cipher/page_cipher.h"
#include "lib/net/address.h"

namespace {

using ferry::agent::Agent;
using ferry::agent::AgentConfig;
using ferry::agent::HttpFront;

ferry::base::LogLevel LevelFromName(const std::string& s) {
  if (s == "debug") return ferry::base::LogLevel::kDebug;
  if (s == "warn") return ferry::base::LogLevel::kWarn;
  if (s == "error") return ferry::base::LogLevel::kError;
  return ferry::base::LogLevel::kInfo;
}

}  // namespace

int main(int argc, char** argv) {
  umask(077);  // buffer, key and port file for the owner only; the socket's mode is set from the config
  CLI::App app{
      "ferry-agent: takes events from local apps and pages (HTTP on loopback, a Unix socket) and runs them through "
      "Ferry's pipeline: consent gate, PII masking, encrypted buffer, upload to a collector.\n"
      "Signals: SIGTERM/SIGINT flush (bounded by shutdown_timeout_ms) and exit 0; SIGHUP reloads the config."};
  std::string config_path;
  bool check_only = false;
  app.add_option("--config", config_path, "The agent.json file (docs/AGENT.md)")->required();
  app.add_flag("--check-config", check_only, "Check the config file and exit (0 = valid)");
  app.set_version_flag("--version", std::string("ferry-agent ") + ferry::agent::kAgentVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help, --version: 0; a bad command line: 2 (not CLI11's 100-114)
  }

  auto loaded = ferry::agent::LoadConfig(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "ferry-agent: bad config: %s\n", loaded.status().message().c_str());
    return 2;
  }
  AgentConfig cfg = std::move(loaded).value();
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  ferry::base::Logger log = ferry::base::Logger::Stderr("agent", LevelFromName(cfg.log_level));

  // SIGTERM, SIGINT and SIGHUP are taken by sigwait below; every thread started later inherits the blocked mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The buffer's pages encrypted with OpenSSL contexts kept per connection (the same file format).
  ferry::base::Status cipher = ferry::cipher::InstallPageCipher();
  if (!cipher.ok()) log.Warn("page cipher: " + cipher.ToString());
  auto opened = Agent::Open(cfg, log);
  if (!opened.ok()) {
    log.Error("cannot open the buffer " + cfg.storage_path + ": " + opened.status().ToString());
    return 1;
  }
  std::unique_ptr<Agent> agent = std::move(opened).value();
  HttpFront front(agent.get(), log);
  ferry::base::Status bound = front.Bind(cfg);
  if (!bound.ok()) {
    log.Error(bound.ToString());
    return 1;
  }
  if (!cfg.port_file.empty()) {
    std::string tmp = cfg.port_file + ".tmp";
    std::ofstream(tmp) << front.tcp_port() << "\n";
    std::rename(tmp.c_str(), cfg.port_file.c_str());
  }
  if (!cfg.listen.empty()) {
    log.Info(std::string("listening on ") + (cfg.tls_cert.empty() ? "http" : "https") + "://" +
             ferry::net::JoinHostPort(cfg.listen_host, front.tcp_port()) +
             (cfg.local_token.empty() ? "" : " (local token required)"));
  }
  if (!cfg.unix_socket_path.empty()) log.Info("listening on unix:" + cfg.unix_socket_path);
  log.Info(cfg.upstream_url.empty() ? std::string("no upstream: events stay in the buffer")
                                    : "upstream " + cfg.upstream_url);

  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      auto next = ferry::agent::LoadConfig(config_path);
      if (!next.ok()) {
        log.Error("reload refused, keeping the running config: " + next.status().message());
        continue;
      }
      ferry::base::Status s = agent->Reload(std::move(next).value());
      if (!s.ok()) {
        log.Error("reload failed, keeping the running config: " + s.ToString());
        continue;
      }
      front.SetPolicy(agent->config());
      log.Info("config reloaded from " + config_path);
      continue;
    }
    log.Info(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") + ": flushing for at most " +
             std::to_string(cfg.shutdown_timeout_ms) + " ms, then stopping");
    break;
  }
  front.Stop();
  ferry::base::Status closed = agent->Shutdown(agent->config().shutdown_timeout_ms);
  if (!closed.ok()) {
    log.Warn("stopped with events still buffered (sent after the next start): " + closed.message());
  } else if (cfg.upstream_url.empty()) {
    log.Info("stopped; events stay in the buffer (no upstream)");
  } else {
    log.Info("stopped; everything sendable was delivered");
  }
  return 0;
}
