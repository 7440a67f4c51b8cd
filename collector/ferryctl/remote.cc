#include "collector/ferryctl/remote.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "collector/ferryctl/exit_codes.h"

namespace ferry::collector::ctl {

namespace {

using nlohmann::json;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Reply {
  int status = 0;
  std::string body;   // when not streamed
  std::string error;  // transport error ("" when the call went through)
};

using Sink = std::function<bool(const char*, size_t)>;

struct WriteCtx {
  Reply* reply;
  const Sink* sink;  // streamed 200 bodies go here
  CURL* curl;
};

size_t OnWrite(char* p, size_t size, size_t n, void* ud) {
  auto* ctx = static_cast<WriteCtx*>(ud);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(ctx->curl, CURLINFO_RESPONSE_CODE, &code);
  if (ctx->sink != nullptr && code == 200) return (*ctx->sink)(p, len) ? len : 0;
  if (ctx->reply->body.size() < (64u << 20)) ctx->reply->body.append(p, len);
  return len;
}

std::string Escape(const std::string& s) {
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  char* e = curl_easy_escape(c.get(), s.data(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

// One admin API call. path starts with "/".
Reply Call(const Globals& g, const std::string& method, const std::string& path, const std::string& body = "",
           const Sink* sink = nullptr) {
  static const bool kInit = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)kInit;
  Reply r;
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  if (!c) {
    r.error = "cannot start libcurl";
    return r;
  }
  std::string url = g.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += path;
  std::unique_ptr<curl_slist, SlistDeleter> hdrs;
  std::string auth = "Authorization: Bearer " + g.token;
  hdrs.reset(curl_slist_append(hdrs.release(), auth.c_str()));
  hdrs.reset(curl_slist_append(hdrs.release(), "Content-Type: application/json"));
  hdrs.reset(curl_slist_append(hdrs.release(), "Expect:"));
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, hdrs.get());
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "https,http");
  if (!g.ca_file.empty()) curl_easy_setopt(c.get(), CURLOPT_CAINFO, g.ca_file.c_str());
  if (method == "POST" || method == "PATCH" || method == "PUT") {
    curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method == "DELETE") {
    curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  WriteCtx ctx{&r, sink, c.get()};
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &ctx);
  CURLcode rc = curl_easy_perform(c.get());
  long code = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &code);
  r.status = static_cast<int>(code);
  if (rc != CURLE_OK) r.error = curl_easy_strerror(rc);
  return r;
}

// Reads the admin token from `path`: a regular file (not a symbolic link) that only its owner may read, holding the
// token and optional surrounding whitespace. "" and a reason on stderr otherwise.
std::string ReadTokenFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "ferryctl: cannot open the token file %s: %s\n", path.c_str(), std::strerror(errno));
    return {};
  }
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fprintf(stderr, "ferryctl: the token file %s is not a regular file\n", path.c_str());
  } else if ((st.st_mode & 077) != 0) {
    std::fprintf(stderr, "ferryctl: the token file %s may be read by others (chmod 600 it)\n", path.c_str());
  } else {
    char buf[512];
    ssize_t n = 0;
    while (out.size() < 4096 && (n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    sodium_memzero(buf, sizeof buf);
    size_t b = out.find_first_not_of(" \t\r\n"), e = out.find_last_not_of(" \t\r\n");
    out = b == std::string::npos ? std::string() : out.substr(b, e - b + 1);
    if (out.empty() || out.find_first_of(" \t\r\n") != std::string::npos) {
      std::fprintf(stderr, "ferryctl: the token file %s does not hold one token\n", path.c_str());
      out.clear();
    }
  }
  ::close(fd);
  return out;
}

// The admin token: --token (or FERRY_TOKEN), else --token-file, else FERRY_ADMIN_TOKEN.
bool NeedsServer(Globals& g, int* exit_code) {
  if (g.token.empty() && !g.token_file.empty()) g.token = ReadTokenFile(g.token_file);
  if (g.token.empty() && g.token_file.empty()) {
    const char* env = std::getenv("FERRY_ADMIN_TOKEN");
    if (env != nullptr) g.token = env;
  }
  if (g.url.empty() || g.token.empty()) {
    std::fprintf(stderr,
                 "ferryctl: --url and --token are required for admin commands (the token may also come from "
                 "--token-file, FERRY_TOKEN or FERRY_ADMIN_TOKEN)\n");
    *exit_code = kExitUsage;
    return false;
  }
  return true;
}

// Prints a one-line reason for a failed call and sets *exit_code for it; true when the call answered `want`.
bool Check(const Reply& r, int* exit_code, int want = 200) {
  if (!r.error.empty() && r.status == 0) {
    std::fprintf(stderr, "ferryctl: cannot reach the collector: %s\n", r.error.c_str());
    *exit_code = kExitUnavailable;
    return false;
  }
  if (r.status != want && !(want == 200 && r.status == 201)) {
    json e = json::parse(r.body, nullptr, false);
    std::string why = e.is_object() && e.contains("error") && e["error"].is_string() ? e["error"].get<std::string>()
                                                                                     : r.body.substr(0, 200);
    std::fprintf(stderr, "ferryctl: the collector answered %d: %s\n", r.status, why.c_str());
    *exit_code = ExitForHttpStatus(r.status);
    return false;
  }
  if (!r.error.empty()) {
    std::fprintf(stderr, "ferryctl: the answer was cut short: %s\n", r.error.c_str());
    *exit_code = kExitUnavailable;
    return false;
  }
  return true;
}

std::string Str(const json& j, const char* k) {
  if (!j.is_object()) return {};
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// The array (or object) under key k, or an empty one.
const json& Field(const json& j, const char* k, bool object = false) {
  static const json kEmptyArray = json::array();
  static const json kEmptyObject = json::object();
  if (j.is_object()) {
    auto it = j.find(k);
    if (it != j.end() && (object ? it->is_object() : it->is_array())) return *it;
  }
  return object ? kEmptyObject : kEmptyArray;
}

void PrintJson(const json& j) { std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str()); }

// A readable table: column widths from the content (capped).
void PrintTable(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], std::min<size_t>(r[i].size(), 48));
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < head.size(); ++i) {
      std::string cell = i < r.size() ? r[i] : "";
      if (cell.size() > 48) cell = cell.substr(0, 45) + "...";
      out += cell;
      if (i + 1 < head.size()) out += std::string(w[i] - std::min(w[i], cell.size()) + 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  line(head);
  for (const auto& r : rows) line(r);
}

std::string SubjectPath(const std::string& id, const std::string& project, const std::string& action) {
  std::string p = "/v1/subjects/" + Escape(id) + (action.empty() ? "" : "/" + action);
  if (!project.empty()) p += "?project=" + Escape(project);
  return p;
}

// A project's minor state (issue 12 item 8): one line, and where it came from.
void PrintMinor(const json& p) {
  const json& m = Field(p, "minor", true);
  if (m.empty()) return;
  std::printf("project %s  minor %s\n", Str(p, "project").c_str(), m.value("minor", false) ? "yes" : "no");
  for (const auto& src : Field(m, "sources")) {
    if (Str(src, "source") == "officer") {
      std::printf("  marked by the officer %s on %s since %s\n", Str(src, "by").c_str(), Str(src, "id").c_str(),
                  Str(src, "since").c_str());
    } else {
      std::printf("  said by the device %s (record %s, %s)\n", Str(src, "anonymousId").c_str(),
                  Str(src, "receiptId").c_str(), Str(src, "at").c_str());
    }
  }
}

void PrintSubject(const json& doc) {
  for (const auto& p : Field(doc, "projects")) {
    std::printf("project %s  userId %s  events %s  first seen %s  last seen %s\n", Str(p, "project").c_str(),
                Str(p, "userId").c_str(), Str(p, "eventCount").c_str(), Str(p, "firstSeen").c_str(),
                Str(p, "lastSeen").c_str());
    std::vector<std::vector<std::string>> rows;
    for (const auto& i : Field(p, "identities")) {
      rows.push_back({Str(i, "kind"), Str(i, "id"), Str(i, "linkedTo"), Str(i, "source"), Str(i, "linkedAt")});
    }
    PrintTable({"KIND", "ID", "LINKED TO", "SOURCE", "LINKED AT"}, rows);
    rows.clear();
    // Every link into or out of the subject's userIds, with its provenance; a pending one waits for `links confirm`.
    for (const auto& l : Field(p, "links")) {
      rows.push_back({Str(l, "linkId"), Str(l, "kind"), Str(l, "from"), Str(l, "to"), Str(l, "state"),
                      l.value("followed", false) ? "yes" : "no", Str(l, "credential"), Str(l, "keyId"),
                      Str(l, "viaMessageId"), Str(l, "assertedAt"), Str(l, "confirmedBy")});
    }
    if (!rows.empty()) {
      PrintTable({"LINK", "KIND", "FROM", "TO", "STATE", "FOLLOWED", "CREDENTIAL", "KEY", "VIA EVENT", "ASSERTED AT",
                  "CONFIRMED BY"},
                 rows);
    }
    PrintMinor(p);
    rows.clear();
    for (const auto& c : Field(p, "consent")) rows.push_back({Str(c, "purpose"), Str(c, "state"), Str(c, "at")});
    if (!rows.empty()) PrintTable({"PURPOSE", "CONSENT", "SINCE"}, rows);
    json traits = Field(p, "traits", true);
    if (!traits.empty())
      std::printf("traits %s\n", traits.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    std::printf("\n");
  }
}

void PrintReceipt(const json& r) {
  if (r.value("dryRun", false)) {
    std::printf("dry run: nothing was erased; an erasure now would remove\n");
  } else {
    std::printf("erased (request %s, completed %s)\n", Str(r, "requestId").c_str(), Str(r, "completedAt").c_str());
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [table, n] : Field(r, "erased", true).items()) rows.push_back({table, n.dump()});
  PrintTable({"TABLE", "ROWS"}, rows);
  std::printf("ids %s the suppression list: %s\n", r.value("dryRun", false) ? "it would add to" : "added to",
              Str(r, "idsSuppressed").c_str());
}

void PrintRequests(const json& list) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : list) {
    rows.push_back({Str(r, "id"), Str(r, "kind"), Str(r, "subject"), Str(r, "project"), Str(r, "state"),
                    Str(r, "source"), Str(r, "receivedAt"), Str(r, "dueAt"), r.value("overdue", false) ? "OVERDUE" : "",
                    Str(r, "actedBy"), Str(r, "actedAt")});
  }
  PrintTable({"ID", "KIND", "SUBJECT", "PROJECT", "STATE", "SOURCE", "RECEIVED", "DUE", "", "ACTED BY", "ACTED AT"},
             rows);
}

}  // namespace

