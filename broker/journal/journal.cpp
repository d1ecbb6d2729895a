#include "broker/journal/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>

#include "broker/journal/journal_impl.h"
#include "broker/journal/journal_schema.h"
#include "broker/random_hex.h"
#include "runtime/unique_fd.h"

namespace tactus::broker {

using journal_sql::Query;

namespace {

constexpr const char* kRunColumns =
    "run_id, procedure, source_hash, config_hash, input_json, status, started_at, updated_at, "
    "result_json, error, state_journaled, sealed, config_scheme, repeated, config_text, origin";

bool known_status(const std::string& s) {
  return s == "queued" || s == "running" || s == "suspended" || s == "interrupted" ||
         s == "budget" || s == "completed" || s == "failed";
}

RunRecord read_run(const Query& q) {
  RunRecord r;
  r.run_id = q.text(0);
  r.procedure = q.text(1);
  r.source_hash = q.text(2);
  r.config_hash = q.text(3);
  r.input_json = q.text(4);
  r.status = q.text(5);
  r.started_at = q.real(6);
  r.updated_at = q.real(7);
  r.result_json = q.text(8);
  r.error = q.text(9);
  r.state_journaled = q.int64(10) != 0;
  r.sealed = q.int64(11) != 0;
  r.config_scheme = static_cast<int>(q.int64(12));
  r.repeated = q.int64(13);
  r.config_text = q.text(14);
  r.origin = q.text(15);
  return r;
}

// Creates the file itself, so that it gets mode 0600 whatever the umask; SQLite then gives the
// -wal and -shm files beside it the same mode. An existing file is left as it is.
bool create_file(const std::string& path, std::string& error) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::create_directories(parent, ec) && ec) {
    error = "journal '" + path + "': cannot create its directory: " + ec.message();
    return false;
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600));
  if (!fd) {
    error = "journal '" + path + "': cannot open: " + std::strerror(errno);
    return false;
  }
  return true;
}

// PRAGMA journal_mode answers with the mode it ended up in: a filesystem without shared memory
// support keeps the old one, and the durability promised in journal.h would not hold there.
bool use_wal(sqlite3* db, const std::string& path, std::string& error) {
  journal_sql::Stmt stmt;
  if (!journal_sql::prepare(db, "PRAGMA journal_mode = WAL", stmt, path, error)) return false;
  Query q(stmt.get());
  const int rc = q.step();
  if (rc != SQLITE_ROW) {
    error = journal_sql::describe(db, rc, path);
    return false;
  }
  if (q.text(0) != "wal") {
    error = "journal '" + path + "': cannot use WAL mode here (the journal stays in '" + q.text(0) +
            "' mode); put it on a local filesystem";
    return false;
  }
  return true;
}

}  // namespace

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Journal::~Journal() {
  const auto lock = impl_->lock();
  while (!impl_->held.empty()) {
    const std::string run_id = *impl_->held.begin();  // a copy: release() erases the element
    release(run_id);
  }
}

const std::string& Journal::path() const {
  return impl_->path;
}

