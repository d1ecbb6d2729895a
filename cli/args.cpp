#include "cli/args.h"

#include <cmath>
#include <cstdlib>
#include <string_view>

#include "sidecars/config.h"
#include "sidecars/units.h"

namespace tactus::cli {
namespace {

struct ArgCursor {
  int argc;
  const char* const* argv;
  int i;
  bool done() const { return i >= argc; }
};

// Splits "--flag=value"; takes the next argument as the value otherwise.
bool take_value(ArgCursor& c, std::string_view flag, std::string_view inline_value, bool has_inline,
                std::string& value, std::string& error) {
  if (has_inline) {
    value = inline_value;
    return true;
  }
  if (c.i + 1 >= c.argc) {
    error = "option '" + std::string(flag) + "' needs a value";
    return false;
  }
  value = c.argv[++c.i];
  return true;
}

bool parse_size_flag(std::string_view flag, const std::string& v, std::uint64_t min,
                     std::optional<std::uint64_t>& out, std::string& error) {
  auto size = sidecars::parse_size(v);
  if (!size) {
    error = "option '" + std::string(flag) + "': '" + v + "' is not a size (e.g. 512k, 128m, 2g)";
    return false;
  }
  if (*size < min) {
    error = "option '" + std::string(flag) + "' must be at least " + sidecars::format_size(min);
    return false;
  }
  out = *size;
  return true;
}

// The limit flags (--timeout, --cpu, --memory, --output-limit, --message-limit, --instructions),
// the last configuration layer: nullopt when flag is none of them, else whether it parsed.
// value() takes the flag's value into v.
template <class TakeValue>
std::optional<bool> limit_flag(std::string_view flag, TakeValue&& value, std::string& v,
                               sidecars::LimitFlags& limits, std::string& error) {
  if (flag == "--timeout") {
    if (!value()) return false;
    auto d = sidecars::parse_duration(v);
    if (!d || *d <= 0) {
      error = "option '--timeout': '" + v + "' is not a positive duration (e.g. 30, 30s, 5m)";
      return false;
    }
    limits.timeout_seconds = *d;
  } else if (flag == "--cpu") {
    if (!value()) return false;
    auto d = sidecars::parse_duration(v);
    if (!d || *d <= 0) {
      error = "option '--cpu': '" + v + "' is not a positive duration (e.g. 10, 10s, 1m)";
      return false;
    }
    limits.cpu_seconds = static_cast<std::uint64_t>(std::ceil(*d));
  } else if (flag == "--memory") {
    if (!value() || !parse_size_flag(flag, v, sidecars::kMinMemory, limits.memory, error))
      return false;
  } else if (flag == "--output-limit") {
    if (!value() || !parse_size_flag(flag, v, 1, limits.output, error)) return false;
  } else if (flag == "--message-limit") {
    if (!value() || !parse_size_flag(flag, v, sidecars::kMinMessage, limits.message, error))
      return false;
    if (*limits.message > (1ull << 30)) {
      error = "option '--message-limit' must be at most 1 GiB";
      return false;
    }
  } else if (flag == "--instructions") {
    if (!value()) return false;
    auto n = sidecars::parse_size(v);  // accepts plain counts and k/m/g multipliers
    if (!n) {
      error = "option '--instructions': '" + v + "' is not a count";
      return false;
    }
    limits.instructions = *n;
  } else {
    return std::nullopt;
  }
  return true;
}

bool parse_run(ArgCursor c, CliOptions& o, std::string& error) {
  for (; !c.done(); ++c.i) {
    const std::string_view arg = c.argv[c.i];
    if (arg.size() < 2 || arg[0] != '-' || arg == "-") {
      if (!o.file.empty()) {
        error = "unexpected argument '" + std::string(arg) + "' (one FILE.tac per run)";
        return false;
      }
      o.file = arg;
      continue;
    }
    const auto eq = arg.find('=');
    const std::string_view flag = arg.substr(0, eq);
    const bool has_inline = eq != std::string_view::npos;
    const std::string_view inline_value = has_inline ? arg.substr(eq + 1) : std::string_view();
    std::string v;
    auto value = [&]() { return take_value(c, flag, inline_value, has_inline, v, error); };
    auto no_value = [&]() {
      if (has_inline) error = "option '" + std::string(flag) + "' takes no value";
      return !has_inline;
    };

    if (flag == "--help" || flag == "-h") {
      o.command = Command::help;
      o.help_topic = "run";
      return true;
    } else if (flag == "--json") {
      if (!no_value()) return false;
      o.json = true;
    } else if (flag == "--no-sandbox") {
      if (!no_value()) return false;
      o.no_sandbox = true;
    } else if (flag == "--backend") {
      if (!value()) return false;
      if (v != "jail" && v != "pool" && v != "none") {
        error = "option '--backend': '" + v + "' is not one of jail, pool, none";
        return false;
      }
      o.backend = v;
    } else if (flag == "--param") {
      if (!value()) return false;
      const auto k = v.find('=');
      if (k == std::string::npos || k == 0) {
        error = "option '--param': expected key=value, got '" + v + "'";
        return false;
      }
      o.params.emplace_back(v.substr(0, k), v.substr(k + 1));
    } else if (flag == "--no-input") {
      if (!no_value()) return false;
      o.no_input = true;
    } else if (flag == "--raw-output") {
      if (!no_value()) return false;
      o.raw_output = true;
    } else if (flag == "--log-format") {
      if (!value()) return false;
      if (v != "text" && v != "json") {
        error = "option '--log-format': '" + v + "' is not one of text, json";
        return false;
      }
      o.log_json = v == "json";
    } else if (flag == "--input") {
      if (!value()) return false;
      o.input_file = v;
    } else if (flag == "--run-id") {
      if (!value()) return false;
      if (v.empty() || v.size() > 64 ||
          v.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789-_.") != std::string::npos) {
        error = "option '--run-id': use 1-64 letters, digits, '-', '_' or '.'";
        return false;
      }
      o.run_id = v;
    } else if (flag == "--mock") {
      if (!no_value()) return false;
      o.mock = true;
    } else if (flag == "--scenario" && (o.command == Command::test || o.command == Command::eval)) {
      if (!value()) return false;
      if (v.empty()) {
        error = "option '--scenario' needs a scenario's name";
        return false;
      }
      o.scenario = v;
    } else if (flag == "--junit" && o.command == Command::test) {
      if (!value()) return false;
      if (v.empty()) {
        error = "option '--junit' needs a file name";
        return false;
      }
      o.junit_file = v;
    } else if ((flag == "--runs" || flag == "--workers" || flag == "--scenario-index") &&
               (o.command == Command::eval || o.command == Command::test) &&
               (flag == "--runs" || o.command == Command::test)) {
      if (!value()) return false;
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      const long min = flag == "--scenario-index" ? 0 : 1;
      const long max = flag == "--workers" ? 64 : 10000;
      if (v.empty() || *end != '\0' || n < min || n > max) {
        error = "option '" + std::string(flag) + "': '" + v + "' is not a count from " +
                std::to_string(min) + " to " + std::to_string(max);
        return false;
      }
      if (flag == "--runs") o.runs = static_cast<int>(n);
      if (flag == "--workers") o.workers = static_cast<int>(n), o.parallel = true;
      if (flag == "--scenario-index") o.scenario_index = static_cast<int>(n);
    } else if (flag == "--parallel" && o.command == Command::test) {
      if (!no_value()) return false;
      o.parallel = true;
    } else if (flag == "--quick" && o.command == Command::validate) {
      if (!no_value()) return false;
      o.quick = true;
    } else if (flag == "--verbose" || flag == "-v") {
      if (!no_value()) return false;
      o.verbose = true;
    } else if (flag == "--mock-config" && o.command != Command::validate) {
      if (!value()) return false;
      if (v.empty()) {
        error = "option '--mock-config' needs a JSON file's name";
        return false;
      }
      o.mock_config = v;
    } else if (const auto limit = limit_flag(flag, value, v, o.limits, error)) {
      if (!*limit) return false;
    } else {
      const char* topic = o.command == Command::test   ? "test"
                          : o.command == Command::eval ? "eval"
                                                       : "run";
      error = "unknown option '" + std::string(flag) + "' (see 'tactus " + topic + " --help')";
      return false;
    }
  }
  if (o.file.empty()) {
    error = "'tactus run' needs a FILE.tac (see 'tactus run --help')";
    return false;
  }
  return true;
}

}  // namespace

ParseResult parse_cli(int argc, const char* const* argv) {
  ParseResult r;
  CliOptions& o = r.options;
  o.argv.assign(argv, argv + argc);
  if (argc < 2) {
    r.error = "no command given (see 'tactus --help')";
    return r;
  }
  const std::string_view cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    o.command = Command::help;
    if (argc > 2) o.help_topic = argv[2];
    return r;
  }
  if (cmd == "--version" || cmd == "-V" || cmd == "version") {
    o.command = Command::version;
    return r;
  }
  if (cmd == "run") {
    o.command = Command::run;
    parse_run(ArgCursor{argc, argv, 2}, o, r.error);
    if (r.error.empty() && !o.mock_config.empty() && !o.mock)
      r.error = "--mock-config answers mocked runs only: add --mock";
    return r;
  }
  if (cmd == "test" || cmd == "eval") {
    o.command = cmd == "test" ? Command::test : Command::eval;
    const std::string name(cmd);
    parse_run(ArgCursor{argc, argv, 2}, o, r.error);
    if (o.command == Command::help) {
      o.help_topic = name;
      return r;
    }
    if (r.error.rfind("'tactus run' needs", 0) == 0)
      r.error = "'tactus " + name + "' needs a FILE.tac (see 'tactus " + name + " --help')";
    if (r.error.empty() && !o.run_id.empty())
      r.error = "'tactus " + name + "' takes no --run-id: each scenario is a run of its own";
    if (r.error.empty() && !o.mock_config.empty() && !o.mock)
      r.error = "--mock-config answers mocked runs only: add --mock";
    return r;
  }
  if (cmd == "validate") {
    o.command = Command::validate;
    parse_run(ArgCursor{argc, argv, 2}, o, r.error);
    if (o.command == Command::help) o.help_topic = "validate";
    if (r.error.rfind("'tactus run' needs", 0) == 0)
      r.error = "'tactus validate' needs a FILE.tac (see 'tactus validate --help')";
    if (r.error.empty() && o.mock) r.error = "'tactus validate' takes no --mock: it runs no agent";
    if (r.error.empty() && !o.mock_config.empty())
      r.error = "'tactus validate' takes no --mock-config: it runs no agent";
    return r;
  }
  if (cmd == "resume") {
    o.command = Command::resume;
    parse_run(ArgCursor{argc, argv, 2}, o, r.error);
    if (o.command == Command::help) {
      o.help_topic = "resume";
      return r;
    }
    if (r.error.rfind("'tactus run' needs", 0) == 0) r.error = "usage: tactus resume RUN_ID";
    if (!r.error.empty()) return r;
    if (!o.params.empty() || !o.input_file.empty() || !o.run_id.empty())
      r.error = "'tactus resume' takes no --param, --input or --run-id: the run keeps its own";
    else if (o.mock)
      r.error = "'tactus resume' takes no --mock: a mocked run is not journaled";
    o.run_id = o.file;  // the positional argument
    o.file.clear();
    return r;
  }
  if (cmd == "answer") {
    o.command = Command::answer;
    bool has_value = false;
    for (int i = 2; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (a == "--help" || a == "-h") {
        o.command = Command::help;
        o.help_topic = "answer";
        return r;
      }
      if (a == "--resume") {
        o.answer_resume = true;
      } else if (a == "--value" && i + 1 < argc) {
        o.answer_value = argv[++i];
        has_value = true;
      } else if (a.rfind("--value=", 0) == 0) {
        o.answer_value = std::string(a.substr(8));
        has_value = true;
      } else if (a == "--json") {
        o.json = true;
      } else if (!a.empty() && a[0] != '-' && o.run_id.empty()) {
        o.run_id = a;
      } else {
        r.error = "unexpected argument '" + std::string(a) +
                  "' (usage: tactus answer RUN_ID --value V [--resume])";
        return r;
      }
    }
    if (o.run_id.empty() || !has_value)
      r.error = "usage: tactus answer RUN_ID --value V [--resume]";
    return r;
  }
  if (cmd == "runs" && argc >= 3 && std::string_view(argv[2]) == "fail") {
    o.command = Command::runs_fail;
    for (int i = 3; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (a == "--help" || a == "-h") {
        o.command = Command::help;
        o.help_topic = "runs";
        return r;
      }
      if (a == "--reason" && i + 1 < argc) {
        o.fail_reason = argv[++i];
      } else if (a.rfind("--reason=", 0) == 0) {
        o.fail_reason = std::string(a.substr(9));
      } else if (o.run_id.empty() && !a.empty() && a[0] != '-') {
        o.run_id = std::string(a);
      } else {
        r.error = "unexpected argument '" + std::string(a) +
                  "' (usage: tactus runs fail RUN_ID [--reason TEXT])";
        return r;
      }
    }
    if (o.run_id.empty()) r.error = "usage: tactus runs fail RUN_ID [--reason TEXT]";
    return r;
  }
  if (cmd == "serve") {
    o.command = Command::serve;
    for (int i = 2; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (a == "--help" || a == "-h") {
        o.command = Command::help;
        o.help_topic = "serve";
        return r;
      }
      std::string* target = a == "--listen" || a.rfind("--listen=", 0) == 0     ? &o.listen
                            : a == "--project" || a.rfind("--project=", 0) == 0 ? &o.project
                                                                                : nullptr;
      if (!target) {
        r.error = "unexpected argument '" + std::string(a) +
                  "' (usage: tactus serve [--listen HOST:PORT] [--project DIR])";
        return r;
      }
      const auto eq = a.find('=');
      if (eq != std::string_view::npos) {
        *target = std::string(a.substr(eq + 1));
      } else if (i + 1 < argc) {
        *target = argv[++i];
      } else {
        r.error = "option '" + std::string(a) + "' needs a value";
        return r;
      }
      if (target->empty()) {
        r.error = "option '" + std::string(a.substr(0, eq)) + "' needs a value";
        return r;
      }
    }
    return r;
  }
  if (cmd == "runs") {
    o.command = Command::runs;
    for (int i = 2; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (a == "--help" || a == "-h") {
        o.command = Command::help;
        o.help_topic = "runs";
        return r;
      }
      if (a == "--json") {
        o.json = true;
      } else if (a == "--status" && i + 1 < argc) {
        o.status_filter = argv[++i];
      } else if (a.rfind("--status=", 0) == 0) {
        o.status_filter = std::string(a.substr(9));
      } else {
        r.error = "unexpected argument '" + std::string(a) + "' (usage: tactus runs [--status S])";
        return r;
      }
    }
    const std::string& st = o.status_filter;
    if (!st.empty() && st != "queued" && st != "running" && st != "suspended" &&
        st != "interrupted" && st != "budget" && st != "completed" && st != "failed")
      r.error =
          "option '--status': '" + st +
          "' is not one of queued, running, suspended, interrupted, budget, completed, failed";
    return r;
  }
  if (cmd == "sandbox") {
    o.command = Command::sandbox_status;
    for (int i = 2; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (i == 2 && a == "status") continue;
      if (a == "--json") {
        o.json = true;
        continue;
      }
      if (a == "--help" || a == "-h") {
        o.command = Command::help;
        o.help_topic = "sandbox";
        return r;
      }
      r.error = "unknown argument '" + std::string(a) + "' (usage: tactus sandbox status [--json])";
      return r;
    }
    if (argc < 3 || std::string_view(argv[2]) != "status")
      r.error = "usage: tactus sandbox status [--json]";
    return r;
  }
  if (cmd == "config") {
    o.command = Command::config_show;
    if (argc == 3 && (std::string_view(argv[2]) == "--help" || std::string_view(argv[2]) == "-h")) {
      o.command = Command::help;
      o.help_topic = "config";
      return r;
    }
    if (argc < 4 || std::string_view(argv[2]) != "show") {
      r.error = "usage: tactus config show FILE.tac [limit flags]";
      return r;
    }
    o.file = argv[3];
    // The limit flags a run would be given: shown as the last layer, with the flag as origin.
    for (ArgCursor c{argc, argv, 4}; !c.done(); ++c.i) {
      const std::string_view arg = c.argv[c.i];
      const auto eq = arg.find('=');
      const std::string_view flag = arg.substr(0, eq);
      const bool has_inline = eq != std::string_view::npos;
      std::string v;
      auto value = [&]() {
        return take_value(c, flag, has_inline ? arg.substr(eq + 1) : std::string_view(), has_inline,
                          v, r.error);
      };
      const auto limit = limit_flag(flag, value, v, o.limits, r.error);
      if (!limit)
        r.error = "unexpected argument '" + std::string(arg) +
                  "' (tactus config show FILE.tac takes the limit flags only: --timeout, --cpu, "
                  "--memory, --output-limit, --message-limit, --instructions)";
      if (!limit || !*limit) return r;
    }
    return r;
  }
  // A typo'd command is named with the nearest one (tactus rn -> run).
  const std::vector<std::string> commands = {"run",     "validate", "test",    "eval",
                                             "resume",  "answer",   "runs",    "serve",
                                             "sandbox", "config",   "version", "help"};
  r.error = "unknown command '" + std::string(cmd) + "'" +
            sidecars::suggestion(std::string(cmd), commands) + " (see 'tactus --help')";
  return r;
}

