#include "runtime/protocol/frame.h"

namespace tactus::protocol {

const char* to_string(FrameError e) {
  switch (e) {
    case FrameError::none:
      return "none";
    case FrameError::empty_frame:
      return "empty frame";
    case FrameError::oversized_frame:
      return "oversized frame";
  }
  return "unknown";
}

void append_frame(std::string& out, std::string_view payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  const char header[kFrameHeaderBytes] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                          static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(header, kFrameHeaderBytes);
  out.append(payload);
}

bool FrameDecoder::check_header() {
  if (buf_.size() - pos_ < kFrameHeaderBytes) return true;
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  declared_ = (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) |
              (std::uint64_t{p[2]} << 8) | std::uint64_t{p[3]};
  if (declared_ == 0)
    error_ = FrameError::empty_frame;
  else if (declared_ > limit_)
    error_ = FrameError::oversized_frame;
  return error_ == FrameError::none;
}

bool FrameDecoder::feed(const char* data, std::size_t n) {
  if (error_ != FrameError::none) return false;
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  buf_.append(data, n);
  // Reject a bad header as soon as it is complete, so a peer cannot make us buffer up to an
  // oversized length before noticing.
  return check_header();
}

bool FrameDecoder::next(std::string& out) {
  if (error_ != FrameError::none || !check_header()) return false;
  if (buf_.size() - pos_ < kFrameHeaderBytes) return false;
  if (buf_.size() - pos_ - kFrameHeaderBytes < declared_) return false;
  out.assign(buf_, pos_ + kFrameHeaderBytes, declared_);
  pos_ += kFrameHeaderBytes + declared_;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (64u << 10) && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return true;
}

}  // namespace tactus::protocol
