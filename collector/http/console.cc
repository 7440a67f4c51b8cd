#include "collector/http/console.h"

#include <string>
#include <string_view>

#include "collector/http/console_assets.h"

namespace ferry::collector {

namespace {

// Everything the console loads comes from this origin; no inline script or style, no plugins, no framing, no <base>.
constexpr const char* kCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

void SecurityHeaders(httpd::Response& r) {
  r.headers.Set("Content-Security-Policy", kCsp);
  r.headers.Set("X-Content-Type-Options", "nosniff");
  r.headers.Set("Referrer-Policy", "no-referrer");
  r.headers.Set("X-Frame-Options", "DENY");
  r.headers.Set("Cross-Origin-Opener-Policy", "same-origin");
  r.headers.Set("Cross-Origin-Resource-Policy", "same-origin");
}

const console::Asset* Find(std::string_view name, const console::Asset* assets = console::kAssets,
                           size_t count = console::kAssetCount) {
  if (name.empty()) name = "index.html";
  for (size_t i = 0; i < count; ++i) {
    if (name == assets[i].name) return &assets[i];
  }
  return nullptr;
}

httpd::Response Serve(const console::Asset& a) {
  httpd::Response r;
  r.status = 200;
  r.body.assign(reinterpret_cast<const char*>(a.data), a.size);
  r.headers.Set("Content-Type", a.content_type);
  r.headers.Set("Cache-Control", a.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  SecurityHeaders(r);
  return r;
}

httpd::Response NotFound(std::string_view why) {
  httpd::Response r = httpd::Response::Error(404, why);
  SecurityHeaders(r);
  r.headers.Set("Cache-Control", "no-store");
  return r;
}

}  // namespace

bool ConsoleBuiltIn() { return console::kAssetCount > 0; }

void RegisterConsoleRoutes(httpd::Router& svr, base::Logger log) {
  if (!ConsoleBuiltIn()) log.Warn("this build has no console (configured with -DFERRY_CONSOLE=OFF)");
  svr.Get("/console", [](httpd::Request&) {
    httpd::Response r;
    r.status = 308;
    r.headers.Set("Location", "/console/");
    SecurityHeaders(r);
    return r;
  });
  svr.Get("/console/{file*}", [](httpd::Request& req) {
    if (!ConsoleBuiltIn()) return NotFound("this collector was built without the console (FERRY_CONSOLE=OFF)");
    // Only the embedded files, by exact name: no directories, no file system behind it.
    const console::Asset* a = Find(req.Param("file"));
    if (a == nullptr) return NotFound("no such file in the console");
    return Serve(*a);
  });
}

void RegisterSelfServeRoutes(httpd::Router& svr) {
  svr.Get("/self-service", [](httpd::Request&) {
    httpd::Response r;
    r.status = 308;
    r.headers.Set("Location", "/self-service/");
    SecurityHeaders(r);
    return r;
  });
  svr.Get("/self-service/{file*}", [](httpd::Request& req) {
    if (console::kSelfServeAssetCount == 0) {
      return NotFound("this collector was built without the console (FERRY_CONSOLE=OFF)");
    }
    const console::Asset* a = Find(req.Param("file"), console::kSelfServeAssets, console::kSelfServeAssetCount);
    if (a == nullptr) return NotFound("no such file");
    return Serve(*a);
  });
}

}  // namespace ferry::collector