std::unique_ptr<Journal> Journal::open(const std::string& path, std::string& error,
                                       std::chrono::milliseconds busy_timeout) {
  if (path.empty()) {
    error = "journal path is empty";
    return nullptr;
  }
  if (!create_file(path, error)) return nullptr;

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  sqlite3* raw = nullptr;
  // NOMUTEX: a Journal is used by one thread at a time, so SQLite's own locking is overhead.
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  impl->db.reset(raw);  // a handle comes back even when the open fails, and must be closed
  if (rc != SQLITE_OK) {
    error = impl->db_error(rc);
    return nullptr;
  }
  sqlite3* db = raw;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));

  // The version first: it is the first read of the file, so a file that is not a database, or
  // is locked, or comes from a newer tactus, is refused here, before anything is written.
  if (!check_journal_version(db, path, error)) return nullptr;
  if (!use_wal(db, path, error)) return nullptr;
  // NORMAL: a commit is written to the WAL before it returns, but not fsynced; see journal.h.
  if (!journal_sql::exec(db, "PRAGMA synchronous = NORMAL", path, error)) return nullptr;
  // Before foreign keys are on: a migration that rebuilds a table drops the old one, which
  // would otherwise cascade to the entries (journal_schema.cpp, version 4).
  // Off explicitly: a SQLite built with SQLITE_DEFAULT_FOREIGN_KEYS=1 has them on by default.
  if (!journal_sql::exec(db, "PRAGMA foreign_keys = OFF", path, error)) return nullptr;
  if (!migrate_journal(db, path, error)) return nullptr;
  if (!journal_sql::exec(db, "PRAGMA foreign_keys = ON", path, error)) return nullptr;
  // Each `tactus run` opens the journal, commits a few entries and closes it. Closing the last
  // connection would checkpoint the WAL and delete it (fsyncs, then re-creating the file on the
  // next run: about 1.3 ms per run, more than the jail). So the WAL file is kept, closing does
  // not checkpoint, and the WAL is checkpointed as it passes 32 pages (about 128 KB) instead,
  // which also bounds what the next open reads back to rebuild its index.
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  int persist = 1;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  if (!journal_sql::exec(db, "PRAGMA wal_autocheckpoint = 32", path, error)) return nullptr;

  const std::string cols = kRunColumns;
  const std::string find_run = "SELECT " + cols + " FROM runs WHERE run_id = ?1";
  const std::string list_runs =
      "SELECT " + cols + " FROM runs ORDER BY started_at DESC, rowid DESC";
  const std::string list_by_status =
      "SELECT " + cols + " FROM runs WHERE status = ?1 ORDER BY started_at DESC, rowid DESC";
  const std::string insert_run =
      "INSERT INTO runs (" + cols +
      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0, ?14, ?15)";
  struct Prepared {
    journal_sql::Stmt& stmt;
    const char* sql;
  };
  const Prepared all[] = {
      {impl->insert_run, insert_run.c_str()},
      {impl->find_run, find_run.c_str()},
      {impl->list_runs, list_runs.c_str()},
      {impl->list_runs_by_status, list_by_status.c_str()},
      {impl->set_status,
       "UPDATE runs SET status = ?2, updated_at = ?3 "
       "WHERE run_id = ?1 AND status NOT IN ('completed', 'failed')"},
      {impl->finish_run,
       "UPDATE runs SET status = ?2, result_json = ?3, error = ?4, updated_at = ?5 "
       "WHERE run_id = ?1 AND status NOT IN ('completed', 'failed')"},
      // The checks and the insert are one statement, so one implicit transaction (a write
      // statement takes the write lock before it reads): no BEGIN/COMMIT round trips on the
      // hot path. A refused entry inserts no row; append_diagnosis then says why.
      {impl->append,
       "INSERT INTO entries (run_id, seq, method, request_json, response_json, at) "
       "SELECT ?1, ?2, ?3, ?4, ?5, ?6 "
       "WHERE (SELECT status FROM runs WHERE run_id = ?1) IN ('running', 'suspended') "
       "AND ?2 = (SELECT coalesce(max(seq), 0) + 1 FROM entries WHERE run_id = ?1)"},
      {impl->append_diagnosis,
       "SELECT status, (SELECT coalesce(max(seq), 0) FROM entries WHERE run_id = ?1) "
       "FROM runs WHERE run_id = ?1"},
      {impl->answer,
       "UPDATE entries SET response_json = ?3 "
       "WHERE run_id = ?1 AND seq = ?2 AND response_json = ''"},
      {impl->answer_diagnosis, "SELECT response_json FROM entries WHERE run_id = ?1 AND seq = ?2"},
      {impl->entries,
       "SELECT seq, method, request_json, response_json, at FROM entries "
       "WHERE run_id = ?1 ORDER BY seq"},
      {impl->lease_holder,
       "SELECT l.pid, l.start_time, l.boot_id, l.token "
       "FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id WHERE r.run_id = ?1"},
      {impl->lease_take,
       "INSERT INTO leases (run_id, pid, start_time, boot_id, token, claimed_at) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (run_id) DO UPDATE SET "
       "pid = excluded.pid, start_time = excluded.start_time, boot_id = excluded.boot_id, "
       "token = excluded.token, claimed_at = excluded.claimed_at"},
      {impl->lease_drop, "DELETE FROM leases WHERE run_id = ?1 AND token = ?2"},
      {impl->note_repeated,
       "UPDATE runs SET repeated = repeated + 1, updated_at = ?2 WHERE run_id = ?1"},
      {impl->set_config_hash,
       "UPDATE runs SET config_hash = ?2, config_scheme = ?3, config_text = ?4 WHERE run_id = ?1"},
      {impl->note_resume,
       "UPDATE runs SET resume_deaths = CASE WHEN ?3 = 1 AND resume_seq = ?2 "
       "THEN resume_deaths + 1 ELSE 0 END, resume_seq = ?2 WHERE run_id = ?1 "
       "RETURNING resume_deaths"},
  };
  for (const auto& p : all) {
    if (!journal_sql::prepare(db, p.sql, p.stmt, path, error)) return nullptr;
  }
  impl->self = current_process_identity();
  impl->token = random_hex(16);
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

