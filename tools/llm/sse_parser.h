// An incremental parser for server-sent events (the WHATWG "text/event-stream" format), as the
// model providers stream their replies: feed it the bytes as they arrive, cut anywhere, and it
// hands back each complete event.
//
// Lines end in LF, CRLF or a lone CR (a CRLF split between two chunks is one line end). A line
// starting with ':' is a comment; "field: value" drops one leading space of the value;
// "data" lines accumulate, joined by "\n"; "event" names the event; an empty line dispatches
// it. An event without data is not dispatched (as in the standard), and an event the stream
// ends in the middle of is dropped: a cut-off stream then lacks its terminal event, which is
// how the providers' code recognises truncation.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace tactus::tools::llm {

struct SseEvent {
  std::string event;  // the "event:" field; empty when the stream gave none
  std::string data;   // the "data:" lines joined by "\n"
  std::string id;     // the "id:" field, if any
};

class SseParser {
 public:
  using Handler = std::function<void(const SseEvent&)>;

  // Parses chunk and calls on_event for every event it completes, in order.
  void feed(std::string_view chunk, const Handler& on_event);

 private:
  void line(std::string_view text, const Handler& on_event);

  std::string partial_;  // an incomplete line carried over to the next chunk
  bool after_cr_ = false;
  bool started_ = false;  // a leading UTF-8 byte-order mark has been looked for
  SseEvent current_;
  bool has_data_ = false;
};

}  // namespace tactus::tools::llm
