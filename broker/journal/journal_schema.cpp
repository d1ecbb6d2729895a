#include "broker/journal/journal_schema.h"

#include <array>

#include "broker/journal/journal_sqlite.h"

namespace tactus::broker {
namespace {

// kMigrations[i] takes a journal from version i to version i + 1.
constexpr std::array<const char*, kJournalSchemaVersion> kMigrations = {
    // 1: runs, their entries, and who is running each.
    R"sql(
CREATE TABLE runs (
  run_id      TEXT NOT NULL PRIMARY KEY,
  procedure   TEXT NOT NULL,
  source_hash TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  input_json  TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('running', 'suspended', 'completed', 'failed')),
  started_at  REAL NOT NULL,
  updated_at  REAL NOT NULL,
  result_json TEXT NOT NULL DEFAULT '',
  error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_start ON runs (started_at);
CREATE INDEX runs_by_status ON runs (status, started_at);

-- WITHOUT ROWID: rows are stored in (run_id, seq) order, the only order they are read in, and
-- the primary key is the table's only b-tree, so an append writes one.
CREATE TABLE entries (
  run_id        TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  seq           INTEGER NOT NULL CHECK (seq >= 1),
  method        TEXT NOT NULL,
  request_json  TEXT NOT NULL,
  response_json TEXT NOT NULL,  -- '' while pending (a human.* request not yet answered)
  at            REAL NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- At most one live process per run (see Journal::claim).
CREATE TABLE leases (
  run_id     TEXT NOT NULL PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
  pid        INTEGER NOT NULL,
  start_time INTEGER NOT NULL,  -- /proc/PID/stat starttime: tells a reused pid apart
  boot_id    TEXT NOT NULL,
  token      TEXT NOT NULL,     -- which Journal object holds it
  claimed_at REAL NOT NULL
);
)sql",
    // 2: whether a run journals its state table as entries ("state"). Runs journaled before
    // version 2 do not, and their resumes must not send it (it would diverge from their entries).
    R"sql(
ALTER TABLE runs ADD COLUMN state_journaled INTEGER NOT NULL DEFAULT 0;
)sql",
    // 3: where the last resume began (the number of entries it found) and how many resumes in a
    // row died there, so a run whose resume keeps dying at one point is failed, not retried; and
    // whether its secrets are sealed as placeholders (broker/journal/journal_secrets.h): only then
    // are
    // placeholders given back on replay (an older run's text is not unsealed).
    R"sql(
ALTER TABLE runs ADD COLUMN resume_seq INTEGER NOT NULL DEFAULT -1;
ALTER TABLE runs ADD COLUMN resume_deaths INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
)sql",
    // 4: the status "interrupted" (a run stopped by SIGINT or SIGTERM: resumable, not a death);
    // which configuration fingerprint a run's config_hash is (1: every `config show` line; 2:
    // only the settings away from their defaults, broker/config_identity.h; a run of scheme 1
    // is moved to 2 by its first resume) and, from scheme 2, the settings it covers, so that a
    // refused resume can say which changed; and how many requests in flight at a death or an
    // interrupt its resumes sent again. A CHECK cannot be altered, so the table is rebuilt
    // (SQLite's documented procedure; open() runs migrations with foreign keys off, so dropping
    // the old table cascades to nothing).
    R"sql(
CREATE TABLE runs_v4 (
  run_id          TEXT NOT NULL PRIMARY KEY,
  procedure       TEXT NOT NULL,
  source_hash     TEXT NOT NULL,
  config_hash     TEXT NOT NULL,
  input_json      TEXT NOT NULL,
  status          TEXT NOT NULL
                  CHECK (status IN ('running', 'suspended', 'interrupted', 'completed', 'failed')),
  started_at      REAL NOT NULL,
  updated_at      REAL NOT NULL,
  result_json     TEXT NOT NULL DEFAULT '',
  error           TEXT NOT NULL DEFAULT '',
  state_journaled INTEGER NOT NULL DEFAULT 0,
  resume_seq      INTEGER NOT NULL DEFAULT -1,
  resume_deaths   INTEGER NOT NULL DEFAULT 0,
  sealed          INTEGER NOT NULL DEFAULT 0,
  config_scheme   INTEGER NOT NULL DEFAULT 1,
  repeated        INTEGER NOT NULL DEFAULT 0,
  config_text     TEXT NOT NULL DEFAULT ''  -- scheme 2: the settings fingerprinted, masked
);
INSERT INTO runs_v4 (rowid, run_id, procedure, source_hash, config_hash, input_json, status,
                     started_at, updated_at, result_json, error, state_journaled, resume_seq,
                     resume_deaths, sealed)
  SELECT rowid, run_id, procedure, source_hash, config_hash, input_json, status, started_at,
         updated_at, result_json, error, state_journaled, resume_seq, resume_deaths, sealed
  FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v4 RENAME TO runs;
CREATE INDEX runs_by_start ON runs (started_at);
CREATE INDEX runs_by_status ON runs (status, started_at);
)sql",
    // 5: the status "budget" (a run stopped by its budget: resumable under a raised one).
    // The table is rebuilt again, as for 4.
    R"sql(