// --- runs ----------------------------------------------------------------------------------

bool Journal::create_run(const RunRecord& run, std::string& error) {
  const auto lock = impl_->lock();
  const std::string status = run.status.empty() ? "running" : run.status;
  if (run.run_id.empty()) {
    error = "journal '" + impl_->path + "': a run needs a run id";
    return false;
  }
  if (!known_status(status)) {
    error = "run '" + run.run_id + "': unknown status '" + status +
            "' (queued, running, suspended, interrupted, budget, completed or failed)";
    return false;
  }
  const double started = run.started_at != 0 ? run.started_at : unix_now();
  const double updated = run.updated_at != 0 ? run.updated_at : started;
  Query q(impl_->insert_run.get());
  q.bind(run.run_id)
      .bind(run.procedure)
      .bind(run.source_hash)
      .bind(run.config_hash)
      .bind(run.input_json)
      .bind(status)
      .bind(started)
      .bind(updated)
      .bind(run.result_json)
      .bind(run.error)
      .bind(static_cast<std::int64_t>(run.state_journaled ? 1 : 0))
      .bind(static_cast<std::int64_t>(run.sealed ? 1 : 0))
      .bind(static_cast<std::int64_t>(run.config_scheme))
      .bind(run.config_text)
      .bind(run.origin);
  const int rc = q.step();
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    error = "run '" + run.run_id + "' already exists";
    return false;
  }
  if (rc != SQLITE_DONE) {
    error = impl_->db_error(rc);
    return false;
  }
  return true;
}

std::optional<RunRecord> Journal::find_run(const std::string& run_id, std::string& error) {
  const auto lock = impl_->lock();
  error.clear();
  Query q(impl_->find_run.get());
  q.bind(run_id);
  const int rc = q.step();
  if (rc == SQLITE_ROW) return read_run(q);
  if (rc != SQLITE_DONE) error = impl_->db_error(rc);
  return std::nullopt;
}

std::vector<RunRecord> Journal::list_runs(const std::string& status_filter, std::string& error) {
  const auto lock = impl_->lock();
  error.clear();
  if (!status_filter.empty() && !known_status(status_filter)) {
    error = "unknown run status '" + status_filter +
            "' (running, suspended, interrupted, completed or failed)";
    return {};
  }
  Query q(status_filter.empty() ? impl_->list_runs.get() : impl_->list_runs_by_status.get());
  if (!status_filter.empty()) q.bind(status_filter);
  std::vector<RunRecord> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(read_run(q));
  if (rc != SQLITE_DONE) {
    error = impl_->db_error(rc);
    return {};
  }
  return out;
}

namespace {

// Why an UPDATE of a run that must not be finished changed nothing.
std::string why_unchanged(Journal& j, const std::string& run_id) {
  std::string error;
  const auto run = j.find_run(run_id, error);
  if (!error.empty()) return error;
  if (!run) return "run '" + run_id + "' not found";
  return "run '" + run_id + "' is already " + run->status;
}

}  // namespace

bool Journal::set_status(const std::string& run_id, const std::string& status, std::string& error) {
  const auto lock = impl_->lock();
  if (status != "running" && status != "suspended" && status != "interrupted" &&
      status != "budget") {
    error = "run '" + run_id +
            "': set_status takes running, suspended, interrupted or budget, not '" + status +
            "' (finish_run ends a run)";
    return false;
  }
  {
    Query q(impl_->set_status.get());
    q.bind(run_id).bind(status).bind(unix_now());
    const int rc = q.step();
    if (rc != SQLITE_DONE) {
      error = impl_->db_error(rc);
      return false;
    }
  }
  if (sqlite3_changes(impl_->db.get()) == 1) return true;
  error = why_unchanged(*this, run_id);
  return false;
}