std::string help_text(const std::string& topic) {
  if (topic == "serve")
    return R"(usage: tactus serve [--listen HOST:PORT] [--project DIR]

Serves runs over HTTP from one long-lived process: a warm pool of jails, many runs at once,
each recorded in the project's journal before it is acknowledged. Procedures are the project's
.tac files; their sidecars and .tactus/config.yml decide as for 'tactus run'. A client sends
input, never code or configuration.

options:
  --listen HOST:PORT  where to listen (default 127.0.0.1:8750; port 0: any free port). An
                      address other than loopback needs serve.tokens
  --project DIR       the project (default: the current directory)

routes: GET /health, GET /metrics, POST /v1/runs, GET /v1/runs, GET /v1/runs/ID[?wait=S],
GET /v1/runs/ID/events (server-sent events), POST /v1/runs/ID/answers, POST /v1/runs/ID/cancel.
Settings (serve: in .tactus/config.yml): pool (4), max_concurrent (2 x cores), queue (256),
tokens (names of declared secrets), drain_timeout (30s), max_body (1m).
SIGTERM or SIGINT drains: no new run; running runs get drain_timeout, then are interrupted
(resumable); queued and suspended runs wait for the next start. Exit 0 after a drain, 2 on a
configuration or listen error. See docs/server.md.
)";
  if (topic == "resume")
    return R"(usage: tactus resume RUN_ID [--json] [--no-input] [limit flags]

