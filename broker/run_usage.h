// What one run used and spent, resumes included: its model calls with their tokens and cost,
// per model, exactly as the providers reported them, and its host tool calls; and the budget
// (budget: in the configuration) that bounds them. The numbers come from the answers the broker
// gave the VM (llm.chat's usage and cost), so a resumed run counts its journaled calls the same
// way as its live ones, and `tactus runs` reads them back from the journal.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/journal/journal.h"
#include "runtime/protocol/message.h"

namespace tactus::tools {
struct ModelPrice;
}

namespace tactus::broker {

struct TokenCounts {
  std::int64_t input = 0;                 // neither read from nor written to the prompt cache
  std::int64_t cached_input = 0;          // read from it
  std::int64_t cache_creation_input = 0;  // written to it
  std::int64_t output = 0;                // reasoning included
  std::int64_t reasoning = 0;             // of output, where reported
  bool reasoning_reported = false;
  std::int64_t total() const;  // saturating, as every sum here
};

struct ModelUsage {
  std::int64_t calls = 0;           // sent to the provider, failed ones included
  std::int64_t failed_calls = 0;    // no reply came back whole: no usage was reported for them
  std::int64_t unknown_calls = 0;   // the provider reported no usage: its tokens are unknown
  std::int64_t unpriced_calls = 0;  // no price for the model: its cost is unknown
  TokenCounts tokens;               // of the calls whose usage is known
  double usd = 0;                   // of the calls whose cost is known
};

// budget: {usd, tokens, model_calls, tool_calls}, each with where it was set.
struct Budget {
  std::optional<double> usd;
  std::optional<std::uint64_t> tokens, model_calls, tool_calls;
  std::string usd_at, tokens_at, model_calls_at, tool_calls_at;  // "FILE:LINE:COLUMN"
  bool any() const { return usd || tokens || model_calls || tool_calls; }
};

class RunUsage {
 public:
  // One answered model call of model ("provider/model"): usage and cost as llm.chat's answer
  // carries them (an object or "unknown"; a number or "unknown").
  void add_model_call(const std::string& model, const protocol::Json& usage,
                      const protocol::Json& cost);
  // A model call the broker sent that failed, with the error the VM got (code, message): it
  // counts as a call. One the provider refused or never saw (unbilled_failure) used nothing;
  // any other (a broken or malformed stream, a timeout, a reply over the message limit) may
  // have been billed, and as no usage came back whole, its tokens and cost are unknown.
  void add_failed_model_call(const std::string& model, const std::string& code,
                             const std::string& message);
  void add_tool_call() { ++tool_calls_; }
  // The answered llm.chat and host.call entries of a run's journal.
  void add_entries(const std::vector<JournalEntry>& entries);

  std::int64_t model_calls() const;
  std::int64_t tool_calls() const { return tool_calls_; }
  bool tokens_known() const;  // every model call reported its usage
  bool cost_known() const;    // every model call was priced
  std::int64_t total_tokens() const;
  double usd() const;

  // {model_calls, tool_calls, input_tokens, cached_input_tokens, cache_creation_input_tokens,
  // output_tokens, reasoning_tokens?, total_tokens, by_model: {MODEL: {...}}}; token counts are
  // "unknown" (with unknown_calls) when a call reported none.
  protocol::Json usage_json() const;
  // {usd, by_model: {MODEL: usd}}; "unknown" where a call had no price.
  protocol::Json cost_json() const;

 private:
  std::map<std::string, ModelUsage> by_model_;
  std::int64_t tool_calls_ = 0;
};

// Whether a failed llm.chat's error (its code and message, as journaled) says the provider
// refused the request (an HTTP error status) or was never reached: nothing was generated.
bool unbilled_failure(const std::string& code, const std::string& message);

// Whether a request of method (llm.chat, host.call) may go ahead under budget.
struct BudgetCheck {
  std::string refusal;  // "" when it may; else "budget: model_calls: ..."
  // A model call under a tokens or usd budget: the most output tokens it may ask for, so that
  // its input (estimated) and output stay within what remains; none when no such budget.
  std::optional<std::int64_t> max_output;
};

// price: llm.chat's model's (null: none); input_tokens: its request's input, estimated
// (estimate_input_tokens).
BudgetCheck check_budget(const Budget& budget, const RunUsage& used, std::string_view method,
                         const tools::ModelPrice* price, std::int64_t input_tokens);

// An llm.chat request's input tokens, estimated before it is sent at four bytes a token (the
// providers' rule of thumb) of its messages and tools as JSON.
std::int64_t estimate_input_tokens(const protocol::Json& params);

}  // namespace tactus::broker
