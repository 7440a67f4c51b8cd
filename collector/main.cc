// ferry-collector: the ingest server (see docs/COLLECTOR.md).
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "collector/analysis/insight_api.h"
#include "collector/analysis/wiring.h"
#include "collector/engines/open_store.h"
#include "collector/http/server.h"
#include "lib/base/log.h"
#include "lib/cipher/page_cipher.h"
#include "lib/net/address.h"
#include "platform/heap.h"

namespace {

using ferry::collector::CollectorServer;
using ferry::collector::ServerOptions;

}  // namespace

int main(int argc, char** argv) {
  umask(077);  // the store, its key and the port file are for the owner only
  CLI::App app{"ferry-collector: receives event batches (POST /v1/batch) and stores them encrypted."};
  std::string listen = "127.0.0.1:8443";
  std::string data_dir, tls_cert, tls_key, storage = "sqlite", key_file, fault_plan;
  ServerOptions opts;
  double max_compressed_kib = static_cast<double>(opts.limits.max_compressed_bytes) / 1024;
  double max_decompressed_kib = static_cast<double>(opts.limits.max_decompressed_bytes) / 1024;
  double max_event_kib = static_cast<double>(opts.limits.max_event_bytes) / 1024;
  size_t max_batch_events = opts.limits.max_batch_events;
  app.set_version_flag("--version", "ferry-collector " FERRY_PROJECT_VERSION);
  app.set_config("--config", "", "Read options from an INI/TOML file (keys are the long option names)");
  app.add_option("--listen", listen, "host:port to listen on; port 0 picks a free port")->capture_default_str();
  app.add_option("--data-dir", data_dir, "Directory of the embedded store (created if missing)")->required();
  app.add_option("--tls-cert", tls_cert, "PEM certificate (chain) for HTTPS");
  app.add_option("--tls-key", tls_key, "PEM private key for HTTPS");
  app.add_option("--storage", storage,
                 "Storage backend: sqlite (embedded, encrypted) or postgresql://... (docs/POSTGRES.md)")
      ->capture_default_str();
  ferry::collector::StoreConfig store_config;
  app.add_option("--pg-pool-size", store_config.pg_pool_size, "PostgreSQL: most connections")->capture_default_str();
  app.add_option("--ingest-writers", opts.ingest_writers,
                 "Group-commit writer threads; 0: one on the embedded store (it writes one transaction at a time), "
                 "two on PostgreSQL")
      ->capture_default_str()
      ->check(CLI::Range(0, 16));
  app.add_option("--pg-acquire-timeout-ms", store_config.pg_acquire_timeout_ms,
                 "PostgreSQL: longest wait for a free connection before answering 503")
      ->capture_default_str();
  app.add_option("--pg-statement-timeout-ms", store_config.pg_statement_timeout_ms,
                 "PostgreSQL: statement_timeout of each connection (0 = none)")
      ->capture_default_str();
  app.add_option("--pg-lock-timeout-ms", store_config.pg_lock_timeout_ms,
                 "PostgreSQL: lock_timeout of each connection (0 = none)")
      ->capture_default_str();
  std::string page_cipher = "ferry";
  app.add_option("--page-cipher", page_cipher,
                 "Embedded store's page encryption: ferry (OpenSSL contexts kept per connection) or sqlcipher "
                 "(SQLCipher's own provider); the same file format either way")
      ->check(CLI::IsMember({"ferry", "sqlcipher"}))
      ->capture_default_str();
  app.add_option("--key-file", key_file, "Store encryption key file (64 hex chars); default DIR/collector.key");
  app.add_option("--threads", opts.threads, "HTTP handler threads")->capture_default_str();
  app.add_option("--max-connections", opts.max_connections,
                 "Most open connections; more are refused with 503 (lowered to fit the file descriptor limit)")
      ->capture_default_str();
  app.add_option("--max-connections-per-source", opts.max_connections_per_source,
                 "Most open connections from one client address (0 = no cap)")
      ->capture_default_str();
  app.add_option("--request-timeout-s", opts.read_timeout_s,
                 "A request must arrive whole (headers and body) within this many seconds, else 408")
      ->capture_default_str();
  app.add_option("--idle-timeout-s", opts.keep_alive_timeout_s,
                 "Seconds a connection may stay open without sending a request")
      ->capture_default_str();
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "host:port (loopback only) of a listener of its own for /metrics and /healthz without a token; "
                 "the main listener's /metrics then always needs an operator token");
  app.add_option("--rate-limit", opts.rate_limit, "Requests per second per write key (0 = unlimited)")
      ->capture_default_str();
  app.add_option("--rate-burst", opts.rate_burst, "Token bucket size per write key (default = --rate-limit)");
  app.add_option("--forget-rate-limit", opts.forget_rate_limit,
                 "POST /v1/forget calls per second per write key (0 = unlimited)")
      ->capture_default_str();
  app.add_option("--forget-rate-burst", opts.forget_rate_burst, "Token bucket size of the forget limit")
      ->capture_default_str();
  app.add_option("--max-body-kib", max_compressed_kib, "Largest request body as sent (KiB)")->capture_default_str();
  app.add_option("--max-decoded-kib", max_decompressed_kib, "Largest decoded body (KiB)")->capture_default_str();
  app.add_option("--max-event-kib", max_event_kib, "Largest serialised event (KiB)")->capture_default_str();
  app.add_option("--max-batch-events", max_batch_events, "Most events in one batch")->capture_default_str();
  double due_days = 15, retention_days = 395, retention_interval_s = 3600, consent_keep_days = 365,
         outbox_keep_days = 30;
  app.add_option("--request-due-days", due_days, "Days to answer a data-subject request (due date in the register)")
      ->capture_default_str();
  app.add_option("--retention-days", retention_days,
                 "Default maximum event age in days (fractions allowed; 0 keeps events forever)")
      ->capture_default_str();
  app.add_option("--retention-interval-s", retention_interval_s, "Seconds between retention purges")
      ->capture_default_str();
  app.add_option("--outbox-keep-days", outbox_keep_days,
                 "Days the downstream outbox keeps entries every consumer acknowledged and deliveries delivered "
                 "(0 keeps them forever; unacknowledged entries are never pruned)")
      ->capture_default_str();
  app.add_option("--consent-keep-days", consent_keep_days,
                 "Days a consent record is kept beyond the newest event it covered (it is kept while any stored event "
                 "names it); per project: ferryctl projects set-consent-keep")
      ->capture_default_str();
  double past_days = 400, future_s = 600, refusal_interval_s = 60;
  app.add_option("--event-past-days", past_days,
                 "Event times further back than this before their arrival are clamped and flagged (0: no bound)")
      ->capture_default_str();
  app.add_option("--consent-default", opts.consent_default,
                 "Consent enforcement at ingest for a project without its own policy: enforce or report-only "
                 "(ferryctl projects set-consent)")
      ->check(CLI::IsMember({"enforce", "report-only"}))
      ->capture_default_str();
  app.add_option("--event-future-s", future_s,
                 "Event times further ahead than this after their arrival are clamped and flagged (0: no bound)")
      ->capture_default_str();
  app.add_option("--admin-refusal-rate", opts.admin.refusal_rate,
                 "Refused admin calls per second a source address may make before it gets 429 (0: no limit)")
      ->capture_default_str();
  app.add_option("--admin-refusal-burst", opts.admin.refusal_burst, "Refused admin calls a source may make at once")
      ->capture_default_str();
  app.add_option("--audit-refusal-interval-s", refusal_interval_s,
                 "Refused admin calls are audited as one entry per source and this interval")
      ->capture_default_str();
  app.add_option("--erase-chunk-rows", opts.rights.erase_chunk_rows,
                 "Embedded store: events an erasure deletes per transaction ahead of its last one (0: sized to ~30 ms "
                 "each, so ingest "
                 "never waits longer for one)")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}))
      ->capture_default_str();
  app.add_option("--fault-plan", fault_plan,
                 "TEST ONLY: JSON list of answers to give to the next /v1/batch requests, e.g. "
                 "[503, {\"status\":429,\"retry_after\":1}, \"reset\"] (also FERRY_COLLECTOR_FAULT_PLAN=FILE)");
  std::vector<std::string> webhooks;
  app.add_option("--webhook", webhooks,
                 "NAME=URL: push every erasure, rectification and restriction there, signed (Ed25519) and retried "
                 "(https://, or http:// to a loopback address); repeatable");
  double webhook_retry_ms = 1000;
  app.add_option("--webhook-retry-ms", webhook_retry_ms,
                 "The wait before a failed webhook delivery's first retry "
                 "(doubling after each, at most an hour)")
      ->capture_default_str();
  std::string insight_spec = "off", insight_config;
  app.add_option("--insight", insight_spec,
                 "Operations insight (docs/INSIGHT.md): off, embedded (DATA_DIR/insight.db) or "
                 "clickhouse://HOST:PORT[,HOST:PORT...][?cluster=NAME&database=DB&user=U]")
      ->capture_default_str();
  app.add_option("--insight-config", insight_config, "JSON configuration of the insight (tags, lifecycle rules, ...)");
  int insight_feed_nice = ferry::collector::analysis::FeedOptions().feed_nice;
  app.add_option("--insight-feed-nice", insight_feed_nice,
                 "Nice value of the thread that hands accepted events to the insight (0-19; 0 = the collector's own "
                 "priority). Above 0 ingest comes first on busy cores and the feed catches up in the gaps; nothing "
                 "is lost (docs/INSIGHT.md, \"Wiring\")")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  std::string console = "on";
  app.add_option("--console", console, "The officer's console at /console/ on the main listener (docs/CONSOLE.md)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  std::string public_requests = "off";
  app.add_option("--public-requests", public_requests,
                 "Public intake for the self-service page: POST /v1/public/requests and the app's verification code "
                 "(docs/PROTOCOL.md \"Public intake\")")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  int64_t public_code_ttl_s = 600;
  app.add_option("--public-code-ttl-s", public_code_ttl_s, "How long an app's verification code stays valid, seconds")
      ->check(CLI::Range(int64_t{1}, int64_t{3600}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help, --version: 0; a bad command line: 2 (not CLI11's 100-114)
  }

  ferry::base::Logger log = ferry::base::Logger::Stderr("collector");
  if (!ferry::net::SplitHostPort(listen, &opts.host, &opts.port)) {
    std::fprintf(stderr, "ferry-collector: bad --listen %s (want host:port)\n", listen.c_str());
    return 2;
  }
  if (!metrics_listen.empty()) {
    if (!ferry::net::SplitHostPort(metrics_listen, &opts.metrics_host, &opts.metrics_port) ||
        !ferry::net::IsLoopbackHost(opts.metrics_host)) {
      std::fprintf(stderr, "ferry-collector: bad --metrics-listen %s (want a loopback host:port)\n",
                   metrics_listen.c_str());
      return 2;
    }
  }
  if (opts.read_timeout_s <= 0 || opts.keep_alive_timeout_s <= 0 || opts.max_connections == 0) {
    std::fprintf(stderr, "ferry-collector: --request-timeout-s, --idle-timeout-s and --max-connections must be > 0\n");
    return 2;
  }
  if (tls_cert.empty() != tls_key.empty()) {
    std::fprintf(stderr, "ferry-collector: --tls-cert and --tls-key go together\n");
    return 2;
  }
  opts.console = console == "on";
  opts.public_requests = public_requests == "on";
  opts.public_options.code_ttl_ms = public_code_ttl_s * 1000;
  opts.tls_cert = tls_cert;
  opts.tls_key = tls_key;
  if (tls_cert.empty()) {
    if (!ferry::net::IsLoopbackHost(opts.host)) {
      std::fprintf(stderr, "ferry-collector: refusing plain HTTP on non-loopback %s; give --tls-cert/--tls-key\n",
                   opts.host.c_str());
      return 2;
    }
    log.Warn("no TLS certificate given: serving plain HTTP on loopback only");
  }
  if (storage != "sqlite" && !(ferry::collector::IsPostgresStorage(storage) && ferry::collector::PostgresAvailable())) {
    std::fprintf(stderr, "ferry-collector: storage '%s' is not available in this build (use sqlite%s)\n",
                 ferry::collector::RedactStorage(storage).c_str(),
                 ferry::collector::PostgresAvailable() ? " or postgresql://..." : "");
    return 2;
  }
  opts.limits.max_compressed_bytes = static_cast<size_t>(max_compressed_kib * 1024);
  opts.limits.max_decompressed_bytes = static_cast<size_t>(max_decompressed_kib * 1024);
  opts.limits.max_event_bytes = static_cast<size_t>(max_event_kib * 1024);
  opts.limits.max_batch_events = max_batch_events;
  if (due_days <= 0 || retention_days < 0 || retention_interval_s <= 0 || consent_keep_days < 0) {
    std::fprintf(stderr,
                 "ferry-collector: --request-due-days and --retention-interval-s must be > 0, "
                 "--retention-days and --consent-keep-days >= 0\n");
    return 2;
  }
  constexpr double kDayMs = 24.0 * 3600 * 1000;
  opts.rights.request_due_ms = static_cast<int64_t>(due_days * kDayMs);
  opts.retention_max_age_ms = static_cast<int64_t>(retention_days * kDayMs);
  opts.retention_interval_ms = static_cast<int64_t>(retention_interval_s * 1000);
  opts.outbox_keep_ms = outbox_keep_days > 0 ? static_cast<int64_t>(outbox_keep_days * kDayMs) : 0;
  for (const auto& spec : webhooks) {
    auto w = ferry::collector::ParseWebhook(spec);
    if (!w.ok()) {
      std::fprintf(stderr, "ferry-collector: %s\n", w.status().message().c_str());
      return 2;
    }
    opts.webhooks.push_back(*w);
  }
  if (webhook_retry_ms <= 0) {
    std::fprintf(stderr, "ferry-collector: --webhook-retry-ms must be > 0\n");
    return 2;
  }
  opts.webhook.first_retry_ms = static_cast<int64_t>(webhook_retry_ms);
  opts.webhook.poll_ms = std::min<int64_t>(1000, opts.webhook.first_retry_ms);
  opts.consent_keep_ms = static_cast<int64_t>(consent_keep_days * kDayMs);
  if (past_days < 0 || future_s < 0 || refusal_interval_s <= 0) {
    std::fprintf(stderr,
                 "ferry-collector: --event-past-days and --event-future-s must be >= 0, "
                 "--audit-refusal-interval-s > 0\n");
    return 2;
  }
  opts.event_time.max_past_ms = static_cast<int64_t>(past_days * kDayMs);
  opts.event_time.max_future_ms = static_cast<int64_t>(future_s * 1000);
  opts.rights.refusals.interval_ms = static_cast<int64_t>(refusal_interval_s * 1000);

  // SIGTERM/SIGINT are taken by a dedicated thread (sigwait); every other thread inherits the blocked mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Each request's memory reused by the next instead of mapped afresh (platform/heap.h).
  if (ferry::base::Status heap = ferry::platform::KeepFreedHeapForReuse(); !heap.ok()) {
    log.Info("heap: " + heap.ToString());
  }
  if (page_cipher == "ferry") {
    ferry::base::Status cipher = ferry::cipher::InstallPageCipher();
    if (!cipher.ok()) log.Warn("page cipher: " + cipher.ToString());
  } else {
    log.Info("page cipher: SQLCipher's own provider (--page-cipher sqlcipher)");
  }
  store_config.storage = storage;
  store_config.data_dir = data_dir;
  store_config.key_file = key_file;
  store_config.log = ferry::base::Logger::Stderr("store");
  auto store = ferry::collector::MakeStore(store_config);
  if (!store.ok()) {
    std::fprintf(stderr, "ferry-collector: cannot open the store (%s): %s\n",
                 storage == "sqlite" ? data_dir.c_str() : ferry::collector::RedactStorage(storage).c_str(),
                 store.status().ToString().c_str());
    return 1;
  }

  // The operations insight: fed by ingest after each commit, erased with every erasure, asked by the admin API.
  std::unique_ptr<ferry::collector::analysis::StorePrivacyView> privacy;
  std::unique_ptr<ferry::insight::Insight> insight;
  std::unique_ptr<ferry::collector::analysis::InsightFeed> feed;
  if (ferry::collector::analysis::InsightEnabled(insight_spec)) {
    privacy = std::make_unique<ferry::collector::analysis::StorePrivacyView>(store->get(), store->get(), store->get());
    ferry::collector::analysis::InsightSetup setup;
    setup.spec = insight_spec;
    setup.data_dir = data_dir;
    setup.config_file = insight_config;
    setup.privacy = privacy.get();
    setup.audit = ferry::collector::analysis::ApiAuditHook();
    setup.log = ferry::base::Logger::Stderr("insight");
    auto opened = ferry::collector::analysis::OpenInsight(setup);
    if (!opened.ok()) {
      std::fprintf(stderr, "ferry-collector: cannot open the insight: %s\n", opened.status().ToString().c_str());
      return 1;
    }
    insight = std::move(opened).value();
    ferry::collector::analysis::FeedOptions feed_options;
    feed_options.position_file = data_dir + "/insight.position";
    feed_options.engine_key = insight_spec;
    feed_options.feed_nice = insight_feed_nice;
    feed = std::make_unique<ferry::collector::analysis::InsightFeed>(store->get(), store->get(), insight.get(), log,
                                                                     feed_options);
    if (ferry::base::Status started = feed->Start(); !started.ok()) {
      std::fprintf(stderr, "ferry-collector: cannot start the insight feed: %s\n", started.ToString().c_str());
      return 1;
    }
    opts.insight = insight.get();
    opts.ingest_sink = feed.get();
    ferry::insight::Insight* in = insight.get();
    ferry::collector::analysis::InsightFeed* fd = feed.get();
    // Questions wait (at most 5 s) until the events accepted before them reached the engine's input.
    in->SetInputBarrier([fd] { fd->WaitHandedOver(5000); });
    opts.rights.on_erased = [fd, log](const std::string& project, const std::vector<std::string>& ids) {
      ferry::base::Status s = fd->Erase(project, ids);
      if (!s.ok()) log.Error("insight: erasure failed: " + s.ToString());
    };
    // A restriction or objection put in force or lifted reaches the insight (issue 13).
    ferry::collector::Restrictions* restrictions = store->get();
    opts.rights.on_restricted = [in, restrictions, log](const std::string& project, const std::vector<std::string>& ids,
                                                        const std::vector<std::string>& purposes, const std::string&,
                                                        bool restricted) {
      ferry::base::Status s =
          ferry::collector::analysis::FollowRestriction(in, restrictions, project, ids, purposes, restricted);
      if (!s.ok())
        log.Error(std::string("insight: ") + (restricted ? "restriction" : "lift") + " failed: " + s.ToString());
    };
    // A retention purge reaches the insight: the same maximum ages, whole days.
    ferry::collector::Store* st = store->get();
    const int64_t default_age = opts.retention_max_age_ms;
    opts.on_retention_purged = [in, st, default_age, log](int64_t now_ms) {
      auto ages = st->Retention();
      ferry::base::Status s = ages.ok() ? in->PurgeExpired(now_ms, default_age, *ages) : ages.status();
      if (s.ok()) {
        log.Info("insight: retention purge done");
      } else {
        log.Error("insight: retention purge failed: " + s.ToString());
      }
    };
    log.Info(std::string("insight on: ") + in->engine().name());
  }
  // Housekeeping of the insight (ClickHouse: ends the exclusions of completed erasures).
  std::mutex maintain_mu;
  std::condition_variable maintain_cv;
  bool maintain_stop = false;
  std::thread maintainer([&] {
    if (!insight) return;
    std::unique_lock<std::mutex> lock(maintain_mu);
    while (!maintain_cv.wait_for(lock, std::chrono::seconds(10), [&] { return maintain_stop; })) {
      lock.unlock();
      ferry::base::Status s = insight->Maintain();
      if (!s.ok()) log.Warn("insight: maintenance: " + s.ToString());
      lock.lock();
    }
  });
  struct StopMaintainer {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& stop;
    std::thread& t;
    ~StopMaintainer() {
      {
        std::lock_guard<std::mutex> lock(mu);
        stop = true;
      }
      cv.notify_all();
      t.join();
    }
  } stop_maintainer{maintain_mu, maintain_cv, maintain_stop, maintainer};

  CollectorServer server(opts, store->get(), log);
  if (const char* env = std::getenv("FERRY_COLLECTOR_FAULT_PLAN"); env != nullptr && fault_plan.empty()) {
    fault_plan = env;
  }
  if (!fault_plan.empty()) {
    ferry::base::Status s = server.faults().LoadFile(fault_plan);
    if (!s.ok()) {
      std::fprintf(stderr, "ferry-collector: %s\n", s.ToString().c_str());
      return 2;
    }
    log.Warn("fault injection is ON (test only): " + std::to_string(server.faults().Remaining()) + " answers queued");
  }
  auto port = server.Bind();
  if (!port.ok()) {
    std::fprintf(stderr, "ferry-collector: %s\n", port.status().ToString().c_str());
    return 1;
  }
  {
    std::string tmp = data_dir + "/collector.port.tmp";
    std::ofstream(tmp) << *port << "\n";
    std::rename(tmp.c_str(), (data_dir + "/collector.port").c_str());
  }
  std::string shown_host = opts.host.find(':') != std::string::npos ? "[" + opts.host + "]" : opts.host;
  if (server.metrics_port() > 0) {
    std::string tmp = data_dir + "/collector.metrics-port.tmp";
    std::ofstream(tmp) << server.metrics_port() << "\n";
    std::rename(tmp.c_str(), (data_dir + "/collector.metrics-port").c_str());
    std::string mhost =
        opts.metrics_host.find(':') != std::string::npos ? "[" + opts.metrics_host + "]" : opts.metrics_host;
    std::fprintf(stderr, "metrics on http://%s:%d/metrics\n", mhost.c_str(), server.metrics_port());
  }
  std::fprintf(stderr, "listening on %s://%s:%d\n", server.tls() ? "https" : "http", shown_host.c_str(), *port);
  if (opts.console && ferry::collector::ConsoleBuiltIn()) {
    std::fprintf(stderr, "console at %s://%s:%d/console/\n", server.tls() ? "https" : "http", shown_host.c_str(),
                 *port);
  }
  std::fflush(stderr);

  std::thread signals([&server, &sigs, &log] {
    int sig = 0;
    sigwait(&sigs, &sig);
    log.Info(std::string("signal ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ": stopping");
    server.Stop();
  });
  ferry::base::Status served = server.Serve();
  // Wake the signal thread if the server stopped by itself.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  if (feed) {
    // Hands over what is queued, waits for the engine and saves the feed's position (what is not delivered by then
    // is replayed from the store at the next start).
    ferry::base::Status flushed = feed->Stop(10000);
    if (!flushed.ok()) log.Warn("insight: not everything reached the engine: " + flushed.ToString());
  }
  store->reset();  // closes the database cleanly after the writer drained
  std::remove((data_dir + "/collector.port").c_str());
  std::remove((data_dir + "/collector.metrics-port").c_str());
  if (!served.ok()) {
    log.Error(served.ToString());
    return 1;
  }
  log.Info("stopped");
  return 0;
}
