// The SQLite handles the journal is built from, owned RAII-style, and the one place that turns
// SQLite's result codes into messages a person can act on. Included only by broker/journal/*.cpp:
// it brings in sqlite3.h, which the public broker/journal/journal.h keeps out.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace tactus::broker::journal_sql {

struct CloseDb {
  // close_v2: even a statement someone forgot to finalize cannot keep the file open.
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, CloseDb>;

struct FinalizeStmt {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, FinalizeStmt>;

// Prepares sql once, for the journal's lifetime (SQLITE_PREPARE_PERSISTENT).
bool prepare(sqlite3* db, const char* sql, Stmt& out, const std::string& path, std::string& error);

// Runs sql, which returns no rows (one or more statements).
bool exec(sqlite3* db, const char* sql, const std::string& path, std::string& error);

// "journal 'PATH': ..." for result code rc on db, one line. The cases a person can act on get
// their own wording: locked, not a database, disk full, read-only, cannot open.
std::string describe(sqlite3* db, int rc, const std::string& path);

// One use of a prepared statement: bind in order, step, read columns. The statement is reset
// and its bindings cleared when the Query goes out of scope, so no statement keeps a read
// transaction open between calls (an open one pins a WAL snapshot and holds back checkpoints).
class Query {
 public:
  explicit Query(sqlite3_stmt* s) : s_(s) {}
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  // Text is bound without a copy: it must outlive the Query (hence no std::string&&).
  Query& bind(std::string_view text);
  Query& bind(const std::string&& text) = delete;
  Query& bind(const char* text) { return bind(std::string_view(text)); }
  Query& bind(double value);
  Query& bind(std::int64_t value);

  int step() { return sqlite3_step(s_); }  // SQLITE_ROW, SQLITE_DONE or an error code

  std::string text(int column) const;
  double real(int column) const { return sqlite3_column_double(s_, column); }
  std::int64_t int64(int column) const { return sqlite3_column_int64(s_, column); }
  bool is_null(int column) const { return sqlite3_column_type(s_, column) == SQLITE_NULL; }

 private:
  sqlite3_stmt* s_;
  int next_ = 1;
};

// BEGIN IMMEDIATE: takes the write lock up front, so a read-then-write decision (a lease, a
// migration) cannot be overtaken by another process between the read and the write. Rolled
// back when it goes out of scope uncommitted.
class WriteTransaction {
 public:
  // in_batch: a Journal::Batch is open on db: a savepoint, so this one's failure undoes its own
  // writes and the batch goes on; its writes commit with the batch. Otherwise BEGIN IMMEDIATE,
  // which fails loudly should a transaction be open that nobody said was.
  WriteTransaction(sqlite3* db, std::string path, bool in_batch = false)
      : db_(db), path_(std::move(path)), nested_(in_batch) {}
  ~WriteTransaction();
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;

  bool begin(std::string& error);
  bool commit(std::string& error);

 private:
  sqlite3* db_;
  std::string path_;
  bool nested_;  // a savepoint in the batch's transaction
  bool open_ = false;
};

}  // namespace tactus::broker::journal_sql
