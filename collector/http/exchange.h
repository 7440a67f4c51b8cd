// The thin layer between the collector's handlers and lib/httpd (the event-driven server, lib/httpd/httpd.h): a
// handler reads an HttpRequest and fills an HttpResponse. The member names are cpp-httplib's, on purpose: the handler
// bodies read as they did before the port to lib/httpd, and code written against them moves with a rename of the
// two types. Everything about connections, limits and framing is lib/httpd's and happens before a handler runs.
#ifndef FERRY_COLLECTOR_HTTP_EXCHANGE_H_
#define FERRY_COLLECTOR_HTTP_EXCHANGE_H_

#include <functional>
#include <string>
#include <string_view>

#include "lib/httpd/httpd.h"

namespace ferry::collector {

class HttpRequest {
 public:
  explicit HttpRequest(const httpd::Request& r)
      : method(r.method), target(r.target), body(r.body), remote_addr(r.remote_addr), r_(r) {}

  const std::string& method;
  const std::string& target;  // as sent, still percent-encoded
  const std::string& body;    // whole, at most the route's body limit
  const std::string& remote_addr;

  std::string get_header_value(std::string_view name) const { return r_.headers.Get(name); }
  bool has_param(std::string_view name) const { return r_.Query(name).has_value(); }
  std::string get_param_value(std::string_view name) const { return r_.Query(name).value_or(std::string()); }
  // A named segment of the route pattern ("{id}"), decoded.
  std::string path_param(std::string_view name) const { return r_.Param(name); }
  const httpd::Request& raw() const { return r_; }

 private:
  const httpd::Request& r_;
};

class HttpResponse {
 public:
  int status = 200;

  void set_content(std::string body, std::string_view content_type);
  void set_header(std::string name, std::string value) { out_.headers.Set(std::move(name), std::move(value)); }
  // A chunked answer whose body `provider` writes on the worker thread; when it returns false the answer is cut off
  // (no terminating chunk, the connection closes), so the client sees a broken body rather than a short one.
  void set_chunked_content_provider(std::string_view content_type, std::function<bool(httpd::BodyWriter&)> provider);

  httpd::Response Take();

 private:
  httpd::Response out_;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

// An httpd route handler that runs `h`.
httpd::Handler Adapt(HttpHandler h);

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_EXCHANGE_H_