Runs a suspended run, or one whose host died, again in a fresh jail: every request the journal
holds is answered from it (nothing is repeated), and the run goes on live from its first new
request. Refused (exit 2) for an unknown, completed or failed run, a source or configuration
that changed since the run started, or a run another live tactus holds. The journal is the
project's .tactus/journal.db (the nearest ancestor of the working directory with .tactus/).
See docs/durability.md. Exit codes as for 'tactus run'.
)";
  if (topic == "answer")
    return R"(usage: tactus answer RUN_ID --value V [--resume] [--json]

Answers the pending Human.* request of a suspended run: approve takes yes or no, select one of
its options (or its number), review approve, reject or revise (optionally ': feedback'), input
any text. A value that does not fit is refused (exit 2) and the run stays suspended. --resume resumes the run at once, as
'tactus resume RUN_ID' would. See docs/durability.md.
)";
  if (topic == "runs")
    return R"(usage: tactus runs [--status running|suspended|interrupted|budget|completed|failed] [--json]
       tactus runs fail RUN_ID [--reason TEXT]

Lists the runs in the project's journal, newest first: id, status, start time (UTC) and
procedure. Only journaled runs are listed: a run appears once it has had an outside effect (a
model call, a tool, a human); a run without one has nothing to resume and is not journaled.
An interrupted run (SIGINT, SIGTERM) is resumable, and so is one its budget stopped (status
budget) once the budget is raised. --json adds 'repeated': how many requests its resumes sent
again because they were in flight when its host died or was interrupted (at most one each
time), and what each run used and spent: 'usage' (model and tool calls, tokens) and 'cost'.

