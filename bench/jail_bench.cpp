// The jail's per-run costs as a long-lived server sees them, for bench/run:
//
//   tactus_bench_jail [WARMUP=20] [RUNS=300] [POOL_RUNS=300] [SAMPLES_FILE]
//
// a. Warm jail setup: WARMUP, then RUNS fresh jailed runs of `return 1` through
//    broker::run_procedure, with a spawner that has long finished its one-time preparation (the
//    warm-up runs wait for it if it has not). Reports spawn_ms + ready_ms (fork -> ready),
//    spawn_ms, ready_ms and total_ms.
// b. Pool hand-off: a WorkerPool of 4 with the same request; POOL_RUNS times fill() (not timed),
//    then run(). Reports timings.handoff_ms and total_ms.
// c. For reading (b): the broker's encoding and send() of the same run message to a process
//    blocked in read() on the other end of a socketpair (handoff_ms ends just before that).
//
// With SAMPLES_FILE, every measured run's figures go there too, one line each, for a closer look:
// `fresh I spawn_ms ready_ms run_ms total_ms` and `pooled I handoff_ms run_ms total_ms`.
//
// Prints `key value` lines on stdout (milliseconds unless the key says otherwise); details and
// failures go to stderr. Exits non-zero if any run is not status ok with result 1, or a pooled
// run did not get a pooled worker.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "broker/run_session.h"
#include "broker/worker_pool.h"
#include "runtime/protocol/frame.h"
#include "runtime/protocol/message.h"
#include "runtime/spawner/spawner.h"

using namespace tactus;

namespace {

using Clock = std::chrono::steady_clock;

struct NullSink : broker::OutputSink {
  void print(std::string_view) override {}
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "tactus_bench_jail: %s\n", what.c_str());
  std::exit(1);
}

int positive_arg(int argc, char** argv, int i, int fallback) {
  if (argc <= i) return fallback;
  char* end = nullptr;
  const long v = std::strtol(argv[i], &end, 10);
  if (*end != '\0' || v <= 0 || v > 1000000) fail(std::string("bad count '") + argv[i] + "'");
  return static_cast<int>(v);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest rank: the smallest value with at least 90% of the values at or below it.
double p90(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(0.9 * static_cast<double>(v.size())));
  return v[std::max<std::size_t>(rank, 1) - 1];
}

void report(const char* key, const std::vector<double>& v) {
  std::printf("%s_median_ms %.6f\n%s_p90_ms %.6f\n", key, median(v), key, p90(v));
}

void check(const broker::RunResult& r, const char* what, int i) {
  if (r.status != broker::RunStatus::ok || r.result != 1)
    fail(std::string(what) + " run " + std::to_string(i) + ": status " +
         broker::to_string(r.status) + ": " + r.message);
  if (r.timings.setup_steps_us.empty() || r.timings.setup_steps_us.back().first != "seccomp")
    fail(std::string(what) + " run " + std::to_string(i) + " has no seccomp step: not jailed?");
}

