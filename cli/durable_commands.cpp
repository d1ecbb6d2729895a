#include "cli/durable_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "broker/journal/journal_secrets.h"
#include "broker/run_setup.h"
#include "broker/sha256.h"
#include "cli/run_command.h"
#include "tools/human.h"
#include "tools/interrupt.h"

namespace tactus::cli {
namespace {

namespace fs = std::filesystem;
using protocol::Json;

constexpr int kExitUsage = 2;

void write_err(const std::string& s) {
  std::fputs(s.c_str(), stderr);
  std::fflush(stderr);
}

std::string format_time(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::unique_ptr<broker::Journal> existing_project_journal(std::string& path, std::string& error) {
  const char* home = std::getenv("HOME");
  std::error_code ec;
  // A procedure path in the current directory finds the layers a procedure here would get;
  // there is no procedure, so there is no procedure layer.
  sidecars::LayerPaths layers =
      sidecars::find_layers((fs::current_path(ec) / "none.tac").string(), home ? home : "");
  layers.procedure.clear();
  sidecars::Config config;
  if (!sidecars::load_config(layers, config, error)) return nullptr;
  path = broker::journal_path(config);
  if (!fs::exists(path, ec)) return nullptr;
  return broker::Journal::open(path, error);
}

std::string no_journal_message(const std::string& run_id, const std::string& path) {
  return "no run '" + run_id + "': there is no journal at " + path +
         " (run tactus from the project the run was started in)";
}

namespace {

// Says message as tactus's and gives the usage exit code.
int usage(const std::string& message) {
  write_err("tactus: " + message + "\n");
  return kExitUsage;
}

// The project's journal and run o.run_id in it, or null with a usage message printed.
std::unique_ptr<broker::Journal> journal_with_run(const CliOptions& o,
                                                  std::optional<broker::RunRecord>& run) {
  std::string path, error;
  auto journal = existing_project_journal(path, error);
  if (!journal) {
    write_err("tactus: " + (error.empty() ? no_journal_message(o.run_id, path) : error) + "\n");
    return nullptr;
  }
  run = journal->find_run(o.run_id, error);
  if (!run) {
    write_err("tactus: " +
              (error.empty() ? "no run '" + o.run_id + "' in " + journal->path() : error) + "\n");
    return nullptr;
  }
  return journal;
}

}  // namespace

bool answer_pending(broker::Journal& journal, const broker::RunRecord& run, const std::string& text,
                    std::int64_t seq, std::string& error, std::string* method) {
  const std::string& id = run.run_id;
  const auto entries = journal.entries(id, error);
  if (!error.empty()) return false;
  if (!entries.empty() && !entries.back().response_json.empty() && run.status == "suspended" &&
      entries.back().method.rfind("human.", 0) == 0) {
    error = "run " + id + " has its answer already; continue it with 'tactus resume " + id + "'";
    return false;
  }
  // An unanswered entry that is not human.* is a request that was in flight when its host
  // died: resuming sends it again; it takes no answer from here.
  if (entries.empty() || !entries.back().response_json.empty() ||
      entries.back().method.rfind("human.", 0) != 0) {
    error = "run " + id + " is not waiting for an answer (status " + run.status + ")";
    return false;
  }
  const auto& pending = entries.back();
  if (seq != 0 && seq != pending.seq) {
    error = "run " + id + " is waiting for request " + std::to_string(pending.seq) + ", not " +
            std::to_string(seq);
    return false;
  }
  const std::string kind = pending.method.substr(6);
  const Json params = Json::parse(pending.request_json, nullptr, false);
  auto value = tools::parse_answer(kind, params.is_object() ? params : Json::object(), text, error);
  if (!value) return false;
  // Journaled like every answer: a secret's value sealed, its other forms masked
  // (broker/journal/journal_secrets.h). The secrets are the run's, resolved here as the run will.
  Json answer{{"result", {{"value", *value}}}};
  broker::SecretSeal seal;
  broker::Redactor redactor;
  if (!broker::procedure_secrets(run.procedure, seal, redactor, error)) {
    error = "run " + id + ": " + error +
            " (the answer is journaled with the run's secrets masked, so they must resolve here "
            "too)";
    return false;
  }
  if (run.sealed) seal.seal(answer);  // a run begun before schema 3 gives nothing back
  redactor.redact_in_place(answer);
  if (!journal.answer(id, pending.seq, protocol::dump_json(answer), error)) return false;
  if (method) *method = pending.method;
  return true;
}

int answer_command(const CliOptions& o) {
  std::optional<broker::RunRecord> run;
  const auto journal = journal_with_run(o, run);
  if (!journal) return kExitUsage;
  std::string error, method;
  if (!answer_pending(*journal, *run, o.answer_value, 0, error, &method)) return usage(error);
  if (!o.answer_resume)
    write_err("tactus: answered " + method + " of run " + o.run_id +
              "; continue it with 'tactus resume " + o.run_id + "'\n");
  return 0;
}

int runs_fail_command(const CliOptions& o) {
  std::optional<broker::RunRecord> run;
  const auto journal = journal_with_run(o, run);
  if (!journal) return kExitUsage;
  std::string error;
  if (run->status == "completed" || run->status == "failed")
    return usage("run " + o.run_id + " has " + run->status + " already");
  // A run a live process holds is refused here: it is not stuck.
  if (!journal->claim(o.run_id, error)) return usage(error);
  const std::string reason =
      "marked failed by 'tactus runs fail'" + (o.fail_reason.empty() ? "" : ": " + o.fail_reason);
  const bool ok = journal->finish_run(o.run_id, "failed", "", reason, error);
  journal->release(o.run_id);
  if (!ok) return usage(error);
  write_err("tactus: run " + o.run_id + " (" + run->status + ") " + reason + "\n");
  return 0;
}

int runs_command(const CliOptions& o) {
  std::string path, error;
  auto journal = existing_project_journal(path, error);
  // Listing creates nothing: without a journal there are no runs.
  if (!journal && error.empty()) {
    if (o.json)
      std::cout << "[]\n";
    else
      std::cout << "no runs: there is no journal at " << path << "\n";
    return 0;
  }
  if (!journal) {
    write_err("tactus: " + error + "\n");
    return kExitUsage;
  }
  const auto runs = journal->list_runs(o.status_filter, error);
  if (!error.empty()) {
    write_err("tactus: " + error + "\n");
    return kExitUsage;
  }
  if (o.json) {
    Json list = Json::array();
    for (const auto& r : runs) {
      // What it used and spent, from its journaled answers (broker/run_usage.h).
      broker::RunUsage used;
      used.add_entries(journal->entries(r.run_id, error));
      list.push_back({{"run_id", r.run_id},
                      {"status", r.status},
                      {"started_at", r.started_at},
                      {"updated_at", r.updated_at},
                      {"procedure", r.procedure},
                      // Requests its resumes sent again: each was in flight at a death.
                      {"repeated", r.repeated},
                      {"usage", used.usage_json()},
                      {"cost", used.cost_json()}});
    }
    if (!error.empty()) {
      write_err("tactus: " + error + "\n");
      return kExitUsage;
    }
    std::cout << protocol::dump_json(list) << "\n";
    return 0;
  }
  if (runs.empty()) {
    std::cout << "no runs in " << journal->path() << "\n";
    return 0;
  }
  std::printf("%-18s %-10s %-21s %s\n", "RUN", "STATUS", "STARTED", "PROCEDURE");
  for (const auto& r : runs)
    std::printf("%-18s %-10s %-21s %s\n", r.run_id.c_str(), r.status.c_str(),
                format_time(r.started_at).c_str(), r.procedure.c_str());
  return 0;
}

}  // namespace tactus::cli
