// The single-pass masker: validates a properties/traits object given as JSON text and writes its masked, stored form
// in one pass over RapidJSON's SAX events (no DOM is built and dumped again; RapidJSON's reader, because nlohmann's
// SAX lexer was a third of the whole ferry_track call, docs/PERFORMANCE.md). It applies exactly what the JSON walker
// (walker.cc) applies to the parsed object: the allow list, then the path rules, then the detectors on every string
// no path rule handled; numbers and strings are written as nlohmann's dump writes them. Keys keep the order of the
// input (the walker's object sorts them). An object with a repeated key, or with more keys than the single pass
// checks for repeats, is left to the caller (kRepeatedKey: parse it and use the walker, where the last of repeated
// keys wins, as when parsing). A number beyond a double's range is refused, as nlohmann's parser refuses it.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <nlohmann/json.hpp>

#include "lib/base/json_number.h"
#include "lib/base/json_text.h"
#include "lib/base/utf8.h"
#include "sdk/pii/detectors.h"
#include "sdk/pii/pii.h"
#include "sdk/pii/rules.h"
#include "sdk/pii/walker.h"

namespace ferry::pii {
namespace {

constexpr size_t kMaxKeysChecked = 64;          // more keys in one object: the walker's path (repeats found by its map)
constexpr size_t kKeptReaderBytes = 16 * 1024;  // texts up to this size are read by the thread's kept reader

// What happens to the value of the key just read.
enum class KeyFate : uint8_t {
  kWrite,        // write it (act applies)
  kDrop,         // drop the key and skip its value
  kRedact,       // write "[redacted]" and skip the value
  kAllowInside,  // allow list: kept only if it is an object or array (then pruned inside), else dropped
};

struct Frame {
  bool object = false;
  bool prune = false;               // under the allow list: keys/elements not kept are removed
  PiiAction act = PiiAction::kOff;  // object: inherited by its keys; array: applies to its elements
  uint32_t count = 0;               // elements written (for the commas)
  size_t key_out = 0;  // object: output size before the current key was written (a drop inside rolls back to it)
  uint32_t key_count = 0;
  size_t spans_begin = 0;  // object: its first key in spans_
  // The current key's handling (object).
  KeyFate fate = KeyFate::kWrite;
  PiiAction key_act = PiiAction::kOff;
  bool key_prune = false;

  static Frame Make(bool object, bool prune, PiiAction act) {
    Frame f;
    f.object = object;
    f.prune = prune;
    f.act = act;
    return f;
  }
};

class StreamMasker {
 public:
  explicit StreamMasker(const Rules& rules) : rules_(&rules) {
    frames_.reserve(34);
    keys_.reserve(1024);
    spans_.reserve(64);
    path_.reserve(34);
  }

  void Reset(const Rules& rules, std::string* out, PiiReport* rep) {
    rules_ = &rules;
    out_ = out;
    rep_ = rep;
    frames_.clear();
    keys_.clear();
    spans_.clear();
    skip_to_ = 0;
    skipping_ = false;
    max_depth_ = 0;
    not_object_ = false;
    fallback_ = false;
    top_done_ = false;
  }

  size_t max_depth() const { return max_depth_; }
  bool not_object() const { return not_object_; }
  bool fallback() const { return fallback_; }

