// AgentConfig: the agent.json file (docs/AGENT.md), parsed and checked as a whole. A bad file is refused with
// "<file>: <key>: <reason>" so that an operator can fix it without reading code.
#ifndef FERRY_AGENT_CONFIG_H_
#define FERRY_AGENT_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ferry/ferry.h"
#include "lib/base/secret.h"
#include "lib/base/status.h"
#include "sdk/core/options.h"

namespace ferry::agent {

#define FERRY_AGENT_STR2(x) #x
#define FERRY_AGENT_STR(x) FERRY_AGENT_STR2(x)
// "MAJOR.MINOR.PATCH" of the Ferry tree the agent was built from.
inline constexpr const char* kAgentVersion = FERRY_AGENT_STR(FERRY_VERSION_MAJOR) "." FERRY_AGENT_STR(
    FERRY_VERSION_MINOR) "." FERRY_AGENT_STR(FERRY_VERSION_PATCH);

struct AgentConfig {
  // Listeners. listen_host/listen_port: TCP (port 0 picks a free one); an empty listen turns TCP off.
  std::string listen = "127.0.0.1:8787";
  std::string listen_host = "127.0.0.1";
  int listen_port = 8787;
  std::string unix_socket_path;  // "" = no Unix socket
  uint32_t unix_socket_mode = 0660;
  std::string tls_cert, tls_key;           // both or neither; serve HTTPS on the TCP listener
  std::string local_token;                 // when set, TCP callers must send "Authorization: Bearer <token>"
  std::string forward_token;               // POST /v1/batch's own credential ("" = agent-to-agent forwarding is off)
  std::vector<std::string> allowed_hosts;  // Host header names besides loopback (normalised, net::NormalizeHostName)
  std::vector<uint32_t> consent_uids, consent_gids;  // Unix-socket peers that may change consent without a token
  std::string port_file;                             // when set, the bound TCP port is written there (for port 0)
  std::vector<std::string> cors_origins;  // exact origins ("http://localhost:3000") allowed to call from a page
  int threads = 16;                       // handler threads (requests are read and refused on one I/O thread)
  size_t max_body_bytes = 1u << 20;       // as sent
  size_t max_decoded_bytes = 5u << 20;    // after zstd/gzip
  // Connections and requests (lib/httpd/httpd.h Limits), over both listeners.
  size_t max_connections = 4096;          // open connections; more: 503 (lowered to fit the file descriptor limit)
  size_t max_connections_per_source = 0;  // per TCP client address; 0 = no cap
  uint32_t http_request_timeout_s = 10;   // a request must arrive whole within this, else 408
  uint32_t http_idle_timeout_s = 5;       // a connection that sends nothing (or idles between requests) is closed
  size_t max_header_bytes = 64 * 1024;    // request line and header fields; more: 431
  size_t max_header_count = 100;          // header fields; more: 431

  // Upstream (a collector or another agent).
  std::string upstream_url;  // "" = keep events in the buffer only
  std::string write_key;
  std::string ca_file;
  std::string pinned_public_key;

  // Buffer.
  std::string storage_path;
  uint64_t max_storage_bytes = 100ull << 20;
  uint64_t max_event_age_ms = 30ull * 24 * 3600 * 1000;
  std::string key_source = "file";  // file | env | credential
  std::string key_path;             // file: the key file ("" = storage_path + ".key")
  std::string key_name;             // env: variable name; credential: name in $CREDENTIALS_DIRECTORY

  // Pipeline.
  std::map<std::string, core::Consent> default_consent;
  // Purposes whose events are held while pending, with the longest hold in ms (hold_pending_ms); any other pending
  // purpose's events are dropped (default: none held; never "necessary" or "sensitive").
  std::map<std::string, uint64_t> hold_pending;
  std::vector<std::string> necessary_events;  // track events that may use the purpose "necessary" (default none)
  std::string pii_rules;                      // serialised JSON object ("" = defaults)
  uint32_t batch_size = 100;
  uint32_t flush_interval_ms = 5000;
  int zstd_level = 3;
  uint32_t request_timeout_ms = 30000;
  uint32_t shutdown_timeout_ms = 5000;
  std::string app_name = "ferry-agent";
  std::string log_level = "info";

  std::string source_file;  // where it was read from
};

// Reads and checks a config file. Errors: kInvalidArgument "<file>: <key>: <reason>".
base::Result<AgentConfig> LoadConfig(const std::string& path);
// Same, from text (path is only used in messages).
base::Result<AgentConfig> ParseConfig(const std::string& text, const std::string& path);

// Loads the buffer key from the configured source. file: created (32 random bytes, mode 0600) when missing;
// env: 64 hex chars; credential: a file of 32 raw bytes or 64 hex chars in $CREDENTIALS_DIRECTORY.
base::Result<base::SecretBytes> LoadBufferKey(const AgentConfig& cfg);

}  // namespace ferry::agent

#endif  // FERRY_AGENT_CONFIG_H_
