// The limits of one run, their built-in defaults (Tactus's: 3600 s, 2g; written here only:
// Config's settings, RunLimits and the CLI's help all take them from here), and the command
// line's limit flags, the last configuration layer (sidecars/flag_layer.cpp).
#pragma once

#include <cstdint>
#include <optional>

namespace tactus::sidecars {

inline constexpr double kDefaultTimeoutSeconds = 3600;  // sandbox.timeout
inline constexpr std::uint64_t kDefaultMemory = 2ull << 30;
inline constexpr std::uint64_t kDefaultCpuSeconds = 3600;
inline constexpr std::uint64_t kDefaultOutput = 10ull << 20;
inline constexpr std::uint64_t kDefaultInstructions = 0;  // none
inline constexpr std::uint64_t kDefaultMessage = 4ull << 20;

struct RunLimits {
  double timeout_seconds = kDefaultTimeoutSeconds;    // sandbox.timeout: wall clock, SIGKILL
  std::uint64_t memory = kDefaultMemory;              // sandbox.limits.memory: VM heap cap
  std::uint64_t cpu_seconds = kDefaultCpuSeconds;     // sandbox.limits.cpu: RLIMIT_CPU
  std::uint64_t output = kDefaultOutput;              // sandbox.limits.output: print bytes
  std::uint64_t instructions = kDefaultInstructions;  // sandbox.limits.instructions: 0 = none
  std::uint64_t message = kDefaultMessage;            // sandbox.limits.message: largest frame
};

// Floors below which the VM cannot even start or speak the protocol.
inline constexpr std::uint64_t kMinMemory = 1ull << 20;
inline constexpr std::uint64_t kMinMessage = 64ull << 10;

// --timeout, --memory, --cpu, --output-limit, --instructions, --message-limit as given.
struct LimitFlags {
  std::optional<double> timeout_seconds;
  std::optional<std::uint64_t> memory, cpu_seconds, output, instructions, message;
};

}  // namespace tactus::sidecars
