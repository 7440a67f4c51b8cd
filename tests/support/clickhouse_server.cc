#include "tests/support/clickhouse_server.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/spawn.h"

namespace ferry::testsupport {

namespace {

void SetError(std::string* error, const std::string& msg) {
  if (error) *error = msg;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

size_t Collect(char* p, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, size * n);
  return size * n;
}

int HttpPost(const std::string& url, const std::string& body, std::string* out, long timeout_ms) {
  CURL* h = curl_easy_init();
  if (h == nullptr) return 0;
  std::string buf;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  if (!body.empty()) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf);
  long code = 0;
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(h);
  if (out) *out = std::move(buf);
  return static_cast<int>(code);
}

// connect_timeout_with_failover_ms: how long a Distributed table's query waits to connect to another shard (this
// ClickHouse's default is 50 ms, three tries). The test servers share two cores with the tests (and the sanitizer
// builds' slower processes), where a shard busy for 150 ms failed a sharded test's open with "All connection tries
// failed"; a second is what a loaded machine needs and still fails fast when a shard is really down.
std::string UsersXml() {
  return R"(<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage>
    <connect_timeout_with_failover_ms>1000</connect_timeout_with_failover_ms></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
)";
}

}  // namespace

std::string ClickHouseServer::Binary() {
  if (const char* env = std::getenv("FERRY_CLICKHOUSE_SERVER"); env != nullptr && *env != '\0') {
    return access(env, X_OK) == 0 ? env : "";
  }
  for (const char* p :
       {"/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/local/bin/clickhouse-server"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

std::unique_ptr<ClickHouseServer> ClickHouseServer::Start(std::string* error) {
  auto v = StartCluster(1, "", error);
  if (v.empty()) return nullptr;
  return std::move(v[0]);
}

std::vector<std::unique_ptr<ClickHouseServer>> ClickHouseServer::StartCluster(int n, const std::string& cluster,
                                                                              std::string* error) {
  if (Binary().empty()) {
    SetError(error, "clickhouse-server not found (scripts/install-deps.sh --group clickhouse)");
    return {};
  }
  std::string last;
  for (int attempt = 0; attempt < 4; ++attempt) {  // a port taken between FreePort() and the start: try again
    std::vector<std::unique_ptr<ClickHouseServer>> servers;
    for (int i = 0; i < n; ++i) {
      std::unique_ptr<ClickHouseServer> s(new ClickHouseServer());
      char tmpl[] = "/tmp/ferry-ch-XXXXXX";
      if (mkdtemp(tmpl) == nullptr) {
        SetError(error, "mkdtemp failed");
        return {};
      }
      s->dir_ = tmpl;
      s->http_port_ = FreePort();
      s->tcp_port_ = FreePort();
      servers.push_back(std::move(s));
    }
    std::string remote;
    if (!cluster.empty()) {
      remote = "  <remote_servers>\n    <" + cluster + ">\n";
      for (const auto& s : servers) {
        remote += "      <shard><replica><host>127.0.0.1</host><port>" + std::to_string(s->tcp_port_) +
                  "</port></replica></shard>\n";
      }
      remote += "    </" + cluster + ">\n  </remote_servers>\n";
    }
    bool ok = true;
    for (auto& s : servers) {
      if (!s->Launch(remote, &last)) {
        ok = false;
        break;
      }
    }
    if (ok) return servers;
  }
  SetError(error, last);
  return {};
}

bool ClickHouseServer::Restart(std::string* error) {
  if (pid_ > 0) return true;
  return Launch(remote_xml_, error);
}

bool ClickHouseServer::Launch(const std::string& remote_servers_xml, std::string* error) {
  remote_xml_ = remote_servers_xml;
  const std::string config = dir_ + "/config.xml";
  std::string xml =
      "<?xml version=\"1.0\"?>\n<yandex>\n"
      "  <logger><level>warning</level><log>" +
      dir_ + "/server.log</log><errorlog>" + dir_ +
      "/error.log</errorlog><console>0</console></logger>\n"
      "  <http_port>" +
      std::to_string(http_port_) +
      "</http_port>\n"
      "  <tcp_port>" +
      std::to_string(tcp_port_) +
      "</tcp_port>\n"
      "  <listen_host>127.0.0.1</listen_host>\n"
      "  <path>" +
      dir_ +
      "/data/</path>\n"
      "  <tmp_path>" +
      dir_ +
      "/tmp/</tmp_path>\n"
      "  <user_files_path>" +
      dir_ +
      "/user_files/</user_files_path>\n"
      "  <users_config>" +
      dir_ +
      "/users.xml</users_config>\n"
      "  <default_profile>default</default_profile>\n"
      "  <default_database>default</default_database>\n"
      "  <timezone>UTC</timezone>\n"
      "  <mark_cache_size>268435456</mark_cache_size>\n"
      "  <max_concurrent_queries>50</max_concurrent_queries>\n" +
      remote_servers_xml + "</yandex>\n";
  if (!WriteFile(config, xml) || !WriteFile(dir_ + "/users.xml", UsersXml())) {
    SetError(error, "cannot write the ClickHouse config in " + dir_);
    return false;
  }
  const std::string bin = Binary();
  const std::string out_file = dir_ + "/stdout.log";
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    SetError(error, "fork failed");
    return false;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int fd = open(out_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    CloseInheritedDescriptors();
    std::string arg = "--config-file=" + config;
    char* argv[] = {const_cast<char*>(bin.c_str()), arg.data(), nullptr};
    execv(bin.c_str(), argv);
    _exit(127);
  }
  pid_ = pid;
  // Ready when /ping answers (the server also has to create its system tables first).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string body;
    if (HttpPost(url() + "/ping", "", &body, 1000) == 200 && body.rfind("Ok.", 0) == 0) return true;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      SetError(error, "clickhouse-server exited at start: " + Log());
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Stop(1000);
  SetError(error, "clickhouse-server did not answer /ping within 60 s: " + Log());
  return false;
}

int ClickHouseServer::Query(const std::string& sql, std::string* out) const {
  return HttpPost(url() + "/", sql, out, 600000);
}

void ClickHouseServer::Stop(int timeout_ms) {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int st = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

void ClickHouseServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

std::string ClickHouseServer::Log() const { return ReadFile(dir_ + "/stdout.log") + ReadFile(dir_ + "/error.log"); }

ClickHouseServer::~ClickHouseServer() {
  Kill();
  if (!dir_.empty() && std::getenv("FERRY_KEEP_TEST_DIRS") == nullptr) {
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)std::system(cmd.c_str());
  }
}

}  // namespace ferry::testsupport