  // ---- RapidJSON SAX interface (kParseNumbersAsStringsFlag: numbers come as their text) ------------------------
  bool Null() { return Scalar("null", false); }
  bool Bool(bool v) { return v ? Scalar("true", false) : Scalar("false", false); }
  bool Int(int) { return false; }  // not called: numbers come as RawNumber
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  // A number, written as nlohmann's dump writes the value its parser reads: an integer that fits 64 bits as itself,
  // anything else as the double strtod reads (nlohmann's number text). Beyond a double's range: refused, as nlohmann
  // refuses it (RapidJSON refuses most such numbers itself, not all: 1234567890123456789e300 passes it).
  bool RawNumber(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    const base::JsonNumber v = base::ReadJsonNumber(std::string_view(s, n));
    std::array<char, 64> b{};
    const char* end = nullptr;
    switch (v.kind) {
      case base::JsonNumber::Kind::kInteger: end = std::to_chars(b.data(), b.data() + b.size(), v.i).ptr; break;
      case base::JsonNumber::Kind::kUnsigned: end = std::to_chars(b.data(), b.data() + b.size(), v.u).ptr; break;
      case base::JsonNumber::Kind::kFloat: end = nlohmann::detail::to_chars(b.data(), b.data() + b.size(), v.d); break;
      case base::JsonNumber::Kind::kRefused: return false;
    }
    return Scalar(std::string_view(b.data(), static_cast<size_t>(end - b.data())), false);
  }
  bool String(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    std::string_view v(s, n);
    if (!base::IsValidUtf8(v)) return false;  // escapes decode to anything, raw bytes are not checked by the reader
    return Scalar(v, true);
  }
  bool StartObject() { return Start(true); }
  bool EndObject(rapidjson::SizeType /*members*/) { return End('}'); }
  bool StartArray() { return Start(false); }
  bool EndArray(rapidjson::SizeType /*elements*/) { return End(']'); }

  bool Key(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    std::string_view k(s, n);
    if (!base::IsValidUtf8(k)) return false;
    return key(k);
  }

  bool key(std::string_view k) {
    if (Skipping()) return true;
    Frame& f = frames_.back();
    // Repeated keys: the walker decides (the last one wins, as in the parsed object).
    if (++f.key_count > kMaxKeysChecked) return Fallback();
    for (size_t i = f.spans_begin; i < spans_.size(); ++i) {
      if (std::string_view(keys_).substr(spans_[i].first, spans_[i].second) == k) return Fallback();
    }
    // This key replaces the frame's previous key in the path (spans_ holds the frame's keys; the path takes the last
    // key of each enclosing object).
    spans_.emplace_back(keys_.size(), k.size());
    keys_.append(k);
    BuildPath();
    f.key_prune = false;
    f.key_act = f.act;
    f.fate = KeyFate::kWrite;
    if (f.prune) {
      bool whole = false;
      for (const Pattern& p : rules_->allow) {
        if (MatchFull(p, path_)) {
          whole = true;
          break;
        }
      }
      if (!whole) {
        bool inside = false;
        for (const Pattern& p : rules_->allow) {
          if (MatchPrefix(p, path_)) {
            inside = true;
            break;
          }
        }
        if (!inside) {
          f.fate = KeyFate::kDrop;
          ++rep_->keys_dropped;
          return true;
        }
        f.fate = KeyFate::kAllowInside;
        f.key_prune = true;
      }
    }
    if (const PathRule* r = rules_->Lookup(path_)) f.key_act = r->action;
    if (f.key_act == PiiAction::kDrop) {
      if (f.fate != KeyFate::kAllowInside) {
        f.fate = KeyFate::kDrop;
        ++rep_->keys_dropped;
      }
      // kAllowInside + drop: dropped either way, counted once when the value's kind is known.
    } else if (f.key_act == PiiAction::kRedact && f.fate != KeyFate::kAllowInside) {
      f.fate = KeyFate::kRedact;
    }
    return true;
  }

 private:
  bool Skipping() const { return skipping_; }

  bool Fallback() {
    fallback_ = true;
    return false;  // stops the parse; the caller runs the walker
  }

  void BuildPath() {
    path_.clear();
    // Each object frame's current key is its last span.
    for (size_t d = 0; d < frames_.size(); ++d) {
      const Frame& f = frames_[d];
      if (!f.object) continue;
      size_t end = d + 1 < frames_.size() ? NextObjectSpansBegin(d) : spans_.size();
      if (end > f.spans_begin)
        path_.emplace_back(std::string_view(keys_).substr(spans_[end - 1].first, spans_[end - 1].second));
    }
  }

  // The spans_ index where the next object frame after d starts (the end of frame d's keys).
  size_t NextObjectSpansBegin(size_t d) const {
    for (size_t e = d + 1; e < frames_.size(); ++e) {
      if (frames_[e].object) return frames_[e].spans_begin;
    }
    return spans_.size();
  }

  void Comma(Frame& f) {
    if (f.count++ > 0) out_->push_back(',');
  }

