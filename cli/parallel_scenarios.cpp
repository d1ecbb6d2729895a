// tactus test --parallel: each scenario in a process of its own, up to --workers at once. A
// worker is this binary again (`tactus test FILE --scenario-index K --json ...`), started fresh:
// it forks its own spawner before it reads any configuration, as every tactus process does, so
// nothing with a secret in it is ever forked (cli/main.cpp). Its JSON report is read back.
#include "cli/parallel_scenarios.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "runtime/unique_fd.h"
#include "tools/interrupt.h"

extern char** environ;

namespace tactus::cli {
namespace {

using protocol::Json;

// The worker's arguments: the parent's, less what only the parent does (--parallel, --workers,
// --json, --junit), plus its scenario and --json.
std::vector<std::string> worker_args(const std::vector<std::string>& argv, int index) {
  std::vector<std::string> out = {"/proc/self/exe"};
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string_view a = argv[i];
    if (a == "--parallel" || a == "--json" || a.rfind("--workers=", 0) == 0 ||
        a.rfind("--junit=", 0) == 0)
      continue;
    if (a == "--workers" || a == "--junit") {
      ++i;  // and its value
      continue;
    }
    out.emplace_back(a);
  }
  out.insert(out.end(), {"--scenario-index", std::to_string(index), "--json"});
  return out;
}

// A file for a worker's stdout or stderr, gone once closed.
UniqueFd scratch_file() {
  char name[] = "/tmp/tactus-worker-XXXXXX";
  UniqueFd fd(::mkostemp(name, O_CLOEXEC));
  if (fd) ::unlink(name);
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > (64u << 20)) break;  // a report is small; a runaway one is not read whole
  }
  return out;
}

struct Worker {
  int index = 0;
  pid_t pid = -1;
  UniqueFd out, err;
};

bool start_worker(const std::vector<std::string>& argv, int index, Worker& w, std::string& error) {
  w.index = index;
  w.out = scratch_file();
  w.err = scratch_file();
  if (!w.out || !w.err) {
    error = std::string("cannot make a worker's scratch file: ") + std::strerror(errno);
    return false;
  }
  const std::vector<std::string> args = worker_args(argv, index);
  std::vector<char*> cargs;
  for (const auto& a : args) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, w.out.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, w.err.get(), 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  // The worker learns its parent's pid (TACTUS_PARALLEL_PARENT): after setting its
  // parent-death signal it checks that parent is still the one (cli/main.cpp).
  std::vector<std::string> env_text = {"TACTUS_PARALLEL_PARENT=" + std::to_string(::getpid())};
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).rfind("TACTUS_PARALLEL_PARENT=", 0) != 0) env_text.emplace_back(*e);
  std::vector<char*> cenv;
  for (auto& e : env_text) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  const int rc = ::posix_spawn(&w.pid, "/proc/self/exe", &fa, nullptr, cargs.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    error = std::string("cannot start a worker: ") + std::strerror(rc);
    return false;
  }
  return true;
}

// The worker's report of its one scenario, or a failed report saying what went wrong.
Json report_of(const Worker& w, int status) {
  const std::string out = read_all(w.out.get());
  Json doc = Json::parse(out, nullptr, false);
  if (doc.is_object() && doc.value("scenarios", Json()).is_array() && doc["scenarios"].size() == 1)
    return doc["scenarios"][0];
  std::string err = read_all(w.err.get());
  if (err.size() > 2000) err.resize(2000);
  while (!err.empty() && err.back() == '\n') err.pop_back();
  const std::string how = WIFSIGNALED(status)
                              ? "killed by signal " + std::to_string(WTERMSIG(status))
                              : "exit code " + std::to_string(WEXITSTATUS(status));
  return Json{{"status", "failed"},
              {"error", "the worker for this scenario ended (" + how + ") without a report" +
                            (err.empty() ? "" : ": " + err)}};
}

}  // namespace

bool run_parallel(const std::vector<std::string>& argv, int count, int workers,
                  std::vector<Json>& reports, std::string& error) {
  if (workers < 1) {
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    workers = cores > 0 ? static_cast<int>(cores) : 2;
  }
  reports.assign(static_cast<std::size_t>(count), Json());
  std::map<pid_t, Worker> running;
  int next = 0;
  while (next < count || !running.empty()) {
    if (tools::interrupted()) {  // SIGINT/SIGTERM: the workers end too, jails and all
      for (const auto& [pid, w] : running) ::kill(pid, SIGTERM);
      for (const auto& [pid, w] : running) {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
      }
      error = "interrupted before every scenario ran";
      return false;
    }
    while (next < count && static_cast<int>(running.size()) < workers && !tools::interrupted()) {
      Worker w;
      if (!start_worker(argv, next, w, error)) break;
      const pid_t pid = w.pid;
      running.emplace(pid, std::move(w));
      ++next;
    }
    if (running.empty()) break;
    // Each worker is waited for by its pid (never waitpid(-1): the spawner is a child too).
    bool reaped = false;
    for (auto it = running.begin(); it != running.end();) {
      int status = 0;
      const pid_t pid = ::waitpid(it->first, &status, WNOHANG);
      if (pid == it->first || (pid < 0 && errno != EINTR)) {
        reports[static_cast<std::size_t>(it->second.index)] =
            pid == it->first ? report_of(it->second, status)
                             : Json{{"status", "failed"}, {"error", "the worker was lost"}};
        it = running.erase(it);
        reaped = true;
      } else {
        ++it;
      }
    }
    if (!reaped) ::usleep(2000);
  }
  if (!error.empty()) return false;
  for (const Json& r : reports)
    if (r.is_null()) {
      error = "interrupted before every scenario ran";
      return false;
    }
  return true;
}

}  // namespace tactus::cli
