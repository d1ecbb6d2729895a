// The journal's hot path: Journal::append, which the broker calls on every Host.call before it
// answers the VM. Appends N entries of a realistic size (a file.read request and its answer,
// about 200 bytes of JSON together) to one run of a fresh journal and times each call.
//
//   tactus_bench_journal [N=10000] [--dir DIR] [--checkpoint-every K]
//
// DIR (default: a new directory under $TMPDIR or /tmp, removed afterwards) decides the
// filesystem measured, which matters: each append is a write() to the WAL file. With
// --checkpoint-every K, Journal::checkpoint() runs after every K appends, untimed, as a session
// would run it while waiting for a model; without it, SQLite's automatic checkpoint (two
// fsyncs, every ~1000 appends) lands inside an append and shows in p99.9 and max. Prints the
// median, p99, p99.9 and max microseconds per append on stdout; details go to stderr.
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "broker/journal/journal.h"

namespace {

using Clock = std::chrono::steady_clock;

int fail(const std::string& what) {
  std::fprintf(stderr, "tactus_bench_journal: %s\n", what.c_str());
  return 1;
}

std::string filesystem_type(const std::string& dir) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0x01021994:
      return "tmpfs (memory only: not what a journal on disk costs)";
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794c7630:
      return "overlayfs";
    default:
      return "other";
  }
}

double percentile(const std::vector<double>& sorted, double p) {
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  long n = 10000, checkpoint_every = 0;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--checkpoint-every" && i + 1 < argc) {
      checkpoint_every = std::strtol(argv[++i], nullptr, 10);
      if (checkpoint_every <= 0) return fail("--checkpoint-every takes a positive number");
    } else if (n = std::strtol(arg.c_str(), nullptr, 10); n <= 0) {
      return fail("usage: tactus_bench_journal [N=10000] [--dir DIR] [--checkpoint-every K]");
    }
  }
  bool remove_dir = false;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr ? tmp : "/tmp") + "/tactus-journal-bench.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return fail("cannot create a directory in " + tmpl);
    dir = tmpl;
    remove_dir = true;
  }
  const std::string path = dir + "/journal.db";

  int status = 0;
  {
    std::string error;
    auto journal = tactus::broker::Journal::open(path, error);
    if (!journal) return fail(error);
    tactus::broker::RunRecord run;
    run.run_id = "bench-" + std::to_string(::getpid());
    run.procedure = "/home/user/project/researcher.tac";
    run.input_json = R"({"topic":"journal benchmarks"})";
    if (!journal->create_run(run, error)) return fail(error);

    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n));
    std::size_t bytes = 0;
    for (long seq = 1; seq <= n; ++seq) {
      tactus::broker::JournalEntry e;
      e.seq = seq;
      e.method = "host.call";
      e.request_json = R"({"args":{"max_bytes":65536,"path":"notes/2024/q3-)" +
                       std::to_string(seq) + R"(.md"},"name":"file.read"})";
      e.response_json = R"({"result":{"bytes":1834,"content":"# Q3 notes\n\nRevenue grew )" +
                        std::to_string(seq % 97) +
                        R"(% on the quarter; see the table below.","truncated":false}})";
      bytes += e.request_json.size() + e.response_json.size();
      const auto t0 = Clock::now();
      const bool ok = journal->append(run.run_id, e, error);
      const auto t1 = Clock::now();
      if (!ok) return fail(error);
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      if (checkpoint_every > 0 && seq % checkpoint_every == 0 && !journal->checkpoint(error))
        return fail(error);
    }
    std::sort(us.begin(), us.end());
    const std::string checkpoints =
        checkpoint_every > 0
            ? "checkpoint() every " + std::to_string(checkpoint_every) + " appends, untimed"
            : "automatic checkpoints only";
    std::fprintf(stderr,
                 "tactus_bench_journal: %ld appends of %.0f bytes of JSON on average to %s "
                 "(filesystem: %s), %s\n",
                 n, static_cast<double>(bytes) / static_cast<double>(n), path.c_str(),
                 filesystem_type(dir).c_str(), checkpoints.c_str());
    std::printf("median %.2f us, p99 %.2f us, p99.9 %.2f us, max %.2f us per append\n",
                percentile(us, 0.5), percentile(us, 0.99), percentile(us, 0.999), us.back());
    if (journal->entries(run.run_id, error).size() != static_cast<std::size_t>(n)) {
      status = fail("the journal does not hold the " + std::to_string(n) + " entries: " + error);
    }
  }
  if (remove_dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return status;
}
