// The broker against children that misbehave: every class of bad frame ends that child, is
// reported as a typed result, and leaves the broker able to serve the next run.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <functional>

#include "broker/run_session.h"
#include "broker/run_trace.h"
#include "runtime/protocol/frame.h"

using namespace tactus;
using broker::RunStatus;

namespace {

struct NullSink : broker::OutputSink {
  std::vector<std::string> lines;
  void print(std::string_view line) override { lines.emplace_back(line); }
};

void write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

std::string frame(const std::string& payload) {
  std::string out;
  protocol::append_frame(out, payload);
  return out;
}

const std::string kReady = frame(R"({"method":"ready","params":{}})");

// Forks a child of this process that runs script on its end of a socketpair, then serves it.
broker::RunResult serve_fake_child(const std::function<void(int)>& script, double timeout_s = 5,
                                   const std::function<void(broker::RunRequest&)>& adjust = {}) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(sv[0]);
    for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE})
      ::signal(sig, SIG_DFL);  // not Catch's
    script(sv[1]);
    ::_exit(0);
  }
  ::close(sv[1]);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  REQUIRE(pidfd >= 0);
  broker::RunRequest req;
  req.run_id = "test";
  req.source = "return 1";
  req.chunkname = "@fake.tac";
  req.limits.message = 64 * 1024;
  req.limits.timeout_seconds = timeout_s;
  if (adjust) adjust(req);
  NullSink sink;
  tools::ToolRegistry tools;
  return broker::serve_child(UniqueFd(sv[0]), UniqueFd(pidfd), req, tools, sink);
}

// Reads until EOF or n bytes, so the fake child sees what the broker sent.
std::string read_some(int fd) {
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

void expect_violation(const broker::RunResult& r, const std::string& fragment) {
  INFO("message: " << r.message);
  CHECK(r.status == RunStatus::violation);
  CHECK(r.violation.find(fragment) != std::string::npos);
  CHECK(broker::exit_code(r.status) == 4);
}

}  // namespace

TEST_CASE("broker: a well-behaved fake child gets its run and its answers", "[broker]") {
  const auto r = serve_fake_child([](int fd) {
    write_all(fd, kReady);
    read_some(fd);  // the run message
    write_all(
        fd, frame(R"({"id":1,"method":"host.call","params":{"name":"host.ping","args":{"x":1}}})"));
    const std::string answer = read_some(fd);
    const bool echoed = answer.find(R"({"id":1,"result":{"x":1}})") != std::string::npos;
    write_all(fd, frame(echoed ? R"({"method":"done","params":{"status":"ok","result":"echoed"}})"
                               : R"({"method":"done","params":{"status":"ok","result":"wrong"}})"));
  });
  CHECK(r.status == RunStatus::ok);
  CHECK(r.result == "echoed");
}

