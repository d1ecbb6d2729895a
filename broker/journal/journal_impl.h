// Journal's state, shared by broker/journal/journal.cpp (runs, entries) and
// broker/journal/journal_lease.cpp (claim, release). Internal: includes sqlite3.h through
// journal_sqlite.h.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "broker/journal/journal.h"
#include "broker/journal/journal_sqlite.h"
#include "broker/journal/process_identity.h"

namespace tactus::broker {

struct Journal::Impl {
  std::string path;
  journal_sql::Db db;
  // Prepared once at open. Declared after db, so they are finalized before it closes.
  journal_sql::Stmt insert_run, find_run, list_runs, list_runs_by_status, set_status, finish_run;
  journal_sql::Stmt append, append_diagnosis, answer, answer_diagnosis, entries;
  journal_sql::Stmt lease_holder, lease_take, lease_drop, note_resume, note_repeated;
  journal_sql::Stmt set_config_hash;
  ProcessIdentity self;
  std::string token;           // random, per Journal: which leases are ours
  std::set<std::string> held;  // run ids whose lease we hold, released by ~Journal
  // Each call holds it (Journal is thread-safe); a Batch holds it from begin to end, so the
  // calls of other threads wait for the batch rather than join it. Recursive: a Batch's own
  // calls, and calls that call others, take it again.
  std::recursive_mutex mutex;
  bool in_batch = false;  // a Batch is open: a call's own transaction is a savepoint in it
  std::unique_lock<std::recursive_mutex> lock() { return std::unique_lock(mutex); }

  // A failure of SQLite as one line naming the file ("run 'ID' ..." errors are made by hand).
  std::string db_error(int rc) const { return journal_sql::describe(db.get(), rc, path); }
};

double unix_now();

}  // namespace tactus::broker
