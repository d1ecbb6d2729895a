#include "tools/llm/sse_parser.h"

namespace tactus::tools::llm {

void SseParser::feed(std::string_view chunk, const Handler& on_event) {
  if (!started_) {
    // The standard strips one byte-order mark at the very start of the stream.
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    partial_.append(chunk);
    if (partial_.size() < kBom.size() && kBom.substr(0, partial_.size()) == partial_) return;
    started_ = true;
    if (partial_.compare(0, kBom.size(), kBom) == 0) partial_.erase(0, kBom.size());
    const std::string first = std::move(partial_);
    partial_.clear();
    return feed(first, on_event);
  }
  std::size_t start = 0;
  for (std::size_t i = 0; i < chunk.size(); ++i) {
    const char c = chunk[i];
    if (c == '\n' && after_cr_ && i == start) {
      // The LF of a CRLF whose CR ended the previous chunk (or the previous line).
      after_cr_ = false;
      start = i + 1;
      continue;
    }
    after_cr_ = false;
    if (c != '\n' && c != '\r') continue;
    if (partial_.empty()) {
      line(chunk.substr(start, i - start), on_event);
    } else {
      partial_.append(chunk.substr(start, i - start));
      const std::string whole = std::move(partial_);
      partial_.clear();
      line(whole, on_event);
    }
    after_cr_ = c == '\r';
    start = i + 1;
  }
  partial_.append(chunk.substr(start));
}

void SseParser::line(std::string_view text, const Handler& on_event) {
  if (text.empty()) {
    if (has_data_) {
      if (!current_.data.empty() && current_.data.back() == '\n') current_.data.pop_back();
      on_event(current_);
    }
    current_.event.clear();
    current_.data.clear();
    has_data_ = false;
    return;  // the id persists across events, as the standard says
  }
  if (text.front() == ':') return;  // a comment (providers send them as keep-alives)
  const auto colon = text.find(':');
  const std::string_view field = text.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    current_.data.append(value).push_back('\n');
    has_data_ = true;
  } else if (field == "event") {
    current_.event.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) current_.id.assign(value);
  }
  // "retry" and unknown fields are ignored: we do not reconnect.
}

}  // namespace tactus::tools::llm
