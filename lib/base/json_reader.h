// RapidJSON's SAX reader as Ferry reads with it (the SDK's single-pass masker, the collector's single pass of
// /v1/batch). Every file that reads with RapidJSON includes it through here, so that the reader is compiled the same
// way everywhere: with its SSE2 string scan where the target has SSE2 (RapidJSON 1.1 has no other), which copies the
// runs of a string that need no unescaping 16 bytes at a time instead of byte by byte. The scan works only on a
// rapidjson::StringStream, which reads up to a NUL byte and loads whole aligned 16-byte blocks: ReaderText gives such
// a stream over a copy of the text followed by zero bytes, so no load leaves the copy, and refuses what the scan
// would let through.
// Needs RapidJSON's include directory (the target's ${RAPIDJSON_INCLUDE_DIRS}); lib/base itself does not use it.
#ifndef FERRY_LIB_BASE_JSON_READER_H_
#define FERRY_LIB_BASE_JSON_READER_H_

#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif

#include <rapidjson/reader.h>

#include <string>
#include <string_view>

namespace ferry::base {

// The zero bytes after the copy: the NUL that ends the stream and the rest of an aligned 16-byte block after it.
constexpr size_t kJsonReaderPadding = 16;

// A copy of `text` in *buf, ended by kJsonReaderPadding zero bytes, to read as a rapidjson::StringStream; null when
// the text holds a byte that is never JSON and that this reader would not refuse itself: a NUL (the stream would end
// there) or a byte 0x1A-0x1F. RapidJSON 1.1's SSE2 scan tests "below 0x20" as "at most 0x19", so it copied those
// bytes into a string as they are; JSON allows no byte below 0x20 in a string, nor outside one but the four
// whitespace bytes, so such a text is refused whole, as nlohmann refuses it.
inline const char* ReaderText(std::string_view text, std::string* buf) {
  bool bad = false;
  for (unsigned char c : text) bad |= c == 0 || static_cast<unsigned char>(c - 0x1A) < 6;
  if (bad) return nullptr;
  buf->reserve(text.size() + kJsonReaderPadding);
  buf->assign(text.data(), text.size());
  buf->append(kJsonReaderPadding, '\0');
  return buf->data();
}

}  // namespace ferry::base

#endif  // FERRY_LIB_BASE_JSON_READER_H_
