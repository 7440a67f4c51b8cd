// How the embedded store keeps an event's body (events.body). Since this build a body is stored as a BLOB: one byte
// naming the format (kBodyFormatZstdDict1), then a zstd frame compressed against a dictionary built into the
// collector (kBodyDictionary1 in body_codec.cc: the wire format's keys and the envelope's common values, nothing any
// client sent). A body the dictionary does not shrink, and every body stored before, is TEXT: the JSON itself. The
// dictionary is part of the file format: it never changes; a better one would be format 2, with 1 still read.
//
// Why a fixed dictionary and not one trained on the stored events (as the SDK's buffer does for one device): a
// dictionary made from many people's events would keep fragments of them (ids, property values) after those people's
// events were erased.
//
// Thread-safe: each thread compresses and decompresses with contexts of its own; the dictionaries are shared.
#ifndef FERRY_COLLECTOR_ENGINES_SQLITE_BODY_CODEC_H_
#define FERRY_COLLECTOR_ENGINES_SQLITE_BODY_CODEC_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "collector/store/records.h"
#include "lib/base/sqlite.h"
#include "lib/base/status.h"

namespace ferry::collector::sqlite {

inline constexpr unsigned char kBodyFormatZstdDict1 = 0x01;
// A stored body decodes to at most this many bytes (an event is at most 32 KiB on the wire; a body adds receivedAt
// and the corrected timestamp). A frame that claims more is refused as damaged.
inline constexpr size_t kMaxStoredBodyBytes = 1u << 20;

// The stored form of `json` into *out: true, a BLOB to store; false (*out empty), store `json` as TEXT (zstd did not
// shrink it, or failed).
bool EncodeBody(std::string_view json, std::string* out);

// The JSON of a stored BLOB. kCorruption when it cannot be decoded (an unknown format, a damaged frame, a size past
// kMaxStoredBodyBytes).
base::Result<std::string> DecodeBody(std::string_view blob);

// The one place a reader turns a stored body into JSON: column `col` of `st`'s current row, decoded when it is a
// BLOB. Call it before anything else reads that column: a value read as text is converted in place, and SQLite no
// longer tells its type. kCorruption as DecodeBody.
base::Result<std::string> ReadBody(const base::Stmt& st, int col);

// An events row read as EventFromRow does (kEventColumns from column `first` on), its body through ReadBody.
base::Result<EventRow> ReadEventRow(const base::Stmt& st, const std::string& project, int first = 0);

}  // namespace ferry::collector::sqlite

#endif  // FERRY_COLLECTOR_ENGINES_SQLITE_BODY_CODEC_H_
