// The adapter behind ferry_options_set_transport(): an HttpTransport that calls the host's native HTTP stack.
#include <cstdlib>
#include <string>
#include <vector>

#include "sdk/c_api/callback_transport.h"

namespace ferry::platform {
namespace {

class CallbackTransport : public HttpTransport {
 public:
  CallbackTransport(SendFn send, void* user, void (*free_user)(void*))
      : send_(send), user_(user), free_user_(free_user) {}
  ~CallbackTransport() override {
    if (free_user_ != nullptr) free_user_(user_);
  }
  CallbackTransport(const CallbackTransport&) = delete;
  CallbackTransport& operator=(const CallbackTransport&) = delete;

  base::Status Post(const HttpRequest& req, HttpResponse* resp) override {
    *resp = HttpResponse();
    if (send_ == nullptr) return Fail(resp, "no send function");

    std::vector<const char*> headers;
    headers.reserve(req.headers.size() + 1);
    for (const std::string& h : req.headers) headers.push_back(h.c_str());
    headers.push_back(nullptr);

    ferry_http_request creq{};
    creq.method = "POST";
    creq.url = req.url.c_str();
    creq.headers = headers.data();
    creq.body = reinterpret_cast<const uint8_t*>(req.body.data());
    creq.body_len = req.body.size();
    creq.timeout_ms = req.timeout_ms;

    ferry_http_response cresp{};
    ferry_status st = send_(&creq, &cresp, user_);

    // The body belongs to us whatever send() returned.
    std::string body;
    if (cresp.body != nullptr) {
      body.assign(reinterpret_cast<const char*>(cresp.body), cresp.body_len);
      std::free(cresp.body);
    }
    if (st != FERRY_OK) return Fail(resp, "native transport failed (status " + std::to_string(st) + ")");
    if (cresp.status <= 0) return Fail(resp, "native transport returned no HTTP status");
    resp->status = cresp.status;
    resp->retry_after_s = cresp.retry_after_s;
    resp->body = std::move(body);
    return base::Status::Ok();
  }

 private:
  static base::Status Fail(HttpResponse* resp, const std::string& msg) {
    resp->status = 0;
    resp->error = msg;
    return base::Status::Network(msg);
  }

  SendFn send_;
  void* user_;
  void (*free_user_)(void*);
};

}  // namespace

std::unique_ptr<HttpTransport> NewCallbackTransport(SendFn send, void* user, void (*free_user)(void*)) {
  return std::make_unique<CallbackTransport>(send, user, free_user);
}

}  // namespace ferry::platform
