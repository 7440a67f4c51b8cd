#include "tools/insight_gen/generator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

namespace ferry::insightgen {

using nlohmann::json;

namespace {

constexpr int64_t kDayMs = 86400000;

uint64_t SplitMix(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// xoshiro256** with its own distributions, so a seed gives the same stream on every standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& v : s_) v = SplitMix(&seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  double U() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool P(double p) { return U() < p; }
  int64_t Int(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1)); }
  double Exp(double mean) { return -mean * std::log(1.0 - U()); }
  int Poisson(double lambda) {
    const double l = std::exp(-lambda);
    int k = 0;
    double p = 1;
    do {
      ++k;
      p *= U();
    } while (p > l && k < 50);
    return k - 1;
  }
  double Normal() {
    double u1 = 1.0 - U(), u2 = U();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double LogNormal(double mu, double sigma) { return std::exp(mu + sigma * Normal()); }
  std::string Hex(int bytes) {
    static const char* const kDigits = "0123456789abcdef";
    std::string out;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) {
      if (i % 8 == 0) v = Next();
      out += kDigits[(v >> 4) & 15];
      out += kDigits[v & 15];
      v >>= 8;
    }
    return out;
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Int(0, static_cast<int64_t>(v.size()) - 1))];
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

struct Source {
  const char* source;
  const char* campaign;
  double weight;
  double quality;  // higher: signs up more, engages more, churns later, spends more
};

const std::vector<Source>& Sources() {
  static const std::vector<Source> kSources = {
      {"", "", 0.30, 1.0},
      {"wechat", "spring_sale", 0.22, 1.0},
      {"douyin", "kol_video", 0.18, 0.7},
      {"baidu", "brand_search", 0.15, 1.15},
      {"referral", "invite", 0.10, 1.4},
      {"email", "newsletter", 0.05, 1.2},
  };
  return kSources;
}

const std::vector<std::string> kCategories = {"digital", "apparel", "home", "grocery", "beauty"};
const std::vector<std::string> kCities = {"Shanghai", "Beijing", "Shenzhen", "Hangzhou", "Chengdu", "Wuhan"};

struct ChannelInfo {
  const char* app;
  const char* channel;  // context.channel ("" = none: the collector maps app.name)
  const char* os;
};

ChannelInfo Channel(const std::string& c) {
  if (c == "app") return {"shop-app", "", "Android"};
  if (c == "web") return {"ferry-agent", "", "Linux"};
  if (c == "miniprogram") return {"shop-mini", "miniprogram", "WeChat"};
  return {"pos", "offline", "POS"};
}

// A price with two decimals (what a currency amount looks like).
double Money(double v) { return std::floor(v * 100 + 0.5) / 100; }

class UserSim {
 public:
  UserSim(const Options& o, int64_t index, int64_t* seq, const std::function<void(const insight::InsightEvent&)>& out)
      : o_(o), r_(Mix(o.seed, index)), seq_(seq), out_(out) {
    u_.index = index;
  }