bool Journal::finish_run(const std::string& run_id, const std::string& status,
                         const std::string& result_json, const std::string& error_text,
                         std::string& error) {
  const auto lock = impl_->lock();
  if (status != "completed" && status != "failed") {
    error = "run '" + run_id + "': finish_run takes completed or failed, not '" + status + "'";
    return false;
  }
  {
    Query q(impl_->finish_run.get());
    q.bind(run_id).bind(status).bind(result_json).bind(error_text).bind(unix_now());
    const int rc = q.step();
    if (rc != SQLITE_DONE) {
      error = impl_->db_error(rc);
      return false;
    }
  }
  if (sqlite3_changes(impl_->db.get()) == 1) return true;
  error = why_unchanged(*this, run_id);
  return false;
}

bool Journal::note_resume(const std::string& run_id, std::int64_t entries, bool after_death,
                          int& deaths, std::string& error) {
  const auto lock = impl_->lock();
  Query q(impl_->note_resume.get());
  q.bind(run_id).bind(entries).bind(static_cast<std::int64_t>(after_death ? 1 : 0));
  const int rc = q.step();
  if (rc != SQLITE_ROW) {
    error = rc == SQLITE_DONE ? "run '" + run_id + "' not found" : impl_->db_error(rc);
    return false;
  }
  deaths = static_cast<int>(q.int64(0));
  return true;
}

namespace {

// Runs an UPDATE of one run (?1 its id, then what bind adds); false with error if none changed.
bool update_one(sqlite3* db, const std::string& path, journal_sql::Stmt& stmt,
                const std::string& run_id, std::string& error,
                const std::function<void(Query&)>& bind) {
  Query q(stmt.get());
  q.bind(run_id);
  bind(q);
  const int rc = q.step();
  if (rc != SQLITE_DONE) {
    error = journal_sql::describe(db, rc, path);
    return false;
  }
  if (sqlite3_changes(db) == 1) return true;
  error = "run '" + run_id + "' not found";
  return false;
}

}  // namespace

bool Journal::note_repeated(const std::string& run_id, std::string& error) {
  const auto lock = impl_->lock();
  const double now = unix_now();
  return update_one(impl_->db.get(), impl_->path, impl_->note_repeated, run_id, error,
                    [&](Query& q) { q.bind(now); });
}

bool Journal::set_config_hash(const std::string& run_id, const std::string& hash, int scheme,
                              const std::string& text, std::string& error) {
  const auto lock = impl_->lock();
  return update_one(
      impl_->db.get(), impl_->path, impl_->set_config_hash, run_id, error,
      [&](Query& q) { q.bind(hash).bind(static_cast<std::int64_t>(scheme)).bind(text); });
}

// --- entries -------------------------------------------------------------------------------

bool Journal::append(const std::string& run_id, const JournalEntry& entry, std::string& error) {
  const auto lock = impl_->lock();
  if (entry.method.empty()) {
    error = "run '" + run_id + "': entry " + std::to_string(entry.seq) + " has no method";
    return false;
  }
  {
    Query q(impl_->append.get());
    q.bind(run_id)
        .bind(entry.seq)
        .bind(entry.method)
        .bind(entry.request_json)
        .bind(entry.response_json)
        .bind(entry.at != 0 ? entry.at : unix_now());
    const int rc = q.step();
    if (rc != SQLITE_DONE) {
      error = impl_->db_error(rc);
      return false;
    }
  }
  if (sqlite3_changes(impl_->db.get()) == 1) return true;

  Query q(impl_->append_diagnosis.get());
  q.bind(run_id);
  const int rc = q.step();
  if (rc == SQLITE_DONE) {
    error = "run '" + run_id + "' not found";
  } else if (rc != SQLITE_ROW) {
    error = impl_->db_error(rc);
  } else if (const std::string status = q.text(0); status == "completed" || status == "failed") {
    error = "run '" + run_id + "' is " + status + ": its journal takes no more entries";
  } else {
    error = "run '" + run_id + "': cannot append entry " + std::to_string(entry.seq) +
            ", the next one is " + std::to_string(q.int64(1) + 1);
  }
  return false;
}

