// Route tables: patterns of literal and named segments, matched segment by segment (no regular expressions).
#include <algorithm>

#include "lib/httpd/detail.h"
#include "lib/httpd/httpd.h"

namespace ferry::httpd {

namespace {

struct Segment {
  enum Kind { kLiteral, kParam, kRest } kind = kLiteral;
  std::string text;  // the literal, or the parameter's name
};

struct Route {
  std::string method;
  std::vector<Segment> segments;
  Handler handler;
  RouteOptions options;
};

// "/a/{b}/{c*}" -> segments; an error message for a bad pattern.
std::optional<std::string> ParsePattern(std::string_view pattern, std::vector<Segment>* out) {
  if (pattern.empty() || pattern.front() != '/') return "a pattern starts with '/'";
  std::vector<std::string> names;
  size_t start = 1;
  for (;;) {
    size_t slash = pattern.find('/', start);
    std::string_view seg =
        pattern.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    Segment s;
    if (!seg.empty() && seg.front() == '{') {
      if (seg.size() < 3 || seg.back() != '}') return "a '{' that does not close at the end of its segment";
      std::string_view name = seg.substr(1, seg.size() - 2);
      s.kind = Segment::kParam;
      if (name.back() == '*') {
        s.kind = Segment::kRest;
        name.remove_suffix(1);
        if (slash != std::string_view::npos) return "{name*} may only be the last segment";
      }
      if (name.empty() || name.find_first_of("{}/*") != std::string_view::npos) return "a bad parameter name";
      if (std::find(names.begin(), names.end(), name) != names.end()) return "a parameter name used twice";
      names.emplace_back(name);
      s.text = std::string(name);
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos) return "'{' or '}' inside a literal segment";
      s.text = std::string(seg);
    }
    out->push_back(std::move(s));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::nullopt;
}

// Matches decoded request segments; fills params and the rank (per segment: 2 literal, 1 parameter; then 1 when no
// "{x*}" was used), compared lexicographically: the higher rank is the more literal pattern.
bool MatchRoute(const Route& r, const std::vector<std::string>& segs,
                std::vector<std::pair<std::string, std::string>>* params, std::vector<int>* rank) {
  params->clear();
  rank->clear();
  size_t i = 0;
  for (const Segment& s : r.segments) {
    if (s.kind == Segment::kRest) {
      std::string rest;
      for (size_t j = i; j < segs.size(); ++j) rest += (j > i ? "/" : "") + segs[j];
      params->emplace_back(s.text, std::move(rest));
      rank->push_back(0);
      return true;
    }
    if (i >= segs.size()) return false;
    if (s.kind == Segment::kLiteral) {
      if (s.text != segs[i]) return false;
      rank->push_back(2);
    } else {
      params->emplace_back(s.text, segs[i]);
      rank->push_back(1);
    }
    ++i;
  }
  if (i != segs.size()) return false;
  rank->push_back(1);
  return true;
}

}  // namespace

struct Router::Impl {
  std::vector<Route> routes;
  base::Status status;
};

Router::Router() : impl_(std::make_unique<Impl>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

const base::Status& Router::status() const { return impl_->status; }

Router& Router::Add(std::string method, std::string_view pattern, Handler handler, RouteOptions options) {
  Route r;
  r.method = std::move(method);
  r.handler = std::move(handler);
  r.options = options;
  std::optional<std::string> err = ParsePattern(pattern, &r.segments);
  if (!err && !detail::IsToken(r.method)) err = "a bad method name";
  if (!err && !r.handler) err = "no handler";
  if (err) {
    if (impl_->status.ok()) {
      impl_->status = base::Status::InvalidArgument("route " + r.method + " " + std::string(pattern) + ": " + *err);
    }
    return *this;
  }
  impl_->routes.push_back(std::move(r));
  return *this;
}

Router::Match Router::Resolve(std::string_view method, std::string_view raw_path) const {
  Match m;
  if (raw_path.empty() || raw_path.front() != '/') {
    m.status = 400;
    m.reason = "the request target must be a path";
    return m;
  }
  std::vector<std::string> segs;
  size_t start = 1;
  for (;;) {
    size_t slash = raw_path.find('/', start);
    std::string_view raw =
        raw_path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    std::optional<std::string> dec = detail::PercentDecode(raw, false);
    if (!dec) {
      m.status = 400;
      m.reason = "bad percent-encoding or a NUL in the path";
      return m;
    }
    segs.push_back(std::move(*dec));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }

  const Route* best = nullptr;
  std::vector<int> best_rank;
  bool best_exact_method = false;
  std::vector<std::pair<std::string, std::string>> params, best_params;
  std::vector<int> rank;
  std::vector<std::string> allow;
  for (const Route& r : impl_->routes) {
    if (!MatchRoute(r, segs, &params, &rank)) continue;
    if (std::find(allow.begin(), allow.end(), r.method) == allow.end()) allow.push_back(r.method);
    bool exact = r.method == method;
    bool head_by_get = method == "HEAD" && r.method == "GET";
    if (!exact && !head_by_get) continue;
    // The more literal pattern wins; on a tie, a route for the very method (HEAD) beats GET serving HEAD, then the
    // route added first.
    if (best == nullptr || rank > best_rank || (rank == best_rank && exact && !best_exact_method)) {
      best = &r;
      best_rank = rank;
      best_exact_method = exact;
      best_params = params;
    }
  }
  if (best != nullptr) {
    m.status = 0;
    m.handler = &best->handler;
    m.options = best->options;
    m.params = std::move(best_params);
    return m;
  }
  if (allow.empty()) {
    m.status = 404;
    m.reason = "not found";
    return m;
  }
  if (std::find(allow.begin(), allow.end(), "GET") != allow.end() &&
      std::find(allow.begin(), allow.end(), "HEAD") == allow.end()) {
    allow.push_back("HEAD");
  }
  m.status = 405;
  m.reason = "method not allowed";
  for (const std::string& a : allow) m.allow += (m.allow.empty() ? "" : ", ") + a;
  return m;
}

}  // namespace ferry::httpd
