#include "collector/engines/sqlite/body_codec.h"

#include <memory>
#include <utility>

#include <zstd.h>

#include "collector/store/columns.h"

namespace ferry::collector::sqlite {

using base::Result;
using base::Status;

namespace {

// Format 1's dictionary: zstd "raw content" (no entropy tables), the stored bodies' keys in the order the ingest
// path writes them (sorted) and the values many events share: the SDKs' context, the purposes and consent states, the
// event types, the time's century. zstd finds the nearest copies cheapest, so the commonest come last. Written once;
// never edited (stored bodies are decoded with it for as long as they are kept).
constexpr std::string_view kBodyDictionary1 =
    R"({"anonymousId":"","consentReceipt":"","context":{"app":{"build":"","name":"","namespace":"","version":""},)"
    R"("campaign":{"name":"","source":""},"consent":{"advertising":"denied","functional":"granted",)"
    R"("personalization":"denied","marketing":"denied","analytics":"granted"},"device":{"manufacturer":"",)"
    R"("model":"","type":"mobile"},"ip":"","library":{"name":"ferry","version":"1.0.0"},"locale":"en-US",)"
    R"("os":{"name":"Android","version":""},"os":{"name":"iOS","version":""},"os":{"name":"Windows","version":""},)"
    R"("os":{"name":"macOS","version":""},"os":{"name":"Linux","version":""},"page":{"path":"/","referrer":"",)"
    R"("title":"","url":"https://"},"screen":{"height":,"width":},"sessionId":"","timezone":"Asia/Shanghai",)"
    R"("timezone":"America/","timezone":"Europe/","userAgent":"Mozilla/5.0 "},"deviceSeq":1,"event":"",)"
    R"("messageId":"","originalTimestamp":"","previousId":"","properties":{"language":"en","method":"explicit",)"
    R"("noticeId":"","noticeVersion":"","previous":"denied","purpose":"analytics","receiptId":"","seq":1,)"
    R"("state":"granted"},"properties":{"currency":"EUR","price":,"quantity":1,"sku":"","value":},)"
    R"("purpose":"necessary","purpose":"marketing","purpose":"analytics","receivedAt":"2026-01-01T00:00:00.000Z",)"
    R"("timestamp":"2026-01-01T00:00:00.000Z","timestampClamped":"","traits":{"email":"","name":""},)"
    R"("type":"alias","type":"consent","type":"identify","type":"screen","name":"","type":"track","userId":""})";

// zstd level -1 (its fast mode): about half level 1's time for a few percent more bytes on an SDK's ~460-byte track
// event (docs/PERFORMANCE.md). The request threads pay it, beside the writer on two cores.
constexpr int kLevel = -1;

struct Dicts {
  ZSTD_CDict* cdict;
  ZSTD_DDict* ddict;
};

// Made once for the process and never freed (they are shared by every thread's contexts for as long as it runs).
const Dicts& SharedDicts() {
  // The dictionary does not begin with zstd's dictionary magic number: zstd takes it as raw content.
  static const Dicts dicts{
      ZSTD_createCDict(kBodyDictionary1.data(), kBodyDictionary1.size(), kLevel),
      ZSTD_createDDict(kBodyDictionary1.data(), kBodyDictionary1.size()),
  };
  return dicts;
}

struct FreeCCtx {
  void operator()(ZSTD_CCtx* p) const { ZSTD_freeCCtx(p); }
};
struct FreeDCtx {
  void operator()(ZSTD_DCtx* p) const { ZSTD_freeDCtx(p); }
};

ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, FreeCCtx> cctx;
  if (!cctx) {
    cctx.reset(ZSTD_createCCtx());
    if (cctx) {
      // No checksum (the page's MAC guards the bytes), no dictionary id (the format byte names it), the content size
      // in the header (the reader sizes its buffer once and refuses a frame that claims too much).
      ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 0);
      ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_dictIDFlag, 0);
      ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1);
    }
  }
  return cctx.get();
}

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, FreeDCtx> dctx;
  if (!dctx) dctx.reset(ZSTD_createDCtx());
  return dctx.get();
}

}  // namespace

bool EncodeBody(std::string_view json, std::string* out) {
  const Dicts& d = SharedDicts();
  ZSTD_CCtx* cctx = ThreadCCtx();
  out->clear();
  if (d.cdict == nullptr || cctx == nullptr || json.size() > kMaxStoredBodyBytes) return false;
  if (ZSTD_isError(ZSTD_CCtx_refCDict(cctx, d.cdict))) return false;
  out->resize(1 + ZSTD_compressBound(json.size()));
  (*out)[0] = static_cast<char>(kBodyFormatZstdDict1);
  size_t n = ZSTD_compress2(cctx, out->data() + 1, out->size() - 1, json.data(), json.size());
  // Worth storing only if it is smaller than the text.
  if (ZSTD_isError(n) || 1 + n >= json.size()) {
    out->clear();
    return false;
  }
  out->resize(1 + n);
  return true;
}

Result<std::string> DecodeBody(std::string_view blob) {
  if (blob.empty() || static_cast<unsigned char>(blob[0]) != kBodyFormatZstdDict1) {
    return Status::Corruption("a stored event body has an unknown format");
  }
  const Dicts& d = SharedDicts();
  ZSTD_DCtx* dctx = ThreadDCtx();
  if (d.ddict == nullptr || dctx == nullptr) return Status::Internal("zstd could not make a decompression context");
  const char* frame = blob.data() + 1;
  const size_t frame_size = blob.size() - 1;
  unsigned long long size = ZSTD_getFrameContentSize(frame, frame_size);
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxStoredBodyBytes) {
    return Status::Corruption("a stored event body is damaged (its frame's size)");
  }
  std::string json(static_cast<size_t>(size), '\0');
  size_t n = ZSTD_decompress_usingDDict(dctx, json.data(), json.size(), frame, frame_size, d.ddict);
  if (ZSTD_isError(n) || n != json.size()) {
    return Status::Corruption(std::string("a stored event body is damaged: ") +
                              (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  }
  return json;
}

Result<std::string> ReadBody(const base::Stmt& st, int col) {
  if (sqlite3_column_type(st.get(), col) != SQLITE_BLOB) return st.Text(col);
  const void* p = sqlite3_column_blob(st.get(), col);
  const int n = sqlite3_column_bytes(st.get(), col);
  if (p == nullptr || n <= 0) return DecodeBody({});
  return DecodeBody(std::string_view(static_cast<const char*>(p), static_cast<size_t>(n)));
}

Result<EventRow> ReadEventRow(const base::Stmt& st, const std::string& project, int first) {
  auto body = ReadBody(st, first + 8);  // before EventFromRow reads the column as text
  if (!body.ok()) return body.status();
  EventRow e = EventFromRow(st, project, first);
  e.body = std::move(body).value();
  return e;
}

}  // namespace ferry::collector::sqlite
