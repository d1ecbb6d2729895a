// tactus: runs Lua agent procedures (.tac) in a restricted VM inside a child process that
// reaches the host only through the broker's socket.
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/args.h"
#include "cli/durable_commands.h"
#include "cli/run_command.h"
#include "cli/sandbox_status.h"
#include "cli/serve/serve_command.h"
#include "cli/test_command.h"
#include "runtime/spawner/spawner.h"
#include "tools/interrupt.h"

int main(int argc, char** argv) {
  using namespace tactus;
  // A reader that goes away (tactus run x.tac | head -1) is a write error, not death: the run
  // ends as "output closed" and the journal is left consistent. Jails get SIGPIPE back.
  std::signal(SIGPIPE, SIG_IGN);
  cli::guard_standard_fds();
  const cli::ParseResult parsed = cli::parse_cli(argc, argv);
  if (!parsed.error.empty()) {
    std::fprintf(stderr, "tactus: %s\n", parsed.error.c_str());
    return 2;
  }
  const cli::CliOptions& o = parsed.options;
  switch (o.command) {
    case cli::Command::help:
      std::fputs(cli::help_text(o.help_topic).c_str(), stdout);
      return 0;
    case cli::Command::version:
      std::printf("tactus %s\n", TACTUS_VERSION);
      return 0;
    case cli::Command::config_show:
      // Reads the configuration but resolves no secret and forks nothing.
      return cli::config_show_command(o);
    case cli::Command::runs:
      return cli::runs_command(o);
    case cli::Command::runs_fail:
      return cli::runs_fail_command(o);
    case cli::Command::answer:
      if (!o.answer_resume) return cli::answer_command(o);
      break;
    case cli::Command::run:
    case cli::Command::validate:
    case cli::Command::resume:
    case cli::Command::sandbox_status:
    case cli::Command::test:
    case cli::Command::eval:
    case cli::Command::serve:
      break;
  }
  // A --parallel worker (tactus test --scenario-index) ends with the tactus that started it.
  if (o.scenario_index >= 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    // The parent may have died before the signal was set: then it is not our parent any more.
    const char* parent = std::getenv("TACTUS_PARALLEL_PARENT");
    if (parent && std::to_string(::getppid()) != parent) return 1;
  }
  // First real step: fork the spawner, before any thread exists and before any configuration
  // (and so any secret) is read. Everything a jail is forked from stays free of secrets.
  spawner::SpawnerClient spawner = spawner::SpawnerClient::fork_spawner(cli::requested_backend(o));
  // tactus serve takes SIGTERM and SIGINT on its loop, as a drain (cli/serve/serve_command.h).
  if (o.command == cli::Command::serve) return cli::serve_command(o, spawner);
  // After the fork: the spawner (and the jails it forks) keep the default dispositions. From
  // here SIGINT, SIGTERM and SIGHUP end the run as interrupted, its jails killed and reaped.
  tools::install_interrupt_handlers();
  if (o.command == cli::Command::sandbox_status)
    return cli::sandbox_status_command(o.json, spawner);
  if (o.command == cli::Command::answer) {  // --resume: answer, then resume in this process
    if (const int rc = cli::answer_command(o); rc != 0) return rc;
    cli::CliOptions resume = o;
    resume.command = cli::Command::resume;
    return cli::run_command(resume, spawner);
  }
  if (o.command == cli::Command::test) return cli::test_command(o, spawner);
  if (o.command == cli::Command::eval) return cli::eval_command(o, spawner);
  return cli::run_command(o, spawner);
}
