#include "collector/insight/rules.h"

#include <algorithm>
#include <set>

#include "collector/insight/normalize.h"
#include "lib/base/digest.h"

namespace ferry::insight {

using base::Result;
using base::Status;
using nlohmann::json;

namespace {

constexpr int kMaxDepth = 16;
constexpr size_t kMaxLeaves = 256;
constexpr size_t kMaxTags = 256;

bool ParseOp(const json& j, Op* op) {
  if (!j.is_string()) return false;
  const std::string s = j.get<std::string>();
  static const std::pair<const char*, Op> kOps[] = {{"eq", Op::kEq},   {"ne", Op::kNe},        {"gt", Op::kGt},
                                                    {"gte", Op::kGte}, {"lt", Op::kLt},        {"lte", Op::kLte},
                                                    {"in", Op::kIn},   {"exists", Op::kExists}};
  for (const auto& [name, o] : kOps) {
    if (s == name) {
      *op = o;
      return true;
    }
  }
  return false;
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kEq: return "eq";
    case Op::kNe: return "ne";
    case Op::kGt: return "gt";
    case Op::kGte: return "gte";
    case Op::kLt: return "lt";
    case Op::kLte: return "lte";
    case Op::kIn: return "in";
    case Op::kExists: return "exists";
  }
  return "?";
}

bool IsOrderOp(Op op) {
  return op == Op::kEq || op == Op::kNe || op == Op::kGt || op == Op::kGte || op == Op::kLt || op == Op::kLte;
}

bool CmpNum(double a, Op op, double b) {
  switch (op) {
    case Op::kEq: return a == b;
    case Op::kNe: return a != b;
    case Op::kGt: return a > b;
    case Op::kGte: return a >= b;
    case Op::kLt: return a < b;
    case Op::kLte: return a <= b;
    default: return false;
  }
}

bool SameType(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return true;
  return a.type() == b.type();
}

std::string Show(const json& v) { return Canonical(v); }

Status Bad(const std::string& where, const std::string& what) {
  return Status::InvalidArgument("tag " + where + ": " + what);
}

Status CheckOnly(const json& j, std::initializer_list<const char*> keys, const std::string& where) {
  for (const auto& item : j.items()) {
    const std::string& k = item.key();
    if (std::none_of(keys.begin(), keys.end(), [&](const char* n) { return k == n; })) {
      return Bad(where, "unknown key '" + k + "'");
    }
  }
  return Status::Ok();
}

struct Parser {
  std::vector<HitLeaf>* leaves;
  std::vector<LeafWindow>* windows;
  std::map<std::string, int> leaf_index;

  Status Conditions(const json& j, const std::string& where, std::vector<Condition>* out) {
    if (!j.is_array()) return Bad(where, "'where' must be an array");
    for (const json& c : j) {
      if (!c.is_object()) return Bad(where, "a condition must be an object");
      FERRY_RETURN_IF_ERROR(CheckOnly(c, {"prop", "op", "value"}, where));
      Condition cond;
      auto p = c.find("prop");
      if (p == c.end() || !p->is_string() || p->get<std::string>().empty()) return Bad(where, "condition needs 'prop'");
      cond.prop = p->get<std::string>();
      auto o = c.find("op");
      if (o == c.end() || !ParseOp(*o, &cond.op)) return Bad(where, "condition needs a known 'op'");
      auto v = c.find("value");
      if (cond.op == Op::kExists) {
        if (v != c.end()) return Bad(where, "'exists' takes no value");
      } else {
        if (v == c.end()) return Bad(where, "condition needs 'value'");
        cond.value = *v;
        if (cond.op == Op::kIn) {
          if (!cond.value.is_array()) return Bad(where, "'in' needs an array");
          for (const json& e : cond.value) {
            if (!(e.is_string() || e.is_number() || e.is_boolean())) return Bad(where, "'in' values are scalars");
          }
        } else if (!(cond.value.is_string() || cond.value.is_number() || cond.value.is_boolean())) {
          return Bad(where, "condition value must be a string, number or boolean");
        } else if (!cond.value.is_number() && cond.op != Op::kEq && cond.op != Op::kNe) {
          return Bad(where, "only numbers take gt/gte/lt/lte");
        }
      }
      out->push_back(std::move(cond));
    }
    return Status::Ok();
  }