bool AdminCall(Globals& g, const std::string& method, const std::string& path, const std::string& body,
               std::string* answer, int* exit_code) {
  if (!NeedsServer(g, exit_code)) return false;
  Reply r = Call(g, method, path, body);
  if (!Check(r, exit_code)) return false;
  *answer = std::move(r.body);
  return true;
}

std::string UrlEscape(const std::string& s) { return Escape(s); }

namespace {

// AdminCall whose answer must be a JSON document: parsed into *doc; false after one line on stderr otherwise.
bool AdminJson(Globals& g, const std::string& method, const std::string& path, const std::string& body, json* doc,
               int* exit_code) {
  std::string answer;
  if (!AdminCall(g, method, path, body, &answer, exit_code)) return false;
  *doc = json::parse(answer, nullptr, false);
  if (doc->is_discarded()) {
    *exit_code = kExitFailure;
    std::fprintf(stderr, "ferryctl: the collector's answer is not JSON\n");
    return false;
  }
  return true;
}

}  // namespace

namespace {

// GET `path` streamed to `output` (stdout when ""): true, with *exit_code kExitOk, when all of it was written.
bool Download(Globals& g, const std::string& path, const std::string& output, int* exit_code) {
  *exit_code = kExitFailure;
  if (!NeedsServer(g, exit_code)) return false;
  std::unique_ptr<FILE, int (*)(FILE*)> file(nullptr, fclose);
  FILE* out = stdout;
  if (!output.empty()) {
    file.reset(std::fopen(output.c_str(), "wb"));
    if (!file) {
      std::fprintf(stderr, "ferryctl: cannot write %s\n", output.c_str());
      return false;
    }
    out = file.get();
  }
  Sink sink = [out](const char* p, size_t n) { return std::fwrite(p, 1, n, out) == n; };
  Reply r = Call(g, "GET", path, "", &sink);
  if (!Check(r, exit_code)) return false;
  if (std::fflush(out) != 0) {
    std::fprintf(stderr, "ferryctl: cannot write %s\n", output.empty() ? "to stdout" : output.c_str());
    return false;
  }
  *exit_code = kExitOk;
  return true;
}

}  // namespace

