// Rule tags (docs/INSIGHT.md, "Rule tags"): the JSON grammar, the compiled hit leaves matched incrementally per
// arriving event, and the evaluation of a tag for one person with its human-readable reason.
#ifndef FERRY_COLLECTOR_INSIGHT_RULES_H_
#define FERRY_COLLECTOR_INSIGHT_RULES_H_

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/insight/types.h"
#include "lib/base/status.h"

namespace ferry::insight {

enum class Op { kEq, kNe, kGt, kGte, kLt, kLte, kIn, kExists };

struct Condition {
  std::string prop;
  Op op = Op::kEq;
  nlohmann::json value;
};

// A hit leaf: an event name, conditions on its flat properties, and optionally a numeric property summed.
struct HitLeaf {
  std::string id;         // 16 hex characters of BLAKE2b-256(canonical)
  std::string canonical;  // {"event":...,"prop":...,"where":[...]}
  std::string event, prop;
  std::vector<Condition> where;
};

struct RuleNode {
  enum class Kind { kAll, kAny, kNot, kCount, kSum, kRecency, kTrait, kChannel, kSource, kCampaign };
  Kind kind = Kind::kAll;
  std::vector<RuleNode> children;
  int leaf = -1;            // TagSet::leaves() index (count, sum, recency with an event)
  int window = -1;          // TagSet::windows() index (count, sum)
  int32_t within_days = 0;  // 0 = all time
  Op op = Op::kGte;
  nlohmann::json value;  // threshold or comparison value
  std::string text;      // trait key, channel, source or campaign
  std::string label;     // how the leaf reads in a reason
};

struct TagDef {
  std::string name, description;
  RuleNode rule;
};

// A (leaf, window) pair whose count and sum the engines compute; within_days 0 = all time.
struct LeafWindow {
  int leaf = 0;
  int32_t within_days = 0;
};

struct LeafValue {
  int64_t count = 0, sum_cents = 0;
  bool operator==(const LeafValue& o) const { return count == o.count && sum_cents == o.sum_cents; }
};

// One person's leaf values: per TagSet::windows() index, and the last matching day per leaf (-1 = never).
struct PersonLeafValues {
  std::vector<LeafValue> windows;
  std::vector<int32_t> last_day;
  bool operator==(const PersonLeafValues& o) const { return windows == o.windows && last_day == o.last_day; }
};

struct TagInputs {
  int32_t as_of_day = 0;
  const PersonFeatures* features = nullptr;                    // nullptr: no activity as of the day
  const PersonLeafValues* leaves = nullptr;                    // nullptr: no hits
  const std::map<std::string, std::string>* traits = nullptr;  // key -> JSON text; nullptr: none
};

class TagSet {
 public:
  // Parses an array of tag definitions; refuses unknown keys, bad operators, duplicate names, too deep rules.
  static base::Result<TagSet> Parse(const nlohmann::json& defs);

  const std::vector<TagDef>& tags() const { return tags_; }
  const std::vector<HitLeaf>& leaves() const { return leaves_; }
  const std::vector<LeafWindow>& windows() const { return windows_; }
  const TagDef* Find(const std::string& name) const;
  // Distinct window lengths in use (0 = all time), ascending.
  std::vector<int32_t> WindowLengths() const;

  // Appends (leaf index, value in cents) for each leaf the activity event matches. Cheap for names no leaf uses.
  void Match(const std::string& event_name, const nlohmann::json& flat_props,
             std::vector<std::pair<int, int64_t>>* out) const;
  // Whether a leaf asks for events of this name (Match finds nothing for the others).
  bool Uses(const std::string& event_name) const { return by_event_.count(event_name) > 0; }
  // Whether the tag applies to the person; when it does, *reason says why.
  bool Evaluate(const TagDef& tag, const TagInputs& in, std::string* reason) const;

 private:
  std::vector<TagDef> tags_;
  std::vector<HitLeaf> leaves_;
  std::vector<LeafWindow> windows_;
  std::unordered_map<std::string, std::vector<int>> by_event_;
};

// Compares a with b under op ("in": b is an array). Values of different JSON types never compare true.
bool CompareJson(const nlohmann::json& a, Op op, const nlohmann::json& b);
const char* OpSymbol(Op op);

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_RULES_H_
