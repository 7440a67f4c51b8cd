// Operations insight at scale (docs/INSIGHT.md, "Figures"). Generates a synthetic stream (tools/insight_gen) and
// feeds it through Insight::Accept — to a throwaway ClickHouse server (the benchmark starts it) and to the embedded
// engine — then times the questions. Prints, each with the load average beside it:
//   - ingest: Accept's cost per event on the caller's thread (normalisation, tag matching, queueing/writing),
//   - tag evaluation cost per event (matching an arriving event against the compiled tag leaves),
//   - the ClickHouse sink's throughput (rows/s delivered from a filled queue),
//   - a 12-week retention table, RFM for all users, a 4-step funnel, lifecycle, churn risk, an audience, a profile,
//   - ClickHouse erasure: exclusion at once, and the time until the mutations have rewritten the data.
//
// Full size (the figures in docs/INSIGHT.md):
//   ferry_bench_insight --users 1000000 --embedded-users 100000
// Usage: ferry_bench_insight [--users N (ClickHouse, default 1000000)] [--embedded-users N (default 100000)]
//                            [--activity A (default 0.15: about 10 events per user)] [--engines clickhouse,embedded]
//                            [--seed S] [--days D (default 120)]
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/insight/clickhouse_engine.h"
#include "collector/insight/embedded_engine.h"
#include "collector/insight/insight.h"
#include "collector/insight/normalize.h"
#include "lib/base/secret.h"
#include "tests/bench/bench_args.h"
#include "tests/support/clickhouse_server.h"
#include "tools/insight_gen/generator.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace ferry::insight;  // NOLINT
using ferry::base::Status;

double Secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string Load() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return "load " + a + " " + b + " " + c;
}

void Figure(const char* engine, const std::string& what, const std::string& value) {
  std::printf("%-10s  %-58s %-28s [%s]\n", engine, what.c_str(), value.c_str(), Load().c_str());
  std::fflush(stdout);
}

std::string Fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

class AllowAll : public PrivacyView {
 public:
  ferry::base::Result<std::vector<PersonPrivacy>> Lookup(const std::string&,
                                                         const std::vector<std::string>& persons) override {
    PersonPrivacy p;
    p.personalization = p.marketing = true;
    return std::vector<PersonPrivacy>(persons.size(), p);
  }
  ferry::base::Result<std::vector<std::string>> ExcludedFromAnalytics(const std::string&) override {
    return std::vector<std::string>{};
  }
};

