// On-device PII masking (docs/PII.md): built-in detectors scan every string value, path rules act on property paths,
// an allow list keeps only named properties. Hand-written scanners, no std::regex.
//
// The engine, by concern: detectors.{h,cc} (the detector table and the scanner: a new detector goes there),
// rules.{h,cc} (the rules parser and path patterns), walker.{h,cc} (the JSON walker), text.h (byte classes), and this
// file, the entry points.
//
// NOTE on the rules JSON (the full reference, with examples, is docs/PII.md):
//
//   {"detectors": {"email": "mask", "phone": "hash", "ip": "off"},
//    "paths":     {"*.password": "drop", "user.phone": "hash", "address": "redact"},
//    "allow":     ["plan", "price", "user.*"],
//    "hash_key":  "<64 hex chars>"}
//
// Every top-level key is optional; any other top-level key is an error. An empty (or all-blank) rules string and
// "{}" both mean the defaults.
// - "detectors": detector name -> action. Names: email, phone, cn_id, card, ip. Actions: redact, mask, hash, drop,
//   off. A detector not named keeps "redact".
// - "paths": pattern -> action (redact, mask, hash, drop, or off = "no path rule here"). A pattern is a dot-separated
//   property path relative to the properties/traits object; "*" stands for exactly one key, except that a LEADING
//   "*" followed by more segments means "at any depth" ("*.password" matches "password", "a.password",
//   "a.b.password"). Arrays are transparent: {"items": [{"sku": 1}]} has the path "items.sku". Keys compare
//   ASCII-case-insensitively. The defaults "*.password", "*.token", "*.secret" -> drop always apply unless the
//   rules name that exact pattern themselves (e.g. "*.token": "off" keeps tokens, still scanned by the detectors).
//   When several patterns match, the one with more literal (non-"*") segments wins; on a tie the stricter action
//   (drop > redact > hash > mask > off), then an anchored pattern over an any-depth one.
//   redact replaces the whole value (any type) with "[redacted]"; mask and hash act on a string, number or bool
//   (numbers and bools through their JSON text, giving a string) and, on an object or array, on every such value
//   inside it unless a deeper pattern matches; drop removes the key. Values under a path rule are not scanned.
// - "allow": list of patterns (same syntax). When present, a key is kept if a pattern matches its path (it is kept
//   whole), or if it holds an object/array that may contain a match (it is kept and pruned inside); every other key
//   is removed. "user.*" keeps "user" and all its children; [] removes everything.
// - "hash_key": 64 hex chars (32 bytes); overrides the key given to Create().
//
// Detector outputs: redact -> "[email]", "[phone]", "[cn_id]", "[card]", "[ip]". mask -> "a***@example.com",
// "138****5678" (a country prefix is kept as written: "+86 138****5678"; other E.164: "+44******0958"),
// "110105********002X", "************1111", "192.168.*.*", "2001:db8:*". hash -> "h:" + 32 hex chars of keyed
// BLAKE2b-128 over a normalised form (email lowercased, phone digits, card digits, id with upper-case X, ip
// lowercased), so "138 1234 5678" and "+8613812345678" give the same pseudonym. drop -> the key holding the string
// is removed (inside an array: the key holding the array). Keys themselves are never scanned.
#ifndef FERRY_SDK_PII_PII_H_
#define FERRY_SDK_PII_PII_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lib/base/secret.h"
#include "lib/base/status.h"

namespace ferry::pii {

enum class PiiAction { kOff, kRedact, kMask, kHash, kDrop };

// Counters of what one Apply call changed (summed into the client's stats).
struct PiiReport {
  uint32_t values_masked = 0;  // string values (or parts of them) redacted, masked or hashed
  uint32_t keys_dropped = 0;   // keys removed by "drop" or by the allow list
};

// What MaskObjectText found.
enum class ObjectTextOutcome {
  kOk,           // valid: the masked object was appended
  kNotJson,      // not valid JSON (or not UTF-8, or a number beyond a double's range, as nlohmann's parse refuses it)
  kNotObject,    // valid JSON, not an object
  kTooDeep,      // nests deeper than max_depth (an object is depth 1)
  kRepeatedKey,  // an object repeats a key (or has more than 64 keys): parse it and ApplyToObject
};

// Immutable after Create(); Apply*/MaskString are const and safe from many threads at once.
class PiiMasker {
 public:
  // Parses rules JSON. An empty string means the defaults: every detector on with "redact";
  // "*.password", "*.token", "*.secret" dropped. fallback_hash_key (32 bytes) is used when the rules carry no
  // "hash_key". Invalid JSON, an unknown key, detector or action, a bad pattern, or no 32-byte hash key:
  // kInvalidArgument with the reason.
  static base::Result<std::shared_ptr<const PiiMasker>> Create(std::string_view rules_json,
                                                               const base::SecretBytes& fallback_hash_key);

  // Masks an object (properties or traits) in place: allow list, then path rules, then detectors on every string
  // value that no path rule handled (nested objects and arrays too). Not an object: left alone.
  PiiReport ApplyToObject(nlohmann::json* obj) const;

  // The single pass of the track path: validates json (the text of an object) and appends its masked form to *out,
  // doing what ApplyToObject does to the parsed object without building it: RapidJSON's SAX reader (strict RFC 8259,
  // strings checked as UTF-8, a NUL byte anywhere refused) feeds a writer that applies the allow list, the path rules
  // and the detectors as each key and value arrives. Keys keep their input order; numbers and strings are written as
  // nlohmann's dump writes them. The pass stops at the first level deeper than max_depth (at most 64; a larger value
  // is taken as 64): kTooDeep, even when the text turns out not to be JSON further on. Anything but kOk: nothing is
  // appended.
  ObjectTextOutcome MaskObjectText(std::string_view json, size_t max_depth, std::string* out,
                                   PiiReport* report = nullptr) const;

  // Runs the detectors over one string (a screen name, an event name) and returns the masked text. There is no key
  // to drop here, so a detector whose action is "drop" redacts instead.
  std::string MaskString(std::string_view s, PiiReport* report = nullptr) const;

  ~PiiMasker();

 private:
  struct Impl;
  explicit PiiMasker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::pii

#endif  // FERRY_SDK_PII_PII_H_
