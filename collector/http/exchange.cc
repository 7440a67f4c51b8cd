#include "collector/http/exchange.h"

#include <utility>

namespace ferry::collector {

void HttpResponse::set_content(std::string body, std::string_view content_type) {
  out_.body = std::move(body);
  out_.headers.Set("Content-Type", std::string(content_type));
}

void HttpResponse::set_chunked_content_provider(std::string_view content_type,
                                                std::function<bool(httpd::BodyWriter&)> provider) {
  out_.headers.Set("Content-Type", std::string(content_type));
  out_.stream = [provider = std::move(provider)](httpd::BodyWriter& w) {
    if (!provider(w)) w.Abort();
  };
}

httpd::Response HttpResponse::Take() {
  out_.status = status;
  return std::move(out_);
}

httpd::Handler Adapt(HttpHandler h) {
  return [h = std::move(h)](httpd::Request& r) {
    HttpRequest req(r);
    HttpResponse res;
    h(req, res);
    return res.Take();
  };
}

}  // namespace ferry::collector
