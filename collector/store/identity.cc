// The identity graph, written once for every engine: resolving a subject from any of its ids, and its summary.
#include <deque>
#include <set>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "collector/store/identity.h"
#include "collector/store/store_txn.h"

namespace ferry::collector {

using base::Result;
using base::Status;

bool TrustedCredential(std::string_view credential) {
  return credential == kCredentialServerKey || credential == kCredentialInternal;
}

std::vector<LinkAssertion> LinksAsserted(const StoredEvent& e, std::string_view credential) {
  std::vector<LinkAssertion> out;
  if (e.user_id.empty()) return out;
  if ((e.type == "identify" || e.type == "alias") && !e.anonymous_id.empty()) {
    out.push_back({"anonymousId", e.anonymous_id, kLinkActive});
  }
  if (e.type == "alias" && !e.previous_id.empty() && e.previous_id != e.user_id) {
    // A write key's alias speaks for the id it comes from, not for an id it names.
    bool own = e.previous_id == e.anonymous_id;
    out.push_back({"previousId", e.previous_id, TrustedCredential(credential) || own ? kLinkActive : kLinkPending});
  }
  return out;
}

Result<bool> StoreTxn::Followable(int64_t project_id, const LinkRow& link) {
  if (link.state != kLinkActive) return false;
  if (TrustedCredential(link.credential) || !link.confirmed_by.empty()) return true;
  // A write key's link (or one of unknown provenance) links an anonymousId, never a userId: an id that is, or has
  // since become, a userId is not taken into another userId's subject on a write key's word.
  auto is_user = txn_.HeldAsUserId(project_id, link.from_id, /*consent_too=*/false);
  if (!is_user.ok()) return is_user.status();
  return !*is_user;
}

Result<std::optional<SubjectIds>> StoreTxn::Resolve(const ProjectRef& project, const std::string& id) {
  using Opt = std::optional<SubjectIds>;
  if (id.empty()) return Opt();
  const int64_t pid = project.id;
  // Climb followable links from the id to the userId it belongs to (an anonymousId's or an old alias id's userId),
  // then up alias chains (an old userId that became a previousId of a newer one).
  std::string user;
  std::set<std::string> climbed;
  std::string at = id;
  for (int hops = 0; hops < 64; ++hops) {
    climbed.insert(at);
    auto links = txn_.LinksFrom(pid, at);
    if (!links.ok()) return links.status();
    std::string up;
    for (const LinkRow& l : *links) {
      auto follow = Followable(pid, l);
      if (!follow.ok()) return follow.status();
      if (*follow) {
        up = l.user_id;
        break;
      }
    }
    if (up.empty() || climbed.count(up)) break;
    user = up;
    at = up;
  }
  if (user.empty()) {
    auto is_user = txn_.HeldAsUserId(pid, id, /*consent_too=*/true);
    if (!is_user.ok()) return is_user.status();
    if (*is_user) {
      user = id;
    } else {
      // An anonymousId seen on events together with a userId (but never linked by identify/alias).
      auto seen = txn_.UserSeenWithAnonymousId(pid, id);
      if (!seen.ok()) return seen.status();
      user = *seen;
    }
  }

  SubjectIds r;
  r.project_id = pid;
  r.project = project.name;
  std::unordered_set<std::string> seen;
  auto add = [&](SubjectIdentity ident) {
    if (seen.size() >= kMaxSubjectIds || !seen.insert(ident.id).second) return false;
    r.ids.push_back(ident.id);
    r.idents.push_back(std::move(ident));
    return true;
  };
  std::unordered_set<int64_t> listed;
  auto list = [&](LinkRow l, bool followed) {
    if (r.links.size() >= kMaxSubjectIds || !listed.insert(l.id).second) return;
    l.followed = followed;
    r.links.push_back(std::move(l));
  };

  if (user.empty()) {
    // Anonymous-only: known if anything is held under the id.
    auto known = txn_.HeldAsAnonymousId(pid, id, /*events_only=*/false);
    if (!known.ok()) return known.status();
    if (!*known) return Opt();
    add({"anonymousId", id, "", "event", 0});
    return Opt(std::move(r));
  }

  r.user_id = user;
  add({"userId", user, "", "event", 0});
  std::deque<std::string> users = {user};
  while (!users.empty() && seen.size() < kMaxSubjectIds) {
    std::string u = users.front();
    users.pop_front();
    // Links out of a userId of the subject are shown (an alias naming it from elsewhere, pending or followed).
    auto out = txn_.LinksFrom(pid, u);
    if (!out.ok()) return out.status();
    for (LinkRow& l : *out) {
      auto follow = Followable(pid, l);
      if (!follow.ok()) return follow.status();
      list(std::move(l), *follow);
    }
    auto links = txn_.LinksTo(pid, u);
    if (!links.ok()) return links.status();
    for (LinkRow& l : *links) {
      auto follow = Followable(pid, l);
      if (!follow.ok()) return follow.status();
      list(l, *follow);
      if (!*follow) continue;  // pending, or a userId a write key named: shown, never followed
      // An old id named by alias may itself be a userId with devices of its own: walk it too.
      bool previous = l.kind == "previousId";
      std::string from = l.from_id;
      if (add({std::move(l.kind), from, u, std::move(l.source), l.first_seen_ms}) && previous) users.push_back(from);
    }
    auto anon = txn_.AnonymousIdsSeenWith(pid, u);
    if (!anon.ok()) return anon.status();
    for (std::string& a : *anon) {
      if (seen.count(a)) continue;
      // An "anonymousId" that is someone's userId is not theirs to bring in.
      auto is_user = txn_.HeldAsUserId(pid, a, /*consent_too=*/false);
      if (!is_user.ok()) return is_user.status();
      if (!*is_user) add({"anonymousId", std::move(a), u, "event", 0});
    }
  }
  return Opt(std::move(r));
}

Result<std::vector<SubjectIds>> StoreTxn::ResolveAll(const SubjectQuery& q) {
  std::vector<SubjectIds> out;
  auto projects = txn_.Projects(q.project);
  if (!projects.ok()) return projects.status();
  std::vector<bool> found(projects->size(), false);
  std::vector<std::string> users;
  for (size_t i = 0; i < projects->size(); ++i) {
    auto r = Resolve((*projects)[i], q.id);
    if (!r.ok()) return r.status();
    if (!r->has_value()) continue;
    found[i] = true;
    if (!(*r)->user_id.empty() && (*r)->user_id != q.id) users.push_back((*r)->user_id);
    out.push_back(std::move(**r));
  }
  // Across projects, a userId is the same person: an anonymousId known in one project names its user in the others.
  for (size_t i = 0; i < projects->size(); ++i) {
    for (size_t u = 0; u < users.size() && !found[i]; ++u) {
      auto r = Resolve((*projects)[i], users[u]);
      if (!r.ok()) return r.status();
      if (!r->has_value()) continue;
      found[i] = true;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

Result<SubjectSummary> StoreTxn::Summary(const SubjectIds& r) {
  using nlohmann::json;
  SubjectSummary s;
  s.project = r.project;
  s.project_id = r.project_id;
  s.user_id = r.user_id;
  s.identities = r.idents;
  s.links = r.links;
  SubjectRows rows;
  FERRY_RETURN_IF_ERROR(txn_.ReadSubject(r.project_id, r.ids, r.user_id, &rows));
  for (const TypeCountRow& c : rows.counts) {
    if (c.count == 0) continue;
    s.events_by_type[c.type] += c.count;
    s.event_count += c.count;
    if (s.first_seen_ms == 0 || c.first_ms < s.first_seen_ms) s.first_seen_ms = c.first_ms;
    if (c.last_ms > s.last_seen_ms) s.last_seen_ms = c.last_ms;
  }
  std::map<std::string, ConsentState> latest;  // the records come oldest first: the last one per purpose wins
  for (ConsentState& c : rows.consent) latest[c.purpose] = std::move(c);
  for (auto& [purpose, c] : latest) s.consent.push_back(std::move(c));
  json traits = json::object();
  for (const auto& [k, v] : rows.traits) {
    json parsed = json::parse(v, nullptr, false);
    traits[k] = parsed.is_discarded() ? json(v) : parsed;
  }
  s.traits = traits.dump(-1, ' ', false, json::error_handler_t::replace);
  return s;
}

Result<std::vector<SubjectSummary>> StoreTxn::FindSubject(const SubjectQuery& q) {
  auto all = ResolveAll(q);
  if (!all.ok()) return all.status();
  std::vector<SubjectSummary> out;
  for (const SubjectIds& r : *all) {
    auto s = Summary(r);
    if (!s.ok()) return s.status();
    out.push_back(std::move(s).value());
  }
  return out;
}

}  // namespace ferry::collector
