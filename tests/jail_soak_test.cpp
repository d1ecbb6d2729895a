// 10,000 jailed runs in a row from one broker: no zombie, no leaked fd, flat broker RSS.
#include <catch2/catch.hpp>

#include <dirent.h>

#include <fstream>
#include <sstream>
#include <string>

#include "broker/run_session.h"

using namespace tactus;

namespace {

int open_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory's own fd
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Children of this process that are zombies (reaped runs leave none).
int zombie_children() {
  int n = 0;
  DIR* d = ::opendir("/proc");
  const std::string self = std::to_string(::getpid());
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream in(stat.substr(close + 2));
    char state = 0;
    std::string ppid;
    in >> state >> ppid;
    if (ppid == self && state == 'Z') ++n;
  }
  ::closedir(d);
  return n;
}

struct NullSink : broker::OutputSink {
  void print(std::string_view) override {}
};

}  // namespace

TEST_CASE("jail: 10,000 sequential runs leave no zombie, no leaked fd and a flat RSS",
          "[jail][soak]") {
  static spawner::SpawnerClient spawner = spawner::SpawnerClient::fork_spawner();
  tools::ToolRegistry tools;
  NullSink sink;
  broker::RunRequest req;
  req.source = "print('x') return Host.call('host.ping', {n = 1}).n";
  req.chunkname = "@soak.tac";
  auto run_many = [&](int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      req.run_id = "soak-" + std::to_string(i);
      const auto r = broker::run_procedure(spawner, req, tools, sink);
      if (r.status == broker::RunStatus::ok && r.result == 1)
        ++ok;
      else
        FAIL_CHECK("run " << i << ": " << r.message);
    }
    return ok;
  };
#ifdef TACTUS_SANITIZE
  // ASan's quarantine keeps freed memory on purpose, so RSS says nothing here, and every run is
  // several times slower: the release build runs the full 10,000 and checks RSS.
  constexpr int kWarmup = 200, kRuns = 1800;
  constexpr bool kCheckRss = false;
#else
  constexpr int kWarmup = 1000, kRuns = 9000;
  constexpr bool kCheckRss = true;
#endif
  CHECK(run_many(kWarmup) == kWarmup);  // warm-up: allocator pools, asio's first-use state
  const int fds = open_fds();
  const long rss = rss_kib();
  CHECK(run_many(kRuns) == kRuns);
  CHECK(open_fds() == fds);
  CHECK(zombie_children() == 0);
  const long growth = rss_kib() - rss;
  INFO("RSS " << rss << " KiB -> " << rss + growth << " KiB");
  if (kCheckRss) CHECK(growth < 1024);
}
