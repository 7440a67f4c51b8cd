#include "collector/http/outbox_routes.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>

#include "collector/http/route_util.h"
#include "lib/wire/json_body.h"

namespace ferry::collector {

namespace {

using rights::Json;

// A non-negative integer parameter, `fallback` when absent; nullopt when malformed.
std::optional<int64_t> IntParam(const HttpRequest& req, const char* name, int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  std::string v = req.get_param_value(name);
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || end == nullptr || *end != '\0' || n < 0) return std::nullopt;
  return n;
}

Json DeliveryJson(const OutboxDelivery& d) {
  return {{"seq", d.seq},
          {"destination", d.destination},
          {"state", d.state},
          {"attempts", d.attempts},
          {"lastStatus", d.last_status > 0 ? Json(d.last_status) : Json(nullptr)},
          {"lastError", d.last_error.empty() ? Json(nullptr) : Json(d.last_error)},
          {"nextAttemptAt", d.state == "pending" ? Json(rights::Iso(d.next_ms)) : Json(nullptr)},
          {"deliveredAt", d.delivered_ms > 0 ? Json(rights::Iso(d.delivered_ms)) : Json(nullptr)}};
}

}  // namespace

void RegisterOutboxRoutes(httpd::Router& svr, RightsTransactions* store, rights::RightsService* rights) {
  svr.Get("/v1/outbox", Adapt([store, rights](const HttpRequest& req, HttpResponse& res) {
            auto c = RouteCaller(*rights, req, res, rights::Action::kOutboxRead);
            if (!c) return;
            auto after = IntParam(req, "after", 0);
            auto limit = IntParam(req, "limit", 100);
            if (!after || !limit || *limit < 1 || *limit > 1000) {
              return FailJson(res, base::Status::InvalidArgument("after must be >= 0 and limit 1 to 1000"));
            }
            auto page = store->TransactFor<Json>(TxnMode::kRead, [&](StoreTxn& tx) -> base::Result<Json> {
              auto rows = tx.primitives().ListOutbox(*after, static_cast<size_t>(*limit));
              if (!rows.ok()) return rows.status();
              Json entries = Json::array();
              int64_t next = *after;
              for (const auto& e : *rows) {
                auto doc = rights::Outbox::Open(tx, e);
                if (!doc.ok()) return doc.status();
                (*doc)["createdAt"] = rights::Iso(e.created_ms);
                entries.push_back(std::move(doc).value());
                next = e.seq;
              }
              auto acks = tx.primitives().OutboxAcks();
              if (!acks.ok()) return acks.status();
              return Json{{"entries", entries},
                          {"next", next},
                          {"more", static_cast<int64_t>(rows->size()) == *limit},
                          {"acknowledged", *acks}};
            });
            if (!page.ok()) return FailJson(res, page.status());
            auto audited = rights->RecordAudit(*c, "outbox.read", "", "ok",
                                               rights::Dump({{"after", *after}, {"count", (*page)["entries"].size()}}));
            if (!audited.ok()) return FailJson(res, audited);
            OkJson(res, *page);
          }));
  svr.Post("/v1/outbox/ack", Adapt([store, rights](const HttpRequest& req, HttpResponse& res) {
             auto c = RouteCaller(*rights, req, res, rights::Action::kOutboxAck);
             if (!c) return;
             auto body = wire::ParseJson(req.body, wire::BodyLimits());
             if (!body.ok()) return FailJson(res, body.status());
             const Json& b = *body;
             if (!b.is_object() || !b.contains("consumer") || !b["consumer"].is_string() ||
                 b["consumer"].get<std::string>().empty() || b["consumer"].get<std::string>().size() > 64 ||
                 !b.contains("seq") || !b["seq"].is_number_integer() || b["seq"].get<int64_t>() < 0) {
               return FailJson(res,
                               base::Status::InvalidArgument(
                                   "the body must be {\"consumer\": 1-64 characters, \"seq\": a seq of the feed}"));
             }
             std::string consumer = b["consumer"].get<std::string>();
             int64_t seq = b["seq"].get<int64_t>();
             auto acked = store->TransactFor<int64_t>(TxnMode::kWrite, [&](StoreTxn& tx) -> base::Result<int64_t> {
               FERRY_RETURN_IF_ERROR(tx.primitives().AckOutbox(consumer, seq, tx.NowMs()));
               AuditEntry e;
               e.time_ms = tx.NowMs();
               e.actor = c->audit_name;
               e.role = c->role;
               e.action = "outbox.ack";
               e.result = "ok";
               e.detail = rights::Dump({{"consumer", consumer}, {"seq", seq}});
               FERRY_RETURN_IF_ERROR(tx.AppendAudit(e).status());
               auto acks = tx.primitives().OutboxAcks();
               if (!acks.ok()) return acks.status();
               return (*acks)[consumer];
             });
             if (!acked.ok()) return FailJson(res, acked.status());
             OkJson(res, {{"consumer", consumer}, {"ackedSeq", *acked}});
           }));
  svr.Get("/v1/outbox/public-key", Adapt([store, rights](const HttpRequest& req, HttpResponse& res) {
            auto c = RouteCaller(*rights, req, res, rights::Action::kOutboxRead);
            if (!c) return;
            auto key = store->TransactFor<std::string>(TxnMode::kWrite,
                                                       [&](StoreTxn& tx) { return rights::Outbox::PublicKey(tx); });
            if (!key.ok()) return FailJson(res, key.status());
            OkJson(res, {{"algorithm", "ed25519"},
                         {"publicKey", *key},
                         {"signature", "X-Ferry-Signature: ed25519=<base64 detached signature of the body>"}});
          }));
  svr.Get("/v1/requests/{id}/deliveries", Adapt([store, rights](const HttpRequest& req, HttpResponse& res) {
            auto c = RouteCaller(*rights, req, res, rights::Action::kOutboxRead);
            if (!c) return;
            std::string id = req.path_param("id");
            auto list = store->TransactFor<std::vector<OutboxDelivery>>(
                TxnMode::kRead, [&](StoreTxn& tx) { return tx.primitives().DeliveriesOf(id); });
            if (!list.ok()) return FailJson(res, list.status());
            Json out = Json::array();
            for (const auto& d : *list) out.push_back(DeliveryJson(d));
            OkJson(res, {{"requestId", id}, {"deliveries", out}});
          }));
}

}  // namespace ferry::collector
