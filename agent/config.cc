#include "agent/config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "agent/api.h"
#include "lib/net/address.h"
#include "lib/wire/event.h"
#include "platform/platform.h"
#include "sdk/pii/pii.h"

namespace ferry::agent {

using base::Result;
using base::Status;
using Json = nlohmann::json;

namespace {

// Collects the first error with the file and key it belongs to.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}
  void Fail(const std::string& key, const std::string& why) {
    if (error_.empty()) error_ = file_ + ": " + key + ": " + why;
  }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  // Refuses keys of `obj` that are not in `known` (typos would otherwise be ignored silently).
  void OnlyKeys(const Json& obj, const std::string& prefix, std::initializer_list<const char*> known) {
    std::set<std::string> k(known.begin(), known.end());
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (!k.count(it.key())) Fail(prefix + it.key(), "unknown key");
    }
  }
  const Json* Object(const Json& obj, const std::string& prefix, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end()) return nullptr;
    if (!it->is_object()) {
      Fail(prefix + key, "must be an object");
      return nullptr;
    }
    return &*it;
  }
  void String(const Json& obj, const std::string& prefix, const char* key, std::string* out) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!it->is_string()) return Fail(prefix + key, "must be a string");
    *out = it->get<std::string>();
  }
  // A list of strings, each checked by `check` ("" = fine, else the reason).
  template <typename Check>
  void Strings(const Json& obj, const std::string& prefix, const char* key, std::vector<std::string>* out,
               Check check) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!it->is_array()) return Fail(prefix + key, "must be a list of strings");
    for (const auto& v : *it) {
      if (!v.is_string()) return Fail(prefix + key, "must be a list of strings (got " + v.dump() + ")");
      std::string why = check(v.get<std::string>());
      if (!why.empty()) return Fail(prefix + key, why);
      out->push_back(v.get<std::string>());
    }
  }
  void Ids(const Json& obj, const std::string& prefix, const char* key, std::vector<uint32_t>* out) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!it->is_array()) return Fail(prefix + key, "must be a list of numeric ids");
    for (const auto& v : *it) {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xFFFFFFFEu) {
        return Fail(prefix + key,
                    "must be a list of numeric ids (as `id -u` / `id -g` print them; got " + v.dump() + ")");
      }
      out->push_back(static_cast<uint32_t>(v.get<uint64_t>()));
    }
  }
  template <typename T>
  void Number(const Json& obj, const std::string& prefix, const char* key, T* out, uint64_t lo, uint64_t hi) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!it->is_number_unsigned()) return Fail(prefix + key, "must be a whole number");
    uint64_t v = it->get<uint64_t>();
    if (v < lo || v > hi) {
      return Fail(prefix + key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    }
    *out = static_cast<T>(v);
  }

 private:
  std::string file_;
  std::string error_;
};

std::string ReadSmallFile(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  return s.substr(b);
}

// Relative paths are taken from the config file's directory.
std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return base_dir + "/" + p;
}

}  // namespace

Result<AgentConfig> LoadConfig(const std::string& path) {
  bool ok = false;
  std::string text = ReadSmallFile(path, &ok);
  if (!ok) return Status::InvalidArgument(path + ": cannot be read");
  return ParseConfig(text, path);
}

