// The jailed process's main: talks to the broker on fd 3 and runs one procedure.
#pragma once

#include <cstdint>

namespace tactus::vm {

// ready -> receive "run" -> run in a fresh VM -> send "done". Returns the process exit code.
int vm_main(int fd, std::uint64_t message_limit);

// Sends {"method":"setup_failed","params":{"step":..., "errno":...}} on fd, best effort.
void report_setup_failure(int fd, const char* step, int err);

}  // namespace tactus::vm
