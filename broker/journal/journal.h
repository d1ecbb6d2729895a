// The durable-run journal: every request/response exchange between a run's VM and the broker
// (Host.call, llm.chat, human.*, time, random, state writes, checkpoints), kept in SQLite so
// that a crashed or suspended run can be replayed in a fresh jail and answered from here,
// without repeating a model or tool call. This is the storage alone; the run session decides
// what to journal and when.
//
// Durability: WAL mode with synchronous=NORMAL. A call that returned true has committed: what
// it wrote survives the process being killed (SIGKILL, a crash) at any later moment. A power
// loss or kernel crash may lose the last commits, since commits are not fsynced one by one
// (the WAL is synced at checkpoints); the journal stays consistent either way.
//
// Thread-safe: each call holds the Journal's lock, so the threads of one process (tactus
// serve's runners and its admission) share one connection, its statements and its page cache.
// Not fork-safe: a child process opens a Journal of its own and never uses, or destroys, one
// inherited from its parent.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tactus::broker {

struct RunRecord {
  std::string run_id;
  std::string procedure;    // absolute path of the .tac file
  std::string source_hash;  // sha256_hex of the source (broker/sha256.h), by the caller
  std::string config_hash;  // sha256_hex of the merged configuration, by the caller
  std::string input_json;   // the run's input
  // queued (accepted by tactus serve, not started) | running | suspended | interrupted | budget
  // | completed | failed
  std::string status;
  double started_at = 0;        // unix seconds; create_run fills 0 with now
  double updated_at = 0;        // unix seconds; changed by create_run, set_status, finish_run
  std::string result_json;      // when completed
  std::string error;            // when failed
  bool state_journaled = true;  // its state changes are entries (runs begun before schema 2: no)
  bool sealed = true;  // secrets journaled as placeholders (runs begun before schema 3: no)
  // Which fingerprint config_hash is (broker/config_identity.h): 2 now, 1 for runs begun before
  // schema 4, until their first resume moves them to 2.
  int config_scheme = 2;
  // Requests sent again by resumes: each was in flight (journaled, unanswered) when the host
  // died or was interrupted.
  std::int64_t repeated = 0;
  // The settings config_hash covers, "key: value" lines, masked (scheme 2; "" before).
  std::string config_text;
  // Who accepted it: "" (the command line) or "serve" (tactus serve, which resumes its own
  // queued, running and interrupted runs when it starts).
  std::string origin;
};

struct JournalEntry {
  std::int64_t seq = 0;      // 1, 2, 3 ... per run, no gaps
  std::string method;        // "host.call", "llm.chat", "time.now", "human.approve", ...
  std::string request_json;  // the params as the VM sent them
  // {"result": ...} or {"error": {...}}; "" while pending: a human.* request waiting for its
  // answer, or a request with an outside effect in flight (journaled before it ran).
  std::string response_json;
  double at = 0;  // unix seconds; append fills 0 with now
};

// Every call that can fail takes `error` and sets it to one line naming the journal's path or
// the run ("journal 'PATH': locked by another process; ...", "run 'ID' not found") when it
// returns false, nullopt or an empty list because of a failure.
class Journal {
 public:
  // Opens the journal at path, creating the file (mode 0600: it holds inputs, model replies and
  // tool results) and its parent directories if needed, and bringing its schema up to date.
  // A file from a newer tactus, a file that is not a database, a lock held past busy_timeout
  // and an uncreatable directory are refused with a message that says so; nothing is written
  // to a file that is refused. busy_timeout is how long any call waits for another process's
  // write to finish before giving up with "locked by another process".
  static std::unique_ptr<Journal> open(
      const std::string& path, std::string& error,
      std::chrono::milliseconds busy_timeout = std::chrono::milliseconds(2000));
  ~Journal();  // releases the leases this Journal still holds
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& path() const;

