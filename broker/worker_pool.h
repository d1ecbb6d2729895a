// Backend pool: N fully jailed, idle, one-shot workers forked ahead of demand. A worker is a jail
// that finished its recipe and reported ready; a job is handed to it as the run message on fd 3,
// after which it runs exactly that job and exits. Workers older than max_idle are replaced.
// Thread-safe: runs on many threads take workers while one thread refills (tactus serve).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "broker/run_session.h"

namespace tactus::broker {

class WorkerPool {
 public:
  // profile decides the workers' spawn request (backend jail and its OS limits); only a run
  // whose spawn request is the same can use them.
  WorkerPool(spawner::SpawnerClient& spawner, const RunRequest& profile, std::size_t size,
             std::chrono::milliseconds max_idle);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Spawns workers until `size` are idle and ready (call off the critical path: after a run,
  // or before the first). False with error if a worker cannot be had. Spawns outside the
  // lock: runs take workers meanwhile.
  bool fill(std::string& error);
  // Waits until a worker was taken (the pool has room), stop() was called, or timeout passed.
  // False once stopped.
  bool wait_for_room(std::chrono::milliseconds timeout);
  // Ends wait_for_room for good.
  void stop();

  // Runs request on an idle worker; with none that matches, on a fresh jail (as run_procedure).
  // timings.handoff_ms is set for a pooled run: from here until the run message was written.
  RunResult run(const RunRequest& request, const tools::ToolRegistry& tools, OutputSink& out);

  std::size_t idle() const;
  std::size_t retired_stale() const;

 private:
  struct Worker {
    UniqueFd channel, pidfd;
    std::chrono::steady_clock::time_point born;
    ReadyChild ready;
  };
  bool spawn_worker(std::string& error);
  void retire(Worker& w);

  spawner::SpawnerClient& spawner_;
  spawner::SpawnRequest profile_;
  std::size_t size_;
  std::chrono::milliseconds max_idle_;
  mutable std::mutex m_;
  std::condition_variable room_;
  bool stopped_ = false;
  std::deque<Worker> idle_;
  std::size_t retired_stale_ = 0;
};

}  // namespace tactus::broker
