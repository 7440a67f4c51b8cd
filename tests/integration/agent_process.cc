#include "tests/integration/agent_process.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/support/spawn.h"
#include "tests/support/wait.h"

namespace ferry::testsupport {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Whether a listener could bind 127.0.0.1:port now, as the agent does (cpp-httplib sets SO_REUSEADDR and
// SO_REUSEPORT, so the previous run's connections in TIME_WAIT do not hold the port; a client's connection that got
// the port as its own local port does).
bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

size_t OnBody(char* p, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(p, size * n);
  return size * n;
}

size_t OnHeader(char* p, size_t size, size_t n, void* user) {
  std::string line(p, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (!line.empty()) static_cast<std::vector<std::string>*>(user)->push_back(line);
  return size * n;
}

AgentHttpResult Perform(CURL* c, const std::string& method, const std::string& url, const std::string& body,
                        const std::vector<std::string>& headers, const std::string& unix_socket) {
  AgentHttpResult r;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_NOBODY, method == "HEAD" ? 1L : 0L);
  if (method == "POST" || method == "PUT") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (!unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_socket.c_str());
  curl_slist* hl = nullptr;
  bool has_type = false;
  for (const auto& h : headers) {
    hl = curl_slist_append(hl, h.c_str());
    if (strncasecmp(h.c_str(), "Content-Type:", 13) == 0) has_type = true;
  }
  if (!has_type && !body.empty()) hl = curl_slist_append(hl, "Content-Type: application/json");
  hl = curl_slist_append(hl, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) {
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    r.status = static_cast<int>(code);
  } else {
    r.body = std::string("transport error: ") + curl_easy_strerror(rc);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(hl);
  return r;
}

}  // namespace

std::string AgentBinary() { return FERRY_AGENT_BIN; }

std::string AgentHttpResult::Header(const std::string& name) const {
  for (const auto& h : headers) {
    if (h.size() > name.size() && h[name.size()] == ':' && strncasecmp(h.c_str(), name.c_str(), name.size()) == 0) {
      size_t b = name.size() + 1;
      while (b < h.size() && h[b] == ' ') ++b;
      return h.substr(b);
    }
  }
  return "";
}

nlohmann::json AgentHttpResult::Json() const { return nlohmann::json::parse(body, nullptr, false); }

AgentHttpResult AgentHttp(const std::string& method, const std::string& url, const std::string& body,
                          const std::vector<std::string>& headers, const std::string& unix_socket) {
  AgentHttpClient c(unix_socket);
  return c.Request(method, url, body, headers);
}

AgentHttpClient::AgentHttpClient(std::string unix_socket)
    : curl_(curl_easy_init()), unix_socket_(std::move(unix_socket)) {}
AgentHttpClient::~AgentHttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }
AgentHttpResult AgentHttpClient::Request(const std::string& method, const std::string& url, const std::string& body,
                                         const std::vector<std::string>& headers) {
  return Perform(static_cast<CURL*>(curl_), method, url, body, headers, unix_socket_);
}

std::unique_ptr<AgentProcess> AgentProcess::Start(nlohmann::json config, std::string* error, const std::string& dir) {
  std::unique_ptr<AgentProcess> a(new AgentProcess());
  if (dir.empty()) {
    char tmpl[] = "/tmp/ferry-agent-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      if (error) *error = "mkdtemp failed";
      return nullptr;
    }
    a->dir_ = tmpl;
    a->owns_dir_ = true;
  } else {
    a->dir_ = dir;
    mkdir(dir.c_str(), 0700);
  }
  if (!config.contains("listen")) config["listen"] = "127.0.0.1:0";
  config["port_file"] = a->dir_ + "/agent.port";
  if (!config.contains("storage")) config["storage"] = {{"path", a->dir_ + "/buffer.db"}};
  a->WriteConfig(config.dump(2));
  if (!a->Spawn(error)) return nullptr;
  return a;
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) Stop();
  if (owns_dir_ && std::getenv("FERRY_KEEP_TEST_DIRS") == nullptr) {
    (void)std::system(("rm -rf '" + dir_ + "'").c_str());
  }
}

void AgentProcess::WriteConfig(const std::string& text) const {
  std::string tmp = config_path() + ".tmp";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), config_path().c_str());
}

bool AgentProcess::Spawn(std::string* error) {
  std::string port_file = dir_ + "/agent.port";
  std::remove(port_file.c_str());
  std::string log = dir_ + "/agent.log";
  pid_t pid = fork();
  if (pid < 0) {
    if (error) *error = "fork failed";
    return false;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    CloseInheritedDescriptors();
    std::string bin = AgentBinary();
    std::string cfg = config_path();
    execl(bin.c_str(), bin.c_str(), "--config", cfg.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  // Listening once the port file is moved into place; woken by the file appearing or the process exiting.
  bool exited = false;
  Watch watch;
  watch.Path(dir_).Process(pid_);
  bool up = WaitFor(
      [&] {
        std::string p = ReadFile(port_file);
        if (!p.empty() && p.back() == '\n') {
          port_ = std::atoi(p.c_str());
          return true;
        }
        int st = 0;
        exited = waitpid(pid_, &st, WNOHANG) == pid_;
        return exited;
      },
      &watch, {60000});
  if (up && !exited) return true;
  if (exited) {
    pid_ = -1;
    if (error) *error = "ferry-agent exited at start: " + Log();
    return false;
  }
  if (error) *error = "ferry-agent did not start: " + Log();
  Kill();
  return false;
}

void AgentProcess::Signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

int AgentProcess::Stop(int timeout_ms) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int st = 0;
  Watch watch;
  watch.Process(pid_);
  if (WaitFor([&] { return waitpid(pid_, &st, WNOHANG) == pid_; }, &watch, {timeout_ms})) {
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  Kill();
  return -1;
}

void AgentProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

bool AgentProcess::Restart(std::string* error) {
  if (pid_ > 0) return false;
  // Keep the port: rewrite listen from the port the previous run bound.
  nlohmann::json cfg = nlohmann::json::parse(ReadFile(config_path()), nullptr, false);
  if (cfg.is_object() && cfg.value("listen", std::string()) == "127.0.0.1:0" && port_ > 0) {
    cfg["listen"] = "127.0.0.1:" + std::to_string(port_);
    WriteConfig(cfg.dump(2));
  }
  // The previous run's port may still be held (or taken by a client's outgoing connection for a moment): wait until
  // it can be bound, then start; if the agent still found it taken, wait again.
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (port_ > 0 && !WaitFor([this] { return PortFree(port_); }, nullptr, {60000, 100})) {
      if (error) *error = "port " + std::to_string(port_) + " stays in use";
      return false;
    }
    if (Spawn(error)) return true;
  }
  return false;
}

std::string AgentProcess::Log() const { return ReadFile(dir_ + "/agent.log"); }

}  // namespace ferry::testsupport
