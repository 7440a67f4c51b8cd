#include "tests/support/collector_process.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace ferry::testsupport {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

void SetError(std::string* error, const std::string& msg) {
  if (error) *error = msg;
}

}  // namespace

std::string CollectorBinary() { return FERRY_COLLECTOR_BIN; }
std::string FerryctlBinary() { return FERRY_CTL_BIN; }

int RunCommand(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int st = pclose(p);
  if (out) *out = std::move(text);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::unique_ptr<CollectorProcess> CollectorProcess::Start(const CollectorOptions& options, std::string* error) {
  std::unique_ptr<CollectorProcess> cp(new CollectorProcess());
  cp->opts_ = options;
  if (options.data_dir.empty()) {
    char tmpl[] = "/tmp/ferry-collector-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      SetError(error, "mkdtemp failed");
      return nullptr;
    }
    cp->data_dir_ = tmpl;
    cp->owns_dir_ = true;
  } else {
    cp->data_dir_ = options.data_dir;
    mkdir(cp->data_dir_.c_str(), 0700);
  }
  cp->log_file_ = cp->data_dir_ + "/collector.log";
  if (options.tls) {
    std::string tls_dir = cp->data_dir_ + "/tls";
    mkdir(tls_dir.c_str(), 0700);
    cp->ca_file_ = tls_dir + "/cert.pem";
    cp->key_file_ = tls_dir + "/key.pem";
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
        Quote(cp->key_file_) + " -out " + Quote(cp->ca_file_) + " 2>&1";
    std::string out;
    if (RunCommand(cmd, &out) != 0) {
      SetError(error, "openssl failed: " + out);
      return nullptr;
    }
  }
  if (!options.fault_plan_json.empty()) {
    cp->fault_file_ = cp->data_dir_ + "/fault-plan.json";
    std::ofstream(cp->fault_file_) << options.fault_plan_json;
  }
  cp->write_key_ = cp->CreateWriteKey(options.project);
  if (cp->write_key_.empty()) {
    SetError(error, "ferryctl keys create-write-key failed");
    return nullptr;
  }
  if (!cp->Spawn("127.0.0.1:0", error)) return nullptr;
  return cp;
}

CollectorProcess::~CollectorProcess() {
  if (pid_ > 0) Stop();
  if (owns_dir_ && !data_dir_.empty() && std::getenv("FERRY_KEEP_TEST_DIRS") == nullptr) {
    (void)std::system(("rm -rf " + Quote(data_dir_)).c_str());
  }
}

bool CollectorProcess::Spawn(const std::string& listen, std::string* error) {
  std::vector<std::string> args = {CollectorBinary(), "--listen", listen, "--data-dir", data_dir_};
  if (opts_.tls) {
    args.insert(args.end(), {"--tls-cert", ca_file_, "--tls-key", key_file_});
  }
  if (!fault_file_.empty()) args.insert(args.end(), {"--fault-plan", fault_file_});
  args.insert(args.end(), opts_.extra_args.begin(), opts_.extra_args.end());
  std::remove((data_dir_ + "/collector.port").c_str());
  size_t log_offset = ReadFile(log_file_).size();

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    SetError(error, "fork failed");
    return false;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;

  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.start_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = ReadFile(log_file_);
    size_t at = log.find("listening on ", log_offset);
    if (at != std::string::npos) {
      size_t eol = log.find('\n', at);
      if (eol != std::string::npos) {
        url_ = log.substr(at + 13, eol - at - 13);
        size_t colon = url_.rfind(':');
        port_ = std::atoi(url_.c_str() + colon + 1);
        return true;
      }
    }
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      SetError(error, "ferry-collector exited at start: " + log.substr(log_offset));
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
  SetError(error, "ferry-collector did not start: " + ReadFile(log_file_).substr(log_offset));
  return false;
}

int CollectorProcess::Stop(int timeout_ms) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    if (r < 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
  return -1;
}

void CollectorProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

bool CollectorProcess::Restart(std::string* error) {
  if (pid_ > 0) Stop();
  // The port was just released; retry a little in case the kernel still holds it.
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::string err;
    if (Spawn("127.0.0.1:" + std::to_string(port_), &err)) return true;
    SetError(error, err);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string CollectorProcess::CreateWriteKey(const std::string& project) const {
  std::string out;
  int rc = RunCommand(Quote(FerryctlBinary()) + " --data-dir " + Quote(data_dir_) +
                          " keys create-write-key --project " + Quote(project),
                      &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return rc == 0 ? out : std::string();
}

std::string CollectorProcess::CreateAdminToken(const std::string& roles, const std::string& name) const {
  std::string out;
  int rc = RunCommand(Quote(FerryctlBinary()) + " --data-dir " + Quote(data_dir_) +
                          " keys create-admin-token --roles " + Quote(roles) + " --name " + Quote(name),
                      &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return rc == 0 ? out : std::string();
}

std::vector<nlohmann::json> CollectorProcess::DumpEvents(const std::string& project) const {
  std::string cmd = Quote(FerryctlBinary()) + " --data-dir " + Quote(data_dir_) + " --json debug dump-events";
  if (!project.empty()) cmd += " --project " + Quote(project);
  std::string out;
  std::vector<nlohmann::json> rows;
  if (RunCommand(cmd, &out) != 0) return rows;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) rows.push_back(std::move(j));
  }
  return rows;
}

std::string CollectorProcess::Log() const { return ReadFile(log_file_); }

long CollectorProcess::RssKb() const {
  if (pid_ <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

double CollectorProcess::MetricValue(const std::string& text, const std::string& sample) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 && line[sample.size()] == ' ') {
      return std::atof(line.c_str() + sample.size() + 1);
    }
  }
  return -1;
}

}  // namespace ferry::testsupport

// ---- HttpRequest ----

namespace ferry::testsupport {

namespace {
struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
size_t WriteBody(char* p, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, size * n);
  return size * n;
}
size_t WriteHeader(char* p, size_t size, size_t n, void* ud) {
  std::string line(p, size * n);
  static const char kName[] = "retry-after:";
  if (line.size() > sizeof kName - 1 && strncasecmp(line.c_str(), kName, sizeof kName - 1) == 0) {
    std::string v = line.substr(sizeof kName - 1);
    while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    *static_cast<std::string*>(ud) = v;
  }
  return size * n;
}
}  // namespace

HttpResult HttpRequest(const std::string& method, const std::string& url, const std::string& body,
                       const std::vector<std::string>& headers, const std::string& ca_file, long timeout_ms) {
  static const bool kInit = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)kInit;
  HttpResult r;
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  std::unique_ptr<curl_slist, SlistDeleter> hdrs;
  for (const auto& h : headers) hdrs.reset(curl_slist_append(hdrs.release(), h.c_str()));
  hdrs.reset(curl_slist_append(hdrs.release(), "Expect:"));
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, hdrs.get());
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  if (!ca_file.empty()) curl_easy_setopt(c.get(), CURLOPT_CAINFO, ca_file.c_str());
  if (method == "PATCH" || method == "DELETE") curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST" || method == "PATCH") {
    curl_easy_setopt(c.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, WriteHeader);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &r.retry_after);
  r.curl_code = curl_easy_perform(c.get());
  long code = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &code);
  r.status = r.curl_code == CURLE_OK ? static_cast<int>(code) : 0;
  return r;
}

}  // namespace ferry::testsupport
