// A small ClickHouse HTTP client (libcurl): statements, TabSeparated inserts and TabSeparated results read row by
// row as they arrive (a result of a million rows is never held whole). SQL literals and TSV fields are escaped here.
#ifndef FERRY_COLLECTOR_INSIGHT_CH_CLIENT_H_
#define FERRY_COLLECTOR_INSIGHT_CH_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/base/secret.h"
#include "lib/base/status.h"

namespace ferry::insight {

// 'text' as a ClickHouse string literal (backslash and quote escaped).
std::string SqlQuote(std::string_view text);
// ('a', 'b', ...) — "('')" for an empty list, which matches nothing real.
std::string SqlList(const std::vector<std::string>& items);
// Appends a TabSeparated field (\\, \t, \n, \r, \0, \b, \f escaped).
void AppendTsv(std::string* out, std::string_view field);
// Splits one TabSeparated line into unescaped fields.
void SplitTsv(std::string_view line, std::vector<std::string>* fields);

using Settings = std::vector<std::pair<std::string, std::string>>;

class ClickHouseClient {
 public:
  // base_url: "http://host:port" (no trailing slash). The password is kept wiped-on-release.
  ClickHouseClient(std::string base_url, std::string user, base::SecretBytes password, int64_t timeout_ms);
  ~ClickHouseClient();
  ClickHouseClient(const ClickHouseClient&) = delete;
  ClickHouseClient& operator=(const ClickHouseClient&) = delete;

  const std::string& url() const { return base_url_; }

  // Runs a statement; the answer body in *out when given. Transport failures give kUnavailable, errors the server
  // reports give kStorage with its message.
  base::Status Exec(const std::string& sql, const Settings& settings = {}, std::string* out = nullptr);
  // Runs a SELECT (FORMAT TabSeparated is appended) and calls fn with each row's fields; fn returning false stops.
  base::Status Select(const std::string& sql, const std::function<bool(const std::vector<std::string>&)>& fn,
                      const Settings& settings = {});
  // INSERT INTO <target> FORMAT TabSeparated with `tsv` as the body (target: "db.t (c1, c2)").
  base::Status Insert(const std::string& target, const std::string& tsv, const Settings& settings = {});

 private:
  struct Handle;
  base::Status Post(const std::string& query_in_url, const std::string& body, const Settings& settings,
                    const std::function<bool(std::string_view)>& on_data, std::string* error_body);
  std::unique_ptr<Handle> TakeHandle();
  void ReturnHandle(std::unique_ptr<Handle> h);

  std::string base_url_, user_;
  base::SecretBytes password_;
  int64_t timeout_ms_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
};

}  // namespace ferry::insight

#endif  // FERRY_COLLECTOR_INSIGHT_CH_CLIENT_H_
