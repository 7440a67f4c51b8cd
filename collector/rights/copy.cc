#include "collector/rights/copy.h"

#include <algorithm>
#include <cstring>

#include "collector/rights/page.h"

namespace ferry::collector::rights {

namespace {

struct Phrase {
  const char* key;
  const char* en;
  const char* zh;
};

// Every text of the copy, in both languages.
const Phrase kPhrases[] = {
    {"title", "A copy of your personal data", "您的个人信息副本"},
    {"for", "About", "数据主体"},
    {"made", "made", "生成时间"},
    {"cover", "What we do with your data (GDPR art. 15(1); PIPL art. 44-45)",
     "我们如何处理您的个人信息（GDPR 第 15(1) 条；《个人信息保护法》第 44-45 条）"},
    {"project", "Project", "项目"},
    {"controller", "Controller and contact", "个人信息处理者及联系方式"},
    {"dpo", "Data protection officer", "个人信息保护负责人"},
    {"purposes", "Purposes and legal basis", "处理目的及法律依据"},
    {"basis", "legal basis", "法律依据"},
    {"categories", "Categories of personal data", "个人信息的种类"},
    {"types", "Kinds of events held", "持有的事件类型"},
    {"recipients", "Recipients", "接收方"},
    {"transfers", "Transfers to other countries and their safeguards", "向境外提供及保障措施"},
    {"retention", "How long it is kept", "保存期限"},
    {"days", "days", "天"},
    {"until_erased", "until erased", "直至删除"},
    {"source", "Where it came from", "个人信息来源"},
    {"source_default", "Collected from your devices and apps, which sent it", "通过您的设备和应用收集"},
    {"automated", "Automated decision-making", "自动化决策"},
    {"withdrawal", "If you withdraw consent", "撤回同意的后果"},
    {"rights", "Your rights", "您的权利"},
    {"right_rectify", "Have incorrect data corrected (art. 16)", "更正、补充不准确或不完整的个人信息"},
    {"right_erase", "Have your data erased (art. 17)", "删除您的个人信息"},
    {"right_restrict", "Restrict the processing (art. 18)", "限制处理您的个人信息"},
    {"right_object", "Object to the processing, and to direct marketing at any time (art. 21)",
     "拒绝处理，并可随时拒绝直接营销"},
    {"right_port", "Receive your data in a machine-readable form (art. 20): the JSON copy",
     "以机器可读格式获取您的个人信息（JSON 副本）"},
    {"right_withdraw", "Withdraw your consent at any time; what was done before stays lawful (art. 7(3))",
     "随时撤回同意；撤回前已进行的处理不受影响"},
    {"right_complain", "Lodge a complaint with a supervisory authority (art. 77)",
     "向履行个人信息保护职责的部门投诉、举报"},
    {"unregistered", "The controller has not registered the purposes of this project yet; ask the controller for them.",
     "处理者尚未登记该项目的处理目的；请向处理者询问。"},
    {"none", "none", "无"},
    {"none_given", "(none given)", "（未提供）"},
    {"data", "The data held", "持有的数据"},
    {"identities", "Your identifiers", "您的标识符"},
    {"event_count", "Number of events", "事件数量"},
    {"first_seen", "First seen", "首次出现"},
    {"last_seen", "Last seen", "最近出现"},
    {"consent_now", "Consent now", "当前同意状态"},
    {"traits", "Profile", "用户属性"},
    {"consent_history", "Consent history", "同意记录"},
    {"events", "Events", "事件"},
    {"col_time", "Time (UTC)", "时间（UTC）"},
    {"col_type", "Type", "类型"},
    {"col_name", "Name", "名称"},
    {"col_purpose", "Purpose", "目的"},
    {"col_details", "Details", "详情"},
    {"col_state", "State", "状态"},
    {"col_previous", "Before", "此前"},
    {"col_method", "How", "方式"},
    {"no_events", "No events are held.", "未持有任何事件。"},
};

std::string Str(const Json& j, const char* k) {
  auto it = j.is_object() ? j.find(k) : j.end();
  return j.is_object() && it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Adds the strings of j[k] (an array) to `out`, each once.
void Collect(const Json& j, const char* k, std::vector<std::string>* out) {
  auto it = j.find(k);
  if (it == j.end() || !it->is_array()) return;
  for (const auto& v : *it) {
    if (v.is_string() && std::find(out->begin(), out->end(), v.get<std::string>()) == out->end()) {
      out->push_back(v.get<std::string>());
    }
  }
}

// The details of an event: its properties (or traits), as compact JSON.
std::string Details(const std::string& body) {
  Json b = Json::parse(body, nullptr, false);
  if (!b.is_object()) return body;
  for (const char* k : {"properties", "traits"}) {
    auto it = b.find(k);
    if (it != b.end() && !it->empty()) return Dump(*it);
  }
  return std::string();
}

}  // namespace

std::optional<CopyFormat> ParseCopyFormat(const std::string& s) {
  if (s == "json") return CopyFormat::kJson;
  if (s == "html") return CopyFormat::kHtml;
  if (s == "csv") return CopyFormat::kCsv;
  return std::nullopt;
}

std::optional<Lang> ParseLang(const std::string& s) {
  if (s == "en" || s.rfind("en-", 0) == 0) return Lang::kEn;
  if (s == "zh" || s.rfind("zh-", 0) == 0) return Lang::kZh;
  return std::nullopt;
}

const char* CopyContentType(CopyFormat f) {
  switch (f) {
    case CopyFormat::kJson: return "application/json";
    case CopyFormat::kHtml: return "text/html; charset=utf-8";
    case CopyFormat::kCsv: return "text/csv; charset=utf-8";
  }
  return "application/octet-stream";
}

// ---- HtmlCopy ----

const char* HtmlCopy::T(const char* key) const {
  for (const auto& p : kPhrases) {
    if (std::strcmp(p.key, key) == 0) return lang_ == Lang::kZh ? p.zh : p.en;
  }
  return key;
}

HtmlCopy::HtmlCopy(TextSink sink, const std::string& subject, int64_t now_ms, Lang lang,
                   std::map<std::string, RegistryContext> registries)
    : sink_(std::move(sink)), lang_(lang), registries_(std::move(registries)) {
  std::string head = std::string("<!doctype html>\n<html lang=\"") + (lang_ == Lang::kZh ? "zh-CN" : "en") +
                     "\"><head><meta charset=\"utf-8\">"
                     "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                     "style-src 'unsafe-inline'\">"
                     "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>" +
                     HtmlEscape(T("title")) + "</title><style>" + PageCss() +
                     ".cover{border:2px solid #0969da;border-radius:6px;padding:0 1rem 1rem;margin:1rem 0}"
                     "</style></head>\n<body>\n<h1 id=\"title\">" +
                     HtmlEscape(T("title")) + "</h1>\n<p class=\"sub\">" + HtmlEscape(T("for")) + ": " +
                     HtmlEscape(subject) + " · " + HtmlEscape(T("made")) + ": " + HtmlEscape(Iso(now_ms)) + "</p>\n";
  Put(head);
}

bool HtmlCopy::BeginProject(const SubjectSummary& s) {
  consent_n_ = events_n_ = 0;
  in_events_ = false;
  std::string none = T("none");
  // The cover: art. 15(1) from the project's registry.
  Section cover{std::string(T("project")) + " " + s.project + " — " + T("cover"), {}};
  auto reg = registries_.find(s.project);
  std::vector<std::string> purposes, categories, recipients, transfers, retention, automated, withdrawal;
  std::string source = T("source_default");
  std::string controller;
  if (reg != registries_.end() && !reg->second.registry["purposes"].empty()) {
    const Json& r = reg->second.registry;
    for (const auto& p : r["purposes"]) {
      std::string name = Str(p, "name").empty() ? Str(p, "id") : Str(p, "name") + " (" + Str(p, "id") + ")";
      purposes.push_back(name + ": " + Str(p, "description") + " — " + T("basis") + ": " + Str(p, "legalBasis"));
      Collect(p, "dataCategories", &categories);
      Collect(p, "recipients", &recipients);
      for (const auto& t : p["transfers"]) {
        std::string x = Str(t, "destination") + (Str(t, "safeguard").empty() ? "" : " (" + Str(t, "safeguard") + ")");
        if (std::find(transfers.begin(), transfers.end(), x) == transfers.end()) transfers.push_back(x);
      }
      int64_t days = EffectiveRetentionDays(p, reg->second.project_max_age_ms);
      retention.push_back(Str(p, "id") + ": " +
                          (days > 0 ? std::to_string(days) + " " + T("days") : std::string(T("until_erased"))));
      if (p.value("automatedDecisions", false)) automated.push_back(name);
      if (!Str(p, "withdrawalEffect").empty()) withdrawal.push_back(Str(p, "id") + ": " + Str(p, "withdrawalEffect"));
    }
    if (!Str(r, "source").empty()) source = Str(r, "source");
    const Json ctl = r.value("controller", Json::object());
    for (const char* k : {"name", "contact", "representative"}) {
      if (!Str(ctl, k).empty()) controller += (controller.empty() ? "" : " · ") + Str(ctl, k);
    }
    if (!Str(ctl, "dpo").empty())
      controller += (controller.empty() ? "" : " · ") + (T("dpo") + (": " + Str(ctl, "dpo")));
  } else {
    purposes.push_back(T("unregistered"));
  }
  std::vector<std::string> types;
  for (const auto& [type, n] : s.events_by_type) types.push_back(type + ": " + std::to_string(n));
  cover.fields.push_back({T("controller"), {controller}});
  cover.fields.push_back({T("purposes"), purposes});
  cover.fields.push_back({T("categories"), categories});
  cover.fields.push_back({T("types"), types});
  cover.fields.push_back({T("recipients"), recipients.empty() ? std::vector<std::string>{none} : recipients});
  cover.fields.push_back({T("transfers"), transfers.empty() ? std::vector<std::string>{none} : transfers});
  cover.fields.push_back({T("retention"), retention});
  cover.fields.push_back({T("source"), {source}});
  cover.fields.push_back({T("automated"), automated.empty() ? std::vector<std::string>{none} : automated});
  cover.fields.push_back({T("withdrawal"), withdrawal});
  cover.fields.push_back({T("rights"),
                          {T("right_rectify"), T("right_erase"), T("right_restrict"), T("right_object"),
                           T("right_port"), T("right_withdraw"), T("right_complain")}});
  // The data: the summary of the subject in this project.
  Section data{std::string(T("project")) + " " + s.project + " — " + T("data"), {}};
  std::vector<std::string> ids;
  for (const auto& i : s.identities) ids.push_back(i.kind + ": " + i.id);
  std::vector<std::string> consent;
  for (const auto& c : s.consent) consent.push_back(c.purpose + ": " + c.state + " (" + Iso(c.timestamp_ms) + ")");
  Json traits = Json::parse(s.traits, nullptr, false);
  std::vector<std::string> trait_lines;
  if (traits.is_object()) {
    for (const auto& [k, v] : traits.items())
      trait_lines.push_back(k + ": " + (v.is_string() ? v.get<std::string>() : Dump(v)));
  }
  data.fields.push_back({T("identities"), ids});
  data.fields.push_back({T("event_count"), {std::to_string(s.event_count)}});
  data.fields.push_back({T("first_seen"), {Iso(s.first_seen_ms)}});
  data.fields.push_back({T("last_seen"), {Iso(s.last_seen_ms)}});
  data.fields.push_back({T("consent_now"), consent});
  data.fields.push_back({T("traits"), trait_lines});
  std::string html = std::string("<div class=\"cover\"") + (projects_ == 0 ? " id=\"cover\"" : "") + ">" +
                     SectionsHtml({cover}, T("none_given")) + "</div>\n" + SectionsHtml({data}, T("none_given")) +
                     "<section><h2>" + HtmlEscape(T("consent_history")) + "</h2>\n<table><thead><tr><th>" +
                     HtmlEscape(T("col_time")) + "</th><th>" + HtmlEscape(T("col_purpose")) + "</th><th>" +
                     HtmlEscape(T("col_state")) + "</th><th>" + HtmlEscape(T("col_previous")) + "</th><th>" +
                     HtmlEscape(T("col_method")) + "</th></tr></thead><tbody>\n";
  ++projects_;
  return Put(html);
}

bool HtmlCopy::Consent(const ConsentRecord& c) {
  ++consent_n_;
  return Put("<tr><td>" + HtmlEscape(Iso(c.timestamp_ms)) + "</td><td>" + HtmlEscape(c.purpose) + "</td><td>" +
             HtmlEscape(c.state) + "</td><td>" + HtmlEscape(c.previous) + "</td><td>" + HtmlEscape(c.method) +
             "</td></tr>\n");
}

bool HtmlCopy::Event(const EventRow& e) {
  if (!in_events_) {
    in_events_ = true;
    if (!Put(std::string("</tbody></table></section>\n<section><h2>") + HtmlEscape(T("events")) +
             "</h2>\n<table class=\"events\"><thead><tr><th>" + HtmlEscape(T("col_time")) + "</th><th>" +
             HtmlEscape(T("col_type")) + "</th><th>" + HtmlEscape(T("col_name")) + "</th><th>" +
             HtmlEscape(T("col_purpose")) + "</th><th>" + HtmlEscape(T("col_details")) + "</th></tr></thead><tbody>\n"))
      return false;
  }
  ++events_n_;
  return Put("<tr><td>" + HtmlEscape(Iso(e.timestamp_ms)) + "</td><td>" + HtmlEscape(e.type) + "</td><td>" +
             HtmlEscape(e.name) + "</td><td>" + HtmlEscape(e.purpose) + "</td><td class=\"props\">" +
             HtmlEscape(Details(e.body)) + "</td></tr>\n");
}

bool HtmlCopy::EndProject() {
  if (!in_events_) {
    return Put(std::string("</tbody></table></section>\n<section><h2>") + HtmlEscape(T("events")) + "</h2><p>" +
               HtmlEscape(T("no_events")) + "</p></section>\n");
  }
  return Put("</tbody></table></section>\n");
}

bool HtmlCopy::Finish() { return Put("</body></html>\n"); }

// ---- CsvCopy ----

std::string CsvCell(const std::string& in) {
  std::string s = in;
  if (!s.empty() && s[0] != '\0' && std::strchr("=+-@\t\r", s[0]) != nullptr) s.insert(0, 1, '\'');
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

CsvCopy::CsvCopy(TextSink sink) : sink_(std::move(sink)) {
  sink_("\xEF\xBB\xBFproject,timestamp,receivedAt,type,name,purpose,messageId,userId,anonymousId,details\r\n");
}

bool CsvCopy::Event(const EventRow& e) {
  std::string line = CsvCell(e.project);
  for (const std::string& cell : {Iso(e.timestamp_ms), Iso(e.received_ms), e.type, e.name, e.purpose, e.message_id,
                                  e.user_id, e.anonymous_id, Details(e.body)}) {
    line += "," + CsvCell(cell);
  }
  line += "\r\n";
  return sink_(line);
}

}  // namespace ferry::collector::rights
