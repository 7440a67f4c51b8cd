// Test support for the agent's process tests: a real ferry-agent child process started from an agent.json written
// into a temporary directory, and a libcurl client that also speaks over a Unix socket and shows response headers.
#ifndef FERRY_TESTS_INTEGRATION_AGENT_PROCESS_H_
#define FERRY_TESTS_INTEGRATION_AGENT_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ferry::testsupport {

// One ferry-agent child. The config gets "port_file" (and, for relative paths, the directory) filled in; the agent
// listens on 127.0.0.1 with a free port unless the config says otherwise. Killed if the test dies.
class AgentProcess {
 public:
  // dir: "" = a new temporary directory (removed by the destructor). nullptr on failure (reason in *error).
  static std::unique_ptr<AgentProcess> Start(nlohmann::json config, std::string* error = nullptr,
                                             const std::string& dir = "");
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/agent.json"; }
  pid_t pid() const { return pid_; }

  // Rewrites agent.json (for SIGHUP tests); raw text so that a broken file can be written too.
  void WriteConfig(const std::string& text) const;
  // Sends a signal.
  void Signal(int sig) const;
  // SIGTERM and wait; the exit code (-1 if it had to be killed or did not exit normally).
  int Stop(int timeout_ms = 20000);
  // SIGKILL, no cleanup.
  void Kill();
  // Starts again with the same directory and config (on the same port when the config names one).
  bool Restart(std::string* error = nullptr);
  // The agent's stderr so far.
  std::string Log() const;

 private:
  AgentProcess() = default;
  bool Spawn(std::string* error);

  std::string dir_;
  bool owns_dir_ = false;
  int port_ = 0;
  pid_t pid_ = -1;
};

struct AgentHttpResult {
  int status = 0;  // 0 on a transport error
  std::string body;
  std::vector<std::string> headers;                   // "Name: value" lines of the answer
  std::string Header(const std::string& name) const;  // value of the first header with that name (any case), or ""
  nlohmann::json Json() const;                        // body parsed (discarded on error)
};

// method: GET, POST, PUT, OPTIONS... unix_socket: "" = TCP. One libcurl easy handle per call unless a
// AgentHttpClient is used (keep-alive).
AgentHttpResult AgentHttp(const std::string& method, const std::string& url, const std::string& body = "",
                          const std::vector<std::string>& headers = {}, const std::string& unix_socket = "");

// A keep-alive client for loops (one per thread).
class AgentHttpClient {
 public:
  explicit AgentHttpClient(std::string unix_socket = "");
  ~AgentHttpClient();
  AgentHttpClient(const AgentHttpClient&) = delete;
  AgentHttpClient& operator=(const AgentHttpClient&) = delete;
  AgentHttpResult Request(const std::string& method, const std::string& url, const std::string& body = "",
                          const std::vector<std::string>& headers = {});

 private:
  void* curl_;
  std::string unix_socket_;
};

std::string AgentBinary();

}  // namespace ferry::testsupport

#endif  // FERRY_TESTS_INTEGRATION_AGENT_PROCESS_H_
