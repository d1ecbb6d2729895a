// Prints a model's reply on a terminal while it streams (llm.chat's token callback), with the
// run's secrets masked.
//
// Masking text that arrives in pieces is the hard part: a secret split across two tokens
// matches in neither. So the printer holds text back until a line is complete and masks whole
// lines; that is safe for every secret without a line break in its value, and the caller must
// not use the printer when a secret has one (multiline_secret says so). The line break
// also bounds what is held back: a reply appears line by line rather than token by token.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "broker/secrets.h"

namespace tactus::cli {

class TokenPrinter {
 public:
  TokenPrinter(int fd, std::shared_ptr<const broker::Redactor> redactor)
      : fd_(fd), redactor_(std::move(redactor)) {}
  // Hands each masked piece to sink instead of writing it (tactus serve's agent_chunk events).
  TokenPrinter(std::function<void(std::string)> sink,
               std::shared_ptr<const broker::Redactor> redactor)
      : sink_(std::move(sink)), redactor_(std::move(redactor)) {}
  // Writes every line text completes, masked; keeps the rest.
  void token(std::string_view text);
  // The reply is over: writes what is held back, masked, and ends the line.
  void end();

 private:
  void write_masked(std::string_view text);

  int fd_ = -1;
  std::function<void(std::string)> sink_;
  std::shared_ptr<const broker::Redactor> redactor_;
  std::string pending_;
};

// True when a secret's value holds a line break: then a line-buffered printer could leak it.
bool multiline_secret(const std::map<std::string, std::string>& secret_values);

}  // namespace tactus::cli