  int Leaf(const std::string& event, const std::string& prop, std::vector<Condition> where) {
    json c = json::object();
    c["event"] = event;
    c["prop"] = prop;
    json w = json::array();
    for (const auto& cond : where) {
      json x = {{"prop", cond.prop}, {"op", OpName(cond.op)}};
      if (cond.op != Op::kExists) x["value"] = cond.value;
      w.push_back(std::move(x));
    }
    c["where"] = std::move(w);
    std::string canonical = Canonical(c);
    auto it = leaf_index.find(canonical);
    if (it != leaf_index.end()) return it->second;
    HitLeaf leaf;
    leaf.canonical = canonical;
    leaf.id = base::Blake2b256Hex(canonical).substr(0, 16);
    leaf.event = event;
    leaf.prop = prop;
    leaf.where = std::move(where);
    leaves->push_back(std::move(leaf));
    int idx = static_cast<int>(leaves->size()) - 1;
    leaf_index[canonical] = idx;
    return idx;
  }

  int Window(int leaf, int32_t days) {
    for (size_t i = 0; i < windows->size(); ++i) {
      if ((*windows)[i].leaf == leaf && (*windows)[i].within_days == days) return static_cast<int>(i);
    }
    windows->push_back({leaf, days});
    return static_cast<int>(windows->size()) - 1;
  }

  static std::string Label(const std::string& event, const std::vector<Condition>& where) {
    std::string s = event;
    for (size_t i = 0; i < where.size(); ++i) {
      s += i == 0 ? " where " : " and ";
      s += where[i].prop;
      s += " ";
      s += OpSymbol(where[i].op);
      if (where[i].op != Op::kExists) s += " " + Show(where[i].value);
    }
    return s;
  }

  Status Comparison(const json& j, const std::string& where, RuleNode* n, bool integer) {
    auto o = j.find("op");
    if (o == j.end() || !ParseOp(*o, &n->op) || !IsOrderOp(n->op)) {
      return Bad(where, "needs 'op' (eq, ne, gt, gte, lt, lte)");
    }
    auto v = j.find("value");
    if (v == j.end() || !v->is_number()) return Bad(where, "needs a numeric 'value'");
    if (integer && !v->is_number_integer()) return Bad(where, "'value' must be an integer");
    n->value = *v;
    return Status::Ok();
  }