std::string Text(const nlohmann::json& j, const char* k) {
  auto it = j.is_object() ? j.find(k) : j.end();
  if (!j.is_object() || it == j.end() || it->is_null()) return "-";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

void AddAdminCommands(CLI::App& app, Globals& g, int* exit_code) {
  // ---- subject ----
  CLI::App* subject = app.add_subcommand("subject", "Show, export, erase or correct a data subject (admin API)");
  subject->require_subcommand(1);
  auto id = std::make_shared<std::string>();
  auto project = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  auto sets = std::make_shared<std::vector<std::string>>();
  auto unsets = std::make_shared<std::vector<std::string>>();

  CLI::App* show = subject->add_subcommand("show", "Identities, event counts, first/last seen, consent, traits");
  show->add_option("ID", *id, "Any id of the subject (userId or anonymousId)")->required();
  show->add_option("--project", *project, "Only this project (default: every project)");
  show->callback([&g, id, project, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, "GET", SubjectPath(*id, *project, ""), "", &doc, exit_code)) return;
    g.json ? PrintJson(doc) : PrintSubject(doc);
    *exit_code = kExitOk;
  });

  CLI::App* exp = subject->add_subcommand(
      "export", "Everything held about the subject: one JSON document, a readable HTML copy or a CSV of events");
  exp->add_option("ID", *id, "Any id of the subject")->required();
  exp->add_option("--project", *project, "Only this project (default: every project)");
  exp->add_option("--output,-o", *output, "Write the document to this file (default: stdout)");
  auto copy_format = std::make_shared<std::string>("json");
  auto copy_lang = std::make_shared<std::string>("en");
  exp->add_option("--format", *copy_format, "json (default), html (a copy for the person) or csv (the events)")
      ->check(CLI::IsMember({"json", "html", "csv"}));
  exp->add_option("--lang", *copy_lang, "Language of the HTML copy: en (default) or zh-CN")
      ->check(CLI::IsMember({"en", "zh", "zh-CN"}));
  exp->callback([&g, id, project, output, copy_format, copy_lang, exit_code] {
    std::string path = SubjectPath(*id, *project, "export");
    if (*copy_format != "json" || *copy_lang != "en") {
      path +=
          std::string(project->empty() ? "?" : "&") + "format=" + Escape(*copy_format) + "&lang=" + Escape(*copy_lang);
    }
    if (!Download(g, path, *output, exit_code)) return;
    if (!output->empty()) std::fprintf(stderr, "ferryctl: export written to %s\n", output->c_str());
  });

  CLI::App* erase = subject->add_subcommand("erase", "Erase the subject and every linked id (irreversible)");
  CLI::Option* erase_id = erase->add_option("ID", *id, "Any id of the subject");
  auto from_file = std::make_shared<std::string>();
  erase
      ->add_option("--from-file", *from_file,
                   "Erase every id of this file (one a line; blank and # lines skipped), 1,000 a call, with "
                   "progress on stderr and a summary")
      ->excludes(erase_id);
  erase->add_option("--project", *project, "Only this project (default: every project)");
  erase->add_flag("--yes", *yes, "Confirm the erasure (required, except with --dry-run)");
  auto dry_run = std::make_shared<bool>(false);
  auto force = std::make_shared<bool>(false);
  erase->add_flag("--dry-run", *dry_run, "Only count what would be erased; nothing changes");
  erase->add_flag("--force", *force, "Erase and suppress the id even if no data is found under it");
  erase->callback([&g, id, from_file, project, yes, dry_run, force, exit_code] {
    *exit_code = kExitFailure;
    if (!*yes && !*dry_run) {
      *exit_code = kExitUsage;
      return (void)std::fprintf(stderr, "ferryctl: erasure cannot be undone; add --yes to confirm\n");
    }
    if (!from_file->empty()) return EraseFromFile(g, *from_file, *project, *dry_run, *force, exit_code);
    if (id->empty()) {
      *exit_code = kExitUsage;
      return (void)std::fprintf(stderr, "ferryctl: subject erase wants an ID or --from-file FILE\n");
    }
    json body = {{"dryRun", *dry_run}, {"force", *force}};
    json doc;
    if (!AdminJson(g, "POST", SubjectPath(*id, *project, "erase"), body.dump(), &doc, exit_code)) return;
    g.json ? PrintJson(doc) : PrintReceipt(doc);
    *exit_code = kExitOk;
  });

  auto message_id = std::make_shared<std::string>();
  CLI::App* proof =
      subject->add_subcommand("event-consent", "Which consent record covered one of the subject's stored events");
  proof->add_option("ID", *id, "Any id of the subject")->required();
  proof->add_option("MESSAGE_ID", *message_id, "The event's messageId")->required();
  proof->add_option("--project", *project, "Only this project (default: every project)");
  proof->callback([&g, id, project, message_id, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, "GET", SubjectPath(*id, *project, "events/" + Escape(*message_id) + "/consent"), "", &doc,
                   exit_code))
      return;
    if (g.json) {
      PrintJson(doc);
    } else {
      const json rec = doc.value("record", json(nullptr));
      std::printf("event %s  project %s  purpose %s  deviceSeq %s\n", Str(doc, "messageId").c_str(),
                  Str(doc, "project").c_str(), Str(doc, "purpose").c_str(), Str(doc, "deviceSeq").c_str());
      std::printf("%s%s%s\n", Str(doc, "status").c_str(), doc["basis"].is_string() ? " by " : "",
                  doc["basis"].is_string() ? Str(doc, "basis").c_str() : "");
      if (doc["reason"].is_string()) std::printf("reason: %s\n", Str(doc, "reason").c_str());
      if (rec.is_object()) {
        std::printf("record %s  %s %s (was %s, %s)  seq %s  at %s  notice %s %s\n", Str(rec, "receiptId").c_str(),
                    Str(rec, "purpose").c_str(), Str(rec, "state").c_str(), Str(rec, "previous").c_str(),
                    Str(rec, "method").c_str(), Str(rec, "seq").c_str(), Str(rec, "at").c_str(),
                    Str(rec, "noticeId").c_str(), Str(rec, "noticeVersion").c_str());
      }
    }
    *exit_code = kExitOk;
  });

  auto undo = std::make_shared<bool>(false);
  CLI::App* minor = subject->add_subcommand(
      "minor", "Mark the subject as a minor (a guardian's consent is then needed for every purpose but necessary)");
  minor->add_option("ID", *id, "Any id of the subject")->required();
  minor->add_option("--project", *project, "Only this project (default: every project)");
  minor->add_flag("--undo", *undo, "Lift the officer's mark instead");
  minor->callback([&g, id, project, undo, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, *undo ? "DELETE" : "POST", SubjectPath(*id, *project, "minor"), "", &doc, exit_code)) return;
    if (g.json) {
      PrintJson(doc);
    } else {
      for (const auto& p : Field(doc, "projects")) PrintMinor(p);
    }
    *exit_code = kExitOk;
  });

  CLI::App* traits = subject->add_subcommand("traits", "Correct profile traits (right to rectification)");
  traits->add_option("ID", *id, "Any id of the subject")->required();
  traits->add_option("--project", *project, "Only this project (default: every project)");
  traits->add_option("--set", *sets, "KEY=VALUE (VALUE is JSON if it parses, else a string); repeatable");
  traits->add_option("--unset", *unsets, "KEY to remove; repeatable");
  traits->callback([&g, id, project, sets, unsets, exit_code] {
    *exit_code = kExitFailure;
    if (!NeedsServer(g, exit_code)) return;
    json patch = json::object();
    for (const auto& kv : *sets) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        *exit_code = kExitUsage;
        return (void)std::fprintf(stderr, "ferryctl: --set wants KEY=VALUE, got '%s'\n", kv.c_str());
      }
      json v = json::parse(kv.substr(eq + 1), nullptr, false);
      patch[kv.substr(0, eq)] = v.is_discarded() ? json(kv.substr(eq + 1)) : v;
    }
    for (const auto& k : *unsets) patch[k] = nullptr;
    if (patch.empty()) {
      *exit_code = kExitUsage;
      return (void)std::fprintf(stderr, "ferryctl: nothing to change: give --set or --unset\n");
    }
    json doc;
    if (!AdminJson(g, "PATCH", SubjectPath(*id, *project, "traits"), patch.dump(), &doc, exit_code)) return;
    if (g.json) {
      PrintJson(doc);
    } else {
      std::printf("corrected (request %s)\n", Str(doc, "requestId").c_str());
      PrintSubject(doc);
    }
    *exit_code = kExitOk;
  });

  // ---- requests ----
  CLI::App* requests = app.add_subcommand(
      "requests",
      "The request register: list, add, identify, approve, reject, complete, deliver a copy, stats, lift a "
      "restriction");
  requests->require_subcommand(0, 1);
  auto overdue = std::make_shared<bool>(false);
  auto state = std::make_shared<std::string>();
  requests->add_flag("--overdue", *overdue, "Only open requests past their due date");
  requests->add_option("--state", *state, "Only requests in this state");
  auto due_within = std::make_shared<std::string>();
  requests->add_option("--due-within", *due_within, "Only open requests due within this time (7d, 48h), soonest first");
  auto rid = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>();
  auto kind = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>();
  auto reference = std::make_shared<std::string>();
  auto received = std::make_shared<std::string>();
  CLI::App* approve = requests->add_subcommand(
      "approve", "Approve a request with how the person's identity was verified (an erasure is carried out now)");
  approve->add_option("RID", *rid, "Request id (req_...)")->required();
  approve->add_option("--method", *method, "How the identity was verified (id-document, account-login, ...)");
  approve->add_option("--reference", *reference, "Where the evidence is kept (ticket, file number)");
  CLI::App* reject = requests->add_subcommand("reject", "Reject a request");
  reject->add_option("RID", *rid, "Request id (req_...)")->required();
  reject->add_option("--reason", *reason, "Why (kept in the register and shown with the request)");
  CLI::App* complete = requests->add_subcommand("complete", "Record an approved request as carried out (not access)");
  complete->add_option("RID", *rid, "Request id (req_...)")->required();
  complete->add_option("--note", *reason, "What was done");
  CLI::App* deliver = requests->add_subcommand(
      "deliver", "Download an approved access request's copy; the request completes once it is written in full");
  deliver->add_option("RID", *rid, "Request id (req_...)")->required();
  deliver->add_option("--output,-o", *output, "Write the copy to this file (default: stdout)");
  CLI::App* stats = requests->add_subcommand("stats", "The register in figures: by kind, by state, lateness");
  auto days = std::make_shared<int64_t>(0);
  CLI::App* extend = requests->add_subcommand("extend", "Extend an in-progress request's due date, with the reason");
  extend->add_option("RID", *rid, "Request id (req_...)")->required();
  extend->add_option("--days", *days, "By how many days (1-62)")->required();
  extend->add_option("--reason", *reason, "Why (told to the person)")->required();
  auto policy = std::make_shared<std::string>();
  CLI::App* policy_cmd = requests->add_subcommand("policy", "Set a project's due-date policy: gdpr, pipl, days:N");
  policy_cmd->add_option("--project", *project, "The project (default: every project without its own)");
  policy_cmd->add_option("--set", *policy, "gdpr (one month), pipl (15 working days), days:N, or '' to remove")
      ->required();
  CLI::App* add = requests->add_subcommand("add", "Register a request received by other means (mail, phone)");
  auto purposes = std::make_shared<std::vector<std::string>>();
  add->add_option("--kind", *kind,
                  "access | erasure | correction (or rectification) | portability | restriction | objection")
      ->required();
  add->add_option("--purpose", *purposes,
                  "restriction, objection: a purpose it covers (repeat; none: every purpose). An objection covering "
                  "marketing is in force for it at once");
  add->add_option("--subject", *id, "The subject's id")->required();
  add->add_option("--project", *project, "Project (default: every project)");
  add->add_option("--received", *received, "When it was received (ISO-8601 date or time; default: now)");
  add->add_option("--state", *state, "received (not yet triaged) or awaiting_verification (default)");
  auto subject_id = std::make_shared<std::string>();
  CLI::App* identify = requests->add_subcommand(
      "identify", "Bind a received public request to its subject after checking the person's identity by other means");
  identify->add_option("RID", *rid, "Request id (req_...) of a public request in state received, without a subject")
      ->required();
  identify->add_option("--subject", *subject_id, "The subject's id (userId or anonymousId) the person proved")
      ->required();
  identify->add_option("--method", *method, "How the identity was checked (id-document, account-login, ...)");
  identify->add_option("--reference", *reference, "Where the evidence is kept (ticket, file number)");
  CLI::App* lift = requests->add_subcommand("lift", "Lift the restriction or objection a request put in force");
  lift->add_option("RID", *rid, "Request id (req_...)")->required();
  lift->add_option("--reason", *reason, "Why (kept with the request)");
  CLI::App* mode = requests->add_subcommand(
      "restriction-mode", "A project's handling of new events of restricted purposes: quarantine (default) or refuse");
  auto mode_set = std::make_shared<std::string>();
  mode->add_option("--project", *project, "Project")->required();
  mode->add_option("--set", *mode_set, "quarantine or refuse (without: show it)");
  auto act = [&g, rid, reason, method, reference, days, exit_code](const std::string& op) {
    *exit_code = kExitFailure;
    if (!NeedsServer(g, exit_code)) return;
    json body = json::object();
    if (op == "reject" && !reason->empty()) body["reason"] = *reason;
    if (op == "complete") body["note"] = *reason;
    if (op == "approve") body["verification"] = {{"method", *method}, {"reference", *reference}};
    if (op == "lift") body["reason"] = *reason;
    if (op == "extend") body = {{"days", *days}, {"reason", *reason}};
    Reply r = Call(g, "POST", "/v1/requests/" + Escape(*rid) + "/" + op, body.dump());
    if (!Check(r, exit_code)) return;
    json doc = json::parse(r.body, nullptr, false);
    if (g.json) {
      PrintJson(doc);
    } else {
      PrintRequests(json::array({doc}));
      if (doc.contains("result") && doc["result"].is_object() && doc["result"].contains("erased")) {
        PrintReceipt(doc["result"]);
      }
      if (doc.value("state", "") == "rejected") std::printf("reason: %s\n", Str(doc, "refusalReason").c_str());
    }
    *exit_code = kExitOk;
  };
  identify->callback([&g, rid, subject_id, method, reference, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, "POST", "/v1/requests/" + Escape(*rid) + "/identify",
                   json{{"subject", *subject_id}, {"method", *method}, {"reference", *reference}}.dump(), &doc,
                   exit_code))
      return;
    if (g.json) {
      PrintJson(doc);
    } else {
      std::printf("%s (%s): %s, subject %s (checked: %s%s%s), due %s\n", Str(doc, "reference").c_str(),
                  Str(doc, "kind").c_str(), Str(doc, "state").c_str(), subject_id->c_str(),
                  method->empty() ? "-" : method->c_str(), reference->empty() ? "" : ", ", reference->c_str(),
                  Str(doc, "dueAt").c_str());
    }
    *exit_code = kExitOk;
  });
  approve->callback([act] { act("approve"); });
  reject->callback([act] { act("reject"); });
  complete->callback([act] { act("complete"); });
  lift->callback([act] { act("lift"); });
  mode->callback([&g, project, mode_set, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    const std::string path = "/v1/projects/" + Escape(*project) + "/restriction-mode";
    if (!AdminJson(g, mode_set->empty() ? "GET" : "PUT", path,
                   mode_set->empty() ? "" : json{{"mode", *mode_set}}.dump(), &doc, exit_code))
      return;
    g.json ? PrintJson(doc) : (void)std::printf("%s: %s\n", Str(doc, "project").c_str(), Str(doc, "mode").c_str());
    *exit_code = kExitOk;
  });
  extend->callback([act] { act("extend"); });
  policy_cmd->callback([&g, project, policy, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, "POST", "/v1/requests/policy", json{{"project", *project}, {"policy", *policy}}.dump(), &doc,
                   exit_code))
      return;
    if (g.json) {
      PrintJson(doc);
    } else {
      std::printf("due-date policy of %s: %s\n", project->empty() ? "every project" : project->c_str(),
                  Str(doc, "policy").empty() ? "(the collector's --request-due-days)" : Str(doc, "policy").c_str());
    }
    *exit_code = kExitOk;
  });
  deliver->callback([&g, rid, output, exit_code] {
    if (!Download(g, "/v1/requests/" + Escape(*rid) + "/copy", *output, exit_code)) return;
    std::fprintf(stderr, "ferryctl: copy of %s delivered%s%s\n", rid->c_str(), output->empty() ? "" : " to ",
                 output->c_str());
  });
  stats->callback([&g, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, "GET", "/v1/requests/stats", "", &doc, exit_code)) return;
    if (g.json) {
      PrintJson(doc);
    } else {
      std::printf("requests: %s\n", Str(doc, "total").c_str());
      for (const char* part : {"byKind", "byState"}) {
        for (const auto& [k, v] : Field(doc, part, true).items())
          std::printf("  %s %s: %s\n", part, k.c_str(), v.dump().c_str());
      }
      for (const auto& [k, v] : Field(doc, "lateness", true).items())
        std::printf("  %s: %s\n", k.c_str(), v.dump().c_str());
    }
    *exit_code = kExitOk;
  });
  add->callback([&g, kind, id, project, received, state, purposes, exit_code] {
    *exit_code = kExitFailure;
    if (!NeedsServer(g, exit_code)) return;
    json body = {{"kind", *kind}, {"subject", *id}, {"project", *project}};
    if (!purposes->empty()) body["purposes"] = *purposes;
    if (!received->empty()) {
      // A date alone is midnight UTC of that day.
      body["receivedAt"] = received->size() == 10 ? *received + "T00:00:00Z" : *received;
    }
    if (!state->empty()) body["state"] = *state;
    Reply r = Call(g, "POST", "/v1/requests", body.dump());
    if (!Check(r, exit_code, 201)) return;
    json doc = json::parse(r.body, nullptr, false);
    g.json ? PrintJson(doc) : PrintRequests(json::array({doc}));
    *exit_code = kExitOk;
  });
  requests->callback([&g, requests, overdue, state, due_within, exit_code] {
    if (!requests->get_subcommands().empty()) return;
    *exit_code = kExitFailure;
    std::string path = "/v1/requests?overdue=" + std::string(*overdue ? "1" : "0");
    if (!state->empty()) path += "&state=" + Escape(*state);
    if (!due_within->empty()) path = "/v1/requests/due?within=" + Escape(*due_within);
    json doc;
    if (!AdminJson(g, "GET", path, "", &doc, exit_code)) return;
    g.json ? PrintJson(doc) : PrintRequests(Field(doc, "requests"));
    *exit_code = kExitOk;
  });

  // ---- identity links ----
  CLI::App* links = app.add_subcommand("links", "Identity links: confirm a pending link (admin API)");
  links->require_subcommand(1);
  auto link_id = std::make_shared<std::string>();
  CLI::App* confirm = links->add_subcommand("confirm", "Confirm an identity link so that it is followed (compliance)");
  confirm->add_option("LINKID", *link_id, "The link's id (LINK in `subject show`)")->required();
  confirm->callback([&g, link_id, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, "POST", "/v1/links/" + Escape(*link_id) + "/confirm", "{}", &doc, exit_code)) return;
    if (g.json) {
      PrintJson(doc);
    } else {
      std::printf("link %s confirmed: %s %s -> %s (by %s)\n", Str(doc, "linkId").c_str(), Str(doc, "kind").c_str(),
                  Str(doc, "from").c_str(), Str(doc, "to").c_str(), Str(doc, "confirmedBy").c_str());
    }
    *exit_code = kExitOk;
  });

  // ---- credentials ----
  CLI::App* creds =
      app.add_subcommand("credentials", "Write keys and admin tokens: list, revoke, expire (admin API, operator)");
  creds->require_subcommand(1);
  CLI::App* list = creds->add_subcommand("list", "Every write key and admin token (prefixes only), revoked ones too");
  list->callback([&g, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, "GET", "/v1/keys", "", &doc, exit_code)) return;
    if (g.json) {
      PrintJson(doc);
    } else {
      std::vector<std::vector<std::string>> rows;
      for (const auto& k : Field(doc, "writeKeys")) {
        rows.push_back({"write-key", Str(k, "id"), Str(k, "prefix"), Str(k, "project"), Str(k, "createdAt"),
                        Str(k, "revokedAt"), Str(k, "expiresAt")});
      }
      for (const auto& t : Field(doc, "adminTokens")) {
        rows.push_back({"admin-token", Str(t, "id"), Str(t, "prefix"), Str(t, "name") + " " + Str(t, "roles"),
                        Str(t, "createdAt"), Str(t, "revokedAt"), Str(t, "expiresAt")});
      }
      PrintTable({"KIND", "ID", "PREFIX", "PROJECT / NAME ROLES", "CREATED", "REVOKED", "EXPIRES"}, rows);
    }
    *exit_code = kExitOk;
  });
  auto cred_kind = std::make_shared<std::string>();
  auto cred_id = std::make_shared<int64_t>(0);
  auto at = std::make_shared<std::string>();
  auto path_of = [cred_kind, cred_id](const char* what) {
    return std::string("/v1/keys/") + (*cred_kind == "write-key" ? "write-keys/" : "admin-tokens/") +
           std::to_string(*cred_id) + "/" + what;
  };
  CLI::App* revoke = creds->add_subcommand("revoke", "Revoke a write key or admin token by id (takes effect at once)");
  revoke->add_option("kind", *cred_kind, "write-key or admin-token")
      ->required()
      ->check(CLI::IsMember({"write-key", "admin-token"}));
  revoke->add_option("id", *cred_id, "Its id (credentials list)")->required();
  revoke->callback([&g, exit_code, path_of, cred_kind, cred_id] {
    *exit_code = kExitFailure;
    std::string body;
    if (!AdminCall(g, "POST", path_of("revoke"), "{}", &body, exit_code)) return;
    if (g.json) {
      PrintJson(json::parse(body, nullptr, false));
    } else {
      std::printf("%s %lld revoked\n", cred_kind->c_str(), static_cast<long long>(*cred_id));
    }
    *exit_code = kExitOk;
  });
  CLI::App* expire = creds->add_subcommand("expire", "Set when a write key or admin token stops being accepted");
  expire->add_option("kind", *cred_kind, "write-key or admin-token")
      ->required()
      ->check(CLI::IsMember({"write-key", "admin-token"}));
  expire->add_option("id", *cred_id, "Its id (credentials list)")->required();
  expire->add_option("--at", *at, "ISO-8601 time, e.g. 2027-01-01T00:00:00Z, or 'never'")->required();
  expire->callback([&g, exit_code, path_of, cred_kind, cred_id, at] {
    *exit_code = kExitFailure;
    json request = {{"expiresAt", *at == "never" ? json(nullptr) : json(*at)}};
    std::string body;
    if (!AdminCall(g, "POST", path_of("expiry"), request.dump(), &body, exit_code)) return;
    json doc = json::parse(body, nullptr, false);
    if (g.json) {
      PrintJson(doc);
    } else {
      std::printf("%s %lld expires %s\n", cred_kind->c_str(), static_cast<long long>(*cred_id),
                  Str(doc, "expiresAt").c_str());
    }
    *exit_code = kExitOk;
  });

  // ---- audit ----
  CLI::App* audit = app.add_subcommand("audit", "The audit log of admin calls; `audit verify` checks its hash chain");
  audit->require_subcommand(0, 1);
  auto after = std::make_shared<int64_t>(0);
  auto limit = std::make_shared<int64_t>(1000);
  audit->add_option("--subject", *id, "Only entries about this subject id");
  audit->add_option("--after", *after, "Only entries after this sequence number");
  audit->add_option("--limit", *limit, "At most this many entries");
  CLI::App* verify = audit->add_subcommand(
      "verify", "Check the hash chain; names the first broken entry; prints the head hash; checks an anchor");
  auto anchor = std::make_shared<std::string>();
  verify->add_option("--anchor", *anchor, "An anchor file (`audit anchor`): the chain must still hold its entry");
  verify->callback([&g, anchor, exit_code] {
    *exit_code = kExitFailure;
    if (!NeedsServer(g, exit_code)) return;
    json kept;
    if (!anchor->empty()) {
      std::FILE* f = std::fopen(anchor->c_str(), "rb");
      if (f == nullptr) return (void)std::fprintf(stderr, "ferryctl: cannot read %s\n", anchor->c_str());
      std::string text;
      char buf[4096];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
      std::fclose(f);
      kept = json::parse(text, nullptr, false);
      if (!kept.is_object() || !kept.contains("headSeq") || !kept["headSeq"].is_number_integer() ||
          !kept.contains("headHash") || !kept["headHash"].is_string()) {
        *exit_code = kExitUsage;
        return (void)std::fprintf(stderr, "ferryctl: %s is not an audit anchor\n", anchor->c_str());
      }
    }
    json doc;
    if (!AdminJson(g, "GET", "/v1/audit/verify", "", &doc, exit_code)) return;
    bool ok = doc.value("ok", false);
    std::string anchor_problem;
    if (ok && kept.is_object()) {
      // The anchored entry must still be in the chain with the same hash: a chain rewritten from before it (by
      // someone holding the store's key) verifies on its own, but not against the anchor kept elsewhere.
      const int64_t seq = kept["headSeq"].get<int64_t>();
      Reply e = Call(g, "GET", "/v1/audit?after=" + std::to_string(seq - 1) + "&limit=1");
      if (!Check(e, exit_code)) return;
      json entries = Field(json::parse(e.body, nullptr, false), "entries");
      if (!entries.is_array() || entries.empty() || entries[0].value("seq", int64_t{0}) != seq) {
        anchor_problem = "the anchored entry " + std::to_string(seq) + " is gone";
      } else if (entries[0].value("hash", "") != kept["headHash"].get<std::string>()) {
        anchor_problem = "entry " + std::to_string(seq) + " no longer has the anchored hash (the log was rewritten)";
      }
      doc["anchor"] = {{"seq", seq}, {"ok", anchor_problem.empty()}};
    }
    if (g.json) {
      PrintJson(doc);
    } else if (ok) {
      std::printf("audit log OK: %s entries, hash chain intact\nhead: entry %s, hash %s\n", Str(doc, "entries").c_str(),
                  Str(doc, "headSeq").c_str(), Str(doc, "headHash").c_str());
      if (kept.is_object() && anchor_problem.empty()) {
        std::printf("anchor: entry %s still has the anchored hash\n", kept["headSeq"].dump().c_str());
      }
    }
    if (!ok) {
      std::fprintf(stderr, "ferryctl: audit log BROKEN at entry %s: %s\n", Str(doc, "firstBrokenSeq").c_str(),
                   Str(doc, "reason").c_str());
      *exit_code = kExitAuditBroken;
      return;
    }
    if (!anchor_problem.empty()) {
      std::fprintf(stderr, "ferryctl: audit log does NOT match the anchor: %s\n", anchor_problem.c_str());
      *exit_code = kExitAuditBroken;
      return;
    }
    *exit_code = kExitOk;
  });
  CLI::App* anchor_cmd = audit->add_subcommand(
      "anchor", "Verify the chain and write its head (seq, hash, time) to a file to keep elsewhere");
  auto anchor_out = std::make_shared<std::string>();
  anchor_cmd->add_option("--output,-o", *anchor_out, "The anchor file")->required();
  anchor_cmd->callback([&g, anchor_out, exit_code] {
    *exit_code = kExitFailure;
    json doc;
    if (!AdminJson(g, "GET", "/v1/audit/verify", "", &doc, exit_code)) return;
    if (!doc.value("ok", false)) {
      *exit_code = kExitAuditBroken;
      return (void)std::fprintf(stderr, "ferryctl: audit log BROKEN at entry %s; no anchor written\n",
                                Str(doc, "firstBrokenSeq").c_str());
    }
    char when[32];
    std::time_t now = std::time(nullptr);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    json a = {{"format", "ferry-audit-anchor/1"},
              {"collector", g.url},
              {"headSeq", doc["headSeq"]},
              {"headHash", doc["headHash"]},
              {"at", when}};
    std::FILE* f = std::fopen(anchor_out->c_str(), "wb");
    if (f == nullptr) return (void)std::fprintf(stderr, "ferryctl: cannot write %s\n", anchor_out->c_str());
    const std::string text = a.dump(2) + "\n";
    const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !written)
      return (void)std::fprintf(stderr, "ferryctl: cannot write %s\n", anchor_out->c_str());
    std::printf("anchor written to %s: entry %s, hash %s\n", anchor_out->c_str(), doc["headSeq"].dump().c_str(),
                Str(doc, "headHash").c_str());
    *exit_code = kExitOk;
  });
  audit->callback([&g, audit, id, after, limit, exit_code] {
    if (!audit->get_subcommands().empty()) return;
    *exit_code = kExitFailure;
    std::string path = "/v1/audit?after=" + std::to_string(*after) + "&limit=" + std::to_string(*limit);
    if (!id->empty()) path += "&subject=" + Escape(*id);
    json doc;
    if (!AdminJson(g, "GET", path, "", &doc, exit_code)) return;
    if (g.json) {
      PrintJson(doc);
    } else {
      std::vector<std::vector<std::string>> rows;
      for (const auto& e : Field(doc, "entries")) {
        std::string subj = Str(e, "subjectHash");
        rows.push_back({Str(e, "seq"), Str(e, "time"), Str(e, "actor"), Str(e, "role"), Str(e, "action"),
                        subj.empty() ? "" : subj.substr(0, 12), Str(e, "result"), Str(e, "detail")});
      }
      PrintTable({"SEQ", "TIME", "WHO", "ROLE", "ACTION", "SUBJECT#", "RESULT", "DETAIL"}, rows);
    }
    *exit_code = kExitOk;
  });
}

}  // namespace ferry::collector::ctl
