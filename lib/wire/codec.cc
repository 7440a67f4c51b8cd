#include "lib/wire/codec.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace ferry::wire {

namespace {

struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};
using ZstdDCtxPtr = std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree>;

// A z_stream that is always inflateEnd-ed.
class Inflater {
 public:
  Inflater() = default;
  ~Inflater() {
    if (ok_) inflateEnd(&zs_);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  bool Init() {
    ok_ = inflateInit2(&zs_, 15 + 16) == Z_OK;  // gzip wrapper only
    return ok_;
  }
  z_stream* get() { return &zs_; }

 private:
  z_stream zs_{};
  bool ok_ = false;
};

// Largest window a frame may ask for: 8 MiB (larger than any batch we accept), so a frame header cannot make the
// decoder allocate zstd's default 128 MiB.
constexpr int kZstdWindowLogMax = 23;
constexpr size_t kChunk = 64 * 1024;

// The streaming decoder, for frames that do not say how large they are (or say it wrongly): it writes straight into
// *out, which grows as output comes, and stops as soon as the output would exceed max_out.
DecodeResult DecodeZstdStream(ZSTD_DCtx* dctx, std::string_view in, size_t max_out, std::string* out) {
  const size_t start = out->size();
  const size_t limit = max_out - std::min(max_out, start);
  if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, kZstdWindowLogMax))) {
    return DecodeResult::kCorrupt;
  }
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  size_t cap = std::min(limit, kChunk), pos = 0;
  size_t last = 1;  // 0 once a frame is complete
  auto fail = [&](DecodeResult r) {
    out->resize(start);
    return r;
  };
  out->resize(start + cap);
  while (true) {
    if (pos == cap) {
      if (cap == limit) {
        // At the limit: one more byte of output is too much.
        char probe;
        ZSTD_outBuffer pb{&probe, 1, 0};
        size_t ret = ZSTD_decompressStream(dctx, &pb, &ib);
        if (ZSTD_isError(ret)) return fail(DecodeResult::kCorrupt);
        if (pb.pos > 0) return fail(DecodeResult::kTooLarge);
        last = ret;
        if (ib.pos == ib.size) break;
        continue;
      }
      cap = std::min(limit, cap * 2);
      out->resize(start + cap);
    }
    ZSTD_outBuffer ob{out->data() + start + pos, cap - pos, 0};
    size_t ret = ZSTD_decompressStream(dctx, &ob, &ib);
    if (ZSTD_isError(ret)) return fail(DecodeResult::kCorrupt);
    pos += ob.pos;
    last = ret;
    if (ib.pos == ib.size && pos < cap) break;  // input consumed and the decoder has nothing buffered
  }
  out->resize(start + pos);
  return last == 0 ? DecodeResult::kOk : fail(DecodeResult::kCorrupt);  // not 0: truncated frame
}

DecodeResult DecodeZstd(std::string_view in, size_t max_out, std::string* out) {
  if (in.empty()) return DecodeResult::kCorrupt;
  const size_t start = out->size();
  const size_t limit = max_out - std::min(max_out, start);
  // A frame that says how large it is (every Ferry client's does) is decoded in one call into output sized once: no
  // window buffer, no copy through a bounce buffer, no regrowing (a 500-event batch was ~0.8 MB of copies and fresh
  // pages each time). A size above the limit is refused before any work. A frame that says it wrongly, or input of
  // several frames, goes to the streaming decoder, which enforces the limit as it goes; so a false size costs at
  // most one allocation within the limit.
  const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR) {
    if (declared > limit) return DecodeResult::kTooLarge;
    const auto size = static_cast<size_t>(declared);
    // The thread keeps its context for these one-call decodes (making one was ~3 % of the collector's handler
    // threads): a one-call decode allocates nothing in it beyond the context itself (~100 KiB), and starts afresh.
    thread_local ZstdDCtxPtr kept(ZSTD_createDCtx());
    if (!kept) return DecodeResult::kCorrupt;
    out->resize(start + size);
    size_t n = ZSTD_decompressDCtx(kept.get(), out->data() + start, size, in.data(), in.size());
    if (!ZSTD_isError(n) && n == size) return DecodeResult::kOk;
    out->resize(start);
  }
  // The streaming decoder's context allocates its window (up to 8 MiB): one of its own, freed after this body.
  ZstdDCtxPtr dctx(ZSTD_createDCtx());
  if (!dctx) return DecodeResult::kCorrupt;
  return DecodeZstdStream(dctx.get(), in, max_out, out);
}