  // Writes the current key of object frame f (and remembers where it began).
  void WriteKey(Frame& f) {
    f.key_out = out_->size();
    Comma(f);
    const auto& sp = spans_.back();
    base::AppendJsonString(out_, std::string_view(keys_).substr(sp.first, sp.second));
    out_->push_back(':');
  }

  // A drop found inside the value of the innermost object's current key (a detector with the drop action, in a string
  // directly under the key or in arrays under it): the key goes, and the rest of its value is skipped.
  void DropEnclosingKey() {
    size_t d = frames_.size();
    while (d > 0 && !frames_[d - 1].object) --d;
    Frame& f = frames_[d - 1];
    out_->resize(f.key_out);
    --f.count;
    ++rep_->keys_dropped;
    if (d < frames_.size()) {
      skip_to_ = d;  // skip until the frames above the object are closed
      skipping_ = true;
    }
  }

  // The action on a value, and whether it is written. Returns false when the value must be skipped.
  // *prune_inside: a container under the allow list.
  bool Enter(bool container, PiiAction* act, bool* prune_inside) {
    if (frames_.empty()) return true;
    Frame& f = frames_.back();
    if (f.object) {
      switch (f.fate) {
        case KeyFate::kDrop: return false;
        case KeyFate::kRedact:
          WriteKey(f);
          out_->append("\"[redacted]\"");
          ++rep_->values_masked;
          return false;
        case KeyFate::kAllowInside:
          if (!container || f.key_act == PiiAction::kDrop) {
            ++rep_->keys_dropped;
            return false;
          }
          if (f.key_act == PiiAction::kRedact) {
            WriteKey(f);
            out_->append("\"[redacted]\"");
            ++rep_->values_masked;
            return false;
          }
          break;
        case KeyFate::kWrite: break;
      }
      *act = f.key_act;
      *prune_inside = f.key_prune;
      WriteKey(f);
      return true;
    }
    // An array element.
    if (f.prune && !container) return false;  // the allow list keeps only containers inside a pruned array
    *act = f.act;
    *prune_inside = f.prune;
    Comma(f);
    return true;
  }

  bool Scalar(std::string_view text, bool is_string) {
    if (Skipping()) return true;
    if (frames_.empty()) {  // a bare value at the top: not an object (the parse goes on to tell bad JSON first)
      not_object_ = true;
      return true;
    }
    PiiAction act = PiiAction::kOff;
    bool prune = false;
    // A detector's drop must be known before the key is written: strings under a key are scanned first.
    if (is_string && frames_.back().object && frames_.back().fate == KeyFate::kWrite &&
        frames_.back().key_act == PiiAction::kOff) {
      bool drop = false;
      if (MaskText(text, rules_->detectors, rules_->key, &scratch_, rep_, true, &drop)) {
        if (drop) {
          ++rep_->keys_dropped;
          return true;
        }
        WriteKey(frames_.back());
        base::AppendJsonString(out_, scratch_);
      } else {
        WriteKey(frames_.back());
        base::AppendJsonString(out_, text);
      }
      return true;
    }
    if (!Enter(false, &act, &prune)) return true;
    if (act == PiiAction::kMask || act == PiiAction::kHash) {
      if (is_string || text != "null") {
        std::string v = act == PiiAction::kMask ? PathMask(text) : std::string();
        if (act == PiiAction::kHash) AppendPseudonym(text, rules_->key, &v);
        base::AppendJsonString(out_, v);
        ++rep_->values_masked;
        return true;
      }
    }
    if (!is_string) {
      out_->append(text);
      return true;
    }
    bool drop = false;
    if (MaskText(text, rules_->detectors, rules_->key, &scratch_, rep_, true, &drop)) {
      if (drop) {
        DropEnclosingKey();
        return true;
      }
      base::AppendJsonString(out_, scratch_);
    } else {
      base::AppendJsonString(out_, text);
    }
    return true;
  }

