// The SSE parser against the ways a stream arrives: cut anywhere, CRLF or CR line ends,
// multi-line data, comments, events without data, an event the stream ends in.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tools/llm/sse_parser.h"

using tactus::tools::llm::SseEvent;
using tactus::tools::llm::SseParser;

namespace {

std::vector<SseEvent> parse(const std::vector<std::string>& chunks) {
  SseParser p;
  std::vector<SseEvent> out;
  for (const auto& c : chunks) p.feed(c, [&](const SseEvent& e) { out.push_back(e); });
  return out;
}

std::vector<std::string> datas(const std::vector<SseEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data);
  return out;
}

const std::string kStream =
    ": a comment first\n"
    "event: message_start\n"
    "data: {\"a\":1}\n"
    "\n"
    "data: line one\n"
    "data: line two\n"
    "\n"
    "event: ping\n"
    "data:\n"
    "\n"
    "data: [DONE]\n"
    "\n";

}  // namespace

TEST_CASE("sse: events, names, multi-line data and comments", "[llm][sse]") {
  const auto events = parse({kStream});
  REQUIRE(events.size() == 4);
  CHECK(events[0].event == "message_start");
  CHECK(events[0].data == "{\"a\":1}");
  CHECK(events[1].event.empty());  // the name does not carry over to the next event
  CHECK(events[1].data == "line one\nline two");
  CHECK(events[2].event == "ping");
  CHECK(events[2].data.empty());
  CHECK(events[3].data == "[DONE]");
}

TEST_CASE("sse: the same events whatever the chunks are cut", "[llm][sse]") {
  const auto whole = datas(parse({kStream}));
  for (std::size_t cut = 0; cut <= kStream.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(datas(parse({kStream.substr(0, cut), kStream.substr(cut)})) == whole);
  }
  std::vector<std::string> bytes;
  for (char c : kStream) bytes.emplace_back(1, c);
  CHECK(datas(parse(bytes)) == whole);
}

TEST_CASE("sse: CRLF and lone CR line ends, a CRLF split between chunks", "[llm][sse]") {
  CHECK(datas(parse({"data: a\r\n\r\ndata: b\r\rdata: c\n\n"})) ==
        std::vector<std::string>{"a", "b", "c"});
  // The CR ends one chunk and the LF starts the next: one line end, not an empty line.
  CHECK(datas(parse({"data: x\r", "\ndata: y\r", "\n\r", "\n"})) ==
        std::vector<std::string>{"x\ny"});
  std::string crlf = kStream;
  for (std::size_t i = 0; (i = crlf.find('\n', i)) != std::string::npos; i += 2)
    crlf.replace(i, 1, "\r\n");
  for (std::size_t cut = 0; cut <= crlf.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(datas(parse({crlf.substr(0, cut), crlf.substr(cut)})) == datas(parse({kStream})));
  }
}

TEST_CASE("sse: field values, ids and what is not an event", "[llm][sse]") {
  // One leading space is dropped, not two; no space is fine; a bare "data" is an empty line.
  CHECK(datas(parse({"data:x\n\ndata:  y\n\ndata\ndata\n\n"})) ==
        std::vector<std::string>{"x", " y", "\n"});
  // An event with no data is not dispatched; unknown fields and retry are ignored.
  CHECK(parse({"event: lonely\n\nretry: 10\nfoo: bar\n\n"}).empty());
  const auto ids = parse({"id: 7\ndata: a\n\ndata: b\n\n"});
  REQUIRE(ids.size() == 2);
  CHECK(ids[0].id == "7");
  CHECK(ids[1].id == "7");  // the last event id persists
  // A leading byte-order mark is not part of the first field's name, even split.
  CHECK(datas(parse({"\xEF\xBB",
                     "\xBF"
                     "data: bom\n\n"})) == std::vector<std::string>{"bom"});
}

TEST_CASE("sse: an event the stream ends in the middle of is dropped", "[llm][sse]") {
  CHECK(datas(parse({"data: one\n\ndata: two\n"})) == std::vector<std::string>{"one"});
  CHECK(datas(parse({"data: one\n\ndata: tw"})) == std::vector<std::string>{"one"});
}