TEST_CASE("broker: every class of bad frame ends the child as a violation", "[broker][protocol]") {
  SECTION("not JSON") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, kReady + frame("{not json"));
                       ::pause();
                     }),
                     "not valid JSON");
  }
  SECTION("not an object") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, frame("[1,2,3]"));
                       ::pause();
                     }),
                     "not a JSON object");
  }
  SECTION("oversized header") {
    expect_violation(serve_fake_child([](int fd) {
                       const char header[4] = {0, 0x10, 0, 0};  // 1 MiB > 64 KiB limit
                       write_all(fd, std::string(header, 4));
                       ::pause();
                     }),
                     "oversized frame");
  }
  SECTION("empty frame") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, std::string(4, '\0'));
                       ::pause();
                     }),
                     "empty frame");
  }
  SECTION("unknown member") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, frame(R"({"method":"ready","params":{},"x":1})"));
                       ::pause();
                     }),
                     "unknown member");
  }
  SECTION("too deeply nested") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, frame(std::string(1000, '[') + std::string(1000, ']')));
                       ::pause();
                     }),
                     "nesting deeper");
  }
  SECTION("a message before ready") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, frame(R"({"method":"print","params":{"text":"hi"}})"));
                       ::pause();
                     }),
                     "before ready");
  }
  SECTION("a response from the child") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, kReady + frame(R"({"id":7,"result":1})"));
                       ::pause();
                     }),
                     "unexpected response");
  }
  SECTION("an unknown method") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd,
                                 kReady + frame(R"({"id":1,"method":"spawn.shell","params":{}})"));
                       ::pause();
                     }),
                     "unexpected message 'spawn.shell'");
  }
  SECTION("a message after the result") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, kReady);
                       read_some(fd);
                       write_all(fd,
                                 frame(R"({"method":"done","params":{"status":"ok","result":1}})") +
                                     frame(R"({"method":"print","params":{"text":"late"}})"));
                       ::pause();
                     }),
                     "after the result");
  }
  SECTION("a malformed result") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, kReady);
                       read_some(fd);
                       write_all(fd, frame(R"({"method":"done","params":{"status":"maybe"}})"));
                       ::pause();
                     }),
                     "malformed result");
  }
  SECTION("state from the VM of a run that is not journaled") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, kReady);
                       read_some(fd);
                       write_all(fd, frame(R"({"method":"state","params":{"state":{"a":1}}})"));
                       ::pause();
                     }),
                     "unexpected 'state' (the run does not journal its state)");
  }
  SECTION("print without text") {
    expect_violation(serve_fake_child([](int fd) {
                       write_all(fd, kReady + frame(R"({"method":"print","params":{"text":5}})"));
                       ::pause();
                     }),
                     "print without text");
  }
}

TEST_CASE("broker: a child that never reads its answers cannot make the broker buffer forever",
          "[broker][protocol]") {
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = serve_fake_child([](int fd) {
    write_all(fd, kReady);
    const std::string ping =
        frame(R"({"id":1,"method":"host.call","params":{"name":"host.ping","args":")" +
              std::string(8000, 'x') + R"("}})");
    for (int i = 0; i < 4000; ++i) write_all(fd, ping);
    ::pause();
  });
  expect_violation(r, "does not read its answers");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));
}

TEST_CASE("broker: a truncated frame followed by exit is reported as a crash",
          "[broker][protocol]") {
  const auto r = serve_fake_child([](int fd) {
    const std::string f = frame(R"({"method":"ready","params":{}})");
    write_all(fd, f.substr(0, f.size() - 3));
  });
  CHECK(r.status == RunStatus::crashed);
  CHECK(r.message.find("in the middle of a message") != std::string::npos);
}

TEST_CASE("broker: a child killed by a signal is reported with the signal", "[broker]") {
  const auto r = serve_fake_child([](int) { ::raise(SIGSEGV); });
  CHECK(r.status == RunStatus::crashed);
  CHECK(r.signal == SIGSEGV);
  CHECK(r.message.find("SIGSEGV") != std::string::npos);
}