CREATE TABLE runs_v5 (
  run_id          TEXT NOT NULL PRIMARY KEY,
  procedure       TEXT NOT NULL,
  source_hash     TEXT NOT NULL,
  config_hash     TEXT NOT NULL,
  input_json      TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('running', 'suspended', 'interrupted',
                                                  'budget', 'completed', 'failed')),
  started_at      REAL NOT NULL,
  updated_at      REAL NOT NULL,
  result_json     TEXT NOT NULL DEFAULT '',
  error           TEXT NOT NULL DEFAULT '',
  state_journaled INTEGER NOT NULL DEFAULT 0,
  resume_seq      INTEGER NOT NULL DEFAULT -1,
  resume_deaths   INTEGER NOT NULL DEFAULT 0,
  sealed          INTEGER NOT NULL DEFAULT 0,
  config_scheme   INTEGER NOT NULL DEFAULT 1,
  repeated        INTEGER NOT NULL DEFAULT 0,
  config_text     TEXT NOT NULL DEFAULT ''
);
INSERT INTO runs_v5 (rowid, run_id, procedure, source_hash, config_hash, input_json, status,
                     started_at, updated_at, result_json, error, state_journaled, resume_seq,
                     resume_deaths, sealed, config_scheme, repeated, config_text)
  SELECT rowid, run_id, procedure, source_hash, config_hash, input_json, status, started_at,
         updated_at, result_json, error, state_journaled, resume_seq, resume_deaths, sealed,
         config_scheme, repeated, config_text
  FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v5 RENAME TO runs;
CREATE INDEX runs_by_start ON runs (started_at);
CREATE INDEX runs_by_status ON runs (status, started_at);
)sql",
    // 6: the status "queued" (a run tactus serve accepted and recorded before answering, not
    // started yet) and who accepted a run (origin: "" the command line, "serve" tactus serve).
    // The table is rebuilt again, as for 4.
    R"sql(
CREATE TABLE runs_v6 (
  run_id          TEXT NOT NULL PRIMARY KEY,
  procedure       TEXT NOT NULL,
  source_hash     TEXT NOT NULL,
  config_hash     TEXT NOT NULL,
  input_json      TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'suspended', 'interrupted',
                                                  'budget', 'completed', 'failed')),
  started_at      REAL NOT NULL,
  updated_at      REAL NOT NULL,
  result_json     TEXT NOT NULL DEFAULT '',
  error           TEXT NOT NULL DEFAULT '',
  state_journaled INTEGER NOT NULL DEFAULT 0,
  resume_seq      INTEGER NOT NULL DEFAULT -1,
  resume_deaths   INTEGER NOT NULL DEFAULT 0,
  sealed          INTEGER NOT NULL DEFAULT 0,
  config_scheme   INTEGER NOT NULL DEFAULT 1,
  repeated        INTEGER NOT NULL DEFAULT 0,
  config_text     TEXT NOT NULL DEFAULT '',
  origin          TEXT NOT NULL DEFAULT ''
);
INSERT INTO runs_v6 (rowid, run_id, procedure, source_hash, config_hash, input_json, status,
                     started_at, updated_at, result_json, error, state_journaled, resume_seq,
                     resume_deaths, sealed, config_scheme, repeated, config_text)
  SELECT rowid, run_id, procedure, source_hash, config_hash, input_json, status, started_at,
         updated_at, result_json, error, state_journaled, resume_seq, resume_deaths, sealed,
         config_scheme, repeated, config_text
  FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v6 RENAME TO runs;
CREATE INDEX runs_by_start ON runs (started_at);
CREATE INDEX runs_by_status ON runs (status, started_at);
)sql",
};

bool read_version(sqlite3* db, const std::string& path, int& version, std::string& error) {
  journal_sql::Stmt stmt;
  if (!journal_sql::prepare(db, "PRAGMA user_version", stmt, path, error)) return false;
  journal_sql::Query q(stmt.get());
  const int rc = q.step();
  if (rc != SQLITE_ROW) {
    error = journal_sql::describe(db, rc, path);
    return false;
  }
  version = static_cast<int>(q.int64(0));
  return true;
}

bool refuse_newer(int version, const std::string& path, std::string& error) {
  if (version <= kJournalSchemaVersion) return true;
  error = "journal '" + path + "': written by a newer tactus (schema version " +
          std::to_string(version) + ", this tactus knows up to " +
          std::to_string(kJournalSchemaVersion) + "); upgrade tactus to use it";
  return false;
}

}  // namespace

bool check_journal_version(sqlite3* db, const std::string& path, std::string& error) {
  int version = 0;
  return read_version(db, path, version, error) && refuse_newer(version, path, error);
}

bool migrate_journal(sqlite3* db, const std::string& path, std::string& error) {
  int version = 0;
  if (!read_version(db, path, version, error) || !refuse_newer(version, path, error)) return false;
  if (version == kJournalSchemaVersion) return true;  // the usual case: no write lock taken

  journal_sql::WriteTransaction tx(db, path);
  if (!tx.begin(error)) return false;
  // Again under the write lock: another process may have migrated since the first read.
  if (!read_version(db, path, version, error) || !refuse_newer(version, path, error)) return false;
  for (int v = version; v < kJournalSchemaVersion; ++v) {
    if (!journal_sql::exec(db, kMigrations[v], path, error)) return false;
  }
  const std::string set_version = "PRAGMA user_version = " + std::to_string(kJournalSchemaVersion);
  if (!journal_sql::exec(db, set_version.c_str(), path, error)) return false;
  return tx.commit(error);
}

}  // namespace tactus::broker