  // --- runs ---
  // Records a new run. status "" means running. Fails with "run 'ID' already exists".
  bool create_run(const RunRecord& run, std::string& error);
  // nullopt with error empty: no such run.
  std::optional<RunRecord> find_run(const std::string& run_id, std::string& error);
  // Newest first (by started_at, then creation order); status_filter "" lists all.
  std::vector<RunRecord> list_runs(const std::string& status_filter, std::string& error);
  // running <-> suspended <-> interrupted. A completed or failed run is final and refused.
  bool set_status(const std::string& run_id, const std::string& status, std::string& error);
  // completed (with result_json) or failed (with error_text); refused if already finished.
  bool finish_run(const std::string& run_id, const std::string& status,
                  const std::string& result_json, const std::string& error_text,
                  std::string& error);
  // A resume begins with entries in the journal; after_death: the run was "running" with a
  // stale lease (the process before died). deaths: how many resumes in a row, this one not
  // counted, began at this same point and died (0 when the last one got further or ended).
  bool note_resume(const std::string& run_id, std::int64_t entries, bool after_death, int& deaths,
                   std::string& error);

  // A resume sent again the request that was in flight when its run's host died.
  bool note_repeated(const std::string& run_id, std::string& error);
  // Replaces the run's configuration fingerprint (a scheme-1 run's first resume).
  bool set_config_hash(const std::string& run_id, const std::string& hash, int scheme,
                       const std::string& text, std::string& error);

  // --- entries ---
  // Appends entry.seq, which must be exactly the run's next one ("run 'ID': cannot append entry
  // 5, the next one is 4"), and commits it before returning: send the answer to the VM only
  // after this returned true. Refused once the run is completed or failed. One statement, one
  // commit; it does not check the lease (claim the run first).
  bool append(const std::string& run_id, const JournalEntry& entry, std::string& error);
  // Appends entries (consecutive, starting at the run's next seq) in ONE transaction: all or
  // none are committed. The session batches answers that carry no outside effect this way
  // (docs/durability.md, "When an entry is committed").
  bool append_batch(const std::string& run_id, const std::vector<JournalEntry>& entries,
                    std::string& error);
  // Fills in the response of a pending entry (response_json ""): a human.* request answered
  // later by `tactus answer`. Refused if the entry is missing or already answered.
  bool answer(const std::string& run_id, std::int64_t seq, const std::string& response_json,
              std::string& error);
  // The run's entries in seq order (empty for an unknown run).
  std::vector<JournalEntry> entries(const std::string& run_id, std::string& error);

  // Copies committed entries from the WAL into the database file (PASSIVE: waits for no one),
  // syncing both. SQLite also does this by itself inside whichever commit takes the WAL past
  // the checkpoint size (32 pages, or set_checkpoint_pages), which makes that commit pay two
  // fsyncs. False with error if it could not run.
  bool checkpoint(std::string& error);
  // The WAL size, in pages, past which a commit checkpoints it. 32 by default: each tactus run
  // opens the journal anew and reads the WAL back first, so it is kept short. A process that
  // keeps the journal open (tactus serve) reads nothing back, and with 32 paid a checkpoint's
  // two fsyncs every few runs; it sets more.
  bool set_checkpoint_pages(int pages, std::string& error);

  // The calls made while a Batch is open are one transaction: one commit where each would
  // make its own. commit() ends it; a Batch destroyed uncommitted rolls its calls back (a claim
  // too). Other connections see none of it before the commit. Not for an entry whose answer
  // must be durable before it is sent (append commits it): a batch is for bookkeeping around a
  // run, its start or its end.
  class Batch {
   public:
    // BEGIN IMMEDIATE: takes the write lock now. error is set, and the batch not open, when it
    // could not.
    Batch(Journal& journal, std::string& error);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    bool open() const { return open_; }
    bool commit(std::string& error);

   private:
    Journal& journal_;
    std::unique_lock<std::recursive_mutex> lock_;  // the Journal's, held until the batch ends
    bool open_ = false;
  };

  // --- one live process per run ---
  // Takes the run's lease for this Journal. The holder is recorded as pid, process start time,
  // boot id and a random token, so a lease whose holder died (or ran before a reboot, or whose
  // pid was reused since) is recognised as stale and taken over. While the holder runs, claim
  // is refused with "run 'ID' is being run by process PID" - also when the holder is this very
  // Journal or process: two sessions of one run in one process would interleave their entries
  // just as two processes would, so a second claim is a bug to report, not a no-op. The check
  // and the take-over are one BEGIN IMMEDIATE transaction: of two racing claimers one wins.
  bool claim(const std::string& run_id, std::string& error);
  // Drops the lease if this Journal holds it; otherwise does nothing.
  void release(const std::string& run_id);

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tactus::broker