TEST_CASE("broker: a silent child is killed at the wall-clock limit", "[broker][limits]") {
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = serve_fake_child([](int) { ::pause(); }, 0.3);
  CHECK(r.status == RunStatus::timeout);
  CHECK(broker::exit_code(r.status) == 3);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("broker: a setup failure reported by the child is typed", "[broker]") {
  const auto r = serve_fake_child([](int fd) {
    write_all(fd, frame(R"({"method":"setup_failed","params":{"step":"rlimits","errno":1}})"));
  });
  CHECK(r.status == RunStatus::setup);
  CHECK(r.setup_step == "rlimits");
  CHECK(r.setup_errno == 1);
  CHECK(broker::exit_code(r.status) == 4);
}

TEST_CASE("broker: a setup failure carries what the kernel's facts say about its step",
          "[broker]") {
  const auto setup_failed = [](int fd) {
    write_all(fd, frame(R"({"method":"setup_failed","params":{"step":"userns","errno":1}})"));
  };
  std::string asked;
  const auto r = serve_fake_child(setup_failed, 5, [&](broker::RunRequest& req) {
    req.explain_setup_failure = [&](const std::string& step) {
      asked = step;
      return std::string("unprivileged user namespaces are off");
    };
  });
  CHECK(asked == "userns");
  CHECK(r.status == RunStatus::setup);
  CHECK(r.setup_hint == "unprivileged user namespaces are off");
  CHECK(broker::to_json(r)["error"]["hint"] == "unprivileged user namespaces are off");
  // The message is the same with or without facts to tell.
  CHECK(r.message ==
        "sandbox setup failed at step 'userns': Operation not permitted; the jail cannot be "
        "built here (see 'tactus sandbox status'); --no-sandbox runs without it, with no "
        "isolation");
  const auto plain = serve_fake_child(setup_failed);
  CHECK(plain.message == r.message);
  CHECK(plain.setup_hint.empty());
  CHECK_FALSE(broker::to_json(plain)["error"].contains("hint"));
}

TEST_CASE("broker: the broker serves the next child after a bad one", "[broker]") {
  for (int i = 0; i < 3; ++i) {
    const auto bad = serve_fake_child([](int fd) {
      write_all(fd, frame("garbage"));
      ::pause();
    });
    CHECK(bad.status == RunStatus::violation);
    const auto good = serve_fake_child([](int fd) {
      write_all(fd, kReady);
      read_some(fd);
      write_all(fd, frame(R"({"method":"done","params":{"status":"ok","result":42}})"));
    });
    CHECK(good.status == RunStatus::ok);
    CHECK(good.result == 42);
  }
}

TEST_CASE("broker: text the child put in a violation is masked like the message",
          "[broker][secrets]") {
  const std::string secret = "sk-violation-secret-5d2e";
  const auto r = serve_fake_child(
      [&](int fd) {
        write_all(fd, kReady);
        read_some(fd);
        write_all(fd, frame(R"({"method":")" + secret + R"(","params":{}})"));
        read_some(fd);
      },
      5,
      [&](broker::RunRequest& req) {
        auto redactor = std::make_shared<broker::Redactor>();
        redactor->add(secret);
        req.redactor = redactor;
      });
  CHECK(r.status == RunStatus::violation);
  CHECK(r.violation == "protocol: unexpected message '***'");
  CHECK(r.message == "sandbox violation: protocol: unexpected message '***'");
  CHECK(broker::to_json(r).dump().find(secret) == std::string::npos);
}

TEST_CASE("broker: a method sent as the wrong kind, or by the wrong side, has no route",
          "[broker][protocol]") {
  // Each frame names a method of the protocol's list, but not as the VM may send it.
  const std::pair<const char*, const char*> cases[] = {
      {R"({"id":1,"method":"print","params":{"text":"hi"}})", "'print'"},          // a request
      {R"({"method":"host.call","params":{"name":"host.ping"}})", "'host.call'"},  // no id
      {R"({"id":1,"method":"violation","params":{"nr":59,"arch":1}})", "'violation'"},
      {R"({"id":1,"method":"human.shell","params":{"message":"x"}})", "'human.shell'"},
      {R"({"method":"ready","params":{}})", "'ready'"},              // again, once running
      {R"({"method":"run","params":{}})", "'run'"},                  // the broker's own
      {R"({"method":"exec_failed","params":{}})", "'exec_failed'"},  // a command child's
  };
  for (const auto& [payload, name] : cases) {
    INFO(payload);
    const std::string bad = frame(payload);
    expect_violation(serve_fake_child([&](int fd) {
                       write_all(fd, kReady);
                       read_some(fd);
                       write_all(fd, bad);
                       ::pause();
                     }),
                     std::string("unexpected message ") + name);
  }
}

TEST_CASE(
    "broker: a trace event from a run that is not traced, or a malformed one, is a "
    "violation",
    "[broker][protocol][telemetry]") {
  const auto send_trace = [](const std::string& params) {
    return [params](int fd) {
      write_all(fd, kReady);
      read_some(fd);
      write_all(fd, frame(R"({"method":"trace","params":)" + params + "}"));
      ::pause();
    };
  };
  SECTION("not traced") {
    expect_violation(
        serve_fake_child(send_trace(R"({"event":"begin","op":"invoke_agent","name":"a"})")),
        "unexpected 'trace' (the run is not traced)");
  }
  broker::TraceConfig config{"http://127.0.0.1:1", false, 0.001};
  broker::RunTrace trace(config, "test", "fake.tac", nullptr);
  const auto traced = [&trace](broker::RunRequest& req) { req.trace = &trace; };
  SECTION("an unknown op") {
    expect_violation(
        serve_fake_child(send_trace(R"({"event":"begin","op":"rm -rf","name":"a"})"), 5, traced),
        "malformed trace event");
  }
  SECTION("a name that is not a string") {
    expect_violation(
        serve_fake_child(send_trace(R"({"event":"end","op":"execute_tool","name":{"x":1}})"), 5,
                         traced),
        "malformed trace event");
  }
}

TEST_CASE(
    "broker: a budget stops the request that would pass it, unanswered, whatever the "
    "child does next",
    "[broker][budget]") {
  broker::RunUsage usage;
  // What an earlier session of the run used (a resume adds its journal's answers first).
  usage.add_tool_call();
  const auto r = serve_fake_child(
      [](int fd) {
        write_all(fd, kReady);
        read_some(fd);
        write_all(fd, frame(R"({"id":1,"method":"host.call","params":{"name":"host.ping"}})"));
        // An answer would come back here; the broker ends the run instead.
        const std::string answer = read_some(fd);
        if (answer.find(R"("id":1)") != std::string::npos)
          write_all(fd, frame(R"({"method":"done","params":{"status":"ok","result":"answered"}})"));
        ::pause();
      },
      5,
      [&usage](broker::RunRequest& req) {
        req.usage = &usage;
        req.budget.tool_calls = 1;
        req.budget.tool_calls_at = "proc.tac.yml:2:15";
      });
  INFO(r.message);
  CHECK(r.status == RunStatus::budget);
  CHECK(broker::exit_code(r.status) == 6);
  CHECK(r.message ==
        "budget: tool_calls: the run has made 1 of its 1 tool calls (budget.tool_calls, "
        "proc.tac.yml:2:15); the next would be the 2nd");
  CHECK(usage.tool_calls() == 1);
}

TEST_CASE(
    "broker: validate asks no model, host tool or person, and --mock no model, whatever the "
    "child sends",
    "[broker][compat]") {
  // The child sends the request raw (the language's own stops bypassed) and reports whether
  // the broker's answer was the refusal.
  const auto ask = [](const std::string& request) {
    return [request](int fd) {
      write_all(fd, kReady);
      read_some(fd);
      write_all(fd, frame(request));
      const std::string answer = read_some(fd);
      const bool refused =
          answer.find("denied") != std::string::npos &&
          (answer.find("validate: no model, host tool or person") != std::string::npos ||
           answer.find("--mock: no model is asked") != std::string::npos);
      write_all(fd, frame(std::string(R"({"method":"done","params":{"status":"ok","result":")") +
                          (refused ? "refused" : "answered") + "\"}}"));
    };
  };
  const auto validate = [](broker::RunRequest& req) { req.mode = "validate"; };
  const auto mock = [](broker::RunRequest& req) { req.options = protocol::Json{{"mock", true}}; };
  const std::string host = R"({"id":1,"method":"host.call","params":{"name":"host.ping"}})";
  const std::string llm =
      R"({"id":1,"method":"llm.chat","params":{"provider":"openai","model":"m","messages":[]}})";
  const std::string human = R"({"id":1,"method":"human.approve","params":{"message":"go?"}})";
  for (const auto& request : {host, llm, human}) {
    INFO(request);
    const auto r = serve_fake_child(ask(request), 5, validate);
    INFO(r.message);
    REQUIRE(r.status == RunStatus::ok);
    CHECK(r.result == "refused");
  }
  const auto m = serve_fake_child(ask(llm), 5, mock);
  REQUIRE(m.status == RunStatus::ok);
  CHECK(m.result == "refused");
  // Under --mock a host tool is still answered (mocks answer it in the VM, or the tool runs).
  const auto h = serve_fake_child(ask(host), 5, mock);
  REQUIRE(h.status == RunStatus::ok);
  CHECK(h.result == "answered");
}
