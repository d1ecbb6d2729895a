// llm.chat through the broker's run session, as the VM will send it: a fake child on a
// socketpair asks, the broker calls the fake provider with the key of the trusted
// configuration (a secret from the environment), and the key reaches the provider's
// Authorization header and nothing else: not the answer, the printed output, the result or the
// audit log.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include "broker/llm_providers.h"
#include "broker/run_session.h"
#include "runtime/protocol/frame.h"
#include "tests/fixtures/fake_llm.h"
#include "tests/support/cli_runner.h"
#include "tests/support/llm_test_support.h"

using namespace tactus;
using broker::RunStatus;
using protocol::Json;
using test::FakeLlmServer;
using test::FakeReply;

namespace {

constexpr const char* kKey = "sk-fake-secret-key-7f3a9c2e41";
constexpr const char* kOpenAiEnvKey = "sk-openai-from-env-55d1e0b8";

struct Sink : broker::OutputSink {
  std::vector<std::string> lines;
  void print(std::string_view line) override { lines.emplace_back(line); }
};

void write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    // A socket whose peer went: EPIPE, not SIGPIPE (the writer is a thread of the test).
    const ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

bool read_exact(int fd, char* buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, buf + got, n - got);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

// One frame's payload, or "" at EOF.
std::string read_frame(int fd) {
  unsigned char h[4];
  if (!read_exact(fd, reinterpret_cast<char*>(h), 4)) return "";
  const std::size_t len = (std::size_t{h[0]} << 24) | (std::size_t{h[1]} << 16) |
                          (std::size_t{h[2]} << 8) | std::size_t{h[3]};
  std::string payload(len, '\0');
  if (!read_exact(fd, payload.data(), len)) return "";
  return payload;
}

std::string frame(const std::string& payload) {
  std::string out;
  protocol::append_frame(out, payload);
  return out;
}

// Sets an environment variable for the test's duration, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The broker's side of a run as `tactus run` sets it up: the configuration (a sidecar naming
// the fake provider, its key a secret from the environment, and an audit log), the secret
// resolved and masked, the providers built by broker::llm_config.
struct BrokerSide {
  test::TempTac dir{"return 1"};
  ScopedEnv env{"TACTUS_TEST_FAKE_LLM_KEY", kKey};
  std::string audit_path = dir.dir() + "/audit.jsonl";
  sidecars::Config config;
  std::shared_ptr<broker::Redactor> redactor = std::make_shared<broker::Redactor>();
  broker::AuditLog audit;
  tools::ToolContext ctx;

  explicit BrokerSide(const FakeLlmServer& server) {
    const std::string yaml =
        "secrets:\n  FAKE_KEY: {env: TACTUS_TEST_FAKE_LLM_KEY}\n"
        "providers:\n  fake: {api_key: FAKE_KEY, base_url: \"" +
        server.base_url() +
        "\"}\n  defaults: {timeout: 10, retries: 1}\n"
        "audit:\n  path: " +
        audit_path + "\n";
    std::string error;
    REQUIRE(sidecars::apply_layer(yaml, dir.path() + ".yml", config, error));
    REQUIRE(sidecars::check_config(config, error));
    std::map<std::string, std::string> values;
    for (const auto& [name, decl] : config.secrets) {
      broker::SecretSource source{name, broker::SecretSource::Kind::env, decl.ref};
      std::string value;
      REQUIRE(broker::resolve_secret(source, value, error));
      redactor->add(value);
      values[name] = value;
    }
    const auto getenv = [](const char* name) -> const char* {
      return std::string(name) == "OPENAI_API_KEY" ? kOpenAiEnvKey : nullptr;
    };
    ctx.llm = broker::llm_config(config, values, *redactor, getenv);
    ctx.llm.backoff_base_seconds = 0.001;
    REQUIRE(audit.open(config.audit_path.value, {}, error));
  }