'runs fail' marks a suspended or stuck run failed (its entries are kept), so a run that cannot
be resumed does not trap you; a run some live process holds is refused. A run whose resumes
die twice in a row at the same entry is marked failed by the third resume, with the reason.
See docs/durability.md.
)";
  if (topic == "test")
    return R"(usage: tactus test FILE.tac [--mock] [--scenario NAME] [--json] [--junit FILE] [options]

Runs each scenario of FILE's Specification([[ Gherkin ]]) in a fresh jail and prints one line
per scenario: PASS, or FAIL with the failing step's line and why. Given steps set the input and
script agents, tools and human answers; When runs the procedure; Then checks its output, state
and tool calls; Step("text", fn) adds custom steps. See docs/testing.md.

options:
  --mock              agents without a scenario mock answer from Mocks {...}, or with a plain
                      reply (and done, if they have it); no model is called. Without --mock,
                      unmocked agents call their providers
  --scenario NAME     run only the scenarios called NAME (an outline's name runs all its rows)
  --json              print one JSON report on stdout
  --junit FILE        also write a JUnit XML report to FILE
  --mock-config FILE  with --mock: a JSON object of mocked tool results by tool name and
                      Human.* answers ("Human.approve": false, "Human.input": "...")
  --runs N            run each scenario N times; it passes when every run does
  --parallel          run the scenarios in worker processes at once (one per core)
  --workers N         as --parallel, N at once
  -v, --verbose       name the configuration layers read
  --param, --input, --timeout, --memory, --cpu, --output-limit, --instructions,
  --message-limit, --backend, --no-sandbox  as for 'tactus run' (per scenario)

Human.* requests are answered by the scenario ('the human approves') or with their default.
Runs are not journaled. exit codes: 0 every scenario passed, 1 a scenario failed or the
Specification is malformed (file:line), 2 usage or configuration error.
)";
  if (topic == "eval")
    return R"(usage: tactus eval FILE.tac [--runs N] [--mock] [--scenario NAME] [--json] [options]

