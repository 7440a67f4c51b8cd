// The admin API (docs/PROTOCOL.md): subjects (show, export, erase, correct), the request register, the audit
// log, and the device's POST /v1/forget. Every admin call is authorised by a bearer admin token with roles and
// written to the hash-chained audit log.
#ifndef FERRY_COLLECTOR_HTTP_ADMIN_H_
#define FERRY_COLLECTOR_HTTP_ADMIN_H_

#include <optional>
#include <string>

#include "collector/http/metrics.h"
#include "collector/store/store.h"
#include "lib/base/log.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ferry::collector {

struct AdminOptions {
  int64_t request_due_ms = 15LL * 24 * 3600 * 1000;  // due date of a new request (default 15 days)
};

// Percent-decodes a URL path segment ('+' stays '+'); nullopt for a malformed escape or an embedded NUL.
std::optional<std::string> DecodePathSegment(const std::string& s);

class AdminApi {
 public:
  AdminApi(Store* store, Metrics* metrics, base::Logger log, AdminOptions opts);
  // Adds the admin and /v1/forget routes.
  void Register(httplib::Server& svr);
  // Whether the request carries an admin token with role `role` (used for /metrics away from loopback).
  bool HasRole(const httplib::Request& req, const std::string& role);

 private:
  struct Caller {
    AdminTokenInfo token;
    std::string role;  // the role that allowed the call
  };
  // Checks the token and roles; on failure answers 401/403 (and audits the attempt) and returns nullopt.
  std::optional<Caller> Authorize(const httplib::Request& req, httplib::Response& res, const std::string& action,
                                  std::initializer_list<const char*> roles, const std::string& subject);
  // Appends to the audit log; false (and a 503 answer) when that failed.
  bool Audit(const std::string& actor, const std::string& role, const std::string& action, const std::string& subject,
             const std::string& result, const std::string& detail, httplib::Response* res);
  bool AuditCaller(const Caller& c, const std::string& action, const std::string& subject, const std::string& result,
                   const std::string& detail, httplib::Response* res);

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
  void Forget(const httplib::Request& req, httplib::Response& res);

  Store* store_;
  Metrics* metrics_;
  base::Logger log_;
  AdminOptions opts_;
};

}  // namespace ferry::collector

#endif  // FERRY_COLLECTOR_HTTP_ADMIN_H_