  Status Node(const json& j, const std::string& where, int depth, RuleNode* n) {
    if (depth > kMaxDepth) return Bad(where, "rule nested too deeply");
    if (!j.is_object()) return Bad(where, "a rule node must be an object");
    if (auto it = j.find("all"); it != j.end() || j.contains("any")) {
      bool all = it != j.end();
      FERRY_RETURN_IF_ERROR(CheckOnly(j, {all ? "all" : "any"}, where));
      const json& arr = all ? *it : j["any"];
      if (!arr.is_array() || arr.empty())
        return Bad(where, std::string("'") + (all ? "all" : "any") + "' needs a non-empty array");
      n->kind = all ? RuleNode::Kind::kAll : RuleNode::Kind::kAny;
      for (const json& c : arr) {
        RuleNode child;
        FERRY_RETURN_IF_ERROR(Node(c, where, depth + 1, &child));
        n->children.push_back(std::move(child));
      }
      return Status::Ok();
    }
    if (auto it = j.find("not"); it != j.end()) {
      FERRY_RETURN_IF_ERROR(CheckOnly(j, {"not"}, where));
      n->kind = RuleNode::Kind::kNot;
      RuleNode child;
      FERRY_RETURN_IF_ERROR(Node(*it, where, depth + 1, &child));
      n->children.push_back(std::move(child));
      return Status::Ok();
    }
    for (const char* k : {"count", "sum", "recency"}) {
      auto it = j.find(k);
      if (it == j.end()) continue;
      std::string kind = k;
      FERRY_RETURN_IF_ERROR(CheckOnly(j, {k, "op", "value"}, where));
      const json& spec = *it;
      if (!spec.is_object()) return Bad(where, "'" + kind + "' needs an object");
      FERRY_RETURN_IF_ERROR(CheckOnly(spec, {"event", "where", "within_days", "prop"}, where));
      std::string event;
      if (auto e = spec.find("event"); e != spec.end()) {
        if (!e->is_string() || e->get<std::string>().empty()) return Bad(where, "'event' must be a non-empty string");
        event = e->get<std::string>();
      }
      std::vector<Condition> conds;
      if (auto w = spec.find("where"); w != spec.end()) FERRY_RETURN_IF_ERROR(Conditions(*w, where, &conds));
      std::string prop;
      if (auto p = spec.find("prop"); p != spec.end()) {
        if (kind != "sum") return Bad(where, "'prop' belongs to 'sum'");
        if (!p->is_string() || p->get<std::string>().empty()) return Bad(where, "'prop' must be a non-empty string");
        prop = p->get<std::string>();
      }
      if (kind == "sum" && prop.empty()) return Bad(where, "'sum' needs 'prop'");
      if (kind != "recency" && event.empty()) return Bad(where, "'" + kind + "' needs 'event'");
      if (event.empty() && !conds.empty()) return Bad(where, "'where' needs 'event'");
      if (auto w = spec.find("within_days"); w != spec.end()) {
        if (kind == "recency") return Bad(where, "'recency' takes no 'within_days'");
        if (!w->is_number_integer() || w->get<int64_t>() < 1 || w->get<int64_t>() > 3660) {
          return Bad(where, "'within_days' must be an integer 1-3660");
        }
        n->within_days = static_cast<int32_t>(w->get<int64_t>());
      }
      FERRY_RETURN_IF_ERROR(Comparison(j, where, n, kind != "sum"));
      n->kind = kind == "count" ? RuleNode::Kind::kCount
                : kind == "sum" ? RuleNode::Kind::kSum
                                : RuleNode::Kind::kRecency;
      if (!event.empty()) {
        n->label = Label(event, conds);
        n->leaf = Leaf(event, prop, std::move(conds));
        if (leaves->size() > kMaxLeaves) return Bad(where, "too many distinct leaves");
        if (kind != "recency") n->window = Window(n->leaf, n->within_days);
        if (kind == "sum") n->label = "sum of " + prop + " over " + n->label;
        if (kind == "recency") n->label = "last " + n->label;
      } else {
        n->label = "last activity";
      }
      return Status::Ok();
    }
    if (auto it = j.find("trait"); it != j.end()) {
      FERRY_RETURN_IF_ERROR(CheckOnly(j, {"trait", "op", "value"}, where));
      if (!it->is_string() || it->get<std::string>().empty()) return Bad(where, "'trait' needs a key");
      n->kind = RuleNode::Kind::kTrait;
      n->text = it->get<std::string>();
      auto o = j.find("op");
      if (o == j.end() || !ParseOp(*o, &n->op)) return Bad(where, "'trait' needs a known 'op'");
      auto v = j.find("value");
      if (n->op == Op::kExists) {
        if (v != j.end()) return Bad(where, "'exists' takes no value");
      } else {
        if (v == j.end()) return Bad(where, "'trait' needs 'value'");
        n->value = *v;
        if (n->op == Op::kIn && !n->value.is_array()) return Bad(where, "'in' needs an array");
        if (n->op != Op::kIn && n->op != Op::kEq && n->op != Op::kNe && !n->value.is_number()) {
          return Bad(where, "only numbers take gt/gte/lt/lte");
        }
      }
      n->label = "trait " + n->text;
      return Status::Ok();
    }
    for (const char* k : {"channel", "source", "campaign"}) {
      auto it = j.find(k);
      if (it == j.end()) continue;
      FERRY_RETURN_IF_ERROR(CheckOnly(j, {k}, where));
      if (!it->is_string()) return Bad(where, std::string("'") + k + "' needs a string");
      n->kind = std::string(k) == "channel"  ? RuleNode::Kind::kChannel
                : std::string(k) == "source" ? RuleNode::Kind::kSource
                                             : RuleNode::Kind::kCampaign;
      n->text = it->get<std::string>();
      return Status::Ok();
    }
    return Bad(where, "unknown rule node " + Show(j).substr(0, 80));
  }
};

std::string Verdict(bool holds, Op op, const json& v) {
  std::string s = holds ? "(" : "(not ";
  return s + OpSymbol(op) + " " + Show(v) + ")";
}

std::string WindowText(int32_t days) {
  return days == 0 ? "in total" : "in the last " + std::to_string(days) + (days == 1 ? " day" : " days");
}

bool Eval(const TagSet& set, const RuleNode& n, const TagInputs& in, std::string* why) {
  switch (n.kind) {
    case RuleNode::Kind::kAll:
    case RuleNode::Kind::kAny: {
      bool all = n.kind == RuleNode::Kind::kAll;
      std::vector<std::pair<bool, std::string>> parts;
      bool result = all;
      for (const auto& c : n.children) {
        std::string w;
        bool t = Eval(set, c, in, &w);
        parts.emplace_back(t, std::move(w));
        result = all ? (result && t) : (result || t);
      }
      // all: true -> every child; false -> the false ones. any: true -> the true ones; false -> every child.
      std::string out;
      for (const auto& [t, w] : parts) {
        bool show = all ? (result || !t) : (!result || t);
        if (!show) continue;
        if (!out.empty()) out += "; ";
        out += w;
      }
      *why = out;
      return result;
    }
    case RuleNode::Kind::kNot: {
      bool t = Eval(set, n.children[0], in, why);
      return !t;
    }
    case RuleNode::Kind::kCount:
    case RuleNode::Kind::kSum: {
      LeafValue v;
      if (in.leaves != nullptr && n.window >= 0 && static_cast<size_t>(n.window) < in.leaves->windows.size()) {
        v = in.leaves->windows[static_cast<size_t>(n.window)];
      }
      bool holds;
      std::string shown;
      if (n.kind == RuleNode::Kind::kCount) {
        holds = CmpNum(static_cast<double>(v.count), n.op, n.value.get<double>());
        shown = std::to_string(v.count);
      } else {
        int64_t thr = CentsOf(n.value);
        int64_t a = v.sum_cents;
        holds = n.op == Op::kEq    ? a == thr
                : n.op == Op::kNe  ? a != thr
                : n.op == Op::kGt  ? a > thr
                : n.op == Op::kGte ? a >= thr
                : n.op == Op::kLt  ? a < thr
                                   : a <= thr;
        shown = FormatCents(v.sum_cents);
      }
      *why = n.label + ": " + shown + " " + WindowText(n.within_days) + " " + Verdict(holds, n.op, n.value);
      return holds;
    }
    case RuleNode::Kind::kRecency: {
      int32_t last = -1;
      if (n.leaf >= 0) {
        if (in.leaves != nullptr && static_cast<size_t>(n.leaf) < in.leaves->last_day.size()) {
          last = in.leaves->last_day[static_cast<size_t>(n.leaf)];
        }
      } else if (in.features != nullptr) {
        last = in.features->last_day;
      }
      bool holds;
      std::string shown;
      if (last < 0) {
        holds = n.op == Op::kGt || n.op == Op::kGte || n.op == Op::kNe;
        shown = "never";
      } else {
        int64_t days = static_cast<int64_t>(in.as_of_day) - last;
        holds = CmpNum(static_cast<double>(days), n.op, n.value.get<double>());
        shown = std::to_string(days) + (days == 1 ? " day ago" : " days ago");
      }
      *why = n.label + ": " + shown + " " + Verdict(holds, n.op, n.value);
      return holds;
    }
    case RuleNode::Kind::kTrait: {
      const std::string* text = nullptr;
      if (in.traits != nullptr) {
        auto it = in.traits->find(n.text);
        if (it != in.traits->end()) text = &it->second;
      }
      if (text == nullptr) {
        *why = n.label + ": not set";
        return false;
      }
      json a = json::parse(*text, nullptr, false);
      if (a.is_discarded()) {
        *why = n.label + ": not set";
        return false;
      }
      bool holds = n.op == Op::kExists ? true : CompareJson(a, n.op, n.value);
      *why = n.label + " = " + Show(a) + (n.op == Op::kExists ? std::string() : " " + Verdict(holds, n.op, n.value));
      return holds;
    }
    case RuleNode::Kind::kChannel: {
      bool holds = in.features != nullptr &&
                   std::binary_search(in.features->channels.begin(), in.features->channels.end(), n.text);
      *why = (holds ? "used channel " : "never used channel ") + n.text;
      return holds;
    }
    case RuleNode::Kind::kSource:
    case RuleNode::Kind::kCampaign: {
      bool source = n.kind == RuleNode::Kind::kSource;
      std::string actual = in.features == nullptr ? "" : source ? in.features->source : in.features->campaign;
      bool holds = in.features != nullptr && actual == n.text;
      *why = std::string(source ? "acquisition source " : "acquisition campaign ") + Show(json(actual)) +
             (holds ? "" : " (not " + Show(json(n.text)) + ")");
      return holds;
    }
  }
  return false;
}

bool ConditionHolds(const Condition& c, const json& props) {
  auto it = props.find(c.prop);
  if (it == props.end()) return false;
  if (c.op == Op::kExists) return true;
  return CompareJson(*it, c.op, c.value);
}

}  // namespace

