// One provider API's wire format: how a ChatRequest becomes an HTTP request, and how the reply
// (streamed as server-sent events, or one JSON body) becomes a ChatReply. The HTTP, the
// retries and the errors that do not depend on the format are tools/llm/llm_client.cpp's.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/llm/llm_types.h"
#include "tools/llm/sse_parser.h"

namespace tactus::tools::llm {

using TextSink = std::function<void(std::string_view)>;

// Assembles one streamed reply, event by event.
class StreamAssembler {
 public:
  enum class Step { more, done, error };
  virtual ~StreamAssembler() = default;
  // Takes one event. Text deltas go to on_text as they come. done: the terminal event
  // arrived and reply() is complete; error: the provider reported an error in the stream, or
  // sent something malformed (error() says what).
  virtual Step on_event(const SseEvent& event, const TextSink& on_text) = 0;
  const std::string& error() const { return error_; }
  ChatReply& reply() { return reply_; }
  // The run's secrets, for excerpts of malformed events (tools/secret_mask.h).
  void set_mask(const SecretMask* mask) { mask_ = mask; }

 protected:
  const SecretMask* mask_ = nullptr;
  Step fail(std::string why) {
    error_ = std::move(why);
    return Step::error;
  }
  ChatReply reply_;
  std::string error_;
};

class Dialect {
 public:
  virtual ~Dialect() = default;
  // Appended to the provider's base URL: "/chat/completions".
  virtual std::string path() const = 0;
  // Header lines ("Name: value") besides Content-Type and Accept, the key among them.
  virtual std::vector<std::string> headers(const std::string& api_key) const = 0;
  // The JSON body, asking for a stream.
  virtual Json body(const ChatRequest& request) const = 0;
  virtual std::unique_ptr<StreamAssembler> assembler() const = 0;
  // A whole JSON reply (a server that answered without streaming). False with error.
  virtual bool parse_whole(const Json& body, ChatReply& reply, std::string& error) const = 0;
};

std::unique_ptr<Dialect> openai_chat_dialect();       // POST /chat/completions
std::unique_ptr<Dialect> openai_responses_dialect();  // POST /responses
std::unique_ptr<Dialect> anthropic_dialect();         // POST /messages

}  // namespace tactus::tools::llm
