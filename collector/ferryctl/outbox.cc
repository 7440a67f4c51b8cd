// ferryctl outbox ...: the downstream outbox over the admin API (docs/COMPLIANCE.md "Telling downstream systems"):
// read the feed, acknowledge it as a consumer, print the public key that verifies webhook deliveries, and show a
// request's deliveries per destination.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "collector/ferryctl/remote.h"

namespace ferry::collector::ctl {

using nlohmann::json;

void AddOutboxCommands(CLI::App& app, Globals& g, int* exit_code) {
  CLI::App* outbox = app.add_subcommand(
      "outbox",
      "Changes for downstream systems: list, ack, public-key, deliveries (admin API, compliance or operator)");
  outbox->require_subcommand(1);
  auto after = std::make_shared<int64_t>(0);
  auto limit = std::make_shared<int64_t>(100);
  auto consumer = std::make_shared<std::string>();
  auto seq = std::make_shared<int64_t>(0);
  auto request = std::make_shared<std::string>();

  CLI::App* list = outbox->add_subcommand("list", "A page of the feed: erasures, rectifications, restrictions");
  list->add_option("--after", *after, "Entries after this seq (default 0)");
  list->add_option("--limit", *limit, "At most this many (1-1000, default 100)");
  list->callback([&g, after, limit, exit_code] {
    std::string answer;
    if (!AdminCall(g, "GET", "/v1/outbox?after=" + std::to_string(*after) + "&limit=" + std::to_string(*limit), "",
                   &answer, exit_code)) {
      return;
    }
    json doc = json::parse(answer, nullptr, false);
    if (g.json || doc.is_discarded()) return (void)std::printf("%s\n", answer.c_str());
    for (const auto& e : doc.value("entries", json::array())) {
      std::printf("%-6s %-20s %-10s %-26s %s ids %zu\n", Text(e, "seq").c_str(), Text(e, "kind").c_str(),
                  Text(e, "project").c_str(), Text(e, "requestId").c_str(), Text(e, "at").c_str(),
                  e.value("ids", json::array()).size());
    }
    std::printf("next %s%s\n", Text(doc, "next").c_str(), doc.value("more", false) ? " (more)" : "");
  });

  CLI::App* ack = outbox->add_subcommand("ack", "Acknowledge the feed up to a seq as a consumer");
  ack->add_option("--consumer", *consumer, "The consumer's name (1-64 characters)")->required();
  ack->add_option("--seq", *seq, "The last seq it has handled")->required();
  ack->callback([&g, consumer, seq, exit_code] {
    std::string answer;
    if (!AdminCall(g, "POST", "/v1/outbox/ack", json{{"consumer", *consumer}, {"seq", *seq}}.dump(), &answer,
                   exit_code)) {
      return;
    }
    std::printf("%s\n", answer.c_str());
  });

  CLI::App* key = outbox->add_subcommand("public-key", "The Ed25519 key (base64) that verifies webhook deliveries");
  key->callback([&g, exit_code] {
    std::string answer;
    if (!AdminCall(g, "GET", "/v1/outbox/public-key", "", &answer, exit_code)) return;
    json doc = json::parse(answer, nullptr, false);
    if (g.json || doc.is_discarded()) return (void)std::printf("%s\n", answer.c_str());
    std::printf("%s\n", Text(doc, "publicKey").c_str());
  });

  CLI::App* deliveries = outbox->add_subcommand("deliveries", "A request's deliveries, per webhook destination");
  deliveries->add_option("REQUEST_ID", *request, "The request register's id")->required();
  deliveries->callback([&g, request, exit_code] {
    std::string answer;
    if (!AdminCall(g, "GET", "/v1/requests/" + UrlEscape(*request) + "/deliveries", "", &answer, exit_code)) return;
    json doc = json::parse(answer, nullptr, false);
    if (g.json || doc.is_discarded()) return (void)std::printf("%s\n", answer.c_str());
    for (const auto& d : doc.value("deliveries", json::array())) {
      std::printf("%-6s %-16s %-10s attempts %-3s last %-5s %s\n", Text(d, "seq").c_str(),
                  Text(d, "destination").c_str(), Text(d, "state").c_str(), Text(d, "attempts").c_str(),
                  Text(d, "lastStatus").c_str(), Text(d, "deliveredAt").c_str());
    }
  });
}

}  // namespace ferry::collector::ctl
