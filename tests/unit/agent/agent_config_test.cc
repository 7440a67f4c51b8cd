// agent.json parsing: every refusal names the file, the key and the reason; paths are taken from the file's folder;
// the buffer key sources.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "agent/config.h"

namespace {

using ferry::agent::AgentConfig;
using ferry::agent::ParseConfig;

std::string Err(const std::string& text) {
  auto r = ParseConfig(text, "/etc/ferry/agent.json");
  return r.ok() ? "ok" : r.status().message();
}

TEST(AgentConfig, MinimalConfigGetsSafeDefaults) {
  auto r = ParseConfig(R"({"storage": {"path": "buf.db"}})", "/etc/ferry/agent.json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->listen_host, "127.0.0.1");
  EXPECT_EQ(r->listen_port, 8787);
  EXPECT_EQ(r->storage_path, "/etc/ferry/buf.db");  // relative to the config file
  EXPECT_TRUE(r->upstream_url.empty());
  EXPECT_TRUE(r->cors_origins.empty());
  EXPECT_EQ(r->key_source, "file");
}

TEST(AgentConfig, FullConfigIsRead) {
  auto r = ParseConfig(R"({
    "listen": "[::1]:9000", "unix_socket": {"path": "/run/a.sock", "mode": "0640"},
    "upstream": {"url": "https://c.example:8443/", "write_key": "wk"},
    "storage": {"path": "/var/lib/a/b.db", "max_bytes": 1048576, "max_age_days": 7},
    "buffer_key": {"source": "env", "name": "AGENT_KEY"},
    "consent": {"analytics": "granted", "marketing": "denied"},
    "pii_rules": {"detectors": {"email": "mask"}},
    "batch": {"size": 10, "flush_interval_ms": 100, "zstd_level": 1},
    "cors": {"origins": ["http://localhost:3000"]}, "threads": 4, "shutdown_timeout_ms": 100,
    "app_name": "pos", "log_level": "debug"})",
                       "/x/agent.json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->listen_host, "::1");
  EXPECT_EQ(r->listen_port, 9000);
  EXPECT_EQ(r->unix_socket_mode, 0640u);
  EXPECT_EQ(r->upstream_url, "https://c.example:8443");
  EXPECT_EQ(r->max_event_age_ms, 7ull * 24 * 3600 * 1000);
  EXPECT_EQ(r->default_consent.at("marketing"), ferry::core::Consent::kDenied);
  EXPECT_EQ(r->batch_size, 10u);
  EXPECT_EQ(r->cors_origins.size(), 1u);
  EXPECT_NE(r->pii_rules.find("mask"), std::string::npos);
}

// Issue 12 item 7: holding a pending purpose's events is opt-in per purpose, with the longest hold in ms.
TEST(AgentConfig, HoldPendingIsOptInPerPurpose) {
  auto d = ParseConfig(R"({"storage": {"path": "b"}})", "/etc/ferry/agent.json");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->hold_pending.empty()) << "default: no purpose is held";
  auto r = ParseConfig(R"({"storage": {"path": "b"}, "hold_pending_ms": {"analytics": 86400000, "marketing": 1000}})",
                       "/etc/ferry/agent.json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->hold_pending, (std::map<std::string, uint64_t>{{"analytics", 86400000}, {"marketing", 1000}}));
  const std::string f = "/etc/ferry/agent.json: ";
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "hold_pending_ms": {"sensitive": 60000}})"),
            f + "hold_pending_ms.sensitive: a sensitive event is never held (PIPL 29, GDPR 9: consent before "
                "processing)");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "hold_pending_ms": {"necessary": 60000}})"),
            f + "hold_pending_ms.necessary: 'necessary' is always granted: nothing of it waits");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "hold_pending_ms": {"Ads": 60000}})"),
            f + "hold_pending_ms.Ads: a purpose is 1-32 bytes of a-z, 0-9, _ and -");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "hold_pending_ms": {"analytics": 999}})"),
            f + "hold_pending_ms.analytics: must be between 1000 and 31536000000");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "hold_pending_ms": {"analytics": 31536000001}})"),
            f + "hold_pending_ms.analytics: must be between 1000 and 31536000000");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "hold_pending_ms": {"analytics": "1d"}})"),
            f + "hold_pending_ms.analytics: must be a whole number");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "hold_pending_ms": ["analytics"]})"),
            f + "hold_pending_ms: must be an object");
}

