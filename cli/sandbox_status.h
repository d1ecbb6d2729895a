// `tactus sandbox status`: what this kernel allows and which backend a run would get.
#pragma once

#include "runtime/spawner/spawner.h"

namespace tactus::cli {

// Prints the report (text, or one JSON document with json) to stdout. Returns 0 when the jail
// backend is available, 4 when a run would fail closed.
int sandbox_status_command(bool json, spawner::SpawnerClient& spawner);

}  // namespace tactus::cli
