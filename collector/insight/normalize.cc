#include "collector/insight/normalize.h"

#include <cmath>
#include <cstdio>

namespace ferry::insight {

using nlohmann::json;

namespace {

constexpr int64_t kDayMs = 86400000;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

json ParseObject(const std::string& text, bool* ok) {
  *ok = true;
  if (text.empty()) return json::object();
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    *ok = false;
    return json::object();
  }
  if (!j.is_object()) return json::object();
  return j;
}

std::string StringAt(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

bool FlatKey(const std::string& k) { return k.find('"') == std::string::npos && k.find('\\') == std::string::npos; }

// What an activity row takes from an event body, read in one pass of the library's SAX parser without building the
// document (issue 15: building it and freeing it again was half of the feed's cost): the top-level scalar properties
// (FlatProps) and the context's sessionId, channel, app.name, campaign.source and campaign.name (strings only). Gives
// exactly what parsing the body and reading those fields from it gives, a repeated key included (the last one wins).
class ActivitySax : public nlohmann::json_sax<json> {
 public:
  json props = json::object();
  std::string session, channel, app_name, source, campaign;

  bool null() override { return Value(json()); }
  bool boolean(bool v) override { return Value(json(v)); }
  bool number_integer(number_integer_t v) override { return Value(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Value(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return Value(json(v)); }
  bool string(string_t& v) override { return Value(json(std::move(v))); }
  bool binary(binary_t&) override { return Value(json()); }
  bool start_object(std::size_t) override { return Open(true); }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(false); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    frames_.back().key = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  enum class Where { kRoot, kProperties, kContext, kApp, kCampaign, kOther };
  struct Frame {
    Where where;
    std::string key;  // the object's last key
  };

  // A value (scalar or container) arrives under the innermost frame's last key: what it replaces is forgotten.
  void Replaced(bool container) {
    if (frames_.empty()) return;
    const Frame& f = frames_.back();
    switch (f.where) {
      case Where::kRoot:
        if (f.key == "properties") props = json::object();
        if (f.key == "context") session.clear(), channel.clear(), app_name.clear(), source.clear(), campaign.clear();
        break;
      case Where::kProperties:
        if (container) props.erase(f.key);
        break;
      case Where::kContext:
        if (f.key == "sessionId") session.clear();
        if (f.key == "channel") channel.clear();
        if (f.key == "app") app_name.clear();
        if (f.key == "campaign") source.clear(), campaign.clear();
        break;
      case Where::kApp:
        if (f.key == "name") app_name.clear();
        break;
      case Where::kCampaign:
        if (f.key == "source") source.clear();
        if (f.key == "name") campaign.clear();
        break;
      case Where::kOther: break;
    }
  }
  bool Open(bool object) {
    Replaced(true);
    Where w = Where::kOther;
    if (frames_.empty()) {
      w = object ? Where::kRoot : Where::kOther;
    } else if (object) {
      const Frame& f = frames_.back();
      if (f.where == Where::kRoot && f.key == "properties") w = Where::kProperties;
      if (f.where == Where::kRoot && f.key == "context") w = Where::kContext;
      if (f.where == Where::kContext && f.key == "app") w = Where::kApp;
      if (f.where == Where::kContext && f.key == "campaign") w = Where::kCampaign;
    }
    frames_.push_back(Frame{w, std::string()});
    return true;
  }
  bool Close() {
    frames_.pop_back();
    return true;
  }
  bool Value(json v) {
    Replaced(false);
    if (frames_.empty()) return true;
    const Frame& f = frames_.back();
    auto text = [&](std::string* to) {
      if (v.is_string()) *to = std::move(v.get_ref<std::string&>());
    };
    switch (f.where) {
      case Where::kProperties:
        if ((v.is_string() || v.is_number() || v.is_boolean()) && FlatKey(f.key)) {
          props[f.key] = std::move(v);
        } else {
          props.erase(f.key);
        }
        break;
      case Where::kContext:
        if (f.key == "sessionId") text(&session);
        if (f.key == "channel") text(&channel);
        break;
      case Where::kApp:
        if (f.key == "name") text(&app_name);
        break;
      case Where::kCampaign:
        if (f.key == "source") text(&source);
        if (f.key == "name") text(&campaign);
        break;
      default: break;
    }
    return true;
  }

  std::vector<Frame> frames_;
};

}  // namespace

int32_t DayOf(int64_t ts_ms, int32_t tz_offset_minutes) {
  return static_cast<int32_t>(FloorDiv(ts_ms + static_cast<int64_t>(tz_offset_minutes) * 60000, kDayMs));
}

int32_t WeekOf(int32_t day) { return static_cast<int32_t>(FloorDiv(static_cast<int64_t>(day) + 3, 7)); }

// Howard Hinnant's civil_from_days / days_from_civil.
std::string DayToDate(int32_t day) {
  int64_t z = static_cast<int64_t>(day) + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld", static_cast<long long>(y), static_cast<long long>(m),
                static_cast<long long>(d));
  return buf;
}

int32_t DateToDay(const std::string& date) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  if (date.size() != 10 || std::sscanf(date.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return -1;
  if (m < 1 || m > 12 || d < 1 || d > 31) return -1;
  int64_t yy = m <= 2 ? y - 1 : y;
  int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<int32_t>(era * 146097 + doe - 719468);
}

int64_t CentsOf(const json& v) {
  if (!v.is_number()) return 0;
  double x = v.get<double>();
  if (!(std::fabs(x) < 1e13)) return 0;
  return static_cast<int64_t>(std::floor(x * 100 + 0.5));
}

std::string FormatCents(int64_t cents) {
  bool neg = cents < 0;
  uint64_t a = neg ? static_cast<uint64_t>(-(cents + 1)) + 1 : static_cast<uint64_t>(cents);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%llu.%02llu", neg ? "-" : "", static_cast<unsigned long long>(a / 100),
                static_cast<unsigned long long>(a % 100));
  return buf;
}

json FlatProps(const json& properties) {
  json flat = json::object();
  if (!properties.is_object()) return flat;
  for (const auto& [k, v] : properties.items()) {
    if (!(v.is_string() || v.is_number() || v.is_boolean())) continue;
    if (k.find('"') != std::string::npos || k.find('\\') != std::string::npos) continue;
    flat[k] = v;
  }
  return flat;
}

std::string Canonical(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

// The activity row from the event's fields and what was read from its body; n->props holds the flat properties.
void FillActivity(const InsightEvent& e, const InsightConfig& config, std::string person, int32_t day,
                  std::string session, std::string channel, const std::string& app, std::string source,
                  std::string campaign, Normalized* n) {
  n->kind = Normalized::Kind::kActivity;
  ActivityRow& a = n->activity;
  a.project = e.project;
  a.person = std::move(person);
  a.user_id = e.user_id;
  a.anonymous_id = e.anonymous_id;
  a.message_id = e.message_id;
  a.type = e.type;
  a.name = e.name;
  a.purpose = e.purpose;
  a.ts_ms = e.timestamp_ms;
  a.received_ms = e.received_ms;
  a.day = day;
  a.session = std::move(session);
  if (channel.empty() && !app.empty()) {
    auto m = config.channel_by_app.find(app);
    channel = m != config.channel_by_app.end() ? m->second : app;
  }
  a.channel = channel.empty() ? "unknown" : std::move(channel);
  a.source = std::move(source);
  a.campaign = std::move(campaign);
  if (!n->props.is_null()) a.props = Canonical(n->props);
}

}  // namespace

const json& PropsOf(Normalized& n) {
  if (n.props.is_null()) {
    n.props = json::parse(n.activity.props, nullptr, false);
    if (!n.props.is_object()) n.props = json::object();
  }
  return n.props;
}

Normalized Normalize(const InsightEvent& e, const InsightConfig& config) {
  Normalized n;
  bool activity = e.type == "track" || e.type == "screen";
  if (!activity && e.type != "identify") {
    n.skip_reason = "type";
    return n;
  }
  if (!config.UsesPurpose(e.purpose)) {
    n.skip_reason = "purpose";
    return n;
  }
  if (e.message_id.empty()) {
    n.skip_reason = "message_id";
    return n;
  }
  if (e.timestamp_ms <= 0) {
    n.skip_reason = "timestamp";
    return n;
  }
  std::string person = !e.person.empty() ? e.person : !e.user_id.empty() ? e.user_id : e.anonymous_id;
  if (person.empty()) {
    n.skip_reason = "person";
    return n;
  }
  int32_t day = DayOf(e.timestamp_ms, config.tz_offset_minutes);
  if (activity && e.preread) {
    if (e.name.empty()) {
      n.skip_reason = "type";
      return n;
    }
    FillActivity(e, config, std::move(person), day, e.session, e.channel, e.app_name, e.source, e.campaign, &n);
    n.activity.props = e.props;
    return n;
  }
  if (activity && !e.body.empty()) {
    ActivitySax sax;
    if (!json::sax_parse(e.body, &sax)) {
      n.skip_reason = "json";
      return n;
    }
    if (e.name.empty()) {
      n.skip_reason = "type";
      return n;
    }
    n.props = std::move(sax.props);
    FillActivity(e, config, std::move(person), day, std::move(sax.session), std::move(sax.channel), sax.app_name,
                 std::move(sax.source), std::move(sax.campaign), &n);
    return n;
  }
  bool ok = true;
  json body;  // e.body parsed once (properties, traits and context are taken out of it)
  if (!e.body.empty()) {
    body = ParseObject(e.body, &ok);
    if (!ok) {
      n.skip_reason = "json";
      return n;
    }
  }
  auto part = [&](const char* key, const std::string& text, bool* part_ok) -> json {
    if (e.body.empty()) return ParseObject(text, part_ok);
    *part_ok = true;
    auto it = body.find(key);
    if (it == body.end() || !it->is_object()) return json::object();
    return std::move(*it);
  };
  if (!activity) {
    json traits = part("traits", e.traits, &ok);
    if (!ok) {
      n.skip_reason = "json";
      return n;
    }
    n.kind = Normalized::Kind::kIdentify;
    for (const auto& [k, v] : traits.items()) {
      TraitRow t;
      t.project = e.project;
      t.person = person;
      t.user_id = e.user_id;
      t.anonymous_id = e.anonymous_id;
      t.key = k;
      t.value = Canonical(v);
      t.ts_ms = e.timestamp_ms;
      t.day = day;
      t.message_id = e.message_id;
      n.traits.push_back(std::move(t));
    }
    return n;
  }
  if (e.name.empty()) {
    n.skip_reason = "type";
    return n;
  }
  json props = part("properties", e.properties, &ok);
  bool ctx_ok = true;
  json ctx = part("context", e.context, &ctx_ok);
  if (!ok || !ctx_ok) {
    n.skip_reason = "json";
    return n;
  }
  std::string app;
  if (auto it = ctx.find("app"); it != ctx.end() && it->is_object()) app = StringAt(*it, "name");
  std::string source, campaign;
  if (auto it = ctx.find("campaign"); it != ctx.end() && it->is_object()) {
    source = StringAt(*it, "source");
    campaign = StringAt(*it, "name");
  }
  n.props = FlatProps(props);
  FillActivity(e, config, std::move(person), day, StringAt(ctx, "sessionId"), StringAt(ctx, "channel"), app,
               std::move(source), std::move(campaign), &n);
  return n;
}

}  // namespace ferry::insight