Runs every scenario of FILE's Specification N times (--runs, else Evaluation({runs = N}), else
1) and prints each scenario's pass rate against the threshold (Evaluation({threshold = T}),
default 1.0: every run must pass). A file that declares evaluations({dataset, evaluators,
thresholds}) has each case run instead, its evaluators judging each run, and the share of
passing runs compared with min_success_rate (at most 10,000 runs). Options as for 'tactus
test' (--mock-config too; not --parallel). See docs/testing.md.

exit codes: 0 every scenario at or above the threshold, 1 one below it or a malformed
Specification, 2 usage or configuration error.
)";
  if (topic == "config")
    return R"(usage: tactus config show FILE.tac [limit flags]

Prints the configuration a run of FILE.tac would get, merged from its layers (later wins):
built-in defaults < ~/.tactus/config.yml < .tactus/config.yml (nearest ancestor of FILE's
directory) < FILE.tac.yml < the limit flags given after FILE (--timeout, --cpu, --memory,
--output-limit, --message-limit, --instructions, as for tactus run). Each value is followed by
where it came from: a file:line, "default", or the flag.
Secrets are shown as <secret:NAME>, never their values. See docs/configuration.md.
)";
  if (topic == "sandbox")
    return R"(usage: tactus sandbox status [--json]

