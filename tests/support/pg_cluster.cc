#include "tests/support/pg_cluster.h"

#include <glob.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "tests/support/collector_process.h"  // RunCommand

namespace ferry::testsupport {

namespace {

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

bool IsExecutable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// A loopback port that was free a moment ago.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

std::string PgCluster::BinDir() {
  if (const char* env = std::getenv("FERRY_PG_BINDIR"); env != nullptr && *env != '\0') {
    return IsExecutable(std::string(env) + "/initdb") ? env : "";
  }
  // Debian: /usr/lib/postgresql/<major>/bin; the newest installed wins.
  glob_t g{};
  std::vector<std::string> dirs;
  if (glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) dirs.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    return std::atoi(a.c_str() + 20) < std::atoi(b.c_str() + 20);
  });
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    std::string dir = it->substr(0, it->size() - 7);  // without "/initdb"
    if (IsExecutable(dir + "/pg_ctl") && IsExecutable(dir + "/postgres")) return dir;
  }
  return "";
}

std::string PgCluster::AsOwner(const std::string& cmd) const {
  // PostgreSQL refuses to run as root: as root, run it as the postgres user.
  if (geteuid() == 0) return "runuser -u postgres -- " + cmd;
  return cmd;
}

std::unique_ptr<PgCluster> PgCluster::Start(std::string* error) {
  std::unique_ptr<PgCluster> c(new PgCluster());
  c->bin_ = BinDir();
  if (c->bin_.empty()) {
    SetError(error, "PostgreSQL binaries not found (apt-get install postgresql-15, or set FERRY_PG_BINDIR)");
    return nullptr;
  }
  char tmpl[] = "/tmp/ferry-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    SetError(error, "mkdtemp failed");
    return nullptr;
  }
  c->root_ = tmpl;
  chmod(c->root_.c_str(), 0755);  // the postgres user reaches its data directory through it
  c->data_dir_ = c->root_ + "/data";
  std::string out;
  std::string mk = geteuid() == 0 ? "install -d -o postgres -g postgres -m 700 " + Quote(c->data_dir_)
                                  : "install -d -m 700 " + Quote(c->data_dir_);
  if (RunCommand(mk + " 2>&1", &out) != 0) {
    SetError(error, "cannot make the data directory: " + out);
    return nullptr;
  }
  // The cluster's locale, so its databases' default collation: C.UTF-8 unless FERRY_PG_LOCALE names another (a
  // benchmark weighing what a server's collation costs; the locale must exist on the machine).
  std::string locale = "C.UTF-8";
  if (const char* l = std::getenv("FERRY_PG_LOCALE"); l != nullptr && *l != '\0') locale = l;
  std::string initdb = c->AsOwner(Quote(c->bin_ + "/initdb") + " -D " + Quote(c->data_dir_) +
                                  " -U postgres --auth=trust -E UTF8 --locale=" + Quote(locale) + " --no-sync") +
                       " 2>&1";
  if (RunCommand(initdb, &out) != 0) {
    SetError(error, "initdb failed: " + out);
    return nullptr;
  }
  // A port taken between FreePort() and the start makes pg_ctl fail: try a few.
  std::string last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    c->port_ = FreePort();
    if (c->StartServer(&last)) return c;
  }
  SetError(error, last);
  return nullptr;
}

bool PgCluster::StartServer(std::string* error) {
  std::string opts =
      "-p " + std::to_string(port_) + " -k " + data_dir_ + " -c listen_addresses=127.0.0.1 -c max_connections=200";
  // Extra server settings for a profiling run, e.g. FERRY_PG_OPTS="-c shared_preload_libraries=pg_stat_statements".
  if (const char* extra = std::getenv("FERRY_PG_OPTS"); extra != nullptr && *extra != '\0')
    opts += std::string(" ") + extra;
  std::string cmd = AsOwner(Quote(bin_ + "/pg_ctl") + " -D " + Quote(data_dir_) + " -l " +
                            Quote(data_dir_ + "/server.log") + " -w -t 60 -o " + Quote(opts) + " start") +
                    " 2>&1";
  std::string out;
  if (RunCommand(cmd, &out) != 0) {
    SetError(error, "pg_ctl start failed: " + out + "\n" + Log());
    return false;
  }
  running_ = true;
  return true;
}

PgCluster::~PgCluster() {
  if (running_) Stop("immediate");
  if (!root_.empty() && std::getenv("FERRY_KEEP_TEST_DIRS") == nullptr) {
    (void)std::system(("rm -rf " + Quote(root_)).c_str());
  }
}

bool PgCluster::Stop(const std::string& mode, std::string* error) {
  std::string out;
  int rc = RunCommand(
      AsOwner(Quote(bin_ + "/pg_ctl") + " -D " + Quote(data_dir_) + " -m " + Quote(mode) + " -w stop") + " 2>&1", &out);
  if (rc != 0) {
    SetError(error, "pg_ctl stop failed: " + out);
    return false;
  }
  running_ = false;
  return true;
}

bool PgCluster::StartAgain(std::string* error) { return StartServer(error); }

std::string PgCluster::Uri(const std::string& db) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

int PgCluster::Psql(const std::string& db, const std::string& sql, std::string* out) const {
  std::string psql = bin_ + "/psql";
  if (!IsExecutable(psql)) psql = "psql";
  std::string cmd = Quote(psql) + " -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p " + std::to_string(port_) +
                    " -U postgres -d " + Quote(db) + " -c " + Quote(sql) + " 2>&1";
  return RunCommand(cmd, out);
}

std::string PgCluster::CreateDatabase(const std::string& name, std::string* error) {
  for (char ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) {
      SetError(error, "database names here are [a-z0-9_]");
      return "";
    }
  }
  std::string out;
  if (Psql("postgres", "CREATE DATABASE " + name, &out) != 0) {
    SetError(error, "CREATE DATABASE failed: " + out);
    return "";
  }
  return Uri(name);
}

std::string PgCluster::Log() const {
  std::ifstream in(data_dir_ + "/server.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ferry::testsupport