TEST(AgentConfig, ConnectionLimitsAreReadAndChecked) {
  auto d = ParseConfig(R"({"storage": {"path": "b"}})", "/etc/ferry/agent.json");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->max_connections, 4096u);
  EXPECT_EQ(d->max_connections_per_source, 0u);
  EXPECT_EQ(d->http_request_timeout_s, 10u);
  EXPECT_EQ(d->http_idle_timeout_s, 5u);
  EXPECT_EQ(d->max_header_bytes, 64u * 1024);
  EXPECT_EQ(d->max_header_count, 100u);
  auto r = ParseConfig(R"({"storage": {"path": "b"}, "limits": {"max_connections": 100,
      "max_connections_per_source": 10, "request_timeout_s": 3, "idle_timeout_s": 2, "max_header_bytes": 8192,
      "max_header_count": 20}})",
                       "/etc/ferry/agent.json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->max_connections, 100u);
  EXPECT_EQ(r->max_connections_per_source, 10u);
  EXPECT_EQ(r->http_request_timeout_s, 3u);
  EXPECT_EQ(r->http_idle_timeout_s, 2u);
  EXPECT_EQ(r->max_header_bytes, 8192u);
  EXPECT_EQ(r->max_header_count, 20u);
  const std::string f = "/etc/ferry/agent.json: ";
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "limits": {"request_timeout_s": 0}})"),
            f + "limits.request_timeout_s: must be between 1 and 3600");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "limits": {"max_connections": 1}})"),
            f + "limits.max_connections: must be between 8 and 1048576");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "limits": {"max_conections": 10}})"),
            f + "limits.max_conections: unknown key");
}

TEST(AgentConfig, RefusalsNameFileKeyAndReason) {
  const std::string f = "/etc/ferry/agent.json: ";
  EXPECT_EQ(Err("{"), f.substr(0, f.size() - 2) + ": not valid JSON");
  EXPECT_EQ(Err("{}"), f + "storage: is required (storage.path: the encrypted buffer file)");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "colour": 1})"), f + "colour: unknown key");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "batch": {"size": 0}})"), f + "batch.size: must be between 1 and 1000");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "batch": {"size": "10"}})"), f + "batch.size: must be a whole number");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "listen": "nowhere"})"),
            f + "listen: want host:port (e.g. 127.0.0.1:8787), or \"\" for no TCP listener");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "listen": "0.0.0.0:80"})"),
            f + "listen: a non-loopback address (0.0.0.0) needs tls.cert and tls.key");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "listen": "10.0.0.5:80", "tls": {"cert": "c", "key": "k"}})"),
            f + "listen: a non-loopback address (10.0.0.5) needs local_token (or local_token_file)");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "listen": "", "unix_socket": {"path": "s", "mode": "rw"}})"),
            f + "unix_socket.mode: want an octal file mode as a string, e.g. \"0660\"");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "listen": ""})"),
            f + "listen: no listener: give listen, unix_socket, or both");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "upstream": {"url": "http://c.example", "write_key": "k"}})")
                .rfind(f + "upstream.url: ", 0),
            0u);
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "upstream": {"url": "https://c.example"}})"),
            f + "upstream.write_key: is required (or write_key_file)");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "consent": {"Analytics": "granted"}})"),
            f + "consent.Analytics: a purpose is 1-32 bytes of a-z, 0-9, _ and -");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "consent": {"analytics": "yes"}})"),
            f + "consent.analytics: must be \"granted\", \"denied\" or \"pending\"");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "consent": {"sensitive": "granted"}})")
                .rfind(f + "consent.sensitive: the sensitive purpose is never granted by default", 0),
            0u);
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "pii_rules": {"detectors": {"email": "scramble"}}})")
                .rfind(f + "pii_rules: ", 0),
            0u);
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "cors": {"origins": ["*"]}})")
                .rfind(f + "cors.origins: each origin is scheme://host[:port]", 0),
            0u);
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "local_token": "short"})"),
            f + "local_token: a local token must be at least 16 characters");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "buffer_key": {"source": "tpm"}})"),
            f + "buffer_key.source: must be file, env or credential");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "buffer_key": {"source": "env"}})"),
            f + "buffer_key.name: is required for source env");
}

// The keys of issue 11: necessary_events, forward_token, allowed_hosts and the socket peers that may change consent.
TEST(AgentConfig, SecurityKeysAreReadAndChecked) {
  auto r = ParseConfig(R"({"storage": {"path": "b"}, "necessary_events": ["payment_receipt", "crash"],
      "local_token": "local-token-0123456789", "forward_token": "forward-token-0123456789",
      "allowed_hosts": ["Kiosk.Local.", "[fe80::1]", "192.168.1.5"],
      "unix_socket": {"path": "s", "consent_uids": [1000, 0], "consent_gids": [998]}})",
                       "/etc/ferry/agent.json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->necessary_events, (std::vector<std::string>{"payment_receipt", "crash"}));
  EXPECT_EQ(r->forward_token, "forward-token-0123456789");
  EXPECT_EQ(r->allowed_hosts, (std::vector<std::string>{"kiosk.local", "fe80::1", "192.168.1.5"}));
  EXPECT_EQ(r->consent_uids, (std::vector<uint32_t>{1000, 0}));
  EXPECT_EQ(r->consent_gids, (std::vector<uint32_t>{998}));
  // Defaults: nothing may use "necessary", forwarding is off, no extra host, no socket peer changes consent.
  auto d = ParseConfig(R"({"storage": {"path": "b"}})", "/etc/ferry/agent.json");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->necessary_events.empty());
  EXPECT_TRUE(d->forward_token.empty());
  EXPECT_TRUE(d->allowed_hosts.empty());
  EXPECT_TRUE(d->consent_uids.empty() && d->consent_gids.empty());

  const std::string f = "/etc/ferry/agent.json: ";
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "forward_token": "short"})"),
            f + "forward_token: a forward token must be at least 16 characters");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "local_token": "same-token-0123456789",
                    "forward_token": "same-token-0123456789"})"),
            f + "forward_token: must differ from the local token (POST /v1/batch has its own credential)");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "necessary_events": "crash"})"),
            f + "necessary_events: must be a list of strings");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "necessary_events": [""]})"),
            f + "necessary_events: each event name is 1-200 bytes");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "necessary_events": ["a\u0000b"]})")
                .rfind(f + "necessary_events: an event name holds a control character", 0),
            0u);
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "allowed_hosts": ["kiosk.local:8787"]})")
                .rfind(f + "allowed_hosts: each entry is a host name or an address literal", 0),
            0u);
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "allowed_hosts": ["*.local"]})").rfind(f + "allowed_hosts: ", 0), 0u);
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "unix_socket": {"path": "s", "consent_uids": ["root"]}})")
                .rfind(f + "unix_socket.consent_uids: must be a list of numeric ids", 0),
            0u);
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "unix_socket": {"path": "s", "consent_gids": [-1]}})")
                .rfind(f + "unix_socket.consent_gids: must be a list of numeric ids", 0),
            0u);
}