// c. The run message as Session::send_run builds it (same fields and limits), encoded, framed
// and sent to a forked process blocked in read(), which acknowledges each frame with one byte.
std::vector<double> run_message_sends(const broker::RunRequest& req, int warmup, int runs) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair failed");
  const pid_t pid = ::fork();
  if (pid < 0) fail("fork failed");
  if (pid == 0) {
    ::close(sv[0]);
    protocol::FrameDecoder decoder(req.limits.message);
    std::string payload;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(sv[1], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(0);
      decoder.feed(buf, static_cast<std::size_t>(n));
      while (decoder.next(payload))
        if (::write(sv[1], "k", 1) != 1) ::_exit(1);
    }
  }
  ::close(sv[1]);
  const protocol::Json limits = {{"memory", req.limits.memory},
                                 {"output", req.limits.output},
                                 {"instructions", req.limits.instructions}};
  std::vector<double> out;
  for (int i = 0; i < warmup + runs; ++i) {
    const auto t0 = Clock::now();
    std::string frame;
    protocol::append_frame(
        frame, protocol::make_notification("run", protocol::Json{{"source", req.source},
                                                                 {"chunkname", req.chunkname},
                                                                 {"input", req.input},
                                                                 {"limits", limits}}));
    if (::send(sv[0], frame.data(), frame.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(frame.size()))
      fail("send of the run message failed");
    const auto t1 = Clock::now();
    char ack;
    if (::read(sv[0], &ack, 1) != 1) fail("no acknowledgement of the run message");
    if (i >= warmup) out.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  ::close(sv[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // First, before any thread exists (and as tactus does): the spawner, preparing for jails.
  spawner::SpawnerClient spawner = spawner::SpawnerClient::fork_spawner(spawner::Backend::jail);

  const int warmup = positive_arg(argc, argv, 1, 20);
  const int runs = positive_arg(argc, argv, 2, 300);
  const int pool_runs = positive_arg(argc, argv, 3, 300);
  constexpr std::size_t kPoolSize = 4;
  FILE* samples = nullptr;
  if (argc > 4 && !(samples = std::fopen(argv[4], "w")))
    fail(std::string("cannot write ") + argv[4] + ": " + std::strerror(errno));

  tools::ToolRegistry tools;
  NullSink sink;
  broker::RunRequest req;
  req.run_id = "bench";
  req.source = "return 1";
  req.chunkname = "@bench.tac";
  req.backend = spawner::Backend::jail;

  // a. Fresh jails from a warm spawner.
  std::vector<double> setup, spawn, ready, total;
  for (int i = 0; i < warmup + runs; ++i) {
    const broker::RunResult r = broker::run_procedure(spawner, req, tools, sink);
    check(r, "fresh", i);
    if (i < warmup) continue;
    setup.push_back(r.timings.spawn_ms + r.timings.ready_ms);
    spawn.push_back(r.timings.spawn_ms);
    ready.push_back(r.timings.ready_ms);
    total.push_back(r.timings.total_ms);
    if (samples)
      std::fprintf(samples, "fresh %d %.6f %.6f %.6f %.6f\n", i - warmup, r.timings.spawn_ms,
                   r.timings.ready_ms, r.timings.run_ms, r.timings.total_ms);
  }
  std::printf("warm_warmup %d\nwarm_runs %d\n", warmup, runs);
  report("warm_setup", setup);
  report("warm_spawn", spawn);
  report("warm_ready", ready);
  report("warm_total", total);

  // b. The pool: refilled before every run (not timed), so the run always finds an idle worker.
  broker::WorkerPool pool(spawner, req, kPoolSize, std::chrono::minutes(10));
  std::vector<double> handoff, pool_total;
  std::string error;
  for (int i = 0; i < pool_runs; ++i) {
    if (!pool.fill(error)) fail("pool fill: " + error);
    const broker::RunResult r = pool.run(req, tools, sink);
    check(r, "pooled", i);
    if (r.timings.handoff_ms < 0) fail("pooled run " + std::to_string(i) + " got a fresh jail");
    handoff.push_back(r.timings.handoff_ms);
    pool_total.push_back(r.timings.total_ms);
    if (samples)
      std::fprintf(samples, "pooled %d %.6f %.6f %.6f\n", i, r.timings.handoff_ms, r.timings.run_ms,
                   r.timings.total_ms);
  }
  std::printf("pool_size %zu\npool_runs %d\n", kPoolSize, pool_runs);
  report("pool_handoff", handoff);
  report("pool_total", pool_total);
  std::printf("fresh_total_median_ms %.6f\n", median(total));

  // c. What handoff_ms leaves out: encoding and writing the run message.
  report("runmsg_send", run_message_sends(req, warmup, runs));
  if (samples && std::fclose(samples) != 0) fail("cannot write the samples file");
  return 0;
}
