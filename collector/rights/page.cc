#include "collector/rights/page.h"

#include <cstring>

#include <nlohmann/json.hpp>

namespace ferry::collector::rights {

namespace {

// Valid UTF-8 (invalid sequences replaced), through nlohmann's checked dump.
std::string ValidUtf8(const std::string& s) {
  std::string quoted = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(quoted).get<std::string>();
}

bool Empty(const PageField& f) { return f.values.empty() || (f.values.size() == 1 && f.values[0].empty()); }

// `in` (made valid UTF-8) with & < > as entities, and in HTML also " and '; in Markdown its punctuation
// backslash-escaped and line breaks as spaces.
std::string Escape(const std::string& in, bool markdown) {
  std::string s = ValidUtf8(in);
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char c : s) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (!markdown && c == '"') {
      out += "&quot;";
    } else if (!markdown && c == '\'') {
      out += "&#39;";
    } else if (markdown && (c == '\r' || c == '\n')) {
      out += ' ';
    } else if (markdown && std::strchr("\\`*_{}[]()#+-!|~", c) != nullptr && c != '\0') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string HtmlEscape(const std::string& in) { return Escape(in, false); }

std::string MarkdownEscape(const std::string& in) { return Escape(in, true); }

const char* PageCss() {
  return "body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans','Noto Sans CJK SC','PingFang SC',"
         "'Microsoft YaHei',sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24;"
         "line-height:1.5}"
         "h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}"
         ".sub{color:#57606a;margin-top:0}dl{display:grid;grid-template-columns:16rem 1fr;gap:.3rem 1rem}"
         "dt{font-weight:600}dd{margin:0}dd ul{margin:0;padding-left:1.2rem}.none{color:#8c959f;font-style:italic}"
         "table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #d0d7de;padding:.2rem "
         ".4rem;"
         "text-align:left;vertical-align:top}th{background:#f6f8fa}td.props{font-family:ui-monospace,monospace;"
         "white-space:pre-wrap;word-break:break-all}"
         "@media print{body{margin:0}h2{break-after:avoid}}";
}

std::string SectionsHtml(const std::vector<Section>& sections, const std::string& none_given) {
  std::string out;
  for (const auto& s : sections) {
    out += "<section><h2>" + HtmlEscape(s.heading) + "</h2>\n<dl>\n";
    for (const auto& f : s.fields) {
      out += "<dt>" + HtmlEscape(f.label) + "</dt><dd>";
      if (Empty(f)) {
        out += "<span class=\"none\">" + HtmlEscape(none_given) + "</span>";
      } else if (f.values.size() == 1) {
        out += HtmlEscape(f.values[0]);
      } else {
        out += "<ul>";
        for (const auto& v : f.values) out += "<li>" + HtmlEscape(v) + "</li>";
        out += "</ul>";
      }
      out += "</dd>\n";
    }
    out += "</dl></section>\n";
  }
  return out;
}

std::string PageHtml(const Page& page, const std::string& lang, const std::string& extra_html) {
  std::string none = lang.rfind("zh", 0) == 0 ? "（未提供）" : "(none given)";
  return "<!doctype html>\n<html lang=\"" + HtmlEscape(lang) +
         "\"><head><meta charset=\"utf-8\">"
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
         "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>" +
         HtmlEscape(page.title) + "</title><style>" + PageCss() + "</style></head>\n<body>\n<h1>" +
         HtmlEscape(page.title) + "</h1>\n<p class=\"sub\">" + HtmlEscape(page.subtitle) + "</p>\n" +
         SectionsHtml(page.sections, none) + extra_html + "</body></html>\n";
}

std::string PageMarkdown(const Page& page) {
  std::string out = "# " + MarkdownEscape(page.title) + "\n\n" + MarkdownEscape(page.subtitle) + "\n";
  for (const auto& s : page.sections) {
    out += "\n## " + MarkdownEscape(s.heading) + "\n\n";
    for (const auto& f : s.fields) {
      out += "- **" + MarkdownEscape(f.label) + "**:";
      if (Empty(f)) {
        out += " _(none given)_\n";
      } else if (f.values.size() == 1) {
        out += " " + MarkdownEscape(f.values[0]) + "\n";
      } else {
        out += "\n";
        for (const auto& v : f.values) out += "  - " + MarkdownEscape(v) + "\n";
      }
    }
  }
  return out;
}

}  // namespace ferry::collector::rights
