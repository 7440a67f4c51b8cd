// The collector's /v1/batch parse on its own, both ways in one process (issue 16): ParseBatch (the single SAX pass,
// collector/ingest/batch_stream.h) against ParseBatchWithDocument (the nlohmann document and its dump, what every
// batch took before), on batches of 500 events as the SDK sends them (5 string and 2 numeric properties, the SDK's
// context). A ratio measured in one run: it does not depend on the machine's load.
// Usage: ferry_bench_ingest [--benchmark_filter=...] [--benchmark_repetitions=N]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "collector/ingest/ingest.h"
#include "lib/base/time.h"

namespace {

std::string SdkBatch(int n) {
  std::string json = "{\"sentAt\":\"2026-01-01T00:00:10.000Z\",\"batch\":[";
  char buf[1024];
  for (int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf,
                  "%s{\"messageId\":\"0193f2a4-7c1e-7%03d-9a4b-5c6d7e8f%04d\",\"deviceSeq\":%d,\"type\":\"track\","
                  "\"event\":\"Product Viewed\",\"anonymousId\":\"5b0d7a3e-2f4c-4e8a-9b1d-3c5e7f9a1b2c\","
                  "\"timestamp\":\"2026-01-01T00:00:00.%03dZ\",\"purpose\":\"analytics\",\"properties\":{\"sku\":"
                  "\"SKU-%d\",\"name\":\"Trail Shoe\",\"category\":\"shoes\",\"brand\":\"Ferry\",\"currency\":\"EUR\","
                  "\"price\":%d.99,\"quantity\":%d},\"context\":{\"library\":{\"name\":\"ferry\",\"version\":"
                  "\"1.0.0\"},\"os\":{\"name\":\"Linux\",\"version\":\"6.1\"},\"locale\":\"de-DE\",\"timezone\":"
                  "\"Europe/Berlin\",\"sessionId\":\"s-1\"}}",
                  i == 0 ? "" : ",", i % 1000, i, i + 1, i % 1000, i, i % 90 + 10, i % 5 + 1);
    json += buf;
  }
  return json + "],\"dropped\":{\"evicted\":0}}";
}

const int64_t kReceived = *ferry::base::ParseIso8601("2026-01-01T00:00:15.000Z");

void BM_ParseBatch(benchmark::State& state, bool document) {
  const std::string body = SdkBatch(500);
  const ferry::wire::Limits limits;
  for (auto _ : state) {
    auto p = document
                 ? ferry::collector::ParseBatchWithDocument(ferry::wire::Encoding::kIdentity, body, limits, kReceived)
                 : ferry::collector::ParseBatch(ferry::wire::Encoding::kIdentity, body, limits, kReceived);
    if (p.events.size() != 500) state.SkipWithError("not every event was taken");
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations() * 500);
}
BENCHMARK_CAPTURE(BM_ParseBatch, SinglePass, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ParseBatch, Document, true)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
