// The entries a run left in a test project's journal (.tactus/journal.db under dir), and raw
// SQL on a journal for tests that build an older one.
#pragma once

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <string>
#include <vector>

#include "broker/journal/journal.h"
#include "broker/sha256.h"
#include "tests/support/cli_runner.h"

namespace tactus::test {

// Runs statements on the database at path; returns the first column of the last row.
inline std::string sql(const std::string& path, const std::string& statements) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  std::string last;
  char* message = nullptr;
  const int rc = sqlite3_exec(
      db, statements.c_str(),
      [](void* out, int, char** values, char**) {
        *static_cast<std::string*>(out) = values[0] ? values[0] : "";
        return 0;
      },
      &last, &message);
  const std::string error = message ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  INFO(error);
  REQUIRE(rc == SQLITE_OK);
  return last;
}

inline std::vector<broker::JournalEntry> project_journal_entries(const std::string& dir,
                                                                 const std::string& run_id) {
  std::string error;
  auto j = broker::Journal::open(dir + "/.tactus/journal.db", error);
  INFO(error);
  REQUIRE(j);
  auto entries = j->entries(run_id, error);
  INFO(error);
  REQUIRE(error.empty());
  return entries;
}

// The configuration fingerprint a tactus before schema 4 recorded for procedure tac (scheme 1:
// every `config show` line cut before its origin, journal.max_bytes left out), from this
// tactus's `config show` less the settings scheme 1 never had. Without with_disk_workspace,
// also less sandbox.limits.disk and sandbox.workspace (a tactus from before they existed).
inline std::string scheme1_config_hash(const std::string& dir, const std::string& tac,
                                       bool with_disk_workspace) {
  const CliRun shown = run_tactus_in(dir, {"config", "show", tac});
  REQUIRE(shown.exit_code == 0);
  std::vector<std::string> dropped = {"journal.max_bytes:",
                                      "tools.http.idempotency_key:",
                                      "audit.max_line:",
                                      "audit.max_bytes:",
                                      "budget.",
                                      "telemetry.",
                                      "default_model:",
                                      "default_provider:",
                                      "default_toolsets:"};
  if (!with_disk_workspace) {
    dropped.push_back("sandbox.limits.disk:");
    dropped.push_back("sandbox.workspace:");
  }
  broker::Sha256 h;
  std::size_t start = 0;
  while (start < shown.out.size()) {
    std::size_t end = shown.out.find('\n', start);
    if (end == std::string::npos) end = shown.out.size();
    std::string line = shown.out.substr(start, end - start);
    start = end + 1;
    bool skip = false;
    for (const auto& d : dropped) skip = skip || line.rfind(d, 0) == 0;
    if (skip) continue;
    if (const auto cut = line.find("  # "); cut != std::string::npos) line.resize(cut);
    h.update(line);
    h.update("\n");
  }
  return h.hex_digest();
}

}  // namespace tactus::test
