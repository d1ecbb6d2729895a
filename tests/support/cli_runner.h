// Runs the real tactus binary for end-to-end tests.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace tactus::test {

struct CliRun {
  int exit_code = -1;  // -1 if killed by a signal
  std::string out, err;
};

// Runs program with args (no shell), stdin from /dev/null, and an empty environment plus
// env_extra. Kills it after timeout_s seconds (the test then fails on exit_code).
CliRun run_program(const std::string& program, const std::vector<std::string>& args,
                   const std::vector<std::string>& env_extra = {}, double timeout_s = 30,
                   const std::string& cwd = "");

// run_program of TACTUS_BIN.
CliRun run_tactus(const std::vector<std::string>& args,
                  const std::vector<std::string>& env_extra = {}, double timeout_s = 30);

// Programs run in this directory unless told otherwise: a fresh temporary one per test process,
// so the journal a run creates in its working directory (.tactus/journal.db) is the tests' own
// and always writable, whoever runs them and from wherever.
const std::string& default_cwd();

// run_tactus in the directory cwd (the project whose journal resume, answer and runs use).
CliRun run_tactus_in(const std::string& cwd, const std::vector<std::string>& args,
                     const std::vector<std::string>& env_extra = {}, double timeout_s = 30);

// Starts tactus in dir without waiting (stdin /dev/null; stdout and stderr to dir/killed.out and
// dir/killed.err): for tests that signal or kill it. -1 if it could not be started.
pid_t start_tactus(const std::string& dir, const std::vector<std::string>& args,
                   const std::vector<std::string>& env);
// Waits for pid; its exit code, or 128 + the signal that killed it.
int wait_exit_code(pid_t pid);

// Writes text to path, creating its directories; reads a whole file ("" if it cannot).
void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

// A file in a fresh temporary directory, removed with the directory at destruction.
class TempTac {
 public:
  explicit TempTac(const std::string& source, const std::string& name = "proc.tac");
  ~TempTac();
  TempTac(const TempTac&) = delete;
  TempTac& operator=(const TempTac&) = delete;
  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, path_;
};

// Runs a .tac source through `tactus run --json` and returns the parsed document's text
// fields through CliRun; helpers below read them.
CliRun run_source(const std::string& source, const std::vector<std::string>& extra_args = {});

}  // namespace tactus::test
