// The jail from the outside: a real `tactus run` is looked at through /proc while it runs.
#include <catch2/catch.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/cli_runner.h"

namespace fs = std::filesystem;

namespace {

// The "Key:\tvalue" line of /proc/PID/status.
std::string status_field(pid_t pid, const std::string& key) {
  std::istringstream in(tactus::test::read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) {
      auto v = line.substr(key.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "";
}

pid_t parent_of(pid_t pid) {
  const std::string stat = tactus::test::read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(stat.substr(close + 2));
  char state;
  pid_t ppid = -1;
  in >> state >> ppid;
  return ppid;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (parent_of(pid) == parent) out.push_back(pid);
  }
  return out;
}

bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

// Starts `tactus run` on a procedure that spins for a while, and finds its jail: the child of
// the tactus process that is in a user namespace of its own.
struct RunningJail {
  pid_t tactus = -1;
  pid_t jail = -1;
  tactus::test::TempTac tac;

  // The default source asks the broker's clock, so it also notices a dead broker by itself;
  // a pure loop notices nothing and has only PDEATHSIG to end it.
  explicit RunningJail(
      const std::string& source = "local t = os.time() while os.time() - t < 20 do end return 1")
      : tac(source) {
    std::string bin = TACTUS_BIN;
    std::vector<char*> argv{bin.data(), const_cast<char*>("run"),
                            const_cast<char*>(tac.path().c_str()), nullptr};
    char* envp[] = {const_cast<char*>("OPENAI_API_KEY=sk-test-secret-in-env"), nullptr};
    // In the tests' own working directory: the run's journal goes there (cli_runner.h).
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, tactus::test::default_cwd().c_str());
    const int rc = ::posix_spawn(&tactus, TACTUS_BIN, &fa, nullptr, argv.data(), envp);
    posix_spawn_file_actions_destroy(&fa);
    REQUIRE(rc == 0);
    const std::string own_userns = fs::read_symlink("/proc/self/ns/user").string();
    for (int i = 0; i < 200 && jail < 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      for (pid_t c : children_of(tactus)) {
        std::error_code ec;
        const auto ns = fs::read_symlink("/proc/" + std::to_string(c) + "/ns/user", ec);
        if (!ec && ns.string() != own_userns && status_field(c, "Seccomp") == "2") jail = c;
      }
    }
    REQUIRE(jail > 0);
  }
  ~RunningJail() {
    if (tactus > 0 && alive(tactus)) ::kill(tactus, SIGKILL);
    if (tactus > 0) ::waitpid(tactus, nullptr, 0);
  }
};

}  // namespace

TEST_CASE("jail: namespaces, identity, capabilities, fds, rlimits and root as tactus sees them",
          "[jail]") {
  RunningJail run;
  const std::string proc = "/proc/" + std::to_string(run.jail);

  for (const char* ns : {"user", "pid", "mnt", "ipc", "uts", "cgroup", "net"}) {
    INFO("namespace " << ns);
    CHECK(fs::read_symlink(proc + "/ns/" + ns) !=
          fs::read_symlink(std::string("/proc/self/ns/") + ns));
  }
  // Inside, the jail is pid 1 of its own pid namespace.
  CHECK(status_field(run.jail, "NSpid").find("\t1") != std::string::npos);

  // nobody inside; from the host, never root.
  CHECK(tactus::test::read_file(proc + "/uid_map").find("65534") != std::string::npos);
  const std::string uids = status_field(run.jail, "Uid");
  CHECK(uids.rfind("0\t", 0) != 0);
  if (::geteuid() == 0) {
    CHECK(uids == "65534\t65534\t65534\t65534");
    CHECK(status_field(run.jail, "Gid") == "65534\t65534\t65534\t65534");
    CHECK(status_field(run.jail, "Groups").empty());
  } else {
    CHECK(uids.rfind(std::to_string(::geteuid()) + "\t", 0) == 0);
  }

  CHECK(status_field(run.jail, "CapEff") == "0000000000000000");
  CHECK(status_field(run.jail, "CapPrm") == "0000000000000000");
  CHECK(status_field(run.jail, "CapBnd") == "0000000000000000");
  CHECK(status_field(run.jail, "NoNewPrivs") == "1");
  CHECK(status_field(run.jail, "Seccomp") == "2");

  std::vector<std::string> fds;
  for (const auto& e : fs::directory_iterator(proc + "/fd")) fds.push_back(e.path().filename());
  CHECK(fds == std::vector<std::string>{"3"});

  // The environment: the spawner wiped the strings; nothing of the user's is left.
  const std::string env = tactus::test::read_file(proc + "/environ");
  CHECK(env.find_first_not_of('\0') == std::string::npos);

  const std::string limits = tactus::test::read_file(proc + "/limits");
  auto limit_line = [&](const std::string& name) {
    const auto at = limits.find(name);
    return at == std::string::npos ? std::string() : limits.substr(at, limits.find('\n', at) - at);
  };
  CHECK_THAT(limit_line("Max file size"), Catch::Contains(" 0 "));
  CHECK_THAT(limit_line("Max core file size"), Catch::Contains(" 0 "));
  CHECK_THAT(limit_line("Max processes"), Catch::Contains(" 1 "));
  CHECK_THAT(limit_line("Max open files"), Catch::Contains(" 4 "));
  CHECK_THAT(limit_line("Max cpu time"), Catch::Contains("3600"));
#ifndef TACTUS_SANITIZE
  CHECK_THAT(limit_line("Max address space"), Catch::Contains("2684354560"));  // 2g + 512m
#endif

  // The root: one read-only tmpfs, empty; no /proc, /dev or /sys.
  const std::string mountinfo = tactus::test::read_file(proc + "/mountinfo");
  CHECK(std::count(mountinfo.begin(), mountinfo.end(), '\n') == 1);
  CHECK_THAT(mountinfo, Catch::Contains(" / / ro,nosuid,nodev,noexec"));
  CHECK_THAT(mountinfo, Catch::Contains("tmpfs"));
  CHECK(fs::is_empty(proc + "/root"));
}

TEST_CASE("jail: killing the host process kills its jail and the spawner", "[jail]") {
  RunningJail run("while true do end");
  std::vector<pid_t> helpers = children_of(run.tactus);
  CHECK(helpers.size() == 2);  // the spawner and the jail
  REQUIRE(::kill(run.tactus, SIGKILL) == 0);
  ::waitpid(run.tactus, nullptr, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    gone = true;
    for (pid_t p : helpers)
      if (alive(p) && status_field(p, "State").rfind("Z", 0) != 0) gone = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(gone);
  run.tactus = -1;
}