const char* OpSymbol(Op op) {
  switch (op) {
    case Op::kEq: return "=";
    case Op::kNe: return "≠";
    case Op::kGt: return ">";
    case Op::kGte: return "≥";
    case Op::kLt: return "<";
    case Op::kLte: return "≤";
    case Op::kIn: return "in";
    case Op::kExists: return "exists";
  }
  return "?";
}

bool CompareJson(const json& a, Op op, const json& b) {
  if (op == Op::kExists) return true;
  if (op == Op::kIn) {
    if (!b.is_array()) return false;
    for (const json& e : b) {
      if (CompareJson(a, Op::kEq, e)) return true;
    }
    return false;
  }
  if (!SameType(a, b)) return false;
  if (a.is_number()) return CmpNum(a.get<double>(), op, b.get<double>());
  if (op == Op::kEq) return a == b;
  if (op == Op::kNe) return a != b;
  return false;
}

Result<TagSet> TagSet::Parse(const json& defs) {
  TagSet set;
  if (!defs.is_array()) return Status::InvalidArgument("tags: must be an array");
  if (defs.size() > kMaxTags) return Status::InvalidArgument("tags: at most 256");
  Parser p{&set.leaves_, &set.windows_, {}};
  std::set<std::string> names;
  for (const json& d : defs) {
    if (!d.is_object()) return Status::InvalidArgument("tags: each tag must be an object");
    FERRY_RETURN_IF_ERROR(CheckOnly(d, {"name", "description", "rule"}, "definition"));
    TagDef t;
    auto n = d.find("name");
    if (n == d.end() || !n->is_string()) return Status::InvalidArgument("tags: each tag needs a 'name'");
    t.name = n->get<std::string>();
    if (t.name.empty() || t.name.size() > 64 || !std::all_of(t.name.begin(), t.name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        })) {
      return Status::InvalidArgument("tags: name '" + t.name + "' must be 1-64 of [a-z0-9_-]");
    }
    if (!names.insert(t.name).second) return Status::InvalidArgument("tags: duplicate name '" + t.name + "'");
    if (auto ds = d.find("description"); ds != d.end()) {
      if (!ds->is_string()) return Status::InvalidArgument("tags: description must be a string");
      t.description = ds->get<std::string>();
    }
    auto r = d.find("rule");
    if (r == d.end()) return Status::InvalidArgument("tags: '" + t.name + "' needs a 'rule'");
    FERRY_RETURN_IF_ERROR(p.Node(*r, "'" + t.name + "'", 0, &t.rule));
    set.tags_.push_back(std::move(t));
  }
  for (size_t i = 0; i < set.leaves_.size(); ++i) set.by_event_[set.leaves_[i].event].push_back(static_cast<int>(i));
  return set;
}

const TagDef* TagSet::Find(const std::string& name) const {
  for (const auto& t : tags_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::vector<int32_t> TagSet::WindowLengths() const {
  std::set<int32_t> s;
  for (const auto& w : windows_) s.insert(w.within_days);
  return {s.begin(), s.end()};
}

void TagSet::Match(const std::string& event_name, const json& flat_props,
                   std::vector<std::pair<int, int64_t>>* out) const {
  auto it = by_event_.find(event_name);
  if (it == by_event_.end()) return;
  for (int idx : it->second) {
    const HitLeaf& leaf = leaves_[static_cast<size_t>(idx)];
    bool ok = true;
    for (const auto& c : leaf.where) {
      if (!ConditionHolds(c, flat_props)) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    int64_t cents = 0;
    if (!leaf.prop.empty()) {
      auto p = flat_props.find(leaf.prop);
      if (p != flat_props.end()) cents = CentsOf(*p);
    }
    out->emplace_back(idx, cents);
  }
}

bool TagSet::Evaluate(const TagDef& tag, const TagInputs& in, std::string* reason) const {
  std::string why;
  bool t = Eval(*this, tag.rule, in, &why);
  if (reason != nullptr) *reason = t ? why : std::string();
  return t;
}

}  // namespace ferry::insight