DecodeResult DecodeGzip(std::string_view in, size_t max_out, std::string* out) {
  if (in.empty()) return DecodeResult::kCorrupt;
  Inflater inf;
  if (!inf.Init()) return DecodeResult::kCorrupt;
  z_stream* zs = inf.get();
  size_t pos = 0;
  char buf[kChunk];
  bool ended = false;
  while (true) {
    // zlib counts in uInt; feed at most 1 GiB at a time.
    if (zs->avail_in == 0 && pos < in.size()) {
      size_t n = std::min<size_t>(in.size() - pos, 1u << 30);
      zs->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + pos));
      zs->avail_in = static_cast<uInt>(n);
      pos += n;
    }
    zs->next_out = reinterpret_cast<Bytef*>(buf);
    zs->avail_out = sizeof buf;
    int rc = inflate(zs, Z_NO_FLUSH);
    size_t produced = sizeof buf - zs->avail_out;
    if (produced > max_out - std::min(max_out, out->size())) return DecodeResult::kTooLarge;
    out->append(buf, produced);
    if (rc == Z_STREAM_END) {
      ended = true;
      if (zs->avail_in == 0 && pos == in.size()) break;
      // Another gzip member follows (RFC 1952 allows concatenation).
      if (inflateReset(zs) != Z_OK) return DecodeResult::kCorrupt;
      ended = false;
      continue;
    }
    if (rc == Z_BUF_ERROR) {
      if (zs->avail_in == 0 && pos == in.size()) break;  // truncated: no more input, no progress
      continue;
    }
    if (rc != Z_OK) return DecodeResult::kCorrupt;
  }
  return ended ? DecodeResult::kOk : DecodeResult::kCorrupt;
}

}  // namespace

Encoding ParseEncoding(std::string_view header) {
  // Trim spaces, compare case-insensitively.
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
  std::string h(header);
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (h.empty() || h == "identity") return Encoding::kIdentity;
  if (h == "zstd") return Encoding::kZstd;
  if (h == "gzip" || h == "x-gzip") return Encoding::kGzip;
  return Encoding::kUnknown;
}

std::string ZstdCompress(std::string_view in, int level) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), level);
  if (ZSTD_isError(n)) return {};
  out.resize(n);
  return out;
}

struct ZstdCompressor::Impl {
  struct FreeCctx {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  };
  std::unique_ptr<ZSTD_CCtx, FreeCctx> cctx{ZSTD_createCCtx()};
  std::unique_ptr<char[]> out;  // not cleared: zstd writes what it returns
  size_t cap = 0;
};

ZstdCompressor::ZstdCompressor() : impl_(std::make_unique<Impl>()) {}
ZstdCompressor::~ZstdCompressor() = default;

std::string ZstdCompressor::Compress(std::string_view in, int level) {
  if (!impl_->cctx) return ZstdCompress(in, level);
  const size_t bound = ZSTD_compressBound(in.size());
  if (bound > impl_->cap) {
    impl_->out.reset(new char[bound]);
    impl_->cap = bound;
  }
  size_t n = ZSTD_compressCCtx(impl_->cctx.get(), impl_->out.get(), impl_->cap, in.data(), in.size(), level);
  if (ZSTD_isError(n)) return {};
  return std::string(impl_->out.get(), n);
}

DecodeResult Decode(Encoding enc, std::string_view in, size_t max_out, std::string* out) {
  out->clear();
  switch (enc) {
    case Encoding::kIdentity:
      if (in.size() > max_out) return DecodeResult::kTooLarge;
      out->assign(in.data(), in.size());
      return DecodeResult::kOk;
    case Encoding::kZstd: return DecodeZstd(in, max_out, out);
    case Encoding::kGzip: return DecodeGzip(in, max_out, out);
    case Encoding::kUnknown: break;
  }
  return DecodeResult::kUnknownEncoding;
}

}  // namespace ferry::wire