  // Plays a child that sends one llm.chat request with params, prints the raw answer and
  // returns it (parsed) as its result. The child's side of the socket is a thread of this
  // process; the process the broker watches only waits for that thread to finish. (A child
  // forked from this process, which has the fake server's thread, must not allocate: a lock
  // that thread held at the fork stays held in the child, which hung under ASan.)
  broker::RunResult run(const Json& params, Sink& sink, std::uint64_t message_limit = 64 * 1024) {
    int sv[2], gate[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    REQUIRE(::pipe2(gate, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // async-signal-safe calls only
      ::close(sv[0]);
      ::close(sv[1]);
      ::close(gate[1]);
      char c;
      while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    ::close(gate[0]);
    const std::string request = frame(protocol::make_request(1, "llm.chat", params));
    std::thread child([fd = sv[1], gate_end = gate[1], request] {
      write_all(fd, frame(R"({"method":"ready","params":{}})"));
      read_frame(fd);  // the run message
      write_all(fd, request);
      const std::string answer = read_frame(fd);
      write_all(fd, frame(protocol::make_notification("print", Json{{"text", answer}})));
      write_all(fd, frame(protocol::make_notification(
                        "done",
                        Json{{"status", "ok"}, {"result", Json::parse(answer, nullptr, false)}})));
      ::close(fd);
      ::close(gate_end);  // the waiting process exits
    });
    struct Join {
      std::thread& t;
      ~Join() { t.join(); }
    } join{child};
    // Closed before the join however this returns: the thread's reads then end.
    UniqueFd broker_end(sv[0]);
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    REQUIRE(pidfd >= 0);
    broker::RunRequest req;
    req.run_id = "llm-test";
    req.source = "return 1";
    req.chunkname = "@fake.tac";
    req.limits.message = message_limit;
    req.limits.timeout_seconds = 20;
    req.redactor = redactor;
    req.audit = &audit;
    // req.policy.allowed_tools stays empty: llm.chat is not a Host.call tool.
    const tools::ToolRegistry tools(ctx);
    return broker::serve_child(std::move(broker_end), UniqueFd(pidfd), req, tools, sink);
  }
};

Json params(const std::string& provider = "fake") {
  return {{"agent", "greeter"},
          {"provider", provider},
          {"model", "fake-model"},
          {"messages",
           {{{"role", "system"}, {"content", "Be brief."}},
            {{"role", "user"}, {"content", "the secret plan is to say hello"}}}},
          {"tools", {{{"name", "lookup"}, {"parameters", {{"type", "object"}}}}}}};
}

}  // namespace

TEST_CASE("llm session: llm.chat is answered, the key reaches the provider and nothing else",
          "[llm][broker]") {
  FakeLlmServer server({FakeReply::say(std::string("Your key is ") + kKey + "; OpenAI's is " +
                                       kOpenAiEnvKey + ".")});
  BrokerSide broker_side(server);
  Sink sink;
  const auto r = broker_side.run(params(), sink);
  INFO(r.message);
  REQUIRE(r.status == RunStatus::ok);

  // The provider got the key, in the Authorization header, once.
  REQUIRE(server.request_count() == 1);
  auto sent = server.requests()[0];
  CHECK(sent.headers["authorization"] == std::string("Bearer ") + kKey);
  CHECK(sent.raw_body.find(kKey) == std::string::npos);

  // The answer the child got (its result) has both keys masked; the rest is intact.
  const Json expected_usage = test::expected_usage(11, 7);
  const Json& answer = r.result["result"];
  CHECK(r.result["id"] == 1);
  CHECK(answer["content"] == "Your key is ***; OpenAI's is ***.");
  CHECK(answer["usage"] == expected_usage);
  CHECK(answer["finish_reason"] == "stop");
  CHECK(answer["model"] == "fake-model");
  // What the child printed (the raw answer) has neither.
  REQUIRE(sink.lines.size() == 1);
  CHECK(sink.lines[0].find(kKey) == std::string::npos);
  CHECK(sink.lines[0].find(kOpenAiEnvKey) == std::string::npos);
  CHECK(sink.lines[0].find("***") != std::string::npos);

  // The audit line says who asked which model with how much, not what was said.
  const std::string log = slurp(broker_side.audit_path);
  CHECK(log.find(kKey) == std::string::npos);
  CHECK(log.find("secret plan") == std::string::npos);
  const Json line = Json::parse(log.substr(0, log.find('\n')));
  CHECK(line["tool"] == "llm.chat");
  CHECK(line["run_id"] == "llm-test");
  CHECK(line["outcome"] == "ok");
  CHECK(line["args"] == Json{{"agent", "greeter"},
                             {"provider", "fake"},
                             {"model", "fake-model"},
                             {"messages", 2},
                             {"tools", {"lookup"}}});
  CHECK(line["usage"] == expected_usage);
}

TEST_CASE("llm session: a provider error that echoes the key is masked in the answer and the log",
          "[llm][broker]") {
  FakeLlmServer server(
      {FakeReply::error(401, std::string("Incorrect API key provided: ") + kKey + ".")});
  BrokerSide broker_side(server);
  Sink sink;
  const auto r = broker_side.run(params(), sink);
  REQUIRE(r.status == RunStatus::ok);
  CHECK(r.result == Json{{"id", 1},
                         {"error",
                          {{"code", "failed"},
                           {"message", "llm: fake: HTTP 401: Incorrect API key provided: ***."}}}});
  CHECK(sink.lines.at(0).find(kKey) == std::string::npos);
  const std::string log = slurp(broker_side.audit_path);
  CHECK(log.find(kKey) == std::string::npos);
  const Json line = Json::parse(log.substr(0, log.find('\n')));
  CHECK(line["outcome"] == "failed");
  CHECK(line["message"] == "llm: fake: HTTP 401: Incorrect API key provided: ***.");
  CHECK_FALSE(line.contains("usage"));
  CHECK(server.request_count() == 1);
}

TEST_CASE("llm session: an unknown provider is denied, the built-ins are known", "[llm][broker]") {
  FakeLlmServer server;
  BrokerSide broker_side(server);
  Sink sink;
  const auto r = broker_side.run(params("mystery"), sink);
  REQUIRE(r.status == RunStatus::ok);
  CHECK(r.result["error"]["code"] == "denied");
  CHECK(r.result["error"]["message"] ==
        "llm: unknown provider 'mystery': declare it under providers: in the configuration "
        "(known: anthropic, fake, openai)");
  CHECK(server.request_count() == 0);
  const std::string log = slurp(broker_side.audit_path);
  CHECK(Json::parse(log.substr(0, log.find('\n')))["outcome"] == "denied");
}

TEST_CASE("llm session: a reply over the message limit is failed, not sent", "[llm][broker]") {
  // In large fragments: 34,000 three-byte events took the sanitizer build past the timeout.
  FakeReply big = FakeReply::say(std::string(100 * 1024, 'w'));
  big.fragment = 4096;
  FakeLlmServer server({big});
  BrokerSide broker_side(server);
  Sink sink;
  const auto r = broker_side.run(params(), sink);
  REQUIRE(r.status == RunStatus::ok);
  CHECK(r.result["error"]["code"] == "failed");
  const std::string message = r.result["error"]["message"];
  CHECK(message.rfind("the result of llm.chat (", 0) == 0);
  CHECK(message.find("exceeds the message limit of 64 KiB") != std::string::npos);
}
