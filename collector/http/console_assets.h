// The officer's console (docs/CONSOLE.md) as bytes inside the binary: index.html and its content-hashed script and
// style sheet. The definitions are generated at build time (collector/console/embed.cmake, from the bundle esbuild
// makes of collector/console/src); a build configured with -DFERRY_CONSOLE=OFF links console_none.cc (no assets).
#ifndef FERRY_COLLECTOR_HTTP_CONSOLE_ASSETS_H_
#define FERRY_COLLECTOR_HTTP_CONSOLE_ASSETS_H_

#include <cstddef>

namespace ferry::collector::console {

struct Asset {
  const char* name;          // path under /console/ ("index.html", "app.<sha256 prefix>.js")
  const char* content_type;  // "text/javascript; charset=utf-8", ...
  const unsigned char* data;
  size_t size;
  bool immutable;  // its name carries its content hash: cached for a year
};

extern const Asset kAssets[];
extern const size_t kAssetCount;  // 0 when the build has no console
// The self-service page for data subjects (served under /self-service/ with --public-requests on).
extern const Asset kSelfServeAssets[];
extern const size_t kSelfServeAssetCount;  // 0 when the build has no console

}  // namespace ferry::collector::console

#endif  // FERRY_COLLECTOR_HTTP_CONSOLE_ASSETS_H_
