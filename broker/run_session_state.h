// The inside of one run session (broker/run_session.h is its interface): the Session that
// speaks the protocol with one child. Its I/O, state machine and dispatch table are in
// run_session.cpp; what it does for each method the VM sends is in run_requests.cpp. Included
// by those two files only (it brings asio).
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "broker/run_session.h"
#include "runtime/protocol/frame.h"
#include "runtime/protocol/methods.h"
#include "tools/interrupt.h"

namespace tactus::broker {

// Reads a child's frames, answers its requests through the routes of run_session.cpp, journals
// a durable run's answers in the order docs/durability.md sets, and records what happened
// (ChildOutcome) for run_result.cpp to classify.
class Session {
 public:
  using Clock = std::chrono::steady_clock;
  using Message = protocol::Message;

  Session(asio::io_context& io, UniqueFd channel, UniqueFd pidfd, const RunRequest& req,
          const tools::ToolRegistry& tools, OutputSink& out);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  void start(const ReadyChild* ready);
  RunResult finish(RunResult r);

  Clock::time_point ready_at_{}, run_sent_at_{}, done_at_{};
  double handoff_ms_ = -1;

  // The routes' handlers (run_requests.cpp): one per method the VM sends.
  void on_ready(const Message& m);
  void on_setup_times(const Message& m);
  void on_setup_failed(const Message& m);
  void on_state(const Message& m);
  void on_print(const Message& m);
  void on_log(const Message& m);
  void on_done(const Message& m);
  void on_host_call(const Message& m);
  void on_llm_chat(const Message& m);
  void on_module_load(const Message& m);
  void on_time_now(const Message& m);
  void on_time_clock(const Message& m);
  void on_random_seed(const Message& m);
  void on_checkpoint(const Message& m);
  void on_checkpoint_result(const Message& m);
  void on_human_request(const Message& m) {
    if (!refused_by_mode(m)) on_human(m, false);
  }
  void on_trace(const Message& m);

 private:
  enum class Phase { awaiting_ready, running, finished };

  // The I/O and the state machine (run_session.cpp).
  void arm_read();
  void on_data(std::size_t n);
  void on_eof();
  void handle_frame(const std::string& payload);
  void handle_running(const Message& m);
  void reply(const std::string& payload);
  void flush();
  void on_exit();
  void maybe_stop();
  void kill_child();
  void close_channel();
  void stop_with_error(std::string message);
  void stop_interrupted();
  void violate(std::string why);
  void stop_over_budget(std::string why);

  // What answering takes (run_requests.cpp).
  void send_run();
  bool admit(const Message& m, const protocol::MethodSpec& spec);
  bool refused_by_mode(const Message& m);
  bool within_budget(const Message& m);
  void respond(const Message& m, const std::string& payload);
  std::string answer(std::int64_t id, const std::string& what, tools::ToolOutcome& r);
  tools::CallContext call_context(const std::string& tool);
  void audit(const std::string& name, const protocol::Json& args, const tools::ToolOutcome& r,
             double ms, const protocol::Json& spend = protocol::Json());
  bool count_output(std::size_t bytes);
  bool ready_to_write();
  void check_output();
  void on_human(const Message& m, bool already_journaled);
  void on_seccomp_report(const protocol::Json& p);
  bool journals_state() const { return req_.exchanges && req_.exchanges->journals_state(); }
  void emit(protocol::Json event);

  const RunRequest& req_;
  const tools::ToolRegistry& tools_;
  OutputSink& out_;
  asio::posix::stream_descriptor channel_;
  asio::posix::stream_descriptor pidfd_;
  // Declared after pidfd_: released before it closes.
  tools::KillOnInterrupt kill_on_interrupt_;
  asio::steady_timer timer_;
  protocol::FrameDecoder decoder_;
  std::array<char, 64 * 1024> read_buf_;
  std::string out_buf_;
  std::size_t out_pos_ = 0;
  bool write_armed_ = false;

  Phase phase_ = Phase::awaiting_ready;
  Clock::time_point started_{};
  bool channel_open_ = true, exited_ = false, killed_ = false;
  ChildOutcome o_;
  std::uint64_t output_used_ = 0;
  std::int64_t requests_ = 0;  // host.calls so far (names them when there is no journal)
  // The output cap the budget set for the model request being answered (within_budget).
  std::optional<std::int64_t> output_cap_;
  bool setup_timed_ = false;
  std::vector<std::pair<std::string, long>> setup_steps_;
};

inline double ms_between(Session::Clock::time_point a, Session::Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace tactus::broker
