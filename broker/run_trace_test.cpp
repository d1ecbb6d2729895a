// The run's trace as the VM and a hostile procedure can shape it: spans nest and end as the VM
// says within bounds, every string is masked before it is kept, and a flood of events costs a
// bounded number of spans.
#include <catch2/catch.hpp>

#include <memory>

#include "broker/run_trace.h"
#include "broker/secrets.h"

using namespace tactus;
using broker::RunTrace;
using protocol::Json;

namespace {

RunTrace make_trace(std::shared_ptr<const broker::Redactor> redactor = nullptr) {
  // An endpoint nothing listens on: finish() is not called by these tests.
  return RunTrace({"http://127.0.0.1:1", false, 0.001}, "run-1", "proc.tac", std::move(redactor));
}

Json event(const std::string& e, const std::string& op, const std::string& name) {
  return {{"event", e}, {"op", op}, {"name", name}};
}

const Json& spans_of(const Json& doc) {
  return doc["resourceSpans"][0]["scopeSpans"][0]["spans"];
}

}  // namespace

TEST_CASE("trace: VM spans nest, end in order, and unmatched ends are ignored", "[telemetry]") {
  RunTrace t = make_trace();
  std::string why;
  REQUIRE(t.vm_event(event("begin", "invoke_agent", "greeter"), why));
  REQUIRE(t.vm_event(event("begin", "execute_tool", "lookup"), why));
  REQUIRE(t.vm_event(event("end", "invoke_agent", "greeter"), why));  // not the innermost: ignored
  REQUIRE(t.vm_event(event("end", "execute_tool", "lookup"), why));
  REQUIRE(t.vm_event(event("end", "invoke_agent", "greeter"), why));
  REQUIRE(t.vm_event(event("end", "invoke_agent", "greeter"), why));  // nothing open: ignored
  const Json doc = t.otlp_document();
  const Json& spans = spans_of(doc);
  REQUIRE(spans.size() == 3);
  CHECK(spans[0]["name"] == "run proc.tac");
  CHECK(spans[1]["name"] == "invoke_agent greeter");
  CHECK(spans[1]["parentSpanId"] == spans[0]["spanId"]);
  CHECK(spans[2]["name"] == "execute_tool lookup");
  CHECK(spans[2]["parentSpanId"] == spans[1]["spanId"]);
  CHECK(doc["resourceSpans"][0]["resource"]["attributes"][0]["key"] == "service.name");
  // Resumed sessions of the run share its trace id.
  CHECK(spans[0]["traceId"] == spans_of(make_trace().otlp_document())[0]["traceId"]);
}

TEST_CASE("trace: what the VM sends is bounded: malformed, too deep, too many, too long",
          "[telemetry]") {
  RunTrace t = make_trace();
  std::string why;
  CHECK_FALSE(t.vm_event(Json::array(), why));
  CHECK_FALSE(t.vm_event(event("begin", "delete", "x"), why));
  CHECK_FALSE(t.vm_event({{"event", "begin"}, {"op", "invoke_agent"}, {"name", 5}}, why));
  CHECK(why.find("malformed trace event") == 0);
  // Nested past 64: the deeper begins are dropped, and so are their ends; the spans kept still
  // end in order.
  for (std::size_t i = 0; i < RunTrace::kMaxOpen + 3; ++i)
    REQUIRE(t.vm_event(event("begin", "invoke_agent", "a"), why));
  for (std::size_t i = 0; i < RunTrace::kMaxOpen + 3; ++i)
    REQUIRE(t.vm_event(event("end", "invoke_agent", "a"), why));
  {
    const Json doc = t.otlp_document();
    CHECK(spans_of(doc).size() == 1 + RunTrace::kMaxOpen);
    for (const auto& s : spans_of(doc)) CHECK(s["endTimeUnixNano"] != "0");
  }

  // A flood of turns: at most kMaxSpans are kept.
  for (std::size_t i = 0; i < RunTrace::kMaxSpans + 500; ++i) {
    REQUIRE(t.vm_event(event("begin", "execute_tool", "t"), why));
    REQUIRE(t.vm_event(event("end", "execute_tool", "t"), why));
  }
  CHECK(spans_of(t.otlp_document()).size() == RunTrace::kMaxSpans);

  // A 100,000-character name is cut, and 10,000 of them hold a bounded trace.
  RunTrace u = make_trace();
  for (int i = 0; i < 10000; ++i) {
    REQUIRE(u.vm_event(event("begin", "invoke_agent", std::string(100000, 'n')), why));
    REQUIRE(u.vm_event(event("end", "invoke_agent", std::string(100000, 'n')), why));
  }
  const Json doc = u.otlp_document();
  CHECK(spans_of(doc)[1]["name"].get<std::string>().size() == RunTrace::kMaxName);
  CHECK(protocol::dump_json(doc).size() < 2 * RunTrace::kMaxBytes);
  for (const auto& s : spans_of(doc)) CHECK(s["endTimeUnixNano"] != "0");
}

TEST_CASE("trace: a secret in anything the trace keeps is masked", "[telemetry]") {
  auto redactor = std::make_shared<broker::Redactor>();
  redactor->add("sk-trace-secret-1234");
  RunTrace t = make_trace(redactor);
  std::string why;
  REQUIRE(t.vm_event(event("begin", "invoke_agent", "agent sk-trace-secret-1234"), why));
  tools::ToolOutcome failed;
  failed.code = tools::ToolError::failed;
  failed.message = "llm: fake: HTTP 401: bad key sk-trace-secret-1234";
  const auto now = RunTrace::Clock::now();
  t.model_call({{"provider", "fake"}, {"model", "m"}, {"agent", "sk-trace-secret-1234"}}, failed,
               now, now);
  tools::ToolOutcome ok;
  ok.ok = true;
  ok.result = {{"echo", "sk-trace-secret-1234"}};
  t.tool_call("host.ping", {{"x", "sk-trace-secret-1234"}}, ok, now, now);
  const std::string text = protocol::dump_json(t.otlp_document());
  CHECK(text.find("sk-trace-secret-1234") == std::string::npos);
  CHECK(text.find("agent ***") != std::string::npos);
  CHECK(text.find("HTTP 401: bad key ***") != std::string::npos);
  // The failed call has an error status and type.
  const Json doc = t.otlp_document();
  const Json& chat = spans_of(doc)[2];
  CHECK(chat["status"]["code"] == 2);
}
