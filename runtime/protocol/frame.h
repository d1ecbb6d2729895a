// Length-prefixed framing for the host channel (fd 3).
//
// A frame is a 4-byte big-endian payload length followed by that many bytes of JSON. The
// stream form (rather than SOCK_SEQPACKET) lets messages exceed a socket buffer; the cap is
// checked on the header, before any payload is buffered, so an oversized frame costs nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tactus::protocol {

inline constexpr std::size_t kFrameHeaderBytes = 4;
inline constexpr std::size_t kDefaultMessageLimit = 4u << 20;  // sandbox.limits.message

enum class FrameError { none, empty_frame, oversized_frame };

const char* to_string(FrameError e);

// Appends one frame (header + payload) to out.
void append_frame(std::string& out, std::string_view payload);

// Incremental decoder: feed it whatever read() returned, pop complete payloads.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t limit = kDefaultMessageLimit) : limit_(limit) {}

  // Appends received bytes. Returns false once the stream is broken (see error()).
  bool feed(const char* data, std::size_t n);
  // Moves the next complete payload into out. Returns false when none is complete yet or the
  // stream is broken.
  bool next(std::string& out);

  FrameError error() const { return error_; }
  // The length the offending header declared (for oversized_frame reports).
  std::uint64_t declared_length() const { return declared_; }
  // True when bytes of an incomplete frame are buffered (EOF now means a truncated frame).
  bool has_partial() const { return buf_.size() > pos_; }
  std::size_t limit() const { return limit_; }

 private:
  bool check_header();

  std::size_t limit_;
  std::string buf_;
  std::size_t pos_ = 0;
  FrameError error_ = FrameError::none;
  std::uint64_t declared_ = 0;
};

}  // namespace tactus::protocol