Reports what this kernel allows (user namespaces, seccomp, io_uring, 32-bit syscall ABIs,
cgroups) and which backend 'tactus run' would use. Exits 0 when the jail is available and 4
when a jailed run would fail closed.
)";
  if (topic == "validate")
    return R"(usage: tactus validate FILE.tac [--quick] [--json] [-v]

Checks FILE.tac without running it: the source parses, its top level runs in the jail with
every brokered call (Host.call, model calls, Human.*) refused, and its declarations
(Procedure, field, Agent, Tool, Toolset, and Python Tactus's procedure, agent, tool, toolset)
are well formed; every agent's model and toolsets resolve. A script stops at its first effect
or input read, and nothing it prints is shown. Prints what was declared, and notes (an agent
without a model takes gpt-4o) on stderr. --quick only compiles the file. Errors name
file:line. Exits 0 when valid, 1 when not, 2 on a usage or configuration error.
)";
  if (topic == "run")
    return R"(usage: tactus run FILE.tac [options]

Runs a procedure in a fresh child process and restricted LuaJIT VM. What the procedure prints
goes to stdout, then its result as JSON.

options:
  --param KEY=VALUE     set input KEY (repeatable)
  --input FILE.json     read the input object from a JSON file
  --json                print one JSON document {run_id, status, result|error, timings};
                        printed lines go to stderr
  --timeout DURATION    wall-clock limit; the run is killed after it (default )" +
           std::to_string(static_cast<long>(sidecars::kDefaultTimeoutSeconds)) + R"(s)
  --memory SIZE         VM heap limit (default )" +
           sidecars::format_size(sidecars::kDefaultMemory) + R"(, at least 1m)
  --cpu DURATION        CPU-time limit, RLIMIT_CPU (default )" +
           std::to_string(sidecars::kDefaultCpuSeconds) + R"(s)
  --output-limit SIZE   bytes of printed output before the run is stopped (default )" +
           sidecars::format_size(sidecars::kDefaultOutput) + R"()
  --instructions N      VM instruction budget (default: none)
  --message-limit SIZE  largest protocol message (default )" +
           sidecars::format_size(sidecars::kDefaultMessage) + R"(, at least 64k)
  --run-id ID           use ID instead of a random run id
  --log-format text|json
                        Log.* events on stderr as readable lines (default) or JSONL
  --backend jail|pool|none
                        jail (default): namespaces, an empty read-only root, rlimits, no
                        capabilities and a seccomp allowlist; fails closed if the kernel
                        cannot give them. pool: the same jail, forked ahead and handed the
                        job (for a server; one run gains nothing). none: the child process
                        and the restricted VM only
  --no-sandbox          the same as --backend none; prints a warning on every run
  --mock                agents answer from the file's Mocks {...} or with a plain reply
                        (docs/testing.md); no model is called and the run is not journaled
  --mock-config FILE    with --mock: mocked tool results and Human.* answers (a JSON
                        object by name; see 'tactus test --help')
  -v, --verbose         name the configuration layers read and where the time went
  --no-input            a Human.* request suspends the run even on a terminal
  --raw-output          print the procedure's control characters as they are (on a terminal
                        they are shown escaped, \x1b; Human.* prompts are escaped always)