  UserTruth Run() {
    const int32_t end = o_.start_day + o_.days;  // exclusive
    u_.first_day = o_.start_day + static_cast<int32_t>(r_.Int(0, o_.days - 1));
    double x = r_.U(), acc = 0;
    const Source* src = &Sources().back();
    for (const Source& s : Sources()) {
      acc += s.weight;
      if (x < acc) {
        src = &s;
        break;
      }
    }
    u_.source = src->source;
    u_.campaign = src->campaign;
    q_ = src->quality;
    u_.personalization = r_.P(0.8);
    u_.marketing = r_.P(0.55);
    u_.anonymous_id =
        r_.Hex(4) + "-" + r_.Hex(2) + "-4" + r_.Hex(2).substr(1) + "-a" + r_.Hex(2).substr(1) + "-" + r_.Hex(6);
    const double c = r_.U();
    if (u_.source == "wechat") {
      u_.primary_channel = c < 0.6 ? "miniprogram" : c < 0.85 ? "app" : "web";
    } else {
      u_.primary_channel = c < 0.5 ? "app" : c < 0.9 ? "web" : "miniprogram";
    }
    if (r_.P(0.3)) {
      std::vector<std::string> others;
      for (const char* ch : {"app", "web", "miniprogram"}) {
        if (u_.primary_channel != ch) others.push_back(ch);
      }
      secondary_ = r_.Pick(others);
    }
    offline_buyer_ = r_.P(0.12);
    prefers_digital_ = r_.P(0.4);
    responder_ = r_.P(0.3);
    referrer_ = r_.P(0.15);
    spend_ = r_.LogNormal(std::log(60.0 * q_), 0.5);

    const bool signs_up = r_.P(std::min(0.85, 0.55 * q_));
    if (!signs_up) {
      // A visitor: a few anonymous sessions within two weeks, then gone.
      Session(u_.first_day, true, false);
      for (int i = 0; i < 2; ++i) {
        if (!r_.P(0.4)) break;
        int32_t d = u_.first_day + static_cast<int32_t>(r_.Int(1, 14));
        if (d < end) Session(d, false, false);
      }
      u_.churn_day = -1;
      return u_;
    }
    char id[32];
    std::snprintf(id, sizeof id, "u%09lld", static_cast<long long>(u_.index));
    u_.user_id = id;
    u_.signup_day = u_.first_day;
    const double lambda = 0.05 * q_ * o_.activity * r_.LogNormal(0, 0.8);
    // Lifetime: churn after an exponential lifetime, preceded by a decline of 10-24 days.
    int32_t churn = u_.first_day + 1 + static_cast<int32_t>(r_.Exp(70.0 * q_));
    int32_t decline = static_cast<int32_t>(r_.Int(10, 24));
    int32_t ret = -1, churn2 = INT32_MAX;
    if (churn < end && r_.P(0.25)) {
      ret = churn + static_cast<int32_t>(r_.Int(35, 80));
      churn2 = ret + 1 + static_cast<int32_t>(r_.Exp(60.0));
    }
    u_.churn_day = churn < end ? churn : -1;
    u_.return_day = ret >= 0 && ret < end ? ret : -1;
    if (u_.return_day >= 0) u_.churn_day = churn2 < end ? churn2 : -1;
    int32_t pause_from = INT32_MAX, pause_to = INT32_MIN;
    if (r_.P(0.2)) {
      pause_from = u_.first_day + static_cast<int32_t>(r_.Int(7, 60));
      pause_to = pause_from + static_cast<int32_t>(r_.Int(14, 28));
    }
    for (int32_t d = u_.first_day; d < end; ++d) {
      const bool first = d == u_.first_day;
      const bool returning = d == ret;
      double mult = 1.0;
      int32_t live_end = d < churn || ret < 0 ? churn : churn2;
      if (d >= churn && (ret < 0 || d < ret)) continue;  // churned (maybe for good)
      if (d >= churn2) continue;                         // churned again
      if (d >= live_end - decline) mult = std::max(0.1, 1.0 - 0.85 * (d - (live_end - decline) + 1) / decline);
      if (d >= pause_from && d < pause_to && !first && !returning) continue;  // a dormant spell
      const int weekday = ((d % 7) + 7 + 3) % 7;                              // 0 = Monday
      const double rate = lambda * mult * (weekday >= 5 ? 1.3 : 1.0);
      int n = std::min(4, r_.Poisson(rate));
      if (first || returning) n = std::max(n, 1);
      for (int i = 0; i < n; ++i) Session(d, first && i == 0, returning && i == 0);
      if (offline_buyer_ && r_.P(0.02 * q_)) Offline(d);
    }
    return u_;
  }

