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
constexpr size_t kMaxDepthRead = 64;            // a larger max_depth is taken as this (the reader recurses per level)

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
  size_t keys_begin = 0;  // object: its first key in keys_
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

// The masked object while it is written: a buffer the thread keeps, written through a pointer after one room check
// per piece (std::string's append checks and may move for every piece, and the pieces are many and small).
class Sink {
 public:
  size_t size() const { return len_; }
  std::string_view view() const { return std::string_view(buf_.data(), len_); }
  void Clear() { len_ = 0; }
  void Truncate(size_t n) { len_ = n; }
  // Gives back the memory a large text made it take (texts up to kKept bytes keep theirs between calls).
  void Release(size_t kept) {
    if (buf_.size() > kept) std::vector<char>().swap(buf_);
  }

  void Put(char c) {
    *Room(1) = c;
    ++len_;
  }
  void Append(std::string_view s) {
    if (s.empty()) return;
    std::memcpy(Room(s.size()), s.data(), s.size());
    len_ += s.size();
  }
  void AppendJsonString(std::string_view s) {
    char* at = Room(base::JsonStringBound(s.size()));
    len_ = static_cast<size_t>(base::WriteJsonString(at, s) - buf_.data());
  }

 private:
  char* Room(size_t n) {
    if (buf_.size() - len_ < n) buf_.resize(std::max(len_ + n, 2 * buf_.size()));
    return buf_.data() + len_;
  }

  std::vector<char> buf_;
  size_t len_ = 0;
};

class StreamMasker {
 public:
  explicit StreamMasker(const Rules& rules) : rules_(&rules) {
    frames_.reserve(34);
    keys_.reserve(64);
    path_.reserve(34);
  }

  void Reset(const Rules& rules, size_t max_depth, PiiReport* rep) {
    max_depth_ = max_depth;
    rules_ = &rules;
    out_.Clear();
    rep_ = rep;
    frames_.clear();
    keys_.clear();
    skip_to_ = 0;
    skipping_ = false;
    too_deep_ = false;
    not_object_ = false;
    fallback_ = false;
    top_done_ = false;
  }

  bool too_deep() const { return too_deep_; }
  Sink& sink() { return out_; }
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
    std::string_view text(s, n);
    std::array<char, 64> b;
    // Most numbers apps send are written back as they came (an integer, "19.9"): copied, not read and printed.
    if (!base::IsCanonicalJsonNumber(text)) {
      const base::JsonNumber v = base::ReadJsonNumber(text);
      const char* end = nullptr;
      switch (v.kind) {
        case base::JsonNumber::Kind::kInteger: end = std::to_chars(b.data(), b.data() + b.size(), v.i).ptr; break;
        case base::JsonNumber::Kind::kUnsigned: end = std::to_chars(b.data(), b.data() + b.size(), v.u).ptr; break;
        case base::JsonNumber::Kind::kFloat:
          end = nlohmann::detail::to_chars(b.data(), b.data() + b.size(), v.d);
          break;
        case base::JsonNumber::Kind::kRefused: return false;
      }
      text = std::string_view(b.data(), static_cast<size_t>(end - b.data()));
    }
    return Scalar(text, false);
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
    for (size_t i = f.keys_begin; i < keys_.size(); ++i) {
      // (Length and first byte before the compare: keys of one length usually differ at once.)
      const std::string_view seen = keys_[i];
      if (seen.size() == k.size() && (k.empty() || (seen[0] == k[0] && seen == k))) return Fallback();
    }
    // This key replaces the frame's previous key in the path (spans_ holds the frame's keys; the path takes the last
    // key of each enclosing object).
    keys_.push_back(k);
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
      size_t end = d + 1 < frames_.size() ? NextObjectKeysBegin(d) : keys_.size();
      if (end > f.keys_begin) path_.push_back(keys_[end - 1]);
    }
  }

  // The keys_ index where the next object frame after d starts (the end of frame d's keys).
  size_t NextObjectKeysBegin(size_t d) const {
    for (size_t e = d + 1; e < frames_.size(); ++e) {
      if (frames_[e].object) return frames_[e].keys_begin;
    }
    return keys_.size();
  }

  void Comma(Frame& f) {
    if (f.count++ > 0) out_.Put(',');
  }

  // Writes the current key of object frame f (and remembers where it began).
  void WriteKey(Frame& f) {
    f.key_out = out_.size();
    Comma(f);
    out_.AppendJsonString(keys_.back());
    out_.Put(':');
  }

  // A drop found inside the value of the innermost object's current key (a detector with the drop action, in a string
  // directly under the key or in arrays under it): the key goes, and the rest of its value is skipped.
  void DropEnclosingKey() {
    size_t d = frames_.size();
    while (d > 0 && !frames_[d - 1].object) --d;
    Frame& f = frames_[d - 1];
    out_.Truncate(f.key_out);
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
          out_.Append("\"[redacted]\"");
          ++rep_->values_masked;
          return false;
        case KeyFate::kAllowInside:
          if (!container || f.key_act == PiiAction::kDrop) {
            ++rep_->keys_dropped;
            return false;
          }
          if (f.key_act == PiiAction::kRedact) {
            WriteKey(f);
            out_.Append("\"[redacted]\"");
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
        out_.AppendJsonString(scratch_);
      } else {
        WriteKey(frames_.back());
        out_.AppendJsonString(text);
      }
      return true;
    }
    if (!Enter(false, &act, &prune)) return true;
    if (act == PiiAction::kMask || act == PiiAction::kHash) {
      if (is_string || text != "null") {
        std::string v = act == PiiAction::kMask ? PathMask(text) : std::string();
        if (act == PiiAction::kHash) AppendPseudonym(text, rules_->key, &v);
        out_.AppendJsonString(v);
        ++rep_->values_masked;
        return true;
      }
    }
    if (!is_string) {
      out_.Append(text);
      return true;
    }
    bool drop = false;
    if (MaskText(text, rules_->detectors, rules_->key, &scratch_, rep_, true, &drop)) {
      if (drop) {
        DropEnclosingKey();
        return true;
      }
      out_.AppendJsonString(scratch_);
    } else {
      out_.AppendJsonString(text);
    }
    return true;
  }

  bool Start(bool object) {
    // Deeper than allowed: the pass stops here (the reader recurses once per level, so its depth stays bounded).
    if (frames_.size() >= max_depth_) {
      too_deep_ = true;
      return false;
    }
    if (Skipping()) {
      frames_.push_back(Frame::Make(object, false, PiiAction::kOff));
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
        return true;
      }
      prune = rules_->has_allow;
    } else if (!Enter(true, &act, &prune)) {
      skip_to_ = frames_.size();
      skipping_ = true;
      frames_.push_back(Frame::Make(object, false, PiiAction::kOff));
      return true;
    }
    Frame f = Frame::Make(object, prune, act);
    f.keys_begin = keys_.size();
    frames_.push_back(f);
    out_.Put(object ? '{' : '[');
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
      keys_.resize(f.keys_begin);
    }
    frames_.pop_back();
    out_.Put(close);
    if (frames_.empty()) top_done_ = true;
    return true;
  }

  const Rules* rules_;
  Sink out_;
  PiiReport* rep_ = nullptr;
  std::vector<Frame> frames_;
  // The keys of the open objects, per object in order: views of the text being read (read in place, it stays put).
  std::vector<std::string_view> keys_;
  Path path_;
  std::string scratch_;
  size_t skip_to_ = 0;  // while skipping: the frame count at which the skipped value ends
  bool skipping_ = false;
  size_t max_depth_ = 0;  // an object is depth 1
  bool too_deep_ = false;
  bool not_object_ = false;
  bool fallback_ = false;
  bool top_done_ = false;
};

