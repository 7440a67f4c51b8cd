// The admin API over HTTP (docs/PROTOCOL.md, docs/COLLECTOR.md): subjects (show, export, erase,
// correct), the request register, the audit log, write keys, and the device's POST /v1/forget. This file only
// speaks HTTP: it reads the request, calls the rights service (collector/rights/), which authorises, acts and audits,
// and writes the answer; a failure's status code becomes the HTTP status once (lib/wire/http_status.h).
#ifndef FERRY_COLLECTOR_HTTP_ADMIN_H_
#define FERRY_COLLECTOR_HTTP_ADMIN_H_

#include <optional>
#include <string>

#include "collector/http/rate_limit.h"
#include "collector/rights/rights_service.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ferry::collector {

// Percent-decodes a URL path segment ('+' stays '+'); nullopt for a malformed escape or an embedded NUL.
std::optional<std::string> DecodePathSegment(const std::string& s);

struct AdminOptions {
  // Refused admin calls (401/403) a source address may make: a token bucket of this rate (per second) and size;
  // beyond it the source gets 429 with Retry-After. <= 0 turns the limit off.
  double refusal_rate = 5;
  double refusal_burst = 100;
};

class AdminApi {
 public:
  // `rights` and `clock` must outlive this object.
  AdminApi(rights::RightsService* rights, base::Logger log, AdminOptions options = AdminOptions(),
           base::Clock* clock = base::SystemClock());
  // Adds the admin and /v1/forget routes.
  void Register(httplib::Server& svr);
  // Whether the request carries an admin token with role `role` (used for /metrics away from loopback).
  bool HasRole(const httplib::Request& req, const std::string& role);

 private:
  // The caller of an admin call; on failure the answer (401/403/5xx) is written and nullopt returned.
  std::optional<rights::Actor> Caller(const httplib::Request& req, httplib::Response& res, rights::Action action,
                                      const std::string& subject);

  void Subject(const httplib::Request& req, httplib::Response& res);
  void ShowSubject(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q);
  void ExportSubject(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q);
  void EraseSubject(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q);
  void PatchTraits(const httplib::Request& req, httplib::Response& res, const SubjectQuery& q);
  void ListRequests(const httplib::Request& req, httplib::Response& res);
  void AddRequest(const httplib::Request& req, httplib::Response& res);
  void ActOnRequest(const httplib::Request& req, httplib::Response& res, bool approve);
  void ListAudit(const httplib::Request& req, httplib::Response& res);
  void VerifyAudit(const httplib::Request& req, httplib::Response& res);
  void CreateWriteKey(const httplib::Request& req, httplib::Response& res);
  void ListKeys(const httplib::Request& req, httplib::Response& res);
  void ChangeKey(const httplib::Request& req, httplib::Response& res);
  void Forget(const httplib::Request& req, httplib::Response& res);

  rights::RightsService* rights_;
  base::Logger log_;
  base::Clock* clock_;
  RateLimiter refusals_;  // refused calls by source address
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_ADMIN_H_
