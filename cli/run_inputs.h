// What a run reads from the command line's files (cli/run_inputs.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "cli/args.h"
#include "runtime/protocol/message.h"

namespace tactus::cli {

// The procedure's source: a regular file of at most max bytes, text (a precompiled chunk is
// refused). false: error is one line.
bool read_source(const std::string& path, std::uint64_t max, std::string& text, std::string& error);

// A JSON file given on the command line (--input, --mock-config): a regular file of at most max
// bytes holding one JSON object. flag names it in errors.
bool read_json_file(const std::string& path, const std::string& flag, std::uint64_t max,
                    protocol::Json& out, std::string& error);

// The run's input: --input FILE.json, then each --param k=v over it (strings; the procedure's
// schema converts them).
bool read_input(const CliOptions& o, std::uint64_t max, protocol::Json& input, std::string& error);

}  // namespace tactus::cli
