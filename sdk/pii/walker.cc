// The JSON walker. See pii.h for what each path action does to each kind of value.
#include "sdk/pii/walker.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "sdk/pii/detectors.h"
#include "sdk/pii/text.h"

namespace ferry::pii {
namespace {

using nlohmann::json;

class Walker {
 public:
  Walker(const Rules& rules, PiiReport* rep) : rules_(rules), rep_(rep) { path_.reserve(8); }

  // The allow list: removes every key no allow pattern keeps.
  void Prune(json::object_t* obj) {
    for (auto it = obj->begin(); it != obj->end();) {
      path_.push_back(it->first);
      bool keep = false;
      bool whole = false;
      for (const Pattern& p : rules_.allow) {
        if (MatchFull(p, path_)) {
          keep = whole = true;
          break;
        }
      }
      if (!whole && (it->second.is_object() || it->second.is_array())) {
        for (const Pattern& p : rules_.allow) {
          if (MatchPrefix(p, path_)) {
            keep = true;
            break;
          }
        }
        if (keep) PruneInside(&it->second);
      }
      path_.pop_back();
      if (keep) {
        ++it;
      } else {
        it = obj->erase(it);
        ++rep_->keys_dropped;
      }
    }
  }

  // Path rules and detectors. inherited: the action of a path rule on an enclosing key (kOff: none).
  void Object(json::object_t* obj, PiiAction inherited) {
    for (auto it = obj->begin(); it != obj->end();) {
      path_.push_back(it->first);
      PiiAction act = inherited;
      if (const PathRule* r = rules_.Lookup(path_)) act = r->action;
      bool drop = false;
      switch (act) {
        case PiiAction::kDrop: drop = true; break;
        case PiiAction::kRedact:
          it->second = "[redacted]";
          ++rep_->values_masked;
          break;
        case PiiAction::kMask:
        case PiiAction::kHash:
        case PiiAction::kOff: drop = Value(&it->second, act); break;
      }
      path_.pop_back();
      if (drop) {
        it = obj->erase(it);
        ++rep_->keys_dropped;
      } else {
        ++it;
      }
    }
  }

 private:
  void PruneInside(json* v) {
    if (v->is_object()) {
      Prune(v->get_ptr<json::object_t*>());
    } else if (v->is_array()) {
      auto* arr = v->get_ptr<json::array_t*>();
      for (auto it = arr->begin(); it != arr->end();) {
        if (it->is_object() || it->is_array()) {
          PruneInside(&*it);
          ++it;
        } else {
          it = arr->erase(it);
        }
      }
    }
  }

  // The mask or hash path action on a whole value's text.
  std::string PathAction(std::string_view text, PiiAction act) const {
    if (act == PiiAction::kMask) return PathMask(text);
    std::string out;
    AppendPseudonym(text, rules_.key, &out);
    return out;
  }

  // Returns true when the key holding v must be dropped (a detector with action drop matched inside it).
  bool Value(json* v, PiiAction act) {
    switch (v->type()) {
      case json::value_t::object: Object(v->get_ptr<json::object_t*>(), act); return false;
      case json::value_t::array:
        for (json& e : *v->get_ptr<json::array_t*>()) {
          if (Value(&e, act)) return true;
        }
        return false;
      case json::value_t::string: {
        std::string* str = v->get_ptr<std::string*>();
        if (act == PiiAction::kMask || act == PiiAction::kHash) {
          *str = PathAction(*str, act);
          ++rep_->values_masked;
          return false;
        }
        bool drop = false;
        if (MaskText(*str, rules_.detectors, rules_.key, &scratch_, rep_, true, &drop)) {
          if (drop) return true;
          str->swap(scratch_);
        }
        return false;
      }
      case json::value_t::boolean:
      case json::value_t::number_integer:
      case json::value_t::number_unsigned:
      case json::value_t::number_float:
        if (act == PiiAction::kMask || act == PiiAction::kHash) {
          *v = PathAction(v->dump(), act);
          ++rep_->values_masked;
        }
        return false;
      default: return false;
    }
  }

  const Rules& rules_;
  PiiReport* rep_;
  Path path_;
  std::string scratch_;
};

}  // namespace

std::string PathMask(std::string_view v) {
  size_t chars = 0, first_len = 0, last_begin = 0;
  for (size_t p = 0; p < v.size();) {
    size_t len = std::min(Utf8Len(static_cast<unsigned char>(v[p])), v.size() - p);
    if (chars == 0) first_len = len;
    last_begin = p;
    p += len;
    ++chars;
  }
  std::string out;
  if (chars <= 2) return std::string(chars, '*');
  out.append(v.substr(0, first_len));
  out.append(chars - 2, '*');
  out.append(v.substr(last_begin));
  return out;
}

PiiReport WalkObject(const Rules& rules, json::object_t* obj) {
  PiiReport rep;
  Walker w(rules, &rep);
  if (rules.has_allow) w.Prune(obj);
  w.Object(obj, PiiAction::kOff);
  return rep;
}

}  // namespace ferry::pii
