#include "tests/support/collector_process.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>

#include "tests/support/spawn.h"

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

// A file descriptor closed when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

enum class Waited { kReady, kExited, kTimeout };

// Waits until ready() holds, the process `pid` ends (kExited; it is left for waitpid), or timeout_ms of real time
// passed (a safety net, not part of what is tested). Wakes when `path` is written (inotify) or when the process ends
// (a pidfd), never on a timer, so it takes as long as the event takes and no longer.
Waited WaitForEvent(const std::string& path, pid_t pid, const std::function<bool()>& ready, int timeout_ms) {
  Fd watch(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (watch.fd >= 0 && !path.empty()) inotify_add_watch(watch.fd, path.c_str(), IN_MODIFY | IN_CLOSE_WRITE);
  Fd exit_fd(pid > 0 ? static_cast<int>(syscall(SYS_pidfd_open, pid, 0)) : -1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (ready()) return Waited::kReady;  // checked after the watches are armed: no write is missed
    pollfd fds[2] = {{watch.fd, POLLIN, 0}, {exit_fd.fd, POLLIN, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Waited::kTimeout;
    if (poll(fds, 2, static_cast<int>(left.count())) > 0) {
      if (fds[1].revents != 0) return ready() ? Waited::kReady : Waited::kExited;
      char buf[4096];
      while (read(watch.fd, buf, sizeof buf) > 0) {
      }
    }
  }
}

}  // namespace

std::string CollectorBinary() { return FERRY_COLLECTOR_BIN; }
std::string FerryctlBinary() { return FERRY_CTL_BIN; }

int RunCommand(const std::string& cmd, std::string* out) { return RunShell(cmd, out); }

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
  if (std::find(opts_.extra_args.begin(), opts_.extra_args.end(), "--consent-default") == opts_.extra_args.end()) {
    // Tests of other features send events without consent records: they run report-only unless they ask.
    args.insert(args.end(), {"--consent-default", "report-only"});
  }
  std::remove((data_dir_ + "/collector.port").c_str());
  {
    // The log exists before the child starts, so that it can be watched from the first line on.
    int fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
  }
  size_t log_offset = ReadFile(log_file_).size();
  log_offset_ = log_offset;

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
    CloseInheritedDescriptors();
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;

  std::string log;
  auto listening = [&] {
    log = ReadFile(log_file_);
    size_t at = log.find("listening on ", log_offset);
    if (at == std::string::npos) return false;
    size_t eol = log.find('\n', at);
    if (eol == std::string::npos) return false;
    url_ = log.substr(at + 13, eol - at - 13);
    size_t colon = url_.rfind(':');
    port_ = std::atoi(url_.c_str() + colon + 1);
    return true;
  };
  switch (WaitForEvent(log_file_, pid_, listening, opts_.start_timeout_ms)) {
    case Waited::kReady: return true;
    case Waited::kExited: {
      int st = 0;
      waitpid(pid_, &st, 0);
      pid_ = -1;
      SetError(error, "ferry-collector exited at start: " + ReadFile(log_file_).substr(log_offset));
      return false;
    }
    case Waited::kTimeout: break;
  }
  Kill();
  SetError(error, "ferry-collector did not start: " + ReadFile(log_file_).substr(log_offset));
  return false;
}

int CollectorProcess::Stop(int timeout_ms) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == 0 && WaitForEvent(
                    "", pid_, [] { return false; }, timeout_ms) == Waited::kExited) {
    r = waitpid(pid_, &st, 0);
  }
  if (r == pid_) {
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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
  // The port was just released (the collector binds with SO_REUSEADDR); should the kernel still hold it, a start
  // that fails to bind exits at once and the next attempt follows (each attempt is a whole process start).
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::string err;
    if (Spawn("127.0.0.1:" + std::to_string(port_), &err)) return true;
    SetError(error, err);
  }
  return false;
}

bool CollectorProcess::WaitForLog(const std::string& text, int timeout_ms) const {
  auto found = [&] { return ReadFile(log_file_).find(text, log_offset_) != std::string::npos; };
  return WaitForEvent(log_file_, pid_, found, timeout_ms) == Waited::kReady;
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

bool CollectorProcess::DumpEventsText(const std::string& project, std::string* out) const {
  std::string cmd = Quote(FerryctlBinary()) + " --data-dir " + Quote(data_dir_) + " --json debug dump-events";
  if (!project.empty()) cmd += " --project " + Quote(project);
  return RunCommand(cmd, out) == 0;
}

std::vector<nlohmann::json> CollectorProcess::DumpEvents(const std::string& project) const {
  std::string out;
  std::vector<nlohmann::json> rows;
  if (!DumpEventsText(project, &out)) return rows;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) rows.push_back(std::move(j));
  }
  return rows;
}

long CollectorProcess::CountEvents(const std::string& project) const {
  std::string out;
  if (!DumpEventsText(project, &out)) return -1;
  return static_cast<long>(std::count(out.begin(), out.end(), '\n'));
}

std::string CollectorProcess::Log() const { return ReadFile(log_file_); }

long CollectorProcess::RssKb() const { return ProcessRssKb(pid_); }

long ProcessRssKb(pid_t pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

namespace {
// Fields of a /proc/.../stat file; -1 when unreadable. The command name (field 2) may hold spaces and parentheses: the
// fields are counted from its last ')'.
struct StatFields {
  long long minor_faults = -1;  // field 10
  long long ticks = -1;         // utime + stime (fields 14 and 15), in clock ticks
};
StatFields ReadStat(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StatFields out;
  size_t close = text.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream fields(text.substr(close + 1));
  std::string f;
  long long minflt = -1, utime = -1, stime = -1;
  for (int i = 3; fields >> f; ++i) {  // field 3 is the state
    if (i == 10) minflt = std::atoll(f.c_str());
    if (i == 14) utime = std::atoll(f.c_str());
    if (i == 15) {
      stime = std::atoll(f.c_str());
      break;
    }
  }
  if (utime >= 0 && stime >= 0) out.ticks = utime + stime;
  out.minor_faults = minflt;
  return out;
}
}  // namespace

bool ReadProcessCpu(pid_t pid, ProcessCpu* out) {
  if (pid <= 0) return false;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  const std::string dir = "/proc/" + std::to_string(pid);
  const StatFields all = ReadStat(dir + "/stat");
  if (all.ticks < 0 || tick <= 0) return false;
  out->all_s = static_cast<double>(all.ticks) / tick;
  out->minor_faults = all.minor_faults;
  out->thread_s.clear();
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir + "/task", ec)) {
    long long t = ReadStat(task.path().string() + "/stat").ticks;
    if (t >= 0) out->thread_s[std::atol(task.path().filename().c_str())] = static_cast<double>(t) / tick;
  }
  return true;
}

long long ProcessWriteBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  long long v = -1;
  while (in >> key) {
    if (key == "write_bytes:") {
      in >> v;
      break;
    }
  }
  return v;
}

double ProcessCpu::BusiestThreadSince(const ProcessCpu& before) const {
  double most = 0;
  for (const auto& [tid, s] : thread_s) {
    auto b = before.thread_s.find(tid);
    most = std::max(most, s - (b == before.thread_s.end() ? 0.0 : b->second));
  }
  return most;
}

std::string CollectorProcess::Metrics() const {
  HttpResult r = HttpRequest("GET", url() + "/metrics", "", {}, ca_file(), 10000);
  return r.status == 200 ? r.body : std::string();
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