// Plain HTTP without a token only on loopback (lib/net): real loopback names and addresses, not names that merely
// start like one.
TEST(AgentConfig, PlainListenOnlyOnLoopback) {
  for (const char* listen : {"127.0.0.1:0", "127.3.2.1:8787", "localhost:8787", "[::1]:8787"}) {
    EXPECT_EQ(Err(std::string(R"({"storage": {"path": "b"}, "listen": ")") + listen + "\"}"), "ok") << listen;
  }
  const std::string f = "/etc/ferry/agent.json: ";
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "listen": "127.example.com:80"})"),
            f + "listen: a non-loopback address (127.example.com) needs tls.cert and tls.key");
  EXPECT_EQ(Err(R"({"storage": {"path": "b"}, "listen": "[::ffff:127.0.0.1]:80"})"),
            f + "listen: a non-loopback address (::ffff:127.0.0.1) needs tls.cert and tls.key");
}

TEST(AgentConfig, SecretsFromFilesAndBufferKeySources) {
  char tmpl[] = "/tmp/ferry-agent-cfg-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::ofstream(dir + "/wk") << "write-key-123\n";
  std::ofstream(dir + "/tok") << "local-token-0123456789\n";
  std::ofstream(dir + "/agent.json") << R"({"storage": {"path": "b.db"}, "local_token_file": "tok",
      "upstream": {"url": "https://c.example", "write_key_file": "wk"}})";
  auto r = ferry::agent::LoadConfig(dir + "/agent.json");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->write_key, "write-key-123");
  EXPECT_EQ(r->local_token, "local-token-0123456789");

  // file: created once with mode 0600, the same key the next time.
  auto k1 = ferry::agent::LoadBufferKey(*r);
  ASSERT_TRUE(k1.ok()) << k1.status().message();
  EXPECT_EQ(k1->size(), 32u);
  struct stat st;
  ASSERT_EQ(stat((dir + "/b.db.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto k2 = ferry::agent::LoadBufferKey(*r);
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(k1->ToHex(), k2->ToHex());

  // env: 64 hex chars.
  AgentConfig e = *r;
  e.key_source = "env";
  e.key_name = "FERRY_AGENT_TEST_KEY";
  unsetenv("FERRY_AGENT_TEST_KEY");
  EXPECT_FALSE(ferry::agent::LoadBufferKey(e).ok());
  setenv("FERRY_AGENT_TEST_KEY", std::string(64, 'a').c_str(), 1);
  auto ke = ferry::agent::LoadBufferKey(e);
  ASSERT_TRUE(ke.ok());
  EXPECT_EQ(ke->ToHex(), std::string(64, 'a'));
  setenv("FERRY_AGENT_TEST_KEY", "abc", 1);
  EXPECT_FALSE(ferry::agent::LoadBufferKey(e).ok());

  // credential: $CREDENTIALS_DIRECTORY/<name>, 32 raw bytes.
  AgentConfig c = *r;
  c.key_source = "credential";
  c.key_name = "buffer-key";
  std::ofstream(dir + "/buffer-key", std::ios::binary) << std::string(32, '\x07');
  setenv("CREDENTIALS_DIRECTORY", dir.c_str(), 1);
  auto kc = ferry::agent::LoadBufferKey(c);
  ASSERT_TRUE(kc.ok()) << kc.status().message();
  std::string sevens;
  for (int i = 0; i < 32; ++i) sevens += "07";
  EXPECT_EQ(kc->ToHex(), sevens);
  unsetenv("CREDENTIALS_DIRECTORY");
  (void)std::system(("rm -rf " + dir).c_str());
}

}  // namespace
