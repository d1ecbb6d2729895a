// The limits of one run. Built-in defaults here (Tactus's: 3600 s, 2g); CLI flags override
// them now, and the sidecar layers will in [config].
#pragma once

#include <cstdint>

namespace tactus::sidecars {

struct RunLimits {
  double timeout_seconds = 3600;       // sandbox.timeout: wall clock, SIGKILL
  std::uint64_t memory = 2ull << 30;   // sandbox.limits.memory: VM heap cap
  std::uint64_t cpu_seconds = 3600;    // sandbox.limits.cpu: RLIMIT_CPU
  std::uint64_t output = 10ull << 20;  // sandbox.limits.output: print bytes
  std::uint64_t instructions = 0;      // sandbox.limits.instructions: 0 = none
  std::uint64_t message = 4ull << 20;  // sandbox.limits.message: largest frame
};

// Floors below which the VM cannot even start or speak the protocol.
inline constexpr std::uint64_t kMinMemory = 1ull << 20;
inline constexpr std::uint64_t kMinMessage = 64ull << 10;

}  // namespace tactus::sidecars