bool Journal::append_batch(const std::string& run_id, const std::vector<JournalEntry>& entries,
                           std::string& error) {
  const auto lock = impl_->lock();
  if (entries.empty()) return true;
  if (entries.size() == 1) return append(run_id, entries.front(), error);
  // All or none (rolled back when it goes out of scope uncommitted); a savepoint in a Batch.
  journal_sql::WriteTransaction tx(impl_->db.get(), impl_->path, impl_->in_batch);
  if (!tx.begin(error)) return false;
  for (const auto& e : entries)
    if (!append(run_id, e, error)) return false;
  return tx.commit(error);
}

bool Journal::answer(const std::string& run_id, std::int64_t seq, const std::string& response_json,
                     std::string& error) {
  const auto lock = impl_->lock();
  const std::string what = "run '" + run_id + "': entry " + std::to_string(seq);
  if (response_json.empty()) {
    error = what + ": the answer is empty";
    return false;
  }
  {
    Query q(impl_->answer.get());
    q.bind(run_id).bind(seq).bind(response_json);
    const int rc = q.step();
    if (rc != SQLITE_DONE) {
      error = impl_->db_error(rc);
      return false;
    }
  }
  if (sqlite3_changes(impl_->db.get()) == 1) return true;

  Query q(impl_->answer_diagnosis.get());
  q.bind(run_id).bind(seq);
  const int rc = q.step();
  if (rc == SQLITE_DONE) {
    error = what + " does not exist";
  } else if (rc != SQLITE_ROW) {
    error = impl_->db_error(rc);
  } else {
    error = what + " is already answered";
  }
  return false;
}

std::vector<JournalEntry> Journal::entries(const std::string& run_id, std::string& error) {
  const auto lock = impl_->lock();
  error.clear();
  Query q(impl_->entries.get());
  q.bind(run_id);
  std::vector<JournalEntry> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    JournalEntry e;
    e.seq = q.int64(0);
    e.method = q.text(1);
    e.request_json = q.text(2);
    e.response_json = q.text(3);
    e.at = q.real(4);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) {
    error = impl_->db_error(rc);
    return {};
  }
  return out;
}

bool Journal::set_checkpoint_pages(int pages, std::string& error) {
  const auto lock = impl_->lock();
  const std::string sql = "PRAGMA wal_autocheckpoint = " + std::to_string(pages);
  return journal_sql::exec(impl_->db.get(), sql.c_str(), impl_->path, error);
}

Journal::Batch::Batch(Journal& journal, std::string& error)
    : journal_(journal), lock_(journal.impl_->mutex) {
  open_ = journal_sql::exec(journal.impl_->db.get(), "BEGIN IMMEDIATE", journal.impl_->path, error);
  // Only when it began: a batch refused inside another (one transaction at a time) leaves the
  // open one's flag as it was.
  if (open_) journal.impl_->in_batch = true;
}

Journal::Batch::~Batch() {
  if (!open_) return;
  sqlite3_exec(journal_.impl_->db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  journal_.impl_->in_batch = false;
}

bool Journal::Batch::commit(std::string& error) {
  Impl& j = *journal_.impl_;
  if (!open_) {
    error = "journal '" + j.path + "': the batch was not begun";
    return false;
  }
  // An error such as a full disk makes SQLite roll the whole transaction back by itself: the
  // calls before it are gone, and COMMIT would have nothing to commit.
  if (sqlite3_get_autocommit(j.db.get()) != 0) {
    error = "journal '" + j.path +
            "': the batch was rolled back after an error; nothing in it "
            "was committed";
    return false;
  }
  // A failed commit leaves the transaction open: the destructor rolls it back.
  if (!journal_sql::exec(j.db.get(), "COMMIT", j.path, error)) return false;
  open_ = false;
  j.in_batch = false;
  lock_.unlock();
  return true;
}

bool Journal::checkpoint(std::string& error) {
  const auto lock = impl_->lock();
  const int rc = sqlite3_wal_checkpoint_v2(impl_->db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                           nullptr, nullptr);
  if (rc != SQLITE_OK) {
    error = impl_->db_error(rc);
    return false;
  }
  return true;
}

}  // namespace tactus::broker
