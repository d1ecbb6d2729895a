// Between a run session and its journal: numbers each request the VM sends and each change of
// its state table it reports (1, 2, 3 ...), answers requests from the journal while a resumed
// run is still on ground the journal covers, and journals what is live (when each entry is
// committed: record()). Divergence (another method, params or state at the same number) stops
// the run; nothing is journaled twice.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "broker/journal/journal.h"
#include "runtime/protocol/message.h"

namespace tactus::broker {

class Redactor;
class SecretSeal;

class ExchangeJournal {
 public:
  // journal may be null: then every request is live and nothing is recorded. state_journaled:
  // the run's record says its state changes are entries (false for runs begun before schema 2).
  ExchangeJournal(Journal* journal, std::string run_id, std::vector<JournalEntry> replay,
                  const Redactor* redactor, bool state_journaled = true);
  // A new run whose journal is still being opened (on another thread, while the jail starts):
  // open is called, once, when the journal is first needed, and returns it or null with error.
  ExchangeJournal(std::function<Journal*(std::string& error)> open, std::string run_id,
                  const Redactor* redactor);

  enum class Step {
    live,      // answer it (an outside effect: begin_effect() first), then record()
    replayed,  // send payload as the answer; nothing to do
    pending,   // a human.* request journaled without an answer yet: ask again
    diverged,  // stop the run with message
  };
  struct Next {
    Step step = Step::live;
    std::string payload;  // replayed: the journaled answer, with this request's id
    std::string message;  // diverged
  };
  Next next(const protocol::Message& request);

  // The VM's state table, sent when it changed (before a request, and as the run ends): an
  // entry of its own ("state", the state as params), numbered like a request. On journaled
  // ground it must equal the journal's (replayed; otherwise diverged); past it, it is journaled
  // with the answers deferred (error set if that commit fails).
  Next state(const protocol::Json& state, std::string& error);

  // Before a request with an outside effect runs (every request that is not deferrable, but
  // human.*, which journals itself: record_pending): journals it without its answer, as in
  // flight, with everything deferred before it, in one commit. A resume that finds it still in
  // flight (the host died while it ran) sends it again, once, and counts it
  // (Journal::note_repeated): at most that one request is repeated (docs/durability.md).
  bool begin_effect(const protocol::Message& request, std::string& error);
  // Journals the live answer to request (the payload about to be sent). An answer with an
  // outside effect behind it (a model reply, a file written, an HTTP request, a command) fills
  // in its in-flight entry and is committed now; an answer without one (the time, a seed,
  // host.ping, a file read, a module, a checkpoint) is deferred and committed with the next
  // effect, before anything is printed, within kMaxDeferred requests, or at the run's end.
  bool record(const protocol::Message& request, const std::string& payload, std::string& error);
  // Whether request's answer may be deferred: losing it in a crash means asking it again.
  static bool deferrable(const protocol::Message& request);
  // Commits what is deferred, opening a new run's journal if it is not open yet. The session
  // calls it before a request with an outside effect runs.
  bool flush(std::string& error);
  // Commits what is deferred if the journal is open, before a line is printed or logged and
  // when the run ends. A new run that has had no outside effect has no journal yet, and gets
  // none: there is nothing a resume could save (docs/durability.md).
  bool flush_if_open(std::string& error);
  static constexpr std::size_t kMaxDeferred = 256;
  // Journals a human.* request without its answer: the run suspends on it.
  bool record_pending(const protocol::Message& request, std::string& error);
  // Fills in the answer of the pending request (asked again at a terminal, or timed out).
  bool answer_pending(const protocol::Message& request, const std::string& payload,
                      std::string& error);

  // While replaying, what the procedure prints was printed by the first run already.
  bool replaying() const { return journal_ && seq_ < static_cast<std::int64_t>(replay_.size()); }
  bool active() const { return journal_ != nullptr || open_ != nullptr; }
  // At most max bytes of params, state and answers journaled for the run, counting what a
  // resumed run's journal already holds (journal.max_bytes; setting says so in the refusal,
  // e.g. "journal.max_bytes: 256m, default"). 0: no bound.
  void limit_bytes(std::uint64_t max, std::string setting);

  // Whether the VM is to send its state (state()): a journaled run begun since schema 2.
  bool journals_state() const { return active() && state_journaled_; }
  // When the pending request now being asked again was first journaled (unix seconds).
  double pending_since() const { return pending_at_; }
  std::int64_t seq() const { return seq_; }
  // Secrets' values are journaled as placeholders and given back on replay
  // (broker/journal/journal_secrets.h). Not owned.
  void seal_secrets(const SecretSeal* seal) { seal_ = seal; }

 private:
  std::string masked_text(const protocol::Json& value) const;
  std::string sealed_answer(const std::string& payload) const;
  // Adds n to what the run has journaled; false with the refusal (naming entry seq, what) once
  // that passes journal.max_bytes.
  bool count_bytes(std::size_t n, std::int64_t seq, const std::string& what, std::string& error);
  // Adds entry to deferred_. One that takes the run past its bound is refused (false, error)
  // and what is deferred before it is committed.
  bool defer(JournalEntry entry, std::string& error);
  // The journal, opening it if that was deferred; null with error if it cannot be had.
  Journal* journal(std::string& error);

  Journal* journal_;
  std::function<Journal*(std::string&)> open_;
  std::string open_error_;
  std::string run_id_;
  std::vector<JournalEntry> replay_;
  const Redactor* redactor_;
  const SecretSeal* seal_ = nullptr;
  std::int64_t seq_ = 0;  // the number of the request being handled
  std::vector<JournalEntry> deferred_;
  double pending_at_ = 0;
  std::int64_t in_flight_ = 0;  // the request journaled without its answer (0: none)
  bool repeating_ = false;      // in_flight_ was found so by a resume: it is being sent again
  bool state_journaled_ = true;
  std::uint64_t bytes_ = 0;  // journaled for the run so far
  std::uint64_t max_bytes_ = 0;
  std::string max_setting_;
};

}  // namespace tactus::broker