InsightConfig Config() {
  nlohmann::json j = nlohmann::json::parse(ferry::insightgen::Generator::ConfigJson());
  j["tags"] = nlohmann::json::parse(R"([
    {"name": "digital_browser_no_order", "rule": {"all": [
       {"count": {"event": "product_viewed", "where": [{"prop": "category", "op": "eq", "value": "digital"}],
                  "within_days": 30}, "op": "gte", "value": 3},
       {"not": {"count": {"event": "order_completed", "within_days": 30}, "op": "gte", "value": 1}},
       {"count": {"event": "promotion_clicked", "within_days": 90}, "op": "gte", "value": 1}]}},
    {"name": "big_spender",
     "rule": {"sum": {"event": "order_completed", "prop": "revenue", "within_days": 90}, "op": "gte", "value": 300}},
    {"name": "lapsing_buyer", "rule": {"all": [{"count": {"event": "order_completed"}, "op": "gte", "value": 1},
                                               {"recency": {}, "op": "gte", "value": 14}]}},
    {"name": "pricey_viewer", "rule": {"count": {"event": "product_viewed", "where": [
       {"prop": "price", "op": "gte", "value": 100}, {"prop": "category", "op": "in", "value": ["digital", "home"]}],
       "within_days": 14}, "op": "gte", "value": 2}},
    {"name": "inviter", "rule": {"recency": {"event": "invite_sent"}, "op": "lte", "value": 30}}
  ])");
  auto c = InsightConfig::FromJson(j);
  if (!c.ok()) {
    std::fprintf(stderr, "config: %s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  return c.value();
}

struct Options {
  int64_t users = 1000000;
  int64_t embedded_users = 100000;
  double activity = 0.15;
  uint64_t seed = 20260101;
  int32_t days = 120;
  bool clickhouse = true, embedded = true;
};

// Feeds the generated stream through Accept in batches of 1,000 (the collector's group commits are of that order).
// Keeps the first `sample` events aside for the per-event measurements.
struct Ingest {
  int64_t events = 0;
  double accept_s = 0, wall_s = 0;
  std::vector<InsightEvent> sample;
};

Ingest Feed(Insight& in, const Options& o, int64_t users, size_t sample) {
  ferry::insightgen::Options g;
  g.seed = o.seed;
  g.users = users;
  g.days = o.days;
  g.activity = o.activity;
  g.project = "bench";
  ferry::insightgen::Generator gen(g);
  Ingest r;
  std::vector<InsightEvent> batch;
  batch.reserve(1000);
  auto t0 = Clock::now();
  auto flush = [&] {
    auto a = Clock::now();
    Status st = in.Accept(batch);
    while (st.Is(ferry::base::Code::kUnavailable)) {  // the sink's queue is full: let it drain (back-pressure)
      (void)in.Flush(600000);
      st = in.Accept(batch);
    }
    r.accept_s += Secs(a, Clock::now());
    if (!st.ok()) {
      std::fprintf(stderr, "Accept: %s\n", st.ToString().c_str());
      std::exit(1);
    }
    batch.clear();
  };
  gen.Run(
      [&](const InsightEvent& e) {
        ++r.events;
        if (r.sample.size() < sample) r.sample.push_back(e);
        batch.push_back(e);
        if (batch.size() == 1000) flush();
      },
      nullptr);
  if (!batch.empty()) flush();
  Status st = in.Flush(3600000);
  if (!st.ok()) {
    std::fprintf(stderr, "Flush: %s\n", st.ToString().c_str());
    std::exit(1);
  }
  r.wall_s = Secs(t0, Clock::now());
  return r;
}

template <typename F>
double Time(F&& f) {
  auto a = Clock::now();
  f();
  return Secs(a, Clock::now());
}

void Check(const Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

// The questions, timed.
// The insight over `engine`, every person allowed everything, audience exports not audited (a benchmark).
std::unique_ptr<Insight> OpenInsight(const InsightConfig& config, PrivacyView* view, std::unique_ptr<Engine> engine) {
  Insight::Options io;
  io.config = config;
  io.privacy = view;
  io.audit = [](const AuditRecord&) { return Status::Ok(); };
  auto in = Insight::Open(std::move(io), std::move(engine));
  Check(in.status(), "insight");
  return std::move(in).value();
}

// A signed-up person with activity as of `as_of` (the erasure's subject): one with rows to erase.
std::string SignedUpPerson(Insight& in, int32_t as_of) {
  auto lc = in.Lifecycle("bench", as_of);
  Check(lc.status(), "lifecycle");
  for (const auto& [person, stage] : lc.value().persons) {
    if (!person.empty() && person[0] == 'u') return person;
  }
  return "u000000042";
}

void Questions(const char* name, Insight& in, int32_t start_day, int32_t as_of) {
  RetentionQuery rq;
  rq.project = "bench";
  rq.as_of_day = as_of;
  rq.granularity = Granularity::kWeek;
  rq.periods = 12;
  rq.from_day = as_of - 12 * 7 + 1;
  rq.to_day = as_of;
  size_t rows = 0;
  double s = Time([&] {
    auto t = in.Retention(rq);
    Check(t.status(), "retention");
    rows = t->rows.size();
  });
  Figure(name, "retention, 12 weekly cohorts x 12 weeks", Fmt("%.2f s", s) + " (" + std::to_string(rows) + " rows)");
  rq.split = Split::kSourceCampaign;
  s = Time([&] {
    auto t = in.Retention(rq);
    Check(t.status(), "retention");
    rows = t->rows.size();
  });
  Figure(name, "retention, 12 weeks, split by UTM source and campaign",
         Fmt("%.2f s", s) + " (" + std::to_string(rows) + " rows)");
  size_t n = 0;
  s = Time([&] {
    auto r = in.Rfm(RfmQuery{"bench", as_of, 0, "", "", ""});
    Check(r.status(), "rfm");
    n = r->rows.size();
  });
  Figure(name, "RFM (+ depth, activity, invites) for all users",
         Fmt("%.2f s", s) + " (" + std::to_string(n) + " persons)");
  FunnelQuery fq;
  fq.project = "bench";
  fq.as_of_day = as_of;
  fq.steps = {"product_viewed", "add_to_cart", "checkout_started", "order_completed"};
  fq.window_seconds = 1800;
  fq.from_day = as_of - 29;
  fq.to_day = as_of;
  std::vector<int64_t> counts;
  s = Time([&] {
    auto f = in.Funnel(fq);
    Check(f.status(), "funnel");
    counts = f->rows.empty() ? std::vector<int64_t>{} : f->rows[0].counts;
  });
  std::string cs;
  for (int64_t c : counts) cs += (cs.empty() ? "" : "/") + std::to_string(c);
  Figure(name, "funnel, 4 steps, 30 min window, 30 days", Fmt("%.2f s", s) + " (" + cs + ")");
  s = Time([&] {
    auto l = in.Lifecycle("bench", as_of);
    Check(l.status(), "lifecycle");
    n = l->persons.size();
  });
  Figure(name, "lifecycle stages for all users", Fmt("%.2f s", s));
  s = Time([&] {
    auto c = in.Churn("bench", as_of);
    Check(c.status(), "churn");
    n = c->persons.size();
  });
  Figure(name, "churn risk for all users", Fmt("%.2f s", s));
  AudienceQuery aq;
  aq.project = "bench";
  aq.as_of_day = as_of;
  aq.name = "bench";
  aq.tag = "digital_browser_no_order";
  s = Time([&] {
    auto a = in.ExportAudience(aq);
    Check(a.status(), "audience");
    n = a->members.size();
  });
  Figure(name, "audience: a tag over all users", Fmt("%.2f s", s) + " (" + std::to_string(n) + " persons)");
  s = Time([&] {
    auto p = in.GetProfile("bench", "u000000042", as_of);
    if (!p.ok() && !p.status().Is(ferry::base::Code::kNotFound)) Check(p.status(), "profile");
  });
  Figure(name, "one profile (facts, tags, stage, RFM, churn)", Fmt("%.2f s", s));
  (void)start_day;
}

void PerEventCosts(const char* name, const std::vector<InsightEvent>& sample, const InsightConfig& config) {
  auto tags = TagSet::Parse(config.tags);
  Check(tags.status(), "tags");
  std::vector<Normalized> norm;
  norm.reserve(sample.size());
  double ns = Time([&] {
    for (const auto& e : sample) norm.push_back(Normalize(e, config));
  });
  size_t matched = 0;
  std::vector<std::pair<int, int64_t>> out;
  double ms = Time([&] {
    for (const auto& n : norm) {
      if (n.kind != Normalized::Kind::kActivity) continue;
      out.clear();
      tags->Match(n.activity.name, n.props, &out);
      matched += out.size();
    }
  });
  const double per = 1e9 / static_cast<double>(sample.size());
  Figure(name, "normalise one event (parse properties and context)", Fmt("%.2f us/event", ns * per / 1000));
  Figure(name, "tag evaluation per arriving event (" + std::to_string(tags->leaves().size()) + " leaves)",
         Fmt("%.0f ns/event", ms * per) + " (" + std::to_string(matched) + " hits)");
}

WriteBatch ToBatch(const std::vector<InsightEvent>& sample, const InsightConfig& config, const TagSet& tags,
                   size_t from, size_t to) {
  WriteBatch b;
  std::vector<std::pair<int, int64_t>> out;
  for (size_t i = from; i < to; ++i) {
    Normalized n = Normalize(sample[i], config);
    if (n.kind == Normalized::Kind::kIdentify) {
      for (auto& t : n.traits) b.traits.push_back(std::move(t));
    } else if (n.kind == Normalized::Kind::kActivity) {
      out.clear();
      tags.Match(n.activity.name, n.props, &out);
      for (const auto& [leaf, cents] : out) {
        HitRow h;
        h.project = n.activity.project;
        h.person = n.activity.person;
        h.user_id = n.activity.user_id;
        h.anonymous_id = n.activity.anonymous_id;
        h.leaf = tags.leaves()[static_cast<size_t>(leaf)].id;
        h.message_id = n.activity.message_id;
        h.day = n.activity.day;
        h.value_cents = cents;
        b.hits.push_back(std::move(h));
      }
      b.events.push_back(std::move(n.activity));
    }
  }
  return b;
}

void RunClickHouse(const Options& o) {
  std::string error;
  auto server = ferry::testsupport::ClickHouseServer::Start(&error);
  if (server == nullptr) {
    std::printf("clickhouse: SKIPPED: %s\n", error.c_str());
    return;
  }
  const InsightConfig config = Config();
  AllowAll view;
  ClickHouseOptions co;
  co.urls = {server->url()};
  co.database = "bench";
  co.batch_rows = 200000;
  co.max_queue_rows = 4000000;
  auto engine = ClickHouseEngine::Open(co);
  Check(engine.status(), "clickhouse");
  ClickHouseEngine* ch = engine->get();
  auto in = OpenInsight(config, &view, std::move(engine.value()));
  Ingest ing = Feed(*in, o, o.users, 500000);
  int64_t stored = -1;
  (void)ch->client().Select("SELECT count() FROM bench.events FINAL", [&](const std::vector<std::string>& f) {
    stored = std::atoll(f[0].c_str());
    return true;
  });
  Figure("clickhouse", "ingest: " + std::to_string(ing.events) + " events of " + std::to_string(o.users) + " users",
         std::to_string(stored) + " activity rows stored");
  Figure("clickhouse", "Accept() on the caller's thread", Fmt("%.2f us/event", ing.accept_s * 1e6 / ing.events));
  Figure("clickhouse", "generate + Accept + deliver, wall",
         Fmt("%.0f events/s", static_cast<double>(ing.events) / ing.wall_s));
  PerEventCosts("clickhouse", ing.sample, config);
  {
    // The sink alone: 500,000 events (with their hits and traits) queued at once, then delivered.
    ClickHouseOptions so = co;
    so.database = "bench_sink";
    auto sink = ClickHouseEngine::Open(so);
    Check(sink.status(), "sink");
    auto tags = TagSet::Parse(config.tags);
    std::vector<WriteBatch> batches;
    size_t rows = 0;
    for (size_t i = 0; i < ing.sample.size(); i += 1000) {
      batches.push_back(ToBatch(ing.sample, config, tags.value(), i, std::min(ing.sample.size(), i + 1000)));
      rows += batches.back().rows();
    }
    double s = Time([&] {
      for (auto& b : batches) Check(sink.value()->Write(std::move(b)), "write");
      Check(sink.value()->Flush(600000), "flush");
    });
    Figure("clickhouse", "sink throughput (" + std::to_string(rows) + " rows from a full queue)",
           Fmt("%.0f rows/s", static_cast<double>(rows) / s));
  }
  const int32_t start = ferry::insightgen::Options().start_day;
  const int32_t as_of = start + o.days - 1;
  Questions("clickhouse", *in, start, as_of);
  // Erasure: excluded at once; gone when the mutations complete.
  const std::string victim = SignedUpPerson(*in, as_of);
  auto before = in->GetProfile("bench", victim, as_of);
  double s = Time([&] { Check(in->Erase("bench", {victim}), "erase"); });
  auto after = in->GetProfile("bench", victim, as_of);
  Figure("clickhouse",
         std::string("erase one person: exclusion in force (profile ") + (before.ok() ? "found" : "absent") + " -> " +
             (after.ok() ? "found" : "absent") + ")",
         Fmt("%.3f s", s));
  auto t0 = Clock::now();
  for (;;) {
    auto p = ch->PendingMutations();
    Check(p.status(), "mutations");
    if (p.value() == 0) break;
    usleep(20000);
  }
  Figure("clickhouse", "erase: mutations done (events, hits, traits rewritten)", Fmt("%.2f s", Secs(t0, Clock::now())));
  Check(in->Maintain(), "maintain");
}

void RunEmbedded(const Options& o) {
  char tmpl[] = "/tmp/ferry-bench-insight-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return;
  const std::string dir = tmpl;
  const InsightConfig config = Config();
  AllowAll view;
  auto engine = EmbeddedEngine::Open(dir + "/insight.db", ferry::base::SecretBytes::Random(32));
  Check(engine.status(), "embedded");
  auto in = OpenInsight(config, &view, std::move(engine.value()));
  Ingest ing = Feed(*in, o, o.embedded_users, 200000);
  struct stat st {};
  ::stat((dir + "/insight.db").c_str(), &st);
  Figure("embedded",
         "ingest: " + std::to_string(ing.events) + " events of " + std::to_string(o.embedded_users) + " users",
         Fmt("%.0f MB on disk", static_cast<double>(st.st_size) / 1e6));
  Figure("embedded", "Accept() on the caller's thread (writes before returning)",
         Fmt("%.2f us/event", ing.accept_s * 1e6 / ing.events));
  PerEventCosts("embedded", ing.sample, config);
  const int32_t start = ferry::insightgen::Options().start_day;
  Questions("embedded", *in, start, start + o.days - 1);
  const std::string victim = SignedUpPerson(*in, start + o.days - 1);
  double s = Time([&] { Check(in->Erase("bench", {victim}), "erase"); });
  Figure("embedded", "erase one person (one transaction)", Fmt("%.3f s", s));
  in.reset();
  std::string cmd = "rm -rf '" + dir + "'";
  (void)std::system(cmd.c_str());
}

}  // namespace

constexpr const char* kUsage =
    "usage: ferry_bench_insight [--users N (ClickHouse, default 1000000)] [--embedded-users N (default 100000)]\n"
    "                           [--activity A (default 0.15)] [--engines clickhouse,embedded] [--seed S]\n"
    "                           [--days D (default 120)]\n";

int main(int argc, char** argv) {
  ferry::bench::CheckArgs(argc, argv, kUsage, {},
                          {"--users", "--embedded-users", "--activity", "--engines", "--seed", "--days"});
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--users") {
      o.users = std::atoll(next().c_str());
    } else if (a == "--embedded-users") {
      o.embedded_users = std::atoll(next().c_str());
    } else if (a == "--activity") {
      o.activity = std::atof(next().c_str());
    } else if (a == "--seed") {
      o.seed = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--days") {
      o.days = std::atoi(next().c_str());
    } else if (a == "--engines") {
      std::string e = next();
      o.clickhouse = e.find("clickhouse") != std::string::npos;
      o.embedded = e.find("embedded") != std::string::npos;
    } else {
      std::fprintf(stderr, "unknown argument %s (see the comment at the top of bench_insight.cc)\n", a.c_str());
      return 2;
    }
  }
  if (o.users < 1 || o.embedded_users < 1 || o.days < 30 || o.activity <= 0) {
    std::fprintf(stderr, "bad sizes\n");
    return 2;
  }
  std::printf("# ferry_bench_insight: clickhouse %lld users, embedded %lld users, activity %.2f, %d days, %ld CPUs\n",
              static_cast<long long>(o.users), static_cast<long long>(o.embedded_users), o.activity, o.days,
              sysconf(_SC_NPROCESSORS_ONLN));
  if (o.embedded) RunEmbedded(o);
  if (o.clickhouse) RunClickHouse(o);
  return 0;
}