Result<AgentConfig> ParseConfig(const std::string& text, const std::string& path) {
  Checker c(path);
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument(path + ": not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument(path + ": the top level must be a JSON object");
  std::string base_dir = platform::DirName(path);

  AgentConfig cfg;
  cfg.source_file = path;
  c.OnlyKeys(j, "",
             {"listen",
              "unix_socket",
              "tls",
              "local_token",
              "local_token_file",
              "forward_token",
              "forward_token_file",
              "allowed_hosts",
              "port_file",
              "cors",
              "threads",
              "limits",
              "upstream",
              "storage",
              "buffer_key",
              "consent",
              "hold_pending_ms",
              "necessary_events",
              "pii_rules",
              "batch",
              "shutdown_timeout_ms",
              "app_name",
              "log_level"});

  // Listeners.
  c.String(j, "", "listen", &cfg.listen);
  if (!cfg.listen.empty() && !net::SplitHostPort(cfg.listen, &cfg.listen_host, &cfg.listen_port)) {
    c.Fail("listen", "want host:port (e.g. 127.0.0.1:8787), or \"\" for no TCP listener");
  }
  if (const Json* u = c.Object(j, "", "unix_socket")) {
    c.OnlyKeys(*u, "unix_socket.", {"path", "mode", "consent_uids", "consent_gids"});
    c.Ids(*u, "unix_socket.", "consent_uids", &cfg.consent_uids);
    c.Ids(*u, "unix_socket.", "consent_gids", &cfg.consent_gids);
    c.String(*u, "unix_socket.", "path", &cfg.unix_socket_path);
    if (cfg.unix_socket_path.empty()) c.Fail("unix_socket.path", "is required");
    if (cfg.unix_socket_path.size() > 100) c.Fail("unix_socket.path", "longer than a Unix socket path can be");
    cfg.unix_socket_path = Resolve(base_dir, cfg.unix_socket_path);
    std::string mode;
    c.String(*u, "unix_socket.", "mode", &mode);
    if (!mode.empty()) {
      char* end = nullptr;
      unsigned long m = std::strtoul(mode.c_str(), &end, 8);
      if (*end != '\0' || m > 0777) {
        c.Fail("unix_socket.mode", "want an octal file mode as a string, e.g. \"0660\"");
      } else {
        cfg.unix_socket_mode = static_cast<uint32_t>(m);
      }
    }
  }
  if (const Json* t = c.Object(j, "", "tls")) {
    c.OnlyKeys(*t, "tls.", {"cert", "key"});
    c.String(*t, "tls.", "cert", &cfg.tls_cert);
    c.String(*t, "tls.", "key", &cfg.tls_key);
    if (cfg.tls_cert.empty() || cfg.tls_key.empty()) c.Fail("tls", "needs both cert and key");
    cfg.tls_cert = Resolve(base_dir, cfg.tls_cert);
    cfg.tls_key = Resolve(base_dir, cfg.tls_key);
  }
  // A token given inline (<key>) or in a file (<key>_file); at least 16 characters. Returns the key it came from
  // ("" when neither was given).
  auto token = [&](const std::string& key, const char* what, std::string* out) -> std::string {
    c.String(j, "", key.c_str(), out);
    std::string file;
    c.String(j, "", (key + "_file").c_str(), &file);
    if (!file.empty()) {
      if (!out->empty()) c.Fail(key + "_file", "give " + key + " or " + key + "_file, not both");
      bool ok = false;
      *out = Trim(ReadSmallFile(Resolve(base_dir, file), &ok));
      if (!ok) c.Fail(key + "_file", "cannot read " + file);
    }
    std::string from = !file.empty() ? key + "_file" : j.contains(key) ? key : "";
    if (!from.empty() && out->size() < 16) c.Fail(from, std::string("a ") + what + " must be at least 16 characters");
    return from;
  };
  token("local_token", "local token", &cfg.local_token);
  std::string forward_key = token("forward_token", "forward token", &cfg.forward_token);
  if (!forward_key.empty() && cfg.forward_token == cfg.local_token) {
    c.Fail(forward_key, "must differ from the local token (POST /v1/batch has its own credential)");
  }
  c.Strings(j, "", "allowed_hosts", &cfg.allowed_hosts, [](const std::string& h) {
    return net::NormalizeHostName(h).empty()
               ? "each entry is a host name or an address literal, without scheme, port or path (got \"" + h + "\")"
               : std::string();
  });
  for (auto& h : cfg.allowed_hosts) h = net::NormalizeHostName(h);
  c.String(j, "", "port_file", &cfg.port_file);
  cfg.port_file = Resolve(base_dir, cfg.port_file);
  if (const Json* cors = c.Object(j, "", "cors")) {
    c.OnlyKeys(*cors, "cors.", {"origins"});
    auto it = cors->find("origins");
    if (it != cors->end()) {
      if (!it->is_array()) c.Fail("cors.origins", "must be a list of origins");
      for (const auto& o : it->is_array() ? *it : Json::array()) {
        std::string s = o.is_string() ? o.get<std::string>() : "";
        bool scheme = s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
        if (!scheme || s.back() == '/' || s.find('*') != std::string::npos) {
          c.Fail("cors.origins", "each origin is scheme://host[:port] without a path or '*' (got " + o.dump() + ")");
          break;
        }
        cfg.cors_origins.push_back(s);
      }
    }
  }
  c.Number(j, "", "threads", &cfg.threads, 2, 1024);
  if (const Json* l = c.Object(j, "", "limits")) {
    c.OnlyKeys(*l, "limits.",
               {"max_body_bytes", "max_decoded_bytes", "max_connections", "max_connections_per_source",
                "request_timeout_s", "idle_timeout_s", "max_header_bytes", "max_header_count"});
    c.Number(*l, "limits.", "max_body_bytes", &cfg.max_body_bytes, 1024, 64u << 20);
    c.Number(*l, "limits.", "max_decoded_bytes", &cfg.max_decoded_bytes, 1024, 256u << 20);
    c.Number(*l, "limits.", "max_connections", &cfg.max_connections, 8, 1u << 20);
    c.Number(*l, "limits.", "max_connections_per_source", &cfg.max_connections_per_source, 0, 1u << 20);
    c.Number(*l, "limits.", "request_timeout_s", &cfg.http_request_timeout_s, 1, 3600);
    c.Number(*l, "limits.", "idle_timeout_s", &cfg.http_idle_timeout_s, 1, 3600);
    c.Number(*l, "limits.", "max_header_bytes", &cfg.max_header_bytes, 1024, 1u << 20);
    c.Number(*l, "limits.", "max_header_count", &cfg.max_header_count, 8, 10000);
  }

  // Upstream.
  if (const Json* u = c.Object(j, "", "upstream")) {
    c.OnlyKeys(*u, "upstream.", {"url", "write_key", "write_key_file", "ca_file", "pinned_public_key", "timeout_ms"});
    c.String(*u, "upstream.", "url", &cfg.upstream_url);
    while (!cfg.upstream_url.empty() && cfg.upstream_url.back() == '/') cfg.upstream_url.pop_back();
    std::string why;
    if (cfg.upstream_url.empty()) {
      c.Fail("upstream.url", "is required when upstream is given");
    } else if (!platform::IsAllowedEndpoint(cfg.upstream_url, &why)) {
      c.Fail("upstream.url", why);
    }
    c.String(*u, "upstream.", "write_key", &cfg.write_key);
    std::string key_file;
    c.String(*u, "upstream.", "write_key_file", &key_file);
    if (!key_file.empty()) {
      if (!cfg.write_key.empty()) c.Fail("upstream.write_key_file", "give write_key or write_key_file, not both");
      bool ok = false;
      cfg.write_key = Trim(ReadSmallFile(Resolve(base_dir, key_file), &ok));
      if (!ok) c.Fail("upstream.write_key_file", "cannot read " + key_file);
    }
    if (cfg.write_key.empty()) c.Fail("upstream.write_key", "is required (or write_key_file)");
    c.String(*u, "upstream.", "ca_file", &cfg.ca_file);
    cfg.ca_file = Resolve(base_dir, cfg.ca_file);
    if (!cfg.ca_file.empty()) {
      struct stat st;
      if (stat(cfg.ca_file.c_str(), &st) != 0) c.Fail("upstream.ca_file", "no such file: " + cfg.ca_file);
    }
    c.String(*u, "upstream.", "pinned_public_key", &cfg.pinned_public_key);
    c.Number(*u, "upstream.", "timeout_ms", &cfg.request_timeout_ms, 100, 600000);
  }

  // Buffer.
  const Json* st = c.Object(j, "", "storage");
  if (st == nullptr) {
    c.Fail("storage", "is required (storage.path: the encrypted buffer file)");
  } else {
    c.OnlyKeys(*st, "storage.", {"path", "max_bytes", "max_age_days"});
    c.String(*st, "storage.", "path", &cfg.storage_path);
    if (cfg.storage_path.empty()) c.Fail("storage.path", "is required");
    cfg.storage_path = Resolve(base_dir, cfg.storage_path);
    c.Number(*st, "storage.", "max_bytes", &cfg.max_storage_bytes, 64u << 10, 1ull << 40);
    uint64_t days = cfg.max_event_age_ms / (24 * 3600 * 1000ull);
    c.Number(*st, "storage.", "max_age_days", &days, 1, 3650);
    cfg.max_event_age_ms = days * 24 * 3600 * 1000ull;
  }
  if (const Json* k = c.Object(j, "", "buffer_key")) {
    c.OnlyKeys(*k, "buffer_key.", {"source", "path", "name"});
    c.String(*k, "buffer_key.", "source", &cfg.key_source);
    c.String(*k, "buffer_key.", "path", &cfg.key_path);
    c.String(*k, "buffer_key.", "name", &cfg.key_name);
    cfg.key_path = Resolve(base_dir, cfg.key_path);
    if (cfg.key_source == "file") {
      if (!cfg.key_name.empty()) c.Fail("buffer_key.name", "only for source env or credential");
    } else if (cfg.key_source == "env" || cfg.key_source == "credential") {
      if (cfg.key_name.empty()) c.Fail("buffer_key.name", "is required for source " + cfg.key_source);
      if (!cfg.key_path.empty()) c.Fail("buffer_key.path", "only for source file");
    } else {
      c.Fail("buffer_key.source", "must be file, env or credential");
    }
  }

  // Pipeline.
  if (const Json* cons = c.Object(j, "", "consent")) {
    for (auto it = cons->begin(); it != cons->end(); ++it) {
      std::string key = "consent." + it.key();
      if (!wire::IsValidPurpose(it.key())) {
        c.Fail(key, "a purpose is 1-32 bytes of a-z, 0-9, _ and -");
        continue;
      }
      std::string v = it->is_string() ? it->get<std::string>() : "";
      if (v == "granted") {
        cfg.default_consent[it.key()] = core::Consent::kGranted;
      } else if (v == "denied") {
        cfg.default_consent[it.key()] = core::Consent::kDenied;
      } else if (v == "pending") {
        cfg.default_consent[it.key()] = core::Consent::kPending;
      } else {
        c.Fail(key, "must be \"granted\", \"denied\" or \"pending\"");
      }
      if (it.key() == "sensitive" && v == "granted") {
        c.Fail(key, "the sensitive purpose is never granted by default (PIPL 29): the person must choose it");
      }
      if (it.key() == "necessary" && v != "granted") c.Fail(key, "'necessary' is always granted");
    }
  }
  if (const Json* hold = c.Object(j, "", "hold_pending_ms")) {
    for (auto it = hold->begin(); it != hold->end(); ++it) {
      std::string key = "hold_pending_ms." + it.key();
      if (!wire::IsValidPurpose(it.key())) {
        c.Fail(key, "a purpose is 1-32 bytes of a-z, 0-9, _ and -");
      } else if (it.key() == "necessary") {
        c.Fail(key, "'necessary' is always granted: nothing of it waits");
      } else if (it.key() == "sensitive") {
        c.Fail(key, "a sensitive event is never held (PIPL 29, GDPR 9: consent before processing)");
      } else {
        uint64_t ms = 0;
        c.Number(*hold, "hold_pending_ms.", it.key().c_str(), &ms, core::kMinHoldPendingMs, core::kMaxHoldPendingMs);
        if (ms != 0) cfg.hold_pending[it.key()] = ms;
      }
    }
  }
  c.Strings(j, "", "necessary_events", &cfg.necessary_events, [](const std::string& name) {
    if (name.empty() || name.size() > 200) return std::string("each event name is 1-200 bytes");
    return ControlCharProblem("an event name", name);
  });
  if (auto it = j.find("pii_rules"); it != j.end()) {
    if (!it->is_object()) {
      c.Fail("pii_rules", "must be an object (docs/PII.md)");
    } else {
      cfg.pii_rules = it->dump();
      auto m = pii::PiiMasker::Create(cfg.pii_rules, base::SecretBytes::Random(32));
      if (!m.ok()) c.Fail("pii_rules", m.status().message());
    }
  }
  if (const Json* b = c.Object(j, "", "batch")) {
    c.OnlyKeys(*b, "batch.", {"size", "flush_interval_ms", "zstd_level"});
    c.Number(*b, "batch.", "size", &cfg.batch_size, 1, 1000);
    c.Number(*b, "batch.", "flush_interval_ms", &cfg.flush_interval_ms, 10, 3600000);
    c.Number(*b, "batch.", "zstd_level", &cfg.zstd_level, 1, 19);
  }
  c.Number(j, "", "shutdown_timeout_ms", &cfg.shutdown_timeout_ms, 0, 600000);
  c.String(j, "", "app_name", &cfg.app_name);
  if (cfg.app_name.empty() || cfg.app_name.size() > 200) c.Fail("app_name", "must be 1-200 bytes");
  c.String(j, "", "log_level", &cfg.log_level);
  if (cfg.log_level != "debug" && cfg.log_level != "info" && cfg.log_level != "warn" && cfg.log_level != "error") {
    c.Fail("log_level", "must be debug, info, warn or error");
  }

  // Across keys.
  if (cfg.listen.empty() && cfg.unix_socket_path.empty()) {
    c.Fail("listen", "no listener: give listen, unix_socket, or both");
  }
  if (!cfg.listen.empty() && !net::IsLoopbackHost(cfg.listen_host)) {
    if (cfg.tls_cert.empty()) {
      c.Fail("listen", "a non-loopback address (" + cfg.listen_host + ") needs tls.cert and tls.key");
    } else if (cfg.local_token.empty()) {
      c.Fail("listen", "a non-loopback address (" + cfg.listen_host + ") needs local_token (or local_token_file)");
    }
  }
  if (c.failed()) return Status::InvalidArgument(c.error());
  return cfg;
}

Result<base::SecretBytes> LoadBufferKey(const AgentConfig& cfg) {
  if (cfg.key_source == "env") {
    const char* v = std::getenv(cfg.key_name.c_str());
    if (v == nullptr) return Status::InvalidArgument("buffer_key: environment variable " + cfg.key_name + " is unset");
    std::string hex = Trim(v);
    base::SecretBytes k = base::SecretBytes::FromHex(hex);
    base::WipeString(hex);
    if (k.size() != 32) return Status::InvalidArgument("buffer_key: " + cfg.key_name + " must hold 64 hex chars");
    return k;
  }
  if (cfg.key_source == "credential") {
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (dir == nullptr)
      return Status::InvalidArgument("buffer_key: CREDENTIALS_DIRECTORY is unset (systemd LoadCredential)");
    bool ok = false;
    std::string raw = ReadSmallFile(std::string(dir) + "/" + cfg.key_name, &ok);
    if (!ok) return Status::InvalidArgument("buffer_key: cannot read credential " + cfg.key_name);
    base::SecretBytes k = platform::KeyFromBytes(raw, 32);
    base::WipeString(raw);
    if (k.size() != 32) return Status::InvalidArgument("buffer_key: credential must be 32 bytes or 64 hex chars");
    return k;
  }
  std::string path = cfg.key_path.empty() ? cfg.storage_path + ".key" : cfg.key_path;
  FERRY_RETURN_IF_ERROR(platform::EnsureDir(platform::DirName(path)));
  return platform::LoadOrCreateKey(path, 32);
}

}  // namespace ferry::agent