exit codes: 0 ok, 1 error, 2 usage, 3 limit (timeout, cpu, memory, output),
            4 sandbox (violation, crashed, setup), 5 suspended, 6 budget (the run's
            budget: is spent; resumable), 128 + signal interrupted
            (130 Ctrl-C, 143 SIGTERM: the jail is killed, a journaled run stays resumable).
            See docs/cli.md.
)";
  return R"(usage: tactus COMMAND [options]

commands:
  run FILE.tac        run a procedure (see 'tactus run --help')
  validate FILE.tac   check a procedure's declarations without running it or any model
  test FILE.tac       run the scenarios of its Specification (see 'tactus test --help')
  eval FILE.tac       run them N times and report pass rates (see 'tactus eval --help')
  resume RUN_ID       replay a run from the journal and go on (see 'tactus resume --help')
  answer RUN_ID       answer a suspended run's Human.* request (see 'tactus answer --help')
  runs                runs known to the project's journal (see 'tactus runs --help')
  serve               serve runs over HTTP from a warm pool (see 'tactus serve --help')
  sandbox status      what this kernel allows, which backend would run
  config show FILE    the merged configuration of a run, with each value's origin
  version             the version (also --version)
  --help

Documentation: docs/ in the source tree (cli.md, language.md, testing.md, durability.md).
)";
}

}  // namespace tactus::cli