// The pass itself, given the thread's masker and a reader.
// The pass itself, given the thread's masker and reader, and a buffer for the copy that is read in place.
ObjectTextOutcome MaskWith(StreamMasker& m, rapidjson::Reader& reader, std::vector<char>* copy, const Rules& rules,
                           std::string_view text, size_t max_depth, std::string* out, PiiReport* rep) {
  m.Reset(rules, std::min(max_depth, kMaxDepthRead), rep);
  // A NUL byte is never JSON (nor in a string, raw); the reader takes the first one for the end of the text.
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) return ObjectTextOutcome::kNotJson;
  // Read in place (RapidJSON decodes each string over its own text, and the keys stay where they are), recursively: a
  // third fewer instructions than reading a const text with the iterative reader. The masker stops the read at the
  // first level deeper than max_depth, which bounds the recursion.
  copy->assign(text.begin(), text.end());
  copy->push_back('\0');
  rapidjson::InsituStringStream in(copy->data());
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag;
  bool ok = !reader.Parse<kFlags>(in, m).IsError();
  if (!ok && m.fallback()) return ObjectTextOutcome::kRepeatedKey;
  if (!ok && m.too_deep()) return ObjectTextOutcome::kTooDeep;  // (what follows is not read: JSON or not)
  if (!ok) return ObjectTextOutcome::kNotJson;
  if (m.not_object()) return ObjectTextOutcome::kNotObject;
  out->append(m.sink().view());
  return ObjectTextOutcome::kOk;
}

}  // namespace

ObjectTextOutcome MaskObjectText(const Rules& rules, std::string_view text, size_t max_depth, std::string* out,
                                 PiiReport* rep) {
  // The masker, the reader and the copy read in place keep their buffers between calls. They live
  // on the heap behind one thread_local pointer, read once: with the objects themselves thread_local, GCC recomputed
  // their address (a __tls_get_addr call in a shared library) at every use inside the inlined callbacks, 5 % of
  // ferry_track. A large text gets a reader of its own, so that no thread keeps its memory.
  struct Kept {
    explicit Kept(const Rules& r) : masker(r) {}
    StreamMasker masker;
    rapidjson::Reader reader;
    std::vector<char> copy;
  };
  thread_local std::unique_ptr<Kept> kept;
  if (!kept) kept = std::make_unique<Kept>(rules);
  Kept* k = kept.get();
  if (text.size() <= kKeptReaderBytes)
    return MaskWith(k->masker, k->reader, &k->copy, rules, text, max_depth, out, rep);
  rapidjson::Reader own;
  std::vector<char> own_copy;
  ObjectTextOutcome o = MaskWith(k->masker, own, &own_copy, rules, text, max_depth, out, rep);
  k->masker.sink().Release(4 * kKeptReaderBytes);
  return o;
}

}  // namespace ferry::pii
