#include "broker/journal/journal_sqlite.h"

#include <cstring>

namespace tactus::broker::journal_sql {

bool prepare(sqlite3* db, const char* sql, Stmt& out, const std::string& path, std::string& error) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  out.reset(s);
  if (rc != SQLITE_OK) {
    error = describe(db, rc, path);
    return false;
  }
  return true;
}

bool exec(sqlite3* db, const char* sql, const std::string& path, std::string& error) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    error = describe(db, rc, path);
    return false;
  }
  return true;
}

std::string describe(sqlite3* db, int rc, const std::string& path) {
  const std::string where = "journal '" + path + "': ";
  const int errno_value = db != nullptr ? sqlite3_system_errno(db) : 0;
  const std::string os_error = errno_value != 0 ? std::strerror(errno_value) : "";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return where + "locked by another process; try again when it has finished";
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return where + "file is not a database (corrupted?); move it aside to start a new journal";
    case SQLITE_FULL:
      return where + "disk full; free some space and try again";
    case SQLITE_READONLY:
      return where + "read-only; check the permissions of the file and of its directory";
    case SQLITE_CANTOPEN:
      return where + "cannot open" + (os_error.empty() ? "" : ": " + os_error);
    case SQLITE_IOERR:
      return where + "I/O error" + (os_error.empty() ? "" : ": " + os_error);
    default:
      return where + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  }
}

Query::~Query() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

Query& Query::bind(std::string_view text) {
  // A null data pointer would bind SQL NULL, which the NOT NULL columns refuse: "" is meant.
  const char* data = text.data() != nullptr ? text.data() : "";
  sqlite3_bind_text64(s_, next_++, data, text.size(), SQLITE_STATIC, SQLITE_UTF8);
  return *this;
}

Query& Query::bind(double value) {
  sqlite3_bind_double(s_, next_++, value);
  return *this;
}

Query& Query::bind(std::int64_t value) {
  sqlite3_bind_int64(s_, next_++, value);
  return *this;
}

std::string Query::text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, column));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, column)));
}

WriteTransaction::~WriteTransaction() {
  if (!open_) return;
  if (nested_) {
    sqlite3_exec(db_, "ROLLBACK TO nested; RELEASE nested", nullptr, nullptr, nullptr);
    return;
  }
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

bool WriteTransaction::begin(std::string& error) {
  if (!exec(db_, nested_ ? "SAVEPOINT nested" : "BEGIN IMMEDIATE", path_, error)) return false;
  open_ = true;
  return true;
}

bool WriteTransaction::commit(std::string& error) {
  // The destructor rolls back when this fails.
  if (!exec(db_, nested_ ? "RELEASE nested" : "COMMIT", path_, error)) return false;
  open_ = false;
  return true;
}

}  // namespace tactus::broker::journal_sql