  bool Start(bool object) {
    if (Skipping()) {
      frames_.push_back(Frame::Make(object, false, PiiAction::kOff));
      max_depth_ = std::max(max_depth_, frames_.size());
      return true;
    }
    PiiAction act = PiiAction::kOff;
    bool prune = false;
    if (frames_.empty()) {
      if (top_done_ || !object) {
        not_object_ = true;
        skip_to_ = 0;
        skipping_ = true;
        frames_.push_back(Frame::Make(object, false, PiiAction::kOff));
        max_depth_ = std::max(max_depth_, frames_.size());
        return true;
      }
      prune = rules_->has_allow;
    } else if (!Enter(true, &act, &prune)) {
      skip_to_ = frames_.size();
      skipping_ = true;
      frames_.push_back(Frame::Make(object, false, PiiAction::kOff));
      max_depth_ = std::max(max_depth_, frames_.size());
      return true;
    }
    Frame f = Frame::Make(object, prune, act);
    f.spans_begin = spans_.size();
    frames_.push_back(f);
    max_depth_ = std::max(max_depth_, frames_.size());
    out_->push_back(object ? '{' : '[');
    return true;
  }

  bool End(char close) {
    if (Skipping()) {
      frames_.pop_back();
      if (frames_.size() == skip_to_) skipping_ = false;
      if (frames_.empty()) skipping_ = not_object_;
      return true;
    }
    const Frame& f = frames_.back();
    if (f.object) {
      keys_.resize(f.spans_begin < spans_.size() ? spans_[f.spans_begin].first : keys_.size());
      spans_.resize(f.spans_begin);
    }
    frames_.pop_back();
    out_->push_back(close);
    if (frames_.empty()) top_done_ = true;
    return true;
  }

  const Rules* rules_;
  std::string* out_ = nullptr;
  PiiReport* rep_ = nullptr;
  std::vector<Frame> frames_;
  std::string keys_;                              // the keys of the open objects, one after another
  std::vector<std::pair<size_t, size_t>> spans_;  // (offset, length) in keys_, per open object its keys in order
  Path path_;
  std::string scratch_;
  size_t skip_to_ = 0;  // while skipping: the frame count at which the skipped value ends
  bool skipping_ = false;
  size_t max_depth_ = 0;
  bool not_object_ = false;
  bool fallback_ = false;
  bool top_done_ = false;
};

// The pass itself, given the thread's masker and a reader.
ObjectTextOutcome MaskWith(StreamMasker& m, rapidjson::Reader& reader, const Rules& rules, std::string_view text,
                           size_t max_depth, std::string* out, PiiReport* rep) {
  size_t start = out->size();
  m.Reset(rules, out, rep);
  // A NUL byte is never JSON (nor in a string, raw); RapidJSON's streams would read it as the end of the text.
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) return ObjectTextOutcome::kNotJson;
  rapidjson::MemoryStream in(text.data(), text.size());
  // Iterative: a deeply nested input uses the reader's heap stack, not the call stack.
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;
  bool ok = !reader.Parse<kFlags>(in, m).IsError();
  if (!ok && m.fallback()) {
    out->resize(start);
    return ObjectTextOutcome::kRepeatedKey;
  }
  if (!ok) return ObjectTextOutcome::kNotJson;
  if (m.not_object()) return ObjectTextOutcome::kNotObject;
  if (m.max_depth() > max_depth) return ObjectTextOutcome::kTooDeep;
  return ObjectTextOutcome::kOk;
}

}  // namespace

ObjectTextOutcome MaskObjectText(const Rules& rules, std::string_view text, size_t max_depth, std::string* out,
                                 PiiReport* rep) {
  // The masker and the reader keep their buffers between calls (the reader decodes strings into its stack). They live
  // on the heap behind one thread_local pointer, read once: with the objects themselves thread_local, GCC recomputed
  // their address (a __tls_get_addr call in a shared library) at every use inside the inlined callbacks, 5 % of
  // ferry_track. A large text gets a reader of its own, so that no thread keeps its memory.
  struct Kept {
    explicit Kept(const Rules& r) : masker(r) {}
    StreamMasker masker;
    rapidjson::Reader reader;
  };
  thread_local std::unique_ptr<Kept> kept;
  if (!kept) kept = std::make_unique<Kept>(rules);
  Kept* k = kept.get();
  if (text.size() <= kKeptReaderBytes) return MaskWith(k->masker, k->reader, rules, text, max_depth, out, rep);
  rapidjson::Reader own;
  return MaskWith(k->masker, own, rules, text, max_depth, out, rep);
}

}  // namespace ferry::pii
