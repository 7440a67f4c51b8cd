// Test helper: a gzip stream (zlib, gzip wrapper) of `in`, for tests of what decodes gzip bodies. Header-only; link
// ZLIB::ZLIB.
#ifndef FERRY_TESTS_SUPPORT_GZIP_H_
#define FERRY_TESTS_SUPPORT_GZIP_H_

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace ferry::testsupport {

inline std::string Gzip(const std::string& in, int level = 6) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace ferry::testsupport

#endif  // FERRY_TESTS_SUPPORT_GZIP_H_
