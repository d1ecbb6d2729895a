// The entries a run left in a test project's journal (.tactus/journal.db under dir).
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "broker/journal.h"

namespace tactus::test {

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

}  // namespace tactus::test
