// The admin API over HTTP (docs/PROTOCOL.md, docs/COLLECTOR.md): subjects (show, export, erase,
// correct), the request register, the audit log, write keys, and the device's POST /v1/forget. This file only
// speaks HTTP: it reads the request, calls the rights service (collector/rights/), which authorises, acts and audits,
// and writes the answer; a failure's status code becomes the HTTP status once (lib/wire/http_status.h).
#ifndef FERRY_COLLECTOR_HTTP_ADMIN_H_
#define FERRY_COLLECTOR_HTTP_ADMIN_H_

#include <memory>
#include <optional>
#include <string>

#include "collector/http/exchange.h"
#include "collector/http/rate_limit.h"
#include "collector/rights/registry.h"
#include "collector/rights/rights_service.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/httpd/httpd.h"

namespace ferry::collector {

// A register entry as the admin API answers it (docs/PROTOCOL.md); `now` decides whether it is overdue.
rights::Json RequestJson(const RightsRequest& r, int64_t now);

// Percent-decodes a URL path segment ('+' stays '+'); nullopt for a malformed escape or an embedded NUL.
std::optional<std::string> DecodePathSegment(const std::string& s);

struct AdminOptions {
  // Refused admin calls (401/403) a source address may make: a token bucket of this rate (per second) and size;
  // beyond it the source gets 429 with Retry-After. <= 0 turns the limit off.
  double refusal_rate = 5;
  double refusal_burst = 100;
  // GET /v1/whoami tells the console whether the insight's routes are served (the collector runs with --insight).
  bool insight = false;
  // The purpose and processing registry, for the cover page of a readable copy (GET .../export?format=html); none:
  // the cover says that no purposes are registered.
  rights::RegistryService* registry = nullptr;
  // Requests filed by devices (POST /v1/device/requests): how long a one-time link to a copy lives, and the filings
  // allowed per device (write key and id: a token bucket of this rate per second and size) and per write key.
  int64_t copy_link_ttl_ms = 15 * 60 * 1000;
  double device_request_rate = 1.0 / 60;
  double device_request_burst = 5;
  double device_key_request_rate = 1;
  double device_key_request_burst = 20;
};

class AdminApi {
 public:
  // `rights` and `clock` must outlive this object.
  AdminApi(rights::RightsService* rights, base::Logger log, AdminOptions options = AdminOptions(),
           base::Clock* clock = base::SystemClock());
  // Adds the admin and /v1/forget routes.
  void Register(httpd::Router& svr);
  // Whether the request carries an admin token with role `role` (used for /metrics away from loopback).
  bool HasRole(const HttpRequest& req, const std::string& role);
  // POST /v1/forget calls allowed per write key: `rate_per_s` (<= 0: unlimited) with a bucket of `burst`
  // (default: 1 a second, bursts of 20).
  void LimitForgets(double rate_per_s, double burst, base::Clock* clock);

 private:
  // The caller of an admin call; on failure the answer (401/403/5xx) is written and nullopt returned.
  std::optional<rights::Actor> Caller(const HttpRequest& req, HttpResponse& res, rights::Action action,
                                      const std::string& subject);

  void Subject(const HttpRequest& req, HttpResponse& res);
  void ShowSubject(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q);
  void ExportSubject(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q);
  void SubjectEvents(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q);
  void EventConsent(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q, const std::string& message_id);
  void EraseSubject(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q);
  void Suppression(const HttpRequest& req, HttpResponse& res);
  void PatchTraits(const HttpRequest& req, HttpResponse& res, const SubjectQuery& q);
  void ListRequests(const HttpRequest& req, HttpResponse& res);
  void AddRequest(const HttpRequest& req, HttpResponse& res);
  void ActOnRequest(const HttpRequest& req, HttpResponse& res, bool approve);
  void CompleteRequest(const HttpRequest& req, HttpResponse& res);
  void DeliverCopy(const HttpRequest& req, HttpResponse& res);
  // Streams the JSON copy of an access or portability request; once written out in full, it is recorded as
  // delivered by `actor` (which completes the request).
  void StreamCopy(HttpResponse& res, const RightsRequest& r, const rights::Actor& actor);
  void RequestStats(const HttpRequest& req, HttpResponse& res);
  void LiftRequest(const HttpRequest& req, HttpResponse& res);
  void RestrictionModeRoute(const HttpRequest& req, HttpResponse& res, bool set);
  void ListAudit(const HttpRequest& req, HttpResponse& res);
  void VerifyAudit(const HttpRequest& req, HttpResponse& res);
  void CreateWriteKey(const HttpRequest& req, HttpResponse& res, bool server);
  void ConfirmLink(const HttpRequest& req, HttpResponse& res);
  void WhoAmI(const HttpRequest& req, HttpResponse& res);
  void ListKeys(const HttpRequest& req, HttpResponse& res);
  void ChangeKey(const HttpRequest& req, HttpResponse& res);
  void Forget(const HttpRequest& req, HttpResponse& res);
  // Requests filed by a device (docs/PROTOCOL.md "Requests filed by a device").
  void FileDeviceRequest(const HttpRequest& req, HttpResponse& res);
  void DeviceRequestStatus(const HttpRequest& req, HttpResponse& res);
  void DeviceCopyLink(const HttpRequest& req, HttpResponse& res);
  void CopyByLink(const HttpRequest& req, HttpResponse& res);
  // The project of the write key of a call about request {id} and the claim in its body, within the calls allowed
  // per request; on failure the answer is written.
  std::optional<std::pair<WriteKeyInfo, std::string>> DeviceCaller(const HttpRequest& req, HttpResponse& res);

  rights::RightsService* rights_;
  base::Logger log_;
  base::Clock* clock_;
  RateLimiter refusals_;               // refused calls by source address
  bool insight_;                       // AdminOptions::insight
  rights::RegistryService* registry_;  // AdminOptions::registry
  std::unique_ptr<RateLimiter> forget_limiter_ = std::make_unique<RateLimiter>(1, 20);
  int64_t copy_link_ttl_ms_;    // AdminOptions::copy_link_ttl_ms
  RateLimiter device_filings_;  // filings per device (write key and first id)
  RateLimiter key_filings_;     // filings per write key
  RateLimiter device_calls_;    // status and link calls per request
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_ADMIN_H_
