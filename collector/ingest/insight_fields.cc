#include "collector/ingest/insight_fields.h"

#include <string>

namespace ferry::collector {

namespace {

using wire::Json;

const Json* ObjectAt(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? &*it : nullptr;
}

void StringAt(const Json* obj, const char* key, std::string* out) {
  if (obj == nullptr) return;
  auto it = obj->find(key);
  if (it != obj->end() && it->is_string()) *out = it->get<std::string>();
}

bool FlatKey(const std::string& k) { return k.find('"') == std::string::npos && k.find('\\') == std::string::npos; }

}  // namespace

void ReadInsightFields(const Json& ev, StoredEvent* se) {
  if (se->type != wire::kTrack && se->type != wire::kScreen) return;
  StoredEvent::InsightFields& f = se->insight;
  f = StoredEvent::InsightFields();
  f.set = true;
  Json flat = Json::object();
  if (const Json* props = ObjectAt(ev, "properties")) {
    for (const auto& [k, v] : props->items()) {
      if ((v.is_string() || v.is_number() || v.is_boolean()) && FlatKey(k)) flat[k] = v;
    }
  }
  f.props = flat.dump(-1, ' ', false, Json::error_handler_t::replace);
  const Json* ctx = ObjectAt(ev, "context");
  StringAt(ctx, "sessionId", &f.session_id);
  StringAt(ctx, "channel", &f.channel);
  StringAt(ctx != nullptr ? ObjectAt(*ctx, "app") : nullptr, "name", &f.app_name);
  const Json* campaign = ctx != nullptr ? ObjectAt(*ctx, "campaign") : nullptr;
  StringAt(campaign, "source", &f.campaign_source);
  StringAt(campaign, "name", &f.campaign_name);
}

}  // namespace ferry::collector
