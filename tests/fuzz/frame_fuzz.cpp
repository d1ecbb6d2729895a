// libFuzzer target for the host-channel framing and message parsing (runtime/protocol).
//
// Input layout: byte 0 is a control byte, the rest is the byte stream a peer would send.
//   bits 0-2  message limit: kLimits[bits]
//   bits 3-7  split pattern: 0 = one feed, 1..15 = fixed chunks of that many bytes,
//             16..31 = pseudo-random chunk sizes (seeded by the control byte)
// The seed corpus in tests/fuzz/corpus/ follows this convention (most seeds start with 0x07:
// default limit, one feed).
//
// Checked invariants (any violation traps):
//   - the decoder pops exactly the frames a straightforward reference decoder finds, whatever
//     the split, and ends in the same error state; no popped frame exceeds the limit;
//   - feed() returns false iff error() is set; once error() is set, next() never succeeds;
//   - re-framing the popped payloads with append_frame decodes to the same payloads;
//   - parse_message either succeeds or gives a reason; a parsed message re-serialized with
//     make_request/make_notification/make_result/make_error parses again to the same kind, id,
//     method (and error code/message, params/result as JSON text);
//   - json_depth returns -1 or a depth in [0, limit].
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/protocol/frame.h"
#include "runtime/protocol/message.h"

namespace {

using namespace tactus::protocol;

#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

constexpr std::size_t kLimits[8] = {1, 16, 64, 256, 4096, 65536, 1u << 20, kDefaultMessageLimit};

struct Reference {
  std::vector<std::string_view> frames;
  FrameError error = FrameError::none;
  std::uint64_t declared = 0;  // the offending header's length, when error is set
  bool partial = false;        // bytes of an incomplete frame left over
};

// The obvious whole-buffer decoder the incremental one must agree with.
Reference reference_decode(std::string_view s, std::size_t limit) {
  Reference r;
  std::size_t pos = 0;
  while (s.size() - pos >= kFrameHeaderBytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data() + pos);
    const std::uint64_t n = (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) |
                            (std::uint64_t{p[2]} << 8) | std::uint64_t{p[3]};
    if (n == 0 || n > limit) {
      r.error = n == 0 ? FrameError::empty_frame : FrameError::oversized_frame;
      r.declared = n;
      return r;
    }
    if (s.size() - pos - kFrameHeaderBytes < n) break;
    r.frames.push_back(s.substr(pos + kFrameHeaderBytes, n));
    pos += kFrameHeaderBytes + n;
  }
  r.partial = pos < s.size();
  return r;
}

// Pops everything available, checking the decoder's invariants on the way.
void drain(FrameDecoder& d, std::vector<std::string>& out) {
  std::string payload;
  while (d.next(payload)) {
    FUZZ_CHECK(d.error() == FrameError::none);
    FUZZ_CHECK(!payload.empty());
    FUZZ_CHECK(payload.size() <= d.limit());
    out.push_back(std::move(payload));
  }
  if (d.error() != FrameError::none) FUZZ_CHECK(!d.next(payload));
}

void check_json_depth(std::string_view text, int limit) {
  const int depth = json_depth(text, limit);
  FUZZ_CHECK(depth == -1 || (depth >= 0 && depth <= limit));
}

void check_message(const std::string& payload) {
  std::string reason;
  const auto m = parse_message(payload, reason);
  if (!m) {
    FUZZ_CHECK(!reason.empty());
    return;
  }
  FUZZ_CHECK(m->id >= 0);

  std::string text;
  switch (m->kind) {
    case MessageKind::request:
      FUZZ_CHECK(!m->method.empty() && m->method.size() <= kMaxMethodLength);
      FUZZ_CHECK(m->params.is_object());
      text = make_request(m->id, m->method, m->params);
      break;
    case MessageKind::notification:
      FUZZ_CHECK(!m->method.empty() && m->method.size() <= kMaxMethodLength);
      FUZZ_CHECK(m->params.is_object());
      FUZZ_CHECK(m->id == 0);
      text = make_notification(m->method, m->params);
      break;
    case MessageKind::response:
      FUZZ_CHECK(m->method.empty());
      text = m->error ? make_error(m->id, m->error->code, m->error->message)
                      : make_result(m->id, m->result);
      break;
  }

  std::string reason2;
  const auto m2 = parse_message(text, reason2);
  FUZZ_CHECK(m2.has_value());
  FUZZ_CHECK(m2->kind == m->kind);
  FUZZ_CHECK(m2->id == m->id);
  FUZZ_CHECK(m2->method == m->method);
  FUZZ_CHECK(m2->error.has_value() == m->error.has_value());
  if (m->error) {
    FUZZ_CHECK(m2->error->code == m->error->code);
    FUZZ_CHECK(m2->error->message == m->error->message);
  }
  // Values that JSON cannot carry (a float that overflowed to inf) serialize as null, so compare
  // serialized text rather than the values themselves.
  FUZZ_CHECK(dump_json(m2->params) == dump_json(m->params));
  FUZZ_CHECK(dump_json(m2->result) == dump_json(m->result));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t control = data[0];
  const std::size_t limit = kLimits[control & 7];
  const unsigned split = control >> 3;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  check_json_depth(stream, kMaxJsonDepth);
  check_json_depth(stream, static_cast<int>(control));

  // Feed the stream in the chosen chunks, popping after every feed as a reader loop would.
  FrameDecoder decoder(limit);
  FUZZ_CHECK(decoder.limit() == limit);
  std::vector<std::string> frames;
  std::uint32_t rng = 0x9e3779b9u ^ control;
  std::size_t pos = 0;
  do {
    std::size_t chunk = stream.size() - pos;
    if (split >= 1 && split <= 15) {
      chunk = split;
    } else if (split >= 16) {
      rng ^= rng << 13;
      rng ^= rng >> 17;
      rng ^= rng << 5;
      chunk = rng % (std::size_t{1} << (split - 12));  // 0 .. up to 512K; 0 = an empty read
    }
    if (chunk > stream.size() - pos) chunk = stream.size() - pos;
    const bool was_broken = decoder.error() != FrameError::none;
    const bool ok = decoder.feed(stream.data() + pos, chunk);
    FUZZ_CHECK(ok == (decoder.error() == FrameError::none));
    if (was_broken) FUZZ_CHECK(!ok);
    pos += chunk;
    drain(decoder, frames);
  } while (pos < stream.size());
  drain(decoder, frames);

  // Whatever the split, the result is what a whole-buffer decode gives.
  const Reference ref = reference_decode(stream, limit);
  FUZZ_CHECK(decoder.error() == ref.error);
  FUZZ_CHECK(frames.size() == ref.frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) FUZZ_CHECK(frames[i] == ref.frames[i]);
  if (ref.error != FrameError::none) {
    FUZZ_CHECK(decoder.declared_length() == ref.declared);
    FUZZ_CHECK(to_string(decoder.error()) != nullptr);
  } else {
    FUZZ_CHECK(decoder.has_partial() == ref.partial);
  }

  // append_frame is the inverse of the decoder.
  if (!frames.empty()) {
    std::string wire;
    for (const auto& f : frames) append_frame(wire, f);
    FrameDecoder again(limit);
    FUZZ_CHECK(again.feed(wire.data(), wire.size()));
    std::vector<std::string> frames2;
    drain(again, frames2);
    FUZZ_CHECK(frames2 == frames);
    FUZZ_CHECK(!again.has_partial() && again.error() == FrameError::none);
  }

  for (const auto& f : frames) {
    check_json_depth(f, kMaxJsonDepth);
    check_message(f);
  }
  return 0;
}
