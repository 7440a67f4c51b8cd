// A copy a person can read (GDPR art. 15(1) and (3), PIPL art. 45): the export of a subject rendered, as it streams
// from the store, as one self-contained HTML page or as a CSV of events, in English or Simplified Chinese. The HTML
// opens with a cover per project carrying what art. 15(1) requires (purposes, categories of data, recipients and
// transfers, retention, source, automated decisions, the person's rights), drawn from the purpose and processing
// registry (registry.h). docs/COMPLIANCE.md "A copy a person can read" describes both.
#ifndef FERRY_COLLECTOR_RIGHTS_COPY_H_
#define FERRY_COLLECTOR_RIGHTS_COPY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "collector/rights/registry.h"
#include "collector/store/records.h"

namespace ferry::collector::rights {

enum class CopyFormat { kJson, kHtml, kCsv };
enum class Lang { kEn, kZh };

// "json", "html", "csv"; nullopt otherwise.
std::optional<CopyFormat> ParseCopyFormat(const std::string& s);
// "en" (and "en-*"), "zh", "zh-CN", "zh-Hans" (and "zh-*"); nullopt otherwise.
std::optional<Lang> ParseLang(const std::string& s);
const char* CopyContentType(CopyFormat f);

// Where the rendered text goes; false stops the export.
using TextSink = std::function<bool(std::string_view)>;

// The HTML copy. Nothing in it is fetched (inline CSS, no script, no image, a Content-Security-Policy that forbids
// both) and every text from the store is escaped.
class HtmlCopy : public ExportVisitor {
 public:
  // registries: the projects' registries by project name (a project absent has none).
  HtmlCopy(TextSink sink, const std::string& subject, int64_t now_ms, Lang lang,
           std::map<std::string, RegistryContext> registries);
  bool BeginProject(const SubjectSummary& s) override;
  bool Consent(const ConsentRecord& c) override;
  bool Event(const EventRow& e) override;
  bool EndProject() override;
  // Ends the page; false when the sink failed.
  bool Finish();

 private:
  bool Put(std::string_view s) { return sink_(s); }
  const char* T(const char* key) const;

  TextSink sink_;
  Lang lang_;
  std::map<std::string, RegistryContext> registries_;
  int projects_ = 0;
  int64_t consent_n_ = 0, events_n_ = 0;
  bool in_events_ = false;
};

// The CSV of events (RFC 4180, UTF-8 with a byte-order mark so spreadsheet programs read it as UTF-8): one header
// line, then one line per event, across projects. A cell that a spreadsheet would run as a formula (starting with
// = + - @, a tab or a carriage return) is prefixed with an apostrophe.
class CsvCopy : public ExportVisitor {
 public:
  explicit CsvCopy(TextSink sink);
  bool BeginProject(const SubjectSummary&) override { return true; }
  bool Consent(const ConsentRecord&) override { return true; }
  bool Event(const EventRow& e) override;
  bool EndProject() override { return true; }
  bool Finish() { return true; }

 private:
  TextSink sink_;
};

// One CSV cell, quoted when needed, formula-guarded.
std::string CsvCell(const std::string& s);

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_COPY_H_
