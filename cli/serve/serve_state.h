// The inside of tactus serve (cli/serve/serve_command.h is its interface): the Server that owns
// the HTTP loop, the runs it knows, its queue, its runner threads and its metrics. Its parts:
// run_registry.cpp (a run's life: admitted, queued, run, answered, cancelled, recovered at
// start), serve_api.cpp (the routing table, tokens, health, metrics, POST /v1/runs),
// run_routes.cpp (the routes of a run), serve_command.cpp (start, drain, stop). State is touched
// on the loop's thread only, except where a member says otherwise. Included by those files.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "broker/journal/journal.h"
#include "broker/run_session.h"
#include "broker/worker_pool.h"
#include "cli/serve/http_server.h"
#include "cli/serve/serve_metrics.h"
#include "cli/serve/work_queue.h"
#include "runtime/protocol/message.h"
#include "runtime/spawner/spawner.h"
#include "sidecars/config.h"

namespace tactus::cli::serve {

using protocol::Json;

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8750;
  std::string project;       // absolute; the server runs from it (chdir)
  std::string journal_path;  // the project's journal
  std::size_t pool = 4, max_concurrent = 4, queue = 256;
  double drain_timeout = 30;
  std::uint64_t max_body = 1 << 20;
  std::vector<std::pair<std::string, std::string>> tokens;  // secret name, value
};

// One event of a run's stream (GET /v1/runs/{id}/events).
struct RunEvent {
  std::int64_t seq;
  std::string type;  // status, log, tool_call, agent_chunk, human_request, done
  std::string data;  // one line of JSON
};

// A run this server knows in memory: accepted here, or found unfinished at start.
struct LiveRun {
  std::string run_id, procedure;  // procedure: as given, beneath the project
  // queued | running | suspended | completed | failed | cancelled | interrupted | budget
  std::string status = "queued";
  Json result, error, usage, cost, timings, pending;
  double accepted_at = 0, started_at = 0, ended_at = 0;  // unix seconds
  std::deque<RunEvent> events;
  std::int64_t next_seq = 1;
  std::size_t event_bytes = 0;
  bool events_cut = false;  // the oldest events were dropped (kMaxEventBytes)
  std::vector<std::shared_ptr<Responder>> streams;
  struct Waiter {
    std::shared_ptr<Responder> out;
    std::shared_ptr<HttpServer::Timer> timer;
    int status = 200;  // the answer's: 201 for a POST that waited
    std::map<std::string, std::string> headers;
  };
  std::vector<Waiter> waiters;
  std::shared_ptr<broker::RunStop> stop = std::make_shared<broker::RunStop>();
};

// The WAL size past which the server's journal connections checkpoint (Journal::
// set_checkpoint_pages): SQLite's own default. They stay open, so nothing reads the WAL back.
inline constexpr int kServeCheckpointPages = 1000;

// The error a cancelled run ends with, in the journal too (status failed there).
inline constexpr const char* kCancelled = "run cancelled";

// The Human.* request a suspended run waits for (the last entry, unanswered), as the API shows
// it: {request_id, method, kind, request}; null when there is none.
Json pending_request(const std::vector<broker::JournalEntry>& entries);

// An error answer: {"error": {"message"}} with status (serve_api.cpp).
void fail(Responder& out, int status, const std::string& message,
          const std::map<std::string, std::string>& headers = {});
// The body of a POST as a JSON object, or null after answering why not (serve_api.cpp).
Json json_body(const HttpRequest& req, Responder& out);

// A request's ?wait=SECONDS (0 to 300; 0 when absent), or false after answering 400.
bool wait_seconds(const HttpRequest& req, Responder& out, double& wait);

// terminal: no more events come; a waiter is answered, a stream ends.
bool terminal(const std::string& status);
// settled: a long poll (?wait=) returns: terminal, or waiting for an answer or a budget.
bool settled(const std::string& status);

class Server {
 public:
  Server(ServeOptions options, spawner::SpawnerClient& spawner);
  ~Server();
  // Fills the warm pool for the project's default profile and starts its refill thread.
  void start_pool(const sidecars::Config& config);
  // Listens, recovers the journal's unfinished runs, and serves until drained. The exit code.
  int run();

