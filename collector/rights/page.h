// Documents for people, written once for every rendering: a page of titled sections, each a list of labelled
// fields (one text or a list of texts), rendered as one self-contained HTML page (inline CSS, no script, no external
// resource, every text escaped) or as Markdown (every text escaped). The registry's views (registry.h) and the cover
// page of a person's copy use it.
#ifndef FERRY_COLLECTOR_RIGHTS_PAGE_H_
#define FERRY_COLLECTOR_RIGHTS_PAGE_H_

#include <string>
#include <vector>

namespace ferry::collector::rights {

struct PageField {
  std::string label;
  std::vector<std::string> values;  // one: a text; several: a list; none or one empty: "(none given)"
};
struct Section {
  std::string heading;
  std::vector<PageField> fields;
};
struct Page {
  std::string title, subtitle;
  std::vector<Section> sections;
};

// & < > " ' as entities; invalid UTF-8 replaced (U+FFFD).
std::string HtmlEscape(const std::string& s);
// Markdown text that renders as itself: Markdown's punctuation backslash-escaped, & < > as entities, line breaks as
// spaces.
std::string MarkdownEscape(const std::string& s);

// The inline stylesheet of every page (so a copy and the registry's views look alike).
const char* PageCss();
// <!doctype html> ... with lang=`lang` ("en", "zh-CN"); `extra_html` (already escaped HTML) is put after the
// sections.
std::string PageHtml(const Page& page, const std::string& lang, const std::string& extra_html = std::string());
std::string PageMarkdown(const Page& page);
// The sections alone, as HTML (for a page assembled by its caller).
std::string SectionsHtml(const std::vector<Section>& sections, const std::string& none_given);

}  // namespace ferry::collector::rights

#endif  // FERRY_COLLECTOR_RIGHTS_PAGE_H_