 private:
  static uint64_t Mix(uint64_t seed, int64_t index) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(index);
    return SplitMix(&x);
  }

  void Emit(insight::InsightEvent e) {
    e.project = o_.project;
    e.seq = ++*seq_;
    e.message_id = r_.Hex(16);
    e.received_ms = e.timestamp_ms + r_.Int(200, 5000);
    ++u_.events;
    const bool dup = r_.P(o_.duplicate_rate);
    out_(e);
    if (dup) {
      e.seq = ++*seq_;
      e.received_ms += r_.Int(1000, 60000);
      ++u_.events;
      out_(e);
    }
  }

  void Track(const std::string& name, json props, const std::string& purpose = "analytics") {
    insight::InsightEvent e;
    e.type = "track";
    e.name = name;
    e.purpose = purpose;
    e.user_id = signed_in_ ? u_.user_id : "";
    e.anonymous_id = u_.anonymous_id;
    e.timestamp_ms = t_;
    e.properties = props.dump();
    e.context = context_;
    Emit(std::move(e));
    t_ += r_.Int(5, 90) * 1000 + r_.Int(0, 999);
  }

  void Screen(const std::string& name) {
    insight::InsightEvent e;
    e.type = "screen";
    e.name = name;
    e.purpose = "analytics";
    e.user_id = signed_in_ ? u_.user_id : "";
    e.anonymous_id = u_.anonymous_id;
    e.timestamp_ms = t_;
    e.properties = "{}";
    e.context = context_;
    Emit(std::move(e));
    t_ += r_.Int(5, 60) * 1000;
  }

  void Identify(json traits) {
    insight::InsightEvent e;
    e.type = "identify";
    e.purpose = "analytics";
    e.user_id = u_.user_id;
    e.anonymous_id = u_.anonymous_id;
    e.timestamp_ms = t_;
    e.traits = traits.dump();
    e.context = context_;
    Emit(std::move(e));
    t_ += 1000;
  }

  void Consent(const std::string& purpose, bool granted) {
    insight::InsightEvent e;
    e.type = "consent";
    e.purpose = "necessary";
    e.user_id = signed_in_ ? u_.user_id : "";
    e.anonymous_id = u_.anonymous_id;
    e.timestamp_ms = t_;
    e.properties =
        json{{"purpose", purpose}, {"state", granted ? "granted" : "denied"}, {"previous", "pending"}}.dump();
    e.context = context_;
    Emit(std::move(e));
  }

  void SetContext(const std::string& channel, const std::string& session, bool with_campaign, bool winback) {
    ChannelInfo ci = Channel(channel);
    json c = {{"app", {{"name", ci.app}, {"version", "3.2.0"}}},
              {"os", {{"name", ci.os}, {"version", "14"}}},
              {"library", {{"name", "ferry"}, {"version", "0.9.0"}}},
              {"locale", "zh-CN"}};
    if (!session.empty()) c["sessionId"] = session;
    if (ci.channel[0] != '\0') c["channel"] = ci.channel;
    if (winback) {
      c["campaign"] = {{"source", "email"}, {"name", "winback"}, {"medium", "email"}};
    } else if (with_campaign && !u_.source.empty()) {
      c["campaign"] = {{"source", u_.source}, {"name", u_.campaign}, {"medium", "cpc"}};
    }
    context_ = c.dump();
  }

  std::string Category() {
    if (prefers_digital_ && r_.P(0.6)) return "digital";
    return r_.Pick(kCategories);
  }

  void Session(int32_t day, bool first, bool winback) {
    std::string ch = u_.primary_channel;
    if (!secondary_.empty() && r_.P(0.25)) ch = secondary_;
    t_ = static_cast<int64_t>(day) * kDayMs + r_.Int(7 * 3600, 21 * 3600) * 1000 + r_.Int(0, 999);
    SetContext(ch, r_.Hex(8), first, winback);
    if (ch == "web") {
      Track("page_viewed", {{"path", "/"}});
    } else {
      Track("app_opened", json::object());
    }
    if (first) {
      Consent("analytics", true);
      Consent("personalization", u_.personalization);
      Consent("marketing", u_.marketing);
      if (!u_.user_id.empty()) {
        Track("signup_started", json::object());
        signed_in_ = true;
        Identify({{"plan", "free"}, {"city", r_.Pick(kCities)}, {"signup_channel", ch}});
        Track("signup_completed", {{"method", r_.P(0.5) ? "phone" : "wechat"}});
      }
    } else if (signed_in_ && r_.P(0.2)) {
      Track("login", json::object(), "necessary");
    }
    if (r_.P(0.35)) Screen("Home");
    int views = 1;
    while (views < 8 && r_.P(0.35)) ++views;
    std::string last_category;
    for (int i = 0; i < views; ++i) {
      last_category = Category();
      Track("product_viewed", {{"category", last_category},
                               {"price", Money(r_.LogNormal(std::log(40.0), 0.8))},
                               {"product_id", "p" + std::to_string(r_.Int(1, 5000))}});
    }
    if (r_.P(0.3)) Track("search", {{"query_length", r_.Int(2, 20)}});
    if (r_.P(0.3)) {
      std::string promo = "promo" + std::to_string(r_.Int(1, 12));
      Track("promotion_viewed", {{"promo_id", promo}});
      if (r_.P(responder_ ? 0.5 : 0.05)) Track("promotion_clicked", {{"promo_id", promo}});
    }
    if (signed_in_ && r_.P(std::min(0.6, 0.22 * q_))) {
      Track("add_to_cart", {{"category", last_category}});
      if (r_.P(0.7)) {
        Track("checkout_started", json::object());
        if (r_.P(0.75)) {
          double revenue = r_.LogNormal(std::log(spend_), 0.7);
          Track(
              "order_completed",
              {{"revenue", Money(revenue)}, {"currency", "CNY"}, {"items", r_.Int(1, 5)}, {"category", last_category}});
        }
      }
    }
    if (signed_in_ && referrer_ && r_.P(0.12)) Track("invite_sent", {{"via", r_.P(0.7) ? "wechat" : "sms"}});
    if (signed_in_ && !first && r_.P(0.01)) Identify({{"plan", "pro"}});
  }

  void Offline(int32_t day) {
    t_ = static_cast<int64_t>(day) * kDayMs + r_.Int(9 * 3600, 20 * 3600) * 1000;
    SetContext("offline", "", false, false);
    double revenue = r_.LogNormal(std::log(spend_ * 1.5), 0.6);
    Track("order_completed", {{"revenue", Money(revenue)},
                              {"currency", "CNY"},
                              {"items", r_.Int(1, 8)},
                              {"store_id", "s" + std::to_string(r_.Int(1, 40))}});
  }

  const Options& o_;
  Rng r_;
  int64_t* seq_;
  const std::function<void(const insight::InsightEvent&)>& out_;
  UserTruth u_;
  double q_ = 1, spend_ = 60;
  std::string secondary_;
  bool offline_buyer_ = false, prefers_digital_ = false, responder_ = false, referrer_ = false;
  bool signed_in_ = false;
  int64_t t_ = 0;
  std::string context_;
};

}  // namespace

void Generator::Run(const std::function<void(const insight::InsightEvent&)>& on_event,
                    const std::function<void(const UserTruth&)>& on_user) {
  for (int64_t i = o_.first_user; i < o_.first_user + o_.users; ++i) {
    UserSim sim(o_, i, &seq_, on_event);
    UserTruth t = sim.Run();
    if (on_user) on_user(t);
  }
}

std::string Generator::ConfigJson() {
  return R"({"channel_by_app": {"shop-app": "app", "ferry-agent": "web", "shop-mini": "miniprogram", "pos": "offline"},
 "key_events": ["signup_completed", "order_completed", "invite_sent"],
 "value_event": "order_completed", "value_prop": "revenue", "invite_event": "invite_sent",
 "lifecycle": {"activation_event": "signup_completed"}})";
}

}  // namespace ferry::insightgen