  // --- the routes (serve_api.cpp) ---
  void handle(const HttpRequest& req, std::shared_ptr<Responder> out);

 private:
  // serve_api.cpp
  bool authorized(const HttpRequest& req, Responder& out, std::string& token_name);
  void get_health(const HttpRequest& req, std::shared_ptr<Responder> out);
  void get_metrics(const HttpRequest& req, std::shared_ptr<Responder> out);
  void post_run(const HttpRequest& req, std::shared_ptr<Responder> out,
                const std::string& token_name);
  void list_runs(const HttpRequest& req, std::shared_ptr<Responder> out);
  void get_run(const HttpRequest& req, std::shared_ptr<Responder> out, const std::string& id);
  void get_events(const HttpRequest& req, std::shared_ptr<Responder> out, const std::string& id);
  void post_answer(const HttpRequest& req, std::shared_ptr<Responder> out, const std::string& id);
  void post_cancel(const HttpRequest& req, std::shared_ptr<Responder> out, const std::string& id);
  Json view(const LiveRun& run) const;
  // Answers with the run's view now (wait 0, or settled already), or once it settles, or when
  // wait seconds are over: the long poll of GET and POST ?wait= (run_routes.cpp).
  void answer_when_settled(LiveRun& run, std::shared_ptr<Responder> out, double wait,
                           int status = 200, std::map<std::string, std::string> headers = {});
  // The journal's view of a run this server does not hold, read on the admission thread and
  // sent with headers (run_routes.cpp): GET /v1/runs/{id}, and an Idempotency-Key retry that
  // waits. drain_waits: counted as an admission, so a drain answers it before it stops.
  void answer_from_journal(const std::string& id, std::shared_ptr<Responder> out,
                           std::map<std::string, std::string> headers = {},
                           bool drain_waits = false);

  // run_registry.cpp: a run's life
  struct Admission {
    std::string run_id, procedure;
    Json input;
    bool chosen = false;      // the client chose the id (run_id, or its Idempotency-Key)
    bool idempotent = false;  // by an Idempotency-Key: an existing run is the answer
    bool replay = false;
  };
  // On the admission thread: records the run as queued (or finds the one its Idempotency-Key
  // made). status: the HTTP status to answer with when it fails; error: why.
  bool admit(Admission& a, int& status, std::string& error, std::string& existing_status);
  void enqueue(const std::string& run_id);
  void dispatch();
  void execute(const std::string& run_id, std::shared_ptr<broker::RunStop> stop);  // a runner
  void add_event(LiveRun& run, const std::string& type, Json data);
  void set_status(LiveRun& run, const std::string& status);
  void settle(LiveRun& run);          // answers the waiters, ends the streams when terminal
  void answer_waiters(LiveRun& run);  // the long polls on run, with its view now
  void recover();                     // at start: the journal's unfinished runs of this server
  // On the admission thread: the journal's view of a run this server does not hold.
  std::optional<Json> journal_view(const std::string& run_id, std::string& error);
  LiveRun* find(const std::string& run_id);
  // text with the project's root cut from the paths in it (errors name files beneath it).
  std::string shown(std::string text) const;
  void forget_old();  // keeps at most kMaxRemembered finished runs in memory
  void drain(int signal);
  void stop_if_drained();
  void interrupt_runs(int signal);

  ServeOptions o_;
  spawner::SpawnerClient& spawner_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<broker::WorkerPool> pool_;
  std::thread refill_;
  std::unique_ptr<WorkQueue> admission_;      // one thread: admissions, answers, journal reads
  std::unique_ptr<broker::Journal> journal_;  // the runners' too (thread-safe)
  std::unique_ptr<WorkQueue> runners_;
  std::map<std::string, std::unique_ptr<LiveRun>> runs_;
  std::deque<std::string> queue_, finished_order_;
  std::size_t active_ = 0, admitting_ = 0;
  std::size_t event_bytes_ = 0;  // all runs' events
  bool draining_ = false, interrupted_ = false, stopping_ = false;
  double started_at_ = 0;
  Metrics metrics_;
};

}  // namespace tactus::cli::serve
