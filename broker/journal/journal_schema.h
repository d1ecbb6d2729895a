// The journal's tables and their migrations. PRAGMA user_version is the schema version: 0 for
// a new file, then the number of the last migration applied. A migration is only ever added,
// never edited, so every journal a released tactus wrote can be brought up to date.
#pragma once

#include <string>

struct sqlite3;

namespace tactus::broker {

inline constexpr int kJournalSchemaVersion = 6;

// Reads the schema version, refusing a journal written by a newer tactus (whose tables this one
// would misread) without writing anything to it.
bool check_journal_version(sqlite3* db, const std::string& path, std::string& error);

// Applies the migrations the file lacks, in one transaction (a concurrent opener waits for it,
// then finds nothing to do).
bool migrate_journal(sqlite3* db, const std::string& path, std::string& error);

}  // namespace tactus::broker
