// EventCodec: how the buffer stores an event's JSON. Since schema 3 the writer stores each event as a BLOB: the 4-byte
// little-endian id of a row of the buffer's `dicts` table, then a zstd frame (level 1) compressed against that row's
// bytes (the JSON envelope the events of one device and session share, behind zstd's entropy tables; see
// DictionaryFrom). Rows written as TEXT (older buffers, consent records, salvaged rows) are the JSON itself.
//
// Not thread-safe: the buffer calls it under its mutex.
#ifndef FERRY_SDK_CORE_EVENT_CODEC_H_
#define FERRY_SDK_CORE_EVENT_CODEC_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zstd.h>

#include "lib/base/status.h"

namespace ferry::core {

class EventCodec {
 public:
  EventCodec();
  ~EventCodec();
  EventCodec(const EventCodec&) = delete;
  EventCodec& operator=(const EventCodec&) = delete;

  // Makes dictionary `id` (its bytes) known for decoding; current: also used for compressing from now on.
  base::Status AddDictionary(int64_t id, std::string_view bytes, bool current);
  bool has_current() const { return current_id_ != 0; }
  int64_t current_id() const { return current_id_; }
  // No dictionary current: events are stored as text until the next AddDictionary(..., true).
  void DropCurrent();
  // Forgets dictionary `id` (its rows are gone); the current one stays current only if it is not `id`.
  void RemoveDictionary(int64_t id);
  // Forgets every dictionary.
  void Clear();
  // Whether the current dictionary carries entropy tables (DictionaryFrom since they were added), not content alone.
  bool current_has_tables() const { return current_has_tables_; }
  static bool HasTables(std::string_view dictionary);

  // The stored form of json (a dictionary must be current). False: zstd failed (store the text instead).
  bool Compress(std::string_view json, std::string* out);
  // Counts every change of the current dictionary (none at first is 0): a stored form made with generation() is the
  // one Compress would make for as long as generation() is unchanged.
  uint64_t generation() const { return generation_; }

  // The current dictionary, for compressing on another thread than the codec's (Precompressor): zstd lets threads
  // share a CDict, each through a context of its own; the snapshot keeps it alive after the codec drops it.
  struct Current {
    std::shared_ptr<const ZSTD_CDict> cdict;  // null: no dictionary is current
    uint32_t id = 0;
    uint64_t generation = 0;
  };
  Current current() const { return Current{cdict_, static_cast<uint32_t>(current_id_), generation_}; }

  // Compresses with a snapshot, with a context of its own: the same bytes as Compress for the same generation.
  // Not thread-safe itself: one per thread.
  class Precompressor {
   public:
    Precompressor();
    // The stored form of json under `dict` (a snapshot with a dictionary). False: zstd failed.
    bool Compress(const Current& dict, std::string_view json, std::string* out);
    // Lets go of the dictionary it was last given (its content names the device's ids).
    void Release();

   private:
    std::unique_ptr<ZSTD_CCtx, void (*)(ZSTD_CCtx*)> cctx_;
    const ZSTD_CDict* referenced_ = nullptr;
  };
  // The id of the dictionary a stored BLOB was compressed with (0: too short to name one).
  static int64_t DictionaryIdOf(std::string_view blob);
  // The JSON of a stored BLOB. kCorruption when it cannot be decoded (an unknown dictionary, a damaged frame).
  base::Result<std::string> Decompress(std::string_view blob);

  // The dictionary's bytes for the events of one device, from the JSON of one of them: the envelope's keys, the ids
  // and facts its events share (anonymousId, userId, the consent receipt, the context with its session id, the
  // prefixes of the time and of the messageId), never the event's name or properties' values, behind entropy tables
  // computed from the symbol statistics of the samples (a zstd "full" dictionary; their counts, not their text).
  // samples: the events whose statistics make the tables (none: event_json alone).
  static std::string DictionaryFrom(std::string_view event_json, const std::vector<std::string>& samples = {});

 private:
  struct Free {
    void operator()(ZSTD_CCtx* p) const { ZSTD_freeCCtx(p); }
    void operator()(ZSTD_DCtx* p) const { ZSTD_freeDCtx(p); }
    void operator()(ZSTD_CDict* p) const { ZSTD_freeCDict(p); }
    void operator()(ZSTD_DDict* p) const { ZSTD_freeDDict(p); }
  };
  std::unique_ptr<ZSTD_CCtx, Free> cctx_;
  std::unique_ptr<ZSTD_DCtx, Free> dctx_;
  std::shared_ptr<const ZSTD_CDict> cdict_;
  std::map<int64_t, std::unique_ptr<ZSTD_DDict, Free>> ddicts_;
  int64_t current_id_ = 0;
  uint64_t generation_ = 0;
  bool current_has_tables_ = false;
};

}  // namespace ferry::core

#endif  // FERRY_SDK_CORE_EVENT_CODEC_H_
