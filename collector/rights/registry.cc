#include "collector/rights/registry.h"

#include <algorithm>
#include <set>

#include "collector/rights/page.h"

namespace ferry::collector::rights {

using base::Result;
using base::Status;

namespace {

constexpr size_t kMaxText = 4000;
constexpr size_t kMaxList = 100;
constexpr size_t kMaxPurposes = 200;
constexpr int64_t kMaxRetentionDays = 36500;
constexpr int64_t kDayMs = 24LL * 3600 * 1000;

enum class Kind { kText, kTextList, kDays, kBool, kTransfers, kController };
struct FieldSpec {
  const char* key;
  Kind kind;
  bool required;
};

const FieldSpec kTopFields[] = {
    {"controller", Kind::kController, false},
    {"source", Kind::kText, false},
    {"securityMeasures", Kind::kText, false},
};
const FieldSpec kPurposeFields[] = {
    {"id", Kind::kText, true},
    {"name", Kind::kText, false},
    {"description", Kind::kText, true},
    {"legalBasis", Kind::kText, true},
    {"dataCategories", Kind::kTextList, true},
    {"dataSubjects", Kind::kTextList, false},
    {"retentionDays", Kind::kDays, false},
    {"recipients", Kind::kTextList, false},
    {"transfers", Kind::kTransfers, false},
    {"withdrawalEffect", Kind::kText, false},
    {"necessity", Kind::kText, false},
    {"risks", Kind::kTextList, false},
    {"measures", Kind::kTextList, false},
    {"sensitive", Kind::kBool, false},
    {"automatedDecisions", Kind::kBool, false},
};
const char* const kControllerKeys[] = {"name", "contact", "representative", "dpo"};
const char* const kTransferKeys[] = {"destination", "safeguard"};

Status Bad(const std::string& where, const std::string& what) {
  return Status::InvalidArgument("registry: " + where + ": " + what);
}

Status CheckText(const Json& v, const std::string& where, bool required) {
  if (!v.is_string()) return Bad(where, "must be a string");
  const auto& s = v.get_ref<const std::string&>();
  if (required && s.empty()) return Bad(where, "must not be empty");
  if (s.size() > kMaxText) return Bad(where, "longer than " + std::to_string(kMaxText) + " bytes");
  return Status::Ok();
}

// A JSON object whose keys are all among `keys`, each a string.
Result<Json> TextObject(const Json& v, const std::string& where, const char* const* keys, size_t n,
                        const char* required) {
  if (!v.is_object()) return Bad(where, "must be an object");
  Json out = Json::object();
  for (const auto& item : v.items()) {
    const std::string& k = item.key();
    const Json& x = item.value();
    if (std::find_if(keys, keys + n, [&](const char* c) { return k == c; }) == keys + n) {
      return Bad(where, "unknown key \"" + k + "\"");
    }
    FERRY_RETURN_IF_ERROR(CheckText(x, where + "." + k, required != nullptr && k == required));
    out[k] = x;
  }
  if (required != nullptr && !out.contains(required)) return Bad(where, std::string("needs \"") + required + "\"");
  return out;
}

Result<Json> CheckField(const FieldSpec& f, const Json& v, const std::string& where) {
  switch (f.kind) {
    case Kind::kText: FERRY_RETURN_IF_ERROR(CheckText(v, where, f.required)); return v;
    case Kind::kTextList: {
      if (!v.is_array()) return Bad(where, "must be an array of strings");
      if (v.size() > kMaxList) return Bad(where, "more than " + std::to_string(kMaxList) + " entries");
      if (f.required && v.empty()) return Bad(where, "must not be empty");
      for (size_t i = 0; i < v.size(); ++i) {
        FERRY_RETURN_IF_ERROR(CheckText(v[i], where + "[" + std::to_string(i) + "]", true));
      }
      return v;
    }
    case Kind::kDays:
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxRetentionDays) {
        return Bad(where, "must be a whole number of days from 1 to " + std::to_string(kMaxRetentionDays));
      }
      return v;
    case Kind::kBool:
      if (!v.is_boolean()) return Bad(where, "must be true or false");
      return v;
    case Kind::kTransfers: {
      if (!v.is_array()) return Bad(where, "must be an array of {destination, safeguard}");
      if (v.size() > kMaxList) return Bad(where, "more than " + std::to_string(kMaxList) + " entries");
      Json out = Json::array();
      for (size_t i = 0; i < v.size(); ++i) {
        auto t = TextObject(v[i], where + "[" + std::to_string(i) + "]", kTransferKeys, 2, "destination");
        if (!t.ok()) return t.status();
        out.push_back(std::move(t).value());
      }
      return out;
    }
    case Kind::kController: return TextObject(v, where, kControllerKeys, 4, nullptr);
  }
  return Bad(where, "unknown field kind");
}

// The rule of an event's purpose (docs/PROTOCOL.md "Events"): 1-32 bytes of [a-z0-9_-].
bool IdChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

Result<Json> CheckPurpose(const Json& p, const std::string& where) {
  if (!p.is_object()) return Bad(where, "must be an object");
  Json out = Json::object();
  for (const auto& [k, v] : p.items()) {
    const FieldSpec* spec = nullptr;
    for (const auto& f : kPurposeFields) {
      if (k == f.key) spec = &f;
    }
    if (spec == nullptr) return Bad(where, "unknown key \"" + k + "\"");
    auto checked = CheckField(*spec, v, where + "." + k);
    if (!checked.ok()) return checked.status();
    out[k] = std::move(checked).value();
  }
  for (const auto& f : kPurposeFields) {
    if (f.required && !out.contains(f.key)) return Bad(where, std::string("needs \"") + f.key + "\"");
  }
  const auto& id = out["id"].get_ref<const std::string&>();
  if (id.size() > 32 || !std::all_of(id.begin(), id.end(), IdChar)) {
    return Bad(where + ".id", "must be 1-32 of a-z, 0-9, '_' and '-' (the purpose events carry)");
  }
  const auto& bases = LegalBases();
  if (std::find(bases.begin(), bases.end(), out["legalBasis"].get<std::string>()) == bases.end()) {
    std::string all;
    for (const auto& b : bases) all += (all.empty() ? "" : ", ") + b;
    return Bad(where + ".legalBasis", "must be one of " + all);
  }
  if (out["legalBasis"] == "consent" && out.value("withdrawalEffect", std::string()).empty()) {
    return Bad(where, "a purpose based on consent needs \"withdrawalEffect\" (what withdrawing it does)");
  }
  for (const char* list : {"dataSubjects", "recipients", "transfers", "risks", "measures"}) {
    if (!out.contains(list)) out[list] = Json::array();
  }
  return out;
}

std::string Text(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> Texts(const Json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<std::string> TransferTexts(const Json& purpose) {
  std::vector<std::string> out;
  auto it = purpose.find("transfers");
  if (it == purpose.end()) return out;
  for (const auto& t : *it) {
    std::string s = Text(t, "destination");
    std::string g = Text(t, "safeguard");
    out.push_back(g.empty() ? s : s + " (" + g + ")");
  }
  return out;
}

std::string RetentionText(int64_t days) {
  return days > 0 ? std::to_string(days) + " days" : std::string("until erased (no retention limit)");
}

Json Controller(const Json& registry) {
  auto it = registry.find("controller");
  return it != registry.end() && it->is_object() ? *it : Json::object();
}

// The purposes with `flag` set.
Json PurposesWith(const Json& purposes, const char* flag) {
  Json out = Json::array();
  for (const auto& p : purposes) {
    if (p.value(flag, false)) out.push_back(p["id"]);
  }
  return out;
}

Json RecordsDocument(const RegistryContext& c) {
  Json activities = Json::array();
  for (const auto& p : c.registry["purposes"]) {
    int64_t days = EffectiveRetentionDays(p, c.project_max_age_ms);
    activities.push_back({{"purpose", p["id"]},
                          {"name", Text(p, "name")},
                          {"description", p["description"]},
                          {"legalBasis", p["legalBasis"]},
                          {"dataSubjects", p["dataSubjects"]},
                          {"dataCategories", p["dataCategories"]},
                          {"recipients", p["recipients"]},
                          {"transfers", p["transfers"]},
                          {"retentionDays", days > 0 ? Json(days) : Json(nullptr)},
                          {"withdrawalEffect", Text(p, "withdrawalEffect")}});
  }
  return {{"format", "ferry-records-of-processing/1"},
          {"project", c.project},
          {"generatedAt", Iso(c.generated_ms)},
          {"registryUpdatedAt", c.updated_ms > 0 ? Json(Iso(c.updated_ms)) : Json(nullptr)},
          {"controller", Controller(c.registry)},
          {"source", Text(c.registry, "source")},
          {"securityMeasures", Text(c.registry, "securityMeasures")},
          {"activities", activities}};
}

Json ImpactDocument(const RegistryContext& c) {
  const Json& purposes = c.registry["purposes"];
  Json description = Json::array(), necessity = Json::array(), risks = Json::array(), measures = Json::array();
  Json gaps = Json::array(), to_others = Json::array(), abroad = Json::array();
  for (const auto& p : purposes) {
    int64_t days = EffectiveRetentionDays(p, c.project_max_age_ms);
    Json id = p["id"];
    description.push_back({{"purpose", id},
                           {"description", p["description"]},
                           {"dataCategories", p["dataCategories"]},
                           {"dataSubjects", p["dataSubjects"]},
                           {"recipients", p["recipients"]},
                           {"transfers", p["transfers"]},
                           {"retentionDays", days > 0 ? Json(days) : Json(nullptr)}});
    necessity.push_back({{"purpose", id},
                         {"legalBasis", p["legalBasis"]},
                         {"necessity", Text(p, "necessity")},
                         {"retentionDays", days > 0 ? Json(days) : Json(nullptr)},
                         {"withdrawalEffect", Text(p, "withdrawalEffect")}});
    risks.push_back({{"purpose", id}, {"risks", p["risks"]}});
    measures.push_back({{"purpose", id}, {"measures", p["measures"]}});
    std::string name = id.get<std::string>();
    if (Text(p, "necessity").empty()) gaps.push_back("purpose " + name + ": no necessity and proportionality");
    if (p["risks"].empty()) gaps.push_back("purpose " + name + ": no risks identified");
    if (p["measures"].empty()) gaps.push_back("purpose " + name + ": no measures against its risks");
    if (days <= 0) gaps.push_back("purpose " + name + ": no retention limit");
    if (!p["recipients"].empty()) to_others.push_back(id);
    if (!p["transfers"].empty()) abroad.push_back(id);
  }
  if (purposes.empty()) gaps.push_back("no purposes registered");
  if (Text(c.registry, "securityMeasures").empty()) gaps.push_back("no general security measures");
  return {{"format", "ferry-impact-assessment-inputs/1"},
          {"project", c.project},
          {"generatedAt", Iso(c.generated_ms)},
          {"registryUpdatedAt", c.updated_ms > 0 ? Json(Iso(c.updated_ms)) : Json(nullptr)},
          {"controller", Controller(c.registry)},
          {"systematicDescription", description},
          {"necessityAndProportionality", necessity},
          {"risks", risks},
          {"measures", {{"general", Text(c.registry, "securityMeasures")}, {"byPurpose", measures}}},
          // PIPL art. 55: the processing that needs a personal information protection impact assessment.
          {"piplTriggers",
           {{"sensitivePersonalInformation", PurposesWith(purposes, "sensitive")},
            {"automatedDecisionMaking", PurposesWith(purposes, "automatedDecisions")},
            {"providedToOthers", to_others},
            {"crossBorderTransfer", abroad}}},
          {"gaps", gaps}};
}

Page ControllerSection(const RegistryContext& c, const std::string& title) {
  Page page;
  page.title = title;
  page.subtitle = "Project " + c.project + " · generated " + Iso(c.generated_ms) +
                  (c.updated_ms > 0 ? " · registry updated " + Iso(c.updated_ms) : " · no registry written yet");
  Json ctl = Controller(c.registry);
  Section s{"Controller", {}};
  s.fields.push_back({"Name", {Text(ctl, "name")}});
  s.fields.push_back({"Contact", {Text(ctl, "contact")}});
  s.fields.push_back({"Representative", {Text(ctl, "representative")}});
  s.fields.push_back({"Data protection officer", {Text(ctl, "dpo")}});
  s.fields.push_back({"Source of the data", {Text(c.registry, "source")}});
  s.fields.push_back({"Security measures (art. 32)", {Text(c.registry, "securityMeasures")}});
  page.sections.push_back(std::move(s));
  return page;
}

std::string PurposeHeading(const Json& p) {
  std::string name = Text(p, "name");
  return "Purpose " + p["id"].get<std::string>() + (name.empty() ? "" : ": " + name);
}

Page RecordsPage(const RegistryContext& c) {
  Page page = ControllerSection(c, "Records of processing activities (GDPR art. 30)");
  for (const auto& p : c.registry["purposes"]) {
    Section s{PurposeHeading(p), {}};
    s.fields.push_back({"Description", {Text(p, "description")}});
    s.fields.push_back({"Legal basis", {Text(p, "legalBasis")}});
    s.fields.push_back({"Categories of data subjects", Texts(p, "dataSubjects")});
    s.fields.push_back({"Categories of personal data", Texts(p, "dataCategories")});
    s.fields.push_back({"Recipients", Texts(p, "recipients")});
    s.fields.push_back({"Transfers to third countries", TransferTexts(p)});
    s.fields.push_back({"Retention", {RetentionText(EffectiveRetentionDays(p, c.project_max_age_ms))}});
    s.fields.push_back({"Effect of withdrawing consent", {Text(p, "withdrawalEffect")}});
    page.sections.push_back(std::move(s));
  }
  return page;
}

Page ImpactPage(const RegistryContext& c) {
  Json doc = ImpactDocument(c);
  Page page = ControllerSection(c, "Inputs of an impact assessment (GDPR art. 35, PIPL art. 55-56)");
  for (const auto& p : c.registry["purposes"]) {
    Section s{PurposeHeading(p), {}};
    s.fields.push_back({"Systematic description", {Text(p, "description")}});
    s.fields.push_back({"Categories of personal data", Texts(p, "dataCategories")});
    s.fields.push_back({"Categories of data subjects", Texts(p, "dataSubjects")});
    s.fields.push_back({"Legal basis", {Text(p, "legalBasis")}});
    s.fields.push_back({"Necessity and proportionality", {Text(p, "necessity")}});
    s.fields.push_back({"Retention", {RetentionText(EffectiveRetentionDays(p, c.project_max_age_ms))}});
    s.fields.push_back({"Recipients", Texts(p, "recipients")});
    s.fields.push_back({"Transfers to third countries", TransferTexts(p)});
    s.fields.push_back({"Sensitive personal information", {p.value("sensitive", false) ? "yes" : "no"}});
    s.fields.push_back({"Automated decision-making", {p.value("automatedDecisions", false) ? "yes" : "no"}});
    s.fields.push_back({"Risks to the rights of data subjects", Texts(p, "risks")});
    s.fields.push_back({"Measures against the risks", Texts(p, "measures")});
    page.sections.push_back(std::move(s));
  }
  Section triggers{"PIPL art. 55: processing that needs an impact assessment", {}};
  const Json& t = doc["piplTriggers"];
  for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{
           {"Sensitive personal information", "sensitivePersonalInformation"},
           {"Automated decision-making", "automatedDecisionMaking"},
           {"Provided to other handlers", "providedToOthers"},
           {"Cross-border transfer", "crossBorderTransfer"}}) {
    std::vector<std::string> ids;
    for (const auto& id : t[key]) ids.push_back(id.get<std::string>());
    triggers.fields.push_back({label, ids});
  }
  page.sections.push_back(std::move(triggers));
  Section gaps{"Missing inputs", {}};
  std::vector<std::string> g;
  for (const auto& x : doc["gaps"]) g.push_back(x.get<std::string>());
  gaps.fields.push_back({"To complete before the assessment", g});
  page.sections.push_back(std::move(gaps));
  return page;
}

}  // namespace

const std::vector<std::string>& LegalBases() {
  static const std::vector<std::string> kBases = {
      // GDPR art. 6(1)
      "consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests",
      // PIPL art. 13(1) beyond those: human resources management, public health emergencies, news reporting and
      // public opinion supervision, information already disclosed, other statutory cases.
      "hr_management", "public_health_emergency", "news_reporting", "publicly_disclosed", "statutory"};
  return kBases;
}

Result<Json> ValidateRegistry(const Json& in) {
  if (!in.is_object()) return Bad("document", "must be a JSON object");
  Json out = Json::object();
  for (const auto& [k, v] : in.items()) {
    if (k == "purposes") continue;
    const FieldSpec* spec = nullptr;
    for (const auto& f : kTopFields) {
      if (k == f.key) spec = &f;
    }
    if (spec == nullptr) return Bad("document", "unknown key \"" + k + "\"");
    auto checked = CheckField(*spec, v, k);
    if (!checked.ok()) return checked.status();
    out[k] = std::move(checked).value();
  }
  auto it = in.find("purposes");
  if (it == in.end() || !it->is_array()) return Bad("document", "needs \"purposes\", an array");
  if (it->size() > kMaxPurposes) return Bad("purposes", "more than " + std::to_string(kMaxPurposes));
  Json purposes = Json::array();
  std::set<std::string> ids;
  for (size_t i = 0; i < it->size(); ++i) {
    auto p = CheckPurpose((*it)[i], "purposes[" + std::to_string(i) + "]");
    if (!p.ok()) return p.status();
    if (!ids.insert((*p)["id"].get<std::string>()).second) {
      return Bad("purposes[" + std::to_string(i) + "].id", "repeats \"" + (*p)["id"].get<std::string>() + "\"");
    }
    purposes.push_back(std::move(p).value());
  }
  out["purposes"] = std::move(purposes);
  return out;
}

std::map<std::string, int64_t> PurposeRetention(const Json& registry) {
  std::map<std::string, int64_t> out;
  auto it = registry.find("purposes");
  if (it == registry.end() || !it->is_array()) return out;
  for (const auto& p : *it) {
    auto d = p.find("retentionDays");
    if (d != p.end() && d->is_number_integer()) out[p["id"].get<std::string>()] = d->get<int64_t>() * kDayMs;
  }
  return out;
}

int64_t EffectiveRetentionDays(const Json& purpose, int64_t project_max_age_ms) {
  int64_t project_days = project_max_age_ms > 0 ? (project_max_age_ms + kDayMs - 1) / kDayMs : 0;
  auto d = purpose.find("retentionDays");
  int64_t own = d != purpose.end() && d->is_number_integer() ? d->get<int64_t>() : 0;
  if (own > 0 && project_days > 0) return std::min(own, project_days);
  return own > 0 ? own : project_days;
}

std::optional<RenderFormat> ParseRenderFormat(const std::string& s) {
  if (s == "json") return RenderFormat::kJson;
  if (s == "md" || s == "markdown") return RenderFormat::kMarkdown;
  if (s == "html") return RenderFormat::kHtml;
  return std::nullopt;
}

const char* ContentType(RenderFormat f) {
  switch (f) {
    case RenderFormat::kJson: return "application/json";
    case RenderFormat::kMarkdown: return "text/markdown; charset=utf-8";
    case RenderFormat::kHtml: return "text/html; charset=utf-8";
  }
  return "application/octet-stream";
}

Json ViewDocument(const RegistryContext& c, RegistryView view) {
  return view == RegistryView::kRecords ? RecordsDocument(c) : ImpactDocument(c);
}

std::string RenderView(const RegistryContext& c, RegistryView view, RenderFormat format) {
  if (format == RenderFormat::kJson) return ViewDocument(c, view).dump(2, ' ', false, Json::error_handler_t::replace);
  Page page = view == RegistryView::kRecords ? RecordsPage(c) : ImpactPage(c);
  return format == RenderFormat::kHtml ? PageHtml(page, "en") : PageMarkdown(page);
}

// ---- RegistryService ----

RegistryService::RegistryService(RightsService* rights, RightsTransactions* transactions, int64_t default_max_age_ms)
    : rights_(rights), tx_(transactions), default_max_age_ms_(default_max_age_ms) {}

Result<RegistryContext> RegistryService::Load(StoreTxn& tx, const std::string& project) {
  auto projects = tx.primitives().Projects(project);
  if (!projects.ok()) return projects.status();
  if (project.empty() || projects->empty()) return Status::NotFound("unknown project: " + project);
  RegistryContext c;
  c.project = project;
  c.generated_ms = tx.NowMs();
  auto row = tx.primitives().GetRegistry(projects->front().id);
  if (!row.ok()) return row.status();
  c.registry = Json{{"purposes", Json::array()}};
  if (*row) {
    Json doc = Json::parse((*row)->first, nullptr, false);
    if (doc.is_object() && doc.contains("purposes")) c.registry = std::move(doc);
    c.updated_ms = (*row)->second;
  }
  auto ages = tx.primitives().MaxEventAges();
  if (!ages.ok()) return ages.status();
  auto own = ages->find(project);
  c.project_max_age_ms = own != ages->end() ? own->second : default_max_age_ms_;
  return c;
}

namespace {
Json GetAnswer(const RegistryContext& c) {
  return {{"project", c.project},
          {"updatedAt", c.updated_ms > 0 ? Json(Iso(c.updated_ms)) : Json(nullptr)},
          {"registry", c.registry}};
}
}  // namespace

Result<Json> RegistryService::Get(const Actor& actor, const std::string& project) {
  auto c = tx_->TransactFor<RegistryContext>(TxnMode::kRead, [&](StoreTxn& tx) { return Load(tx, project); });
  if (!c.ok()) {
    (void)rights_->RecordAudit(actor, "registry.read", "", "error", Dump({{"project", project}}));
    return c.status();
  }
  FERRY_RETURN_IF_ERROR(rights_->RecordAudit(actor, "registry.read", "", "ok", Dump({{"project", project}})));
  return GetAnswer(*c);
}

Result<Json> RegistryService::Put(const Actor& actor, const std::string& project, const Json& body) {
  auto doc = ValidateRegistry(body);
  if (!doc.ok()) {
    (void)rights_->RecordAudit(actor, "registry.edit", "", "invalid",
                               Dump({{"project", project}, {"reason", doc.status().message()}}));
    return doc.status();
  }
  auto ages = PurposeRetention(*doc);
  auto c = tx_->TransactFor<RegistryContext>(TxnMode::kWrite, [&](StoreTxn& tx) -> Result<RegistryContext> {
    auto projects = tx.primitives().Projects(project);
    if (!projects.ok()) return projects.status();
    if (project.empty() || projects->empty()) return Status::NotFound("unknown project: " + project);
    FERRY_RETURN_IF_ERROR(tx.primitives().PutRegistry(projects->front().id, Dump(*doc), ages, tx.NowMs()));
    Json ids = Json::array();
    for (const auto& p : (*doc)["purposes"]) ids.push_back(p["id"]);
    AuditEntry e;
    e.time_ms = tx.NowMs();
    e.actor = actor.audit_name;
    e.role = actor.role;
    e.action = "registry.edit";
    e.result = "ok";
    e.detail = Dump({{"project", project}, {"purposes", ids}});
    auto appended = tx.AppendAudit(e);
    if (!appended.ok()) return appended.status();
    return Load(tx, project);
  });
  if (!c.ok()) {
    if (c.status().code() == base::Code::kNotFound) {
      (void)rights_->RecordAudit(actor, "registry.edit", "", "not_found", Dump({{"project", project}}));
    }
    return c.status();
  }
  return GetAnswer(*c);
}

Result<std::string> RegistryService::Render(const Actor& actor, const std::string& project, RegistryView view,
                                            RenderFormat format) {
  const char* action = view == RegistryView::kRecords ? "registry.records" : "registry.impact";
  auto c = tx_->TransactFor<RegistryContext>(TxnMode::kRead, [&](StoreTxn& tx) { return Load(tx, project); });
  if (!c.ok()) {
    (void)rights_->RecordAudit(actor, action, "", "error", Dump({{"project", project}}));
    return c.status();
  }
  FERRY_RETURN_IF_ERROR(rights_->RecordAudit(actor, action, "", "ok", Dump({{"project", project}})));
  return RenderView(*c, view, format);
}

Result<std::map<std::string, RegistryContext>> RegistryService::Contexts(const std::vector<std::string>& projects) {
  return tx_->TransactFor<std::map<std::string, RegistryContext>>(
      TxnMode::kRead, [&](StoreTxn& tx) -> Result<std::map<std::string, RegistryContext>> {
        std::map<std::string, RegistryContext> out;
        std::vector<std::string> names = projects;
        if (names.empty()) {
          auto all = tx.primitives().Projects("");
          if (!all.ok()) return all.status();
          for (const auto& p : *all) names.push_back(p.name);
        }
        for (const auto& p : names) {
          auto c = Load(tx, p);
          if (c.ok()) {
            out.emplace(p, std::move(c).value());
          } else if (c.status().code() != base::Code::kNotFound) {
            return c.status();
          }
        }
        return out;
      });
}

}  // namespace ferry::collector::rights
