// PII masking speed: MaskString on typical strings with and without PII, ApplyToObject on a typical
// ferry_track properties object (5 strings + 2 numbers), and the track path's two ways from the app's text to the
// stored text: parse + ApplyToObject + dump (before issue 16) against MaskObjectText's single pass; and the two SAX
// readers alone (nlohmann's, which the single pass used first, and RapidJSON's, which it uses now).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "sdk/pii/pii.h"

namespace {

using ferry::pii::PiiMasker;
using nlohmann::json;

std::shared_ptr<const PiiMasker> DefaultMasker(const char* rules = "") {
  uint8_t k[32];
  for (int i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(i);
  auto r = PiiMasker::Create(rules, ferry::base::SecretBytes(k, 32));
  if (!r.ok()) {
    std::fprintf(stderr, "PiiMasker::Create: %s\n", r.status().ToString().c_str());
    std::abort();
  }
  return r.value();
}

const std::vector<std::string> kNoPiiNoTrigger = {"Checkout Completed", "Product Viewed", "首页 - 推荐", "premium",
                                                  "https://example.com/cart"};
const std::vector<std::string> kNoPiiDigits = {"ORD-2026-000123", "¥1,299.00", "2026-01-15T10:30:00.123Z",
                                               "10.0.19045.2965", "550e8400-e29b-41d4-a716-446655440000"};
const std::vector<std::string> kPii = {"请联系13812345678", "zhang.san@example.cn", "4111 1111 1111 1111",
                                       "client 192.168.1.100", "ID 11010519491231002X"};

void RunStrings(benchmark::State& state, const std::vector<std::string>& inputs) {
  auto m = DefaultMasker();
  size_t i = 0;
  for (auto _ : state) {
    std::string out = m->MaskString(inputs[i]);
    benchmark::DoNotOptimize(out);
    if (++i == inputs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_MaskString_NoPii_Letters(benchmark::State& s) { RunStrings(s, kNoPiiNoTrigger); }
void BM_MaskString_NoPii_WithDigits(benchmark::State& s) { RunStrings(s, kNoPiiDigits); }
void BM_MaskString_Pii(benchmark::State& s) { RunStrings(s, kPii); }
BENCHMARK(BM_MaskString_NoPii_Letters);
BENCHMARK(BM_MaskString_NoPii_WithDigits);
BENCHMARK(BM_MaskString_Pii);

json TypicalProperties() {
  return json::parse(R"({"product_id": "SKU-AB12-3456", "name": "Wireless Mouse", "category": "electronics",
                         "currency": "CNY", "coupon": "SPRING2026", "price": 129.0, "quantity": 2})");
}

json PiiProperties() {
  return json::parse(R"({"product_id": "SKU-AB12-3456", "note": "请联系13812345678", "email": "a@b.cn",
                         "currency": "CNY", "password": "hunter2", "price": 129.0, "quantity": 2})");
}

// No PII: ApplyToObject changes nothing, so the same object is reused every iteration.
void BM_ApplyToObject_Typical(benchmark::State& state) {
  auto m = DefaultMasker();
  json obj = TypicalProperties();
  for (auto _ : state) {
    auto rep = m->ApplyToObject(&obj);
    benchmark::DoNotOptimize(rep);
  }
  if (obj != TypicalProperties()) state.SkipWithError("object changed");
}
BENCHMARK(BM_ApplyToObject_Typical);

// With PII the object changes, so each iteration masks a fresh copy; BM_CopyOnly is the copy alone.
void BM_ApplyToObject_WithPii_IncludingCopy(benchmark::State& state) {
  auto m = DefaultMasker();
  const json proto = PiiProperties();
  for (auto _ : state) {
    json obj = proto;
    auto rep = m->ApplyToObject(&obj);
    benchmark::DoNotOptimize(rep);
  }
}
BENCHMARK(BM_ApplyToObject_WithPii_IncludingCopy);

void BM_CopyOnly(benchmark::State& state) {
  const json proto = PiiProperties();
  for (auto _ : state) {
    json obj = proto;
    benchmark::DoNotOptimize(obj);
  }
}
BENCHMARK(BM_CopyOnly);

// A richer rule set: paths, allow list and hashing.
void BM_ApplyToObject_Typical_CustomRules(benchmark::State& state) {
  auto m = DefaultMasker(
      R"({"detectors": {"email": "mask", "phone": "hash"}, "paths": {"user.phone": "hash", "address": "redact"},
          "allow": ["product_id", "name", "category", "currency", "coupon", "price", "quantity", "user.*"]})");
  json obj = TypicalProperties();
  for (auto _ : state) {
    auto rep = m->ApplyToObject(&obj);
    benchmark::DoNotOptimize(rep);
  }
}
BENCHMARK(BM_ApplyToObject_Typical_CustomRules);

// The track path, text to stored text, on the issue-16 workload ("Product Viewed": 5 strings, 2 numbers).
const char* const kTrackProperties =
    R"({"sku":"SKU-07919","name":"Running Shoes 1","category":"shoes/running","currency":"EUR",)"
    R"("list":"search results","price":6.37,"quantity":2})";

void BM_TrackText_ParseWalkDump(benchmark::State& state) {
  auto m = DefaultMasker();
  for (auto _ : state) {
    json obj = json::parse(kTrackProperties, nullptr, false);
    m->ApplyToObject(&obj);
    std::string out = obj.dump(-1, ' ', false, json::error_handler_t::replace);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_TrackText_ParseWalkDump);

void BM_TrackText_SinglePass(benchmark::State& state) {
  auto m = DefaultMasker();
  std::string out;
  for (auto _ : state) {
    out.clear();
    auto o = m->MaskObjectText(kTrackProperties, 32, &out);
    benchmark::DoNotOptimize(o);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_TrackText_SinglePass);

// The two SAX readers alone on the same text, with handlers that do nothing: what the single pass pays to read, before
// and after it moved from nlohmann's lexer to RapidJSON's reader (the flags the single pass uses).
struct NullNlohmannSax {
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t& v) {
    benchmark::DoNotOptimize(v.data());
    return true;
  }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return true; }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool key(json::string_t& k) {
    benchmark::DoNotOptimize(k.data());
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
};

struct NullRapidJsonSax : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NullRapidJsonSax> {
  bool Default() { return true; }
  bool String(const char* s, rapidjson::SizeType, bool) {
    benchmark::DoNotOptimize(s);
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType, bool) {
    benchmark::DoNotOptimize(s);
    return true;
  }
  bool RawNumber(const char* s, rapidjson::SizeType, bool) {
    benchmark::DoNotOptimize(s);
    return true;
  }
};

void BM_TrackText_ReadOnly_Nlohmann(benchmark::State& state) {
  std::string_view text(kTrackProperties);
  NullNlohmannSax h;
  for (auto _ : state) benchmark::DoNotOptimize(json::sax_parse(text.begin(), text.end(), &h));
}
BENCHMARK(BM_TrackText_ReadOnly_Nlohmann);

void BM_TrackText_ReadOnly_RapidJson(benchmark::State& state) {
  std::string_view text(kTrackProperties);
  NullRapidJsonSax h;
  rapidjson::Reader reader;
  for (auto _ : state) {
    rapidjson::MemoryStream in(text.data(), text.size());
    benchmark::DoNotOptimize(
        reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(in, h).IsError());
  }
}
BENCHMARK(BM_TrackText_ReadOnly_RapidJson);

}  // namespace

BENCHMARK_MAIN();
