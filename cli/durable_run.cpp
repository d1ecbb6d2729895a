#include "cli/durable_run.h"

#include <unistd.h>

#include <filesystem>
#include <optional>
#include <vector>

#include "broker/config_identity.h"
#include "broker/journal/exchange_journal.h"
#include "broker/journal/journal.h"
#include "broker/random_hex.h"
#include "broker/run_setup.h"
#include "broker/sha256.h"
#include "cli/durable_commands.h"
#include "cli/run_command.h"
#include "sidecars/units.h"
#include "tools/human.h"
#include "tools/interrupt.h"

namespace tactus::cli {

using protocol::Json;

broker::RunRecord new_run_record(const PreparedRun& p, const std::string& procedure,
                                 const std::string& status) {
  broker::RunRecord r;
  std::error_code ec;
  r.run_id = p.req.run_id;
  r.procedure = std::filesystem::absolute(procedure, ec).lexically_normal().string();
  r.source_hash = broker::sha256_hex(p.req.source);
  const broker::ConfigIdentity identity = broker::config_identity(p.config, p.redactor.get());
  r.config_hash = identity.hash;
  r.config_text = identity.text;
  // Sealed and masked like every entry: no secret in clear on disk.
  Json input = p.req.input;
  p.seal.seal(input);
  p.redactor->redact_in_place(input);
  r.input_json = protocol::dump_json(input);
  r.status = status;
  return r;
}

namespace {

// The bytes file.write wrote in the journaled entries of a run: each answered write's "bytes".
std::uint64_t written_by_file_tools(const std::vector<broker::JournalEntry>& entries) {
  std::uint64_t sum = 0;
  for (const auto& e : entries) {
    if (e.method != "host.call" || e.response_json.empty()) continue;
    const Json q = Json::parse(e.request_json, nullptr, false);
    if (!q.is_object() || q.value("name", Json()) != "file.write") continue;
    const Json a = Json::parse(e.response_json, nullptr, false);
    if (!a.is_object() || !a.contains("result") || !a["result"].is_object()) continue;
    const Json bytes = a["result"].value("bytes", Json());
    if (bytes.is_number_unsigned()) sum += bytes.get<std::uint64_t>();
  }
  return sum;
}

}  // namespace

DurableRun run_durable(const CliOptions& options, spawner::SpawnerClient& spawner,
                       broker::OutputSink& out, const RunHooks& hooks) {
  CliOptions o = options;
  DurableRun d;
  PreparedRun p;
  broker::RunRequest& req = p.req;
  // A refusal before or instead of the run: one line, exit code 2.
  const auto refuse = [&d, &req](const std::string& message) {
    d.usage_error = message;
    d.result.run_id = req.run_id;
    return std::move(d);
  };
  req.run_id = o.run_id.empty() ? broker::random_hex(8) : o.run_id;
  const bool resuming = o.command == Command::resume;
  // A mocked run answers its agents itself: there is nothing worth journaling or resuming.
  bool durable = o.command != Command::validate && !o.mock;

  std::string error;
  // A resume finds its run in the project's journal: the procedure and input come from there.
  // The caller's (tactus serve keeps one per runner thread), or opened here.
  std::unique_ptr<broker::Journal> owned;
  broker::Journal* journal = hooks.journal;
  std::optional<broker::RunRecord> record;
  // The lease this call took is dropped however it returns: a journal the caller keeps outlives
  // the run. Only this call's: the threads of tactus serve share one Journal, and so its token,
  // and a release for a claim that failed would drop another thread's lease.
  bool leased = false;
  struct ReleaseOnExit {
    broker::Journal*& journal;
    const std::string& run_id;
    const bool& leased;
    ~ReleaseOnExit() {
      if (journal && leased) journal->release(run_id);
    }
  } release_on_exit{journal, req.run_id, leased};
  if (resuming) {
    std::string path;
    if (!journal) {
      owned = existing_project_journal(path, error);
      journal = owned.get();
    }
    if (!journal) return refuse(error.empty() ? no_journal_message(req.run_id, path) : error);
    record = journal->find_run(req.run_id, error);
    if (!record)
      return refuse(error.empty() ? "no run '" + req.run_id + "' in " + journal->path() : error);
    if (record->status == "completed" || record->status == "failed")
      return refuse("run " + req.run_id + " has " + record->status +
                    "; there is nothing to resume");
    o.file = record->procedure;
  }

  if (!prepare_run(o, p, error)) return refuse(error);
  const sidecars::Config& config = p.config;
  if (!config.journal_enabled.value) {
    if (resuming)
      return refuse("journal.enabled is false (" + config.journal_enabled.origin.text() +
                    "): this run cannot be resumed");
    durable = false;
  }
  if (o.command == Command::validate) req.mode = "validate";
  if (o.mock) req.options = runner_options(o, p, Json::object());
  if (o.quick) req.options = Json{{"quick", true}};
  if (resuming) {
    req.input = Json::parse(record->input_json, nullptr, false);
    if (req.input.is_discarded()) req.input = Json::object();
    if (record->sealed) p.seal.unseal(req.input);  // the input as the first run had it
  }

  // Durable: the run is journaled (docs/durability.md). A new run is recorded; a resumed one
  // must find its source and configuration unchanged.
  // A new run's journal, opened (and the run recorded and claimed) when the run first needs it.
  std::unique_ptr<broker::Journal> lazy_journal;
  std::string lazy_error;
  std::optional<broker::ExchangeJournal> exchanges;
  if (durable) {
    std::vector<broker::JournalEntry> replay;
    if (resuming) {
      if (record->source_hash != broker::sha256_hex(req.source))
        return refuse("run " + req.run_id + ": " + o.file +
                      " changed since the run started; a resume must replay the same "
                      "source (start a new run instead)");
      const broker::ConfigIdentity identity = broker::config_identity(config, p.redactor.get());
      const bool same = record->config_scheme >= broker::kConfigScheme
                            ? record->config_hash == identity.hash
                            : broker::matches_scheme1(config, record->config_hash);
      if (!same) {
        const std::string what = broker::describe_config_change(record->config_text, identity.text);
        return refuse(
            "run " + req.run_id +
            ": its configuration (sidecar or config layers) changed since the run started" +
            (record->config_scheme >= broker::kConfigScheme && !what.empty() ? ": " + what : "") +
            "; restore it, or start a new run");
      }
      // Claimed in a commit of its own: the entries are then read under the lease, with no
      // write lock held while they are (a long run's take a while).
      if (!journal->claim(req.run_id, error)) return refuse(error);
      leased = true;
      // A run begun under scheme 1 is moved to this one, once, now that it matched.
      if (record->config_scheme < broker::kConfigScheme &&
          !journal->set_config_hash(req.run_id, identity.hash, broker::kConfigScheme, identity.text,
                                    error))
        return refuse(error);
      replay = journal->entries(req.run_id, error);
      if (!error.empty()) return refuse(error);
      p.disk_used = written_by_file_tools(replay);
      p.usage->add_entries(replay);  // the budget counts what the run used before
      // The rest of the start is one transaction (the resume's count, the status): one commit
      // where each would make its own.
      broker::Journal::Batch start(*journal, error);
      if (!start.open()) return refuse(error);
      // A resume that keeps killing its host at one point (a crash the replay reproduces)
      // would trap the run: the third attempt there fails it, with the reason.
      int deaths = 0;
      // The status as the claim found it: a run that just ended is not a death.
      const auto claimed = journal->find_run(req.run_id, error);
      if (!claimed) return refuse(error);
      if (claimed->status == "completed" || claimed->status == "failed")
        return refuse("run " + req.run_id + " has " + claimed->status +
                      "; there is nothing to resume");
      if (!journal->note_resume(req.run_id, static_cast<std::int64_t>(replay.size()),
                                claimed->status == "running", deaths, error))
        return refuse(error);
      if (deaths >= 2) {
        // The entry they died at: the one in flight, or the first one not journaled.
        const bool in_flight = !replay.empty() && replay.back().response_json.empty();
        const std::string reason =
            "its last " + std::to_string(deaths) + " resumes died at entry " +
            std::to_string(replay.size() + (in_flight ? 0 : 1)) +
            " without journaling it (the host process was killed or crashed there); marked "
            "failed (start a new run)";
        if (!journal->finish_run(req.run_id, "failed", "", reason, error) || !start.commit(error))
          return refuse(error);
        return refuse("run " + req.run_id + ": " + reason);
      }
      if (!journal->set_status(req.run_id, "running", error) || !start.commit(error))
        return refuse(error);
      exchanges.emplace(journal, req.run_id, std::move(replay), p.redactor.get(),
                        record->state_journaled);
    } else {
      // The record (hashes and input included) is made only when a journal is needed: most
      // runs without an outside effect never pay for it.
      exchanges.emplace(
          [&lazy_journal, &lazy_error, &config, &o, &p](std::string& e) -> broker::Journal* {
            const broker::RunRecord r = new_run_record(p, o.file, "running");
            lazy_journal = broker::Journal::open(broker::journal_path(config), e);
            if (lazy_journal &&
                (!lazy_journal->create_run(r, e) || !lazy_journal->claim(r.run_id, e)))
              lazy_journal.reset();
            if (!lazy_journal) lazy_error = e;
            return lazy_journal.get();
          },
          req.run_id, p.redactor.get());
    }
    exchanges->limit_bytes(config.journal_max_bytes.value,
                           "journal.max_bytes (" +
                               sidecars::format_size(config.journal_max_bytes.value) + ", " +
                               config.journal_max_bytes.origin.text() + ")");
    // A run begun before schema 3 journaled no placeholders: none of its text is unsealed.
    if (!resuming || record->sealed) exchanges->seal_secrets(&p.seal);
    req.exchanges = &*exchanges;
    if (!o.no_input && !hooks.quiet) req.ask_human = tools::ask_at_terminal;
    if (!o.json && !hooks.quiet && ::isatty(2))
      write_all(2, "tactus: run " + req.run_id + (resuming ? " (resumed)" : "") + "\n");
  } else if (o.command != Command::validate && !o.no_input && !hooks.quiet) {
    req.ask_human =
        tools::ask_at_terminal;  // a run without a journal can still ask at the terminal
  }

  req.stop = hooks.stop;
  req.on_event = hooks.on_event;
  broker::RunResult r = execute_run(p, o, spawner, out, !hooks.quiet, hooks.pool);
  // A signal while the jail was being set up (the spawn cut short): interrupted, not failed.
  if (tools::interrupted() && r.status == broker::RunStatus::setup)
    broker::mark_interrupted(r, tools::interrupted());
  // A journal that could not be had refuses the run: the outside effect that needed it did not
  // run (docs/durability.md).
  if (!lazy_error.empty()) return refuse(lazy_error);
  broker::Journal* jl = journal ? journal : lazy_journal.get();
  if (jl && durable) {
    // The end is one transaction: the answers still deferred (docs/durability.md), the run's
    // end and the lease's release. Should it not begin (the journal busy past its timeout),
    // each commits on its own. Should its commit fail, the end and the release are made again
    // on their own; the deferred answers are lost then, which rule 1 allows (they have no
    // outside effect, and a resume computes them again).
    std::string jerror;
    const auto journal_end = [&]() {
      // Suspended: resumable later. Any other end is final; a host that dies before this line
      // leaves the run "running" with a stale lease, and `tactus resume` picks it up.
      bool ok = true;
      if (r.status == broker::RunStatus::suspended)
        ok = jl->set_status(req.run_id, "suspended", jerror);
      else if (r.status == broker::RunStatus::interrupted)  // resumable: not a death, not an end
        ok = jl->set_status(req.run_id, "interrupted", jerror);
      else if (r.status == broker::RunStatus::budget)  // resumable under a raised budget
        ok = jl->set_status(req.run_id, "budget", jerror);
      else if (r.status == broker::RunStatus::ok)
        ok = jl->finish_run(req.run_id, "completed", protocol::dump_json(r.result), "", jerror);
      else
        ok = jl->finish_run(req.run_id, "failed", "", r.message, jerror);
      jl->release(req.run_id);
      return ok;
    };
    bool ok = true, batch_failed = false;
    {
      broker::Journal::Batch end(*jl, jerror);
      jerror.clear();
      std::string ferror;
      if (exchanges && !exchanges->flush_if_open(ferror))
        write_all(2, "tactus: warning: " + ferror + "\n");
      ok = journal_end();
      if (std::string cerror; end.open() && !end.commit(cerror)) {
        write_all(2, "tactus: warning: " + cerror + "\n");
        batch_failed = true;
      }
    }  // rolled back here when its commit failed
    if (batch_failed) ok = journal_end();
    leased = false;
    if (!ok) write_all(2, "tactus: warning: " + jerror + "\n");
  }
  d.journaled = jl && durable;
  d.trace = std::move(p.trace);
  d.result = std::move(r);
  return d;
}

}  // namespace tactus::cli
