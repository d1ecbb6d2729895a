// Command-line parsing for `tactus`. Parsing reads argv only: no file and no configuration,
// so main() can fork the spawner right after it.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sidecars/run_limits.h"

namespace tactus::cli {

enum class Command {
  help,
  version,
  run,
  validate,
  resume,
  answer,
  runs,
  runs_fail,  // tactus runs fail RUN_ID [--reason TEXT]
  sandbox_status,
  config_show,
  test,
  eval,
  serve  // tactus serve [--listen HOST:PORT] [--project DIR]
};

// Limits given on the command line (the top config layer); unset ones fall through.
using sidecars::LimitFlags;

struct CliOptions {
  Command command = Command::help;
  std::string help_topic;  // "" or "run"
  std::string file;
  bool json = false;
  bool no_sandbox = false;
  std::string backend;  // "" unless --backend was given: the configuration decides
  std::vector<std::pair<std::string, std::string>> params;  // --param k=v, in order
  std::string input_file;
  std::string run_id;
  bool log_json = false;       // --log-format json: Log.* events as JSONL on stderr
  bool raw_output = false;     // --raw-output: control characters printed as they are
  bool no_input = false;       // --no-input: a Human.* request suspends the run even on a terminal
  std::string answer_value;    // tactus answer --value
  bool answer_resume = false;  // tactus answer --resume
  std::string status_filter;   // tactus runs --status
  std::string fail_reason;     // tactus runs fail --reason
  bool mock = false;           // --mock: agents answer from Mocks {...} or a default reply
  std::string scenario;        // tactus test --scenario NAME
  std::string junit_file;      // tactus test --junit FILE
  int runs = 0;                // tactus eval/test --runs N (0: the Evaluation's, else 1)
  bool verbose = false;        // -v/--verbose: the layers read and where the time went, on stderr
  bool quick = false;          // tactus validate --quick: the file compiles; nothing is run
  bool parallel = false;       // tactus test --parallel: scenarios in separate processes at once
  int workers = 0;             // tactus test --workers N (implies --parallel; 0: the cores)
  std::string mock_config;     // --mock-config FILE: mocked tool results and human answers (JSON)
  int scenario_index = -1;     // internal: the --parallel worker's one scenario, by its index
  std::string listen;          // tactus serve --listen HOST:PORT ("": 127.0.0.1:8750)
  std::string project;         // tactus serve --project DIR ("": the current directory)
  std::vector<std::string> argv;  // as given (a --parallel test starts workers with them)
  LimitFlags limits;
};

struct ParseResult {
  CliOptions options;
  std::string error;  // one line; empty on success
};

ParseResult parse_cli(int argc, const char* const* argv);

std::string help_text(const std::string& topic);

}  // namespace tactus::cli
