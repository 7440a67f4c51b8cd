#include "collector/http/faults.h"

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

namespace ferry::collector {

namespace {
int IntOr(const nlohmann::json& o, const char* k, int def) {
  auto it = o.find(k);
  return it != o.end() && it->is_number_integer() ? it->get<int>() : def;
}
bool BoolOr(const nlohmann::json& o, const char* k, bool def) {
  auto it = o.find(k);
  return it != o.end() && it->is_boolean() ? it->get<bool>() : def;
}
}  // namespace

base::Status FaultPlan::LoadJson(const std::string& json_text) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return base::Status::InvalidArgument("a fault plan is a JSON list");
  std::deque<Fault> parsed;
  for (const auto& item : j) {
    Fault f;
    if (item.is_number_integer()) {
      f.status = item.get<int>();
    } else if (item.is_string() && item.get<std::string>() == "reset") {
      f.reset = true;
    } else if (item.is_object()) {
      f.status = IntOr(item, "status", 0);
      f.retry_after = IntOr(item, "retry_after", -1);
      f.reset = BoolOr(item, "reset", false);
      f.after_store = BoolOr(item, "after_store", false);
      f.delay_ms = IntOr(item, "delay_ms", 0);
    } else {
      return base::Status::InvalidArgument("bad fault plan item: " + item.dump());
    }
    if (!f.reset && (f.status < 100 || f.status > 599)) {
      return base::Status::InvalidArgument("bad fault status in " + item.dump());
    }
    parsed.push_back(f);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const Fault& f : parsed) faults_.push_back(f);
  return base::Status::Ok();
}

base::Status FaultPlan::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return base::Status::InvalidArgument("cannot read fault plan " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return LoadJson(text);
}

std::optional<Fault> FaultPlan::Next() {
  std::lock_guard<std::mutex> lock(mu_);
  if (faults_.empty()) return std::nullopt;
  Fault f = faults_.front();
  faults_.pop_front();
  return f;
}

size_t FaultPlan::Remaining() {
  std::lock_guard<std::mutex> lock(mu_);
  return faults_.size();
}

}  // namespace ferry::collector
