// The detectors: one row of the table in detectors.cc per detector (its name in the rules, its redact text, the bytes
// a match may start at, its matcher and how it masks and normalises a match), and the scanner that runs the table
// over a string. A new detector is one row there plus its functions (and kNumDetectors + 1); docs/PII.md says how.
// Internal to sdk/pii.
#ifndef FERRY_SDK_PII_DETECTORS_H_
#define FERRY_SDK_PII_DETECTORS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/secret.h"
#include "sdk/pii/pii.h"

namespace ferry::pii {

// One match of a detector in a scanned string. (No member initializers: MatchList keeps 8 uninitialised in place.)
struct Match {
  uint32_t begin;
  uint32_t end;
  uint8_t det;   // the detector's row in the table
  uint8_t sub;   // the detector's own (phone: 0 = China mobile, 1 = other E.164; ip: 4 or 6)
  uint32_t aux;  // the detector's own (email: offset of '@'; China mobile: of the national number; IPv6: groups)
};

// The matches of one string, in order. No allocation for up to 8 matches.
class MatchList {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Match& operator[](size_t k) { return k < kInline ? inline_[k] : spill_[k - kInline]; }
  const Match& operator[](size_t k) const { return k < kInline ? inline_[k] : spill_[k - kInline]; }
  void push_back(const Match& m) {
    if (size_ < kInline) {
      inline_[size_] = m;
    } else {
      spill_.push_back(m);
    }
    ++size_;
  }
  void pop_back() {
    --size_;
    if (size_ >= kInline) spill_.pop_back();
  }

 private:
  static constexpr size_t kInline = 8;
  std::array<Match, kInline> inline_;
  std::vector<Match> spill_;
  size_t size_ = 0;
};

// The bytes a match may begin at (a detector's `starts`).
enum StartAt : uint8_t { kAtDigit = 1, kAtHexLetter = 2, kAtSign = 4, kAtPlus = 8, kAtColon = 16 };

// A position where a match may begin, as the scanner hands it to a matcher. At a digit or a letter the scanner has
// checked the left boundary already (LeftOk in text.h: the match does not continue a word or a dotted number); at
// other bytes the matcher checks its own.
struct Start {
  std::string_view s;
  size_t i = 0;            // the position
  size_t run = 0;          // the digits at s[i] (0 when s[i] is not a digit)
  bool has_colon = false;  // s holds a ':' somewhere (an IPv6 address is possible)
};

// A row of the detector table (detectors.cc).
struct Detector {
  const char* name;      // in the rules: {"detectors": {name: action}}
  const char* redacted;  // what redact writes (and drop, where there is no key to drop)
  uint8_t starts;        // StartAt bits: the scanner calls match only at these bytes...
  uint8_t colon_starts;  // ... and at these too in a string that holds a ':'
  // Tries a match at at.i. On success sets m->end (and m->sub, m->aux as the detector likes; m->begin is at.i, a
  // matcher may move it back) and returns true. found holds the earlier matches of this string; a matcher may take
  // back bytes they cover (email does, for a phone number in its local part). The match must hold a digit, an '@'
  // or a ':' (strings with none are never scanned) and be bounded on the right (RightOk in text.h).
  bool (*match)(const Start& at, MatchList* found, Match* m);
  // Appends the text whose pseudonym the hash action writes: one value written two ways normalises to one text.
  void (*normalize)(std::string_view s, const Match& m, std::string* out);
  // Appends what the mask action writes.
  void (*mask)(std::string_view s, const Match& m, std::string* out);
};

// The number of rows in the table.
inline constexpr size_t kNumDetectors = 5;

// The row of the detector with this name, or -1.
int FindDetector(std::string_view name);
// "email, phone, cn_id, card, ip": the names, for error messages.
std::string DetectorNames();

// What the rules ask of each detector: an action per row, "redact" unless set.
class DetectorActions {
 public:
  DetectorActions();
  PiiAction operator[](size_t row) const { return of_[row]; }
  void Set(size_t row, PiiAction a);
  // Some detector is on (otherwise nothing is scanned).
  bool any_on() const { return starts_[1] != 0; }
  // The StartAt bits of every detector that is on; has_colon: the string holds a ':'.
  uint8_t starts(bool has_colon) const { return starts_[has_colon ? 1 : 0]; }

 private:
  std::array<PiiAction, kNumDetectors> of_;
  std::array<uint8_t, 2> starts_{};
};

// Runs the detectors over s. Returns true when s has matches; then *out holds the new text, unless drop_ok and a
// detector whose action is drop matched: then *drop is set and *out is unspecified. rep counts the matches.
bool MaskText(std::string_view s, const DetectorActions& actions, const base::SecretBytes& key, std::string* out,
              PiiReport* rep, bool drop_ok, bool* drop);

// Appends "h:" + 32 hex characters of keyed BLAKE2b-128 over data (the hash action's pseudonym).
void AppendPseudonym(std::string_view data, const base::SecretBytes& key, std::string* out);

}  // namespace ferry::pii

#endif  // FERRY_SDK_PII_DETECTORS_H_
